//! What the authorization endpoint issues itself: codes (RFC 6749 §4.1.2) and, for the
//! implicit flow, access tokens (§4.2.2).

use authledger_domain::grant::{CodeIssue, GrantCommand};
use authledger_domain::metadata::EventMetadata;
use authledger_domain::oauth::GrantType;
use authledger_domain::secret::SecretHash;
use authledger_domain::settings::SettingsValues;
use authledger_domain::user::Username;
use chrono::{DateTime, Duration, Utc};

use crate::error::AppError;
use crate::oauth::authorize::AuthorizationRequest;
use crate::oauth::minting::{mint, Bearer};
use crate::oauth::resources::Target;
use crate::oauth::tokens::{self, GrantId, CODE_PREFIX};
use crate::oauth::Authority;

/// Issues an authorization code for `request`, granted by `user` (RFC 6749 §4.1.2).
pub async fn issue_code(
    authority: &Authority,
    request: &AuthorizationRequest,
    user: &Username,
    auth_time: DateTime<Utc>,
    session: (&SecretHash, &[String]),
    settings: &SettingsValues,
    metadata: &EventMetadata,
) -> Result<String, AppError> {
    let grant_id = GrantId::new();
    let code = tokens::mint(CODE_PREFIX, &grant_id);
    let issue = CodeIssue {
        client_id: request.client.client_id.clone(),
        user: user.clone(),
        scopes: request.scopes.clone(),
        redirect_uri: request.target.redirect_uri.clone(),
        redirect_uri_explicit: request.redirect_uri_explicit,
        challenge: request.challenge.clone(),
        nonce: request.nonce.clone(),
        auth_time,
        session: Some(session.0.clone()),
        amr: session.1.to_vec(),
        code_hash: code.hash().clone(),
        expires_at: metadata.at + Duration::seconds(i64::from(settings.code_ttl)),
        resources: request.resources.ids(),
    };
    authority
        .store
        .grants
        .create(grant_id.as_str(), GrantCommand::IssueCode(issue), metadata)
        .await
        .map_err(AppError::store)?;
    Ok(code.reveal().to_owned())
}

/// Issues an access token straight from the authorization endpoint (RFC 6749 §4.2.2): no
/// refresh token, ever.
pub async fn issue_implicit(
    authority: &Authority,
    request: &AuthorizationRequest,
    user: &Username,
    auth_time: DateTime<Utc>,
    settings: &SettingsValues,
    metadata: &EventMetadata,
) -> Result<(String, i64), AppError> {
    let grant_id = GrantId::new();
    let bearer = Bearer {
        client_id: &request.client.client_id,
        user: Some(user),
        scopes: &request.scopes,
        auth_time: Some(auth_time),
        amr: &[],
        act: None,
        expires_by: None,
    };
    let no_resource = Target::default();
    let minted = mint(
        authority,
        &grant_id,
        false,
        settings,
        metadata.at,
        &no_resource,
        bearer,
    )
    .map_err(|e| AppError::Internal(anyhow::anyhow!("{}", e.description)))?;
    authority
        .store
        .grants
        .create(
            grant_id.as_str(),
            GrantCommand::IssueTokens {
                grant_type: GrantType::Implicit,
                client_id: request.client.client_id.clone(),
                user: Some(user.clone()),
                scopes: request.scopes.clone(),
                auth_time: Some(auth_time),
                tokens: minted.tokens,
            },
            metadata,
        )
        .await
        .map_err(AppError::store)?;
    Ok((minted.access.reveal().to_owned(), minted.expires_in))
}
