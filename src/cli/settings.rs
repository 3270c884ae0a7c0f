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
    /// Change one setting (every key, its meaning and its default are listed below).
    Set {
        /// A setting's name, e.g. access_token_ttl.
        key: String,
        /// Its new value; `none` clears an optional one.
        value: String,
    },
}

/// Every setting's key, meaning and default, for `settings set --help`.
pub(super) fn keys_help() -> String {
    use authledger_domain::settings::{SettingsValues, GROUPS};
    let defaults = SettingsValues::default().all();
    let mut help = String::from("Settings:\n");
    for (group, keys) in GROUPS {
        help.push_str(&format!("\n  {group}\n"));
        for (key, meaning) in keys {
            let default = defaults
                .iter()
                .find(|s| s.key() == *key)
                .map(|s| s.value())
                .unwrap_or_default();
            help.push_str(&format!(
                "    {key} (default: {default})\n        {meaning}\n"
            ));
        }
    }
    help
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
