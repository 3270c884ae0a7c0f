//! The `Settings` aggregate (singleton, id [`SETTINGS_ID`]): the server's OAuth settings,
//! Frappe's "OAuth Settings". Each change is one event naming the setting and its new value.

mod help;
#[cfg(test)]
mod tests;
mod text;

pub use help::GROUPS;

use serde::{Deserialize, Serialize};

use std::collections::BTreeSet;

use crate::oauth::{GrantType, Scopes, WebUrl};
use crate::secret::SecretHash;
use crate::services::Services;
use crate::user::TwoFactorPolicy;

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

/// One setting with its value. The wire name of each is what `settings set KEY VALUE` takes;
/// the event's `key`, [`Setting::key`] and the list of known keys all derive from the variant
/// names.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::VariantNames,
)]
#[serde(tag = "key", content = "value", rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Setting {
    ConsentMode(ConsentMode),
    AccessTokenTtl(u32),
    RefreshTokenTtl(u32),
    CodeTtl(u32),
    /// Seconds a person has to approve a device (RFC 8628 §3.2 `expires_in`).
    DeviceCodeTtl(u32),
    /// Seconds a device waits between polls (RFC 8628 §3.2 `interval`).
    DevicePollInterval(u32),
    AllowImplicit(bool),
    /// Serve `/.well-known/openid-configuration` (404 when off).
    ShowOpenidConfiguration(bool),
    /// Serve `/.well-known/oauth-authorization-server` (RFC 8414).
    ShowAuthServerMetadata(bool),
    /// Serve `/.well-known/oauth-protected-resource` (RFC 9728).
    ShowProtectedResourceMetadata(bool),
    /// List the enabled social login providers' issuers among the protected resource's
    /// `authorization_servers` (Frappe's setting of this name).
    ShowSocialLoginKeyAsAuthorizationServer(bool),
    ResourceName(Option<String>),
    ResourceDocumentation(Option<WebUrl>),
    ResourcePolicyUri(Option<WebUrl>),
    ResourceTosUri(Option<WebUrl>),
    /// Accept RFC 7591 dynamic client registration.
    EnableDynamicRegistration(bool),
    /// When set, registration requires this initial access token (RFC 7591 §3); only its
    /// SHA-256 is kept.
    RegistrationInitialAccessToken(Option<SecretHash>),
    /// Registrations accepted per client IP address per minute.
    RegistrationRateLimit(u32),
    /// The scopes a dynamically registered client may register.
    RegistrationScopes(Scopes),
    /// The grant types a dynamically registered client may register (never `implicit`).
    RegistrationGrantTypes(BTreeSet<GrantType>),
    /// Browser origins allowed to call the token, revocation, introspection, userinfo and
    /// registration endpoints (CORS); `*` allows every origin.
    AllowedPublicClientOrigins(Vec<String>),
    /// Seconds a new signing key is published before it signs (JWKS caches refresh meanwhile).
    KeyActivationDelay(u32),
    /// Seconds after which a signing key is replaced automatically; 0 turns that off.
    KeyRotationPeriod(u32),
    /// Events after which the ledger's chain head is sealed (signed), at the latest.
    LedgerSealEvery(u32),
    /// Seconds after which new events are sealed, however few.
    LedgerSealInterval(u32),
    /// Days the events of an ended grant stay in the live log before `ledger archive` may
    /// move them to a segment; 0 keeps them there.
    RetentionDays(u32),
    /// Failed sign-ins (or client authentications) allowed before each further failure
    /// makes the account, address or client wait, twice as long each time.
    LoginMaxFailures(u32),
    /// The longest such wait, in seconds: the temporary lock after many failures.
    LoginLockoutSeconds(u32),
    /// The name people see on the sign-in, consent and account pages.
    SiteName(String),
    /// The logo shown beside it (an absolute http or https URL), or none.
    SiteLogoUri(Option<WebUrl>),
    /// Who must sign in with a second factor: `off`, `all`, or roles (e.g. `admin`).
    RequireTwoFactor(TwoFactorPolicy),
    /// Seconds a sign-in lasts at most, however active the person is.
    SessionLifetime(u32),
    /// Seconds without a page view after which a sign-in ends; 0 turns that off.
    SessionIdleTimeout(u32),
    /// Roles whose holders may see and change everything in the console (`/admin`).
    ConsoleAdminRoles(Vec<String>),
    /// Roles whose holders may see everything in the console and change nothing.
    ConsoleAuditorRoles(Vec<String>),
}

