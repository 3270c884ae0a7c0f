//! `/connected-apps/{id}/connect` and `.../callback`: a signed-in person connects their
//! account at another provider, authledger being the client (RFC 6749 §4.1 with PKCE S256,
//! RFC 7636, and a `nonce` for OpenID providers).
//!
//! What the callback must check travels in an encrypted cookie (`authledger_connect`,
//! path `/connected-apps`, ten minutes): the app, the `state`, the PKCE verifier, the nonce,
//! the hash of the session that began it and where to go after. So `state` is bound to this
//! browser's session (a callback carrying someone else's `state`, or arriving in another
//! session, connects nothing: no login CSRF), and the cookie goes with its first callback
//! (a replayed callback finds none).

use authledger_domain::connected_app::AppId;
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
use super::pages::{error_page, message_page, safe_return_to, Chrome};
use super::{paths, session, AppState};
use crate::connected_apps::{self, Exchange};
use crate::error::AppError;

const CONNECT_COOKIE: &str = "authledger_connect";
const COOKIE_PATH: &str = "/connected-apps";
/// How long a person has at the provider before the attempt lapses.
const ATTEMPT_SECONDS: i64 = 600;

/// An attempt to connect, as the callback checks it.
#[derive(Serialize, Deserialize)]
struct Attempt {
    #[serde(rename = "a")]
    app: String,
    #[serde(rename = "s")]
    state: String,
    #[serde(rename = "v")]
    verifier: String,
    #[serde(rename = "n")]
    nonce: String,
    /// Hex SHA-256 of the session id that began it.
    #[serde(rename = "h")]
    session: String,
    #[serde(rename = "r")]
    return_to: Option<String>,
    /// Unix seconds.
    #[serde(rename = "e")]
    until: i64,
}

#[derive(Deserialize)]
pub struct ConnectQuery {
    success_uri: Option<String>,
}

fn random() -> String {
    let raw = crate::secrets::mint("");
    raw.reveal().to_owned()
}

fn failed(error: AppError) -> Response {
    match error {
        AppError::NotFound(why) => error_page(StatusCode::NOT_FOUND, "Not found", &why),
        AppError::Invalid { message, .. } => {
            error_page(StatusCode::BAD_REQUEST, "Not accepted", &message)
        }
        AppError::Conflict(why) => error_page(StatusCode::CONFLICT, "Not connected", &why),
        AppError::Upstream(why) => error_page(
            StatusCode::BAD_GATEWAY,
            "The other server failed",
            &format!("Nothing was connected. {why}"),
        ),
        other => super::pages::failure_page(other),
    }
}

/// `GET /connected-apps/{id}/connect[?success_uri=/local/path]`.
pub async fn connect(
    State(app): State<AppState>,
    signed: SignedCookieJar,
    private: PrivateCookieJar,
    Path(id): Path<String>,
    Query(query): Query<ConnectQuery>,
) -> Response {
    let begun = async {
        let id = connected_apps::parse_id(&id)?;
        let store = &app.authority.store;
        let Some(current) = session::current(store, &signed).await? else {
            let back =
                form_urlencoded::byte_serialize(format!("/connected-apps/{id}/connect").as_bytes())
                    .collect::<String>();
            return Ok(Redirect::to(&format!("{}?return_to={back}", paths::LOGIN)).into_response());
        };
        let connected = connected_apps::load(store, &id).await?;
        let config = &connected.config;
        let attempt = Attempt {
            app: id.to_string(),
            state: random(),
            verifier: random(),
            nonce: random(),
            session: current.id_hash().as_hex().to_owned(),
            return_to: safe_return_to(query.success_uri.as_deref()),
            until: Utc::now().timestamp() + ATTEMPT_SECONDS,
        };
        let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(attempt.verifier.as_bytes()));
        let mut url = url::Url::parse(config.endpoints.authorization.as_str())
            .map_err(|e| AppError::Internal(e.into()))?;
        {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &config.extra_params {
                pairs.append_pair(name, value);
            }
            pairs
                .append_pair("response_type", "code")
                .append_pair("client_id", &config.client_id)
                .append_pair(
                    "redirect_uri",
                    &connected_apps::redirect_uri(&app.authority.issuer, &id),
                )
                .append_pair("state", &attempt.state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if !config.scopes.is_empty() {
                pairs.append_pair("scope", &config.scopes.to_string());
            }
            if config.scopes.contains("openid") {
                pairs.append_pair("nonce", &attempt.nonce);
            }
        }
        let value = serde_json::to_string(&attempt).map_err(|e| AppError::Internal(e.into()))?;
        let cookie = Cookie::build((CONNECT_COOKIE, value))
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

/// `GET /connected-apps/{id}/callback?code=...&state=...` (or `error=...`).
pub async fn callback(
    State(app): State<AppState>,
    signed: SignedCookieJar,
    private: PrivateCookieJar,
    context: RequestContext,
    Path(id): Path<String>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let attempt: Option<Attempt> = private
        .get(CONNECT_COOKIE)
        .and_then(|c| serde_json::from_str(c.value()).ok());
    // One callback per attempt, whatever it brings.
    let private = private.remove(Cookie::build(CONNECT_COOKIE).path(COOKIE_PATH).build());
    let done = async {
        let id: AppId = connected_apps::parse_id(&id)?;
        let store = &app.authority.store;
        let Some(attempt) = attempt.filter(|a| a.until > Utc::now().timestamp()) else {
            return Err(AppError::invalid(
                "No connection was being made in this browser (or it took longer than ten \
                 minutes, or this answer was used already). Nothing was connected: start again.",
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
        if attempt.app != id.as_str() || !same_state {
            return Err(AppError::invalid(
                "This answer does not belong to the connection this browser began (its state \
                 differs). Nothing was connected.",
            ));
        }
        let current = session::current(store, &signed).await?;
        let Some(current) = current.filter(|s| s.id_hash().as_hex() == attempt.session) else {
            return Err(AppError::invalid(
                "You are no longer signed in with the session that began this connection. \
                 Nothing was connected: sign in and start again.",
            ));
        };
        if let Some(error) = &query.error {
            let said = query
                .error_description
                .as_deref()
                .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
                .unwrap_or_default();
            return Err(AppError::Upstream(format!(
                "The provider did not grant access ({}{said}).",
                error.chars().take(60).collect::<String>()
            )));
        }
        let code = query
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| AppError::invalid("The provider's answer carries no code."))?;
        let connected = connected_apps::load(store, &id).await?;
        let user = crate::admin::users::parse_username(&current.username)?;
        let metadata = context.metadata(authledger_domain::metadata::Actor::User(
            current.username.clone(),
        ));
        app.connections
            .connect(
                store,
                &app.authority.master,
                &connected,
                &user,
                Exchange {
                    code,
                    verifier: &attempt.verifier,
                    nonce: &attempt.nonce,
                    redirect_uri: &connected_apps::redirect_uri(&app.authority.issuer, &id),
                },
                &metadata,
            )
            .await?;
        Ok(match attempt.return_to {
            Some(to) => Redirect::to(&to).into_response(),
            None => {
                let settings = store.settings_values().await?;
                message_page(
                    &Chrome::new(&settings, Some(current.username.clone())),
                    StatusCode::OK,
                    "Connected",
                    &format!("Your account at {} is connected.", connected.config.name),
                    Some(("Your account", paths::ACCOUNT)),
                )
            }
        })
    };
    (private, done.await.unwrap_or_else(failed)).into_response()
}
