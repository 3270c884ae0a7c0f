//! Published documents: the JWK Set and the OpenID Provider metadata. Paths come from the same
//! constants as the router.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{paths, AppState};

fn cacheable(body: serde_json::Value) -> Response {
    (
        [
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        axum::Json(body),
    )
        .into_response()
}

pub async fn jwks(State(app): State<AppState>) -> Response {
    cacheable(serde_json::to_value(app.authority.keys.jwks()).expect("a JWK Set serialises"))
}

/// OpenID Connect Discovery 1.0 §3 (the complete metadata is the discovery issue's work).
pub async fn openid_configuration(State(app): State<AppState>) -> Response {
    let issuer = &app.authority.issuer;
    cacheable(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}{}", paths::AUTHORIZE),
        "token_endpoint": format!("{issuer}{}", paths::TOKEN),
        "jwks_uri": format!("{issuer}{}", paths::JWKS),
        "response_types_supported": ["code", "token"],
        "response_modes_supported": ["query", "fragment"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "implicit"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA", "HS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256", "plain"],
        "scopes_supported": ["openid", "profile", "email", "roles"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp",
                             "name", "given_name", "family_name", "picture", "email", "roles"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
    }))
}
