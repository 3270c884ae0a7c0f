//! `/login/social/{id}` and `.../callback`: signing in through another provider (the
//! authorization request, its cookie and the checks on the answer: `federation.rs`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{PrivateCookieJar, SignedCookieJar};
use serde::Deserialize;

use super::context::RequestContext;
use super::federation::{self, Callback};
use super::pages::{error_page, safe_return_to};
use super::session::{self, Session};
use super::{paths, AppState};
use crate::error::AppError;
use crate::social_login::{self, Answer, Outcome};
use authledger_domain::metadata::Actor;
use authledger_domain::user::{UserCommand, UserEvent};

const FLOW: federation::Flow = federation::Flow {
    cookie: "authledger_social",
    path: "/login/social",
};

#[derive(Deserialize)]
pub struct BeginQuery {
    return_to: Option<String>,
}

fn failed(error: AppError) -> Response {
    match error {
        AppError::NotFound(why) => error_page(StatusCode::NOT_FOUND, "Not found", &why),
        AppError::Invalid { message, .. } => {
            error_page(StatusCode::BAD_REQUEST, "Not signed in", &message)
        }
        AppError::Conflict(why) => error_page(StatusCode::CONFLICT, "Not signed in", &why),
        AppError::Upstream(why) => error_page(
            StatusCode::BAD_GATEWAY,
            "The other server failed",
            &format!("You are not signed in. {why}"),
        ),
        other => super::pages::failure_page(other),
    }
}

/// `GET /login/social/{id}[?return_to=/local/path]`.
pub async fn begin(
    State(app): State<AppState>,
    private: PrivateCookieJar,
    Path(id): Path<String>,
    Query(query): Query<BeginQuery>,
) -> Response {
    let begun = async {
        let id = social_login::parse_id(&id)?;
        let provider = social_login::load(&app.authority.store, &id).await?;
        let config = &provider.config;
        if !config.enabled {
            return Err(AppError::NotFound(format!(
                "signing in with {} is turned off",
                config.name
            )));
        }
        let redirect_uri = social_login::redirect_uri(&app.authority.issuer, &id);
        let request = federation::Request {
            endpoint: &config.endpoints.authorization,
            client_id: &config.client_id,
            redirect_uri: &redirect_uri,
            scopes: &config.scopes,
            extra: vec![],
        };
        let return_to =
            safe_return_to(query.return_to.as_deref()).unwrap_or_else(|| paths::ACCOUNT.to_owned());
        let (jar, to) = FLOW.begin(
            private,
            app.secure_cookies,
            request,
            id.as_str(),
            None,
            Some(return_to),
        )?;
        Ok::<_, AppError>((jar, Redirect::to(&to)).into_response())
    };
    begun.await.unwrap_or_else(failed)
}

/// `GET /login/social/{id}/callback?code=...&state=...` (or `error=...`).
pub async fn callback(
    State(app): State<AppState>,
    signed: SignedCookieJar,
    private: PrivateCookieJar,
    context: RequestContext,
    Path(id): Path<String>,
    Query(answer): Query<Callback>,
) -> Response {
    let (private, attempt) = FLOW.take(private, &id, &answer, "You are not signed in.");
    let done = async {
        let attempt = attempt?;
        let id = social_login::parse_id(&id)?;
        let store = &app.authority.store;
        let code = answer.code()?;
        let provider = social_login::load(store, &id).await?;
        if !provider.config.enabled {
            return Err(AppError::NotFound(format!(
                "signing in with {} is turned off",
                provider.config.name
            )));
        }
        let metadata = context.metadata(Actor::Anonymous);
        let outcome = social_login::complete(
            store,
            &app.authority.master,
            &app.connections.provider,
            &provider,
            Answer {
                code,
                verifier: &attempt.verifier,
                nonce: &attempt.nonce,
                redirect_uri: &social_login::redirect_uri(&app.authority.issuer, &id),
            },
            &metadata,
        )
        .await?;
        let user = match outcome {
            Outcome::Person(user) => user,
            Outcome::NoAccount => {
                return Ok(error_page(
                    StatusCode::FORBIDDEN,
                    "No account",
                    &format!(
                        "You signed in at {}, but you have no account here, and new accounts \
                         cannot be made that way. Ask an administrator for one.",
                        provider.config.name
                    ),
                ))
            }
        };
        let settings = store.settings_values().await?;
        let (session, opened) = Session::begin(user.as_str(), &["fed"], &settings);
        let command = UserCommand::SignInElsewhere {
            method: format!("social:{id}"),
            session: opened,
            two_factor_policy: settings.require_two_factor.clone(),
        };
        let events = store
            .users
            .execute(
                user.as_str(),
                command,
                &context.metadata(Actor::User(user.to_string())),
            )
            .await
            .map_err(|e| crate::error::user_error(user.as_str(), e))?;
        let return_to = attempt
            .return_to
            .unwrap_or_else(|| paths::ACCOUNT.to_owned());
        let must_enrol = events.iter().find_map(|e| match e.payload {
            UserEvent::VouchedElsewhere { must_enrol, .. } => Some(must_enrol),
            _ => None,
        });
        if let Some(must_enrol) = must_enrol {
            // The other server stood in for the password; the second factor is still ours
            // to ask for, on the same pages as after a password.
            let pending = session::PendingSignIn {
                username: user.to_string(),
                return_to,
                until: (chrono::Utc::now() + authledger_domain::user::SECOND_FACTOR_WINDOW)
                    .timestamp(),
                vouched_elsewhere: true,
            };
            return Ok(
                super::two_factor::after_first_factor(&app, signed, pending, must_enrol).await,
            );
        }
        if !events
            .iter()
            .any(|e| matches!(e.payload, UserEvent::LoginSucceeded { .. }))
        {
            return Ok(error_page(
                StatusCode::FORBIDDEN,
                "Account disabled",
                "This account is disabled.",
            ));
        }
        let jar = session::start(signed, &session, app.secure_cookies);
        Ok((jar, Redirect::to(&return_to)).into_response())
    };
    (private, done.await.unwrap_or_else(failed)).into_response()
}
