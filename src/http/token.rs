//! `POST /oauth/token` (and Frappe's `get_token` alias).

use authledger_domain::metadata::Actor;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use super::context::RequestContext;
use super::AppState;
use authledger_domain::client::RegisteredClient;
use axum::Json;

use crate::oauth::client_auth;
use crate::oauth::error::{no_store, TokenError, TokenErrorCode};
use crate::oauth::introspect;
use crate::oauth::params::Params;
use crate::oauth::token::{exchange, TokenResponse, VerifierRules};
use crate::throttle::{Key, Policy, Verdict};
use crate::usage::ReadMetric;

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

/// The form of a client-authenticated endpoint (token, introspection, revocation), and the
/// client that sent it.
async fn authenticated(
    app: &AppState,
    context: &RequestContext,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Params, RegisteredClient), TokenError> {
    if !is_form(headers) {
        return Err(TokenError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(body).map_err(|e| TokenError::invalid_request(e.to_string()))?;
    let authority = &app.authority;
    let claimed = client_auth::claimed_client_id(headers, &params);
    let throttle_key = match (
        &claimed,
        context.ip.as_deref().and_then(|ip| ip.parse().ok()),
    ) {
        (Some(id), Some(ip)) => vec![Key::Client(id.clone(), ip)],
        _ => vec![],
    };
    let now = std::time::Instant::now();
    if let Verdict::Throttled { retry_after, .. } = app.throttle.check(&throttle_key, now) {
        let seconds = retry_after.as_secs().max(1);
        return Err(TokenError {
            retry_after: Some(seconds),
            ..TokenError::new(
                TokenErrorCode::TooManyAttempts,
                format!("too many failed authentications of this client from this address; retry after {seconds} s"),
            )
        });
    }
    match client_auth::authenticate(&authority.store, headers, &params).await {
        Ok(client) => Ok((params, client)),
        Err(error) => {
            if error.code == TokenErrorCode::InvalidClient {
                let settings = authority.store.settings_values().await?;
                app.throttle
                    .failed(&throttle_key, Policy::from_settings(&settings), now);
            }
            // Counted for registered clients only: a made-up client id must not become a
            // metric label or a usage row (unbounded, and attacker-chosen).
            if error.code == TokenErrorCode::InvalidClient
                && claimed
                    .as_deref()
                    .is_some_and(|id| authority.store.is_known_client(id))
            {
                authority.usage.count(
                    claimed.as_deref().unwrap_or_default(),
                    None,
                    ReadMetric::ClientAuthFailed,
                );
            }
            Err(error)
        }
    }
}

async fn handle(
    app: &AppState,
    context: &RequestContext,
    headers: &HeaderMap,
    body: &[u8],
    rules: VerifierRules,
) -> Result<TokenResponse, TokenError> {
    let (params, client) = authenticated(app, context, headers, body).await?;
    let metadata = context.metadata(Actor::Client(client.client_id.clone()));
    let grant_type = params.get("grant_type").unwrap_or_default().to_owned();
    let response = exchange(&app.authority, &client, &params, &metadata, rules).await?;
    app.authority
        .usage
        .tokens_issued
        .with_label_values(&[client.client_id.as_str(), grant_type.as_str()])
        .inc();
    Ok(response)
}

/// `POST /oauth/introspect` (RFC 7662) and Frappe's `introspect_token`.
pub async fn introspect(
    State(app): State<AppState>,
    context: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let (params, client) = authenticated(&app, &context, &headers, &body).await?;
        introspect::introspect(&app.authority, &client, &params).await
    }
    .await;
    match result {
        Ok(answer) => (no_store(), Json(answer)).into_response(),
        Err(error) => error.into_response(),
    }
}

/// `POST /oauth/revoke` (RFC 7009) and Frappe's `revoke_token`: 200 whatever the token was.
pub async fn revoke(
    State(app): State<AppState>,
    context: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let (params, client) = authenticated(&app, &context, &headers, &body).await?;
        let metadata = context.metadata(Actor::Client(client.client_id.clone()));
        introspect::revoke(&app.authority, &client, &params, &metadata).await
    }
    .await;
    match result {
        Ok(()) => (no_store(), Json(serde_json::json!({}))).into_response(),
        Err(error) => error.into_response(),
    }
}
