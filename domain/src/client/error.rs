/// Why a `Client` command was refused. The messages are shown to operators and API callers,
/// so they say what to do, and never contain a secret.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ClientError {
    #[error("client is not registered")]
    NotRegistered,
    #[error("a client with this client_id is already registered")]
    AlreadyRegistered,
    #[error("client has been deleted")]
    Deleted,
    #[error("client is already disabled")]
    AlreadyDisabled,
    #[error("client is not disabled")]
    AlreadyEnabled,
    #[error("{field}: {reason}")]
    InvalidMetadata { field: String, reason: String },
    #[error("a public client (token_endpoint_auth_method `none`) has no secret")]
    PublicClientHasNoSecret,
    #[error("a confidential client must be registered with a secret")]
    SecretRequired,
}

impl ClientError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl ToString) -> Self {
        ClientError::InvalidMetadata {
            field: field.into(),
            reason: reason.to_string(),
        }
    }
}
