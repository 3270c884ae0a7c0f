//! Creating a person, editing their profile, setting their roles and password, and resetting their two-factor
//! sign-in, from the console: the same operations as `authledger user create|set-roles|
//! set-password|reset-two-factor`.

use askama::Template;
use authledger_domain::metadata::Actor;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::SignedCookieJar;

use super::{act, admin, change, Operator, Refusal};
use crate::admin::users::UserInput;
use crate::error::AppError;
use crate::http::context::RequestContext;
use crate::http::pages::{render, Chrome};
use crate::http::AppState;

#[derive(Template)]
#[template(path = "console/user_new.html")]
struct NewUserPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    username: &'a str,
    email: &'a str,
    name: &'a str,
    roles: &'a str,
    error: Option<String>,
}

pub async fn new_form(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> Response {
    let page = async {
        let (jar, operator) = admin(&app, jar, &uri).await?;
        let page = NewUserPage {
            chrome: &operator.chrome,
            operator: &operator,
            username: "",
            email: "",
            name: "",
            roles: "",
            error: None,
        };
        Ok::<_, Refusal>((jar, render(StatusCode::OK, &page)).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}

fn roles(raw: &str) -> Vec<String> {
    raw.split([',', ' '])
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

pub async fn create(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    context: RequestContext,
    body: Bytes,
) -> Response {
    let done = async {
        let (operator, form) = change(&app, jar, &uri, &body).await?;
        let text = |name: &str| form.get(name).unwrap_or_default().trim().to_owned();
        let (username, email, name, role_text) =
            (text("username"), text("email"), text("name"), text("roles"));
        let input = UserInput {
            username: username.clone(),
            password: form.get("password").unwrap_or_default().to_owned(),
            email: Some(email.clone()).filter(|e| !e.is_empty()),
            name: Some(name.clone()).filter(|n| !n.is_empty()),
            roles: roles(&role_text),
            ..UserInput::default()
        };
        let actor = context.metadata(Actor::User(operator.username.clone()));
        match crate::admin::users::create(&app.authority.store, input, &actor).await {
            Ok(user) => Ok::<_, Refusal>(
                Redirect::to(&format!("/admin/users/{}", user.username)).into_response(),
            ),
            Err(AppError::Invalid { message, .. }) | Err(AppError::Conflict(message)) => {
                let page = NewUserPage {
                    chrome: &operator.chrome,
                    operator: &operator,
                    username: &username,
                    email: &email,
                    name: &name,
                    roles: &role_text,
                    error: Some(message),
                };
                Ok(render(StatusCode::BAD_REQUEST, &page))
            }
            Err(error) => Err(error.into()),
        }
    };
    done.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/users/{username}/roles`: `roles`, comma-separated.
pub async fn set_roles(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    context: RequestContext,
    Path(username): Path<String>,
    body: Bytes,
) -> Response {
    act(&app, jar, &uri, &context, &body, async |actor, form| {
        let roles = roles(form.get("roles").unwrap_or_default());
        let store = &app.authority.store;
        let user = crate::admin::users::set_roles(store, &username, &roles, &actor).await?;
        Ok(format!("/admin/users/{}", user.username))
    })
    .await
}

/// `POST /admin/users/{username}/profile`: the claims ID tokens and userinfo give of them.
pub async fn update_profile(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    context: RequestContext,
    Path(username): Path<String>,
    body: Bytes,
) -> Response {
    act(&app, jar, &uri, &context, &body, async |actor, form| {
        let field = |name: &str| form.get(name).map(str::to_owned);
        let input = crate::admin::users::ProfileInput {
            email: field("email"),
            name: field("name"),
            given_name: field("given_name"),
            family_name: field("family_name"),
            picture: field("picture"),
        };
        let store = &app.authority.store;
        let user = crate::admin::users::update_profile(store, &username, input, &actor).await?;
        Ok(format!("/admin/users/{}", user.username))
    })
    .await
}

/// `POST /admin/users/{username}/password`: ends their sessions, as a password change does.
pub async fn set_password(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    context: RequestContext,
    Path(username): Path<String>,
    body: Bytes,
) -> Response {
    act(&app, jar, &uri, &context, &body, async |actor, form| {
        let password = form.get("password").unwrap_or_default();
        crate::admin::users::set_password(&app.authority.store, &username, password, &actor)
            .await?;
        app.session_ends.notify_one();
        Ok(format!("/admin/users/{username}"))
    })
    .await
}

/// `POST /admin/users/{username}/two-factor/reset`: a lost phone.
pub async fn reset_two_factor(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    context: RequestContext,
    Path(username): Path<String>,
    body: Bytes,
) -> Response {
    act(&app, jar, &uri, &context, &body, async |actor, _| {
        let store = &app.authority.store;
        let user = crate::admin::users::reset_two_factor(store, &username, &actor).await?;
        Ok(format!("/admin/users/{}", user.username))
    })
    .await
}
