//! The admin API (`/admin/api/...`, JSON). Callers present a bearer token issued by this
//! server with scope `admin`: to a person holding the role `admin`, or to a client registered
//! for that scope (client credentials). Lists are keyset-paginated (`cursor`, `limit`); bad
//! input is a 400 naming the field.

use authledger_domain::client::RegistrationSource;
use authledger_domain::metadata::{Actor, EventMetadata};
use authledger_projections::audit::{AuditFilter, AuditLog};
use authledger_projections::consents::ConsentsView;
use authledger_projections::grants::{GrantsView, Subject};
use authledger_projections::users::UsersView;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::bearer::{self, BearerError};
use super::context::RequestContext;
use super::AppState;
use crate::admin::clients::{self, ClientInput};
use crate::admin::{
    self as ops, grants as grant_ops,
    users::{self, UserInput},
};
use crate::error::AppError;
use crate::oauth::introspect::active_token;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/clients", get(list_clients).post(create_client))
        .route("/clients/{id}", get(show_client).patch(update_client))
        .route("/clients/{id}/disable", post(disable_client))
        .route("/clients/{id}/enable", post(enable_client))
        .route("/clients/{id}/rotate-secret", post(rotate_secret))
        .route("/users", get(list_users).post(create_user))
        .route("/users/{username}", get(show_user))
        .route("/users/{username}/disable", post(disable_user))
        .route("/users/{username}/enable", post(enable_user))
        .route("/users/{username}/roles", put(set_roles))
        .route("/consents", get(list_consents))
        .route("/consents/revoke", post(revoke_consent))
        .route("/grants", get(list_grants))
        .route("/grants/{id}", get(show_grant))
        .route("/grants/{id}/revoke", post(revoke_grant))
        .route("/tokens", get(list_tokens))
        .route("/audit", get(audit))
        .route("/usage", get(usage))
        .route("/settings", get(show_settings).patch(change_settings))
}

/// The admin API's error, rendered as JSON.
#[derive(Debug)]
pub enum ApiError {
    Invalid {
        field: Option<String>,
        message: String,
    },
    Unauthorized,
    Forbidden(&'static str),
    NotFound(String),
    Conflict(String),
    Unavailable,
    Internal,
}

/// The field an error message is about: `missing field \`x\``, or the leading identifier of
/// messages written as `field: reason`.
fn field_of(message: &str) -> Option<String> {
    if let Some(rest) = message.split("field `").nth(1) {
        return rest.split('`').next().map(str::to_owned);
    }
    let lead: String = message
        .chars()
        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
        .collect();
    (!lead.is_empty() && message[lead.len()..].starts_with([':', ' '])).then_some(lead)
}

impl ApiError {
    fn invalid(message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::Invalid {
            field: field_of(&message),
            message,
        }
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Invalid(m) => ApiError::invalid(m),
            AppError::NotFound(m) => ApiError::NotFound(m),
            AppError::Conflict(m) => ApiError::Conflict(m),
            error if error.is_unavailable() => ApiError::Unavailable,
            AppError::Unavailable(e) | AppError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "admin API failure");
                ApiError::Internal
            }
        }
    }
}

