//! Token usage per client, user and hour: event-derived counts (issued, refreshed, revoked,
//! kept by the `grants` projection) and read-derived counts (introspections answered active,
//! userinfo calls, failed client authentications), which append no events and are counted in
//! memory, then added here in batches.

use chrono::{DateTime, Timelike, Utc};
use serde::Serialize;
use sqlx::FromRow;

use crate::db::{Db, Writes};
use crate::error::ProjectionError;
use crate::filter::Conditions;
use crate::{on_db, on_tx};

/// The hour a usage count belongs to, e.g. `2026-11-22T20:00:00Z`.
pub fn usage_hour(at: DateTime<Utc>) -> String {
    let hour = at
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(at);
    hour.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[derive(Debug, Clone, PartialEq, Serialize, FromRow, utoipa::ToSchema)]
pub struct UsageRow {
    pub hour: String,
    pub client_id: String,
    pub username: String,
    pub metric: String,
    pub count: i64,
}

/// Adds in-memory read counts to `usage_reads_hourly`, in one transaction.
pub async fn add_read_counts(db: &Db, rows: &[UsageRow]) -> Result<(), ProjectionError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin_write_to(Writes::Log).await?;
    let sql = "INSERT INTO usage_reads_hourly (hour, client_id, username, metric, count) \
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hour, client_id, username, metric) \
               DO UPDATE SET count = usage_reads_hourly.count + excluded.count";
    for row in rows {
        on_tx!(&mut tx, conn => sqlx::query(sql)
            .bind(&row.hour)
            .bind(&row.client_id)
            .bind(&row.username)
            .bind(&row.metric)
            .bind(row.count)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
    }
    tx.commit().await?;
    Ok(())
}

/// Usage rows of a client and/or user between two hours (`from` inclusive, `to` exclusive).
pub async fn report(
    db: &Db,
    client_id: Option<&str>,
    username: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Vec<UsageRow>, ProjectionError> {
    let filter = Conditions::default()
        .and("client_id", "=", client_id)
        .and("username", "=", username)
        .and("hour", ">=", from)
        .and("hour", "<", to);
    // The filter inside each half of the union, where each table's key can serve it.
    let half = |table: &str| {
        format!(
            "SELECT hour, client_id, username, metric, count FROM {table} WHERE {} TRUE",
            filter.sql()
        )
    };
    let sql = format!(
        "SELECT hour, client_id, username, metric, count FROM ({} UNION ALL {}) u \
         ORDER BY hour, client_id, username, metric LIMIT 10000",
        half("usage_events_hourly"),
        half("usage_reads_hourly")
    );
    Ok(on_db!(db, pool => {
        let mut query = sqlx::query_as(&sql);
        for value in filter.values() {
            query = query.bind(value);
        }
        query.fetch_all(pool).await
    })?)
}
#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn usage_is_counted_per_hour() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 20, 59, 59).unwrap();
        assert_eq!(usage_hour(at), "2026-11-22T20:00:00Z");
    }
}
