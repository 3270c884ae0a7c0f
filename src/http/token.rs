//! `POST /oauth/token` (and Frappe's `get_token` alias).

use authledger_domain::metadata::Actor;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use super::context::RequestContext;
use super::AppState;
use crate::oauth::client_auth;
use crate::oauth::error::TokenError;
use crate::oauth::params::Params;
use crate::oauth::token::{exchange, TokenResponse, VerifierRules};

pub async fn token(
    State(app): State<AppState>,
    context: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(handle(&app, &context, &headers, &body, VerifierRules::Rfc7636).await)
}

/// Frappe's `get_token`: the same grants, with Frappe's lenient `code_verifier`.
pub async fn frappe_get_token(
    State(app): State<AppState>,
    context: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(handle(&app, &context, &headers, &body, VerifierRules::Frappe).await)
}

fn respond(result: Result<TokenResponse, TokenError>) -> Response {
    match result {
        Ok(tokens) => tokens.into_response(),
        Err(error) => error.into_response(),
    }
}

/// RFC 6749 §3.2: the token endpoint takes form-encoded bodies only.
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

async fn handle(
    app: &AppState,
    context: &RequestContext,
    headers: &HeaderMap,
    body: &[u8],
    rules: VerifierRules,
) -> Result<TokenResponse, TokenError> {
    if !is_form(headers) {
        return Err(TokenError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(body).map_err(|name| {
        TokenError::invalid_request(format!("parameter `{name}` appears more than once"))
    })?;
    let authority = &app.authority;
    let client = client_auth::authenticate(&authority.store, headers, &params).await?;
    let metadata = context.metadata(Actor::Client(client.client_id.clone()));
    exchange(authority, &client, &params, &metadata, rules).await
}
