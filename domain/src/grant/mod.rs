//! The `Grant` aggregate: one authorization, and the family of tokens that descends from it
//! (RFC 6749 §1.3, §10.4; RFC 9700 §4.14).
//!
//! Everything that decides whether a code or a refresh token may be used lives here, decided
//! from the grant's own events, never from a view: a code is used once, a refresh token is
//! used once, and the second use of either revokes the whole family. Codes and tokens are
//! minted outside (the server embeds the grant id in them, so the token endpoint finds the
//! aggregate without a lookup); only their SHA-256 hashes come in.

mod command;
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
    Actor, Exchange, ExchangePolicy, ExchangeRefused, SubjectToken, TokenType, MAX_ACTORS,
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

impl Grant {
    fn decide(
        &self,
        command: GrantCommand,
        now: DateTime<Utc>,
    ) -> Result<Vec<GrantEvent>, GrantError> {
        match command {
            GrantCommand::IssueCode(issue) => {
                if self.state.is_some() {
                    return Err(GrantError::AlreadyExists);
                }
                Ok(vec![GrantEvent::CodeIssued {
                    client_id: issue.client_id,
                    user: issue.user,
                    scopes: issue.scopes,
                    redirect_uri: issue.redirect_uri,
                    redirect_uri_explicit: issue.redirect_uri_explicit,
                    code_challenge: issue.challenge,
                    nonce: issue.nonce,
                    auth_time: issue.auth_time,
                    session: issue.session,
                    amr: issue.amr,
                    code_hash: issue.code_hash,
                    expires_at: issue.expires_at,
                    resources: issue.resources,
                }])
            }
            GrantCommand::IssueTokens {
                grant_type,
                client_id,
                user,
                scopes,
                auth_time,
                tokens,
            } => {
                if self.state.is_some() {
                    return Err(GrantError::AlreadyExists);
                }
                Ok(vec![
                    tokens.issued(grant_type, client_id, user, scopes, auth_time)
                ])
            }
            GrantCommand::Exchange {
                client_id,
                user,
                scopes,
                auth_time,
                exchange,
                tokens,
            } => {
                if self.state.is_some() {
                    return Err(GrantError::AlreadyExists);
                }
                // RFC 8693 §2.2.1 allows a refresh token; this server issues none, so an
                // exchanged token never outlives its source by more than its own lifetime.
                if tokens.refresh.is_some() {
                    return Err(GrantError::InvalidGrant(
                        "a token exchange issues no refresh token",
                    ));
                }
                let mut issued =
                    tokens.issued(GrantType::TokenExchange, client_id, user, scopes, auth_time);
                if let GrantEvent::TokensIssued { exchange: e, .. } = &mut issued {
                    *e = Some(exchange);
                }
                Ok(vec![issued])
            }
            GrantCommand::RedeemCode {
                client_id,
                code_hash,
                redirect_uri,
                code_verifier,
                tokens,
            } => self.redeem_code(
                client_id,
                code_hash,
                redirect_uri,
                code_verifier,
                tokens,
                now,
            ),
            GrantCommand::Refresh {
                client_id,
                refresh_token_hash,
                scopes,
                tokens,
            } => self.refresh(client_id, refresh_token_hash, scopes, tokens, now),
            GrantCommand::RevokeToken {
                client_id,
                token_hash,
            } => Ok(self.revoke_token(&client_id, token_hash)),
            GrantCommand::StartDeviceAuthorization(request) => {
                self.start_device_authorization(request)
            }
            GrantCommand::DecideDevice {
                user_code_hash,
                decision,
            } => self.decide_device(user_code_hash, decision, now),
            GrantCommand::RedeemDeviceCode {
                client_id,
                device_code_hash,
                tokens,
            } => self.redeem_device_code(client_id, device_code_hash, tokens, now),
            GrantCommand::RevokeGrant { reason } => match &self.state {
                None => Err(GrantError::NotFound),
                Some(state) if state.revoked.is_some() => Ok(vec![]),
                Some(_) => Ok(vec![GrantEvent::GrantRevoked { reason }]),
            },
        }
    }

