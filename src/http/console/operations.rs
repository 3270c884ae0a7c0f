//! `/admin/keys` and `/admin/projections`: the signing keys with their state and a rotate
//! button, and each read model's position with a rebuild button (the same operations as
//! `authledger keys rotate` and `authledger projections rebuild`).

use askama::Template;
use authledger_domain::signing_keys::{SigningKey, SIGNING_KEYS_ID};
use authledger_projections::{checkpoint, event_log};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::SignedCookieJar;

use super::{act, change, operator, Operator, Refusal};
use crate::error::AppError;
use crate::http::context::RequestContext;
use crate::http::pages::{render, Chrome};
use crate::http::AppState;

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    keys: Vec<SigningKey>,
}

impl KeysPage<'_> {
    fn state(&self, key: &SigningKey) -> String {
        serde_json::to_value(key.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

pub async fn keys(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> Response {
    let page = async {
        let (jar, operator) = operator(&app, jar, &uri).await?;
        let keys = app
            .authority
            .store
            .signing_keys
            .load(SIGNING_KEYS_ID)
            .await
            .map_err(AppError::store)?;
        let page = KeysPage {
            chrome: &operator.chrome,
            operator: &operator,
            keys: keys.keys().to_vec(),
        };
        Ok::<_, Refusal>((jar, render(StatusCode::OK, &page)).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/keys/rotate`: new keys for every algorithm, signing after
/// `key_activation_delay` so that relying parties' JWKS caches catch up first.
pub async fn rotate(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    context: RequestContext,
    body: Bytes,
) -> Response {
    act(&app, jar, &uri, &context, &body, async |actor, _| {
        let authority = &app.authority;
        let (store, master) = (&authority.store, &authority.master);
        let failed = |e: crate::signing::SigningError| AppError::Internal(e.into());
        crate::signing::rotate(store, master, &crate::signing::ASYMMETRIC, false, &actor)
            .await
            .map_err(failed)?;
        authority.keys.reload(store, master).await.map_err(failed)?;
        Ok("/admin/keys".to_owned())
    })
    .await
}

#[derive(Template)]
#[template(path = "console/projections.html")]
struct ProjectionsPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    head: i64,
    readers: Vec<(String, i64, i64)>,
    result: Option<String>,
}

async fn projections_page(
    app: &AppState,
    jar: SignedCookieJar,
    uri: &axum::http::Uri,
    result: Option<String>,
) -> Result<Response, Refusal> {
    let (jar, operator) = operator(app, jar, uri).await?;
    let db = &app.authority.store.db;
    let head = event_log::last_position(db).await?.map_or(0, |p| p.global);
    let readers = checkpoint::all(db)
        .await?
        .into_iter()
        .map(|(name, at)| (name, at, (head - at).max(0)))
        .collect();
    let page = ProjectionsPage {
        chrome: &operator.chrome,
        operator: &operator,
        head,
        readers,
        result,
    };
    Ok((jar, render(StatusCode::OK, &page)).into_response())
}

pub async fn projections(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> Response {
    projections_page(&app, jar, &uri, None)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/projections/rebuild`: every view (or `name`) rebuilt from the log; the page
/// that answers says how many events and how fast.
pub async fn rebuild(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    body: Bytes,
) -> Response {
    let done = async {
        let (operator, form) = change(&app, jar.clone(), &uri, &body).await?;
        let name = form
            .get("name")
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        let started = std::time::Instant::now();
        let replayed = app.authority.store.runner.rebuild(name.as_deref()).await?;
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(by = %operator.username, replayed, seconds, "views rebuilt from the console");
        let result = format!(
            "Rebuilt {} from {replayed} events in {seconds:.2} s ({:.0} events/s).",
            name.as_deref().unwrap_or("every view"),
            replayed as f64 / seconds.max(1e-9)
        );
        projections_page(&app, jar, &uri, Some(result)).await
    };
    done.await.unwrap_or_else(IntoResponse::into_response)
}
