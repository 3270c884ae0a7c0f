//! `/admin/api/clients`.

use authledger_domain::client::RegistrationSource;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Admin;
use super::error::{ok, ApiError, ApiResult};
use super::paging::{page, Page};
use crate::admin::clients::{self, ClientInput};
use crate::http::AppState;

pub(super) async fn list_clients(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<Page>,
) -> ApiResult {
    let limit = q.limit();
    let items = clients::list(&app.authority.store, q.cursor.as_deref(), limit).await?;
    Ok(page(items, limit, |c| c.client_id.clone()).into_response())
}

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

pub(super) async fn show_client(
    State(app): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult {
    ok(clients::show(&app.authority.store, &id).await?)
}

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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct DisableBody {
    reason: Option<String>,
}

pub(super) async fn disable_client(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: Option<Json<DisableBody>>,
) -> ApiResult {
    let reason = body.map(|Json(b)| b.reason).unwrap_or_default();
    ok(clients::disable(&app.authority.store, &id, reason, &admin.metadata).await?)
}

pub(super) async fn enable_client(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult {
    ok(clients::enable(&app.authority.store, &id, &admin.metadata).await?)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RotateBody {
    #[serde(default)]
    revoke_tokens: bool,
}

pub(super) async fn rotate_secret(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: Option<Json<RotateBody>>,
) -> ApiResult {
    let revoke_tokens = body.map(|Json(b)| b.revoke_tokens).unwrap_or_default();
    let authority = &app.authority;
    let secret = clients::rotate_secret(
        &authority.store,
        &id,
        revoke_tokens,
        &admin.metadata,
        Some(&authority.master),
    )
    .await?;
    ok(
        json!({ "client_id": id, "client_secret": secret.reveal(), "tokens_revoked": revoke_tokens }),
    )
}
