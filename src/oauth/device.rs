//! The device authorization grant (RFC 8628): the device's request (§3.1, §3.2), the person's
//! decision on the `/device` page (§3.3), and the pace of the device's polls (§3.5). The
//! token request itself is one of the token endpoint's grants (`grants.rs`).
//!
//! The device code is `aldc_` + grant id + `.` + 256 random bits, like every code here, so a
//! poll loads its grant directly. The user code is what a person types: short, and found
//! through the `UserCode` aggregate named by its hash (`authledger_domain::device`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration as StdDuration, Instant};

use authledger_domain::client::RegisteredClient;
use authledger_domain::consent::{consent_id, ConsentCommand};
use authledger_domain::device::{UserCode, UserCodeCommand, UserCodeError, USER_CODE_LENGTH};
use authledger_domain::grant::{DeviceAuthorization, DeviceDecision, GrantCommand, GrantError};
use authledger_domain::metadata::EventMetadata;
use authledger_domain::oauth::{GrantType, Scopes};
use authledger_domain::secret::SecretHash;
use chrono::{DateTime, Duration, Utc};
use cqrs_es::AggregateError;
use rand::Rng;
use serde::Serialize;

use super::error::{TokenError, TokenErrorCode};
use super::resources::{Target, TargetRefused};
use super::tokens::{self, GrantId};
use super::Authority;
use crate::error::AppError;
use crate::secrets;

/// Device codes.
pub const DEVICE_CODE_PREFIX: &str = "aldc_";
/// The longest a device code can live (the `device_code_ttl` setting's maximum): paces older
/// than this are forgotten.
const LONGEST_DEVICE_CODE_LIFETIME: StdDuration = StdDuration::from_secs(3600);
/// What `slow_down` adds to the interval (RFC 8628 §3.5).
const SLOW_DOWN_STEP_SECONDS: u32 = 5;
/// Draws of a user code before giving up: a draw collides with a pending code about once in
/// 2.5e10 / (codes pending), so a second draw is already rare.
const USER_CODE_DRAWS: usize = 5;

/// RFC 8628 §3.2. Its `Debug` shows neither code.
#[derive(Serialize)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: u32,
}

impl std::fmt::Debug for DeviceAuthorizationResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorizationResponse")
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// The hash a user code is stored and looked up under.
pub fn user_code_hash(code: &UserCode) -> SecretHash {
    secrets::hash(code.canonical())
}

fn draw_user_code() -> UserCode {
    let mut rng = rand::rngs::OsRng;
    let mut indices = [0u8; USER_CODE_LENGTH];
    for index in indices.iter_mut() {
        *index = rng.gen_range(0..20);
    }
    UserCode::from_indices(indices)
}

/// RFC 8628 §3.1: a device asks for authorization with `scope` (the client's registered
/// scopes when absent).
pub async fn start(
    authority: &Authority,
    client: &RegisteredClient,
    requested: Option<Scopes>,
    resources: &[&str],
    metadata: &EventMetadata,
) -> Result<DeviceAuthorizationResponse, TokenError> {
    if !client.metadata.grant_types.contains(&GrantType::DeviceCode) {
        return Err(TokenError::new(
            TokenErrorCode::UnauthorizedClient,
            format!(
                "the client is not registered for grant_type `{}`",
                GrantType::DeviceCode
            ),
        ));
    }
    let scopes = match requested {
        Some(scopes) if !scopes.is_subset_of(&client.metadata.scopes) => {
            return Err(TokenError::new(
                TokenErrorCode::InvalidScope,
                "the requested scope exceeds the scope registered for the client",
            ))
        }
        Some(scopes) if !scopes.is_empty() => scopes,
        _ => client.metadata.scopes.clone(),
    };
    let target = Target::resolve(authority, &client.client_id, resources)
        .await
        .map_err(|refused| match refused {
            TargetRefused::Invalid(why) => TokenError::new(TokenErrorCode::InvalidTarget, why),
            TargetRefused::Failed(error) => TokenError::from(error),
        })?;
    let settings = authority.store.settings_values().await?;
    let lifetime = i64::from(settings.device_code_ttl);
    let interval = settings.device_poll_interval;
    let grant_id = GrantId::new();
    let expires_at = Utc::now() + Duration::seconds(lifetime);
    let user_code = assign_user_code(authority, &grant_id, expires_at, metadata).await?;
    let device_code = tokens::mint(DEVICE_CODE_PREFIX, &grant_id);
    let request = DeviceAuthorization {
        client_id: client.client_id.clone(),
        scopes,
        device_code_hash: device_code.hash().clone(),
        user_code_hash: user_code_hash(&user_code),
        expires_at,
        interval,
        resources: target.ids(),
    };
    authority
        .store
        .grants
        .create(
            grant_id.as_str(),
            GrantCommand::StartDeviceAuthorization(request),
            metadata,
        )
        .await
        .map_err(|e| TokenError::from(AppError::store(e)))?;
    let verification_uri = format!("{}{}", authority.issuer, crate::http::paths::DEVICE);
    let shown = user_code.display();
    Ok(DeviceAuthorizationResponse {
        device_code: device_code.reveal().to_owned(),
        verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
        verification_uri,
        user_code: shown,
        expires_in: lifetime,
        interval,
    })
}

