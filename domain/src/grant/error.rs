/// Why a grant refused a command. `InvalidGrant` and `InvalidScope` are the RFC 6749 §5.2
/// error codes of the same names; their text becomes `error_description`.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum GrantError {
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error("the requested scope exceeds the scope originally granted")]
    InvalidScope,
    #[error("grant already exists")]
    AlreadyExists,
    #[error("grant does not exist")]
    NotFound,
}
