//! `POST /oauth/register` (RFC 7591, and Frappe's `register_client`) and
//! `GET/PUT/DELETE /oauth/register/{client_id}` (RFC 7592).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use authledger_domain::client::{ClientStatus, RegistrationSource};
use authledger_domain::metadata::Actor;
use authledger_domain::settings::SettingsValues;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::{json, Value};

use super::bearer::{self, BearerError};
use super::context::RequestContext;
use super::{paths, AppState};
use crate::admin::clients;
use crate::error::{client_error, AppError};
use crate::http::admin::openapi::OAuthErrorBody;
use crate::oauth::registration::{
    describe, refusal, to_metadata, RegistrationError, RegistrationRequest,
};
use crate::secrets;

/// Prefix of registration access tokens (RFC 7592).
const REGISTRATION_TOKEN_PREFIX: &str = "alrat_";

/// Registrations per IP address, with the quota the settings name; rebuilt when it changes.
#[derive(Default)]
pub struct RegistrationLimiter(Mutex<Option<(Quota, Arc<DefaultKeyedRateLimiter<IpAddr>>)>>);

/// Past this many addresses, those back to a full quota are forgotten: without it, every
/// address ever seen stayed in memory.
const FORGET_ABOVE: usize = 1024;

impl RegistrationLimiter {
    /// `Err(seconds)` to wait when `ip` is over its quota.
    fn check(&self, ip: IpAddr, per_minute: u32) -> Result<(), u64> {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute.max(1)).expect("at least 1"));
        self.check_quota(ip, quota)
    }

    fn check_quota(&self, ip: IpAddr, quota: Quota) -> Result<(), u64> {
        let limiter = {
            let mut current = self.0.lock().expect("limiter lock");
            match current.as_ref() {
                Some((held, limiter)) if *held == quota => limiter.clone(),
                _ => {
                    let limiter = Arc::new(RateLimiter::keyed(quota));
                    *current = Some((quota, limiter.clone()));
                    limiter
                }
            }
        };
        if limiter.len() > FORGET_ABOVE {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            wait.as_secs() + 1
        })
    }

    /// How many addresses are remembered.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        let current = self.0.lock().expect("limiter lock");
        current.as_ref().map_or(0, |(_, limiter)| limiter.len())
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        json!({ "error": "not_found", "error_description": "dynamic client registration is switched off" }),
    )
}

fn invalid_token(description: &str) -> Response {
    BearerError::invalid_token(description).into_response()
}

fn internal(error: AppError) -> Response {
    if error.is_unavailable() {
        return super::surface::Surface::Registration.error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is temporarily unavailable; retry shortly",
            None,
        );
    }
    let mut response = json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({ "error": "server_error" }),
    );
    if let Some(failure) = super::failure::Failure::of(error) {
        failure.attach(&mut response);
    }
    response
}

async fn enabled_settings(app: &AppState) -> Result<Option<SettingsValues>, Response> {
    let settings = app
        .authority
        .store
        .settings_values()
        .await
        .map_err(internal)?;
    Ok(settings.enable_dynamic_registration.then_some(settings))
}

/// RFC 7591 §3.1: the client metadata is sent as `application/json`.
fn not_json() -> Response {
    json_response(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        json!({ "error": "invalid_request", "error_description": "the body must be application/json (RFC 7591 §3.1)" }),
    )
}

fn parse_request(body: &[u8]) -> Result<RegistrationRequest, RegistrationError> {
    serde_json::from_slice(body).map_err(|e| {
        RegistrationError::InvalidClientMetadata(format!(
            "the body is not client metadata JSON: {e}"
        ))
    })
}

fn registration_client_uri(app: &AppState, client_id: &str) -> String {
    format!("{}{}/{client_id}", app.authority.issuer, paths::REGISTER)
}

/// The client information response (RFC 7591 §3.2.1, RFC 7592 §3): the client's metadata
/// (the request's names) with these.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents what `register` and `read_back` build
pub(crate) struct ClientInformation {
    client_id: String,
    /// Confidential clients only, and only when registering.
    client_secret: Option<String>,
    /// 0: the secret does not expire.
    client_secret_expires_at: Option<i64>,
    /// Seconds since 1970; when registering.
    client_id_issued_at: Option<i64>,
    /// When registering: the bearer token of `registration_client_uri` (RFC 7592).
    registration_access_token: Option<String>,
    registration_client_uri: String,
}

