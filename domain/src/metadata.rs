//! Event metadata: the audit trail's "who, from where, when, as part of which request".
//!
//! cqrs-es stores metadata as a flat string map next to each event; this module is the typed
//! view of that map, so nothing else spells its keys.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// The server itself (start-up, scheduled work).
    System,
    /// An operator at the command line, identified by the OS user that ran it.
    Cli(String),
    /// A signed-in person.
    User(String),
    /// An OAuth client acting for itself (client credentials, introspection, revocation).
    Client(String),
    /// A caller that has not authenticated (a sign-in attempt).
    Anonymous,
    /// A client registering itself (RFC 7591), named by its software id or else its IP address.
    Registrant(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::System => f.write_str("system"),
            Actor::Cli(who) => write!(f, "cli:{who}"),
            Actor::User(who) => write!(f, "user:{who}"),
            Actor::Client(who) => write!(f, "client:{who}"),
            Actor::Anonymous => f.write_str("anonymous"),
            Actor::Registrant(who) => write!(f, "registrant:{who}"),
        }
    }
}

impl FromStr for Actor {
    type Err = MetadataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s == "system" => Ok(Actor::System),
            None if s == "anonymous" => Ok(Actor::Anonymous),
            Some(("cli", who)) => Ok(Actor::Cli(who.to_owned())),
            Some(("user", who)) => Ok(Actor::User(who.to_owned())),
            Some(("client", who)) => Ok(Actor::Client(who.to_owned())),
            Some(("registrant", who)) => Ok(Actor::Registrant(who.to_owned())),
            _ => Err(MetadataError::Malformed("actor")),
        }
    }
}

/// Where a command came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    Cli,
    Http {
        ip: Option<String>,
        user_agent: Option<String>,
    },
    System,
}

/// What every event carries besides its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMetadata {
    pub actor: Actor,
    /// Correlates every event of one HTTP request or CLI invocation.
    pub request_id: String,
    pub source: Source,
    /// When the command was accepted, by the server's clock.
    pub at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetadataError {
    #[error("event metadata lacks `{0}`")]
    Missing(&'static str),
    #[error("event metadata has a malformed `{0}`")]
    Malformed(&'static str),
}

const ACTOR: &str = "actor";
const REQUEST_ID: &str = "request_id";
const SOURCE: &str = "source";
const IP: &str = "ip";
const USER_AGENT: &str = "user_agent";
const TIME: &str = "time";

impl EventMetadata {
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::from([
            (ACTOR.to_owned(), self.actor.to_string()),
            (REQUEST_ID.to_owned(), self.request_id.clone()),
            (
                TIME.to_owned(),
                self.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            ),
        ]);
        let source = match &self.source {
            Source::Cli => "cli",
            Source::System => "system",
            Source::Http { ip, user_agent } => {
                if let Some(ip) = ip {
                    map.insert(IP.to_owned(), ip.clone());
                }
                if let Some(user_agent) = user_agent {
                    map.insert(USER_AGENT.to_owned(), user_agent.clone());
                }
                "http"
            }
        };
        map.insert(SOURCE.to_owned(), source.to_owned());
        map
    }

    pub fn from_map(map: &HashMap<String, String>) -> Result<Self, MetadataError> {
        let get = |key: &'static str| map.get(key).ok_or(MetadataError::Missing(key));
        let source = match get(SOURCE)?.as_str() {
            "cli" => Source::Cli,
            "system" => Source::System,
            "http" => Source::Http {
                ip: map.get(IP).cloned(),
                user_agent: map.get(USER_AGENT).cloned(),
            },
            _ => return Err(MetadataError::Malformed(SOURCE)),
        };
        Ok(EventMetadata {
            actor: get(ACTOR)?.parse()?,
            request_id: get(REQUEST_ID)?.clone(),
            source,
            at: DateTime::parse_from_rfc3339(get(TIME)?)
                .map_err(|_| MetadataError::Malformed(TIME))?
                .with_timezone(&Utc),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_survives_the_string_map_of_the_event_store() {
        let metadata = EventMetadata {
            actor: Actor::Client("c-1".into()),
            request_id: "req-7".into(),
            source: Source::Http {
                ip: Some("203.0.113.9".into()),
                user_agent: Some("curl/8".into()),
            },
            at: DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456Z")
                .unwrap()
                .with_timezone(&Utc),
        };
        assert_eq!(EventMetadata::from_map(&metadata.to_map()), Ok(metadata));
    }

    #[test]
    fn an_unknown_actor_kind_is_refused() {
        assert!("robot:x".parse::<Actor>().is_err());
        assert_eq!("cli:root".parse::<Actor>(), Ok(Actor::Cli("root".into())));
    }
}
