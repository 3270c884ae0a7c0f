//! Creating a client, rotating its secret and deleting it, from the console: the same
//! operations as `authledger client create|rotate-secret|delete`. A new secret is shown once,
//! on the page that answers the POST, and never again.

use askama::Template;
use authledger_domain::client::RegistrationSource;
use authledger_domain::metadata::Actor;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::SignedCookieJar;

use super::{admin, change, Operator, Refusal};
use crate::admin::clients::{ClientInput, InvalidClientInput};
use crate::error::AppError;
use crate::http::context::RequestContext;
use crate::http::pages::{render, Chrome};
use crate::http::AppState;
use crate::oauth::params::Params;

/// The form's values, as typed (kept when a field is refused).
#[derive(Default)]
struct Typed {
    name: String,
    redirect_uris: String,
    scope: String,
    grant_types: Vec<String>,
    public: bool,
    skip_authorization: bool,
    require_pkce: bool,
    allowed_roles: String,
    client_uri: String,
    logo_uri: String,
    policy_uri: String,
    tos_uri: String,
    post_logout_redirect_uris: String,
    backchannel_logout_uri: String,
}

impl Typed {
    fn from_form(form: &Params) -> Typed {
        let text = |name: &str| form.get(name).unwrap_or_default().trim().to_owned();
        Typed {
            name: text("client_name"),
            redirect_uris: text("redirect_uris"),
            scope: text("scope"),
            grant_types: [
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "device_code",
                "implicit",
            ]
            .into_iter()
            .filter(|g| form.get(&format!("grant_{g}")).is_some())
            .map(str::to_owned)
            .collect(),
            public: form.get("public").is_some(),
            skip_authorization: form.get("skip_authorization").is_some(),
            require_pkce: form.get("require_pkce").is_some(),
            allowed_roles: text("allowed_roles"),
            client_uri: text("client_uri"),
            logo_uri: text("logo_uri"),
            policy_uri: text("policy_uri"),
            tos_uri: text("tos_uri"),
            post_logout_redirect_uris: text("post_logout_redirect_uris"),
            backchannel_logout_uri: text("backchannel_logout_uri"),
        }
    }

    fn input(&self) -> ClientInput {
        let lines = |s: &str| {
            s.split(['\n', ' '])
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let optional = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
        ClientInput {
            name: self.name.clone(),
            redirect_uris: lines(&self.redirect_uris),
            scope: optional(&self.scope),
            grant_types: self.grant_types.clone(),
            public: self.public,
            skip_authorization: self.skip_authorization,
            require_pkce: self.require_pkce,
            allowed_roles: lines(&self.allowed_roles.replace(',', " ")),
            client_uri: optional(&self.client_uri),
            logo_uri: optional(&self.logo_uri),
            policy_uri: optional(&self.policy_uri),
            tos_uri: optional(&self.tos_uri),
            post_logout_redirect_uris: lines(&self.post_logout_redirect_uris),
            backchannel_logout_uri: optional(&self.backchannel_logout_uri),
            ..ClientInput::default()
        }
    }

    /// The form filled in with a client's registry entry.
    fn from_metadata(m: &authledger_domain::client::ClientMetadata) -> Typed {
        // Space-separated: form values may not hold line breaks (`oauth::params`).
        let lines = |items: Vec<&str>| items.join(" ");
        let text = |u: &Option<authledger_domain::oauth::WebUrl>| {
            u.as_ref()
                .map(|u| u.as_str().to_owned())
                .unwrap_or_default()
        };
        Typed {
            name: m.name.clone(),
            redirect_uris: lines(m.redirect_uris.iter().map(|u| u.as_str()).collect()),
            scope: m.scopes.to_string(),
            grant_types: m
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            public: m.token_endpoint_auth_method.is_public(),
            skip_authorization: m.skip_authorization,
            require_pkce: m.require_pkce,
            allowed_roles: m
                .allowed_roles
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            client_uri: text(&m.client_uri),
            logo_uri: text(&m.logo_uri),
            policy_uri: text(&m.policy_uri),
            tos_uri: text(&m.tos_uri),
            post_logout_redirect_uris: lines(
                m.post_logout_redirect_uris
                    .iter()
                    .map(|u| u.as_str())
                    .collect(),
            ),
            backchannel_logout_uri: text(&m.backchannel_logout_uri),
        }
    }

    fn grants(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }
}

#[derive(Template)]
#[template(path = "console/client_new.html")]
struct NewClientPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    /// Where the form posts, its title and its button.
    action: String,
    title: &'a str,
    submit: &'a str,
    typed: Typed,
    /// The field refused, and why.
    error: Option<(String, String)>,
}

