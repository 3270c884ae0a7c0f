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

use crate::oauth::client_auth::{self, Credentials};
use crate::oauth::error::{TokenError, TokenErrorCode};
use crate::oauth::exchange::ExchangeRequest;
use crate::oauth::grants::{exchange, TokenRequest, TokenResponse, VerifierRules};
use crate::oauth::introspect;
use crate::oauth::params::Params;
use crate::throttle::{Key, Policy, Verdict};
use crate::usage::ReadMetric;
use authledger_domain::grant::TokenType;
use authledger_domain::oauth::{GrantType, Scopes};
use authledger_domain::pkce::CodeVerifier;

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
pub(super) async fn authenticated(
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
    let credentials = Credentials {
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
        client_id: params.get("client_id"),
        client_secret: params.get("client_secret"),
    };
    let claimed = client_auth::claimed_client_id(credentials);
    let throttle_key = match (
        &claimed,
        context.ip.as_deref().and_then(|ip| ip.parse().ok()),
    ) {
        (Some(id), Some(ip)) => vec![Key::Client(id.clone(), ip)],
        _ => vec![],
    };
    let now = std::time::Instant::now();
    if let Verdict::Throttled { retry_after, .. } = app.throttle.check(&throttle_key, now) {
        authority
            .store
            .metrics
            .rate_limited("client_authentication");
        let seconds = retry_after.as_secs().max(1);
        return Err(TokenError {
            retry_after: Some(seconds),
            ..TokenError::new(
                TokenErrorCode::TooManyAttempts,
                format!("too many failed authentications of this client from this address; retry after {seconds} s"),
            )
        });
    }
    match client_auth::authenticate(&authority.store, credentials).await {
        Ok(client) => {
            super::request_log::note_client(client.client_id.as_str());
            Ok((params, client))
        }
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
                super::request_log::note_client(claimed.as_deref().unwrap_or_default());
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
    let request = token_request(&params, rules)?;
    let grant_type = request.grant_type();
    let response = exchange(&app.authority, &client, request, &metadata).await?;
    app.authority
        .usage
        .tokens_issued
        .with_label_values(&[client.client_id.as_str(), grant_type.as_str()])
        .inc();
    Ok(response)
}

/// The token request a form makes (RFC 6749 §4.1.3, §4.4.2, §6): a missing `grant_type` or a
/// missing parameter its grant needs is `invalid_request`, a grant this endpoint does not serve
/// `unsupported_grant_type`.
fn token_request(params: &Params, rules: VerifierRules) -> Result<TokenRequest, TokenError> {
    let required = |name: &str| {
        params
            .get(name)
            .map(str::to_owned)
            .ok_or_else(|| TokenError::invalid_request(format!("{name} is required")))
    };
    let scope = || {
        params
            .get("scope")
            .map(Scopes::parse)
            .transpose()
            .map_err(|e| TokenError::new(TokenErrorCode::InvalidScope, e.to_string()))
    };
    let grant_type = required("grant_type")?;
    let resources = || {
        params
            .get_all("resource")
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    match grant_type.parse::<GrantType>() {
        Ok(GrantType::AuthorizationCode) => Ok(TokenRequest::AuthorizationCode {
            code: required("code")?.into(),
            redirect_uri: params.get("redirect_uri").map(str::to_owned),
            code_verifier: params
                .get("code_verifier")
                .map(|raw| match rules {
                    VerifierRules::Rfc7636 => CodeVerifier::parse(raw),
                    VerifierRules::Frappe => CodeVerifier::parse_lenient(raw),
                })
                .transpose()
                .map_err(|e| TokenError::invalid_request(e.to_string()))?,
            resources: resources(),
        }),
        Ok(GrantType::RefreshToken) => Ok(TokenRequest::RefreshToken {
            refresh_token: required("refresh_token")?.into(),
            scope: scope()?,
            resources: resources(),
        }),
        Ok(GrantType::ClientCredentials) => Ok(TokenRequest::ClientCredentials {
            scope: scope()?,
            resources: resources(),
        }),
        Ok(GrantType::DeviceCode) => Ok(TokenRequest::DeviceCode {
            device_code: required("device_code")?.into(),
            resources: resources(),
        }),
        Ok(GrantType::TokenExchange) => exchange_request(params, scope()?, resources()),
        Ok(GrantType::Implicit) | Err(_) => Err(TokenError::new(
            TokenErrorCode::UnsupportedGrantType,
            format!("grant_type `{grant_type}` is not supported"),
        )),
    }
}

/// RFC 8693 §2.1. Only access tokens are issued; subjects are access or ID tokens of this
/// server, actors access tokens; `audience` names registered resources as `resource` does.
fn exchange_request(
    params: &Params,
    scope: Option<Scopes>,
    mut resources: Vec<String>,
) -> Result<TokenRequest, TokenError> {
    let required = |name: &str| {
        params
            .get(name)
            .ok_or_else(|| TokenError::invalid_request(format!("{name} is required")))
    };
    let token_type = |name: &str, allowed: &[TokenType]| {
        let raw = required(name)?;
        TokenType::parse(raw)
            .filter(|t| allowed.contains(t))
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|t| t.as_str()).collect();
                TokenError::invalid_request(format!(
                    "{name} `{raw}` is not supported here (supported: {})",
                    names.join(", ")
                ))
            })
    };
    let subject_token_type = token_type(
        "subject_token_type",
        &[TokenType::AccessToken, TokenType::IdToken, TokenType::Jwt],
    )?;
    let actor_token = match (params.get("actor_token"), params.get("actor_token_type")) {
        (Some(token), Some(_)) => {
            token_type("actor_token_type", &[TokenType::AccessToken])?;
            Some(token.to_owned().into())
        }
        (Some(_), None) => {
            return Err(TokenError::invalid_request(
                "actor_token_type is required with actor_token",
            ))
        }
        (None, Some(_)) => {
            return Err(TokenError::invalid_request(
                "actor_token_type must not be sent without actor_token",
            ))
        }
        (None, None) => None,
    };
    if let Some(asked) = params.get("requested_token_type") {
        if asked != TokenType::AccessToken.as_str() {
            return Err(TokenError::invalid_request(format!(
                "requested_token_type `{asked}` is not issued here (only {})",
                TokenType::AccessToken.as_str()
            )));
        }
    }
    resources.extend(params.get_all("audience").into_iter().map(str::to_owned));
    Ok(TokenRequest::TokenExchange(ExchangeRequest {
        subject_token: required("subject_token")?.to_owned().into(),
        subject_token_type,
        actor_token,
        scope,
        resources,
    }))
}

/// The `token` of an introspection (RFC 7662 §2.1) or revocation (RFC 7009 §2.1).
fn token_parameter(params: &Params) -> Result<&str, TokenError> {
    params
        .get("token")
        .ok_or_else(|| TokenError::invalid_request("token is required"))
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
        introspect::introspect(&app.authority, &client, token_parameter(&params)?).await
    }
    .await;
    if let Ok(answer) = &result {
        let active = answer["active"] == serde_json::Value::Bool(true);
        app.authority.store.metrics.introspection(active);
    }
    match result {
        Ok(answer) => Json(answer).into_response(),
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
        introspect::revoke(
            &app.authority,
            &client,
            token_parameter(&params)?,
            &metadata,
        )
        .await
    }
    .await;
    match result {
        Ok(()) => Json(serde_json::json!({})).into_response(),
        Err(error) => error.into_response(),
    }
}
