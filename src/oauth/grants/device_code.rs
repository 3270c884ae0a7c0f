//! RFC 8628 §3.4: the device's poll for its tokens.

use authledger_domain::client::RegisteredClient;
use authledger_domain::grant::{GrantCommand, GrantEvent};
use authledger_domain::metadata::EventMetadata;
use authledger_domain::oauth::GrantType;
use authledger_domain::settings::SettingsValues;

use super::{respond, Presented, SignIn, TokenResponse};
use crate::oauth::device::DEVICE_CODE_PREFIX;
use crate::oauth::error::{TokenError, TokenErrorCode};
use crate::oauth::minting::{active_user, grant_error, mint, target_of, Bearer};
use crate::oauth::tokens;
use crate::oauth::Authority;
use crate::secrets;

/// RFC 8628 §3.4, §3.5: a device's poll. Until the person decides, the answer is an error
/// that records nothing; a poll sooner than the interval is `slow_down`.
pub(super) async fn device_code_grant(
    authority: &Authority,
    client: &RegisteredClient,
    presented: Presented<'_>,
    metadata: &EventMetadata,
    settings: &SettingsValues,
) -> Result<TokenResponse, TokenError> {
    let Presented {
        secret: presented,
        resources,
    } = presented;
    let grant_id = tokens::grant_of(presented, DEVICE_CODE_PREFIX)
        .ok_or_else(|| TokenError::invalid_grant("device code is invalid"))?;
    let presented_hash = secrets::hash(presented);
    let grant = authority
        .store
        .grants
        .load(grant_id.as_str())
        .await
        .map_err(grant_error)?;
    // Only the device code itself is paced: a made-up one cannot slow the real device down.
    let device = grant
        .state()
        .filter(|s| s.client_id == client.client_id)
        .and_then(|s| s.device.as_ref())
        .filter(|d| d.device_code_hash.matches(&presented_hash));
    if let Some(device) = device {
        let now = std::time::Instant::now();
        if let Err(slow) = authority
            .device_polls
            .poll(&presented_hash, device.interval, now)
        {
            return Err(TokenError::new(
                TokenErrorCode::SlowDown,
                format!(
                    "polling too often; wait at least {} seconds between requests",
                    slow.interval
                ),
            ));
        }
    }
    let now = metadata.at;
    let wants_refresh = client
        .metadata
        .grant_types
        .contains(&GrantType::RefreshToken);
    let state = grant
        .state()
        .ok_or_else(|| TokenError::invalid_grant("device code is invalid"))?;
    let target = target_of(authority, client, &resources, &state.resources).await?;
    let bearer = Bearer::of(client, state, &state.scopes);
    let minted = mint(
        authority,
        &grant_id,
        wants_refresh,
        settings,
        now,
        &target,
        bearer,
    )?;
    let events = authority
        .store
        .grants
        .execute(
            grant_id.as_str(),
            GrantCommand::RedeemDeviceCode {
                client_id: client.client_id.clone(),
                device_code_hash: presented_hash.clone(),
                tokens: minted.tokens.clone(),
            },
            metadata,
        )
        .await
        .map_err(grant_error)?;
    authority.device_polls.forget(&presented_hash);
    let username = events
        .iter()
        .find_map(|e| match &e.payload {
            GrantEvent::TokensIssued { user, .. } => user.clone(),
            _ => None,
        })
        .ok_or_else(|| TokenError::invalid_grant("device code is invalid"))?;
    let user = active_user(authority, &username).await?;
    let sign_in = SignIn {
        auth_time: events.iter().find_map(|e| match &e.payload {
            GrantEvent::TokensIssued { auth_time, .. } => *auth_time,
            _ => None,
        }),
        session: None,
        amr: state.amr.clone(),
    };
    respond(
        authority,
        client,
        Some(&user),
        &state.scopes,
        None,
        sign_in,
        minted,
        now,
    )
    .await
}
