//! The `SigningKeys` aggregate (singleton, id [`SIGNING_KEYS_ID`]): the lifecycle of the ID
//! token signing keys. A new key is first only *published* (in the JWKS, not used), so relying
//! parties can refresh their JWKS caches; it becomes *active* once its activation time has
//! passed, and the key it replaces is *retired*: still published until every token signed
//! with it has expired, then *removed*. Events carry the public JWK only; private key material
//! never enters the log.

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::client::IdTokenAlg;
use crate::services::Services;

pub const SIGNING_KEYS_ID: &str = "signing-keys";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    Published,
    Active,
    Retired,
    Removed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigningKey {
    pub kid: String,
    pub alg: IdTokenAlg,
    pub public_jwk: serde_json::Value,
    pub state: KeyState,
    pub activate_after: DateTime<Utc>,
    pub remove_after: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigningKeys {
    keys: Vec<SigningKey>,
}

impl SigningKeys {
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The key that signs tokens for `alg`.
    pub fn active(&self, alg: IdTokenAlg) -> Option<&SigningKey> {
        self.keys
            .iter()
            .find(|k| k.alg == alg && k.state == KeyState::Active)
    }

    /// Keys relying parties must be able to find: published, active and retired.
    pub fn published(&self) -> impl Iterator<Item = &SigningKey> {
        self.keys.iter().filter(|k| k.state != KeyState::Removed)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SigningKeysCommand {
    /// A key was generated and its private part sealed away; publish it, and let it sign from
    /// `activate_after` on.
    Publish {
        kid: String,
        alg: IdTokenAlg,
        public_jwk: serde_json::Value,
        activate_after: DateTime<Utc>,
    },
    /// Does what time has made due: activates published keys whose time has come (retiring
    /// the key each replaces until `retire_for` from now, the longest life of a token it
    /// signed), and removes retired keys whose tokens have all expired.
    Maintain { retire_for: chrono::Duration },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::VariantNames)]
pub enum SigningKeysEvent {
    KeyGenerated {
        kid: String,
        alg: IdTokenAlg,
        public_jwk: serde_json::Value,
        activate_after: DateTime<Utc>,
    },
    KeyActivated {
        kid: String,
    },
    KeyRetired {
        kid: String,
        remove_after: DateTime<Utc>,
    },
    KeyRemoved {
        kid: String,
    },
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SigningKeysError {
    #[error("a key with id {0} already exists")]
    DuplicateKid(String),
    #[error("a public JWK must not contain private key material")]
    PrivateMaterial,
}

impl cqrs_es::DomainEvent for SigningKeysEvent {
    fn event_type(&self) -> String {
        match self {
            SigningKeysEvent::KeyGenerated { .. } => "KeyGenerated",
            SigningKeysEvent::KeyActivated { .. } => "KeyActivated",
            SigningKeysEvent::KeyRetired { .. } => "KeyRetired",
            SigningKeysEvent::KeyRemoved { .. } => "KeyRemoved",
        }
        .to_owned()
    }
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// JWK members that hold private key material (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

impl SigningKeys {
    fn decide(
        &self,
        command: SigningKeysCommand,
        now: DateTime<Utc>,
    ) -> Result<Vec<SigningKeysEvent>, SigningKeysError> {
        match command {
            SigningKeysCommand::Publish {
                kid,
                alg,
                public_jwk,
                activate_after,
            } => {
                if self.keys.iter().any(|k| k.kid == kid) {
                    return Err(SigningKeysError::DuplicateKid(kid));
                }
                if PRIVATE_MEMBERS.iter().any(|m| public_jwk.get(m).is_some()) {
                    return Err(SigningKeysError::PrivateMaterial);
                }
                Ok(vec![SigningKeysEvent::KeyGenerated {
                    kid,
                    alg,
                    public_jwk,
                    activate_after,
                }])
            }
            SigningKeysCommand::Maintain { retire_for } => {
                let mut events = Vec::new();
                for key in &self.keys {
                    if key.state == KeyState::Retired && key.remove_after.is_some_and(|t| now >= t)
                    {
                        events.push(SigningKeysEvent::KeyRemoved {
                            kid: key.kid.clone(),
                        });
                    }
                }
                // The newest due key of each algorithm becomes active.
                let mut due: Vec<&SigningKey> = self
                    .keys
                    .iter()
                    .filter(|k| k.state == KeyState::Published && now >= k.activate_after)
                    .collect();
                due.sort_by_key(|k| std::cmp::Reverse(k.activate_after));
                let mut done = Vec::new();
                for key in due {
                    let superseded = self
                        .active(key.alg)
                        .is_some_and(|active| active.activate_after >= key.activate_after);
                    if done.contains(&key.alg) || superseded {
                        // An older key that never signed: nothing can need it.
                        events.push(SigningKeysEvent::KeyRemoved {
                            kid: key.kid.clone(),
                        });
                        continue;
                    }
                    done.push(key.alg);
                    if let Some(previous) = self.active(key.alg) {
                        events.push(SigningKeysEvent::KeyRetired {
                            kid: previous.kid.clone(),
                            remove_after: now + retire_for,
                        });
                    }
                    events.push(SigningKeysEvent::KeyActivated {
                        kid: key.kid.clone(),
                    });
                }
                Ok(events)
            }
        }
    }
}

impl cqrs_es::Aggregate for SigningKeys {
    const TYPE: &'static str = "SigningKeys";
    type Command = SigningKeysCommand;
    type Event = SigningKeysEvent;
    type Error = SigningKeysError;
    type Services = Services;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command, services.now())? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let set = |keys: &mut Vec<SigningKey>,
                   kid: &str,
                   state: KeyState,
                   remove_after: Option<DateTime<Utc>>| {
            if let Some(key) = keys.iter_mut().find(|k| k.kid == kid) {
                key.state = state;
                if remove_after.is_some() {
                    key.remove_after = remove_after;
                }
            }
        };
        match event {
            SigningKeysEvent::KeyGenerated {
                kid,
                alg,
                public_jwk,
                activate_after,
            } => self.keys.push(SigningKey {
                kid,
                alg,
                public_jwk,
                state: KeyState::Published,
                activate_after,
                remove_after: None,
            }),
            SigningKeysEvent::KeyActivated { kid } => {
                set(&mut self.keys, &kid, KeyState::Active, None)
            }
            SigningKeysEvent::KeyRetired { kid, remove_after } => {
                set(&mut self.keys, &kid, KeyState::Retired, Some(remove_after))
            }
            SigningKeysEvent::KeyRemoved { kid } => {
                set(&mut self.keys, &kid, KeyState::Removed, None)
            }
        }
    }
}