/// Draws user codes until one is free, and points it at the grant.
async fn assign_user_code(
    authority: &Authority,
    grant_id: &GrantId,
    expires_at: DateTime<Utc>,
    metadata: &EventMetadata,
) -> Result<UserCode, TokenError> {
    for _ in 0..USER_CODE_DRAWS {
        let code = draw_user_code();
        let command = UserCodeCommand::Assign {
            grant_id: grant_id.to_string(),
            expires_at,
        };
        let id = user_code_hash(&code);
        match authority
            .store
            .user_codes
            .execute(id.as_hex(), command, metadata)
            .await
        {
            Ok(_) => return Ok(code),
            Err(AggregateError::UserError(UserCodeError::InUse))
            | Err(AggregateError::AggregateConflict) => continue,
            Err(other) => return Err(TokenError::from(AppError::store(other))),
        }
    }
    Err(TokenError::from(AppError::Internal(anyhow::anyhow!(
        "no free user code after {USER_CODE_DRAWS} draws"
    ))))
}

/// A device request a person is looking at on the `/device` page.
#[derive(Debug)]
pub struct PendingDevice {
    pub grant_id: String,
    pub client: RegisteredClient,
    pub scopes: Scopes,
    pub user_code: UserCode,
    pub expires_at: DateTime<Utc>,
    /// Where the device asked from (its address and user agent, as recorded), so a person
    /// lured into approving someone else's request can notice (RFC 8628 §5.4).
    pub asked_from: Option<String>,
}

/// Why a typed user code leads nowhere. Said to the person as one message: which of these it
/// was is of no use to someone guessing codes.
#[derive(Debug, thiserror::Error)]
pub enum DeviceLookupError {
    #[error(
        "That code is not valid. Check the code your device shows, or start again on the device."
    )]
    Unknown,
    #[error(transparent)]
    Failed(#[from] AppError),
}

/// The pending request a typed user code names, if it still awaits a decision.
pub async fn find(authority: &Authority, typed: &str) -> Result<PendingDevice, DeviceLookupError> {
    let user_code = UserCode::parse(typed).map_err(|_| DeviceLookupError::Unknown)?;
    let store = &authority.store;
    let now = Utc::now();
    let assignment = store
        .user_codes
        .load(user_code_hash(&user_code).as_hex())
        .await
        .map_err(AppError::store)?;
    let grant_id = assignment
        .grant_at(now)
        .ok_or(DeviceLookupError::Unknown)?
        .to_owned();
    let grant = store
        .grants
        .load(&grant_id)
        .await
        .map_err(AppError::store)?;
    let state = grant.state().ok_or(DeviceLookupError::Unknown)?;
    let device = state
        .device
        .as_ref()
        .filter(|d| state.revoked.is_none() && d.awaits_decision(now))
        .ok_or(DeviceLookupError::Unknown)?;
    let client = store
        .clients
        .load(&state.client_id)
        .await
        .map_err(AppError::store)?;
    let client = client
        .registered()
        .filter(|c| c.status == authledger_domain::client::ClientStatus::Active)
        .cloned()
        .ok_or(DeviceLookupError::Unknown)?;
    let asked_from = asked_from(authority, &grant_id).await?;
    Ok(PendingDevice {
        grant_id,
        client,
        scopes: state.scopes.clone(),
        user_code,
        expires_at: device.expires_at,
        asked_from,
    })
}

