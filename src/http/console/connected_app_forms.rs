//! Registering, changing and deleting a connected app from the console: the same operations
//! as `authledger connected-app create|update|delete` (`crate::connected_apps`). The client
//! secret is typed into a password field, sealed as the CLI seals it, and never shown again;
//! left empty on the edit form, the sealed one stays.

use std::collections::BTreeMap;

use askama::Template;
use authledger_domain::metadata::Actor;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::SignedCookieJar;

use super::{act, admin, change, Operator, Refusal};
use crate::connected_apps::{self, AppSummary, ConnectedAppInput};
use crate::error::AppError;
use crate::http::context::RequestContext;
use crate::http::pages::{render, Chrome};
use crate::http::AppState;
use crate::oauth::params::Params;

/// The form's values, as typed (kept when a field is refused). The secret is never echoed.
#[derive(Default)]
struct Typed {
    name: String,
    openid_configuration: String,
    authorization_uri: String,
    token_uri: String,
    revocation_uri: String,
    userinfo_uri: String,
    introspection_uri: String,
    issuer: String,
    jwks_uri: String,
    client_id: String,
    scope: String,
    /// `NAME=VALUE` pairs separated by spaces.
    params: String,
}

impl Typed {
    fn from_form(form: &Params) -> Typed {
        let text = |name: &str| form.get(name).unwrap_or_default().trim().to_owned();
        Typed {
            name: text("name"),
            openid_configuration: text("openid_configuration"),
            authorization_uri: text("authorization_uri"),
            token_uri: text("token_uri"),
            revocation_uri: text("revocation_uri"),
            userinfo_uri: text("userinfo_uri"),
            introspection_uri: text("introspection_uri"),
            issuer: text("issuer"),
            jwks_uri: text("jwks_uri"),
            client_id: text("client_id"),
            scope: text("scope"),
            params: text("params"),
        }
    }

    fn from_summary(app: &AppSummary) -> Typed {
        let text = |u: &Option<String>| u.clone().unwrap_or_default();
        Typed {
            name: app.name.clone(),
            openid_configuration: text(&app.openid_configuration),
            authorization_uri: app.authorization_uri.clone(),
            token_uri: app.token_uri.clone(),
            revocation_uri: text(&app.revocation_uri),
            userinfo_uri: text(&app.userinfo_uri),
            introspection_uri: text(&app.introspection_uri),
            issuer: text(&app.issuer),
            jwks_uri: text(&app.jwks_uri),
            client_id: app.client_id.clone(),
            scope: app.scope.clone(),
            params: app
                .extra_params
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    fn input(&self, client_secret: String) -> Result<ConnectedAppInput, AppError> {
        let optional = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
        let mut extra_params = BTreeMap::new();
        for pair in self.params.split_whitespace() {
            let (name, value) = pair.split_once('=').ok_or_else(|| {
                AppError::invalid_field("params", format!("`{pair}`: expected NAME=VALUE"))
            })?;
            extra_params.insert(name.to_owned(), value.to_owned());
        }
        Ok(ConnectedAppInput {
            name: self.name.clone(),
            openid_configuration: optional(&self.openid_configuration),
            authorization_uri: optional(&self.authorization_uri),
            token_uri: optional(&self.token_uri),
            revocation_uri: optional(&self.revocation_uri),
            userinfo_uri: optional(&self.userinfo_uri),
            introspection_uri: optional(&self.introspection_uri),
            issuer: optional(&self.issuer),
            jwks_uri: optional(&self.jwks_uri),
            client_id: self.client_id.clone(),
            client_secret,
            scope: optional(&self.scope),
            extra_params,
        })
    }
}

#[derive(Template)]
#[template(path = "console/connected_app_form.html")]
struct FormPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    /// Where the form posts, its title and its button.
    action: String,
    title: &'a str,
    submit: &'a str,
    /// The app's id and callback, once it exists.
    existing: Option<(String, String)>,
    typed: Typed,
    /// The field refused (`""` for the form as a whole), and why.
    error: Option<(String, String)>,
}

impl FormPage<'_> {
    /// The endpoint fields: name, label, value.
    fn endpoints(&self) -> [(&'static str, &'static str, &str); 7] {
        let t = &self.typed;
        [
            ("authorization_uri", "Authorization", &t.authorization_uri),
            ("token_uri", "Token", &t.token_uri),
            ("revocation_uri", "Revocation", &t.revocation_uri),
            ("userinfo_uri", "User info", &t.userinfo_uri),
            ("introspection_uri", "Introspection", &t.introspection_uri),
            ("issuer", "Issuer", &t.issuer),
            ("jwks_uri", "JWKS (to check ID tokens)", &t.jwks_uri),
        ]
    }

    fn error_for(&self, field: &str) -> Option<&str> {
        super::field_error(&self.error, field)
    }
}

#[derive(Template)]
#[template(path = "console/connected_app_created.html")]
struct CreatedPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    app: &'a AppSummary,
}

/// A refused change answered on the form: which field, why, and the status that says so.
fn refusal_of(error: AppError) -> Result<(StatusCode, String, String), Refusal> {
    match error {
        AppError::Invalid { field, message } => {
            Ok((StatusCode::BAD_REQUEST, field.unwrap_or_default(), message))
        }
        AppError::Conflict(why) => Ok((StatusCode::CONFLICT, "name".into(), why)),
        // Discovery is the only call made while saving.
        AppError::Upstream(why) => {
            Ok((StatusCode::BAD_GATEWAY, "openid_configuration".into(), why))
        }
        other => Err(other.into()),
    }
}

