//! `/login/social/{id}` and `.../callback`: signing in through another provider.
//!
//! The `state`, PKCE verifier, nonce and where to go after travel in an encrypted cookie
//! (`authledger_social`, path `/login/social`, ten minutes) that only this browser holds, and
//! go with its first callback. A callback whose `state` is not this browser's (login CSRF:
//! someone else's answer delivered here), or that comes a second time, signs no one in.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, PrivateCookieJar, SameSite, SignedCookieJar};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::context::RequestContext;
use super::pages::{error_page, safe_return_to};
use super::session::{self, Session};
use super::{paths, AppState};
use crate::error::AppError;
use crate::social_login::{self, Answer, Outcome};
use authledger_domain::metadata::Actor;
use authledger_domain::user::{UserCommand, UserError, UserEvent};

const SOCIAL_COOKIE: &str = "authledger_social";
const COOKIE_PATH: &str = "/login/social";
const ATTEMPT_SECONDS: i64 = 600;

#[derive(Serialize, Deserialize)]
struct Attempt {
    #[serde(rename = "p")]
    provider: String,
    #[serde(rename = "s")]
    state: String,
    #[serde(rename = "v")]
    verifier: String,
    #[serde(rename = "n")]
    nonce: String,
    #[serde(rename = "r")]
    return_to: String,
    #[serde(rename = "e")]
    until: i64,
}

#[derive(Deserialize)]
pub struct BeginQuery {
    return_to: Option<String>,
}

fn random() -> String {
    crate::secrets::mint("").reveal().to_owned()
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
        let attempt = Attempt {
            provider: id.to_string(),
            state: random(),
            verifier: random(),
            nonce: random(),
            return_to: safe_return_to(query.return_to.as_deref())
                .unwrap_or_else(|| paths::ACCOUNT.to_owned()),
            until: Utc::now().timestamp() + ATTEMPT_SECONDS,
        };
        let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(attempt.verifier.as_bytes()));
        let mut url = url::Url::parse(config.endpoints.authorization.as_str())
            .map_err(|e| AppError::Internal(e.into()))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &config.client_id)
            .append_pair(
                "redirect_uri",
                &social_login::redirect_uri(&app.authority.issuer, &id),
            )
            .append_pair("scope", &config.scopes.to_string())
            .append_pair("state", &attempt.state)
            .append_pair("nonce", &attempt.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let value = serde_json::to_string(&attempt).map_err(|e| AppError::Internal(e.into()))?;
        let cookie = Cookie::build((SOCIAL_COOKIE, value))
            .http_only(true)
            .secure(app.secure_cookies)
            // The callback is a top-level GET from the provider's site: Lax cookies go with it.
            .same_site(SameSite::Lax)
            .path(COOKIE_PATH)
            .max_age(cookie::time::Duration::seconds(ATTEMPT_SECONDS))
            .build();
        Ok::<_, AppError>((private.add(cookie), Redirect::to(url.as_str())).into_response())
    };
    begun.await.unwrap_or_else(failed)
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /login/social/{id}/callback?code=...&state=...` (or `error=...`).
pub async fn callback(
    State(app): State<AppState>,
    signed: SignedCookieJar,
    private: PrivateCookieJar,
    context: RequestContext,
    Path(id): Path<String>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let attempt: Option<Attempt> = private
        .get(SOCIAL_COOKIE)
        .and_then(|c| serde_json::from_str(c.value()).ok());
    let private = private.remove(Cookie::build(SOCIAL_COOKIE).path(COOKIE_PATH).build());
    let done = async {
        let id = social_login::parse_id(&id)?;
        let store = &app.authority.store;
        let Some(attempt) = attempt.filter(|a| a.until > Utc::now().timestamp()) else {
            return Err(AppError::invalid(
                "No sign-in through another server was under way in this browser (or it took \
                 longer than ten minutes, or this answer was used already). Start again from \
                 the sign-in page.",
            ));
        };
        let same_state = query.state.as_deref().is_some_and(|s| {
            s.len() == attempt.state.len()
                && aws_lc_rs::constant_time::verify_slices_are_equal(
                    s.as_bytes(),
                    attempt.state.as_bytes(),
                )
                .is_ok()
        });
        if attempt.provider != id.as_str() || !same_state {
            return Err(AppError::invalid(
                "This answer does not belong to the sign-in this browser began (its state \
                 differs). You are not signed in.",
            ));
        }
        if let Some(error) = &query.error {
            let said = query
                .error_description
                .as_deref()
                .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
                .unwrap_or_default();
            return Err(AppError::Upstream(format!(
                "The other server did not sign you in ({}{said}).",
                error.chars().take(60).collect::<String>()
            )));
        }
        let code = query
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| AppError::invalid("The other server's answer carries no code."))?;
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
        let events = match store
            .users
            .execute(
                user.as_str(),
                command,
                &context.metadata(Actor::User(user.to_string())),
            )
            .await
        {
            Ok(events) => events,
            Err(cqrs_es::AggregateError::UserError(UserError::SecondFactorRequired)) => {
                return Ok(error_page(
                    StatusCode::FORBIDDEN,
                    "Sign in with your password",
                    "Your account signs in with its password and a second factor; the other \
                     server cannot stand in for them. Sign in with your password.",
                ))
            }
            Err(other) => return Err(AppError::store(other)),
        };
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
        Ok((jar, Redirect::to(&attempt.return_to)).into_response())
    };
    (private, done.await.unwrap_or_else(failed)).into_response()
}