    /// RFC 6749 §4.1.3 and RFC 7636 §4.6. A second presentation of a redeemed code is not an
    /// error *of the command*: it is recorded, with the revocation of everything the code
    /// produced (RFC 6749 §4.1.2), and the caller answers `invalid_grant` on seeing
    /// `CodeReplayDetected` among the committed events.
    fn redeem_code(
        &self,
        client_id: String,
        code_hash: SecretHash,
        redirect_uri: Option<String>,
        code_verifier: Option<crate::pkce::CodeVerifier>,
        tokens: NewTokens,
        now: DateTime<Utc>,
    ) -> Result<Vec<GrantEvent>, GrantError> {
        let invalid = GrantError::InvalidGrant;
        let state = self
            .state
            .as_ref()
            .ok_or(invalid("authorization code is invalid"))?;
        let code = state
            .code
            .as_ref()
            .filter(|code| code.hash.matches(&code_hash))
            .ok_or(invalid("authorization code is invalid"))?;
        if state.client_id != client_id {
            return Err(invalid("authorization code was issued to another client"));
        }
        if code.redeemed {
            let mut events = vec![GrantEvent::CodeReplayDetected { code_hash }];
            if state.revoked.is_none() {
                events.push(GrantEvent::GrantRevoked {
                    reason: RevocationReason::CodeReplay,
                });
            }
            return Ok(events);
        }
        if state.revoked.is_some() {
            return Err(invalid("the grant has been revoked"));
        }
        if now >= code.expires_at {
            return Err(invalid("authorization code has expired"));
        }
        match (&redirect_uri, code.redirect_uri_explicit) {
            (None, true) => {
                return Err(invalid(
                    "redirect_uri is required: the authorization request included it",
                ))
            }
            (Some(uri), _) if *uri != code.redirect_uri => {
                return Err(invalid(
                    "redirect_uri differs from the one in the authorization request",
                ))
            }
            _ => {}
        }
        match (&code.challenge, &code_verifier) {
            (Some(_), None) => return Err(invalid("code_verifier is required (PKCE)")),
            (Some(challenge), Some(verifier)) if !challenge.is_satisfied_by(verifier) => {
                return Err(invalid("code_verifier does not match the code_challenge"))
            }
            // RFC 9700 §2.1.1: a verifier without a challenge is a PKCE downgrade attempt.
            (None, Some(_)) => {
                return Err(invalid(
                    "code_verifier sent, but the authorization request had no code_challenge",
                ))
            }
            _ => {}
        }
        if !state.covers(&tokens.audience) {
            return Err(GrantError::InvalidTarget);
        }
        Ok(vec![
            GrantEvent::CodeRedeemed { code_hash },
            tokens.issued(
                GrantType::AuthorizationCode,
                state.client_id.clone(),
                state.user.clone(),
                state.scopes.clone(),
                state.auth_time,
            ),
        ])
    }

    fn revoke_token(&self, client_id: &str, token_hash: SecretHash) -> Vec<GrantEvent> {
        let Some(state) = &self.state else {
            return vec![];
        };
        if state.client_id != client_id || state.revoked.is_some() {
            return vec![];
        }
        let is_refresh = state
            .refresh_token
            .as_ref()
            .is_some_and(|t| t.hash.matches(&token_hash))
            || state
                .rotated_refresh_tokens
                .iter()
                .any(|h| h.matches(&token_hash));
        if is_refresh {
            return vec![GrantEvent::GrantRevoked {
                reason: RevocationReason::ClientRequest,
            }];
        }
        let live_access = state
            .access_tokens
            .iter()
            .any(|t| t.hash.matches(&token_hash) && !t.revoked);
        if live_access {
            vec![GrantEvent::TokenRevoked { token_hash }]
        } else {
            vec![]
        }
    }

    /// RFC 6749 §6 with rotation (RFC 9700 §4.14.2): each use returns a new refresh token and
    /// retires the old one; presenting a retired one revokes the family.
    fn refresh(
        &self,
        client_id: String,
        refresh_token_hash: SecretHash,
        scopes: Option<Scopes>,
        tokens: NewTokens,
        now: DateTime<Utc>,
    ) -> Result<Vec<GrantEvent>, GrantError> {
        let invalid = GrantError::InvalidGrant;
        let state = self
            .state
            .as_ref()
            .ok_or(invalid("refresh token is invalid"))?;
        if state.client_id != client_id {
            return Err(invalid("refresh token was issued to another client"));
        }
        if state
            .rotated_refresh_tokens
            .iter()
            .any(|h| h.matches(&refresh_token_hash))
        {
            let mut events = vec![GrantEvent::RefreshReplayDetected { refresh_token_hash }];
            if state.revoked.is_none() {
                events.push(GrantEvent::GrantRevoked {
                    reason: RevocationReason::RefreshReplay,
                });
            }
            return Ok(events);
        }
        let current = state
            .refresh_token
            .as_ref()
            .filter(|t| t.hash.matches(&refresh_token_hash))
            .ok_or(invalid("refresh token is invalid"))?;
        if state.revoked.is_some() {
            return Err(invalid("the grant has been revoked"));
        }
        if now >= current.expires_at {
            return Err(invalid("refresh token has expired"));
        }
        let scopes = match scopes {
            Some(narrower) if !narrower.is_subset_of(&state.scopes) => {
                return Err(GrantError::InvalidScope)
            }
            Some(narrower) if !narrower.is_empty() => narrower,
            _ => state.scopes.clone(),
        };
        if !state.covers(&tokens.audience) {
            return Err(GrantError::InvalidTarget);
        }
        let refresh = tokens
            .refresh
            .ok_or(invalid("refreshing must issue a new refresh token"))?;
        Ok(vec![GrantEvent::TokensRefreshed {
            previous_refresh_token_hash: refresh_token_hash,
            scopes,
            access_token_hash: tokens.access_token_hash,
            access_expires_at: tokens.access_expires_at,
            refresh_token_hash: refresh.hash,
            refresh_expires_at: refresh.expires_at,
            audience: tokens.audience,
        }])
    }
}
