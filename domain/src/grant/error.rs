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

impl GrantError {
    /// The RFC 6749 §5.2 error code a token endpoint answers this refusal with. A grant that
    /// does not exist (or exists already) is, to the client, a code or token that is not valid.
    pub fn code(&self) -> &'static str {
        match self {
            GrantError::InvalidScope => "invalid_scope",
            GrantError::InvalidGrant(_) | GrantError::AlreadyExists | GrantError::NotFound => {
                "invalid_grant"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_knows_its_rfc_6749_code() {
        assert_eq!(GrantError::InvalidScope.code(), "invalid_scope");
        assert_eq!(GrantError::InvalidGrant("expired").code(), "invalid_grant");
        assert_eq!(GrantError::NotFound.code(), "invalid_grant");
    }
}
