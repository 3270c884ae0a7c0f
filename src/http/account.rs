//! `/account`: a person's own page. Who they are, where they are signed in (with "sign out"
//! per session and everywhere else), the applications they allowed (with "remove access",
//! which withdraws the consent and revokes its tokens through the same cascade as the CLI's
//! `consent revoke`), their two-factor set-up (`two_factor.rs`), and their recent sign-ins. Every change is a command with
//! `actor=user:<name>`; every form carries the CSRF token.

use askama::Template;
use authledger_domain::metadata::Actor;
use authledger_domain::secret::SecretHash;
use authledger_domain::user::{UserCommand, Username};
use authledger_projections::audit::AuditLog;
use authledger_projections::connected_apps::ConnectedAppsView;
use authledger_projections::consents::ConsentsView;
use authledger_projections::sessions::SessionsView;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::SignedCookieJar;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::context::RequestContext;
use super::pages::{describe_scope, error_page, failure_page, render, Chrome};
use super::session::{self, Session};
use super::{paths, AppState};
use crate::error::AppError;
use crate::oauth::params::Params;

/// How many sessions and sign-ins the page lists.
const LISTED: i64 = 20;

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    chrome: &'a Chrome,
    csrf_token: &'a str,
    notice: Option<&'a str>,
    username: &'a str,
    profile: Vec<(&'static str, String)>,
    /// With two-factor sign-in on, how many recovery codes are left.
    two_factor: Option<usize>,
    sessions: Vec<SessionRow>,
    applications: Vec<ApplicationRow>,
    /// Their accounts at other providers that authledger connected (Connected Apps).
    connections: Vec<ConnectionRow>,
    /// The identities at other providers that sign in as them (social login).
    identities: Vec<IdentityRow>,
    sign_ins: Vec<SignInRow>,
}

struct IdentityRow {
    provider_id: String,
    provider: String,
    subject: String,
    linked: String,
}

struct ConnectionRow {
    app_id: String,
    name: String,
    scopes: String,
    since: String,
    /// Lost: the provider refused the refresh token, connect again.
    lost: bool,
}

struct SessionRow {
    /// The hex hash of the session's id: the handle the sign-out form names.
    id: String,
    device: String,
    ip: String,
    started: String,
    /// When it was last used, as far as this server knows.
    last_active: String,
    expires: String,
    current: bool,
}

struct ApplicationRow {
    client_id: String,
    name: String,
    scopes: Vec<String>,
    granted: String,
}

struct SignInRow {
    when: String,
    result: &'static str,
    ip: String,
    device: String,
}

#[derive(Deserialize)]
pub struct AccountQuery {
    /// What the last change did, to say so once (POST, then redirect, then this).
    done: Option<String>,
}

/// A view time (RFC 3339) as people read it.
fn shown_time(view_time: &str) -> String {
    DateTime::parse_from_rfc3339(view_time)
        .map(|t| {
            t.with_timezone(&Utc)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string()
        })
        .unwrap_or_else(|_| view_time.to_owned())
}

/// A browser and system, from a user agent, in words; the raw string says little to people.
fn device(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|ua| !ua.is_empty()) else {
        return "Unknown device".to_owned();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .into_iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => s.to_owned(),
        (None, None) => ua.chars().take(60).collect(),
    }
}

/// The signed-in person, or the way to the sign-in page and back here.
async fn signed_in(
    app: &AppState,
    jar: &SignedCookieJar,
) -> Result<Result<Session, Response>, AppError> {
    Ok(match session::current(&app.authority.store, jar).await? {
        Some(current) => Ok(current),
        None => {
            let login = format!("{}?return_to={}", paths::LOGIN, paths::ACCOUNT);
            Err(Redirect::to(&login).into_response())
        }
    })
}

pub async fn account_page(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    Query(query): Query<AccountQuery>,
) -> Response {
    match page(&app, jar, query).await {
        Ok(response) => response,
        Err(error) => failure_page(error),
    }
}

