use chrono::{DateTime, Utc};

use super::device::{DeviceAuthorization, DeviceDecision};
use super::event::{GrantEvent, RevocationReason};
use super::exchange::Exchange;
use crate::oauth::{GrantType, Scopes};
use crate::pkce::{CodeChallenge, CodeVerifier};
use crate::resource::ResourceId;
use crate::secret::SecretHash;
use crate::user::Username;

/// An authorization code about to be issued (RFC 6749 §4.1.2): everything the token request
/// will be checked against.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeIssue {
    pub client_id: String,
    pub user: Username,
    pub scopes: Scopes,
    /// The redirect URI the response goes to, exactly as used.
    pub redirect_uri: String,
    /// Whether the request named it (then the token request must repeat it, RFC 6749 §4.1.3).
    pub redirect_uri_explicit: bool,
    pub challenge: Option<CodeChallenge>,
    pub nonce: Option<String>,
    pub auth_time: DateTime<Utc>,
    /// The hash of the sign-in session's id, whose public form is the ID token's `sid`
    /// (OpenID Connect Front- and Back-Channel Logout).
    pub session: Option<SecretHash>,
    /// How the person signed in (RFC 8176: `pwd`, `otp`): the ID token's `amr`.
    pub amr: Vec<String>,
    pub code_hash: SecretHash,
    pub expires_at: DateTime<Utc>,
    /// The resources the person authorized (RFC 8707); the tokens' audience is among them.
    pub resources: Vec<ResourceId>,
}

/// Tokens minted by the caller for this command; only hashes and expiries.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTokens {
    pub access_token_hash: SecretHash,
    pub access_expires_at: DateTime<Utc>,
    pub refresh: Option<NewRefreshToken>,
    /// The resources the access token is for (RFC 8707 `aud`); empty for no restriction.
    pub audience: Vec<ResourceId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewRefreshToken {
    pub hash: SecretHash,
    pub expires_at: DateTime<Utc>,
}

impl NewTokens {
    pub(crate) fn issued(
        self,
        grant_type: GrantType,
        client_id: String,
        user: Option<Username>,
        scopes: Scopes,
        auth_time: Option<DateTime<Utc>>,
    ) -> GrantEvent {
        let (refresh_token_hash, refresh_expires_at) = match self.refresh {
            Some(refresh) => (Some(refresh.hash), Some(refresh.expires_at)),
            None => (None, None),
        };
        GrantEvent::TokensIssued {
            grant_type,
            client_id,
            user,
            scopes,
            auth_time,
            access_token_hash: self.access_token_hash,
            access_expires_at: self.access_expires_at,
            refresh_token_hash,
            refresh_expires_at,
            audience: self.audience,
            exchange: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum GrantCommand {
    IssueCode(CodeIssue),
    /// Client credentials (RFC 6749 §4.4) and implicit (§4.2): tokens straight away.
    IssueTokens {
        grant_type: GrantType,
        client_id: String,
        user: Option<Username>,
        scopes: Scopes,
        auth_time: Option<DateTime<Utc>>,
        tokens: NewTokens,
    },
    /// RFC 8693: tokens for the subject of another token, issued to `client_id`.
    Exchange {
        client_id: String,
        user: Option<Username>,
        scopes: Scopes,
        auth_time: Option<DateTime<Utc>>,
        exchange: Exchange,
        tokens: NewTokens,
    },
    RedeemCode {
        /// The authenticated client making the token request.
        client_id: String,
        code_hash: SecretHash,
        redirect_uri: Option<String>,
        code_verifier: Option<CodeVerifier>,
        tokens: NewTokens,
    },
    Refresh {
        client_id: String,
        refresh_token_hash: SecretHash,
        /// A narrower scope (RFC 6749 §6); `None` keeps the granted one.
        scopes: Option<Scopes>,
        tokens: NewTokens,
    },
    RevokeGrant {
        reason: RevocationReason,
    },
    /// RFC 8628 §3.1: a device asks; the grant waits for a person.
    StartDeviceAuthorization(DeviceAuthorization),
    /// RFC 8628 §3.3: the person who typed the user code decides.
    DecideDevice {
        user_code_hash: SecretHash,
        decision: DeviceDecision,
    },
    /// RFC 8628 §3.4: the device polls with its device code.
    RedeemDeviceCode {
        client_id: String,
        device_code_hash: SecretHash,
        tokens: NewTokens,
    },
    /// RFC 7009 revocation by the client the token was issued to: an access token dies alone,
    /// a refresh token takes its whole family with it. Anything else changes nothing (the
    /// endpoint answers 200 either way, so a caller learns nothing about foreign tokens).
    RevokeToken {
        client_id: String,
        token_hash: SecretHash,
    },
}
