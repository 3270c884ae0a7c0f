use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::exchange::Exchange;
use crate::oauth::{GrantType, Scopes};
use crate::pkce::CodeChallenge;
use crate::resource::ResourceId;
use crate::secret::SecretHash;
use crate::user::Username;

/// Why a whole token family died.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    /// An authorization code was presented a second time (RFC 6749 §4.1.2).
    CodeReplay,
    /// A rotated refresh token was presented again (RFC 9700 §4.14.2).
    RefreshReplay,
    /// The client revoked it (RFC 7009).
    ClientRequest,
    /// An operator revoked it.
    Admin,
    /// The person withdrew their consent.
    ConsentRevoked,
    /// The client's secret was rotated with `--revoke-tokens`.
    SecretRotated,
    /// The grant it was exchanged from (RFC 8693) was revoked.
    SourceRevoked,
}

/// What happened to a grant. Codes and tokens appear only as SHA-256 hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::VariantNames)]
pub enum GrantEvent {
    CodeIssued {
        client_id: String,
        user: Username,
        scopes: Scopes,
        redirect_uri: String,
        redirect_uri_explicit: bool,
        code_challenge: Option<CodeChallenge>,
        nonce: Option<String>,
        auth_time: DateTime<Utc>,
        /// The sign-in session's id hash (absent in events written before sessions had ids).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<SecretHash>,
        /// How the person signed in (absent before two-factor sign-in existed).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        amr: Vec<String>,
        code_hash: SecretHash,
        expires_at: DateTime<Utc>,
        /// The resources authorized (RFC 8707); absent when none was named.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        resources: Vec<ResourceId>,
    },
    CodeRedeemed {
        code_hash: SecretHash,
    },
    /// Self-contained (client, user, scopes), so a token index needs no other event.
    TokensIssued {
        grant_type: GrantType,
        client_id: String,
        user: Option<Username>,
        scopes: Scopes,
        auth_time: Option<DateTime<Utc>>,
        access_token_hash: SecretHash,
        access_expires_at: DateTime<Utc>,
        refresh_token_hash: Option<SecretHash>,
        refresh_expires_at: Option<DateTime<Utc>>,
        /// The access token's audience (RFC 8707); absent when unrestricted.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        audience: Vec<ResourceId>,
        /// A token exchange's source and actors (RFC 8693); absent for every other grant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exchange: Option<Exchange>,
    },
    TokensRefreshed {
        previous_refresh_token_hash: SecretHash,
        scopes: Scopes,
        access_token_hash: SecretHash,
        access_expires_at: DateTime<Utc>,
        refresh_token_hash: SecretHash,
        refresh_expires_at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        audience: Vec<ResourceId>,
    },
    CodeReplayDetected {
        code_hash: SecretHash,
    },
    RefreshReplayDetected {
        refresh_token_hash: SecretHash,
    },
    TokenRevoked {
        token_hash: SecretHash,
    },
    GrantRevoked {
        reason: RevocationReason,
    },
    /// RFC 8628 §3.1, §3.2. The codes appear as hashes only.
    DeviceAuthorizationStarted {
        client_id: String,
        scopes: Scopes,
        device_code_hash: SecretHash,
        user_code_hash: SecretHash,
        expires_at: DateTime<Utc>,
        interval: u32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        resources: Vec<ResourceId>,
    },
    /// The person who approved the device: the grant's user from now on. Names the client
    /// and scopes again, so a view needs no earlier event to show the grant.
    DeviceAuthorizationApproved {
        client_id: String,
        scopes: Scopes,
        user: Username,
        auth_time: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        amr: Vec<String>,
    },
    DeviceAuthorizationDenied {
        user: Username,
    },
    DeviceCodeRedeemed {
        device_code_hash: SecretHash,
    },
}

impl cqrs_es::DomainEvent for GrantEvent {
    fn event_type(&self) -> String {
        match self {
            GrantEvent::CodeIssued { .. } => "CodeIssued",
            GrantEvent::CodeRedeemed { .. } => "CodeRedeemed",
            GrantEvent::TokensIssued { .. } => "TokensIssued",
            GrantEvent::TokensRefreshed { .. } => "TokensRefreshed",
            GrantEvent::CodeReplayDetected { .. } => "CodeReplayDetected",
            GrantEvent::RefreshReplayDetected { .. } => "RefreshReplayDetected",
            GrantEvent::TokenRevoked { .. } => "TokenRevoked",
            GrantEvent::GrantRevoked { .. } => "GrantRevoked",
            GrantEvent::DeviceAuthorizationStarted { .. } => "DeviceAuthorizationStarted",
            GrantEvent::DeviceAuthorizationApproved { .. } => "DeviceAuthorizationApproved",
            GrantEvent::DeviceAuthorizationDenied { .. } => "DeviceAuthorizationDenied",
            GrantEvent::DeviceCodeRedeemed { .. } => "DeviceCodeRedeemed",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
