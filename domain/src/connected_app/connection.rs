//! `AppConnection`: the tokens one person (or the app itself) holds from a connected app's
//! provider. Its id is [`connection_id`]`(app, user)`. The token values are sealed in the
//! token cache; these events keep what an audit needs: when tokens were obtained or
//! refreshed, for which scopes, until when, their hashes, and when the connection was lost
//! (the provider refused the refresh token) or given up.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AppId;
use crate::oauth::Scopes;
use crate::secret::SecretHash;
use crate::services::Services;
use crate::user::Username;

/// `{app}:{user}`, or `{app}:` for the app's own (client-credentials) tokens. Neither app
/// ids nor usernames contain `:`.
pub fn connection_id(app: &AppId, user: Option<&Username>) -> String {
    format!("{app}:{}", user.map_or("", |u| u.as_str()))
}

/// Tokens as the provider answered them, by hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderTokens {
    pub scopes: Scopes,
    /// `None` when the provider did not say (`expires_in` is optional).
    pub access_expires_at: Option<DateTime<Utc>>,
    pub access_token_hash: SecretHash,
    pub refresh_token_hash: Option<SecretHash>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Connected,
    /// The provider refused the refresh token: the person must connect again.
    Lost,
    Disconnected,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppConnection {
    state: Option<ConnectionState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionState {
    pub app: AppId,
    pub user: Option<Username>,
    pub status: ConnectionStatus,
    pub tokens: ProviderTokens,
    /// The person's subject at the provider, from its ID token.
    pub subject: Option<String>,
}

impl AppConnection {
    pub fn state(&self) -> Option<&ConnectionState> {
        self.state.as_ref()
    }

    fn connected(&self) -> Result<&ConnectionState, ConnectionError> {
        self.state
            .as_ref()
            .filter(|s| s.status == ConnectionStatus::Connected)
            .ok_or(ConnectionError::NotConnected)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionCommand {
    /// The provider answered a code exchange (or client credentials) with these tokens:
    /// a new connection, or one made again.
    Connect {
        app: AppId,
        user: Option<Username>,
        tokens: ProviderTokens,
        subject: Option<String>,
    },
    /// The provider answered a refresh with these tokens (a refresh token it did not rotate
    /// is kept).
    Refresh { tokens: ProviderTokens },
    /// The provider refused the refresh token (`invalid_grant`).
    Lose { reason: String },
    /// Given up by the person or an admin; `revoked_at_provider` says whether the provider's
    /// revocation endpoint confirmed it.
    Disconnect { revoked_at_provider: bool },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::VariantNames)]
pub enum ConnectionEvent {
    TokensObtained {
        app: AppId,
        user: Option<Username>,
        tokens: ProviderTokens,
        subject: Option<String>,
    },
    #[strum(serialize = "ProviderTokensRefreshed")]
    TokensRefreshed {
        tokens: ProviderTokens,
    },
    ConnectionLost {
        reason: String,
    },
    Disconnected {
        revoked_at_provider: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    #[error("not connected: connect the app (again) first")]
    NotConnected,
}

impl cqrs_es::DomainEvent for ConnectionEvent {
    fn event_type(&self) -> String {
        match self {
            ConnectionEvent::TokensObtained { .. } => "TokensObtained",
            ConnectionEvent::TokensRefreshed { .. } => "ProviderTokensRefreshed",
            ConnectionEvent::ConnectionLost { .. } => "ConnectionLost",
            ConnectionEvent::Disconnected { .. } => "Disconnected",
        }
        .to_owned()
    }
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl cqrs_es::Aggregate for AppConnection {
    const TYPE: &'static str = "AppConnection";
    type Command = ConnectionCommand;
    type Event = ConnectionEvent;
    type Error = ConnectionError;
    type Services = Services;

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            ConnectionCommand::Connect {
                app,
                user,
                tokens,
                subject,
            } => ConnectionEvent::TokensObtained {
                app,
                user,
                tokens,
                subject,
            },
            ConnectionCommand::Refresh { mut tokens } => {
                let current = self.connected()?;
                if tokens.refresh_token_hash.is_none() {
                    tokens.refresh_token_hash = current.tokens.refresh_token_hash.clone();
                }
                ConnectionEvent::TokensRefreshed { tokens }
            }
            ConnectionCommand::Lose { reason } => {
                self.connected()?;
                ConnectionEvent::ConnectionLost {
                    reason: crate::text::check(&reason, crate::text::MAX_LINE_CHARS)
                        .map(|()| reason)
                        .unwrap_or_else(|_| "refused by the provider".to_owned()),
                }
            }
            ConnectionCommand::Disconnect {
                revoked_at_provider,
            } => {
                match &self.state {
                    Some(s) if s.status != ConnectionStatus::Disconnected => {}
                    _ => return Err(ConnectionError::NotConnected),
                }
                ConnectionEvent::Disconnected {
                    revoked_at_provider,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ConnectionEvent::TokensObtained {
                app,
                user,
                tokens,
                subject,
            } => {
                self.state = Some(ConnectionState {
                    app,
                    user,
                    status: ConnectionStatus::Connected,
                    tokens,
                    subject,
                })
            }
            ConnectionEvent::TokensRefreshed { tokens } => {
                if let Some(state) = &mut self.state {
                    state.tokens = tokens;
                }
            }
            ConnectionEvent::ConnectionLost { .. } => {
                if let Some(state) = &mut self.state {
                    state.status = ConnectionStatus::Lost;
                }
            }
            ConnectionEvent::Disconnected { .. } => {
                if let Some(state) = &mut self.state {
                    state.status = ConnectionStatus::Disconnected;
                }
            }
        }
    }
}
