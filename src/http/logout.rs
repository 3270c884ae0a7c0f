//! `GET, POST /logout`: signing out, from our own pages and as OpenID Connect RP-Initiated
//! Logout 1.0's `end_session_endpoint`.
//!
//! A sign-out ends the session in the log (so its cookie is refused everywhere, even if
//! copied) and removes the cookie. It happens without a question only when the request is
//! tied to the session: our own confirmation form (with its CSRF token), or an
//! `id_token_hint` issued to this person in this session. Any other request (a bare link, a
//! hint for someone else) gets a confirmation page first, so that a third-party page cannot
//! sign people out behind their back (§2: "the OP SHOULD ask the End-User").

use askama::Template;
use authledger_domain::metadata::Actor;
use authledger_domain::user::UserCommand;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::SignedCookieJar;

use super::context::RequestContext;
use super::pages::{error_page, failure_page, message_page, render, safe_return_to, Chrome};
use super::session::{self, Session};
use super::{paths, AppState};
use crate::error::AppError;
use crate::oauth::logout::{validate, LogoutError, LogoutRequest};
use crate::oauth::params::Params;

#[derive(Template)]
#[template(path = "logout.html")]
struct ConfirmPage<'a> {
    chrome: &'a Chrome,
    username: &'a str,
    app: Option<&'a str>,
    action: &'a str,
    csrf_token: &'a str,
    fields: Vec<(&'a str, &'a str)>,
}

pub async fn logout(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    context: RequestContext,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let raw: &[u8] = if method == Method::POST {
        &body
    } else {
        uri.query().unwrap_or_default().as_bytes()
    };
    let Ok(mut params) = Params::parse(raw) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Malformed request",
            "The sign-out request is malformed.",
        );
    };
    // Our own confirmation form carries a CSRF token; a relying party's request does not.
    let confirmed = match params.remove("csrf_token") {
        Some(token) if session::csrf_valid(&jar, Some(&token)) => true,
        Some(_) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Form expired",
                "The sign-out form expired. Please go back and try again.",
            )
        }
        None => false,
    };
    let request = match validate(&app.authority, &params).await {
        Ok(request) => request,
        Err(LogoutError::Refused(why)) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Sign-out request refused",
                &format!("{why} You can still sign out from your account page."),
            )
        }
        Err(LogoutError::Failure(error)) => return failure_page(error),
    };
    // `next`: a page of ours to go on to, e.g. the authorization request whose consent page
    // asked "not you?".
    let return_to = safe_return_to(params.get("next"));
    match run(&app, jar, &context, &params, request, confirmed, return_to).await {
        Ok(response) => response,
        Err(error) => failure_page(error),
    }
}

async fn run(
    app: &AppState,
    jar: SignedCookieJar,
    context: &RequestContext,
    params: &Params,
    request: LogoutRequest,
    confirmed: bool,
    return_to: Option<String>,
) -> Result<Response, AppError> {
    let store = &app.authority.store;
    let settings = store.settings_values().await?;
    let Some(current) = session::current(store, &jar).await? else {
        // Nobody to sign out (already signed out, or the cookie is gone): say so, or go
        // where the client asked.
        let jar = session::end(jar);
        return Ok((jar, finished(&request, return_to, &settings)).into_response());
    };
    if !(confirmed || tied_to(&request, &current)) {
        let chrome = Chrome::new(&settings, Some(current.username.clone()));
        let (jar, csrf_token) = session::csrf_token(jar, app.secure_cookies);
        let mut fields: Vec<(&str, &str)> = params.iter().collect();
        fields.sort();
        let page = ConfirmPage {
            chrome: &chrome,
            username: &current.username,
            app: request.client.as_ref().map(|c| c.metadata.name.as_str()),
            action: paths::LOGOUT,
            csrf_token: &csrf_token,
            fields,
        };
        return Ok((jar, render(StatusCode::OK, &page)).into_response());
    }
    store
        .users
        .execute(
            &current.username,
            UserCommand::EndSession {
                id_hash: current.id_hash(),
            },
            &context.metadata(Actor::User(current.username.clone())),
        )
        .await
        .map_err(|e| crate::error::user_error(&current.username, e))?;
    app.session_ends.notify_one();
    let jar = session::end(jar);
    Ok((jar, finished(&request, return_to, &settings)).into_response())
}

/// Whether the request's `id_token_hint` was issued to this person in this session.
fn tied_to(request: &LogoutRequest, current: &Session) -> bool {
    request.hint.as_ref().is_some_and(|hint| {
        hint.subject == current.username
            && hint
                .session
                .as_deref()
                .is_none_or(|sid| sid == current.id_hash().as_hex())
    })
}

/// After signing out: back to the client (its registered URI, with `state`), back to the
/// page that asked, or a page that says it is done.
fn finished(
    request: &LogoutRequest,
    return_to: Option<String>,
    settings: &authledger_domain::settings::SettingsValues,
) -> Response {
    if let Some(then) = &request.then {
        return Redirect::to(&then.location()).into_response();
    }
    if let Some(path) = return_to {
        return Redirect::to(&path).into_response();
    }
    message_page(
        &Chrome::new(settings, None),
        StatusCode::OK,
        "Signed out",
        "You are signed out.",
        Some((paths::LOGIN, "Sign in again")),
    )
}
