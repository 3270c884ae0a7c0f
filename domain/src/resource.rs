//! The `Resource` aggregate: a protected resource (an API) tokens can be restricted to with
//! resource indicators (RFC 8707). Its id is its identifier, an absolute URI without a
//! fragment (RFC 8707 §2), exactly as clients send it in `resource`.
//!
//! What it decides: the format of the access tokens issued for it (opaque, the default, or a
//! JWT per RFC 9068 that a resource server verifies with the JWKS alone), their lifetime, the
//! scopes it defines (published in its RFC 9728 metadata), and which clients may ask for it
//! (every client when the list is empty).

use serde::{Deserialize, Serialize};
use url::Url;

use crate::client::IdTokenAlg;
use crate::oauth::Scopes;
use crate::services::Services;
use crate::text::{self, TextRejected};

/// The longest identifier accepted: a URI, not a document.
const MAX_IDENTIFIER_CHARS: usize = 2000;
const MAX_NAME_CHARS: usize = 200;
const MAX_ALLOWED_CLIENTS: usize = 1000;

/// A resource identifier (RFC 8707 §2): absolute, no fragment. Compared as the exact string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceId(String);

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ResourceIdRejected {
    #[error("must be an absolute URI (RFC 8707 §2)")]
    NotAbsolute,
    #[error("must not contain a fragment (RFC 8707 §2)")]
    HasFragment,
    #[error(
        "must be at most {MAX_IDENTIFIER_CHARS} characters, without spaces or control characters"
    )]
    Malformed,
}

impl ResourceId {
    pub fn parse(raw: &str) -> Result<ResourceId, ResourceIdRejected> {
        if raw.chars().count() > MAX_IDENTIFIER_CHARS
            || raw.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(ResourceIdRejected::Malformed);
        }
        if raw.contains('#') {
            return Err(ResourceIdRejected::HasFragment);
        }
        match Url::parse(raw) {
            Ok(url) if !url.cannot_be_a_base() || url.scheme() == "urn" => {
                Ok(ResourceId(raw.to_owned()))
            }
            _ => Err(ResourceIdRejected::NotAbsolute),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ResourceId {
    type Error = ResourceIdRejected;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ResourceId::parse(&value)
    }
}

impl From<ResourceId> for String {
    fn from(value: ResourceId) -> Self {
        value.0
    }
}

impl std::fmt::Display for ResourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How access tokens for a resource are made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenFormat {
    /// A random reference, checked by introspection.
    #[default]
    Opaque,
    /// An RFC 9068 JWT, signed with the server's active key.
    Jwt,
}

impl std::str::FromStr for TokenFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "opaque" => Ok(TokenFormat::Opaque),
            "jwt" => Ok(TokenFormat::Jwt),
            other => Err(format!("unknown token format `{other}` (opaque or jwt)")),
        }
    }
}

impl TokenFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenFormat::Opaque => "opaque",
            TokenFormat::Jwt => "jwt",
        }
    }
}