fn form_page(
    operator: &Operator,
    status: StatusCode,
    action: String,
    existing: Option<(String, String)>,
    typed: Typed,
    error: Option<(String, String)>,
) -> Response {
    let (title, submit) = match existing {
        Some(_) => ("Edit connected app", "Save"),
        None => ("New connected app", "Create connected app"),
    };
    let page = FormPage {
        chrome: &operator.chrome,
        operator,
        action,
        title,
        submit,
        existing,
        typed,
        error,
    };
    render(status, &page)
}

/// `GET /admin/connected-apps/new`.
pub async fn new_form(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> Response {
    let page = async {
        let (jar, operator) = admin(&app, jar, &uri).await?;
        let typed = Typed {
            scope: "openid".into(),
            ..Typed::default()
        };
        let action = "/admin/connected-apps/new".to_owned();
        let page = form_page(&operator, StatusCode::OK, action, None, typed, None);
        Ok::<_, Refusal>((jar, page).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/connected-apps/new`: registered (discovery fetched if named), then the page
/// that shows the redirect URI to register at the provider.
pub async fn create(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    context: RequestContext,
    body: Bytes,
) -> Response {
    let done = async {
        let (operator, form) = change(&app, jar, &uri, &body).await?;
        let typed = Typed::from_form(&form);
        let secret = form.get("client_secret").unwrap_or_default().to_owned();
        let actor = context.metadata(Actor::User(operator.username.clone()));
        let created = match typed.input(secret) {
            Ok(input) => {
                connected_apps::create(
                    &app.authority.store,
                    &app.authority.master,
                    &app.connections.provider,
                    &app.authority.issuer,
                    input,
                    &actor,
                )
                .await
            }
            Err(refused) => Err(refused),
        };
        match created {
            Ok(summary) => {
                let page = CreatedPage {
                    chrome: &operator.chrome,
                    operator: &operator,
                    app: &summary,
                };
                Ok::<_, Refusal>(render(StatusCode::CREATED, &page))
            }
            Err(error) => {
                let (status, field, why) = refusal_of(error)?;
                let action = "/admin/connected-apps/new".to_owned();
                Ok(form_page(
                    &operator,
                    status,
                    action,
                    None,
                    typed,
                    Some((field, why)),
                ))
            }
        }
    };
    done.await.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /admin/connected-apps/{id}/edit`: the app as a form, with its callback.
pub async fn edit_form(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Path(id): Path<String>,
) -> Response {
    let page = async {
        let (jar, operator) = admin(&app, jar, &uri).await?;
        let summary =
            connected_apps::show(&app.authority.store, &app.authority.issuer, &id).await?;
        let page = form_page(
            &operator,
            StatusCode::OK,
            format!("/admin/connected-apps/{}/edit", summary.id),
            Some((summary.id.clone(), summary.redirect_uri.clone())),
            Typed::from_summary(&summary),
            None,
        );
        Ok::<_, Refusal>((jar, page).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/connected-apps/{id}/edit`: what the form holds replaces the app's (an empty
/// field keeps what the app has; a changed discovery URL is fetched again). The id and so
/// the callback stay.
pub async fn edit(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    context: RequestContext,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let done = async {
        let (operator, form) = change(&app, jar, &uri, &body).await?;
        let store = &app.authority.store;
        let issuer = &app.authority.issuer;
        let current = connected_apps::show(store, issuer, &id).await?;
        let mut typed = Typed::from_form(&form);
        // The same document again is no request to fetch it again.
        let rediscover = Some(&typed.openid_configuration) != current.openid_configuration.as_ref();
        let secret = form.get("client_secret").unwrap_or_default().to_owned();
        let actor = context.metadata(Actor::User(operator.username.clone()));
        let updated = match typed.input(secret) {
            Ok(mut input) => {
                if !rediscover {
                    input.openid_configuration = None;
                }
                connected_apps::update(
                    store,
                    &app.authority.master,
                    &app.connections.provider,
                    issuer,
                    &id,
                    input,
                    &actor,
                )
                .await
            }
            Err(refused) => Err(refused),
        };
        match updated {
            Ok(_) => Ok::<_, Refusal>(Redirect::to("/admin/connected-apps").into_response()),
            Err(error) => {
                let (status, field, why) = refusal_of(error)?;
                if field == "name" && status == StatusCode::CONFLICT {
                    typed.name = current.name.clone();
                }
                Ok(form_page(
                    &operator,
                    status,
                    format!("/admin/connected-apps/{}/edit", current.id),
                    Some((current.id.clone(), current.redirect_uri.clone())),
                    typed,
                    Some((field, why)),
                ))
            }
        }
    };
    done.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/connected-apps/{id}/delete`, confirmed by typing the app's name: its secret
/// and every token cached for it are forgotten.
pub async fn delete(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    context: RequestContext,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let authority = app.authority.clone();
    act(&app, jar, &uri, &context, &body, async |actor, form| {
        let store = &authority.store;
        let current = connected_apps::show(store, &authority.issuer, &id).await?;
        super::confirm_deletion(&form, &current.name, "app")?;
        connected_apps::delete(store, &authority.master, &id, &actor).await?;
        Ok("/admin/connected-apps".to_owned())
    })
    .await
}