/// The settings in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SettingsValues {
    pub consent_mode: ConsentMode,
    /// Seconds.
    pub access_token_ttl: u32,
    /// Seconds.
    pub refresh_token_ttl: u32,
    /// Seconds an authorization code stays redeemable.
    pub code_ttl: u32,
    /// Seconds a device code waits for a person's decision.
    pub device_code_ttl: u32,
    /// Seconds between a device's polls.
    pub device_poll_interval: u32,
    /// Whether `response_type=token` may be used by clients registered for it.
    pub allow_implicit: bool,
    pub show_openid_configuration: bool,
    pub show_auth_server_metadata: bool,
    pub show_protected_resource_metadata: bool,
    pub show_social_login_key_as_authorization_server: bool,
    pub resource_name: Option<String>,
    pub resource_documentation: Option<WebUrl>,
    pub resource_policy_uri: Option<WebUrl>,
    pub resource_tos_uri: Option<WebUrl>,
    pub enable_dynamic_registration: bool,
    pub registration_initial_access_token: Option<SecretHash>,
    pub registration_rate_limit: u32,
    pub registration_scopes: Scopes,
    pub registration_grant_types: BTreeSet<GrantType>,
    pub allowed_public_client_origins: Vec<String>,
    pub key_activation_delay: u32,
    pub key_rotation_period: u32,
    pub ledger_seal_every: u32,
    pub ledger_seal_interval: u32,
    pub retention_days: u32,
    pub login_max_failures: u32,
    pub login_lockout_seconds: u32,
    pub site_name: String,
    pub site_logo_uri: Option<WebUrl>,
    pub require_two_factor: TwoFactorPolicy,
    pub session_lifetime: u32,
    pub session_idle_timeout: u32,
    pub console_admin_roles: Vec<String>,
    pub console_auditor_roles: Vec<String>,
}