impl NewClientPage<'_> {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::field_error(&self.error, field)
    }
}

#[derive(Template)]
#[template(path = "console/secret.html")]
struct SecretPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    title: &'a str,
    client_id: &'a str,
    secret: Option<&'a str>,
}

pub async fn new_form(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> Response {
    let page = async {
        let (jar, operator) = admin(&app, jar, &uri).await?;
        let typed = Typed {
            scope: crate::admin::clients::DEFAULT_SCOPES.to_owned(),
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            ..Typed::default()
        };
        let page = NewClientPage {
            chrome: &operator.chrome,
            operator: &operator,
            action: "/admin/clients/new".into(),
            title: "New client",
            submit: "Create client",
            typed,
            error: None,
        };
        Ok::<_, Refusal>((jar, render(StatusCode::OK, &page)).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}

/// The form field a refusal belongs to.
fn field_of(invalid: &InvalidClientInput) -> &'static str {
    match invalid.field {
        "redirect_uri" | "default_redirect_uri" => "redirect_uris",
        "post_logout_redirect_uri" => "post_logout_redirect_uris",
        "grant_types" | "token_endpoint_auth_method" => "grant_types",
        other => other,
    }
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
        let typed = Typed::from_form(&form);
        let refused = |field: String, why: String, typed: Typed| {
            let page = NewClientPage {
                chrome: &operator.chrome,
                operator: &operator,
                action: "/admin/clients/new".into(),
                title: "New client",
                submit: "Create client",
                typed,
                error: Some((field, why)),
            };
            render(StatusCode::BAD_REQUEST, &page)
        };
        let metadata = match typed.input().parse() {
            Ok(metadata) => metadata,
            Err(invalid) => {
                return Ok(refused(
                    field_of(&invalid).to_owned(),
                    invalid.message(),
                    typed,
                ))
            }
        };
        let actor = context.metadata(Actor::User(operator.username.clone()));
        let store = &app.authority.store;
        let registered = crate::admin::clients::register_parsed(
            store,
            metadata,
            RegistrationSource::Admin,
            None,
            &actor,
            Some(&app.authority.master),
        )
        .await;
        let client = match registered {
            Ok(client) => client,
            Err(AppError::Invalid { field, message }) => {
                let field = match field.as_deref() {
                    Some(f) if f.starts_with("redirect_uri") => "redirect_uris".to_owned(),
                    Some(f) => f.to_owned(),
                    None => "client_name".to_owned(),
                };
                return Ok(refused(field, message, typed));
            }
            Err(error) => return Err(error.into()),
        };
        let page = SecretPage {
            chrome: &operator.chrome,
            operator: &operator,
            title: "Client created",
            client_id: client.client_id.as_str(),
            secret: client.client_secret.as_ref().map(|s| s.reveal()),
        };
        Ok::<_, Refusal>(render(StatusCode::CREATED, &page))
    };
    done.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/clients/{id}/rotate-secret`, optionally revoking every token (`revoke_tokens`).
pub async fn rotate_secret(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    context: RequestContext,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let done = async {
        let (operator, form) = change(&app, jar, &uri, &body).await?;
        let revoke = form.get("revoke_tokens").is_some();
        let actor = context.metadata(Actor::User(operator.username.clone()));
        let secret = crate::admin::clients::rotate_secret(
            &app.authority.store,
            &id,
            revoke,
            &actor,
            Some(&app.authority.master),
        )
        .await?;
        let page = SecretPage {
            chrome: &operator.chrome,
            operator: &operator,
            title: "Secret rotated",
            client_id: &id,
            secret: Some(secret.reveal()),
        };
        Ok::<_, Refusal>(render(StatusCode::OK, &page))
    };
    done.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/clients/{id}/delete`, confirmed by typing the client's name.
pub async fn delete(
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
        let client = crate::admin::clients::show(store, &id).await?;
        super::confirm_deletion(&form, &client.name, "client")?;
        let actor = context.metadata(Actor::User(operator.username));
        crate::admin::clients::delete(store, &id, &actor).await?;
        Ok::<_, Refusal>(Redirect::to("/admin/clients").into_response())
    };
    done.await.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /admin/clients/{id}/edit`: the client's registry entry as a form.
pub async fn edit_form(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Path(id): Path<String>,
) -> Response {
    let page = async {
        let (jar, operator) = admin(&app, jar, &uri).await?;
        let client = crate::admin::clients::show(&app.authority.store, &id).await?;
        let page = NewClientPage {
            chrome: &operator.chrome,
            operator: &operator,
            action: format!("/admin/clients/{id}/edit"),
            title: "Edit client",
            submit: "Save",
            typed: Typed::from_metadata(&client.metadata),
            error: None,
        };
        Ok::<_, Refusal>((jar, render(StatusCode::OK, &page)).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/clients/{id}/edit`: the form's fields replace the client's; what the form
/// does not show (how it authenticates, how its ID tokens are signed, contacts, software)
/// stays as it was.
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
        let current = crate::admin::clients::show(store, &id).await?.metadata;
        let typed = Typed::from_form(&form);
        let refused = |field: String, why: String, typed: Typed| {
            let page = NewClientPage {
                chrome: &operator.chrome,
                operator: &operator,
                action: format!("/admin/clients/{id}/edit"),
                title: "Edit client",
                submit: "Save",
                typed,
                error: Some((field, why)),
            };
            render(StatusCode::BAD_REQUEST, &page)
        };
        let mut edited = match typed.input().parse() {
            Ok(metadata) => metadata,
            Err(invalid) => {
                return Ok(refused(
                    field_of(&invalid).to_owned(),
                    invalid.message(),
                    typed,
                ))
            }
        };
        if !edited.token_endpoint_auth_method.is_public()
            && !current.token_endpoint_auth_method.is_public()
        {
            edited.token_endpoint_auth_method = current.token_endpoint_auth_method;
        }
        edited.default_redirect_uri = current
            .default_redirect_uri
            .clone()
            .filter(|d| edited.redirect_uris.contains(d));
        edited.id_token_signed_response_alg = current.id_token_signed_response_alg;
        edited.frappe_claims = current.frappe_claims;
        edited.contacts = current.contacts.clone();
        edited.software_id = current.software_id.clone();
        edited.software_version = current.software_version.clone();
        edited.backchannel_logout_session_required = current.backchannel_logout_session_required;
        edited.token_exchange_subject_clients = current.token_exchange_subject_clients.clone();
        edited.token_exchange_actor_clients = current.token_exchange_actor_clients.clone();
        edited.token_exchange_subject_issuers = current.token_exchange_subject_issuers.clone();
        // The form has no box for token exchange (set from the CLI or admin API): keep it.
        let exchange = authledger_domain::oauth::GrantType::TokenExchange;
        if current.grant_types.contains(&exchange) {
            edited.grant_types.insert(exchange);
        }
        let actor = context.metadata(Actor::User(operator.username.clone()));
        match crate::admin::clients::replace(store, &id, edited, &actor).await {
            Ok(()) => {
                Ok::<_, Refusal>(Redirect::to(&format!("/admin/clients/{id}")).into_response())
            }
            Err(AppError::Invalid { field, message }) => Ok(refused(
                field.unwrap_or_else(|| "client_name".into()),
                message,
                typed,
            )),
            Err(error) => Err(error.into()),
        }
    };
    done.await.unwrap_or_else(IntoResponse::into_response)
}
