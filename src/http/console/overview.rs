//! `GET /admin`: where things stand at a glance: tokens issued per hour over the last day and
//! week (and by which clients), sign-ins and revocations per hour, grants in force, how far
//! each reader is behind the log, and the latest events.

use std::collections::BTreeMap;

use askama::Template;
use authledger_projections::audit::{AuditFilter, AuditLog, AuditRecord};
use authledger_projections::grants::GrantsView;
use authledger_projections::{checkpoint, event_log, usage, view_time};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::SignedCookieJar;
use chrono::{Duration, Utc};

use super::chart::{bars, last_hours, per_hour};
use super::{operator, shown_time, Operator, Refusal};
use crate::http::pages::{render, Chrome};
use crate::http::AppState;

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    head: i64,
    active_grants: i64,
    tokens_day: String,
    tokens_week: String,
    tokens_day_total: u64,
    top_clients: Vec<(String, String, u64)>,
    sign_ins: String,
    failed_sign_ins: String,
    revocations: String,
    readers: Vec<(String, i64, i64)>,
    latest: Vec<AuditRecord>,
}

impl OverviewPage<'_> {
    fn time(&self, view_time: &str) -> String {
        shown_time(view_time)
    }
}

pub async fn overview(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> Response {
    let page = async {
        let (jar, operator) = operator(&app, jar, &uri).await?;
        let store = &app.authority.store;
        let db = &store.db;
        let day = last_hours(24);
        let week = last_hours(24 * 7);
        let week_start = format!("{}:00:00Z", week[0]);

        // Tokens: the usage view, by hour and by client.
        let mut tokens: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_client: BTreeMap<String, u64> = BTreeMap::new();
        for row in usage::report(db, None, None, Some(&week_start), None).await? {
            if row.metric == "tokens_issued" || row.metric == "tokens_refreshed" {
                *tokens.entry(row.hour[..13].to_owned()).or_default() += row.count as u64;
                *by_client.entry(row.client_id.clone()).or_default() += row.count as u64;
            }
        }
        let mut top: Vec<(String, u64)> = by_client.into_iter().collect();
        top.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
        let mut top_clients = vec![];
        for (id, count) in top.into_iter().take(5) {
            let name = store
                .client(&id)
                .await?
                .map_or(id.clone(), |c| c.metadata.name);
            top_clients.push((id, name, count));
        }
        let day_tokens = per_hour(&day, &tokens);
        let tokens_day_total = day_tokens.iter().map(|(_, n)| n).sum();

        // Sign-ins and revocations: the audit log, by hour.
        let day_start = view_time(Utc::now() - Duration::hours(24));
        let hourly = |rows: Vec<(String, i64)>| -> BTreeMap<String, u64> {
            rows.into_iter().map(|(h, n)| (h, n as u64)).collect()
        };
        let succeeded = hourly(AuditLog::hourly(db, "LoginSucceeded", &day_start).await?);
        let failed = hourly(AuditLog::hourly(db, "LoginFailed", &day_start).await?);
        let revoked = hourly(AuditLog::hourly(db, "GrantRevoked", &day_start).await?);

        let head = event_log::last_position(db).await?.map_or(0, |p| p.global);
        let readers = checkpoint::all(db)
            .await?
            .into_iter()
            .map(|(name, at)| (name, at, (head - at).max(0)))
            .collect();
        let page = OverviewPage {
            chrome: &operator.chrome,
            operator: &operator,
            head,
            active_grants: GrantsView::count_active(db).await?,
            tokens_day: bars(&day_tokens, "tokens", 4, "#0b57d0"),
            tokens_week: bars(&per_hour(&week, &tokens), "tokens", 24, "#0b57d0"),
            tokens_day_total,
            top_clients,
            sign_ins: bars(&per_hour(&day, &succeeded), "sign-ins", 4, "#0a6b2d"),
            failed_sign_ins: bars(&per_hour(&day, &failed), "failed sign-ins", 4, "#a50e0e"),
            revocations: bars(&per_hour(&day, &revoked), "revocations", 4, "#b26a00"),
            readers,
            latest: AuditLog::newest(db, &AuditFilter::default(), None, 10).await?,
        };
        Ok::<_, Refusal>((jar, render(StatusCode::OK, &page)).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}