#[utoipa::path(
    post, path = "/oauth/register", tag = "registration",
    description = "RFC 7591 dynamic client registration (also at Frappe's `/api/method/frappe.integrations.oauth2.register_client`). Off unless the setting `enable_dynamic_registration` is on (404 then).",
    request_body(content = RegistrationRequest, content_type = "application/json"),
    security((), ("registration_token" = [])),
    responses(
        (status = 201, description = "Registered", body = ClientInformation),
        (status = 400, description = "`invalid_client_metadata`, `invalid_redirect_uri`, or `invalid_request` (a control character in the path or body)", body = OAuthErrorBody),
        (status = 401, description = "The initial access token the settings require is missing or wrong", body = OAuthErrorBody),
        (status = 404, description = "Dynamic registration is switched off", body = OAuthErrorBody),
        (status = 413, description = "The body is larger than 256 KiB", body = OAuthErrorBody),
        (status = 415, description = "The body is not application/json", body = OAuthErrorBody),
        (status = 429, description = "Too many registrations from this address; see `Retry-After`", body = OAuthErrorBody),
        (status = 503, description = "The store is unreachable", body = OAuthErrorBody),
    ),
)]
pub async fn register(
    State(app): State<AppState>,
    context: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let settings = match enabled_settings(&app).await {
        Ok(Some(settings)) => settings,
        Ok(None) => return not_found(),
        Err(response) => return response,
    };
    if let Some(expected) = &settings.registration_initial_access_token {
        let presented = bearer::from_header(&headers).map(secrets::hash);
        if !presented.is_some_and(|p| p.matches(expected)) {
            return invalid_token("an initial access token is required to register (RFC 7591 §3)");
        }
    }
    if let Some(ip) = context.ip.as_deref().and_then(|ip| ip.parse().ok()) {
        if let Err(wait) = app
            .registrations
            .check(ip, settings.registration_rate_limit)
        {
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({ "error": "too_many_requests", "error_description": "too many registrations from this address; retry later" }),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            return response;
        }
    }
    if !super::edge::is_json(&headers) {
        return not_json();
    }
    let metadata = match parse_request(&body).and_then(|r| to_metadata(r, &settings)) {
        Ok(metadata) => metadata,
        Err(error) => return error.into_response(),
    };
    let registrant = metadata
        .software_id
        .clone()
        .or_else(|| context.ip.clone())
        .unwrap_or_else(|| "unknown".into());
    let event_metadata = context.metadata(Actor::Registrant(registrant));
    let token = secrets::mint(REGISTRATION_TOKEN_PREFIX);
    let authority = &app.authority;
    let registered = clients::register_parsed(
        &authority.store,
        metadata,
        RegistrationSource::Dynamic,
        Some(token.hash().clone()),
        &event_metadata,
        Some(&authority.master),
    )
    .await;
    let client = match registered {
        Ok(client) => client,
        Err(AppError::Invalid { message, .. }) => {
            return RegistrationError::InvalidClientMetadata(message).into_response()
        }
        Err(error) => return internal(error),
    };
    let mut body = describe(client.client_id.as_str(), &client.metadata);
    body.insert(
        "client_id_issued_at".into(),
        json!(event_metadata.at.timestamp()),
    );
    if let Some(secret) = &client.client_secret {
        body.insert("client_secret".into(), json!(secret.reveal()));
        body.insert("client_secret_expires_at".into(), json!(0));
    }
    body.insert("registration_access_token".into(), json!(token.reveal()));
    body.insert(
        "registration_client_uri".into(),
        json!(registration_client_uri(&app, client.client_id.as_str())),
    );
    json_response(StatusCode::CREATED, Value::Object(body))
}

/// The client behind a registration access token, if the token is its own.
async fn authorized(
    app: &AppState,
    client_id: &str,
    headers: &HeaderMap,
) -> Result<authledger_domain::client::RegisteredClient, Response> {
    let presented = bearer::from_header(headers)
        .ok_or_else(|| invalid_token("the registration access token is required"))?;
    let client = app
        .authority
        .store
        .clients
        .load(client_id)
        .await
        .map_err(|e| internal(client_error(client_id, e)))?;
    match client.registered() {
        Some(client)
            if client.status != ClientStatus::Deleted
                && client
                    .registration_access_token_hash
                    .as_ref()
                    .is_some_and(|h| h.matches(&secrets::hash(presented))) =>
        {
            Ok(client.clone())
        }
        _ => Err(invalid_token(
            "the registration access token is not valid for this client",
        )),
    }
}

/// The client a registration access token manages, when dynamic registration is on.
async fn managed(
    app: &AppState,
    client_id: &str,
    headers: &HeaderMap,
) -> Result<authledger_domain::client::RegisteredClient, Response> {
    match enabled_settings(app).await? {
        Some(_) => authorized(app, client_id, headers).await,
        None => Err(not_found()),
    }
}

/// RFC 7592 §3: the client's metadata as it is now.
fn read_back(
    app: &AppState,
    client_id: &str,
    metadata: &authledger_domain::client::ClientMetadata,
) -> Response {
    let mut body = describe(client_id, metadata);
    body.insert(
        "registration_client_uri".into(),
        json!(registration_client_uri(app, client_id)),
    );
    json_response(StatusCode::OK, Value::Object(body))
}

