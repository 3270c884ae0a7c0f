//! The `Settings` aggregate (singleton, id [`SETTINGS_ID`]): the server's OAuth settings,
//! Frappe's "OAuth Settings". Each change is one event naming the setting and its new value.

#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::services::Services;

pub const SETTINGS_ID: &str = "settings";

/// Frappe's "Skip Authorization" modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentMode {
    /// Always ask.
    Force,
    /// Ask only when the person has not yet consented to these scopes for this client.
    Auto,
}

/// One setting with its value. The wire name of each is what `settings set KEY VALUE` takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "key", content = "value", rename_all = "snake_case")]
pub enum Setting {
    ConsentMode(ConsentMode),
    AccessTokenTtl(u32),
    RefreshTokenTtl(u32),
    CodeTtl(u32),
    AllowImplicit(bool),
}

/// The settings in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsValues {
    pub consent_mode: ConsentMode,
    /// Seconds.
    pub access_token_ttl: u32,
    /// Seconds.
    pub refresh_token_ttl: u32,
    /// Seconds an authorization code stays redeemable.
    pub code_ttl: u32,
    /// Whether `response_type=token` may be used by clients registered for it.
    pub allow_implicit: bool,
}

impl Default for SettingsValues {
    fn default() -> Self {
        SettingsValues {
            consent_mode: ConsentMode::Force,
            access_token_ttl: 3600,
            refresh_token_ttl: 30 * 24 * 3600,
            code_ttl: 60,
            allow_implicit: false,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("unknown setting `{0}` (known: {KEYS})")]
    UnknownKey(String),
    #[error("{key}: {reason}")]
    InvalidValue { key: &'static str, reason: String },
}

const KEYS: &str = "consent_mode, access_token_ttl, refresh_token_ttl, code_ttl, allow_implicit";

impl Setting {
    pub fn key(&self) -> &'static str {
        match self {
            Setting::ConsentMode(_) => "consent_mode",
            Setting::AccessTokenTtl(_) => "access_token_ttl",
            Setting::RefreshTokenTtl(_) => "refresh_token_ttl",
            Setting::CodeTtl(_) => "code_ttl",
            Setting::AllowImplicit(_) => "allow_implicit",
        }
    }

    /// Parses `settings set KEY VALUE`.
    pub fn parse(key: &str, value: &str) -> Result<Setting, SettingsError> {
        let seconds = |key: &'static str, min: u32, max: u32| {
            value
                .parse::<u32>()
                .ok()
                .filter(|v| (min..=max).contains(v))
                .ok_or(SettingsError::InvalidValue {
                    key,
                    reason: format!("expected seconds between {min} and {max}"),
                })
        };
        Ok(match key {
            "consent_mode" => Setting::ConsentMode(match value {
                "force" => ConsentMode::Force,
                "auto" => ConsentMode::Auto,
                _ => {
                    return Err(SettingsError::InvalidValue {
                        key: "consent_mode",
                        reason: "expected `force` or `auto`".into(),
                    })
                }
            }),
            "access_token_ttl" => Setting::AccessTokenTtl(seconds("access_token_ttl", 1, 86_400)?),
            "refresh_token_ttl" => {
                Setting::RefreshTokenTtl(seconds("refresh_token_ttl", 300, 366 * 86_400)?)
            }
            // RFC 6749 §4.1.2: a code lives at most ten minutes.
            "code_ttl" => Setting::CodeTtl(seconds("code_ttl", 1, 600)?),
            "allow_implicit" => Setting::AllowImplicit(match value {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(SettingsError::InvalidValue {
                        key: "allow_implicit",
                        reason: "expected `true` or `false`".into(),
                    })
                }
            }),
            other => return Err(SettingsError::UnknownKey(other.to_owned())),
        })
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Setting::ConsentMode(ConsentMode::Force) => write!(f, "consent_mode = force"),
            Setting::ConsentMode(ConsentMode::Auto) => write!(f, "consent_mode = auto"),
            Setting::AccessTokenTtl(v) => write!(f, "access_token_ttl = {v}"),
            Setting::RefreshTokenTtl(v) => write!(f, "refresh_token_ttl = {v}"),
            Setting::CodeTtl(v) => write!(f, "code_ttl = {v}"),
            Setting::AllowImplicit(v) => write!(f, "allow_implicit = {v}"),
        }
    }
}

impl SettingsValues {
    fn with(&self, setting: &Setting) -> SettingsValues {
        let mut next = self.clone();
        match *setting {
            Setting::ConsentMode(mode) => next.consent_mode = mode,
            Setting::AccessTokenTtl(v) => next.access_token_ttl = v,
            Setting::RefreshTokenTtl(v) => next.refresh_token_ttl = v,
            Setting::CodeTtl(v) => next.code_ttl = v,
            Setting::AllowImplicit(v) => next.allow_implicit = v,
        }
        next
    }
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    values: SettingsValues,
}

impl Settings {
    pub fn values(&self) -> &SettingsValues {
        &self.values
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SettingsCommand {
    Change(Setting),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SettingsEvent {
    SettingsChanged { setting: Setting },
}

impl cqrs_es::DomainEvent for SettingsEvent {
    fn event_type(&self) -> String {
        "SettingsChanged".to_owned()
    }
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl cqrs_es::Aggregate for Settings {
    const TYPE: &'static str = "Settings";
    type Command = SettingsCommand;
    type Event = SettingsEvent;
    type Error = SettingsError;
    type Services = Services;

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let SettingsCommand::Change(setting) = command;
        if self.values.with(&setting) != self.values {
            sink.write(SettingsEvent::SettingsChanged { setting }, self)
                .await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let SettingsEvent::SettingsChanged { setting } = event;
        self.values = self.values.with(&setting);
    }
}