impl From<authledger_projections::ProjectionError> for ApiError {
    fn from(error: authledger_projections::ProjectionError) -> Self {
        ApiError::from(AppError::from(error))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::invalid(rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let refused = match &self {
            ApiError::Unauthorized => Some(BearerError::invalid_token(
                "a valid admin bearer token is required",
            )),
            ApiError::Forbidden(why) => Some(BearerError::insufficient_scope(*why)),
            _ => None,
        };
        if let Some(refused) = refused {
            return refused.with_scope("admin").into_response();
        }
        let (status, error, description, field) = match self {
            ApiError::Invalid { field, message } => {
                (StatusCode::BAD_REQUEST, "invalid_request", message, field)
            }
            ApiError::Unauthorized | ApiError::Forbidden(_) => unreachable!("rendered above"),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m, None),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m, None),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the store is unreachable; retry shortly".into(),
                None,
            ),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error".into(),
                None,
            ),
        };
        let mut body = json!({ "error": error, "error_description": description });
        if let Some(field) = field {
            body["field"] = json!(field);
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// An authenticated administrator, and where the request came from.
pub struct Admin {
    metadata: EventMetadata,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Ok(context) = RequestContext::from_request_parts(parts, state).await;
        let presented = bearer::from_header(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let authority = &state.authority;
        let token = active_token(authority, presented.trim())
            .await
            .map_err(ApiError::from)?
            .filter(|t| t.kind == "access")
            .ok_or(ApiError::Unauthorized)?;
        if !token.has_scope("admin") {
            return Err(ApiError::Forbidden("the token lacks scope admin"));
        }
        let actor = match &token.username {
            None => Actor::Client(token.client_id.clone()),
            Some(username) => {
                let user = UsersView::get(&authority.store.db, username).await?;
                if !user.is_some_and(|u| u.roles.iter().any(|r| r.as_str() == "admin")) {
                    return Err(ApiError::Forbidden("the user does not hold the role admin"));
                }
                Actor::User(username.clone())
            }
        };
        Ok(Admin {
            metadata: context.metadata(actor),
        })
    }
}

#[derive(Deserialize)]
struct Page {
    cursor: Option<String>,
    limit: Option<i64>,
    client_id: Option<String>,
    user: Option<String>,
    active: Option<bool>,
}

const DEFAULT_PAGE: i64 = 50;

impl Page {
    fn limit(&self) -> i64 {
        self.limit.unwrap_or(DEFAULT_PAGE).clamp(1, ops::MAX_PAGE)
    }
    /// A cursor holding two keys (time and id), opaque to callers.
    fn pair(&self) -> Result<Option<(String, String)>, ApiError> {
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        let decoded = URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once('\n')
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
            });
        decoded.map(Some).ok_or_else(|| ApiError::Invalid {
            field: Some("cursor".into()),
            message: "cursor: not a cursor this API issued".into(),
        })
    }
    fn subject(&self) -> Subject {
        Subject {
            client_id: self.client_id.clone(),
            username: self.user.clone(),
        }
    }
}

fn pair_cursor(a: &str, b: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{a}\n{b}"))
}

/// `{"items": [...], "next_cursor": ...}`; a cursor only when the page was full.
fn page<T: Serialize>(items: Vec<T>, limit: i64, cursor: impl Fn(&T) -> String) -> Json<Value> {
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(&cursor))
        .flatten();
    Json(json!({ "items": items, "next_cursor": next }))
}

type ApiResult = Result<Response, ApiError>;

