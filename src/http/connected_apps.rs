//! `/connected-apps/{id}/connect` and `.../callback`: a signed-in person connects their
//! account at another provider, authledger being the client (RFC 6749 §4.1 with PKCE S256,
//! RFC 7636, and a `nonce` for OpenID providers; see `federation.rs`).
//!
//! The attempt is also bound to the session that began it (its hash rides in the cookie): a
//! callback arriving in another session connects nothing.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{PrivateCookieJar, SignedCookieJar};
use serde::Deserialize;

use super::context::RequestContext;
use super::federation::{self, Callback};
use super::pages::{error_page, message_page, safe_return_to, Chrome};
use super::{paths, session, AppState};
use crate::connected_apps::{self, Exchange};
use crate::error::AppError;

const FLOW: federation::Flow = federation::Flow {
    cookie: "authledger_connect",
    path: "/connected-apps",
};

#[derive(Deserialize)]
pub struct ConnectQuery {
    success_uri: Option<String>,
}

fn failed(error: AppError) -> Response {
    match error {
        AppError::NotFound(why) => error_page(StatusCode::NOT_FOUND, "Not found", &why),
        AppError::Invalid { message, .. } => {
            error_page(StatusCode::BAD_REQUEST, "Not connected", &message)
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
        let redirect_uri = connected_apps::redirect_uri(&app.authority.issuer, &id);
        let request = federation::Request {
            endpoint: &config.endpoints.authorization,
            client_id: &config.client_id,
            redirect_uri: &redirect_uri,
            scopes: &config.scopes,
            extra: config
                .extra_params
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect(),
        };
        let (jar, to) = FLOW.begin(
            private,
            app.secure_cookies,
            request,
            id.as_str(),
            Some(current.id_hash().as_hex().to_owned()),
            safe_return_to(query.success_uri.as_deref()),
        )?;
        Ok::<_, AppError>((jar, Redirect::to(&to)).into_response())
    };
    begun.await.unwrap_or_else(failed)
}

/// `GET /connected-apps/{id}/callback?code=...&state=...` (or `error=...`).
pub async fn callback(
    State(app): State<AppState>,
    signed: SignedCookieJar,
    private: PrivateCookieJar,
    context: RequestContext,
    Path(id): Path<String>,
    Query(answer): Query<Callback>,
) -> Response {
    let (private, attempt) = FLOW.take(private, &id, &answer, "Nothing was connected.");
    let done = async {
        let attempt = attempt?;
        let id = connected_apps::parse_id(&id)?;
        let store = &app.authority.store;
        let current = session::current(store, &signed).await?;
        let Some(current) =
            current.filter(|s| Some(s.id_hash().as_hex()) == attempt.session.as_deref())
        else {
            return Err(AppError::invalid(
                "You are no longer signed in with the session that began this connection. \
                 Nothing was connected: sign in and start again.",
            ));
        };
        let code = answer.code()?;
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
