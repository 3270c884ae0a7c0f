//! Settings as people type and read them: `settings set KEY VALUE` parses a value
//! ([`Setting::parse`]), and `settings show`, the console and the audit log print one
//! (`Display`, [`Setting::value`]).

use std::fmt;

use super::{ConsentMode, Setting, SettingsError};
use crate::oauth::{GrantType, Scopes, WebUrl};
use crate::secret::SecretHash;
use crate::user::{Role, TwoFactorPolicy};

/// `none` (or an empty value) clears an optional setting.
fn cleared(value: &str) -> bool {
    value.is_empty() || value == "none"
}

fn origin_ok(origin: &str) -> bool {
    match url::Url::parse(origin) {
        Ok(url) => {
            matches!(url.scheme(), "http" | "https")
                && url.host().is_some()
                && url.path() == "/"
                && !origin.ends_with('/')
                && url.query().is_none()
                && url.fragment().is_none()
        }
        Err(_) => false,
    }
}

impl Setting {
    pub fn key(&self) -> &'static str {
        self.into()
    }

    /// The value as `settings set` takes it back (`none` for an unset optional value).
    pub fn value(&self) -> String {
        let shown = self.to_string();
        shown
            .split_once(" = ")
            .map_or(shown.clone(), |(_, value)| value.to_owned())
    }

    /// Parses `settings set KEY VALUE`. The initial access token is hashed here: the value
    /// typed is the token itself, and only its SHA-256 enters the event.
    pub fn parse(key: &str, value: &str) -> Result<Setting, SettingsError> {
        let invalid = |key: &'static str, reason: &str| SettingsError::InvalidValue {
            key,
            reason: reason.to_owned(),
        };
        let seconds = |key: &'static str, min: u32, max: u32| {
            value
                .parse::<u32>()
                .ok()
                .filter(|v| (min..=max).contains(v))
                .ok_or_else(|| invalid(key, &format!("expected seconds between {min} and {max}")))
        };
        let boolean = |key: &'static str| match value {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(invalid(key, "expected `true` or `false`")),
        };
        let role_list = |key: &'static str| -> Result<Vec<String>, SettingsError> {
            value
                .split([' ', ','])
                .filter(|r| !r.is_empty() && *r != "none")
                .map(|r| {
                    Role::parse(r)
                        .map(|r| r.as_str().to_owned())
                        .map_err(|_| invalid(key, "role names separated by commas, or `none`"))
                })
                .collect()
        };
        let url = |key: &'static str| {
            if cleared(value) {
                Ok(None)
            } else {
                WebUrl::parse(value)
                    .map(Some)
                    .map_err(|_| invalid(key, "expected an absolute http or https URL, or `none`"))
            }
        };
        Ok(match key {
            "consent_mode" => Setting::ConsentMode(match value {
                "force" => ConsentMode::Force,
                "auto" => ConsentMode::Auto,
                _ => return Err(invalid("consent_mode", "expected `force` or `auto`")),
            }),
            "access_token_ttl" => Setting::AccessTokenTtl(seconds("access_token_ttl", 1, 86_400)?),
            "refresh_token_ttl" => {
                Setting::RefreshTokenTtl(seconds("refresh_token_ttl", 300, 366 * 86_400)?)
            }
            // RFC 6749 §4.1.2: a code lives at most ten minutes.
            "code_ttl" => Setting::CodeTtl(seconds("code_ttl", 1, 600)?),
            "device_code_ttl" => Setting::DeviceCodeTtl(seconds("device_code_ttl", 60, 3600)?),
            "device_poll_interval" => {
                Setting::DevicePollInterval(seconds("device_poll_interval", 1, 60)?)
            }
            "allow_implicit" => Setting::AllowImplicit(boolean("allow_implicit")?),
            "show_openid_configuration" => {
                Setting::ShowOpenidConfiguration(boolean("show_openid_configuration")?)
            }
            "show_auth_server_metadata" => {
                Setting::ShowAuthServerMetadata(boolean("show_auth_server_metadata")?)
            }
            "show_protected_resource_metadata" => {
                Setting::ShowProtectedResourceMetadata(boolean("show_protected_resource_metadata")?)
            }
            "show_social_login_key_as_authorization_server" => {
                Setting::ShowSocialLoginKeyAsAuthorizationServer(boolean(
                    "show_social_login_key_as_authorization_server",
                )?)
            }
            "resource_name" => Setting::ResourceName(if cleared(value) {
                None
            } else if value.chars().count() > 200 || value.chars().any(char::is_control) {
                return Err(invalid(
                    "resource_name",
                    "at most 200 characters, no control characters",
                ));
            } else {
                Some(value.to_owned())
            }),
            "site_name" => {
                let name = value.trim();
                if name.is_empty()
                    || name.chars().count() > 100
                    || name.chars().any(char::is_control)
                {
                    return Err(invalid(
                        "site_name",
                        "1 to 100 characters, no control characters",
                    ));
                }
                Setting::SiteName(name.to_owned())
            }
            "site_logo_uri" => Setting::SiteLogoUri(url("site_logo_uri")?),
            "session_lifetime" => {
                Setting::SessionLifetime(seconds("session_lifetime", 300, 30 * 86_400)?)
            }
            "console_admin_roles" => Setting::ConsoleAdminRoles(role_list("console_admin_roles")?),
            "console_auditor_roles" => {
                Setting::ConsoleAuditorRoles(role_list("console_auditor_roles")?)
            }
            "session_idle_timeout" => Setting::SessionIdleTimeout(match value {
                "0" | "off" => 0,
                _ => seconds("session_idle_timeout", 60, 30 * 86_400)?,
            }),
            "require_two_factor" => Setting::RequireTwoFactor(match value {
                "off" | "none" | "" => TwoFactorPolicy::Optional,
                "all" | "everyone" => TwoFactorPolicy::Everyone,
                roles => {
                    let roles = roles
                        .split([' ', ','])
                        .filter(|r| !r.is_empty())
                        .map(|r| Role::parse(r).map(|r| r.as_str().to_owned()))
                        .collect::<Result<_, _>>()
                        .map_err(|_| {
                            invalid(
                                "require_two_factor",
                                "`off`, `all`, or role names separated by commas",
                            )
                        })?;
                    TwoFactorPolicy::Roles(roles)
                }
            }),
            "resource_documentation" => {
                Setting::ResourceDocumentation(url("resource_documentation")?)
            }
            "resource_policy_uri" => Setting::ResourcePolicyUri(url("resource_policy_uri")?),
            "resource_tos_uri" => Setting::ResourceTosUri(url("resource_tos_uri")?),
            "enable_dynamic_registration" => {
                Setting::EnableDynamicRegistration(boolean("enable_dynamic_registration")?)
            }
            "registration_initial_access_token" => {
                Setting::RegistrationInitialAccessToken(if cleared(value) {
                    None
                } else if value.len() < 32 {
                    return Err(invalid(
                        "registration_initial_access_token",
                        "at least 32 characters (use a random value), or `none`",
                    ));
                } else {
                    Some(sha256(value))
                })
            }
            "login_max_failures" => Setting::LoginMaxFailures(
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|v| (1..=1000).contains(v))
                    .ok_or_else(|| invalid("login_max_failures", "1 to 1000"))?,
            ),
            "login_lockout_seconds" => Setting::LoginLockoutSeconds(
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|v| (1..=86_400).contains(v))
                    .ok_or_else(|| invalid("login_lockout_seconds", "seconds, 1 to 86400"))?,
            ),
            "registration_rate_limit" => Setting::RegistrationRateLimit(
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|v| (1..=100_000).contains(v))
                    .ok_or_else(|| {
                        invalid(
                            "registration_rate_limit",
                            "registrations per IP per minute, 1 to 100000",
                        )
                    })?,
            ),
            "registration_scopes" => Setting::RegistrationScopes(
                Scopes::parse(value)
                    .ok()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        invalid(
                            "registration_scopes",
                            "space-separated scopes, at least one",
                        )
                    })?,
            ),
            "registration_grant_types" => {
                let mut grants = std::collections::BTreeSet::new();
                for word in value.split([' ', ',']).filter(|w| !w.is_empty()) {
                    let grant = match word {
                        "device_code" => GrantType::DeviceCode,
                        "token_exchange" => GrantType::TokenExchange,
                        other => other
                            .parse::<GrantType>()
                            .map_err(|e| invalid("registration_grant_types", &e.to_string()))?,
                    };
                    if grant == GrantType::Implicit {
                        return Err(invalid(
                            "registration_grant_types",
                            "the implicit grant is never open to registrants (RFC 9700 §2.1.2)",
                        ));
                    }
                    grants.insert(grant);
                }
                if grants.is_empty() {
                    return Err(invalid(
                        "registration_grant_types",
                        "at least one grant type",
                    ));
                }
                Setting::RegistrationGrantTypes(grants)
            }
            "allowed_public_client_origins" => {
                let origins: Vec<String> = value
                    .split([' ', ','])
                    .filter(|o| !o.is_empty() && *o != "none")
                    .map(str::to_owned)
                    .collect();
                if let Some(bad) = origins.iter().find(|o| *o != "*" && !origin_ok(o)) {
                    return Err(SettingsError::InvalidValue {
                        key: "allowed_public_client_origins",
                        reason: format!("`{bad}` is not an origin such as https://app.example"),
                    });
                }
                Setting::AllowedPublicClientOrigins(origins)
            }
            "key_activation_delay" => {
                Setting::KeyActivationDelay(seconds("key_activation_delay", 0, 30 * 86_400)?)
            }
            "key_rotation_period" => {
                Setting::KeyRotationPeriod(seconds("key_rotation_period", 0, 5 * 366 * 86_400)?)
            }
            "ledger_seal_every" => Setting::LedgerSealEvery(
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|v| (1..=1_000_000).contains(v))
                    .ok_or_else(|| {
                        invalid(
                            "ledger_seal_every",
                            "expected a number of events, 1 to 1000000",
                        )
                    })?,
            ),
            "ledger_seal_interval" => {
                Setting::LedgerSealInterval(seconds("ledger_seal_interval", 1, 86_400)?)
            }
            "retention_days" => Setting::RetentionDays(
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|v| *v <= 36_600)
                    .ok_or_else(|| {
                        invalid("retention_days", "expected a number of days, 0 to 36600")
                    })?,
            ),
            other => return Err(SettingsError::UnknownKey(other.to_owned())),
        })
    }
}

