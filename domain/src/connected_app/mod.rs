//! authledger as a client of another provider (Frappe's "Connected App").
//!
//! - [`ConnectedApp`]: the provider's endpoints, the client id authledger is registered
//!   there under, the scopes it asks for. Its id is the slug of its name ([`AppId`]), so its
//!   callback (`/connected-apps/{id}/callback`) is known before it is created. The client
//!   secret is sealed under the master key outside the log; its events carry a SHA-256 of it,
//!   enough to tell that it changed.
//! - [`connection::AppConnection`]: one person's tokens from that provider (or the app's own,
//!   obtained with client credentials). The tokens themselves live sealed in the token cache;
//!   the events say that tokens were obtained, refreshed, lost or given up, with their scopes,
//!   expiry and hashes.

pub mod connection;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::oauth::{Scopes, WebUrl};
use crate::secret::SecretHash;
use crate::services::Services;
use crate::text::{self, TextRejected, MAX_LINE_CHARS};

/// A connected app's (or social login provider's) id: the slug of its name, as Frappe
/// makes it: lowercase ASCII letters and digits, runs of anything else as one dash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppIdRejected {
    #[error("the name must contain a letter or a digit")]
    Empty,
    #[error("an id is at most 64 lowercase letters, digits and dashes")]
    Shape,
}

impl AppId {
    pub const MAX_CHARS: usize = 64;

    /// The slug of a name: "Google Drive (work)" is `google-drive-work`.
    pub fn slug(name: &str) -> Result<Self, AppIdRejected> {
        let mut slug = String::new();
        for c in name.chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c.to_ascii_lowercase());
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        let slug = slug.trim_end_matches('-');
        if slug.is_empty() {
            return Err(AppIdRejected::Empty);
        }
        AppId::parse(slug)
    }

    /// An id as given back (in a path or on the command line).
    pub fn parse(raw: &str) -> Result<Self, AppIdRejected> {
        let shaped = (1..=Self::MAX_CHARS).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-')
            && !raw.ends_with('-');
        if shaped {
            Ok(AppId(raw.to_owned()))
        } else {
            Err(AppIdRejected::Shape)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AppId {
    type Error = AppIdRejected;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        AppId::parse(&value)
    }
}

impl From<AppId> for String {
    fn from(value: AppId) -> Self {
        value.0
    }
}

/// Where the provider's endpoints are: from its discovery document or typed by hand. These
/// are the only URLs authledger calls for the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderEndpoints {
    pub authorization: WebUrl,
    pub token: WebUrl,
    #[serde(default)]
    pub revocation: Option<WebUrl>,
    #[serde(default)]
    pub userinfo: Option<WebUrl>,
    #[serde(default)]
    pub introspection: Option<WebUrl>,
    /// An OpenID provider's issuer and keys: ID tokens are verified against them.
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub jwks: Option<WebUrl>,
}

/// Everything about a connected app but its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectedAppConfig {
    pub name: String,
    /// The discovery document the endpoints came from, if they did.
    #[serde(default)]
    pub openid_configuration: Option<WebUrl>,
    pub endpoints: ProviderEndpoints,
    /// The client id authledger is registered under at the provider.
    pub client_id: String,
    pub scopes: Scopes,
    /// Extra query parameters of the authorization request (`access_type=offline`).
    #[serde(default)]
    pub extra_params: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigRejected {
    #[error("name: {0}")]
    Name(TextRejected),
    #[error("client id: {0}")]
    ClientId(TextRejected),
    #[error("the client id must not be empty")]
    NoClientId,
    #[error("extra parameter `{0}`: {1}")]
    Param(String, TextRejected),
    #[error("extra parameter `{0}` is one authledger sets itself")]
    ReservedParam(String),
    #[error("issuer: {0}")]
    Issuer(TextRejected),
    #[error("only an OpenID provider (with an issuer and a key set) can be trusted for token exchange: its tokens are checked against its keys")]
    ExchangeNeedsKeys,
}

/// Parameters of the authorization request authledger sets itself; an extra parameter may
/// not replace them (a `redirect_uri` or `state` of the operator's would break the flow).
const RESERVED_PARAMS: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
];

