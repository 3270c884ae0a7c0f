/// Why a grant refused a command. `InvalidGrant` and `InvalidScope` are the RFC 6749 §5.2
/// error codes of the same names; their text becomes `error_description`.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum GrantError {
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error("the requested scope exceeds the scope originally granted")]
    InvalidScope,
    /// RFC 8707 §2: a resource the grant does not cover.
    #[error("the requested resource was not authorized for this grant")]
    InvalidTarget,
    #[error("grant already exists")]
    AlreadyExists,
    #[error("grant does not exist")]
    NotFound,
    /// RFC 8628 §3.5: the person has not decided yet; poll again.
    #[error("the person has not yet approved the device")]
    AuthorizationPending,
    /// RFC 8628 §3.5: the person denied the device.
    #[error("the person denied the device")]
    AccessDenied,
    /// RFC 8628 §3.5: the device code expired before the person approved it.
    #[error("the device code has expired; start again")]
    ExpiredToken,
}

impl GrantError {
    /// The RFC 6749 §5.2 error code a token endpoint answers this refusal with. A grant that
    /// does not exist (or exists already) is, to the client, a code or token that is not valid.
    pub fn code(&self) -> &'static str {
        match self {
            GrantError::InvalidScope => "invalid_scope",
            GrantError::InvalidTarget => "invalid_target",
            GrantError::InvalidGrant(_) | GrantError::AlreadyExists | GrantError::NotFound => {
                "invalid_grant"
            }
            GrantError::AuthorizationPending => "authorization_pending",
            GrantError::AccessDenied => "access_denied",
            GrantError::ExpiredToken => "expired_token",
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
