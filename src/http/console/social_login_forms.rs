//! Adding, changing and deleting a social login provider from the console: the same
//! operations as `authledger social-login create|update|delete` (`crate::social_login`).
//! The presets are the CLI's: an OpenID provider by its issuer (another authledger or Frappe
//! by its base URL, which is its issuer), or a plain OAuth 2 provider by its endpoints and
//! the user-info property that holds the person's id. The client secret is typed into a
//! password field, sealed, and never shown again.

use askama::Template;
use authledger_domain::metadata::Actor;
use authledger_domain::social_login::{Identification, SignUps};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::SignedCookieJar;

use super::{act, admin, change, Operator, Refusal};
use crate::error::AppError;
use crate::http::context::RequestContext;
use crate::http::pages::{render, Chrome};
use crate::http::AppState;
use crate::oauth::params::Params;
use crate::social_login::{self, ProviderSummary, SocialLoginChange, SocialLoginInput};

/// The form's values, as typed (kept when a field is refused). The secret is never echoed.
struct Typed {
    name: String,
    /// An OpenID provider's issuer, or another authledger's or Frappe's base URL.
    issuer: String,
    authorize_url: String,
    token_url: String,
    api_endpoint: String,
    user_id_property: String,
    client_id: String,
    scope: String,
    sign_ups_denied: bool,
    trusted_emails: bool,
    enabled: bool,
    icon: String,
    show_in_resource_metadata: bool,
    token_exchange: bool,
}

impl Default for Typed {
    fn default() -> Self {
        Typed {
            name: String::new(),
            issuer: String::new(),
            authorize_url: String::new(),
            token_url: String::new(),
            api_endpoint: String::new(),
            user_id_property: String::new(),
            client_id: String::new(),
            scope: String::new(),
            sign_ups_denied: false,
            trusted_emails: false,
            enabled: true,
            icon: String::new(),
            show_in_resource_metadata: true,
            token_exchange: false,
        }
    }
}

impl Typed {
    fn from_form(form: &Params) -> Typed {
        let text = |name: &str| form.get(name).unwrap_or_default().trim().to_owned();
        let checked = |name: &str| form.get(name).is_some();
        Typed {
            name: text("name"),
            issuer: text("issuer"),
            authorize_url: text("authorize_url"),
            token_url: text("token_url"),
            api_endpoint: text("api_endpoint"),
            user_id_property: text("user_id_property"),
            client_id: text("client_id"),
            scope: text("scope"),
            sign_ups_denied: form.get("sign_ups") == Some("deny"),
            trusted_emails: checked("trusted_emails"),
            enabled: checked("enabled"),
            icon: text("icon"),
            show_in_resource_metadata: checked("show_in_resource_metadata"),
            token_exchange: checked("token_exchange"),
        }
    }

    fn from_summary(provider: &ProviderSummary) -> Typed {
        Typed {
            name: provider.name.clone(),
            issuer: provider.issuer.clone().unwrap_or_default(),
            authorize_url: provider.authorization_uri.clone(),
            token_url: provider.token_uri.clone(),
            api_endpoint: provider.userinfo_uri.clone().unwrap_or_default(),
            user_id_property: match &provider.identification {
                Identification::UserInfo { property } => property.clone(),
                Identification::OpenId => String::new(),
            },
            client_id: provider.client_id.clone(),
            scope: provider.scope.clone(),
            sign_ups_denied: provider.sign_ups == SignUps::Deny,
            trusted_emails: provider.trusted_emails,
            enabled: provider.enabled,
            icon: provider.icon.clone().unwrap_or_default(),
            show_in_resource_metadata: provider.show_in_resource_metadata,
            token_exchange: provider.token_exchange,
        }
    }

    fn sign_ups(&self) -> String {
        if self.sign_ups_denied {
            "deny"
        } else {
            "allow"
        }
        .to_owned()
    }

    fn input(&self, client_secret: String) -> SocialLoginInput {
        let optional = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
        SocialLoginInput {
            name: self.name.clone(),
            issuer: optional(&self.issuer),
            base_url: None,
            authorize_url: optional(&self.authorize_url),
            token_url: optional(&self.token_url),
            api_endpoint: optional(&self.api_endpoint),
            user_id_property: optional(&self.user_id_property),
            client_id: self.client_id.clone(),
            client_secret,
            scope: optional(&self.scope),
            sign_ups: Some(self.sign_ups()),
            trusted_emails: self.trusted_emails,
            icon: optional(&self.icon),
            show_in_resource_metadata: Some(self.show_in_resource_metadata),
            token_exchange: self.token_exchange,
        }
    }

    /// What the edit form changes: everything it shows but the endpoints, which a
    /// provider keeps (delete it and add it again to point it elsewhere).
    fn change(&self, client_secret: String) -> SocialLoginChange {
        SocialLoginChange {
            name: Some(self.name.clone()),
            client_id: Some(self.client_id.clone()),
            client_secret: Some(client_secret).filter(|s| !s.is_empty()),
            scope: Some(self.scope.clone()),
            sign_ups: Some(self.sign_ups()),
            trusted_emails: Some(self.trusted_emails),
            enabled: Some(self.enabled),
            icon: Some(self.icon.clone()),
            show_in_resource_metadata: Some(self.show_in_resource_metadata),
            token_exchange: Some(self.token_exchange),
        }
    }
}