impl ConnectedAppConfig {
    /// Checks the free text: the log keeps it for good.
    pub fn check(&self) -> Result<(), ConfigRejected> {
        text::check(&self.name, MAX_LINE_CHARS).map_err(ConfigRejected::Name)?;
        if self.client_id.trim().is_empty() {
            return Err(ConfigRejected::NoClientId);
        }
        text::check(&self.client_id, MAX_LINE_CHARS).map_err(ConfigRejected::ClientId)?;
        if let Some(issuer) = &self.endpoints.issuer {
            text::check(issuer, text::MAX_URI_CHARS).map_err(ConfigRejected::Issuer)?;
        }
        for (name, value) in &self.extra_params {
            if RESERVED_PARAMS.contains(&name.as_str()) {
                return Err(ConfigRejected::ReservedParam(name.clone()));
            }
            text::check(name, 100).map_err(|e| ConfigRejected::Param(name.clone(), e))?;
            text::check(value, MAX_LINE_CHARS)
                .map_err(|e| ConfigRejected::Param(name.clone(), e))?;
        }
        Ok(())
    }
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectedApp {
    app: Option<RegisteredApp>,
    deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredApp {
    pub id: AppId,
    pub config: ConnectedAppConfig,
    pub client_secret: SecretHash,
}

impl ConnectedApp {
    /// The app, unless it was never created or was deleted.
    pub fn registered(&self) -> Option<&RegisteredApp> {
        self.app.as_ref().filter(|_| !self.deleted)
    }

    fn existing(&self) -> Result<&RegisteredApp, ConnectedAppError> {
        self.registered().ok_or(ConnectedAppError::NotFound)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConnectedAppCommand {
    Create {
        id: AppId,
        config: ConnectedAppConfig,
        client_secret: SecretHash,
    },
    Update {
        config: ConnectedAppConfig,
    },
    ChangeSecret {
        client_secret: SecretHash,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::VariantNames)]
pub enum ConnectedAppEvent {
    ConnectedAppCreated {
        id: AppId,
        config: ConnectedAppConfig,
        /// SHA-256 of the secret sealed in the vault.
        client_secret: SecretHash,
    },
    ConnectedAppUpdated {
        config: ConnectedAppConfig,
    },
    ConnectedAppSecretChanged {
        client_secret: SecretHash,
    },
    ConnectedAppDeleted,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectedAppError {
    #[error("a connected app with this id exists (or existed: ids are not reused)")]
    Exists,
    #[error("no such connected app")]
    NotFound,
    #[error(transparent)]
    Config(#[from] ConfigRejected),
}

impl cqrs_es::DomainEvent for ConnectedAppEvent {
    fn event_type(&self) -> String {
        match self {
            ConnectedAppEvent::ConnectedAppCreated { .. } => "ConnectedAppCreated",
            ConnectedAppEvent::ConnectedAppUpdated { .. } => "ConnectedAppUpdated",
            ConnectedAppEvent::ConnectedAppSecretChanged { .. } => "ConnectedAppSecretChanged",
            ConnectedAppEvent::ConnectedAppDeleted => "ConnectedAppDeleted",
        }
        .to_owned()
    }
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl cqrs_es::Aggregate for ConnectedApp {
    const TYPE: &'static str = "ConnectedApp";
    type Command = ConnectedAppCommand;
    type Event = ConnectedAppEvent;
    type Error = ConnectedAppError;
    type Services = Services;

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            ConnectedAppCommand::Create {
                id,
                config,
                client_secret,
            } => {
                if self.app.is_some() {
                    return Err(ConnectedAppError::Exists);
                }
                config.check()?;
                ConnectedAppEvent::ConnectedAppCreated {
                    id,
                    config,
                    client_secret,
                }
            }
            ConnectedAppCommand::Update { config } => {
                if self.existing()?.config == config {
                    return Ok(());
                }
                config.check()?;
                ConnectedAppEvent::ConnectedAppUpdated { config }
            }
            ConnectedAppCommand::ChangeSecret { client_secret } => {
                if self.existing()?.client_secret.matches(&client_secret) {
                    return Ok(());
                }
                ConnectedAppEvent::ConnectedAppSecretChanged { client_secret }
            }
            ConnectedAppCommand::Delete => {
                self.existing()?;
                ConnectedAppEvent::ConnectedAppDeleted
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ConnectedAppEvent::ConnectedAppCreated {
                id,
                config,
                client_secret,
            } => {
                self.app = Some(RegisteredApp {
                    id,
                    config,
                    client_secret,
                })
            }
            ConnectedAppEvent::ConnectedAppUpdated { config } => {
                if let Some(app) = &mut self.app {
                    app.config = config;
                }
            }
            ConnectedAppEvent::ConnectedAppSecretChanged { client_secret } => {
                if let Some(app) = &mut self.app {
                    app.client_secret = client_secret;
                }
            }
            ConnectedAppEvent::ConnectedAppDeleted => self.deleted = true,
        }
    }
}
