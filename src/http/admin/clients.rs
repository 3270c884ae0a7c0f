//! `/admin/api/clients`.

use authledger_domain::client::RegistrationSource;
use authledger_projections::clients::ClientSummary;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::{ok, ApiError, ApiResult};
use super::openapi::Paged;
use super::paging::{page, Page};
use crate::admin::clients::{self, ClientInput};
use crate::http::AppState;

#[utoipa::path(
    get, path = "/clients", tag = "clients",
    params(Page),
    responses((status = 200, description = "Clients, by id", body = Paged<ClientSummary>)),
)]
pub(super) async fn list_clients(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<Page>,
) -> ApiResult {
    let limit = q.limit();
    let items = clients::list(&app.authority.store, q.cursor.as_deref(), limit).await?;
    Ok(page(items, limit, |c| c.client_id.clone()).into_response())
}

/// A client just registered, as `POST /clients` answers: its metadata fields (RFC 7591
/// names) follow these two.
#[derive(ToSchema)]
#[allow(dead_code)] // documents `NewClient::to_json`
struct RegisteredClient {
    client_id: String,
    /// Shown this once; null for a public client.
    client_secret: Option<String>,
}

#[utoipa::path(
    post, path = "/clients", tag = "clients",
    request_body = ClientInput,
    responses(
        (status = 201, description = "Registered; the secret is shown this once", body = RegisteredClient),
        (status = 409, description = "A client with that id exists", body = super::openapi::ApiErrorBody),
    ),
)]
pub(super) async fn create_client(
    State(app): State<AppState>,
    admin: Admin,
    body: Result<Json<ClientInput>, JsonRejection>,
) -> ApiResult {
    let Json(input) = body?;
    let authority = &app.authority;
    let client = clients::register(
        &authority.store,
        input,
        RegistrationSource::Admin,
        &admin.metadata,
        Some(&authority.master),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(client.to_json())).into_response())
}

#[utoipa::path(
    get, path = "/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    responses((status = 200, description = "The client", body = ClientSummary)),
)]
pub(super) async fn show_client(
    State(app): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult {
    ok(clients::show(&app.authority.store, &id).await?)
}

#[utoipa::path(
    patch, path = "/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    request_body(content = Object, description = "The client metadata fields to change (RFC 7591 names); the others are kept"),
    responses((status = 200, description = "The client as changed", body = ClientSummary)),
)]
pub(super) async fn update_client(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let Json(patch) = body?;
    let Value::Object(patch) = patch else {
        return Err(ApiError::invalid(
            "the body must be a JSON object of client metadata fields",
        ));
    };
    ok(clients::update(&app.authority.store, &id, patch, &admin.metadata).await?)
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DisableBody {
    /// Why, recorded in the event.
    reason: Option<String>,
}

#[utoipa::path(
    post, path = "/clients/{id}/disable", tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    request_body(content = Option<DisableBody>, description = "Optional"),
    responses((status = 200, description = "Disabled: its tokens stop working at once", body = ClientSummary)),
)]
pub(super) async fn disable_client(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: Result<Option<Json<DisableBody>>, JsonRejection>,
) -> ApiResult {
    let reason = body?.and_then(|Json(b)| b.reason);
    ok(clients::disable(&app.authority.store, &id, reason, &admin.metadata).await?)
}

#[utoipa::path(
    post, path = "/clients/{id}/enable", tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    responses((status = 200, description = "Enabled again", body = ClientSummary)),
)]
pub(super) async fn enable_client(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult {
    ok(clients::enable(&app.authority.store, &id, &admin.metadata).await?)
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RotateBody {
    /// Also revoke every token issued to the client.
    #[serde(default)]
    revoke_tokens: bool,
}

/// A new client secret, shown this once.
#[derive(Serialize, ToSchema)]
pub(super) struct RotatedSecret {
    client_id: String,
    client_secret: String,
    tokens_revoked: bool,
}

#[utoipa::path(
    post, path = "/clients/{id}/rotate-secret", tag = "clients",
    params(("id" = String, Path, description = "The client id")),
    request_body(content = Option<RotateBody>, description = "Optional"),
    responses((status = 200, description = "The new secret, shown this once", body = RotatedSecret)),
)]
pub(super) async fn rotate_secret(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: Result<Option<Json<RotateBody>>, JsonRejection>,
) -> ApiResult {
    let revoke_tokens = body?.is_some_and(|Json(b)| b.revoke_tokens);
    let authority = &app.authority;
    let secret = clients::rotate_secret(
        &authority.store,
        &id,
        revoke_tokens,
        &admin.metadata,
        Some(&authority.master),
    )
    .await?;
    ok(RotatedSecret {
        client_secret: secret.reveal().to_owned(),
        client_id: id,
        tokens_revoked: revoke_tokens,
    })
}