fn ok(value: impl Serialize) -> ApiResult {
    Ok(Json(json!(value)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClientBody {
    client_name: String,
    #[serde(default)]
    redirect_uris: Vec<String>,
    default_redirect_uri: Option<String>,
    scope: Option<String>,
    #[serde(default)]
    grant_types: Vec<String>,
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    skip_authorization: bool,
    #[serde(default)]
    require_pkce: bool,
    #[serde(default)]
    allowed_roles: Vec<String>,
    client_uri: Option<String>,
    logo_uri: Option<String>,
    tos_uri: Option<String>,
    policy_uri: Option<String>,
    #[serde(default)]
    contacts: Vec<String>,
    id_token_signed_response_alg: Option<String>,
    #[serde(default)]
    frappe_claims: bool,
}

async fn list_clients(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<Page>,
) -> ApiResult {
    let limit = q.limit();
    let items = clients::list(&app.authority.store, q.cursor.as_deref(), limit).await?;
    Ok(page(items, limit, |c| c.client_id.clone()).into_response())
}

async fn create_client(
    State(app): State<AppState>,
    admin: Admin,
    body: Result<Json<NewClientBody>, JsonRejection>,
) -> ApiResult {
    let Json(body) = body?;
    let input = ClientInput {
        name: body.client_name,
        redirect_uris: body.redirect_uris,
        default_redirect_uri: body.default_redirect_uri,
        scope: body.scope,
        grant_types: body.grant_types,
        public: body.token_endpoint_auth_method.as_deref() == Some("none"),
        token_endpoint_auth_method: body.token_endpoint_auth_method,
        skip_authorization: body.skip_authorization,
        require_pkce: body.require_pkce,
        allowed_roles: body.allowed_roles,
        client_uri: body.client_uri,
        logo_uri: body.logo_uri,
        tos_uri: body.tos_uri,
        policy_uri: body.policy_uri,
        contacts: body.contacts,
        software_id: None,
        software_version: None,
        id_token_signed_response_alg: body.id_token_signed_response_alg,
        frappe_claims: body.frappe_claims,
    };
    let authority = &app.authority;
    let client = clients::register(
        &authority.store,
        input,
        RegistrationSource::Admin,
        &admin.metadata,
        Some(&authority.master),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(client.to_json())).into_response())
}

async fn show_client(
    State(app): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult {
    ok(clients::show(&app.authority.store, &id).await?)
}

async fn update_client(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let Json(patch) = body?;
    let Value::Object(patch) = patch else {
        return Err(ApiError::invalid(
            "the body must be a JSON object of client metadata fields",
        ));
    };
    ok(clients::update(&app.authority.store, &id, patch, &admin.metadata).await?)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DisableBody {
    reason: Option<String>,
}

async fn disable_client(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: Option<Json<DisableBody>>,
) -> ApiResult {
    let reason = body.map(|Json(b)| b.reason).unwrap_or_default();
    ok(clients::disable(&app.authority.store, &id, reason, &admin.metadata).await?)
}

async fn enable_client(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult {
    ok(clients::enable(&app.authority.store, &id, &admin.metadata).await?)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default)]
    revoke_tokens: bool,
}

async fn rotate_secret(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: Option<Json<RotateBody>>,
) -> ApiResult {
    let revoke_tokens = body.map(|Json(b)| b.revoke_tokens).unwrap_or_default();
    let authority = &app.authority;
    let secret = clients::rotate_secret(
        &authority.store,
        &id,
        revoke_tokens,
        &admin.metadata,
        Some(&authority.master),
    )
    .await?;
    ok(
        json!({ "client_id": id, "client_secret": secret.reveal(), "tokens_revoked": revoke_tokens }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    username: String,
    password: String,
    email: Option<String>,
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    picture: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

async fn list_users(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<Page>,
) -> ApiResult {
    let limit = q.limit();
    let items = users::list(&app.authority.store, q.cursor.as_deref(), limit).await?;
    Ok(page(items, limit, |u| u.username.clone()).into_response())
}

async fn create_user(
    State(app): State<AppState>,
    admin: Admin,
    body: Result<Json<NewUserBody>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    let input = UserInput {
        username: b.username,
        password: b.password,
        email: b.email,
        name: b.name,
        given_name: b.given_name,
        family_name: b.family_name,
        picture: b.picture,
        roles: b.roles,
    };
    let user = users::create(&app.authority.store, input, &admin.metadata).await?;
    Ok((StatusCode::CREATED, Json(json!(user))).into_response())
}

async fn show_user(
    State(app): State<AppState>,
    _admin: Admin,
    Path(username): Path<String>,
) -> ApiResult {
    ok(users::show(&app.authority.store, &username).await?)
}

async fn disable_user(
    State(app): State<AppState>,
    admin: Admin,
    Path(username): Path<String>,
) -> ApiResult {
    ok(users::disable(&app.authority.store, &username, &admin.metadata).await?)
}

async fn enable_user(
    State(app): State<AppState>,
    admin: Admin,
    Path(username): Path<String>,
) -> ApiResult {
    ok(users::enable(&app.authority.store, &username, &admin.metadata).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesBody {
    roles: Vec<String>,
}

async fn set_roles(
    State(app): State<AppState>,
    admin: Admin,
    Path(username): Path<String>,
    body: Result<Json<RolesBody>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    ok(users::set_roles(&app.authority.store, &username, &b.roles, &admin.metadata).await?)
}

async fn list_consents(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<Page>,
) -> ApiResult {
    let limit = q.limit();
    let after = q.pair()?;
    let items = ConsentsView::list(
        app.authority.store.current_views().await?,
        q.user.as_deref(),
        q.client_id.as_deref(),
        after.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        limit,
    )
    .await?;
    Ok(page(items, limit, |c| pair_cursor(&c.username, &c.client_id)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentBody {
    user: String,
    client_id: String,
}

async fn revoke_consent(
    State(app): State<AppState>,
    admin: Admin,
    body: Result<Json<ConsentBody>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    grant_ops::revoke_consent(&app.authority.store, &b.user, &b.client_id, &admin.metadata).await?;
    ok(json!({ "revoked": true, "user": b.user, "client_id": b.client_id }))
}

async fn list_grants(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<Page>,
) -> ApiResult {
    let limit = q.limit();
    let after = q.pair()?;
    let items = GrantsView::grants(
        app.authority.store.current_views().await?,
        &q.subject(),
        q.active.unwrap_or(false),
        after.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        limit,
    )
    .await?;
    Ok(page(items, limit, |g| pair_cursor(&g.created_at, &g.grant_id)).into_response())
}

async fn show_grant(
    State(app): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult {
    ok(grant_ops::show_grant(&app.authority.store, &id).await?)
}

async fn revoke_grant(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult {
    ok(grant_ops::revoke_grant(&app.authority.store, &id, &admin.metadata).await?)
}

async fn list_tokens(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<Page>,
) -> ApiResult {
    let limit = q.limit();
    let after = q.pair()?;
    let now = chrono::Utc::now();
    let items: Vec<Value> = GrantsView::tokens(
        app.authority.store.current_views().await?,
        &q.subject(),
        after.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        limit,
    )
    .await?
    .into_iter()
    .map(|t| {
        let active = t.is_active(now);
        let mut value = json!(t);
        value["active"] = json!(active);
        value
    })
    .collect();
    Ok(page(items, limit, |t| {
        pair_cursor(
            t["issued_at"].as_str().unwrap_or_default(),
            t["token_hash"].as_str().unwrap_or_default(),
        )
    })
    .into_response())
}

#[derive(Deserialize)]
struct AuditQuery {
    client_id: Option<String>,
    user: Option<String>,
    grant: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

fn rfc3339(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    value
        .map(|raw| {
            chrono::DateTime::parse_from_rfc3339(&raw)
                .map(|t| authledger_projections::view_time(t.with_timezone(&chrono::Utc)))
                .map_err(|_| ApiError::Invalid {
                    field: Some(field.into()),
                    message: format!("{field}: `{raw}` is not an RFC 3339 time"),
                })
        })
        .transpose()
}

async fn audit(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<AuditQuery>,
) -> ApiResult {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, ops::MAX_PAGE);
    let after = q
        .cursor
        .map(|c| {
            c.parse::<i64>().map_err(|_| ApiError::Invalid {
                field: Some("cursor".into()),
                message: "cursor: not a cursor this API issued".into(),
            })
        })
        .transpose()?;
    let filter = AuditFilter {
        client_id: q.client_id,
        username: q.user,
        grant_id: q.grant,
        event_type: q.event_type,
        since: rfc3339("since", q.since)?,
        until: rfc3339("until", q.until)?,
        after,
    };
    let items = AuditLog::query(app.authority.store.current_views().await?, &filter, limit).await?;
    Ok(page(items, limit, |r| r.global_position.to_string()).into_response())
}

#[derive(Deserialize)]
struct UsageQuery {
    client_id: Option<String>,
    user: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

async fn usage(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<UsageQuery>,
) -> ApiResult {
    let authority = &app.authority;
    // Include what is still only counted in memory.
    authority.usage.flush(&authority.store.db).await;
    let hour = |field: &str, v: Option<String>| -> Result<Option<String>, ApiError> {
        rfc3339(field, v).map(|t| {
            t.map(|t| {
                authledger_projections::usage::usage_hour(
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .expect("just formatted")
                        .with_timezone(&chrono::Utc),
                )
            })
        })
    };
    let rows = authledger_projections::usage::report(
        authority.store.current_views().await?,
        q.client_id.as_deref(),
        q.user.as_deref(),
        hour("from", q.from)?.as_deref(),
        hour("to", q.to)?.as_deref(),
    )
    .await?;
    ok(json!({ "items": rows }))
}

async fn show_settings(State(app): State<AppState>, _admin: Admin) -> ApiResult {
    ok(app.authority.store.settings_values().await?)
}

/// `{"key": value, ...}`: every value is parsed before any is applied, so one bad value (named
/// in the 400) changes nothing; each change is then one `SettingsChanged` event.
async fn change_settings(
    State(app): State<AppState>,
    admin: Admin,
    body: Result<Json<serde_json::Map<String, Value>>, JsonRejection>,
) -> ApiResult {
    use authledger_domain::settings::{Setting, SettingsCommand, SETTINGS_ID};
    let Json(changes) = body?;
    let mut parsed = Vec::new();
    for (key, value) in changes {
        let text = match &value {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Null => "none".into(),
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            Value::Object(_) => {
                return Err(ApiError::Invalid {
                    field: Some(key.clone()),
                    message: format!("{key}: expected a string, number, boolean or list"),
                })
            }
        };
        let setting = Setting::parse(&key, &text).map_err(|e| ApiError::Invalid {
            field: Some(key.clone()),
            message: e.to_string(),
        })?;
        parsed.push(setting);
    }
    let store = &app.authority.store;
    for setting in parsed {
        store
            .settings
            .execute(
                SETTINGS_ID,
                SettingsCommand::Change(setting),
                &admin.metadata,
            )
            .await
            .map_err(|e| ApiError::from(crate::error::settings_error(e)))?;
    }
    ok(store.settings_values().await?)
}
