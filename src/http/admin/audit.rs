//! `/admin/api/audit` and `/usage`.

use authledger_projections::audit::{AuditFilter, AuditLog};
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::auth::Admin;
use super::error::{ok, ApiError, ApiResult};
use super::paging::{page, DEFAULT_PAGE};
use crate::admin as ops;
use crate::http::AppState;

#[derive(Deserialize)]
pub(super) struct AuditQuery {
    client_id: Option<String>,
    user: Option<String>,
    grant: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

pub(super) fn rfc3339(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    value
        .map(|raw| {
            chrono::DateTime::parse_from_rfc3339(&raw)
                .map(|t| authledger_projections::view_time(t.with_timezone(&chrono::Utc)))
                .map_err(|_| ApiError::Invalid {
                    field: Some(field.into()),
                    message: format!("{field}: `{raw}` is not an RFC 3339 time"),
                })
        })
        .transpose()
}

pub(super) async fn audit(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<AuditQuery>,
) -> ApiResult {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, ops::MAX_PAGE);
    let after = q
        .cursor
        .map(|c| {
            c.parse::<i64>().map_err(|_| ApiError::Invalid {
                field: Some("cursor".into()),
                message: "cursor: not a cursor this API issued".into(),
            })
        })
        .transpose()?;
    let filter = AuditFilter {
        client_id: q.client_id,
        username: q.user,
        grant_id: q.grant,
        event_type: q.event_type,
        since: rfc3339("since", q.since)?,
        until: rfc3339("until", q.until)?,
        after,
    };
    let items = AuditLog::query(app.authority.store.current_views().await?, &filter, limit).await?;
    Ok(page(items, limit, |r| r.global_position.to_string()).into_response())
}

#[derive(Deserialize)]
pub(super) struct UsageQuery {
    client_id: Option<String>,
    user: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub(super) async fn usage(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<UsageQuery>,
) -> ApiResult {
    let authority = &app.authority;
    // Include what is still only counted in memory.
    authority.usage.flush(&authority.store.db).await;
    let hour = |field: &str, v: Option<String>| -> Result<Option<String>, ApiError> {
        rfc3339(field, v).map(|t| {
            t.map(|t| {
                authledger_projections::usage::usage_hour(
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .expect("just formatted")
                        .with_timezone(&chrono::Utc),
                )
            })
        })
    };
    let rows = authledger_projections::usage::report(
        authority.store.current_views().await?,
        q.client_id.as_deref(),
        q.user.as_deref(),
        hour("from", q.from)?.as_deref(),
        hour("to", q.to)?.as_deref(),
    )
    .await?;
    ok(json!({ "items": rows }))
}
