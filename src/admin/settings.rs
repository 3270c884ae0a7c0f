//! Changing the settings from JSON values: the admin API's `PATCH /settings` and `import`.

use authledger_domain::metadata::EventMetadata;
use authledger_domain::settings::{Setting, SettingsCommand, SETTINGS_ID};
use serde_json::Value;

use crate::error::AppError;
use crate::store::Store;

/// The setting `key` with the JSON `value`: a string, number, boolean, list of strings, or
/// null for none, read as the CLI reads its text.
pub fn parse(key: &str, value: &Value) -> Result<Setting, AppError> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "none".into(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str().ok_or_else(|| {
                    AppError::invalid_field(key, format!("{key}: a list holds strings only"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?
            .join(" "),
        Value::Object(_) => {
            return Err(AppError::invalid_field(
                key,
                format!("{key}: expected a string, number, boolean or list"),
            ))
        }
    };
    Setting::parse(key, &text).map_err(|e| AppError::invalid_field(key, e.to_string()))
}

/// Applies settings already parsed, one `SettingsChanged` event each.
pub async fn change(
    store: &Store,
    settings: Vec<Setting>,
    metadata: &EventMetadata,
) -> Result<(), AppError> {
    for setting in settings {
        store
            .settings
            .execute(SETTINGS_ID, SettingsCommand::Change(setting), metadata)
            .await
            .map_err(crate::error::settings_error)?;
    }
    Ok(())
}
