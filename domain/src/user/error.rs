use crate::services::ServiceError;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("user does not exist")]
    NotRegistered,
    #[error("username is already taken")]
    UsernameTaken,
    #[error("user is already disabled")]
    AlreadyDisabled,
    #[error("user is not disabled")]
    AlreadyEnabled,
    #[error("the user's data was erased: the account can no longer be changed")]
    Erased,
    #[error("reason: {0}")]
    InvalidReason(String),
    #[error("no sign-in is waiting for a second factor (it may have taken too long)")]
    NoSignInPending,
    #[error("two-factor sign-in is not set up")]
    NotEnrolled,
    #[error("two-factor sign-in is already set up")]
    AlreadyEnrolled,
    #[error("password hashing failed: {0}")]
    Hashing(#[from] ServiceError),
}
