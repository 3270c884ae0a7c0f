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
    #[error("password hashing failed: {0}")]
    Hashing(#[from] ServiceError),
}
