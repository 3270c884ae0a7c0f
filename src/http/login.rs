//! `GET/POST /login`: the sign-in page (DESIGN §6: a form with `username` and `password`),
//! with throttling of failed attempts and a session started on success.

use askama::Template;
use authledger_domain::metadata::Actor;
use authledger_domain::secret::Password;
use authledger_domain::user::{UserCommand, UserEvent, Username};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::SignedCookieJar;
use serde::Deserialize;

use super::context::RequestContext;
use super::pages::{failure_page, message_page, render, safe_return_to, AppCard, Chrome};
use super::session::{self, Session};
use super::{paths, AppState};
use crate::oauth::params::Params;
use crate::throttle::{Key, Policy, Verdict};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    chrome: &'a Chrome,
    /// The application the person signs in for, when they come from an authorization request.
    app: Option<AppCard>,
    action: &'a str,
    csrf_token: &'a str,
    return_to: &'a str,
    username: &'a str,
    message: Option<&'a str>,
    /// "Sign in with ..." links: each enabled social login provider's path and name.
    providers: Vec<(String, String, String)>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    login_hint: Option<String>,
}

/// Where a person goes after signing in when nothing asked for a page: their account.
fn return_to_or_account(raw: Option<&str>) -> String {
    safe_return_to(raw).unwrap_or_else(|| paths::ACCOUNT.to_owned())
}

/// The client of the authorization request a sign-in returns to, to name it on the page.
async fn app_returned_to(app: &AppState, return_to: &str) -> Option<AppCard> {
    let (path, query) = return_to.split_once('?')?;
    if path != paths::AUTHORIZE && path != paths::FRAPPE_AUTHORIZE {
        return None;
    }
    let params = Params::parse(query.as_bytes()).ok()?;
    let client = app
        .authority
        .store
        .client(params.get("client_id")?)
        .await
        .ok()??;
    Some(AppCard::of(&client))
}

/// The sign-in form, with `message` above it when something went wrong.
async fn login_form(
    app: &AppState,
    jar: SignedCookieJar,
    status: StatusCode,
    return_to: &str,
    username: &str,
    message: Option<&str>,
) -> Response {
    let settings = match app.authority.store.settings_values().await {
        Ok(settings) => settings,
        Err(error) => return failure_page(error),
    };
    let chrome = Chrome::new(&settings, None);
    let (jar, csrf_token) = session::csrf_token(jar, app.secure_cookies);
    let back = form_urlencoded::byte_serialize(return_to.as_bytes()).collect::<String>();
    let providers = match crate::social_login::enabled(&app.authority.store).await {
        Ok(providers) => providers
            .into_iter()
            .map(|button| {
                let id = &button.id;
                // DESIGN §6: the link is `/login/social/{id}`; where to go after rides along
                // only when it is not the account page.
                let path = if return_to == paths::ACCOUNT {
                    format!("/login/social/{id}")
                } else {
                    format!("/login/social/{id}?return_to={back}")
                };
                (path, button.name, button.icon.unwrap_or_default())
            })
            .collect(),
        Err(error) => return failure_page(error),
    };
    let page = LoginPage {
        providers,
        chrome: &chrome,
        app: app_returned_to(app, return_to).await,
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
    let return_to = return_to_or_account(query.return_to.as_deref());
    if query.return_to.is_none() {
        let store = &app.authority.store;
        let (current, settings) = match (
            session::current(store, &jar).await,
            store.settings_values().await,
        ) {
            (Ok(current), Ok(settings)) => (current, settings),
            (Err(error), _) | (_, Err(error)) => return failure_page(error),
        };
        if let Some(current) = current {
            let message = format!("You are signed in as {}.", current.username);
            let chrome = Chrome::new(&settings, Some(current.username));
            return message_page(
                &chrome,
                StatusCode::OK,
                "Signed in",
                &message,
                Some((paths::ACCOUNT, "Go to your account")),
            );
        }
    }
    let hint = query.login_hint.unwrap_or_default();
    login_form(&app, jar, StatusCode::OK, &return_to, &hint, None).await
}

const SIGN_IN_FAILED: &str = "Wrong username or password.";

pub async fn login(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    context: RequestContext,
    body: Bytes,
) -> Response {
    let Ok(mut form) = Params::parse(&body) else {
        return super::pages::error_page(
            StatusCode::BAD_REQUEST,
            "Malformed form",
            "Please try again.",
        );
    };
    let return_to = return_to_or_account(form.get("return_to"));
    let typed_username = form.remove("username").unwrap_or_default();
    if !session::csrf_valid(&jar, form.get("csrf_token")) {
        let message = "The form expired. Please sign in again.";
        return login_form(
            &app,
            jar,
            StatusCode::BAD_REQUEST,
            &return_to,
            &typed_username,
            Some(message),
        )
        .await;
    }
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
        app.authority.store.metrics.rate_limited("sign_in");
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
            &app,
            jar,
            StatusCode::TOO_MANY_REQUESTS,
            &return_to,
            &typed_username,
            Some(&message),
        )
        .await;
        page.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, seconds.into());
        return page;
    }
    let failed = |jar| {
        login_form(
            &app,
            jar,
            StatusCode::UNAUTHORIZED,
            &return_to,
            &typed_username,
            Some(SIGN_IN_FAILED),
        )
    };
    let (Some(username), Ok(password)) = (
        username,
        Password::attempt(form.get("password").unwrap_or_default()),
    ) else {
        app.throttle.failed(&keys, policy, now);
        return failed(jar).await;
    };
    let users = &app.authority.store.users;
    let (session, opened) = Session::begin(username.as_str(), &["pwd"], &settings);
    let outcome = users
        .execute(
            username.as_str(),
            UserCommand::RecordLogin {
                password,
                session: opened,
                two_factor_policy: settings.require_two_factor.clone(),
            },
            &context.metadata(Actor::Anonymous),
        )
        .await;
    match outcome {
        Ok(events)
            if events
                .iter()
                .any(|e| matches!(e.payload, UserEvent::LoginSucceeded { .. })) =>
        {
            app.throttle.succeeded(&Key::Account(username.to_string()));
            let jar = session::start(jar, &session, app.secure_cookies);
            (jar, Redirect::to(&return_to)).into_response()
        }
        Ok(events) => {
            let must_enrol = events.iter().find_map(|e| match e.payload {
                UserEvent::PasswordVerified { must_enrol, .. } => Some(must_enrol),
                _ => None,
            });
            if let Some(must_enrol) = must_enrol {
                // The password was right: what is left is the second factor, whose wrong
                // codes count against the same budget.
                let pending = session::PendingSignIn {
                    username: username.to_string(),
                    return_to,
                    until: (chrono::Utc::now() + authledger_domain::user::SECOND_FACTOR_WINDOW)
                        .timestamp(),
                    vouched_elsewhere: false,
                };
                return super::two_factor::after_first_factor(&app, jar, pending, must_enrol).await;
            }
            // A wrong password, a disabled account or an unknown name: recorded, and
            // answered alike.
            app.throttle.failed(&keys, policy, now);
            failed(jar).await
        }
        Err(error) => failure_page(crate::error::user_error(username.as_str(), error)),
    }
}
