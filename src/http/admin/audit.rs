//! `/admin/api/audit` and `/usage`.

use authledger_projections::audit::AuditRecord;
use authledger_projections::audit::{AuditFilter, AuditLog};
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Admin;
use super::error::{ok, ApiError, ApiResult};
use super::openapi::Paged;
use super::paging::{page, DEFAULT_PAGE};
use crate::admin as ops;
use crate::admin::usage::UsageReport;
use crate::http::AppState;

/// `client` (or `client_id`), `user`, `grant`, `type`, `since`, `until`: the CLI's names.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditQuery {
    /// Only events of this client (`client` works too).
    #[serde(alias = "client")]
    client_id: Option<String>,
    /// Only events of this person (username).
    user: Option<String>,
    /// Only events of this grant.
    grant: Option<String>,
    /// An event type, e.g. `LoginFailed` (case-insensitive); an unknown one is a 400 that
    /// lists the known.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    event_type: Option<String>,
    /// Only token exchanges in which this client acted for the user (RFC 8693 delegation).
    acting_client_id: Option<String>,
    /// From this time: RFC 3339, a date (`2026-11-22`), `now`, or a time ago (`24h`, `7d`).
    since: Option<String>,
    /// Before this time, in the same forms.
    until: Option<String>,
    /// The `next_cursor` of the page before.
    cursor: Option<String>,
    /// Rows per page, 1 to 500 (default 50).
    limit: Option<i64>,
}

/// A time parameter (`authledger_domain::instant`: RFC 3339, a date, `now` or a time ago),
/// as the views store times.
pub(super) fn instant(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    value
        .map(|raw| {
            authledger_domain::instant::parse(&raw, chrono::Utc::now())
                .map(authledger_projections::view_time)
                .map_err(|why| ApiError::Invalid {
                    field: Some(field.into()),
                    message: format!("{field}: {why}"),
                })
        })
        .transpose()
}

#[utoipa::path(
    get, path = "/audit", tag = "audit",
    params(AuditQuery),
    responses((status = 200, description = "Audit records, oldest first from the cursor", body = Paged<AuditRecord>)),
)]
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
        event_type: q
            .event_type
            .as_deref()
            .map(crate::admin::event_type)
            .transpose()?,
        acting_client_id: q.acting_client_id,
        since: instant("since", q.since)?,
        until: instant("until", q.until)?,
        after,
    };
    let items = AuditLog::query(app.authority.store.current_views().await?, &filter, limit).await?;
    Ok(page(items, limit, |r| r.global_position.to_string()).into_response())
}

/// `since`/`until` as everywhere (`from`/`to`, their first names, still work), `client`
/// or `client_id`, `user`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UsageQuery {
    /// Only this client (`client_id` works too).
    #[serde(alias = "client_id")]
    client: Option<String>,
    /// Only this person (username).
    user: Option<String>,
    /// From this hour: RFC 3339, a date, `now` or a time ago (`24h`, `7d`); `from` works too.
    #[serde(alias = "from")]
    since: Option<String>,
    /// Before this hour, in the same forms; `to` works too.
    #[serde(alias = "to")]
    until: Option<String>,
}

#[utoipa::path(
    get, path = "/usage", tag = "audit",
    params(UsageQuery),
    responses((status = 200, description = "Token use per hour, client and person, with totals", body = UsageReport)),
)]
pub(super) async fn usage(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<UsageQuery>,
) -> ApiResult {
    let authority = &app.authority;
    // Include what is still only counted in memory.
    authority.usage.flush(&authority.store.db).await;
    let query = crate::admin::usage::UsageQuery {
        client: q.client,
        user: q.user,
        since: q.since,
        until: q.until,
    };
    ok(crate::admin::usage::report(&authority.store, query).await?)
}
