//! `/admin/api/social-logins`: the providers people may sign in through, and the identities
//! linked to a person.

use authledger_projections::social_logins::{IdentityRecord, SocialLoginRecord};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Admin;
use super::error::{ok, ApiResult};
use super::openapi::Items;
use crate::http::AppState;
use crate::social_login::{self, ProviderSummary, SocialLoginChange, SocialLoginInput};

/// Either `issuer` (an OpenID provider, discovered) or the OAuth endpoints themselves.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewProviderBody {
    name: String,
    issuer: Option<String>,
    base_url: Option<String>,
    authorize_url: Option<String>,
    token_url: Option<String>,
    api_endpoint: Option<String>,
    user_id_property: Option<String>,
    client_id: String,
    client_secret: String,
    scope: Option<String>,
    sign_ups: Option<String>,
    #[serde(default)]
    trusted_emails: bool,
    icon: Option<String>,
    show_in_resource_metadata: Option<bool>,
    /// Trust its signed tokens as token-exchange subjects (OpenID providers only).
    #[serde(default)]
    token_exchange: bool,
}

/// The fields to change; absent ones are kept.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangeBody {
    name: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
    sign_ups: Option<String>,
    trusted_emails: Option<bool>,
    enabled: Option<bool>,
    icon: Option<String>,
    show_in_resource_metadata: Option<bool>,
    token_exchange: Option<bool>,
}

#[utoipa::path(
    get, path = "/social-logins", tag = "social-logins",
    responses((status = 200, description = "Every provider", body = Items<SocialLoginRecord>)),
)]
pub(super) async fn list(State(app): State<AppState>, _admin: Admin) -> ApiResult {
    ok(Items {
        items: social_login::list(&app.authority.store).await?,
    })
}

#[utoipa::path(
    post, path = "/social-logins", tag = "social-logins",
    request_body = NewProviderBody,
    responses(
        (status = 201, description = "Created; register `redirect_uri` at the provider", body = ProviderSummary),
        (status = 502, description = "The provider's discovery document could not be read", body = super::openapi::ApiErrorBody),
    ),
)]
pub(super) async fn create(
    State(app): State<AppState>,
    admin: Admin,
    body: Result<Json<NewProviderBody>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    let input = SocialLoginInput {
        name: b.name,
        issuer: b.issuer,
        base_url: b.base_url,
        authorize_url: b.authorize_url,
        token_url: b.token_url,
        api_endpoint: b.api_endpoint,
        user_id_property: b.user_id_property,
        client_id: b.client_id,
        client_secret: b.client_secret,
        scope: b.scope,
        sign_ups: b.sign_ups,
        trusted_emails: b.trusted_emails,
        icon: b.icon,
        show_in_resource_metadata: b.show_in_resource_metadata,
        token_exchange: b.token_exchange,
    };
    let authority = &app.authority;
    let created = social_login::create(
        &authority.store,
        &authority.master,
        &app.connections.provider,
        &authority.issuer,
        input,
        &admin.metadata,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[utoipa::path(
    get, path = "/social-logins/{id}", tag = "social-logins",
    params(("id" = String, Path, description = "The provider id")),
    responses((status = 200, description = "The provider", body = ProviderSummary)),
)]
pub(super) async fn show(
    State(app): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult {
    let authority = &app.authority;
    ok(social_login::show(&authority.store, &authority.issuer, &id).await?)
}

#[utoipa::path(
    patch, path = "/social-logins/{id}", tag = "social-logins",
    params(("id" = String, Path, description = "The provider id")),
    request_body = ChangeBody,
    responses((status = 200, description = "The provider as changed", body = ProviderSummary)),
)]
pub(super) async fn update(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: Result<Json<ChangeBody>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    let change = SocialLoginChange {
        name: b.name,
        client_id: b.client_id,
        client_secret: b.client_secret,
        scope: b.scope,
        sign_ups: b.sign_ups,
        trusted_emails: b.trusted_emails,
        enabled: b.enabled,
        icon: b.icon,
        show_in_resource_metadata: b.show_in_resource_metadata,
        token_exchange: b.token_exchange,
    };
    let authority = &app.authority;
    ok(social_login::update(
        &authority.store,
        &authority.master,
        &authority.issuer,
        &id,
        change,
        &admin.metadata,
    )
    .await?)
}

#[utoipa::path(
    delete, path = "/social-logins/{id}", tag = "social-logins",
    params(("id" = String, Path, description = "The provider id")),
    responses((status = 204, description = "Deleted; linked identities no longer sign in")),
)]
pub(super) async fn delete(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult {
    social_login::delete(&app.authority.store, &id, &admin.metadata).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct Whose {
    /// The person's username.
    user: String,
    /// One identity's subject at the provider; absent: every identity of the person there.
    subject: Option<String>,
}

/// `GET /admin/api/social-logins/identities?user=U`.
#[utoipa::path(
    get, path = "/social-logins/identities", tag = "social-logins",
    params(Whose),
    responses((status = 200, description = "The person's identities at every provider", body = Items<IdentityRecord>)),
)]
pub(super) async fn identities(
    State(app): State<AppState>,
    _admin: Admin,
    Query(whose): Query<Whose>,
) -> ApiResult {
    ok(Items {
        items: social_login::identities(&app.authority.store, &whose.user).await?,
    })
}

/// `POST /admin/api/social-logins/{id}/unlink?user=U[&subject=S]`.
#[utoipa::path(
    post, path = "/social-logins/{id}/unlink", tag = "social-logins",
    params(("id" = String, Path, description = "The provider id"), Whose),
    responses((status = 200, description = "How many identities were unlinked", body = Unlinked)),
)]
pub(super) async fn unlink(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(whose): Query<Whose>,
) -> ApiResult {
    let unlinked = social_login::unlink(
        &app.authority.store,
        &id,
        &whose.user,
        whose.subject.as_deref(),
        &admin.metadata,
    )
    .await?;
    ok(Unlinked { unlinked })
}

#[derive(Serialize, ToSchema)]
pub(super) struct Unlinked {
    unlinked: usize,
}
