//! The device authorization grant (RFC 8628) on a `Grant`: started by the device, approved or
//! denied by a person who signed in elsewhere, redeemed once by the device's polling.
//!
//! Polls that find the grant still pending, denied or expired are answered from the grant's
//! state and record nothing (RFC 8628 §3.5's `authorization_pending`, `access_denied`,
//! `expired_token`): a device polling every five seconds for ten minutes must not write 120
//! events. The ledger holds the steps that matter: who started it, who approved or denied it,
//! and the tokens issued.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Grant, GrantError, GrantEvent, NewTokens};
use crate::oauth::{GrantType, Scopes};
use crate::resource::ResourceId;
use crate::secret::SecretHash;
use crate::user::Username;

/// A device authorization request about to be answered (RFC 8628 §3.1, §3.2).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceAuthorization {
    pub client_id: String,
    pub scopes: Scopes,
    pub device_code_hash: SecretHash,
    pub user_code_hash: SecretHash,
    pub expires_at: DateTime<Utc>,
    /// Seconds the device is told to wait between polls.
    pub interval: u32,
    /// The resources asked for (RFC 8707).
    pub resources: Vec<ResourceId>,
}

/// What the person decided on the `/device` page.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceDecision {
    Approve {
        user: Username,
        auth_time: DateTime<Utc>,
        /// How the person signed in (RFC 8176), for the ID token's `amr`.
        amr: Vec<String>,
    },
    Deny {
        user: Username,
    },
}

/// Where a device grant stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceState {
    pub device_code_hash: SecretHash,
    pub user_code_hash: SecretHash,
    pub expires_at: DateTime<Utc>,
    pub interval: u32,
    pub status: DeviceStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    Pending,
    Approved,
    Denied,
    /// Approved, and the device has its tokens.
    Redeemed,
}

impl DeviceState {
    /// Whether a person may still approve or deny it at `now`.
    pub fn awaits_decision(&self, now: DateTime<Utc>) -> bool {
        self.status == DeviceStatus::Pending && now < self.expires_at
    }
}

impl Grant {
    pub(super) fn start_device_authorization(
        &self,
        request: DeviceAuthorization,
    ) -> Result<Vec<GrantEvent>, GrantError> {
        if self.state.is_some() {
            return Err(GrantError::AlreadyExists);
        }
        Ok(vec![GrantEvent::DeviceAuthorizationStarted {
            client_id: request.client_id,
            scopes: request.scopes,
            device_code_hash: request.device_code_hash,
            user_code_hash: request.user_code_hash,
            expires_at: request.expires_at,
            interval: request.interval,
            resources: request.resources,
        }])
    }

    /// RFC 8628 §3.3: the person who typed the user code allows or denies the device.
    pub(super) fn decide_device(
        &self,
        user_code_hash: SecretHash,
        decision: DeviceDecision,
        now: DateTime<Utc>,
    ) -> Result<Vec<GrantEvent>, GrantError> {
        let invalid = GrantError::InvalidGrant;
        let state = self
            .state
            .as_ref()
            .ok_or(invalid("the code is not valid"))?;
        let device = state
            .device
            .as_ref()
            .filter(|d| d.user_code_hash.matches(&user_code_hash))
            .ok_or(invalid("the code is not valid"))?;
        if state.revoked.is_some() {
            return Err(invalid("the request was revoked"));
        }
        if device.status != DeviceStatus::Pending {
            return Err(invalid("the code was already used"));
        }
        if now >= device.expires_at {
            return Err(invalid("the code has expired"));
        }
        Ok(vec![match decision {
            DeviceDecision::Approve {
                user,
                auth_time,
                amr,
            } => GrantEvent::DeviceAuthorizationApproved {
                client_id: state.client_id.clone(),
                scopes: state.scopes.clone(),
                user,
                auth_time,
                amr,
            },
            DeviceDecision::Deny { user } => GrantEvent::DeviceAuthorizationDenied { user },
        }])
    }

    /// RFC 8628 §3.4, §3.5: a poll of the token endpoint with the device code.
    pub(super) fn redeem_device_code(
        &self,
        client_id: String,
        device_code_hash: SecretHash,
        tokens: NewTokens,
        now: DateTime<Utc>,
    ) -> Result<Vec<GrantEvent>, GrantError> {
        let invalid = GrantError::InvalidGrant;
        let state = self
            .state
            .as_ref()
            .ok_or(invalid("device code is invalid"))?;
        let device = state
            .device
            .as_ref()
            .filter(|d| d.device_code_hash.matches(&device_code_hash))
            .ok_or(invalid("device code is invalid"))?;
        if state.client_id != client_id {
            return Err(invalid("device code was issued to another client"));
        }
        if state.revoked.is_some() {
            return Err(invalid("the grant has been revoked"));
        }
        match device.status {
            DeviceStatus::Redeemed => Err(invalid("device code was already used")),
            DeviceStatus::Denied => Err(GrantError::AccessDenied),
            _ if now >= device.expires_at => Err(GrantError::ExpiredToken),
            DeviceStatus::Pending => Err(GrantError::AuthorizationPending),
            DeviceStatus::Approved if !state.covers(&tokens.audience) => {
                Err(GrantError::InvalidTarget)
            }
            DeviceStatus::Approved => Ok(vec![
                GrantEvent::DeviceCodeRedeemed { device_code_hash },
                tokens.issued(
                    GrantType::DeviceCode,
                    state.client_id.clone(),
                    state.user.clone(),
                    state.scopes.clone(),
                    state.auth_time,
                ),
            ]),
        }
    }
}
