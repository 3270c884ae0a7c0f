//! Usage per client and person by hour, as `authledger usage` and `GET /admin/api/usage`
//! report it: tokens issued and refreshed (from the events) and the reads counted in memory
//! (introspections, userinfo calls, failed client authentications; a server adds its
//! counts every 30 s, so the last half-minute of a running server may not show yet).

use std::collections::BTreeMap;

use authledger_projections::usage::{usage_hour, UsageRow};
use chrono::Utc;
use serde::Serialize;

use crate::error::AppError;
use crate::store::Store;

/// Which usage: a client, a person, and a span of time (`authledger_domain::instant` forms;
/// `since` inclusive, `until` exclusive, both rounded down to the hour).
#[derive(Debug, Default, Clone)]
pub struct UsageQuery {
    pub client: Option<String>,
    pub user: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// The rows, and their sums per metric.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageReport {
    pub since: Option<String>,
    pub until: Option<String>,
    pub totals: BTreeMap<String, i64>,
    pub items: Vec<UsageRow>,
}

pub async fn report(store: &Store, query: UsageQuery) -> Result<UsageReport, AppError> {
    let hour = |field: &str, raw: Option<String>| -> Result<Option<String>, AppError> {
        raw.map(|raw| {
            authledger_domain::instant::parse(&raw, Utc::now())
                .map(usage_hour)
                .map_err(|why| AppError::invalid_field(field, format!("{field}: {why}")))
        })
        .transpose()
    };
    let since = hour("since", query.since)?;
    let until = hour("until", query.until)?;
    let items = authledger_projections::usage::report(
        store.current_views().await?,
        query.client.as_deref(),
        query.user.map(|u| u.to_ascii_lowercase()).as_deref(),
        since.as_deref(),
        until.as_deref(),
    )
    .await?;
    let mut totals = BTreeMap::new();
    for row in &items {
        *totals.entry(row.metric.clone()).or_default() += row.count;
    }
    Ok(UsageReport {
        since,
        until,
        totals,
        items,
    })
}
