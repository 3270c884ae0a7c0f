//! `/admin/api/settings`.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use serde_json::Value;

use super::auth::Admin;
use super::error::{ok, ApiError, ApiResult};
use crate::http::AppState;

pub(super) async fn show_settings(State(app): State<AppState>, _admin: Admin) -> ApiResult {
    ok(app.authority.store.settings_values().await?)
}

/// `{"key": value, ...}`: every value is parsed before any is applied, so one bad value (named
/// in the 400) changes nothing; each change is then one `SettingsChanged` event.
pub(super) async fn change_settings(
    State(app): State<AppState>,
    admin: Admin,
    body: Result<Json<serde_json::Map<String, Value>>, JsonRejection>,
) -> ApiResult {
    use authledger_domain::settings::{Setting, SettingsCommand, SETTINGS_ID};
    let Json(changes) = body?;
    let mut parsed = Vec::new();
    for (key, value) in changes {
        let text = match &value {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Null => "none".into(),
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            Value::Object(_) => {
                return Err(ApiError::Invalid {
                    field: Some(key.clone()),
                    message: format!("{key}: expected a string, number, boolean or list"),
                })
            }
        };
        let setting = Setting::parse(&key, &text).map_err(|e| ApiError::Invalid {
            field: Some(key.clone()),
            message: e.to_string(),
        })?;
        parsed.push(setting);
    }
    let store = &app.authority.store;
    for setting in parsed {
        store
            .settings
            .execute(
                SETTINGS_ID,
                SettingsCommand::Change(setting),
                &admin.metadata,
            )
            .await
            .map_err(|e| ApiError::from(crate::error::settings_error(e)))?;
    }
    ok(store.settings_values().await?)
}
