//! `/admin/audit`: the log, newest first, filtered by time, person, client, event type and
//! address, paged by position (each page is one index range, whatever the log's size), and
//! exported as CSV or JSON lines.

use askama::Template;
use authledger_projections::audit::{AuditFilter, AuditLog, AuditRecord};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::SignedCookieJar;
use chrono::{Duration, Utc};
use serde::Deserialize;

use super::{operator, shown_time, Operator, Refusal, PAGE};
use crate::error::AppError;
use crate::http::pages::{render, Chrome};
use crate::http::AppState;

/// The filters, as the form and the links carry them.
#[derive(Deserialize, Default, Clone)]
pub struct AuditQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    client: String,
    #[serde(default, rename = "type")]
    event_type: String,
    #[serde(default)]
    ip: String,
    /// `1h`, `24h`, `7d`, or empty for all time (or the custom range).
    #[serde(default)]
    range: String,
    /// A custom range, RFC 3339.
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    /// The keyset: rows older than this position.
    before: Option<i64>,
    /// Export format: `csv` or `jsonl`.
    format: Option<String>,
}

impl AuditQuery {
    fn filter(&self) -> Result<AuditFilter, AppError> {
        let text = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
        let instant = |field: &str, raw: &str| -> Result<Option<String>, AppError> {
            text(raw)
                .map(|raw| {
                    chrono::DateTime::parse_from_rfc3339(&raw)
                        .map(|t| authledger_projections::view_time(t.with_timezone(&Utc)))
                        .map_err(|e| AppError::invalid_field(field, format!("{field}: {e}")))
                })
                .transpose()
        };
        let preset = match self.range.as_str() {
            "1h" => Some(Duration::hours(1)),
            "24h" => Some(Duration::hours(24)),
            "7d" => Some(Duration::days(7)),
            _ => None,
        };
        let since = match preset {
            Some(span) => Some(authledger_projections::view_time(Utc::now() - span)),
            None => instant("since", &self.since)?,
        };
        Ok(AuditFilter {
            client_id: text(&self.client),
            username: text(&self.user).map(|u| u.to_ascii_lowercase()),
            grant_id: None,
            event_type: text(&self.event_type),
            acting_client_id: None,
            since,
            until: instant("until", &self.until)?,
            after: None,
        })
    }

    /// This query with a different `before`, as a query string.
    fn with_before(&self, before: Option<i64>, format: Option<&str>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("user", &self.user),
            ("client", &self.client),
            ("type", &self.event_type),
            ("ip", &self.ip),
            ("range", &self.range),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        if let Some(before) = before {
            query.append_pair("before", &before.to_string());
        }
        if let Some(format) = format {
            query.append_pair("format", format);
        }
        query.finish()
    }
}

/// The address filter is applied to the rows read (the log is not indexed by address).
fn keep(query: &AuditQuery, row: &AuditRecord) -> bool {
    let ip = query.ip.trim();
    ip.is_empty() || row.ip.as_deref() == Some(ip)
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    query: &'a AuditQuery,
    rows: Vec<AuditRecord>,
    error: Option<String>,
    next: Option<String>,
    csv: String,
    jsonl: String,
}

impl AuditPage<'_> {
    fn time(&self, view_time: &str) -> String {
        shown_time(view_time)
    }
}

pub async fn audit(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Query(query): Query<AuditQuery>,
) -> Response {
    let page = async {
        let (jar, operator) = operator(&app, jar, &uri).await?;
        let (rows, error, next) = match query.filter() {
            Ok(filter) => {
                let rows =
                    AuditLog::newest(&app.authority.store.db, &filter, query.before, PAGE).await?;
                let next = (rows.len() as i64 == PAGE)
                    .then(|| rows.last())
                    .flatten()
                    .map(|last| query.with_before(Some(last.global_position), None));
                let rows = rows.into_iter().filter(|r| keep(&query, r)).collect();
                (rows, None, next)
            }
            Err(error) => (vec![], Some(error.to_string()), None),
        };
        let page = AuditPage {
            chrome: &operator.chrome,
            operator: &operator,
            query: &query,
            rows,
            error,
            next,
            csv: query.with_before(None, Some("csv")),
            jsonl: query.with_before(None, Some("jsonl")),
        };
        let status = if page.error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        Ok::<_, Refusal>((jar, render(status, &page)).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}

/// How many rows an export reads per query.
const EXPORT_BATCH: i64 = 1000;

/// `GET /admin/audit/export?format=csv|jsonl&...`: every row the filters select, newest
/// first, streamed a batch at a time.
pub async fn export(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Query(query): Query<AuditQuery>,
) -> Response {
    let answer = async {
        let (_, _operator) = operator(&app, jar, &uri).await?;
        let filter = query.filter()?;
        let csv = match query.format.as_deref() {
            Some("csv") => true,
            Some("jsonl") | None => false,
            Some(other) => {
                return Err(AppError::invalid_field(
                    "format",
                    format!("format `{other}`: expected csv or jsonl"),
                )
                .into())
            }
        };
        let db = app.authority.store.db.clone();
        let stream = futures::stream::unfold((Some(query.before), true), move |(before, first)| {
            let (db, filter, query) = (db.clone(), filter.clone(), query.clone());
            async move {
                let before = before?;
                let rows = match AuditLog::newest(&db, &filter, before, EXPORT_BATCH).await {
                    Ok(rows) => rows,
                    Err(error) => {
                        tracing::warn!(%error, "audit export stopped");
                        return None;
                    }
                };
                if rows.is_empty() && !first {
                    return None;
                }
                let next = (rows.len() as i64 == EXPORT_BATCH)
                    .then(|| rows.last().map(|r| Some(r.global_position)))
                    .flatten();
                let kept: Vec<&AuditRecord> = rows.iter().filter(|r| keep(&query, r)).collect();
                let chunk = if csv {
                    csv_rows(&kept, first)
                } else {
                    jsonl_rows(&kept)
                };
                Some((Ok::<_, std::io::Error>(chunk), (next, false)))
            }
        });
        let (content_type, extension) = if csv {
            ("text/csv; charset=utf-8", "csv")
        } else {
            ("application/x-ndjson", "jsonl")
        };
        let disposition = format!("attachment; filename=\"audit.{extension}\"");
        Ok::<_, Refusal>(
            (
                [
                    (header::CONTENT_TYPE, content_type.to_owned()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                axum::body::Body::from_stream(stream),
            )
                .into_response(),
        )
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

fn csv_rows(rows: &[&AuditRecord], header: bool) -> Vec<u8> {
    let mut out = csv::WriterBuilder::new()
        .has_headers(header)
        .from_writer(vec![]);
    for row in rows {
        // Rows serialise with their field names as the header line.
        let _ = out.serialize(row);
    }
    if rows.is_empty() && header {
        let _ = out.write_record([
            "global_position",
            "occurred_at",
            "event_type",
            "aggregate_type",
            "aggregate_id",
            "actor",
            "client_id",
            "username",
            "grant_id",
            "request_id",
            "source",
            "ip",
            "user_agent",
            "summary",
        ]);
    }
    out.into_inner().unwrap_or_default()
}

fn jsonl_rows(rows: &[&AuditRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    for row in rows {
        if let Ok(line) = serde_json::to_vec(row) {
            out.extend(line);
            out.push(b'\n');
        }
    }
    out
}
