//! The `Consent` aggregate: what one person allowed one client to do. Its id is
//! [`consent_id`]`(user, client)`. In `auto` consent mode a consent that covers the requested
//! scopes spares the person the consent page; revoking it also ends the client's tokens for
//! that person (the server reacts to `ConsentRevoked`).

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::oauth::Scopes;
use crate::services::Services;
use crate::user::Username;

pub fn consent_id(user: &Username, client_id: &str) -> String {
    // Neither usernames nor client ids contain ':'.
    format!("{user}:{client_id}")
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consent {
    granted: Option<Scopes>,
}

impl Consent {
    /// Whether an active consent includes every one of `scopes`.
    pub fn covers(&self, scopes: &Scopes) -> bool {
        self.granted
            .as_ref()
            .is_some_and(|granted| scopes.is_subset_of(granted))
    }

    pub fn granted(&self) -> Option<&Scopes> {
        self.granted.as_ref()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConsentCommand {
    /// The person pressed "Allow" for these scopes.
    Grant {
        user: Username,
        client_id: String,
        scopes: Scopes,
    },
    Revoke {
        user: Username,
        client_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::VariantNames)]
pub enum ConsentEvent {
    /// `scopes` is everything now consented to (earlier consents included).
    ConsentGranted {
        user: Username,
        client_id: String,
        scopes: Scopes,
    },
    ConsentRevoked {
        user: Username,
        client_id: String,
    },
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConsentError {
    #[error("no consent is in force for this user and client")]
    NotGranted,
}

impl cqrs_es::DomainEvent for ConsentEvent {
    fn event_type(&self) -> String {
        match self {
            ConsentEvent::ConsentGranted { .. } => "ConsentGranted",
            ConsentEvent::ConsentRevoked { .. } => "ConsentRevoked",
        }
        .to_owned()
    }
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl cqrs_es::Aggregate for Consent {
    const TYPE: &'static str = "Consent";
    type Command = ConsentCommand;
    type Event = ConsentEvent;
    type Error = ConsentError;
    type Services = Services;

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            ConsentCommand::Grant {
                user,
                client_id,
                scopes,
            } => {
                if self.covers(&scopes) {
                    return Ok(());
                }
                let all = match &self.granted {
                    Some(granted) => granted.union(&scopes),
                    None => scopes,
                };
                ConsentEvent::ConsentGranted {
                    user,
                    client_id,
                    scopes: all,
                }
            }
            ConsentCommand::Revoke { user, client_id } => {
                if self.granted.is_none() {
                    return Err(ConsentError::NotGranted);
                }
                ConsentEvent::ConsentRevoked { user, client_id }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.granted = match event {
            ConsentEvent::ConsentGranted { scopes, .. } => Some(scopes),
            ConsentEvent::ConsentRevoked { .. } => None,
        };
    }
}
