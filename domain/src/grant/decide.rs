//! How a grant decides each command, from its own state: codes and refresh tokens used once,
//! their second use revoking the family (RFC 6749 §4.1.2, §10.4; RFC 9700 §4.14.2), scopes
//! and resources that only narrow, and what the device and exchange grants add.

use chrono::{DateTime, Utc};

use super::{Grant, GrantCommand, GrantError, GrantEvent, NewTokens, RevocationReason};
use crate::oauth::{GrantType, Scopes};
use crate::secret::SecretHash;

impl Grant {
    pub(super) fn decide(
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
