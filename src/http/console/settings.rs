//! `/admin/settings`: every setting as a form field with a line of help, grouped as Frappe's
//! OAuth Settings are; each change is one `SettingsChanged` event with the person as actor.

use askama::Template;
use authledger_domain::metadata::Actor;
use authledger_domain::settings::{Setting, SettingsCommand, SETTINGS_ID};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::SignedCookieJar;

use super::{change, operator, Operator, Refusal};
use crate::http::context::RequestContext;
use crate::http::pages::{render, Chrome};
use crate::http::AppState;

/// The groups, each setting's key and its help.
const GROUPS: [(&str, &[(&str, &str)]); 6] = [
    (
        "Consent and tokens",
        &[
            ("consent_mode", "force: always ask people; auto: ask only for scopes they have not allowed yet."),
            ("access_token_ttl", "Seconds an access token lives (1 to 86400)."),
            ("refresh_token_ttl", "Seconds a refresh token lives (300 to a year)."),
            ("code_ttl", "Seconds an authorization code may wait to be exchanged (at most 600, RFC 6749)."),
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
        "This site and its console",
        &[
            ("site_name", "The name people see on every page."),
            ("site_logo_uri", "An https logo shown beside it, or none."),
            ("console_admin_roles", "Roles whose holders may change everything here."),
            ("console_auditor_roles", "Roles whose holders may see everything here and change nothing."),
        ],
    ),
];

struct Field {
    key: &'static str,
    value: String,
    help: &'static str,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/settings.html")]
struct SettingsPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    groups: Vec<(&'static str, Vec<Field>)>,
}

fn groups(
    current: &[Setting],
    failed: Option<(&str, &str, String)>,
) -> Vec<(&'static str, Vec<Field>)> {
    GROUPS
        .iter()
        .map(|(title, keys)| {
            let fields = keys
                .iter()
                .map(|(key, help)| {
                    let shown = current
                        .iter()
                        .find(|s| s.key() == *key)
                        .map(Setting::value)
                        .unwrap_or_default();
                    let (value, error) = match &failed {
                        Some((k, typed, why)) if k == key => {
                            ((*typed).to_owned(), Some(why.clone()))
                        }
                        // A secret is never shown back, not even its hash.
                        _ if *key == "registration_initial_access_token" => (String::new(), None),
                        _ => (shown, None),
                    };
                    Field {
                        key,
                        value,
                        help,
                        error,
                    }
                })
                .collect();
            (*title, fields)
        })
        .collect()
}

async fn page(
    app: &AppState,
    jar: SignedCookieJar,
    uri: &axum::http::Uri,
    failed: Option<(&str, &str, String)>,
) -> Result<Response, Refusal> {
    let (jar, operator) = operator(app, jar, uri).await?;
    let current = app.authority.store.settings_values().await?.all();
    let status = if failed.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = SettingsPage {
        chrome: &operator.chrome,
        operator: &operator,
        groups: groups(&current, failed),
    };
    Ok((jar, render(status, &page)).into_response())
}

pub async fn show(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> Response {
    page(&app, jar, &uri, None)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/settings`: one setting, `key` and `value`; a value that does not parse is
/// shown next to its field, and nothing changes.
pub async fn set(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    context: RequestContext,
    body: Bytes,
) -> Response {
    let done = async {
        let (operator, form) = change(&app, jar.clone(), &uri, &body).await?;
        let key = form.get("key").unwrap_or_default();
        let value = form.get("value").unwrap_or_default().trim();
        let setting = match Setting::parse(key, value) {
            Ok(setting) => setting,
            Err(error) => {
                return page(&app, jar, &uri, Some((key, value, error.to_string()))).await
            }
        };
        app.authority
            .store
            .settings
            .execute(
                SETTINGS_ID,
                SettingsCommand::Change(setting),
                &context.metadata(Actor::User(operator.username)),
            )
            .await
            .map_err(crate::error::settings_error)?;
        Ok(Redirect::to(&format!("/admin/settings#{key}")).into_response())
    };
    done.await.unwrap_or_else(IntoResponse::into_response)
}
