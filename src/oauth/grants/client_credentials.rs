//! RFC 6749 §4.4: the client credentials grant.

use authledger_domain::client::RegisteredClient;
use authledger_domain::grant::GrantCommand;
use authledger_domain::metadata::EventMetadata;
use authledger_domain::oauth::{GrantType, Scopes};
use authledger_domain::settings::SettingsValues;

use super::{respond, SignIn, TokenResponse};
use crate::oauth::error::{TokenError, TokenErrorCode};
use crate::oauth::minting::{grant_error, mint, target_of, Bearer};
use crate::oauth::tokens::GrantId;
use crate::oauth::Authority;

/// RFC 6749 §4.4: tokens for the client itself, within the scope it was registered for.
pub(super) async fn client_credentials(
    authority: &Authority,
    client: &RegisteredClient,
    requested: Option<Scopes>,
    resources: &[String],
    metadata: &EventMetadata,
    settings: &SettingsValues,
) -> Result<TokenResponse, TokenError> {
    let scopes = match requested {
        None => client.metadata.scopes.clone(),
        Some(scopes) => {
            if !scopes.is_subset_of(&client.metadata.scopes) {
                return Err(TokenError::new(
                    TokenErrorCode::InvalidScope,
                    "the requested scope exceeds the scope registered for the client",
                ));
            }
            scopes
        }
    };
    let grant_id = GrantId::new();
    let now = metadata.at;
    let target = target_of(authority, client, resources, &[]).await?;
    let bearer = Bearer {
        client_id: &client.client_id,
        user: None,
        scopes: &scopes,
        auth_time: None,
        amr: &[],
        act: None,
        expires_by: None,
    };
    let minted = mint(authority, &grant_id, false, settings, now, &target, bearer)?;
    authority
        .store
        .grants
        .create(
            grant_id.as_str(),
            GrantCommand::IssueTokens {
                grant_type: GrantType::ClientCredentials,
                client_id: client.client_id.clone(),
                user: None,
                scopes: scopes.clone(),
                auth_time: None,
                tokens: minted.tokens.clone(),
            },
            metadata,
        )
        .await
        .map_err(grant_error)?;
    let nobody = SignIn::default();
    respond(authority, client, None, &scopes, None, nobody, minted, now).await
}
