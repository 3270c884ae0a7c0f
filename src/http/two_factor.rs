//! Two-factor sign-in pages (DESIGN §6: the page after the password has a form with an input
//! named `code`): the code at sign-in, the enrolment a policy requires at sign-in, and the
//! set-up and removal on the account page. The rules are the `User` aggregate's; the codes
//! are checked against the secret in `crate::two_factor`.

use askama::Template;
use authledger_domain::metadata::Actor;
use authledger_domain::user::{
    SecondFactorProof, TwoFactorRemoval, UserCommand, UserError, UserEvent,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::SignedCookieJar;
use chrono::Utc;
use cqrs_es::AggregateError;

use super::context::RequestContext;
use super::pages::{error_page, failure_page, message_page, render, Chrome};
use super::session::{self, PendingSignIn, Session};
use super::{paths, AppState};
use crate::error::AppError;
use crate::oauth::params::Params;
use crate::throttle::{Key, Policy, Verdict};
use crate::two_factor::{proof, qr_svg, recovery_codes, TotpSecret};
use crate::vault::Vault;

#[derive(Template)]
#[template(path = "second_factor.html")]
struct CodePage<'a> {
    chrome: &'a Chrome,
    action: &'a str,
    csrf_token: &'a str,
    message: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "two_factor_setup.html")]
struct SetupPage<'a> {
    chrome: &'a Chrome,
    /// Set up because the settings require it, to finish signing in.
    required: bool,
    qr_svg: &'a str,
    secret: &'a str,
    action: &'a str,
    csrf_token: &'a str,
    message: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryCodesPage<'a> {
    chrome: &'a Chrome,
    codes: &'a [String],
    next: &'a str,
}

const WRONG_CODE: &str = "That code is not right. Check your authenticator app and try again.";
const EXPIRED: &str = "Signing in took too long. Please sign in again.";

fn vault(app: &AppState) -> Vault<'_> {
    Vault::new(&app.authority.store.db, &app.authority.master)
}

fn vault_error(error: crate::vault::VaultError) -> AppError {
    AppError::Internal(anyhow::Error::new(error))
}

async fn chrome(app: &AppState, signed_in: Option<String>) -> Result<Chrome, AppError> {
    let settings = app.authority.store.settings_values().await?;
    Ok(Chrome::new(&settings, signed_in))
}

fn now_seconds() -> u64 {
    Utc::now().timestamp().max(0) as u64
}

/// The page asking for the code, after the password.
pub async fn code_page(
    app: &AppState,
    jar: SignedCookieJar,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    let chrome = match chrome(app, None).await {
        Ok(chrome) => chrome,
        Err(error) => return failure_page(error),
    };
    let (jar, csrf_token) = session::csrf_token(jar, app.secure_cookies);
    let page = CodePage {
        chrome: &chrome,
        action: paths::LOGIN_SECOND_FACTOR,
        csrf_token: &csrf_token,
        message,
    };
    (jar, render(status, &page)).into_response()
}

/// The set-up page: a new secret (kept in the vault until confirmed), or with `again` the
/// one just shown, when its code was wrong.
async fn setup_page(
    app: &AppState,
    jar: SignedCookieJar,
    username: &str,
    signed_in: bool,
    again: Option<&str>,
) -> Result<Response, AppError> {
    let secret = match again {
        Some(_) => vault(app)
            .totp_secret(username)
            .await
            .map_err(vault_error)?
            .map(TotpSecret::from_bytes),
        None => None,
    };
    let secret = match secret {
        Some(secret) => secret,
        None => {
            let secret = TotpSecret::generate();
            vault(app)
                .put_totp_secret(username, secret.bytes())
                .await
                .map_err(vault_error)?;
            secret
        }
    };
    let chrome = chrome(app, signed_in.then(|| username.to_owned())).await?;
    let uri = secret.uri(&chrome.site_name, username);
    let (jar, csrf_token) = session::csrf_token(jar, app.secure_cookies);
    let page = SetupPage {
        chrome: &chrome,
        required: !signed_in,
        qr_svg: &qr_svg(&uri),
        secret: &secret.base32(),
        action: if signed_in {
            paths::ACCOUNT_TWO_FACTOR
        } else {
            paths::LOGIN_ENROL
        },
        csrf_token: &csrf_token,
        message: again,
    };
    let status = match again {
        Some(_) => StatusCode::UNAUTHORIZED,
        None => StatusCode::OK,
    };
    Ok((jar, render(status, &page)).into_response())
}

