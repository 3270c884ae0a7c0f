//! `GET /admin`: where the ledger stands: how far each projection is behind the log, and
//! the latest events.

use askama::Template;
use authledger_projections::audit::{AuditFilter, AuditLog, AuditRecord};
use authledger_projections::{checkpoint, event_log};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::SignedCookieJar;

use super::{operator, shown_time, Operator, Refusal};
use crate::http::pages::{render, Chrome};
use crate::http::AppState;

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    head: i64,
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
        let db = &app.authority.store.db;
        let head = event_log::last_position(db).await?.map_or(0, |p| p.global);
        let readers = checkpoint::all(db)
            .await?
            .into_iter()
            .map(|(name, at)| (name, at, (head - at).max(0)))
            .collect();
        let latest = AuditLog::newest(db, &AuditFilter::default(), None, 10).await?;
        let page = OverviewPage {
            chrome: &operator.chrome,
            operator: &operator,
            head,
            readers,
            latest,
        };
        Ok::<_, Refusal>((jar, render(StatusCode::OK, &page)).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}
