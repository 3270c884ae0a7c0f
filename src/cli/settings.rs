//! `authledger settings show|set`.

use clap::Subcommand;

use super::cli_metadata;
use super::output::print_json;
use crate::error::AppError;
use crate::store::Store;

#[derive(Subcommand)]
pub(super) enum SettingsCommand {
    /// Print the settings in force as JSON.
    Show,
    /// Change one setting: consent_mode (force|auto), access_token_ttl, refresh_token_ttl,
    /// code_ttl (seconds), allow_implicit (true|false).
    Set { key: String, value: String },
}

pub(super) async fn settings(store: &Store, command: SettingsCommand) -> Result<(), AppError> {
    use authledger_domain::settings::{Setting, SettingsCommand as Change, SETTINGS_ID};
    if let SettingsCommand::Set { key, value } = command {
        let setting = Setting::parse(&key, &value).map_err(AppError::invalid)?;
        store
            .settings
            .execute(
                SETTINGS_ID,
                Change::Change(setting.clone()),
                &cli_metadata(),
            )
            .await
            .map_err(crate::error::settings_error)?;
        eprintln!("{setting}");
    }
    print_json(&store.settings_values().await?)
}
