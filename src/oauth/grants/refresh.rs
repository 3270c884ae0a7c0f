//! RFC 6749 §6: refreshing an access token.

use authledger_domain::client::RegisteredClient;
use authledger_domain::grant::{GrantCommand, GrantEvent};
use authledger_domain::metadata::EventMetadata;
use authledger_domain::oauth::Scopes;
use authledger_domain::settings::SettingsValues;

use super::{grant_and_user, has_event, respond, Presented, SignIn, TokenResponse};
use crate::oauth::error::TokenError;
use crate::oauth::minting::{grant_error, mint, target_of, Bearer};
use crate::oauth::tokens::{self, REFRESH_TOKEN_PREFIX};
use crate::oauth::Authority;
use crate::secrets;

/// RFC 6749 §6: a refresh token rotated (a used one replayed revokes the whole grant), the
/// scope narrowed if asked.
pub(super) async fn refresh_token(
    authority: &Authority,
    client: &RegisteredClient,
    presented: Presented<'_>,
    scopes: Option<Scopes>,
    metadata: &EventMetadata,
    settings: &SettingsValues,
) -> Result<TokenResponse, TokenError> {
    let Presented {
        secret: presented,
        resources,
    } = presented;
    let grant_id = tokens::grant_of(presented, REFRESH_TOKEN_PREFIX)
        .ok_or_else(|| TokenError::invalid_grant("refresh token is invalid"))?;
    let (state, user) =
        grant_and_user(authority, &grant_id, client, "refresh token is invalid").await?;

    let now = metadata.at;
    let target = target_of(authority, client, &resources, &state.resources).await?;
    // The JWT says the scope the refresh asks for; the grant refuses it if it is wider.
    let narrowed = scopes
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| state.scopes.clone());
    let bearer = Bearer::of(client, &state, &narrowed);
    let minted = mint(authority, &grant_id, true, settings, now, &target, bearer)?;
    let events = authority
        .store
        .grants
        .execute(
            grant_id.as_str(),
            GrantCommand::Refresh {
                client_id: client.client_id.clone(),
                refresh_token_hash: secrets::hash(presented),
                scopes,
                tokens: minted.tokens.clone(),
            },
            metadata,
        )
        .await
        .map_err(grant_error)?;
    if has_event(&events, |e| {
        matches!(e, GrantEvent::RefreshReplayDetected { .. })
    }) {
        return Err(TokenError::invalid_grant(
            "refresh token was already used; the whole grant is revoked",
        ));
    }
    let scopes = events
        .iter()
        .find_map(|e| match &e.payload {
            GrantEvent::TokensRefreshed { scopes, .. } => Some(scopes.clone()),
            _ => None,
        })
        .unwrap_or_else(|| state.scopes.clone());
    respond(
        authority,
        client,
        user.as_ref(),
        &scopes,
        None,
        SignIn::of(&state),
        minted,
        now,
    )
    .await
}
