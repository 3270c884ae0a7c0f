//! `/admin/keys` and `/admin/projections`: the signing keys with their state and a rotate
//! button, and each read model's position with a rebuild button (the same operations as
//! `authledger keys rotate` and `authledger projections rebuild`).

use askama::Template;
use authledger_domain::signing_keys::{SigningKey, SIGNING_KEYS_ID};
use authledger_projections::runner::RebuildRefused;
use authledger_projections::{checkpoint, event_log, ProjectionError, RebuildReport, RebuildState};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
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
    rebuild: Option<Rebuild>,
    /// Why the rebuild form's request was refused, shown at the form.
    error: Option<String>,
}

/// This process's latest rebuild, as the page shows it.
struct Rebuild {
    what: String,
    started_at: String,
    /// Reading the log: per cent of the positions read.
    running: Option<u64>,
    summary: String,
    failed: bool,
}

impl Rebuild {
    fn of(report: RebuildReport) -> Self {
        let what = report
            .name
            .map_or_else(|| "every view".to_owned(), |n| format!("the {n} view"));
        let (running, summary, failed) = match report.state {
            RebuildState::Running {
                reached,
                head,
                events,
            } => {
                let percent = if head <= 0 {
                    100
                } else {
                    (reached.clamp(0, head) * 100 / head) as u64
                };
                let summary = if reached >= head {
                    format!(
                        "{events} events read; building indexes and putting the new views in place"
                    )
                } else {
                    format!("{events} events read ({percent}% of the log)")
                };
                (Some(percent), summary, false)
            }
            RebuildState::Finished { events, seconds } => (
                None,
                format!(
                    "Rebuilt {what} from {events} events in {seconds:.2} s ({:.0} events/s).",
                    events as f64 / seconds.max(1e-9)
                ),
                false,
            ),
            RebuildState::Failed { error } => (
                None,
                format!("The rebuild of {what} failed, and the views are as they were: {error}"),
                true,
            ),
        };
        Rebuild {
            what,
            started_at: authledger_projections::view_time(report.started_at),
            running,
            summary,
            failed,
        }
    }
}

impl ProjectionsPage<'_> {
    fn time(&self, view_time: &str) -> String {
        super::shown_time(view_time)
    }
}

async fn projections_page(
    app: &AppState,
    jar: SignedCookieJar,
    uri: &axum::http::Uri,
    refused: Option<(StatusCode, String)>,
) -> Result<Response, Refusal> {
    let (jar, operator) = operator(app, jar, uri).await?;
    let store = &app.authority.store;
    let head = event_log::last_position(&store.db)
        .await?
        .map_or(0, |p| p.global);
    let readers = checkpoint::all(&store.db)
        .await?
        .into_iter()
        .map(|(name, at)| (name, at, (head - at).max(0)))
        .collect();
    let (status, error) = match refused {
        Some((status, error)) => (status, Some(error)),
        None => (StatusCode::OK, None),
    };
    let page = ProjectionsPage {
        chrome: &operator.chrome,
        operator: &operator,
        head,
        readers,
        rebuild: store.runner.latest_rebuild().map(Rebuild::of),
        error,
    };
    Ok((jar, render(status, &page)).into_response())
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

/// `POST /admin/projections/rebuild`: starts rebuilding every view (or `name`) from the log
/// and answers at once with the read models' page, which follows the rebuild's progress and
/// then says how many events it replayed and how fast.
pub async fn rebuild(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    body: Bytes,
) -> Response {
    let done = async {
        let (operator, form) = change(&app, jar.clone(), &uri, &body).await?;
        let name = form.get("name").map(str::trim).filter(|n| !n.is_empty());
        let refused = match app.authority.store.runner.start_rebuild(name).await {
            Ok(()) => {
                tracing::info!(by = %operator.username, view = name.unwrap_or("every view"), "rebuild started from the console");
                return Ok(Redirect::to("/admin/projections").into_response());
            }
            Err(RebuildRefused::Running) => (
                StatusCode::CONFLICT,
                "A rebuild is running already: wait for it to end.".to_owned(),
            ),
            Err(RebuildRefused::Failed(ProjectionError::UnknownProjection { name, .. })) => (
                StatusCode::BAD_REQUEST,
                format!("There is no view named “{name}”: use a name from the table above."),
            ),
            Err(RebuildRefused::Failed(error)) => return Err(error.into()),
        };
        projections_page(&app, jar, &uri, Some(refused)).await
    };
    done.await.unwrap_or_else(IntoResponse::into_response)
}
