//! `GET/POST /oauth/userinfo` (OIDC Core §5.3) and Frappe's `openid_profile`: the signed-in
//! person's claims, for a bearer access token with scope `openid`, filtered by its scopes.
//! Served from the views (token index, users, clients), never from aggregates.

use authledger_domain::oauth::Scopes;
use authledger_projections::clients::ClientsView;
use authledger_projections::users::UsersView;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::bearer::{self, BearerError};
use super::AppState;
use crate::error::AppError;
use crate::oauth::id_token::user_claims;
use crate::oauth::introspect::active_token;
use crate::oauth::params::Params;
use crate::usage::ReadMetric;

/// A refusal, pointing at the protected-resource metadata (RFC 9728 §5.1).
fn refuse(app: &AppState, error: BearerError) -> Response {
    let metadata = format!(
        "{}/.well-known/oauth-protected-resource",
        app.authority.issuer
    );
    error.with_resource_metadata(metadata).into_response()
}

/// RFC 6750 §2.1 (header) and §2.2 (form body, POST only).
fn bearer(method: &Method, headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let from_header = bearer::from_header(headers).map(str::to_owned);
    from_header.or_else(|| {
        (*method == Method::POST)
            .then(|| {
                Params::parse(body)
                    .ok()?
                    .get("access_token")
                    .map(str::to_owned)
            })
            .flatten()
    })
}

pub async fn userinfo(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match answer(&app, &method, &headers, &body).await {
        Ok(response) => response,
        Err(error) if error.is_unavailable() => super::surface::Surface::OAuth.error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is temporarily unavailable; retry shortly",
            None,
        ),
        Err(error) => {
            let mut response = super::surface::Surface::OAuth.error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
                None,
            );
            if let Some(failure) = super::failure::Failure::of(error) {
                failure.attach(&mut response);
            }
            response
        }
    }
}

async fn answer(
    app: &AppState,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, AppError> {
    let authority = &app.authority;
    let invalid = || {
        refuse(
            app,
            BearerError::invalid_token("the access token is missing, invalid, expired or revoked"),
        )
    };
    let Some(presented) = bearer(method, headers, body) else {
        return Ok(invalid());
    };
    let Some(token) = active_token(authority, &presented)
        .await?
        .filter(|t| t.kind == "access")
    else {
        return Ok(invalid());
    };
    let Some(username) = token
        .username
        .as_deref()
        .filter(|_| token.has_scope("openid"))
    else {
        return Ok(refuse(
            app,
            BearerError::insufficient_scope("the token lacks scope openid").with_scope("openid"),
        ));
    };
    let db = &authority.store.db;
    let (Some(user), Some(client)) = (
        UsersView::get(db, username).await?,
        ClientsView::get(db, &token.client_id).await?,
    ) else {
        return Ok(invalid());
    };
    let scopes = Scopes::parse(&token.scopes).unwrap_or_default();
    let mut claims = user_claims(
        &user.profile,
        &user.roles,
        &scopes,
        client.metadata.frappe_claims,
    );
    claims.insert("sub".into(), json!(user.username));
    if client.metadata.frappe_claims {
        claims.insert("iss".into(), json!(authority.issuer));
    }
    authority
        .usage
        .count(&token.client_id, Some(username), ReadMetric::Userinfo);
    Ok(Json(serde_json::Value::Object(claims)).into_response())
}