async fn page(
    app: &AppState,
    jar: SignedCookieJar,
    query: AccountQuery,
) -> Result<Response, AppError> {
    let current = match signed_in(app, &jar).await? {
        Ok(current) => current,
        Err(to_sign_in) => return Ok(to_sign_in),
    };
    let store = &app.authority.store;
    let settings = store.settings_values().await?;
    let username = Username::parse(&current.username).map_err(|e| {
        AppError::Internal(anyhow::anyhow!(
            "a session names `{}`: {e}",
            current.username
        ))
    })?;
    let user = store
        .users
        .load(username.as_str())
        .await
        .map_err(|e| crate::error::user_error(username.as_str(), e))?;
    let Some(user) = user.registered() else {
        return Ok(Redirect::to(paths::LOGIN).into_response());
    };
    let profile = &user.profile;
    let mut shown = vec![];
    for (label, value) in [
        ("Name", profile.name.clone()),
        (
            "Email",
            profile.email.as_ref().map(|e| e.as_str().to_owned()),
        ),
    ] {
        if let Some(value) = value {
            shown.push((label, value));
        }
    }
    if !user.roles.is_empty() {
        let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
        shown.push(("Roles", roles.join(", ")));
    }

    let now = authledger_projections::view_time(Utc::now());
    let this_session = current.id_hash();
    let sessions = SessionsView::of_user(&store.db, username.as_str(), LISTED)
        .await?
        .into_iter()
        .filter(|s| s.ended_at.is_none() && s.expires_at > now)
        .map(|s| SessionRow {
            current: s.session_hash == this_session.as_hex(),
            device: device(s.user_agent.as_deref()),
            ip: s.ip.unwrap_or_else(|| "unknown".into()),
            started: shown_time(&s.started_at),
            last_active: store
                .live()
                .and_then(|live| live.session_last_seen(&s.session_hash))
                .map(|at| shown_time(&authledger_projections::view_time(at)))
                .unwrap_or_else(|| "—".into()),
            expires: shown_time(&s.expires_at),
            id: s.session_hash,
        })
        .collect();

    let mut applications = vec![];
    for consent in ConsentsView::list(&store.db, Some(username.as_str()), None, None, 100).await? {
        if consent.revoked_at.is_some() {
            continue;
        }
        let name = match store.client(&consent.client_id).await? {
            Some(client) => client.metadata.name,
            None => consent.client_id.clone(),
        };
        applications.push(ApplicationRow {
            name,
            scopes: consent
                .scopes
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(describe_scope)
                .collect(),
            granted: shown_time(&consent.granted_at),
            client_id: consent.client_id,
        });
    }

    let mut connections = vec![];
    for connection in ConnectedAppsView::connections_of(&store.db, username.as_str()).await? {
        if connection.status == "disconnected" {
            continue;
        }
        let Some(app) = ConnectedAppsView::app(&store.db, &connection.app_id)
            .await?
            .filter(|a| a.status != "deleted")
        else {
            continue;
        };
        connections.push(ConnectionRow {
            lost: connection.status == "lost",
            name: app.name,
            scopes: connection.scopes,
            since: shown_time(&connection.connected_at),
            app_id: connection.app_id,
        });
    }

    let providers: std::collections::HashMap<String, String> =
        authledger_projections::social_logins::SocialLoginsView::list(&store.db)
            .await?
            .into_iter()
            .map(|p| (p.provider_id, p.name))
            .collect();
    let identities = authledger_projections::social_logins::SocialLoginsView::identities_of(
        &store.db,
        username.as_str(),
    )
    .await?
    .into_iter()
    .map(|i| IdentityRow {
        provider: providers
            .get(&i.provider_id)
            .cloned()
            .unwrap_or_else(|| i.provider_id.clone()),
        linked: shown_time(&i.linked_at),
        provider_id: i.provider_id,
        subject: i.subject,
    })
    .collect();

    let sign_ins = AuditLog::sign_ins(&store.db, username.as_str(), LISTED)
        .await?
        .into_iter()
        .map(|row| SignInRow {
            when: shown_time(&row.occurred_at),
            result: match row.event_type.as_str() {
                "LoginSucceeded" => "Signed in",
                "LoginThrottled" => "Too many attempts: made to wait",
                _ => "Failed",
            },
            ip: row.ip.unwrap_or_else(|| "unknown".into()),
            device: device(row.user_agent.as_deref()),
        })
        .collect();

    let chrome = Chrome::new(&settings, Some(current.username.clone()));
    let (jar, csrf_token) = session::csrf_token(jar, app.secure_cookies);
    let notice = match query.done.as_deref() {
        Some("session") => Some("That session is signed out."),
        Some("others") => Some("You are signed out everywhere else."),
        Some("removed") => {
            Some("The application's access is removed, and its tokens no longer work.")
        }
        Some("unlinked") => Some("That sign-in is unlinked: it no longer signs you in here."),
        Some("disconnected") => Some(
            "The account is disconnected: its tokens are forgotten here and, where the other \
             server allows it, revoked there.",
        ),
        Some("two-factor-off") => {
            Some("Two-factor sign-in is off: your password alone signs you in.")
        }
        _ => None,
    };
    let page = AccountPage {
        chrome: &chrome,
        csrf_token: &csrf_token,
        notice,
        username: username.as_str(),
        profile: shown,
        two_factor: user.two_factor.as_ref().map(|t| t.recovery_codes.len()),
        sessions,
        applications,
        connections,
        identities,
        sign_ins,
    };
    Ok((jar, render(StatusCode::OK, &page)).into_response())
}