/// What the first step (the password, or another provider's answer) shows when the
/// sign-in needs a second factor: the code page, or the enrolment the settings require.
pub async fn after_first_factor(
    app: &AppState,
    jar: SignedCookieJar,
    pending: PendingSignIn,
    must_enrol: bool,
) -> Response {
    let jar = session::pend(jar, &pending, app.secure_cookies);
    if must_enrol {
        return setup_page(app, jar, &pending.username, false, None)
            .await
            .unwrap_or_else(failure_page);
    }
    code_page(app, jar, StatusCode::OK, None).await
}

/// Why a posted code form is not taken.
enum Refused {
    Malformed,
    /// The CSRF token does not hold.
    FormExpired,
    /// No sign-in is waiting for a second factor in this browser (or it took too long).
    SignInExpired,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Malformed => error_page(
                StatusCode::BAD_REQUEST,
                "Malformed form",
                "Please try again.",
            ),
            Refused::FormExpired => error_page(
                StatusCode::BAD_REQUEST,
                "Form expired",
                "The form expired. Please sign in again.",
            ),
            Refused::SignInExpired => {
                error_page(StatusCode::BAD_REQUEST, "Sign-in expired", EXPIRED)
            }
        }
    }
}

/// A posted code form: its fields once the CSRF token holds.
fn code_form(jar: &SignedCookieJar, body: &Bytes) -> Result<Params, Refused> {
    let form = Params::parse(body).map_err(|_| Refused::Malformed)?;
    if !session::csrf_valid(jar, form.get("csrf_token")) {
        return Err(Refused::FormExpired);
    }
    Ok(form)
}

/// The sign-in the browser is finishing.
fn pending_or_expired(jar: &SignedCookieJar) -> Result<PendingSignIn, Refused> {
    session::pending(jar).ok_or(Refused::SignInExpired)
}

/// A sign-in completed: the session cookie (signed in by password and code), and onward.
fn signed_in(app: &AppState, jar: SignedCookieJar, session: &Session) -> SignedCookieJar {
    let jar = session::end_pending(jar);
    session::start(jar, session, app.secure_cookies)
}

/// `POST /login/two-factor`: the code after the password.
pub async fn complete_sign_in(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    context: RequestContext,
    body: Bytes,
) -> Response {
    let form = match code_form(&jar, &body) {
        Ok(form) => form,
        Err(refused) => return refused.into_response(),
    };
    let pending = match pending_or_expired(&jar) {
        Ok(pending) => pending,
        Err(expired) => return expired.into_response(),
    };
    let settings = match app.authority.store.settings_values().await {
        Ok(settings) => settings,
        Err(error) => return failure_page(error),
    };
    // Wrong codes count with wrong passwords: one budget per account and address.
    let mut keys = vec![Key::Account(pending.username.clone())];
    keys.extend(
        context
            .ip
            .as_deref()
            .and_then(|ip| ip.parse().ok())
            .map(Key::Address),
    );
    let now = std::time::Instant::now();
    if let Verdict::Throttled { retry_after, .. } = app.throttle.check(&keys, now) {
        app.authority.store.metrics.rate_limited("second_factor");
        let seconds = retry_after.as_secs().max(1);
        let message =
            format!("Too many wrong codes. Please wait {seconds} seconds before trying again.");
        let mut page = code_page(&app, jar, StatusCode::TOO_MANY_REQUESTS, Some(&message)).await;
        page.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, seconds.into());
        return page;
    }
    let secret = match vault(&app).totp_secret(&pending.username).await {
        Ok(Some(secret)) => TotpSecret::from_bytes(secret),
        Ok(None) => {
            return failure_page(AppError::Internal(anyhow::anyhow!(
                "{} enrolled two-factor sign-in but the vault has no secret for them",
                pending.username
            )))
        }
        Err(error) => return failure_page(vault_error(error)),
    };
    let presented = form.get("code").unwrap_or_default();
    let (session, opened) = Session::begin(&pending.username, &pending.amr(), &settings);
    let command = UserCommand::CompleteSignIn {
        proof: proof(&secret, presented, now_seconds()),
        session: opened,
    };
    let outcome = app
        .authority
        .store
        .users
        .execute(
            &pending.username,
            command,
            &context.metadata(Actor::Anonymous),
        )
        .await;
    match outcome {
        Ok(events)
            if events
                .iter()
                .any(|e| matches!(e.payload, UserEvent::LoginSucceeded { .. })) =>
        {
            app.throttle
                .succeeded(&Key::Account(pending.username.clone()));
            let jar = signed_in(&app, jar, &session);
            (jar, Redirect::to(&pending.return_to)).into_response()
        }
        Ok(_) => {
            app.throttle
                .failed(&keys, Policy::from_settings(&settings), now);
            code_page(&app, jar, StatusCode::UNAUTHORIZED, Some(WRONG_CODE)).await
        }
        Err(AggregateError::UserError(UserError::NoSignInPending)) => {
            (session::end_pending(jar), Refused::SignInExpired).into_response()
        }
        Err(error) => failure_page(crate::error::user_error(&pending.username, error)),
    }
}

