//! `/admin/api/connected-apps`: the providers authledger is a client of, and a currently
//! valid token of a person's connection (or of the app itself) for internal services.

use std::collections::BTreeMap;

use authledger_projections::connected_apps::ConnectedAppRecord;
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
use crate::connected_apps::{self, AppSummary, ConnectedAppInput, FreshToken};
use crate::http::AppState;

/// Either `openid_configuration` (the provider's discovery URL) or the endpoints themselves.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAppBody {
    name: String,
    /// The provider's `/.well-known/openid-configuration` URL; its endpoints are read from it.
    openid_configuration: Option<String>,
    authorization_uri: Option<String>,
    token_uri: Option<String>,
    revocation_uri: Option<String>,
    userinfo_uri: Option<String>,
    introspection_uri: Option<String>,
    issuer: Option<String>,
    jwks_uri: Option<String>,
    client_id: String,
    /// Sealed under the master key; never shown again.
    client_secret: String,
    scope: Option<String>,
    /// Extra parameters of the authorization request.
    #[serde(default)]
    extra_params: BTreeMap<String, String>,
}

#[utoipa::path(
    get, path = "/connected-apps", tag = "connected-apps",
    responses((status = 200, description = "Every connected app", body = Items<ConnectedAppRecord>)),
)]
pub(super) async fn list(State(app): State<AppState>, _admin: Admin) -> ApiResult {
    ok(Items {
        items: connected_apps::list(&app.authority.store).await?,
    })
}

#[utoipa::path(
    post, path = "/connected-apps", tag = "connected-apps",
    request_body = NewAppBody,
    responses(
        (status = 201, description = "Created; register `redirect_uri` at the provider", body = AppSummary),
        (status = 502, description = "The provider's discovery document could not be read", body = super::openapi::ApiErrorBody),
    ),
)]
pub(super) async fn create(
    State(app): State<AppState>,
    admin: Admin,
    body: Result<Json<NewAppBody>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    let input = ConnectedAppInput {
        name: b.name,
        openid_configuration: b.openid_configuration,
        authorization_uri: b.authorization_uri,
        token_uri: b.token_uri,
        revocation_uri: b.revocation_uri,
        userinfo_uri: b.userinfo_uri,
        introspection_uri: b.introspection_uri,
        issuer: b.issuer,
        jwks_uri: b.jwks_uri,
        client_id: b.client_id,
        client_secret: b.client_secret,
        scope: b.scope,
        extra_params: b.extra_params,
    };
    let authority = &app.authority;
    let created = connected_apps::create(
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
    get, path = "/connected-apps/{id}", tag = "connected-apps",
    params(("id" = String, Path, description = "The connected app id")),
    responses((status = 200, description = "The app", body = AppSummary)),
)]
pub(super) async fn show(
    State(app): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult {
    let authority = &app.authority;
    ok(connected_apps::show(&authority.store, &authority.issuer, &id).await?)
}

#[utoipa::path(
    delete, path = "/connected-apps/{id}", tag = "connected-apps",
    params(("id" = String, Path, description = "The connected app id")),
    responses((status = 204, description = "Deleted; its connections are forgotten")),
)]
pub(super) async fn delete(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult {
    let authority = &app.authority;
    connected_apps::delete(&authority.store, &authority.master, &id, &admin.metadata).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct Whose {
    /// The person whose connection; absent for the app's own (client-credentials) token.
    user: Option<String>,
}

/// `GET /admin/api/connected-apps/{id}/token?user=U`: a currently valid access token,
/// refreshed first when it is about to expire. 409 `conflict` when the person must connect
/// again (the description says so), 502 when the provider failed.
#[utoipa::path(
    get, path = "/connected-apps/{id}/token", tag = "connected-apps",
    params(("id" = String, Path, description = "The connected app id"), Whose),
    responses(
        (status = 200, description = "A currently valid access token of the provider", body = FreshToken),
        (status = 409, description = "The person must connect again", body = super::openapi::ApiErrorBody),
        (status = 502, description = "The provider failed or refused", body = super::openapi::ApiErrorBody),
    ),
)]
pub(super) async fn token(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(whose): Query<Whose>,
) -> ApiResult {
    let authority = &app.authority;
    let id = connected_apps::parse_id(&id)?;
    let user = whose
        .user
        .as_deref()
        .map(crate::admin::users::parse_username)
        .transpose()?;
    let token = app
        .connections
        .fresh_token(
            &authority.store,
            &authority.master,
            &id,
            user.as_ref(),
            &admin.metadata,
        )
        .await?;
    let mut response = Json(token).into_response();
    // A token in a response: never cached by anything between (RFC 6749 §5.1).
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// `POST /admin/api/connected-apps/{id}/disconnect?user=U`.
#[utoipa::path(
    post, path = "/connected-apps/{id}/disconnect", tag = "connected-apps",
    params(("id" = String, Path, description = "The connected app id"), Whose),
    responses((status = 200, description = "Disconnected; tokens revoked at the provider when it can", body = Disconnected)),
)]
pub(super) async fn disconnect(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(whose): Query<Whose>,
) -> ApiResult {
    let authority = &app.authority;
    let id = connected_apps::parse_id(&id)?;
    let user = crate::admin::users::parse_username(whose.user.as_deref().unwrap_or(""))?;
    let revoked = app
        .connections
        .disconnect(
            &authority.store,
            &authority.master,
            &id,
            &user,
            &admin.metadata,
        )
        .await?;
    ok(Disconnected {
        disconnected: true,
        revoked_at_provider: revoked,
    })
}

#[derive(Serialize, ToSchema)]
pub(super) struct Disconnected {
    disconnected: bool,
    /// Whether the provider confirmed the revocation.
    revoked_at_provider: bool,
}
