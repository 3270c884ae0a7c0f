//! `GET/POST /oauth/authorize` (and Frappe's `authorize` alias): sign-in, consent, then a code
//! or (implicit) a token, sent back to the client.

use askama::Template;
use authledger_domain::consent::{consent_id, ConsentCommand};
use authledger_domain::metadata::Actor;
use authledger_domain::oauth::ResponseType;
use authledger_domain::settings::ConsentMode;
use authledger_domain::user::RegisteredUser;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::SignedCookieJar;
use chrono::Utc;

use super::context::RequestContext;
use super::pages::{describe_scope, render, AppCard, Chrome};
use super::render;
use super::session;
use super::{paths, AppState};
use crate::error::AppError;
use crate::oauth::authorize::{validate, AuthorizationRequest};
use crate::oauth::error::{AuthorizeError, AuthorizeErrorCode};
use crate::oauth::grants::{issue_code, issue_implicit};
use crate::oauth::params::Params;

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    chrome: &'a Chrome,
    app: AppCard,
    action: &'a str,
    csrf_token: &'a str,
    /// Signs out and comes back to this request ("not you?").
    not_you: String,
    /// The host of the redirect URI: where the answer goes.
    return_host: String,
    username: &'a str,
    scopes: Vec<(&'a str, String)>,
    /// The APIs the access is limited to (RFC 8707): (name, identifier).
    resources: Vec<(&'a str, &'a str)>,
    fields: Vec<(&'a str, &'a str)>,
}