/// The code confirming a new secret, checked: the time step it is valid for.
async fn confirmed_step(
    app: &AppState,
    username: &str,
    code: &str,
) -> Result<Option<u64>, AppError> {
    let Some(secret) = vault(app)
        .totp_secret(username)
        .await
        .map_err(vault_error)?
    else {
        return Ok(None);
    };
    Ok(TotpSecret::from_bytes(secret).step_of(code, now_seconds()))
}

fn recovery_page(chrome: &Chrome, codes: &[String], next: &str) -> Response {
    render(
        StatusCode::OK,
        &RecoveryCodesPage {
            chrome,
            codes,
            next,
        },
    )
}

/// `POST /login/two-factor/enrol`: the enrolment a policy requires, finishing the sign-in.
pub async fn enrol_at_sign_in(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    context: RequestContext,
    body: Bytes,
) -> Response {
    let form = match code_form(&jar, &body) {
        Ok(form) => form,
        Err(refused) => return refused.into_response(),
    };
    let pending = match pending_or_expired(&jar) {
        Ok(pending) => pending,
        Err(expired) => return expired.into_response(),
    };
    let outcome = async {
        let code = form.get("code").unwrap_or_default();
        let Some(step) = confirmed_step(&app, &pending.username, code).await? else {
            return setup_page(&app, jar, &pending.username, false, Some(WRONG_CODE)).await;
        };
        let (shown, hashes) = recovery_codes();
        let settings = app.authority.store.settings_values().await?;
        let (session, opened) = Session::begin(&pending.username, &pending.amr(), &settings);
        let command = UserCommand::EnrolTwoFactor {
            recovery_codes: hashes,
            confirmed_step: step,
            session: Some(opened),
        };
        let metadata = context.metadata(Actor::User(pending.username.clone()));
        match app
            .authority
            .store
            .users
            .execute(&pending.username, command, &metadata)
            .await
        {
            Ok(_) => {}
            Err(AggregateError::UserError(UserError::NoSignInPending)) => {
                return Ok(Refused::SignInExpired.into_response());
            }
            Err(error) => return Err(crate::error::user_error(&pending.username, error)),
        }
        let jar = signed_in(&app, jar, &session);
        let chrome = chrome(&app, Some(pending.username.clone())).await?;
        Ok((jar, recovery_page(&chrome, &shown, &pending.return_to)).into_response())
    };
    outcome.await.unwrap_or_else(failure_page)
}

/// The signed-in person, or the way to sign in and come back to the account page.
async fn account_holder(
    app: &AppState,
    jar: &SignedCookieJar,
) -> Result<Result<Session, Response>, AppError> {
    Ok(match session::current(&app.authority.store, jar).await? {
        Some(current) => Ok(current),
        None => Err(
            Redirect::to(&format!("{}?return_to={}", paths::LOGIN, paths::ACCOUNT)).into_response(),
        ),
    })
}

async fn enrolled(app: &AppState, username: &str) -> Result<bool, AppError> {
    let user = app
        .authority
        .store
        .users
        .load(username)
        .await
        .map_err(|e| crate::error::user_error(username, e))?;
    Ok(user.registered().is_some_and(|u| u.two_factor.is_some()))
}

