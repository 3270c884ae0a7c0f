//! What each setting means, in a line, for the console and the command line.

/// Every setting's key and a line of help, grouped as Frappe's OAuth Settings are: what the
/// console's settings page and `authledger settings set --help` show.
pub const GROUPS: [(&str, &[(&str, &str)]); 7] = [
    (
        "Consent and tokens",
        &[
            ("consent_mode", "force: always ask people; auto: ask only for scopes they have not allowed yet."),
            ("access_token_ttl", "Seconds an access token lives (1 to 86400)."),
            ("refresh_token_ttl", "Seconds a refresh token lives (300 to a year)."),
            ("code_ttl", "Seconds an authorization code may wait to be exchanged (at most 600, RFC 6749)."),
            ("device_code_ttl", "Seconds a person has to approve a device with its user code (60 to 3600, RFC 8628)."),
            ("device_poll_interval", "Seconds a device is told to wait between polls (1 to 60); polling faster gets slow_down."),
            ("allow_implicit", "true lets clients registered for it use the implicit grant (not recommended, RFC 9700)."),
        ],
    ),
    (
        "Discovery",
        &[
            ("show_openid_configuration", "Serve /.well-known/openid-configuration."),
            ("show_auth_server_metadata", "Serve /.well-known/oauth-authorization-server (RFC 8414)."),
            ("show_protected_resource_metadata", "Serve /.well-known/oauth-protected-resource (RFC 9728)."),
            ("show_social_login_key_as_authorization_server", "true lists the enabled social login providers' issuers among the protected resource's authorization servers."),
            ("resource_name", "The protected resource's name in its metadata, or none."),
            ("resource_documentation", "A URL documenting the resource, or none."),
            ("resource_policy_uri", "The resource's policy URL, or none."),
            ("resource_tos_uri", "The resource's terms URL, or none."),
        ],
    ),
    (
        "Dynamic client registration",
        &[
            ("enable_dynamic_registration", "true accepts RFC 7591 registrations at /oauth/register."),
            ("registration_initial_access_token", "A token registrants must present (at least 32 characters), or none. Only its hash is kept."),
            ("registration_rate_limit", "Registrations accepted per address per minute."),
            ("registration_scopes", "Scopes a registrant may register, space-separated (default: openid profile email roles offline_access)."),
            ("registration_grant_types", "Grant types a registrant may register (default: authorization_code refresh_token client_credentials device_code; never implicit)."),
            ("allowed_public_client_origins", "Browser origins allowed to call the token endpoints (CORS), space-separated, or *."),
        ],
    ),
    (
        "Sign-in and sessions",
        &[
            ("login_max_failures", "Failed sign-ins allowed before each further one makes the account wait."),
            ("login_lockout_seconds", "The longest such wait, in seconds."),
            ("require_two_factor", "off, all, or roles (comma-separated) whose holders must use a second factor."),
            ("session_lifetime", "Seconds a sign-in lasts at most."),
            ("session_idle_timeout", "Seconds without a page view after which a sign-in ends; 0 for none."),
        ],
    ),
    (
        "Signing keys",
        &[
            ("key_activation_delay", "Seconds a new key is published before it signs."),
            ("key_rotation_period", "Seconds after which keys rotate by themselves; 0 for never."),
        ],
    ),
    (
        "The ledger",
        &[
            ("ledger_seal_every", "Events after which the chain head is sealed (signed), at the latest (1 to 1000000)."),
            ("ledger_seal_interval", "Seconds after which new events are sealed, however few (1 to 86400)."),
            ("retention_days", "Days an ended grant's events stay in the live log before `ledger archive` moves them to a segment; 0 keeps them (0 to 36600)."),
        ],
    ),
    (
        "This site and its console",
        &[
            ("site_name", "The name people see on every page."),
            ("site_logo_uri", "An https logo shown beside it, or none."),
            ("console_admin_roles", "Roles whose holders may change everything here."),
            ("console_auditor_roles", "Roles whose holders may see everything here and change nothing."),
        ],
    ),
];

#[cfg(test)]
mod tests {
    use super::GROUPS;

    #[test]
    fn every_setting_has_a_line_of_help_once() {
        let helped: Vec<&str> = GROUPS
            .iter()
            .flat_map(|(_, keys)| keys.iter().map(|(k, _)| *k))
            .collect();
        let all = <super::super::Setting as strum::VariantNames>::VARIANTS;
        assert_eq!(helped.len(), all.len(), "{helped:?}");
        for key in all {
            assert!(helped.contains(key), "{key} has no help");
        }
    }
}
