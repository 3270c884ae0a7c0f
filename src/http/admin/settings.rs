//! `/admin/api/settings`.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use serde_json::Value;

use super::auth::Admin;
use super::error::{ok, ApiResult};
use crate::http::AppState;

#[utoipa::path(
    get, path = "/settings", tag = "settings",
    responses((status = 200, description = "Every setting and its value (`authledger settings set --help` says what each means)", body = Object)),
)]
pub(super) async fn show_settings(State(app): State<AppState>, _admin: Admin) -> ApiResult {
    ok(app.authority.store.settings_values().await?)
}

/// `{"key": value, ...}`: every value is parsed before any is applied, so one bad value (named
/// in the 400) changes nothing; each change is then one `SettingsChanged` event.
#[utoipa::path(
    patch, path = "/settings", tag = "settings",
    request_body(content = Object, description = "`{\"key\": value}`: a string, number, boolean, list of strings, or null for none"),
    responses((status = 200, description = "Every setting, as changed", body = Object)),
)]
pub(super) async fn change_settings(
    State(app): State<AppState>,
    admin: Admin,
    body: Result<Json<serde_json::Map<String, Value>>, JsonRejection>,
) -> ApiResult {
    let Json(changes) = body?;
    // Every value is parsed before any is applied.
    let parsed = changes
        .iter()
        .map(|(key, value)| crate::admin::settings::parse(key, value))
        .collect::<Result<Vec<_>, _>>()?;
    let store = &app.authority.store;
    crate::admin::settings::change(store, parsed, &admin.metadata).await?;
    ok(store.settings_values().await?)
}
