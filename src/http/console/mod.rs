//! The console (`/admin`, DESIGN §5): pages for the people who run authledger and those who
//! audit it. A person signs in through the ordinary sign-in page and is let in by role
//! (settings `console_admin_roles`, `console_auditor_roles`): an admin may change things, an
//! auditor sees everything and changes nothing (no buttons, and the POSTs are refused).
//! Every change goes through the same operations as the CLI and the admin API (`crate::admin`),
//! so its event says `actor=user:<name>`, with the request's address and user agent. Every
//! POST carries the CSRF token; values people typed are escaped by the templates.
//!
//! One file per page family: `overview.rs`, `clients.rs`, `users.rs`, `grants.rs`,
//! `audit.rs`, `history.rs`, `settings.rs`, `operations.rs` (keys, read models),
//! `federation.rs` (connected apps, social logins); their forms in `*_forms.rs`.

use axum::body::Bytes;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::SignedCookieJar;

use super::pages::{failure_page, message_page, Chrome};
use super::session;
use super::{paths, AppState};
use crate::error::AppError;
use crate::oauth::params::Params;

mod audit;
mod chart;
mod client_forms;
mod clients;
mod connected_app_forms;
mod federation;
mod grants;
mod history;
mod operations;
mod overview;
mod settings;
mod social_login_forms;
mod user_forms;
mod users;

/// How many rows a list page shows.
const PAGE: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::overview))
        .route("/clients", get(clients::list))
        .route(
            "/clients/new",
            get(client_forms::new_form).post(client_forms::create),
        )
        .route("/clients/{id}", get(clients::show))
        .route(
            "/clients/{id}/rotate-secret",
            post(client_forms::rotate_secret),
        )
        .route("/clients/{id}/delete", post(client_forms::delete))
        .route(
            "/clients/{id}/edit",
            get(client_forms::edit_form).post(client_forms::edit),
        )
        .route("/clients/{id}/disable", post(clients::disable))
        .route("/clients/{id}/enable", post(clients::enable))
        .route("/users", get(users::list))
        .route(
            "/users/new",
            get(user_forms::new_form).post(user_forms::create),
        )
        .route("/users/{username}", get(users::show))
        .route("/users/{username}/roles", post(user_forms::set_roles))
        .route(
            "/users/{username}/profile",
            post(user_forms::update_profile),
        )
        .route("/users/{username}/password", post(user_forms::set_password))
        .route(
            "/users/{username}/two-factor/reset",
            post(user_forms::reset_two_factor),
        )
        .route("/users/{username}/disable", post(users::disable))
        .route(
            "/users/{username}/consents/{client_id}/revoke",
            post(users::revoke_consent),
        )
        .route("/users/{username}/enable", post(users::enable))
        .route("/grants", get(grants::list))
        .route("/grants/{id}", get(grants::show))
        .route("/grants/{id}/revoke", post(grants::revoke))
        .route("/settings", get(settings::show).post(settings::set))
        .route("/keys", get(operations::keys))
        .route("/keys/rotate", post(operations::rotate))
        .route("/projections", get(operations::projections))
        .route("/projections/rebuild", post(operations::rebuild))
        .route("/connected-apps", get(federation::connected_apps))
        .route(
            "/connected-apps/new",
            get(connected_app_forms::new_form).post(connected_app_forms::create),
        )
        .route(
            "/connected-apps/{id}/edit",
            get(connected_app_forms::edit_form).post(connected_app_forms::edit),
        )
        .route(
            "/connected-apps/{id}/delete",
            post(connected_app_forms::delete),
        )
        .route("/social-logins", get(federation::social_logins))
        .route(
            "/social-logins/new",
            get(social_login_forms::new_form).post(social_login_forms::create),
        )
        .route(
            "/social-logins/{id}/edit",
            get(social_login_forms::edit_form).post(social_login_forms::edit),
        )
        .route(
            "/social-logins/{id}/delete",
            post(social_login_forms::delete),
        )
        .route("/audit", get(audit::audit))
        .route("/audit/export", get(audit::export))
        .route("/history/{kind}/{id}", get(history::history))
}

/// What a console user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    /// See and change everything.
    Admin,
    /// See everything, change nothing.
    Auditor,
}

/// The person using the console.
pub struct Operator {
    pub username: String,
    pub power: Power,
    pub chrome: Chrome,
    pub csrf_token: String,
}

impl Operator {
    pub fn can_change(&self) -> bool {
        self.power == Power::Admin
    }
}