#[utoipa::path(
    get, path = "/oauth/register/{client_id}", tag = "registration",
    description = "RFC 7592 §2.1: read the client's registration.",
    params(("client_id" = String, Path)),
    security(("registration_token" = [])),
    responses(
        (status = 200, description = "The registration", body = ClientInformation),
        (status = 400, description = "The path holds a control character", body = OAuthErrorBody),
        (status = 401, description = "The registration access token is missing or not this client's", body = OAuthErrorBody),
        (status = 404, description = "Dynamic registration is switched off", body = OAuthErrorBody),
        (status = 503, description = "The store is unreachable", body = OAuthErrorBody),
    ),
)]
pub async fn read_registration(
    State(app): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match managed(&app, &client_id, &headers).await {
        Ok(client) => read_back(&app, &client_id, &client.metadata),
        Err(response) => response,
    }
}

#[utoipa::path(
    put, path = "/oauth/register/{client_id}", tag = "registration",
    description = "RFC 7592 §2.2: replace the client's metadata (fields left out return to their defaults).",
    params(("client_id" = String, Path)),
    request_body(content = RegistrationRequest, content_type = "application/json"),
    security(("registration_token" = [])),
    responses(
        (status = 200, description = "The registration as replaced", body = ClientInformation),
        (status = 400, description = "`invalid_client_metadata`, `invalid_redirect_uri`, or `invalid_request` (a control character in the path or body)", body = OAuthErrorBody),
        (status = 401, description = "The registration access token is missing or not this client's", body = OAuthErrorBody),
        (status = 404, description = "Dynamic registration is switched off", body = OAuthErrorBody),
        (status = 413, description = "The body is larger than 256 KiB", body = OAuthErrorBody),
        (status = 415, description = "The body is not application/json", body = OAuthErrorBody),
        (status = 503, description = "The store is unreachable", body = OAuthErrorBody),
    ),
)]
pub async fn replace_registration(
    State(app): State<AppState>,
    context: RequestContext,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = managed(&app, &client_id, &headers).await {
        return response;
    }
    if !super::edge::is_json(&headers) {
        return not_json();
    }
    let request = match parse_request(&body) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    if request
        .client_id
        .as_deref()
        .is_some_and(|id| id != client_id)
    {
        return RegistrationError::InvalidClientMetadata(
            "client_id: differs from the client being updated".into(),
        )
        .into_response();
    }
    let settings = match app.authority.store.settings_values().await {
        Ok(settings) => settings,
        Err(error) => return internal(error),
    };
    let metadata = match to_metadata(request, &settings) {
        Ok(metadata) => metadata,
        Err(error) => return error.into_response(),
    };
    let actor = context.metadata(Actor::Client(client_id.clone()));
    match clients::replace(&app.authority.store, &client_id, metadata.clone(), &actor).await {
        Ok(()) => read_back(&app, &client_id, &metadata),
        Err(AppError::Invalid { field, message }) => {
            let field = field.unwrap_or_else(|| "metadata".into());
            let reason = message
                .strip_prefix(&format!("{field}: "))
                .unwrap_or(&message)
                .to_owned();
            refusal(authledger_domain::client::ClientError::InvalidMetadata { field, reason })
                .into_response()
        }
        Err(error) => internal(error),
    }
}

#[utoipa::path(
    delete, path = "/oauth/register/{client_id}", tag = "registration",
    description = "RFC 7592 §2.3: delete the client; its tokens stop working.",
    params(("client_id" = String, Path)),
    security(("registration_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The path holds a control character", body = OAuthErrorBody),
        (status = 401, description = "The registration access token is missing or not this client's", body = OAuthErrorBody),
        (status = 404, description = "Dynamic registration is switched off", body = OAuthErrorBody),
        (status = 503, description = "The store is unreachable", body = OAuthErrorBody),
    ),
)]
pub async fn delete_registration(
    State(app): State<AppState>,
    context: RequestContext,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = managed(&app, &client_id, &headers).await {
        return response;
    }
    let actor = context.metadata(Actor::Client(client_id.clone()));
    match clients::delete(&app.authority.store, &client_id, &actor).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => internal(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_back_to_a_full_quota_are_forgotten() {
        let limiter = RegistrationLimiter::default();
        let quota = Quota::per_second(NonZeroU32::new(1_000_000).unwrap());
        for i in 0..5000u32 {
            if i % 100 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            let _ = limiter.check_quota(IpAddr::from(i.to_be_bytes()), quota);
        }
        let kept = limiter.remembered();
        assert!(kept <= FORGET_ABOVE + 100, "{kept} of 5,000 addresses kept");
    }
}