/// The address and user agent the device authorization came from, from its event's metadata.
async fn asked_from(authority: &Authority, grant_id: &str) -> Result<Option<String>, AppError> {
    let events = authority
        .store
        .history("Grant", grant_id)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let Some(started) = events.first() else {
        return Ok(None);
    };
    let authledger_domain::metadata::Source::Http { ip, user_agent } = &started.metadata.source
    else {
        return Ok(None);
    };
    let parts: Vec<&str> = [ip.as_deref(), user_agent.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    Ok((!parts.is_empty()).then(|| parts.join(", ")))
}

/// Records the person's decision. Allowing is also a consent, as at the authorization
/// endpoint: the device is then listed among the person's applications, and removing it there
/// revokes what it was given. A request decided meanwhile (in another tab) or expired is
/// refused with the grant's own words.
pub async fn decide(
    authority: &Authority,
    pending: &PendingDevice,
    decision: DeviceDecision,
    metadata: &EventMetadata,
) -> Result<(), DecisionRefused> {
    if let DeviceDecision::Approve { user, .. } = &decision {
        let client_id = &pending.client.client_id;
        authority
            .store
            .consents
            .execute(
                &consent_id(user, client_id),
                ConsentCommand::Grant {
                    user: user.clone(),
                    client_id: client_id.clone(),
                    scopes: pending.scopes.clone(),
                },
                metadata,
            )
            .await
            .map_err(|e| DecisionRefused::Failed(AppError::store(e)))?;
    }
    let command = GrantCommand::DecideDevice {
        user_code_hash: user_code_hash(&pending.user_code),
        decision,
    };
    match authority
        .store
        .grants
        .execute(&pending.grant_id, command, metadata)
        .await
    {
        Ok(_) => Ok(()),
        Err(AggregateError::UserError(GrantError::InvalidGrant(why))) => {
            Err(DecisionRefused::Refused(why))
        }
        Err(AggregateError::AggregateConflict) => Err(DecisionRefused::Refused(
            "the request was decided at the same time elsewhere",
        )),
        Err(other) => Err(DecisionRefused::Failed(AppError::store(other))),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecisionRefused {
    #[error("{0}")]
    Refused(&'static str),
    #[error(transparent)]
    Failed(AppError),
}

/// The pace of each device code's polls (RFC 8628 §3.5): a poll sooner than the interval
/// after the last is answered `slow_down`, and the interval grows by five seconds for good.
/// Kept in memory, per instance, keyed by the device code's hash: polls record nothing in
/// the ledger, and a restart only forgives a device its earlier haste.
#[derive(Default)]
pub struct PollPace {
    polls: Mutex<HashMap<SecretHash, Pace>>,
}

struct Pace {
    last: Option<Instant>,
    interval: u32,
}

/// Past this many device codes, those not polled for a lifetime are forgotten.
const PACE_PRUNE_ABOVE: usize = 10_000;

/// A poll came too soon: the device must now wait `interval` seconds.
#[derive(Debug, PartialEq, Eq)]
pub struct SlowDown {
    pub interval: u32,
}

impl PollPace {
    /// Notes a poll of `device_code` (whose grant set `interval`) at `now`.
    pub fn poll(
        &self,
        device_code: &SecretHash,
        interval: u32,
        now: Instant,
    ) -> Result<(), SlowDown> {
        let Ok(mut polls) = self.polls.lock() else {
            return Ok(());
        };
        if polls.len() > PACE_PRUNE_ABOVE {
            let lifetime = LONGEST_DEVICE_CODE_LIFETIME;
            polls.retain(|_, pace| pace.last.is_some_and(|t| now.duration_since(t) < lifetime));
        }
        let pace = polls.entry(device_code.clone()).or_insert(Pace {
            last: None,
            interval,
        });
        let waited = pace.last.map(|last| now.duration_since(last));
        pace.last = Some(now);
        // A little slack: a device that sleeps exactly `interval` seconds between requests
        // arrives a few milliseconds early by our clock now and then.
        let required = StdDuration::from_secs(u64::from(pace.interval));
        if waited.is_some_and(|waited| waited + StdDuration::from_millis(500) < required) {
            pace.interval += SLOW_DOWN_STEP_SECONDS;
            return Err(SlowDown {
                interval: pace.interval,
            });
        }
        Ok(())
    }

    /// Forgets a device code that will not be polled again.
    pub fn forget(&self, device_code: &SecretHash) {
        if let Ok(mut polls) = self.polls.lock() {
            polls.remove(device_code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poll_too_soon_slows_the_device_down_for_good() {
        let pace = PollPace::default();
        let code = secrets::hash("aldc_x");
        let start = Instant::now();
        assert_eq!(pace.poll(&code, 5, start), Ok(()));
        assert_eq!(
            pace.poll(&code, 5, start + StdDuration::from_secs(2)),
            Err(SlowDown { interval: 10 })
        );
        // Five seconds later is now too soon too: the interval is ten.
        assert_eq!(
            pace.poll(&code, 5, start + StdDuration::from_secs(7)),
            Err(SlowDown { interval: 15 })
        );
        assert_eq!(
            pace.poll(&code, 5, start + StdDuration::from_secs(22)),
            Ok(())
        );
        // Another device code keeps its own pace.
        let other = secrets::hash("aldc_y");
        assert_eq!(
            pace.poll(&other, 5, start + StdDuration::from_secs(22)),
            Ok(())
        );
    }

    #[test]
    fn drawn_user_codes_read_back() {
        for _ in 0..100 {
            let code = draw_user_code();
            assert_eq!(UserCode::parse(&code.display()).unwrap(), code);
        }
    }
}
