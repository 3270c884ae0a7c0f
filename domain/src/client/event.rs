use serde::{Deserialize, Serialize};

use super::metadata::{ClientMetadata, RegistrationSource};
use crate::secret::SecretHash;

/// What happened to a client. Secrets appear only as SHA-256 hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::VariantNames)]
pub enum ClientEvent {
    ClientRegistered {
        client_id: String,
        metadata: ClientMetadata,
        secret_hash: Option<SecretHash>,
        registered_via: RegistrationSource,
        #[serde(default)]
        registration_access_token_hash: Option<SecretHash>,
    },
    ClientUpdated {
        metadata: ClientMetadata,
    },
    ClientSecretRotated {
        secret_hash: SecretHash,
        revoke_tokens: bool,
    },
    ClientDisabled {
        reason: Option<String>,
    },
    ClientEnabled {},
    ClientDeleted {},
}

impl cqrs_es::DomainEvent for ClientEvent {
    fn event_type(&self) -> String {
        match self {
            ClientEvent::ClientRegistered { .. } => "ClientRegistered",
            ClientEvent::ClientUpdated { .. } => "ClientUpdated",
            ClientEvent::ClientSecretRotated { .. } => "ClientSecretRotated",
            ClientEvent::ClientDisabled { .. } => "ClientDisabled",
            ClientEvent::ClientEnabled {} => "ClientEnabled",
            ClientEvent::ClientDeleted {} => "ClientDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
