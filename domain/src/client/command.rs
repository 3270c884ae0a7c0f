use std::fmt;

use serde::{Deserialize, Serialize};

use super::metadata::{ClientMetadata, RegistrationSource};
use crate::secret::SecretHash;

/// A `client_id` (RFC 6749 §2.2): minted by the server, unique, never reused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(String);

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("client_id: must be 1 to 128 characters of A-Z a-z 0-9 . _ ~ -")]
pub struct ClientIdRejected;

impl ClientId {
    pub fn parse(raw: &str) -> Result<Self, ClientIdRejected> {
        // Unreserved URI characters only, so a client_id needs no escaping in a URL, a form,
        // an HTTP Basic user name (where `:` would break the split) or a log line.
        let ok = (1..=128).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'));
        if ok {
            Ok(ClientId(raw.to_owned()))
        } else {
            Err(ClientIdRejected)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ClientId {
    type Error = ClientIdRejected;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ClientId::parse(&value)
    }
}

impl From<ClientId> for String {
    fn from(value: ClientId) -> Self {
        value.0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClientCommand {
    /// Register a new client. The secret was minted and shown by the caller; only its hash
    /// comes in.
    Register {
        client_id: ClientId,
        metadata: ClientMetadata,
        secret_hash: Option<SecretHash>,
        registered_via: RegistrationSource,
        /// RFC 7592: the hash of the token with which a dynamically registered client reads,
        /// updates and deletes its own registration.
        registration_access_token_hash: Option<SecretHash>,
    },
    /// Replace the client's metadata.
    Update {
        metadata: ClientMetadata,
    },
    /// Replace the secret; with `revoke_tokens`, everything issued to the client dies too
    /// (the answer to a leaked secret).
    RotateSecret {
        secret_hash: SecretHash,
        revoke_tokens: bool,
    },
    Disable {
        reason: Option<String>,
    },
    Enable,
    Delete,
}