/// What an operator says about a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceSettings {
    pub name: String,
    /// The scopes the resource defines (its metadata's `scopes_supported`).
    #[serde(default)]
    pub scopes: Scopes,
    #[serde(default)]
    pub token_format: TokenFormat,
    /// Seconds its access tokens live; the server's `access_token_ttl` when absent.
    #[serde(default)]
    pub access_token_ttl: Option<u32>,
    /// The clients that may ask for it; every client when empty.
    #[serde(default)]
    pub allowed_clients: Vec<String>,
    /// The clients the resource server authenticates as to introspect tokens issued to
    /// other clients for it (RFC 7662 §2.1); none when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub introspecting_clients: Vec<String>,
    /// How its JWT access tokens are signed (RS256 when absent): any algorithm whose key the
    /// JWKS publishes, so never HS256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_alg: Option<IdTokenAlg>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ResourceError {
    #[error("a resource with this identifier exists")]
    AlreadyExists,
    #[error("no such resource")]
    NotFound,
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl ResourceSettings {
    /// Every string printable and bounded, every number in range.
    pub fn check(&self) -> Result<(), ResourceError> {
        let invalid = |field, reason: String| ResourceError::Invalid { field, reason };
        text::check(&self.name, MAX_NAME_CHARS)
            .map_err(|e: TextRejected| invalid("name", e.to_string()))?;
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty".into()));
        }
        if self.signing_alg == Some(IdTokenAlg::HS256) {
            return Err(invalid(
                "signing_alg",
                "access tokens are verified with the JWKS, which has no HS256 key: RS256, ES256 or EdDSA"
                    .into(),
            ));
        }
        if let Some(ttl) = self.access_token_ttl {
            if !(1..=86_400).contains(&ttl) {
                return Err(invalid("access_token_ttl", "seconds, 1 to 86400".into()));
            }
        }
        for (field, clients) in [
            ("allowed_clients", &self.allowed_clients),
            ("introspecting_clients", &self.introspecting_clients),
        ] {
            if clients.len() > MAX_ALLOWED_CLIENTS {
                return Err(invalid(field, format!("at most {MAX_ALLOWED_CLIENTS}")));
            }
            for client in clients {
                text::check(client, 200).map_err(|e| invalid(field, e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Whether `client_id` (the resource server) may introspect tokens issued for it.
    pub fn introspectable_by(&self, client_id: &str) -> bool {
        self.introspecting_clients.iter().any(|c| c == client_id)
    }

    /// Whether `client_id` may ask for tokens restricted to this resource.
    pub fn allows(&self, client_id: &str) -> bool {
        self.allowed_clients.is_empty() || self.allowed_clients.iter().any(|c| c == client_id)
    }
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    registered: Option<RegisteredResource>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredResource {
    pub identifier: ResourceId,
    pub settings: ResourceSettings,
}

impl Resource {
    /// The resource, unless it was never registered or was deleted.
    pub fn registered(&self) -> Option<&RegisteredResource> {
        self.registered.as_ref()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResourceCommand {
    Register {
        identifier: ResourceId,
        settings: ResourceSettings,
    },
    Update(ResourceSettings),
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::VariantNames)]
pub enum ResourceEvent {
    ResourceRegistered {
        identifier: ResourceId,
        settings: ResourceSettings,
    },
    ResourceUpdated {
        settings: ResourceSettings,
    },
    ResourceDeleted {},
}

impl cqrs_es::DomainEvent for ResourceEvent {
    fn event_type(&self) -> String {
        match self {
            ResourceEvent::ResourceRegistered { .. } => "ResourceRegistered",
            ResourceEvent::ResourceUpdated { .. } => "ResourceUpdated",
            ResourceEvent::ResourceDeleted {} => "ResourceDeleted",
        }
        .to_owned()
    }
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl cqrs_es::Aggregate for Resource {
    const TYPE: &'static str = "Resource";
    type Command = ResourceCommand;
    type Event = ResourceEvent;
    type Error = ResourceError;
    type Services = Services;

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            ResourceCommand::Register {
                identifier,
                settings,
            } => {
                if self.registered.is_some() {
                    return Err(ResourceError::AlreadyExists);
                }
                settings.check()?;
                ResourceEvent::ResourceRegistered {
                    identifier,
                    settings,
                }
            }
            ResourceCommand::Update(settings) => {
                let current = self.registered.as_ref().ok_or(ResourceError::NotFound)?;
                settings.check()?;
                if current.settings == settings {
                    return Ok(());
                }
                ResourceEvent::ResourceUpdated { settings }
            }
            ResourceCommand::Delete => {
                self.registered.as_ref().ok_or(ResourceError::NotFound)?;
                ResourceEvent::ResourceDeleted {}
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ResourceEvent::ResourceRegistered {
                identifier,
                settings,
            } => {
                self.registered = Some(RegisteredResource {
                    identifier,
                    settings,
                })
            }
            ResourceEvent::ResourceUpdated { settings } => {
                if let Some(resource) = self.registered.as_mut() {
                    resource.settings = settings;
                }
            }
            ResourceEvent::ResourceDeleted {} => self.registered = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::services;
    use cqrs_es::test::TestFramework;

    fn api() -> ResourceId {
        ResourceId::parse("https://api.example/mcp").unwrap()
    }

    fn settings(name: &str) -> ResourceSettings {
        ResourceSettings {
            name: name.into(),
            scopes: Scopes::parse("mcp:read mcp:write").unwrap(),
            token_format: TokenFormat::Jwt,
            access_token_ttl: Some(600),
            allowed_clients: vec![],
            introspecting_clients: vec![],
            signing_alg: None,
        }
    }

    #[test]
    fn identifiers_are_absolute_uris_without_fragments() {
        assert!(ResourceId::parse("https://api.example/mcp").is_ok());
        assert!(ResourceId::parse("urn:example:api").is_ok());
        assert_eq!(
            ResourceId::parse("/mcp"),
            Err(ResourceIdRejected::NotAbsolute)
        );
        assert_eq!(
            ResourceId::parse("https://api.example/#x"),
            Err(ResourceIdRejected::HasFragment)
        );
        assert_eq!(
            ResourceId::parse("https://api.example/a b"),
            Err(ResourceIdRejected::Malformed)
        );
    }

    #[test]
    fn a_resource_is_registered_once_updated_and_deleted() {
        let registered = ResourceEvent::ResourceRegistered {
            identifier: api(),
            settings: settings("MCP"),
        };
        TestFramework::<Resource>::with(services())
            .given_no_previous_events()
            .when(ResourceCommand::Register {
                identifier: api(),
                settings: settings("MCP"),
            })
            .then_expect_events(vec![registered.clone()]);
        TestFramework::<Resource>::with(services())
            .given(vec![registered.clone()])
            .when(ResourceCommand::Register {
                identifier: api(),
                settings: settings("MCP"),
            })
            .then_expect_error(ResourceError::AlreadyExists);
        TestFramework::<Resource>::with(services())
            .given(vec![registered.clone()])
            .when(ResourceCommand::Update(settings("MCP")))
            .then_expect_events(vec![]);
        TestFramework::<Resource>::with(services())
            .given(vec![registered])
            .when(ResourceCommand::Delete)
            .then_expect_events(vec![ResourceEvent::ResourceDeleted {}]);
        TestFramework::<Resource>::with(services())
            .given_no_previous_events()
            .when(ResourceCommand::Update(settings("MCP")))
            .then_expect_error(ResourceError::NotFound);
    }

    #[test]
    fn names_and_lifetimes_are_checked_where_they_enter() {
        let mut bad = settings("");
        assert!(matches!(
            bad.check(),
            Err(ResourceError::Invalid { field: "name", .. })
        ));
        bad = settings("MCP\u{7}");
        assert!(bad.check().is_err());
        bad = ResourceSettings {
            access_token_ttl: Some(0),
            ..settings("MCP")
        };
        assert!(matches!(
            bad.check(),
            Err(ResourceError::Invalid {
                field: "access_token_ttl",
                ..
            })
        ));
        let only_one = ResourceSettings {
            allowed_clients: vec!["tv".into()],
            ..settings("MCP")
        };
        assert!(only_one.allows("tv") && !only_one.allows("web"));
        let hs256 = ResourceSettings {
            signing_alg: Some(IdTokenAlg::HS256),
            ..settings("MCP")
        };
        assert!(matches!(
            hs256.check(),
            Err(ResourceError::Invalid {
                field: "signing_alg",
                ..
            })
        ));
        assert!(settings("MCP").allows("anyone"));
    }
}
