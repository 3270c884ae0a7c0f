//! The `Client` aggregate: one registered OAuth client (RFC 6749 §2, RFC 7591 §2 metadata).
//!
//! Its id is the `client_id`. A deleted client stays in the log forever and its id is never
//! reused, so an old token or audit row can never be attributed to a different client.

mod command;
mod error;
mod event;
mod metadata;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use command::{ClientCommand, ClientId, ClientIdRejected};
pub use error::ClientError;
pub use event::ClientEvent;
pub use metadata::{ClientMetadata, IdTokenAlg, RegistrationSource};

use crate::secret::SecretHash;
use crate::services::Services;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Client {
    /// `None` until `ClientRegistered`.
    registered: Option<RegisteredClient>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredClient {
    pub client_id: String,
    pub metadata: ClientMetadata,
    /// `None` for public clients, which authenticate with nothing (RFC 6749 §2.1).
    pub secret_hash: Option<SecretHash>,
    pub status: ClientStatus,
    pub registered_via: RegistrationSource,
    pub registration_access_token_hash: Option<SecretHash>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientStatus {
    Active,
    Disabled,
    Deleted,
}

impl ClientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientStatus::Active => "active",
            ClientStatus::Disabled => "disabled",
            ClientStatus::Deleted => "deleted",
        }
    }
}

impl Client {
    pub fn registered(&self) -> Option<&RegisteredClient> {
        self.registered.as_ref()
    }

    /// The client as it stands, for any command other than `Register`.
    fn existing(&self) -> Result<&RegisteredClient, ClientError> {
        match &self.registered {
            None => Err(ClientError::NotRegistered),
            Some(client) if client.status == ClientStatus::Deleted => Err(ClientError::Deleted),
            Some(client) => Ok(client),
        }
    }

    fn decide(&self, command: ClientCommand) -> Result<Vec<ClientEvent>, ClientError> {
        if let ClientCommand::Register {
            client_id,
            metadata,
            secret_hash,
            registered_via,
            registration_access_token_hash,
        } = command
        {
            if self.registered.is_some() {
                return Err(ClientError::AlreadyRegistered);
            }
            metadata.check()?;
            check_secret_matches_auth_method(&metadata, secret_hash.as_ref())?;
            return Ok(vec![ClientEvent::ClientRegistered {
                client_id: client_id.into_string(),
                metadata,
                secret_hash,
                registered_via,
                registration_access_token_hash,
            }]);
        }

        let client = self.existing()?;
        let events = match command {
            ClientCommand::Register { .. } => unreachable!("handled above"),
            ClientCommand::Update { metadata } => {
                metadata.check()?;
                if metadata.token_endpoint_auth_method.is_public()
                    != client.metadata.token_endpoint_auth_method.is_public()
                {
                    // Switching between public and confidential changes whether a secret exists;
                    // that is a different client, not an edit of this one.
                    return Err(ClientError::InvalidMetadata {
                        field: "token_endpoint_auth_method".into(),
                        reason: "cannot change between public (`none`) and confidential; \
                                 register a new client"
                            .into(),
                    });
                }
                if metadata == client.metadata {
                    vec![]
                } else {
                    vec![ClientEvent::ClientUpdated { metadata }]
                }
            }
            ClientCommand::RotateSecret {
                secret_hash,
                revoke_tokens,
            } => {
                if client.metadata.token_endpoint_auth_method.is_public() {
                    return Err(ClientError::PublicClientHasNoSecret);
                }
                vec![ClientEvent::ClientSecretRotated {
                    secret_hash,
                    revoke_tokens,
                }]
            }
            ClientCommand::Disable { reason } => {
                if let Some(reason) = &reason {
                    crate::text::check(reason, crate::text::MAX_LINE_CHARS)
                        .map_err(|why| ClientError::invalid("reason", why))?;
                }
                match client.status {
                    ClientStatus::Disabled => return Err(ClientError::AlreadyDisabled),
                    _ => vec![ClientEvent::ClientDisabled { reason }],
                }
            }
            ClientCommand::Enable => match client.status {
                ClientStatus::Disabled => vec![ClientEvent::ClientEnabled {}],
                _ => return Err(ClientError::AlreadyEnabled),
            },
            ClientCommand::Delete => vec![ClientEvent::ClientDeleted {}],
        };
        Ok(events)
    }
}

fn check_secret_matches_auth_method(
    metadata: &ClientMetadata,
    secret_hash: Option<&SecretHash>,
) -> Result<(), ClientError> {
    match (metadata.token_endpoint_auth_method.is_public(), secret_hash) {
        (true, Some(_)) => Err(ClientError::PublicClientHasNoSecret),
        (false, None) => Err(ClientError::SecretRequired),
        _ => Ok(()),
    }
}

impl cqrs_es::Aggregate for Client {
    const TYPE: &'static str = "Client";
    type Command = ClientCommand;
    type Event = ClientEvent;
    type Error = ClientError;
    type Services = Services;

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ClientEvent::ClientRegistered {
                client_id,
                metadata,
                secret_hash,
                registered_via,
                registration_access_token_hash,
            } => {
                self.registered = Some(RegisteredClient {
                    client_id,
                    metadata,
                    secret_hash,
                    status: ClientStatus::Active,
                    registered_via,
                    registration_access_token_hash,
                })
            }
            other => {
                let Some(client) = self.registered.as_mut() else {
                    return;
                };
                match other {
                    ClientEvent::ClientRegistered { .. } => {}
                    ClientEvent::ClientUpdated { metadata } => client.metadata = metadata,
                    ClientEvent::ClientSecretRotated { secret_hash, .. } => {
                        client.secret_hash = Some(secret_hash)
                    }
                    ClientEvent::ClientDisabled { .. } => client.status = ClientStatus::Disabled,
                    ClientEvent::ClientEnabled {} => client.status = ClientStatus::Active,
                    ClientEvent::ClientDeleted {} => client.status = ClientStatus::Deleted,
                }
            }
        }
    }
}
