//! The `Grant` aggregate: one authorization, and the family of tokens that descends from it
//! (RFC 6749 §1.3, §10.4; RFC 9700 §4.14).
//!
//! Everything that decides whether a code or a refresh token may be used lives here, decided
//! from the grant's own events, never from a view: a code is used once, a refresh token is
//! used once, and the second use of either revokes the whole family. Codes and tokens are
//! minted outside (the server embeds the grant id in them, so the token endpoint finds the
//! aggregate without a lookup); only their SHA-256 hashes come in.

mod command;
mod decide;
mod device;
mod error;
mod event;
mod exchange;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use command::{CodeIssue, GrantCommand, NewRefreshToken, NewTokens};
pub use device::{DeviceAuthorization, DeviceDecision, DeviceState, DeviceStatus};
pub use error::GrantError;
pub use event::{GrantEvent, RevocationReason};
pub use exchange::{
    Actor, Exchange, ExchangePolicy, ExchangeRefused, ExternalSubject, Source, SubjectToken,
    TokenType, MAX_ACTORS,
};

use crate::oauth::{GrantType, Scopes};
use crate::pkce::CodeChallenge;
use crate::resource::ResourceId;
use crate::secret::SecretHash;
use crate::services::Services;
use crate::user::Username;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    state: Option<GrantState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantState {
    pub grant_type: GrantType,
    pub client_id: String,
    /// `None` for client credentials: the client acts for itself.
    pub user: Option<Username>,
    /// The scopes the person (or client registration) granted; refreshes may narrow, never
    /// widen, them (RFC 6749 §6).
    pub scopes: Scopes,
    pub auth_time: Option<DateTime<Utc>>,
    /// The sign-in session the grant was made in, if a person's.
    #[serde(default)]
    pub session: Option<SecretHash>,
    /// How the person signed in.
    #[serde(default)]
    pub amr: Vec<String>,
    pub nonce: Option<String>,
    pub code: Option<CodeState>,
    pub access_tokens: Vec<IssuedToken>,
    pub refresh_token: Option<IssuedToken>,
    /// Refresh tokens already rotated away: presenting one again is a replay.
    pub rotated_refresh_tokens: Vec<SecretHash>,
    pub revoked: Option<RevocationReason>,
    /// A device grant's progress (RFC 8628); `None` for every other grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceState>,
    /// The resources the grant covers (RFC 8707): its tokens' audience is among them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceId>,
    /// For a grant made by token exchange (RFC 8693): its source and who acts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<Exchange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeState {
    pub hash: SecretHash,
    pub expires_at: DateTime<Utc>,
    pub redirect_uri: String,
    pub redirect_uri_explicit: bool,
    pub challenge: Option<CodeChallenge>,
    pub redeemed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuedToken {
    pub hash: SecretHash,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
}

impl GrantState {
    /// A grant's first state: nothing issued yet.
    fn new(
        grant_type: GrantType,
        client_id: String,
        user: Option<Username>,
        scopes: Scopes,
    ) -> GrantState {
        GrantState {
            grant_type,
            client_id,
            user,
            scopes,
            auth_time: None,
            session: None,
            amr: vec![],
            nonce: None,
            code: None,
            access_tokens: vec![],
            refresh_token: None,
            rotated_refresh_tokens: vec![],
            revoked: None,
            device: None,
            resources: vec![],
            exchange: None,
        }
    }

    /// Whether every resource of `audience` is one the grant covers (RFC 8707 §2.2: a token
    /// request may narrow the resources authorized, never add to them).
    pub fn covers(&self, audience: &[ResourceId]) -> bool {
        audience.iter().all(|r| self.resources.contains(r))
    }
}

impl Grant {
    pub fn state(&self) -> Option<&GrantState> {
        self.state.as_ref()
    }

    /// Whether the access token with this hash may be used at `now`, as far as the grant
    /// alone can tell (its client and user must also be enabled).
    pub fn access_token_active(&self, hash: &SecretHash, now: DateTime<Utc>) -> bool {
        let Some(state) = &self.state else {
            return false;
        };
        state.revoked.is_none()
            && state
                .access_tokens
                .iter()
                .any(|t| t.hash.matches(hash) && !t.revoked && now < t.expires_at)
    }

    /// Whether the code, access token or refresh token with this hash could be used at
    /// `now`, as far as the grant alone can tell.
    pub fn usable(&self, hash: &SecretHash, now: DateTime<Utc>) -> bool {
        let Some(state) = &self.state else {
            return false;
        };
        let refresh = state
            .refresh_token
            .as_ref()
            .is_some_and(|t| t.hash.matches(hash) && !t.revoked && now < t.expires_at);
        let code = state
            .code
            .as_ref()
            .is_some_and(|c| c.hash.matches(hash) && !c.redeemed && now < c.expires_at);
        self.access_token_active(hash, now) || (state.revoked.is_none() && (refresh || code))
    }
}

impl cqrs_es::Aggregate for Grant {
    const TYPE: &'static str = "Grant";
    type Command = GrantCommand;
    type Event = GrantEvent;
    type Error = GrantError;
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
        match event {
            GrantEvent::CodeIssued {
                client_id,
                user,
                scopes,
                redirect_uri,
                redirect_uri_explicit,
                code_challenge,
                nonce,
                auth_time,
                session,
                amr,
                code_hash,
                expires_at,
                resources,
            } => {
                self.state = Some(GrantState {
                    resources,
                    auth_time: Some(auth_time),
                    session,
                    amr,
                    nonce,
                    code: Some(CodeState {
                        hash: code_hash,
                        expires_at,
                        redirect_uri,
                        redirect_uri_explicit,
                        challenge: code_challenge,
                        redeemed: false,
                    }),
                    ..GrantState::new(GrantType::AuthorizationCode, client_id, Some(user), scopes)
                })
            }
            GrantEvent::TokensIssued {
                grant_type,
                client_id,
                user,
                scopes,
                auth_time,
                access_token_hash,
                access_expires_at,
                refresh_token_hash,
                refresh_expires_at,
                audience,
                exchange,
            } => {
                let state = self.state.get_or_insert_with(|| GrantState {
                    auth_time,
                    resources: audience,
                    exchange,
                    ..GrantState::new(grant_type, client_id, user, scopes)
                });
                state.access_tokens.push(IssuedToken {
                    hash: access_token_hash,
                    expires_at: access_expires_at,
                    revoked: false,
                });
                if let (Some(hash), Some(expires_at)) = (refresh_token_hash, refresh_expires_at) {
                    state.refresh_token = Some(IssuedToken {
                        hash,
                        expires_at,
                        revoked: false,
                    });
                }
            }
            GrantEvent::DeviceAuthorizationStarted {
                client_id,
                scopes,
                device_code_hash,
                user_code_hash,
                expires_at,
                interval,
                resources,
            } => {
                self.state = Some(GrantState {
                    resources,
                    device: Some(DeviceState {
                        device_code_hash,
                        user_code_hash,
                        expires_at,
                        interval,
                        status: DeviceStatus::Pending,
                    }),
                    ..GrantState::new(GrantType::DeviceCode, client_id, None, scopes)
                })
            }
            other => {
                let Some(state) = self.state.as_mut() else {
                    return;
                };
                match other {
                    GrantEvent::CodeIssued { .. } | GrantEvent::TokensIssued { .. } => {}
                    GrantEvent::CodeRedeemed { .. } => {
                        if let Some(code) = state.code.as_mut() {
                            code.redeemed = true;
                        }
                    }
                    GrantEvent::TokensRefreshed {
                        previous_refresh_token_hash,
                        scopes: _,
                        access_token_hash,
                        access_expires_at,
                        refresh_token_hash,
                        refresh_expires_at,
                        audience: _,
                    } => {
                        state
                            .rotated_refresh_tokens
                            .push(previous_refresh_token_hash);
                        state.access_tokens.push(IssuedToken {
                            hash: access_token_hash,
                            expires_at: access_expires_at,
                            revoked: false,
                        });
                        state.refresh_token = Some(IssuedToken {
                            hash: refresh_token_hash,
                            expires_at: refresh_expires_at,
                            revoked: false,
                        });
                    }
                    GrantEvent::CodeReplayDetected { .. }
                    | GrantEvent::RefreshReplayDetected { .. } => {}
                    GrantEvent::TokenRevoked { token_hash } => {
                        for token in state.access_tokens.iter_mut() {
                            if token.hash == token_hash {
                                token.revoked = true;
                            }
                        }
                    }
                    GrantEvent::GrantRevoked { reason } => state.revoked = Some(reason),
                    GrantEvent::DeviceAuthorizationStarted { .. } => {}
                    GrantEvent::DeviceAuthorizationApproved {
                        user,
                        auth_time,
                        amr,
                        ..
                    } => {
                        state.user = Some(user);
                        state.auth_time = Some(auth_time);
                        state.amr = amr;
                        if let Some(device) = state.device.as_mut() {
                            device.status = DeviceStatus::Approved;
                        }
                    }
                    GrantEvent::DeviceAuthorizationDenied { .. } => {
                        if let Some(device) = state.device.as_mut() {
                            device.status = DeviceStatus::Denied;
                        }
                    }
                    GrantEvent::DeviceCodeRedeemed { .. } => {
                        if let Some(device) = state.device.as_mut() {
                            device.status = DeviceStatus::Redeemed;
                        }
                    }
                }
            }
        }
    }
}
