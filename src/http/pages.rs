//! Pages for people: sign-in, sign-out and error pages (DESIGN §6). Plain server-rendered
//! HTML, readable without JavaScript.

use askama::Template;
use authledger_domain::metadata::Actor;
use authledger_domain::secret::Password;
use authledger_domain::user::{UserCommand, UserEvent, Username};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::SignedCookieJar;
use serde::Deserialize;

use super::context::RequestContext;
use super::failure::Failure;
use super::session::{self, Session};
use super::{paths, AppState};
use crate::error::AppError;
use crate::oauth::params::Params;
use crate::throttle::{Key, Policy, Verdict};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    action: &'a str,
    csrf_token: &'a str,
    return_to: &'a str,
    username: &'a str,
    message: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
}

/// An HTML page (the router adds `Cache-Control: no-store` and the security headers).
pub fn html(status: StatusCode, body: String) -> Response {
    (status, Html(body)).into_response()
}
/// Renders a template; a template that fails to render is a bug, answered as a plain 500.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => html(status, body),
        Err(error) => {
            tracing::error!(%error, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(status, &MessagePage { title, message })
}

/// The page for our own failure: 503 with `Retry-After` while the database cannot be
/// reached, else 500, whose cause is logged once (see `failure.rs`), never shown.
pub fn failure_page(error: AppError) -> Response {
    if error.is_unavailable() {
        let mut page = error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "The service is briefly unavailable. Please try again in a moment.",
        );
        page.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
        return page;
    }
    let mut page = error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The request could not be completed. Please try again.",
    );
    if let Some(failure) = Failure::of(error) {
        failure.attach(&mut page);
    }
    page
}

/// Only local paths may be returned to after sign-in: anything else would make the sign-in
/// page an open redirector.
fn safe_return_to(raw: Option<&str>) -> String {
    match raw {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => paths::LOGIN.to_owned(),
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    login_hint: Option<String>,
}

fn login_form(
    jar: SignedCookieJar,
    secure: bool,
    status: StatusCode,
    return_to: &str,
    username: &str,
    message: Option<&str>,
) -> Response {
    let (jar, csrf_token) = session::csrf_token(jar, secure);
    let page = LoginPage {
        action: paths::LOGIN,
        csrf_token: &csrf_token,
        return_to,
        username,
        message,
    };
    (jar, render(status, &page)).into_response()
}

pub async fn login_page(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    Query(query): Query<LoginQuery>,
) -> Response {
    let return_to = safe_return_to(query.return_to.as_deref());
    if query.return_to.is_none() {
        let current = match session::current(&app.authority.store, &jar).await {
            Ok(current) => current,
            Err(error) => return failure_page(error),
        };
        if let Some(current) = current {
            let message = format!("You are signed in as {}.", current.username);
            return render(
                StatusCode::OK,
                &MessagePage {
                    title: "Signed in",
                    message: &message,
                },
            );
        }
    }
    let hint = query.login_hint.unwrap_or_default();
    login_form(
        jar,
        app.secure_cookies,
        StatusCode::OK,
        &return_to,
        &hint,
        None,
    )
}

const SIGN_IN_FAILED: &str = "Wrong username or password.";

pub async fn login(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    context: RequestContext,
    body: Bytes,
) -> Response {
    let Ok(mut form) = Params::parse(&body) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Malformed form",
            "Please try again.",
        );
    };
    let return_to = safe_return_to(form.get("return_to"));
    let typed_username = form.remove("username").unwrap_or_default();
    if !session::csrf_valid(&jar, form.get("csrf_token")) {
        let message = "The form expired. Please sign in again.";
        return login_form(
            jar,
            app.secure_cookies,
            StatusCode::BAD_REQUEST,
            &return_to,
            &typed_username,
            Some(message),
        );
    }
    let failed = |jar| {
        login_form(
            jar,
            app.secure_cookies,
            StatusCode::UNAUTHORIZED,
            &return_to,
            &typed_username,
            Some(SIGN_IN_FAILED),
        )
    };
    let settings = match app.authority.store.settings_values().await {
        Ok(settings) => settings,
        Err(error) => return failure_page(error),
    };
    let policy = Policy::from_settings(&settings);
    let username = Username::parse(&typed_username).ok();
    let mut keys: Vec<Key> = username
        .iter()
        .map(|u| Key::Account(u.to_string()))
        .collect();
    keys.extend(
        context
            .ip
            .as_deref()
            .and_then(|ip| ip.parse().ok())
            .map(Key::Address),
    );
    let now = std::time::Instant::now();
    if let Verdict::Throttled { retry_after, first } = app.throttle.check(&keys, now) {
        // Refused without checking the password: a right one must not show through.
        let seconds = retry_after.as_secs().max(1);
        if let (true, Some(username)) = (first, &username) {
            let command = UserCommand::RecordThrottled {
                retry_after_seconds: seconds,
            };
            // An unknown account has no stream to record it on; the answer is the same.
            let _ = app
                .authority
                .store
                .users
                .execute(
                    username.as_str(),
                    command,
                    &context.metadata(Actor::Anonymous),
                )
                .await;
        }
        let message =
            format!("Too many failed sign-ins. Please wait {seconds} seconds before trying again.");
        let mut page = login_form(
            jar,
            app.secure_cookies,
            StatusCode::TOO_MANY_REQUESTS,
            &return_to,
            &typed_username,
            Some(&message),
        );
        page.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, seconds.into());
        return page;
    }
    let (Some(username), Ok(password)) = (
        username,
        Password::attempt(form.get("password").unwrap_or_default()),
    ) else {
        app.throttle.failed(&keys, policy, now);
        return failed(jar);
    };
    let users = &app.authority.store.users;
    let (session, opened) = Session::begin(username.as_str());
    let outcome = users
        .execute(
            username.as_str(),
            UserCommand::RecordLogin {
                password,
                session: opened,
            },
            &context.metadata(Actor::Anonymous),
        )
        .await;
    match outcome {
        Ok(events)
            if events
                .iter()
                .any(|e| matches!(e.payload, UserEvent::LoginSucceeded {})) =>
        {
            app.throttle.succeeded(&Key::Account(username.to_string()));
            let jar = session::start(jar, &session, app.secure_cookies);
            (jar, Redirect::to(&return_to)).into_response()
        }
        // A wrong password, a disabled account or an unknown name: recorded, and answered
        // alike.
        Ok(_) => {
            app.throttle.failed(&keys, policy, now);
            failed(jar)
        }
        Err(error) => failure_page(crate::error::user_error(username.as_str(), error)),
    }
}

/// Signs out: the session ends in the log (so its cookie is refused everywhere, even if
/// copied), and the cookie is removed.
pub async fn logout(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    context: RequestContext,
    body: Bytes,
) -> Response {
    let form = Params::parse(&body).unwrap_or_default();
    if !session::csrf_valid(&jar, form.get("csrf_token")) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Form expired",
            "Please go back and try again.",
        );
    }
    let store = &app.authority.store;
    let current = match session::current(store, &jar).await {
        Ok(current) => current,
        Err(error) => return failure_page(error),
    };
    if let Some(current) = current {
        let ended = store
            .users
            .execute(
                &current.username,
                UserCommand::EndSession {
                    id_hash: current.id_hash(),
                },
                &context.metadata(Actor::User(current.username.clone())),
            )
            .await;
        if let Err(error) = ended {
            return failure_page(crate::error::user_error(&current.username, error));
        }
    }
    let jar = session::end(jar);
    (
        jar,
        error_page(StatusCode::OK, "Signed out", "You are signed out."),
    )
        .into_response()
}