/// `GET /account/two-factor`: the set-up page.
pub async fn setup(State(app): State<AppState>, jar: SignedCookieJar) -> Response {
    let outcome = async {
        let current = match account_holder(&app, &jar).await? {
            Ok(current) => current,
            Err(to_sign_in) => return Ok(to_sign_in),
        };
        if enrolled(&app, &current.username).await? {
            return Ok(Redirect::to(paths::ACCOUNT).into_response());
        }
        setup_page(&app, jar, &current.username, true, None).await
    };
    outcome.await.unwrap_or_else(failure_page)
}

/// `POST /account/two-factor`: the first code, which turns two-factor sign-in on.
pub async fn confirm_setup(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    context: RequestContext,
    body: Bytes,
) -> Response {
    let form = match code_form(&jar, &body) {
        Ok(form) => form,
        Err(refused) => return refused.into_response(),
    };
    let outcome = async {
        let current = match account_holder(&app, &jar).await? {
            Ok(current) => current,
            Err(to_sign_in) => return Ok(to_sign_in),
        };
        let code = form.get("code").unwrap_or_default();
        let Some(step) = confirmed_step(&app, &current.username, code).await? else {
            return setup_page(&app, jar, &current.username, true, Some(WRONG_CODE)).await;
        };
        let (shown, hashes) = recovery_codes();
        let command = UserCommand::EnrolTwoFactor {
            recovery_codes: hashes,
            confirmed_step: step,
            session: None,
        };
        let metadata = context.metadata(Actor::User(current.username.clone()));
        match app
            .authority
            .store
            .users
            .execute(&current.username, command, &metadata)
            .await
        {
            Ok(_) => {}
            Err(AggregateError::UserError(UserError::AlreadyEnrolled)) => {
                return Ok(Redirect::to(paths::ACCOUNT).into_response())
            }
            Err(error) => return Err(crate::error::user_error(&current.username, error)),
        }
        let chrome = chrome(&app, Some(current.username.clone())).await?;
        Ok(recovery_page(&chrome, &shown, paths::ACCOUNT))
    };
    outcome.await.unwrap_or_else(failure_page)
}

/// `POST /account/two-factor/remove`: turns two-factor sign-in off, given a current code (or
/// a recovery code), so that a borrowed signed-in browser cannot.
pub async fn remove(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    context: RequestContext,
    body: Bytes,
) -> Response {
    let form = match code_form(&jar, &body) {
        Ok(form) => form,
        Err(refused) => return refused.into_response(),
    };
    let outcome = async {
        let current = match account_holder(&app, &jar).await? {
            Ok(current) => current,
            Err(to_sign_in) => return Ok(to_sign_in),
        };
        let username = current.username.clone();
        let user = app
            .authority
            .store
            .users
            .load(&username)
            .await
            .map_err(|e| crate::error::user_error(&username, e))?;
        let Some(two_factor) = user.registered().and_then(|u| u.two_factor.clone()) else {
            return Ok(Redirect::to(paths::ACCOUNT).into_response());
        };
        let code = form.get("code").unwrap_or_default();
        let secret = vault(&app)
            .totp_secret(&username)
            .await
            .map_err(vault_error)?;
        let valid = match secret.map(|s| proof(&TotpSecret::from_bytes(s), code, now_seconds())) {
            Some(SecondFactorProof::Totp { step }) => step > two_factor.last_step,
            Some(SecondFactorProof::Other(hash)) => two_factor.recovery_codes.contains(&hash),
            None => false,
        };
        if !valid {
            let chrome = chrome(&app, Some(username)).await?;
            return Ok(message_page(
                &chrome,
                StatusCode::UNAUTHORIZED,
                "Two-factor sign-in stays on",
                WRONG_CODE,
                Some((paths::ACCOUNT, "Back to your account")),
            ));
        }
        let command = UserCommand::RemoveTwoFactor {
            reason: TwoFactorRemoval::ByUser,
        };
        let metadata = context.metadata(Actor::User(username.clone()));
        app.authority
            .store
            .users
            .execute(&username, command, &metadata)
            .await
            .map_err(|e| crate::error::user_error(&username, e))?;
        crate::vault::forget_totp_secret(&app.authority.store.db, &username)
            .await
            .map_err(vault_error)?;
        Ok(Redirect::to(&format!("{}?done=two-factor-off", paths::ACCOUNT)).into_response())
    };
    outcome.await.unwrap_or_else(failure_page)
}