fn sha256(raw: &str) -> SecretHash {
    use sha2::Digest;
    let hex = hex::encode(sha2::Sha256::digest(raw.as_bytes()));
    SecretHash::from_hex(&hex).expect("SHA-256 hex is a valid secret hash")
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |v: Option<&str>| v.unwrap_or("none").to_owned();
        let value = match self {
            Setting::ConsentMode(ConsentMode::Force) => "force".to_owned(),
            Setting::ConsentMode(ConsentMode::Auto) => "auto".to_owned(),
            Setting::AccessTokenTtl(v)
            | Setting::RefreshTokenTtl(v)
            | Setting::CodeTtl(v)
            | Setting::DeviceCodeTtl(v)
            | Setting::DevicePollInterval(v)
            | Setting::RegistrationRateLimit(v)
            | Setting::KeyActivationDelay(v)
            | Setting::KeyRotationPeriod(v)
            | Setting::LedgerSealEvery(v)
            | Setting::LedgerSealInterval(v)
            | Setting::RetentionDays(v)
            | Setting::LoginMaxFailures(v)
            | Setting::LoginLockoutSeconds(v)
            | Setting::SessionLifetime(v)
            | Setting::SessionIdleTimeout(v) => v.to_string(),
            Setting::AllowImplicit(v)
            | Setting::ShowOpenidConfiguration(v)
            | Setting::ShowAuthServerMetadata(v)
            | Setting::ShowProtectedResourceMetadata(v)
            | Setting::ShowSocialLoginKeyAsAuthorizationServer(v)
            | Setting::EnableDynamicRegistration(v) => v.to_string(),
            Setting::ResourceName(v) => shown(v.as_deref()),
            Setting::SiteName(v) => v.clone(),
            Setting::RequireTwoFactor(TwoFactorPolicy::Optional) => "off".to_owned(),
            Setting::RequireTwoFactor(TwoFactorPolicy::Everyone) => "all".to_owned(),
            Setting::RequireTwoFactor(TwoFactorPolicy::Roles(roles)) => {
                roles.iter().cloned().collect::<Vec<_>>().join(",")
            }
            Setting::SiteLogoUri(v) => shown(v.as_ref().map(WebUrl::as_str)),
            Setting::ResourceDocumentation(v)
            | Setting::ResourcePolicyUri(v)
            | Setting::ResourceTosUri(v) => shown(v.as_ref().map(WebUrl::as_str)),
            // Never the token; not even its hash, which means nothing to a reader.
            Setting::RegistrationInitialAccessToken(v) => {
                if v.is_some() { "(set)" } else { "none" }.to_owned()
            }
            Setting::ConsoleAdminRoles(v) | Setting::ConsoleAuditorRoles(v) if v.is_empty() => {
                "none".to_owned()
            }
            Setting::ConsoleAdminRoles(v) | Setting::ConsoleAuditorRoles(v) => v.join(","),
            Setting::RegistrationScopes(v) => v.to_string(),
            Setting::RegistrationGrantTypes(v) => {
                v.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(" ")
            }
            Setting::AllowedPublicClientOrigins(v) if v.is_empty() => "none".to_owned(),
            Setting::AllowedPublicClientOrigins(v) => v.join(" "),
        };
        write!(f, "{} = {value}", self.key())
    }
}
