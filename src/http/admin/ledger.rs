//! `/admin/api/ledger/export`: the ledger export of `authledger ledger export`, streamed.

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Admin;
use super::error::{ApiError, ApiResult};
use crate::http::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ExportQuery {
    /// From this time: RFC 3339, a date (`2026-11-22`), `now`, or a time ago (`24h`, `7d`).
    since: Option<String>,
    /// Before this time, in the same forms.
    until: Option<String>,
}

fn time(
    field: &str,
    raw: Option<String>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    raw.map(|raw| {
        authledger_domain::instant::parse(&raw, chrono::Utc::now()).map_err(|why| {
            ApiError::Invalid {
                field: Some(field.into()),
                message: format!("{field}: {why}"),
            }
        })
    })
    .transpose()
}

/// The events recorded in `[since, until)` with their digests and the seals among them, as
/// JSON lines (docs/audit.md, *Checking an export offline*); checked offline with
/// `authledger ledger verify-export` and the published keys. Streamed a page at a time.
#[utoipa::path(
    get, path = "/ledger/export", tag = "audit",
    params(ExportQuery),
    responses(
        (status = 200, description = "JSON lines: a header, one line per event, one per seal", content_type = "application/jsonl", body = String),
        (status = 404, description = "No linked event was recorded in that time", body = super::openapi::ApiErrorBody),
    ),
)]
pub(super) async fn export(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<ExportQuery>,
) -> ApiResult {
    let (since, until) = (time("since", q.since)?, time("until", q.until)?);
    let store = app.authority.store.clone();
    // Found before answering, so that "nothing there" is a 404 and not an empty stream.
    let (from_link, to_link) = crate::ledger_export::range(&store, since, until)
        .await?
        .ok_or_else(|| ApiError::NotFound("no linked event was recorded in that time".into()))?;
    let (mut pages, receiver) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    tokio::spawn(async move {
        if let Err(error) =
            crate::ledger_export::write_links(&store, from_link, to_link, &mut pages).await
        {
            // The response has started: ending it early is all that is left (the file then
            // fails verification as incomplete).
            tracing::warn!(%error, "the ledger export stopped");
        }
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|page| (Ok::<_, std::io::Error>(Bytes::from(page)), receiver))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/jsonl")],
        Body::from_stream(stream),
    )
        .into_response())
}
