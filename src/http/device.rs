//! The device authorization grant over HTTP (RFC 8628): the device's
//! `POST /oauth/device_authorization`, and the person's `/device` page: type the code (or
//! arrive with it from `verification_uri_complete`), sign in, see which application asks for
//! what, allow or deny.

use askama::Template;
use authledger_domain::grant::DeviceDecision;
use authledger_domain::metadata::Actor;
use authledger_domain::oauth::Scopes;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use axum_extra::extract::cookie::SignedCookieJar;
use serde::Deserialize;

use super::context::RequestContext;
use super::pages::{describe_scope, failure_page, message_page, render, AppCard, Chrome};
use super::{paths, session, AppState};
use crate::error::AppError;
use crate::oauth::device::{self, DecisionRefused, DeviceLookupError, PendingDevice};
use crate::oauth::error::{TokenError, TokenErrorCode};
use crate::oauth::params::Params;
use crate::throttle::{Key, Policy, Verdict};

/// `POST /oauth/device_authorization` (RFC 8628 §3.1): the client authenticates as at the
/// token endpoint (a public client sends its `client_id`), and may send `scope`.
pub async fn device_authorization(
    State(app): State<AppState>,
    context: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let (params, client) = super::token::authenticated(&app, &context, &headers, &body).await?;
        let scope = params
            .get("scope")
            .map(Scopes::parse)
            .transpose()
            .map_err(|e| TokenError::new(TokenErrorCode::InvalidScope, e.to_string()))?;
        let metadata = context.metadata(Actor::Client(client.client_id.clone()));
        let resources = params.get_all("resource");
        device::start(&app.authority, &client, scope, &resources, &metadata).await
    }
    .await;
    match result {
        Ok(answer) => Json(answer).into_response(),
        Err(error) => error.into_response(),
    }
}

#[derive(Template)]
#[template(path = "device.html")]
struct CodePage<'a> {
    chrome: &'a Chrome,
    action: &'a str,
    typed: &'a str,
    message: Option<String>,
}

#[derive(Template)]
#[template(path = "device_approve.html")]
struct ApprovalPage<'a> {
    chrome: &'a Chrome,
    app: AppCard,
    action: &'a str,
    csrf_token: &'a str,
    not_you: String,
    username: &'a str,
    user_code: String,
    scopes: Vec<(&'a str, String)>,
    asked_from: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct CodeQuery {
    user_code: Option<String>,
}

/// `GET /device`: the code form, or with `?user_code=`, the request it names.
pub async fn device_page(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    context: RequestContext,
    Query(query): Query<CodeQuery>,
) -> Response {
    match show(&app, jar, &context, query.user_code.as_deref()).await {
        Ok(response) => response,
        Err(error) => failure_page(error),
    }
}

/// The address a person's wrong codes are counted against.
fn guesser(context: &RequestContext) -> Vec<Key> {
    context
        .ip
        .as_deref()
        .and_then(|ip| ip.parse().ok())
        .map(|ip| vec![Key::UserCode(ip)])
        .unwrap_or_default()
}

/// The pending request `typed` names, or the code form saying why not (throttled, or a code
/// that names nothing, which counts as a failed attempt).
async fn look_up(
    app: &AppState,
    context: &RequestContext,
    chrome: &Chrome,
    typed: &str,
) -> Result<Result<PendingDevice, Response>, AppError> {
    let keys = guesser(context);
    let now = std::time::Instant::now();
    if let Verdict::Throttled { retry_after, .. } = app.throttle.check(&keys, now) {
        app.authority.store.metrics.rate_limited("device_user_code");
        let seconds = retry_after.as_secs().max(1);
        let message = format!("Too many wrong codes. Try again in {seconds} seconds.");
        let mut page = code_form(chrome, StatusCode::TOO_MANY_REQUESTS, typed, Some(message));
        if let Ok(value) = seconds.to_string().parse() {
            page.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return Ok(Err(page));
    }
    match device::find(&app.authority, typed).await {
        Ok(pending) => Ok(Ok(pending)),
        Err(DeviceLookupError::Unknown) => {
            let settings = app.authority.store.settings_values().await?;
            app.throttle
                .failed(&keys, Policy::from_settings(&settings), now);
            let message = DeviceLookupError::Unknown.to_string();
            Ok(Err(code_form(
                chrome,
                StatusCode::BAD_REQUEST,
                typed,
                Some(message),
            )))
        }
        Err(DeviceLookupError::Failed(error)) => Err(error),
    }
}

fn code_form(
    chrome: &Chrome,
    status: StatusCode,
    typed: &str,
    message: Option<String>,
) -> Response {
    let page = CodePage {
        chrome,
        action: paths::DEVICE,
        typed,
        message,
    };
    render(status, &page)
}

/// Where a person goes to sign in and come back to this code.
fn sign_in_first(user_code: &str) -> Response {
    let back = format!(
        "{}?{}",
        paths::DEVICE,
        form_urlencoded::Serializer::new(String::new())
            .append_pair("user_code", user_code)
            .finish()
    );
    let login = form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", &back)
        .finish();
    Redirect::to(&format!("{}?{login}", paths::LOGIN)).into_response()
}

async fn show(
    app: &AppState,
    jar: SignedCookieJar,
    context: &RequestContext,
    typed: Option<&str>,
) -> Result<Response, AppError> {
    let (signed_in, chrome) = visitor(app, &jar).await?;
    let Some(typed) = typed.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(code_form(&chrome, StatusCode::OK, "", None));
    };
    let pending = match look_up(app, context, &chrome, typed).await? {
        Ok(pending) => pending,
        Err(page) => return Ok(page),
    };
    let Some((user, _)) = signed_in else {
        return Ok(sign_in_first(&pending.user_code.display()));
    };
    let (jar, csrf_token) = session::csrf_token(jar, app.secure_cookies);
    let user_code = pending.user_code.display();
    let back_here = format!("{}?user_code={user_code}", paths::DEVICE);
    let not_you = format!(
        "{}?{}",
        paths::LOGOUT,
        form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &back_here)
            .finish()
    );
    let page = ApprovalPage {
        chrome: &chrome,
        app: AppCard::of(&pending.client),
        action: paths::DEVICE,
        csrf_token: &csrf_token,
        not_you,
        username: user.username.as_str(),
        user_code,
        asked_from: pending.asked_from.as_deref(),
        scopes: pending
            .scopes
            .iter()
            .map(|s| (s, describe_scope(s)))
            .collect(),
    };
    Ok((jar, render(StatusCode::OK, &page)).into_response())
}

