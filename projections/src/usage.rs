//! Token usage per client, user and hour: event-derived counts (issued, refreshed, revoked,
//! kept by the `grants` projection) and read-derived counts (introspections answered active,
//! userinfo calls, failed client authentications), which append no events and are counted in
//! memory, then added here in batches.

use serde::Serialize;
use sqlx::FromRow;

use crate::db::Db;
use crate::runner::ProjectionError;
use crate::{on_db, on_tx};

#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
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
    let mut tx = db.begin().await?;
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
    let sql = "SELECT hour, client_id, username, metric, count FROM ( \
                 SELECT hour, client_id, username, metric, count FROM usage_events_hourly \
                 UNION ALL SELECT hour, client_id, username, metric, count FROM usage_reads_hourly) u \
               WHERE ($1 = '' OR client_id = $1) AND ($2 = '' OR username = $2) \
               AND ($3 = '' OR hour >= $3) AND ($4 = '' OR hour < $4) \
               ORDER BY hour, client_id, username, metric LIMIT 10000";
    Ok(on_db!(db, pool => sqlx::query_as(sql)
        .bind(client_id.unwrap_or(""))
        .bind(username.unwrap_or(""))
        .bind(from.unwrap_or(""))
        .bind(to.unwrap_or(""))
        .fetch_all(pool)
        .await)?)
}