/// `POST /account/connected-apps/disconnect`: gives up the person's connection to
/// `app_id` (revoked at the provider when it can be), as `connected-app disconnect` does.
pub async fn disconnect(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    context: RequestContext,
    body: Bytes,
) -> Response {
    let outcome = async {
        let (current, form) = match form(&app, &jar, &body).await? {
            Ok(ok) => ok,
            Err(refused) => return Ok(refused),
        };
        let id = crate::connected_apps::parse_id(form.get("app_id").unwrap_or_default())?;
        let user = crate::admin::users::parse_username(&current.username)?;
        let metadata = context.metadata(Actor::User(current.username.clone()));
        let authority = &app.authority;
        match app
            .connections
            .disconnect(&authority.store, &authority.master, &id, &user, &metadata)
            .await
        {
            // Already given up (a second tab, a double click): the page shows it gone.
            Ok(_) | Err(AppError::Conflict(_)) => Ok(back("disconnected")),
            Err(error) => Err(error),
        }
    };
    outcome.await.unwrap_or_else(failure_page)
}

/// `POST /account/identities/unlink`: the identity at `provider` (`subject`) no longer
/// signs the person in, as `social-login unlink` does.
pub async fn unlink_identity(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    context: RequestContext,
    body: Bytes,
) -> Response {
    let outcome = async {
        let (current, form) = match form(&app, &jar, &body).await? {
            Ok(ok) => ok,
            Err(refused) => return Ok(refused),
        };
        let metadata = context.metadata(Actor::User(current.username.clone()));
        match crate::social_login::unlink(
            &app.authority.store,
            form.get("provider").unwrap_or_default(),
            &current.username,
            form.get("subject"),
            &metadata,
        )
        .await
        {
            // Already unlinked (a second tab, a double click): the page shows it gone.
            Ok(_) | Err(AppError::NotFound(_)) => Ok(back("unlinked")),
            Err(error) => Err(error),
        }
    };
    outcome.await.unwrap_or_else(failure_page)
}

/// A POSTed account form, once its CSRF token holds and someone is signed in.
async fn form(
    app: &AppState,
    jar: &SignedCookieJar,
    body: &Bytes,
) -> Result<Result<(Session, Params), Response>, AppError> {
    let Ok(form) = Params::parse(body) else {
        return Ok(Err(error_page(
            StatusCode::BAD_REQUEST,
            "Malformed form",
            "Please go back and try again.",
        )));
    };
    if !session::csrf_valid(jar, form.get("csrf_token")) {
        return Ok(Err(error_page(
            StatusCode::BAD_REQUEST,
            "Form expired",
            "The form expired. Please go back to your account page and try again.",
        )));
    }
    Ok(signed_in(app, jar).await?.map(|current| (current, form)))
}

fn back(done: &str) -> Response {
    Redirect::to(&format!("{}?done={done}", paths::ACCOUNT)).into_response()
}

/// `POST /account/sessions/end`: one session (`session`, its handle) or every other one
/// (`others=true`).
pub async fn end_session(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    context: RequestContext,
    body: Bytes,
) -> Response {
    let outcome = async {
        let (current, form) = match form(&app, &jar, &body).await? {
            Ok(ok) => ok,
            Err(refused) => return Ok(refused),
        };
        let (command, done) = if form.get("others") == Some("true") {
            (
                UserCommand::EndOtherSessions {
                    keep: current.id_hash(),
                },
                "others",
            )
        } else {
            let Some(id_hash) = form
                .get("session")
                .and_then(|h| SecretHash::from_hex(h).ok())
            else {
                return Ok(error_page(
                    StatusCode::BAD_REQUEST,
                    "No session named",
                    "Please go back and choose a session.",
                ));
            };
            (UserCommand::EndSession { id_hash }, "session")
        };
        app.authority
            .store
            .users
            .execute(
                &current.username,
                command,
                &context.metadata(Actor::User(current.username.clone())),
            )
            .await
            .map_err(|e| crate::error::user_error(&current.username, e))?;
        app.session_ends.notify_one();
        Ok::<_, AppError>(back(done))
    };
    outcome.await.unwrap_or_else(failure_page)
}

/// `POST /account/applications/remove`: withdraws the consent for `client_id`; every grant
/// made under it is revoked before the page comes back.
pub async fn remove_application(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    context: RequestContext,
    body: Bytes,
) -> Response {
    let outcome = async {
        let (current, form) = match form(&app, &jar, &body).await? {
            Ok(ok) => ok,
            Err(refused) => return Ok(refused),
        };
        let Some(client_id) = form.get("client_id") else {
            return Ok(error_page(
                StatusCode::BAD_REQUEST,
                "No application named",
                "Please go back and choose an application.",
            ));
        };
        let metadata = context.metadata(Actor::User(current.username.clone()));
        match crate::admin::grants::revoke_consent(
            &app.authority.store,
            &current.username,
            client_id,
            &metadata,
        )
        .await
        {
            // Already removed (a second tab, a double click): the page shows it gone.
            Ok(()) | Err(AppError::NotFound(_)) => Ok(back("removed")),
            Err(error) => Err(error),
        }
    };
    outcome.await.unwrap_or_else(failure_page)
}