#[derive(Template)]
#[template(path = "console/social_login_form.html")]
struct FormPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    action: String,
    title: &'a str,
    submit: &'a str,
    /// The provider, once it exists: its endpoints are shown, not edited.
    existing: Option<&'a ProviderSummary>,
    typed: Typed,
    /// The field refused (`""` for the form as a whole), and why.
    error: Option<(String, String)>,
}

impl FormPage<'_> {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::field_error(&self.error, field)
    }
}

#[derive(Template)]
#[template(path = "console/social_login_created.html")]
struct CreatedPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    provider: &'a ProviderSummary,
}

/// A refused change answered on the form: which field, why, and the status that says so.
fn refusal_of(error: AppError) -> Result<(StatusCode, String, String), Refusal> {
    match error {
        AppError::Invalid { field, message } => {
            let field = match field.as_deref() {
                Some("base_url") => "issuer".to_owned(),
                other => other.unwrap_or_default().to_owned(),
            };
            Ok((StatusCode::BAD_REQUEST, field, message))
        }
        AppError::Conflict(why) => Ok((StatusCode::CONFLICT, "name".into(), why)),
        // Discovery is the only call made while saving.
        AppError::Upstream(why) => Ok((StatusCode::BAD_GATEWAY, "issuer".into(), why)),
        other => Err(other.into()),
    }
}

fn form_page(
    operator: &Operator,
    status: StatusCode,
    existing: Option<&ProviderSummary>,
    typed: Typed,
    error: Option<(String, String)>,
) -> Response {
    let page = FormPage {
        chrome: &operator.chrome,
        operator,
        action: match existing {
            Some(p) => format!("/admin/social-logins/{}/edit", p.id),
            None => "/admin/social-logins/new".to_owned(),
        },
        title: if existing.is_some() {
            "Edit social login"
        } else {
            "New social login"
        },
        submit: if existing.is_some() {
            "Save"
        } else {
            "Add provider"
        },
        existing,
        typed,
        error,
    };
    render(status, &page)
}

/// `GET /admin/social-logins/new`.
pub async fn new_form(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> Response {
    let page = async {
        let (jar, operator) = admin(&app, jar, &uri).await?;
        let page = form_page(&operator, StatusCode::OK, None, Typed::default(), None);
        Ok::<_, Refusal>((jar, page).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/social-logins/new`: added (discovery fetched for an issuer), then the page
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
        let authority = &app.authority;
        let created = social_login::create(
            &authority.store,
            &authority.master,
            &app.connections.provider,
            &authority.issuer,
            typed.input(secret),
            &actor,
        )
        .await;
        match created {
            Ok(provider) => {
                let page = CreatedPage {
                    chrome: &operator.chrome,
                    operator: &operator,
                    provider: &provider,
                };
                Ok::<_, Refusal>(render(StatusCode::CREATED, &page))
            }
            Err(error) => {
                let (status, field, why) = refusal_of(error)?;
                Ok(form_page(
                    &operator,
                    status,
                    None,
                    typed,
                    Some((field, why)),
                ))
            }
        }
    };
    done.await.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /admin/social-logins/{id}/edit`.
pub async fn edit_form(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Path(id): Path<String>,
) -> Response {
    let page = async {
        let (jar, operator) = admin(&app, jar, &uri).await?;
        let provider = social_login::show(&app.authority.store, &app.authority.issuer, &id).await?;
        let typed = Typed::from_summary(&provider);
        let page = form_page(&operator, StatusCode::OK, Some(&provider), typed, None);
        Ok::<_, Refusal>((jar, page).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/social-logins/{id}/edit`.
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
        let authority = &app.authority;
        let current = social_login::show(&authority.store, &authority.issuer, &id).await?;
        let typed = Typed::from_form(&form);
        let secret = form.get("client_secret").unwrap_or_default().to_owned();
        let actor = context.metadata(Actor::User(operator.username.clone()));
        let updated = social_login::update(
            &authority.store,
            &authority.master,
            &authority.issuer,
            &id,
            typed.change(secret),
            &actor,
        )
        .await;
        match updated {
            Ok(_) => Ok::<_, Refusal>(Redirect::to("/admin/social-logins").into_response()),
            Err(error) => {
                let (status, field, why) = refusal_of(error)?;
                Ok(form_page(
                    &operator,
                    status,
                    Some(&current),
                    typed,
                    Some((field, why)),
                ))
            }
        }
    };
    done.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/social-logins/{id}/delete`, confirmed by typing the provider's name. The
/// identities linked through it stay in the log, and sign no one in.
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
        let current = social_login::show(store, &authority.issuer, &id).await?;
        super::confirm_deletion(&form, &current.name, "provider")?;
        social_login::delete(store, &id, &actor).await?;
        Ok("/admin/social-logins".to_owned())
    })
    .await
}
