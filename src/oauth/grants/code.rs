//! RFC 6749 §4.1.3: the authorization code grant.

use authledger_domain::client::RegisteredClient;
use authledger_domain::grant::{GrantCommand, GrantEvent};
use authledger_domain::metadata::EventMetadata;
use authledger_domain::oauth::GrantType;
use authledger_domain::settings::SettingsValues;

use super::{grant_and_user, has_event, respond, PresentedCode, SignIn, TokenResponse};
use crate::oauth::error::TokenError;
use crate::oauth::minting::{grant_error, mint, target_of, Bearer};
use crate::oauth::tokens::{self, CODE_PREFIX};
use crate::oauth::Authority;
use crate::secrets;

/// RFC 6749 §4.1.3: a code redeemed, once, by the client it was issued to, at the redirect
/// URI it was sent to, with the PKCE verifier its challenge asks for.
pub(super) async fn authorization_code(
    authority: &Authority,
    client: &RegisteredClient,
    presented: PresentedCode<'_>,
    metadata: &EventMetadata,
    settings: &SettingsValues,
) -> Result<TokenResponse, TokenError> {
    let PresentedCode {
        code,
        redirect_uri,
        code_verifier,
        resources,
    } = presented;
    let grant_id = tokens::grant_of(code, CODE_PREFIX)
        .ok_or_else(|| TokenError::invalid_grant("authorization code is invalid"))?;
    let (state, user) = grant_and_user(
        authority,
        &grant_id,
        client,
        "authorization code is invalid",
    )
    .await?;
    let nonce = state.nonce.clone();

    let now = metadata.at;
    let wants_refresh = client
        .metadata
        .grant_types
        .contains(&GrantType::RefreshToken);
    let target = target_of(authority, client, &resources, &state.resources).await?;
    let bearer = Bearer::of(client, &state, &state.scopes);
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
            GrantCommand::RedeemCode {
                client_id: client.client_id.clone(),
                code_hash: secrets::hash(code),
                redirect_uri,
                code_verifier,
                tokens: minted.tokens.clone(),
            },
            metadata,
        )
        .await
        .map_err(grant_error)?;
    if has_event(&events, |e| {
        matches!(e, GrantEvent::CodeReplayDetected { .. })
    }) {
        return Err(TokenError::invalid_grant(
            "authorization code was already used; every token issued from it is revoked",
        ));
    }
    let user = user.ok_or_else(|| TokenError::invalid_grant("authorization code is invalid"))?;
    respond(
        authority,
        client,
        Some(&user),
        &state.scopes,
        nonce.as_deref(),
        SignIn::of(&state),
        minted,
        now,
    )
    .await
}
