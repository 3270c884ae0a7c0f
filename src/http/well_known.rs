//! Published documents: the JWK Set, the authorization server metadata (OIDC Discovery 1.0 and
//! RFC 8414, one document under two names) and the protected resource metadata (RFC 9728).
//! Every URL is built from the same path constants as the router, and every `*_supported`
//! list says what the server accepts with the settings in force; a test holds the two to each
//! other. Each document can be switched off in settings (404), as in Frappe.

use crate::oauth::id_token::{ACR_PASSWORD, ACR_TWO_FACTORS};
use authledger_domain::client::IdTokenAlg;
use authledger_domain::oauth::GrantType;
use authledger_domain::settings::SettingsValues;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{paths, AppState};

/// How long clients may cache the documents.
const MAX_AGE: &str = "public, max-age=300";

fn cacheable(body: Value) -> Response {
    (
        [
            (header::CACHE_CONTROL, HeaderValue::from_static(MAX_AGE)),
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        axum::Json(body),
    )
        .into_response()
}

fn switched_off() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        )],
        axum::Json(
            json!({ "error": "not_found", "error_description": "this document is switched off" }),
        ),
    )
        .into_response()
}

async fn settings(app: &AppState) -> Option<SettingsValues> {
    match app.authority.store.settings_values().await {
        Ok(settings) => Some(settings),
        Err(error) => {
            tracing::error!(%error, "loading settings failed");
            None
        }
    }
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({ "error": "temporarily_unavailable" })),
    )
        .into_response()
}

pub async fn jwks(State(app): State<AppState>) -> Response {
    cacheable(serde_json::to_value(app.authority.keys.jwks()).expect("a JWK Set serialises"))
}

/// The keys that sign the ledger's seals: what an auditor verifies them with.
pub async fn ledger_keys(State(app): State<AppState>) -> Response {
    match crate::ledger_seal::published(&app.authority.store.db).await {
        Ok(keys) => cacheable(keys),
        Err(error) => crate::oauth::error::TokenError::from(error).into_response(),
    }
}

/// The scopes whose meaning the server defines.
pub const SCOPES_SUPPORTED: [&str; 4] = ["openid", "profile", "email", "roles"];
pub const AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];

/// The authorization server metadata, shared by both well-known names.
pub fn metadata(issuer: &str, settings: &SettingsValues) -> Value {
    let url = |path: &str| format!("{issuer}{path}");
    let mut response_types = vec!["code"];
    let mut response_modes = vec!["query"];
    let mut grant_types = vec![
        "authorization_code",
        "refresh_token",
        "client_credentials",
        GrantType::DeviceCode.as_str(),
        GrantType::TokenExchange.as_str(),
    ];
    if settings.allow_implicit {
        response_types.push("token");
        response_modes.push("fragment");
        grant_types.push("implicit");
    }
    let algs: Vec<&str> = IdTokenAlg::ALL.iter().map(|a| a.as_str()).collect();
    let mut document = json!({
        "issuer": issuer,
        "authorization_endpoint": url(paths::AUTHORIZE),
        "token_endpoint": url(paths::TOKEN),
        "userinfo_endpoint": url(paths::USERINFO),
        "jwks_uri": url(paths::JWKS),
        "introspection_endpoint": url(paths::INTROSPECT),
        "revocation_endpoint": url(paths::REVOKE),
        "device_authorization_endpoint": url(paths::DEVICE_AUTHORIZATION),
        "end_session_endpoint": url(paths::LOGOUT),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "response_types_supported": response_types,
        "response_modes_supported": response_modes,
        "grant_types_supported": grant_types,
        "subject_types_supported": ["public"],
        "acr_values_supported": [ACR_PASSWORD, ACR_TWO_FACTORS],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "code_challenge_methods_supported": ["S256", "plain"],
        "scopes_supported": SCOPES_SUPPORTED,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "sid", "amr", "acr",
                             "name", "given_name", "family_name", "picture", "email", "roles"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    });
    if settings.enable_dynamic_registration {
        document["registration_endpoint"] = json!(url(paths::REGISTER));
    }
    document
}

pub async fn openid_configuration(State(app): State<AppState>) -> Response {
    match settings(&app).await {
        Some(s) if s.show_openid_configuration => cacheable(metadata(&app.authority.issuer, &s)),
        Some(_) => switched_off(),
        None => unavailable(),
    }
}

pub async fn authorization_server(State(app): State<AppState>) -> Response {
    match settings(&app).await {
        Some(s) if s.show_auth_server_metadata => cacheable(metadata(&app.authority.issuer, &s)),
        Some(_) => switched_off(),
        None => unavailable(),
    }
}

/// RFC 9728 §3: for `/.well-known/oauth-protected-resource/{path}` the resource is the issuer
/// with that path. A resource registered under that identifier (`authledger resource create`)
/// gives its own name and scopes; the settings describe any other.
async fn protected_resource(
    app: &AppState,
    settings: &SettingsValues,
    path: Option<&str>,
) -> Response {
    let issuer = &app.authority.issuer;
    let mut servers = vec![issuer.clone()];
    if settings.show_social_login_key_as_authorization_server {
        match crate::social_login::issuers(&app.authority.store).await {
            Ok(issuers) => servers.extend(issuers),
            Err(_) => return unavailable(),
        }
    }
    let resource = match path {
        Some(path) => format!("{issuer}/{}", path.trim_start_matches('/')),
        None => issuer.clone(),
    };
    let mut document = json!({
        "resource": resource,
        "authorization_servers": servers,
        "bearer_methods_supported": ["header", "body"],
        "scopes_supported": SCOPES_SUPPORTED,
    });
    let registered = match crate::admin::resources::find(&app.authority.store, &resource).await {
        Ok(found) => found,
        Err(_) => return unavailable(),
    };
    let mut resource_name = settings.resource_name.clone();
    if let Some(registered) = registered {
        let scopes: Vec<&str> = registered.settings.scopes.iter().collect();
        document["scopes_supported"] = json!(scopes);
        resource_name = Some(registered.settings.name.clone());
    }
    for (name, value) in [
        ("resource_name", resource_name),
        (
            "resource_documentation",
            settings
                .resource_documentation
                .as_ref()
                .map(|u| u.as_str().to_owned()),
        ),
        (
            "resource_policy_uri",
            settings
                .resource_policy_uri
                .as_ref()
                .map(|u| u.as_str().to_owned()),
        ),
        (
            "resource_tos_uri",
            settings
                .resource_tos_uri
                .as_ref()
                .map(|u| u.as_str().to_owned()),
        ),
    ] {
        if let Some(value) = value {
            document[name] = json!(value);
        }
    }
    cacheable(document)
}

pub async fn protected_resource_root(State(app): State<AppState>) -> Response {
    match settings(&app).await {
        Some(s) if s.show_protected_resource_metadata => protected_resource(&app, &s, None).await,
        Some(_) => switched_off(),
        None => unavailable(),
    }
}

pub async fn protected_resource_path(
    State(app): State<AppState>,
    Path(path): Path<String>,
) -> Response {
    match settings(&app).await {
        Some(s) if s.show_protected_resource_metadata => {
            protected_resource(&app, &s, Some(&path)).await
        }
        Some(_) => switched_off(),
        None => unavailable(),
    }
}