/// Who is looking at the page, and the page's frame for them.
async fn visitor(
    app: &AppState,
    jar: &SignedCookieJar,
) -> Result<(Option<SignedIn>, Chrome), AppError> {
    let store = &app.authority.store;
    let settings = store.settings_values().await?;
    let signed_in = session::signed_in_user(store, jar).await?;
    let chrome = Chrome::new(
        &settings,
        signed_in.as_ref().map(|(u, _)| u.username.to_string()),
    );
    Ok((signed_in, chrome))
}

type SignedIn = (authledger_domain::user::RegisteredUser, session::Session);

/// `POST /device`: the person's decision, from the approval page's form.
pub async fn decide(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    context: RequestContext,
    body: Bytes,
) -> Response {
    match decide_form(&app, jar, &context, &body).await {
        Ok(response) => response,
        Err(error) => failure_page(error),
    }
}

async fn decide_form(
    app: &AppState,
    jar: SignedCookieJar,
    context: &RequestContext,
    body: &[u8],
) -> Result<Response, AppError> {
    let (signed_in, chrome) = visitor(app, &jar).await?;
    let refuse = |status, title: &str, message: &str| {
        Ok(message_page(&chrome, status, title, message, None))
    };
    let Ok(params) = Params::parse(body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Malformed request",
            "The form could not be read; start again from the code your device shows.",
        );
    };
    let typed = params.get("user_code").unwrap_or_default().trim();
    let Some(decision) = params.get("decision") else {
        // The code form sent by POST: show what it names.
        let target = format!(
            "{}?{}",
            paths::DEVICE,
            form_urlencoded::Serializer::new(String::new())
                .append_pair("user_code", typed)
                .finish()
        );
        return Ok(Redirect::to(&target).into_response());
    };
    if !session::csrf_valid(&jar, params.get("csrf_token")) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Form expired",
            "The form expired; enter the code your device shows again.",
        );
    }
    let pending = match look_up(app, context, &chrome, typed).await? {
        Ok(pending) => pending,
        Err(page) => return Ok(page),
    };
    let Some((user, session)) = signed_in else {
        return Ok(sign_in_first(&pending.user_code.display()));
    };
    let allowed = &pending.client.metadata.allowed_roles;
    if !allowed.is_empty() && !user.roles.iter().any(|r| allowed.contains(r.as_str())) {
        return refuse(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Your account's roles do not allow you to use this application.",
        );
    }
    let decision = match decision {
        "allow" => DeviceDecision::Approve {
            user: user.username.clone(),
            auth_time: session.auth_time(),
            amr: session.amr.clone(),
        },
        "deny" => DeviceDecision::Deny {
            user: user.username.clone(),
        },
        _ => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "Malformed request",
                "The decision must be allow or deny.",
            )
        }
    };
    let approved = matches!(decision, DeviceDecision::Approve { .. });
    let metadata = context.metadata(Actor::User(user.username.to_string()));
    match device::decide(&app.authority, &pending, decision, &metadata).await {
        Ok(()) if approved => refuse(
            StatusCode::OK,
            "Device connected",
            &format!(
                "{} on your device now has the access you allowed. You can return to your device.",
                pending.client.metadata.name
            ),
        ),
        Ok(()) => refuse(
            StatusCode::OK,
            "Access denied",
            "The device was not given access. You can close this page.",
        ),
        Err(DecisionRefused::Refused(why)) => refuse(
            StatusCode::BAD_REQUEST,
            "Code no longer valid",
            &format!("This request cannot be decided: {why}. Start again on your device."),
        ),
        Err(DecisionRefused::Failed(error)) => Err(error),
    }
}