pub async fn authorize(
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
    let mut params = match Params::parse(raw) {
        Ok(params) => params,
        Err(error) => {
            return AuthorizeError::Untrusted {
                title: "Malformed request",
                message: format!("The request is malformed: {error}."),
            }
            .into_response()
        }
    };
    // Consent-form fields are not part of the authorization request; a decision only counts
    // when POSTed with the form's CSRF token.
    let decision = params.remove("decision").filter(|_| method == Method::POST);
    let csrf = params.remove("csrf_token");
    match run(&app, jar, &context, uri.path(), params, decision, csrf).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn internal(error: AppError) -> AuthorizeError {
    AuthorizeError::Failure(error)
}

async fn signed_in_user(
    app: &AppState,
    jar: &SignedCookieJar,
) -> Result<Option<(RegisteredUser, session::Session)>, AuthorizeError> {
    session::signed_in_user(&app.authority.store, jar)
        .await
        .map_err(internal)
}

async fn run(
    app: &AppState,
    jar: SignedCookieJar,
    context: &RequestContext,
    path: &str,
    params: Params,
    decision: Option<String>,
    csrf: Option<String>,
) -> Result<Response, AuthorizeError> {
    let authority = &app.authority;
    let settings = authority.store.settings_values().await.map_err(internal)?;
    let request = validate(authority, &settings, params).await?;
    super::request_log::note_client(request.client.client_id.as_str());

    let signed_in = signed_in_user(app, &jar).await?;
    let now = Utc::now();
    let must_sign_in = match &signed_in {
        None => true,
        Some((user, session)) => {
            let age = (now - session.auth_time()).num_seconds();
            // A client that asks for two factors gets a sign-in with two, if the person has
            // a second factor (otherwise the ID token's `acr` says what they did).
            let step_up =
                request.wants_two_factors() && !session.two_factors() && user.two_factor.is_some();
            // `prompt=login` is satisfied by a sign-in that just happened: the carried request
            // drops it, but a client may send it again right away.
            step_up
                || request.max_age.is_some_and(|max| age > max)
                || (request.prompt.login && age > 5)
        }
    };
    if must_sign_in {
        if request.prompt.none {
            return Err(request.refuse(
                AuthorizeErrorCode::LoginRequired,
                "the person is not signed in",
            ));
        }
        return Ok(send_to_sign_in(&request, path));
    }
    let (user, session) = signed_in.expect("checked above");
    let auth_time = session.auth_time();

    let allowed = &request.client.metadata.allowed_roles;
    if !allowed.is_empty() && !user.roles.iter().any(|r| allowed.contains(r.as_str())) {
        return Err(request.refuse(
            AuthorizeErrorCode::AccessDenied,
            "the person's roles do not allow them to use this client",
        ));
    }

    let store = &authority.store;
    let consent_key = consent_id(&user.username, &request.client.client_id);
    let consent = store
        .consents
        .load(&consent_key)
        .await
        .map_err(|e| internal(AppError::store(e)))?;
    let consent_needed = request.prompt.consent
        || (!request.client.metadata.skip_authorization
            && (settings.consent_mode == ConsentMode::Force || !consent.covers(&request.scopes)));
    let metadata = context.metadata(Actor::User(user.username.to_string()));

    if consent_needed {
        match decision.as_deref() {
            None if request.prompt.none => {
                return Err(request.refuse(
                    AuthorizeErrorCode::ConsentRequired,
                    "the person has not consented to this client and scope",
                ))
            }
            None => {
                let chrome = Chrome::new(&settings, Some(user.username.to_string()));
                return Ok(consent_page(app, jar, &chrome, &request, &user, path));
            }
            Some(_) if !session::csrf_valid(&jar, csrf.as_deref()) => {
                return Err(AuthorizeError::Untrusted {
                    title: "Form expired",
                    message: "The consent form expired; go back to the application and try again."
                        .into(),
                })
            }
            Some("deny") => {
                return Err(
                    request.refuse(AuthorizeErrorCode::AccessDenied, "the person denied access")
                )
            }
            Some("allow") => {
                store
                    .consents
                    .execute(
                        &consent_key,
                        ConsentCommand::Grant {
                            user: user.username.clone(),
                            client_id: request.client.client_id.clone(),
                            scopes: request.scopes.clone(),
                        },
                        &metadata,
                    )
                    .await
                    .map_err(|e| internal(AppError::store(e)))?;
            }
            Some(_) => {
                return Err(request.refuse(
                    AuthorizeErrorCode::InvalidRequest,
                    "decision must be allow or deny",
                ))
            }
        }
    }

    let response = match request.response_type {
        ResponseType::Code => {
            let code = issue_code(
                authority,
                &request,
                &user.username,
                auth_time,
                (&session.id_hash(), &session.amr),
                &settings,
                &metadata,
            )
            .await
            .map_err(internal)?;
            render::redirect(&request.target, &[("code", &code)])
        }
        ResponseType::Token => {
            let (token, expires_in) = issue_implicit(
                authority,
                &request,
                &user.username,
                auth_time,
                &settings,
                &metadata,
            )
            .await
            .map_err(internal)?;
            let scope = request.scopes.to_string();
            render::redirect(
                &request.target,
                &[
                    ("access_token", &token),
                    ("token_type", "Bearer"),
                    ("expires_in", &expires_in.to_string()),
                    ("scope", &scope),
                ],
            )
        }
    };
    Ok(response)
}

/// Sends the person to sign in, carrying the request so they come back to it. A `prompt=login`
/// is dropped from the carried request, or signing in would ask for signing in again.
fn send_to_sign_in(request: &AuthorizationRequest, path: &str) -> Response {
    let mut carried = request.params.clone();
    if let Some(prompt) = carried.remove("prompt") {
        let rest: Vec<&str> = prompt
            .split(' ')
            .filter(|p| *p != "login" && !p.is_empty())
            .collect();
        if !rest.is_empty() {
            carried =
                Params::parse(format!("{}&prompt={}", carried.encode(), rest.join("+")).as_bytes())
                    .unwrap_or(carried);
        }
    }
    let return_to = format!("{path}?{}", carried.encode());
    let mut login = form_urlencoded::Serializer::new(String::new());
    login.append_pair("return_to", &return_to);
    if let Some(hint) = &request.login_hint {
        login.append_pair("login_hint", hint);
    }
    Redirect::to(&format!("{}?{}", paths::LOGIN, login.finish())).into_response()
}

fn consent_page(
    app: &AppState,
    jar: SignedCookieJar,
    chrome: &Chrome,
    request: &AuthorizationRequest,
    user: &RegisteredUser,
    path: &str,
) -> Response {
    let (jar, csrf_token) = session::csrf_token(jar, app.secure_cookies);
    let mut fields: Vec<(&str, &str)> = request.params.iter().collect();
    fields.sort();
    let back_here = format!("{path}?{}", request.params.encode());
    let not_you = format!(
        "{}?{}",
        paths::LOGOUT,
        form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &back_here)
            .finish()
    );
    let return_host = url::Url::parse(&request.target.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| request.target.redirect_uri.clone());
    let page = ConsentPage {
        chrome,
        app: AppCard::of(&request.client),
        action: path,
        csrf_token: &csrf_token,
        not_you,
        return_host,
        username: user.username.as_str(),
        scopes: request
            .scopes
            .iter()
            .map(|s| (s, describe_scope(s)))
            .collect(),
        resources: request
            .resources
            .resources()
            .iter()
            .map(|r| (r.settings.name.as_str(), r.identifier.as_str()))
            .collect(),
        fields,
    };
    (jar, render(StatusCode::OK, &page)).into_response()
}