impl Default for SettingsValues {
    fn default() -> Self {
        SettingsValues {
            consent_mode: ConsentMode::Force,
            access_token_ttl: 3600,
            refresh_token_ttl: 30 * 24 * 3600,
            code_ttl: 60,
            // Ten minutes and five seconds, as RFC 8628's examples, Keycloak and Hydra.
            device_code_ttl: 600,
            device_poll_interval: 5,
            allow_implicit: false,
            show_openid_configuration: true,
            show_auth_server_metadata: true,
            show_protected_resource_metadata: true,
            show_social_login_key_as_authorization_server: false,
            resource_name: None,
            resource_documentation: None,
            resource_policy_uri: None,
            resource_tos_uri: None,
            // Off until an operator opts in, as in Frappe: anyone who can reach the server
            // could otherwise register clients.
            enable_dynamic_registration: false,
            registration_initial_access_token: None,
            registration_rate_limit: 10,
            // What an agent (an MCP client) that registers itself needs: a person's sign-in
            // with refresh, the device grant, or acting for itself; never consent-skipping
            // or the implicit grant.
            registration_scopes: Scopes::parse("openid profile email roles offline_access")
                .expect("the default registration scopes parse"),
            registration_grant_types: BTreeSet::from([
                GrantType::AuthorizationCode,
                GrantType::RefreshToken,
                GrantType::ClientCredentials,
                GrantType::DeviceCode,
            ]),
            allowed_public_client_origins: vec![],
            key_activation_delay: 3600,
            key_rotation_period: 0,
            ledger_seal_every: 1000,
            ledger_seal_interval: 60,
            // Nothing leaves the live log until an operator decides how long history stays.
            retention_days: 0,
            // Five tries for a typo, then 1, 2, 4, ... seconds, at most 15 minutes: online
            // guessing gets a few hundred tries a day per account instead of millions.
            login_max_failures: 5,
            login_lockout_seconds: 900,
            site_name: "authledger".to_owned(),
            site_logo_uri: None,
            require_two_factor: TwoFactorPolicy::Optional,
            // As before lifetimes were settings: twelve hours, however idle.
            session_lifetime: crate::user::SESSION_LIFETIME.num_seconds() as u32,
            session_idle_timeout: 0,
            console_admin_roles: vec!["admin".to_owned()],
            console_auditor_roles: vec!["auditor".to_owned()],
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("unknown setting `{0}` (known: {known})", known = <Setting as strum::VariantNames>::VARIANTS.join(", "))]
    UnknownKey(String),
    #[error("{key}: {reason}")]
    InvalidValue { key: &'static str, reason: String },
}

impl SettingsValues {
    /// Every setting with its value in force, in the order they are declared.
    pub fn all(&self) -> Vec<Setting> {
        let v = self.clone();
        vec![
            Setting::ConsentMode(v.consent_mode),
            Setting::AccessTokenTtl(v.access_token_ttl),
            Setting::RefreshTokenTtl(v.refresh_token_ttl),
            Setting::CodeTtl(v.code_ttl),
            Setting::DeviceCodeTtl(v.device_code_ttl),
            Setting::DevicePollInterval(v.device_poll_interval),
            Setting::AllowImplicit(v.allow_implicit),
            Setting::ShowOpenidConfiguration(v.show_openid_configuration),
            Setting::ShowAuthServerMetadata(v.show_auth_server_metadata),
            Setting::ShowProtectedResourceMetadata(v.show_protected_resource_metadata),
            Setting::ShowSocialLoginKeyAsAuthorizationServer(
                v.show_social_login_key_as_authorization_server,
            ),
            Setting::ResourceName(v.resource_name),
            Setting::ResourceDocumentation(v.resource_documentation),
            Setting::ResourcePolicyUri(v.resource_policy_uri),
            Setting::ResourceTosUri(v.resource_tos_uri),
            Setting::EnableDynamicRegistration(v.enable_dynamic_registration),
            Setting::RegistrationInitialAccessToken(v.registration_initial_access_token),
            Setting::RegistrationRateLimit(v.registration_rate_limit),
            Setting::RegistrationScopes(v.registration_scopes),
            Setting::RegistrationGrantTypes(v.registration_grant_types),
            Setting::AllowedPublicClientOrigins(v.allowed_public_client_origins),
            Setting::KeyActivationDelay(v.key_activation_delay),
            Setting::KeyRotationPeriod(v.key_rotation_period),
            Setting::LedgerSealEvery(v.ledger_seal_every),
            Setting::LedgerSealInterval(v.ledger_seal_interval),
            Setting::RetentionDays(v.retention_days),
            Setting::LoginMaxFailures(v.login_max_failures),
            Setting::LoginLockoutSeconds(v.login_lockout_seconds),
            Setting::SiteName(v.site_name),
            Setting::SiteLogoUri(v.site_logo_uri),
            Setting::RequireTwoFactor(v.require_two_factor),
            Setting::SessionLifetime(v.session_lifetime),
            Setting::SessionIdleTimeout(v.session_idle_timeout),
            Setting::ConsoleAdminRoles(v.console_admin_roles),
            Setting::ConsoleAuditorRoles(v.console_auditor_roles),
        ]
    }

    fn with(&self, setting: &Setting) -> SettingsValues {
        let mut next = self.clone();
        match setting.clone() {
            Setting::ConsentMode(mode) => next.consent_mode = mode,
            Setting::AccessTokenTtl(v) => next.access_token_ttl = v,
            Setting::RefreshTokenTtl(v) => next.refresh_token_ttl = v,
            Setting::CodeTtl(v) => next.code_ttl = v,
            Setting::DeviceCodeTtl(v) => next.device_code_ttl = v,
            Setting::DevicePollInterval(v) => next.device_poll_interval = v,
            Setting::AllowImplicit(v) => next.allow_implicit = v,
            Setting::ShowOpenidConfiguration(v) => next.show_openid_configuration = v,
            Setting::ShowAuthServerMetadata(v) => next.show_auth_server_metadata = v,
            Setting::ShowProtectedResourceMetadata(v) => next.show_protected_resource_metadata = v,
            Setting::ShowSocialLoginKeyAsAuthorizationServer(v) => {
                next.show_social_login_key_as_authorization_server = v
            }
            Setting::ResourceName(v) => next.resource_name = v,
            Setting::ResourceDocumentation(v) => next.resource_documentation = v,
            Setting::ResourcePolicyUri(v) => next.resource_policy_uri = v,
            Setting::ResourceTosUri(v) => next.resource_tos_uri = v,
            Setting::EnableDynamicRegistration(v) => next.enable_dynamic_registration = v,
            Setting::RegistrationInitialAccessToken(v) => {
                next.registration_initial_access_token = v
            }
            Setting::RegistrationRateLimit(v) => next.registration_rate_limit = v,
            Setting::RegistrationScopes(v) => next.registration_scopes = v,
            Setting::RegistrationGrantTypes(v) => next.registration_grant_types = v,
            Setting::AllowedPublicClientOrigins(v) => next.allowed_public_client_origins = v,
            Setting::KeyActivationDelay(v) => next.key_activation_delay = v,
            Setting::KeyRotationPeriod(v) => next.key_rotation_period = v,
            Setting::LedgerSealEvery(v) => next.ledger_seal_every = v,
            Setting::LedgerSealInterval(v) => next.ledger_seal_interval = v,
            Setting::RetentionDays(v) => next.retention_days = v,
            Setting::LoginMaxFailures(v) => next.login_max_failures = v,
            Setting::LoginLockoutSeconds(v) => next.login_lockout_seconds = v,
            Setting::SiteName(v) => next.site_name = v,
            Setting::SiteLogoUri(v) => next.site_logo_uri = v,
            Setting::RequireTwoFactor(v) => next.require_two_factor = v,
            Setting::SessionLifetime(v) => next.session_lifetime = v,
            Setting::SessionIdleTimeout(v) => next.session_idle_timeout = v,
            Setting::ConsoleAdminRoles(v) => next.console_admin_roles = v,
            Setting::ConsoleAuditorRoles(v) => next.console_auditor_roles = v,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::VariantNames)]
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