/// Why the console does not serve a request: an answer for the browser.
pub enum Refusal {
    /// Signed out: to the sign-in page, and back.
    SignIn(String),
    /// Signed in without a console role, or an auditor trying to change something.
    Forbidden(Chrome, &'static str),
    /// A form without this browser's CSRF token.
    FormExpired,
    Failure(AppError),
}

impl From<AppError> for Refusal {
    fn from(error: AppError) -> Self {
        Refusal::Failure(error)
    }
}

impl From<authledger_projections::ProjectionError> for Refusal {
    fn from(error: authledger_projections::ProjectionError) -> Self {
        Refusal::Failure(error.into())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SignIn(back) => {
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair("return_to", &back)
                    .finish();
                Redirect::to(&format!("{}?{query}", paths::LOGIN)).into_response()
            }
            Refusal::Forbidden(chrome, why) => {
                message_page(&chrome, StatusCode::FORBIDDEN, "Not allowed", why, None)
            }
            Refusal::FormExpired => super::pages::error_page(
                StatusCode::BAD_REQUEST,
                "Form expired",
                "The form expired. Please go back, reload the page and try again.",
            ),
            Refusal::Failure(AppError::NotFound(what)) => {
                super::pages::error_page(StatusCode::NOT_FOUND, "Not found", &what)
            }
            Refusal::Failure(AppError::Invalid { message, .. }) => {
                super::pages::error_page(StatusCode::BAD_REQUEST, "Not accepted", &message)
            }
            Refusal::Failure(AppError::Conflict(why)) => {
                super::pages::error_page(StatusCode::CONFLICT, "Not done", &why)
            }
            Refusal::Failure(AppError::Upstream(why)) => {
                super::pages::error_page(StatusCode::BAD_GATEWAY, "The other server failed", &why)
            }
            Refusal::Failure(error) => failure_page(error),
        }
    }
}

/// The signed-in person, if their roles let them into the console.
pub async fn operator(
    app: &AppState,
    jar: SignedCookieJar,
    uri: &Uri,
) -> Result<(SignedCookieJar, Operator), Refusal> {
    let store = &app.authority.store;
    let Some(current) = session::current(store, &jar).await? else {
        let back = uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/admin".into());
        return Err(Refusal::SignIn(back));
    };
    let settings = store.settings_values().await?;
    let chrome = Chrome::new(&settings, Some(current.username.clone()));
    let user = crate::admin::users::show(store, &current.username).await?;
    let holds = |roles: &[String]| {
        user.roles
            .iter()
            .any(|r| roles.iter().any(|c| c == r.as_str()))
    };
    let power = if holds(&settings.console_admin_roles) {
        Power::Admin
    } else if holds(&settings.console_auditor_roles) {
        Power::Auditor
    } else {
        return Err(Refusal::Forbidden(
            chrome,
            "The console is for administrators and auditors. Ask an administrator for the role if you need it.",
        ));
    };
    let (jar, csrf_token) = session::csrf_token(jar, app.secure_cookies);
    Ok((
        jar,
        Operator {
            username: current.username,
            power,
            chrome,
            csrf_token,
        },
    ))
}

/// A console form POST: an admin's, with this browser's CSRF token.
pub async fn change(
    app: &AppState,
    jar: SignedCookieJar,
    uri: &Uri,
    body: &Bytes,
) -> Result<(Operator, Params), Refusal> {
    let form = Params::parse(body).map_err(|_| Refusal::FormExpired)?;
    if !session::csrf_valid(&jar, form.get("csrf_token")) {
        return Err(Refusal::FormExpired);
    }
    let (_, operator) = admin(app, jar, uri).await?;
    Ok((operator, form))
}

/// A delete form's confirmation: the name typed (spaces around it aside) must be the thing's.
pub fn confirm_deletion(form: &Params, name: &str, what: &str) -> Result<(), AppError> {
    if form.get("confirm_name").map(str::trim) != Some(name.trim()) {
        return Err(AppError::invalid_field(
            "confirm_name",
            format!("type the {what}'s name exactly to delete it"),
        ));
    }
    Ok(())
}

/// Why a form refused `field`, when its refusal (field, why) is about that field.
pub fn field_error<'a>(error: &'a Option<(String, String)>, field: &str) -> Option<&'a str> {
    error
        .as_ref()
        .filter(|(f, _)| f == field)
        .map(|(_, why)| why.as_str())
}

/// The signed-in person, if they may change things (the pages that hold a form to do so).
pub async fn admin(
    app: &AppState,
    jar: SignedCookieJar,
    uri: &Uri,
) -> Result<(SignedCookieJar, Operator), Refusal> {
    let (jar, operator) = operator(app, jar, uri).await?;
    if !operator.can_change() {
        return Err(Refusal::Forbidden(
            operator.chrome,
            "Auditors can see everything and change nothing.",
        ));
    }
    Ok((jar, operator))
}

/// A console change that ends on another page: an admin's form with its CSRF token, done as
/// them (`actor=user:<name>`, with the request's address and user agent); `op` returns the
/// page to go to.
pub async fn act(
    app: &AppState,
    jar: SignedCookieJar,
    uri: &Uri,
    context: &crate::http::context::RequestContext,
    body: &Bytes,
    op: impl AsyncFnOnce(authledger_domain::metadata::EventMetadata, Params) -> Result<String, AppError>,
) -> Response {
    let done = async {
        let (operator, form) = change(app, jar, uri, body).await?;
        let actor = context.metadata(authledger_domain::metadata::Actor::User(operator.username));
        let to = op(actor, form).await?;
        Ok::<_, Refusal>(Redirect::to(&to).into_response())
    };
    done.await.unwrap_or_else(IntoResponse::into_response)
}

/// A view time (RFC 3339) as people read it, to the second.
pub fn shown_time(view_time: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(view_time)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()
        })
        .unwrap_or_else(|_| view_time.to_owned())
}
