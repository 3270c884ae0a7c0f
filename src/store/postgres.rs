//! The production store: postgres-es over PostgreSQL, its writes committed in groups
//! (`group_commit.rs`): a group's events go in as one statement over seven arrays.

use cqrs_es::persist::SerializedEvent;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::PgPool;

use super::group_commit::{GroupCommit, GroupCommitRepository};

pub(super) async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations/postgres").run(pool).await
}

pub(super) fn repository(
    pool: &PgPool,
    committer: &GroupCommit,
) -> GroupCommitRepository<PostgresEventRepository> {
    GroupCommitRepository::new(PostgresEventRepository::new(pool.clone()), committer)
}

/// Writes `events` (in order: their global positions follow it) in one transaction.
pub(super) async fn insert_and_commit(
    pool: &PgPool,
    events: &[(&str, &SerializedEvent)],
) -> Result<(), sqlx::Error> {
    let column = |f: fn(&(&str, &SerializedEvent)) -> String| events.iter().map(f).collect();
    let aggregate_types: Vec<String> = column(|(t, _)| (*t).to_owned());
    let aggregate_ids: Vec<String> = column(|(_, e)| e.aggregate_id.clone());
    let event_types: Vec<String> = column(|(_, e)| e.event_type.clone());
    let event_versions: Vec<String> = column(|(_, e)| e.event_version.clone());
    let payloads: Vec<String> = column(|(_, e)| json_text(&e.payload));
    let metadata: Vec<String> = column(|(_, e)| json_text(&e.metadata));
    let sequences: Vec<i64> = events.iter().map(|(_, e)| e.sequence as i64).collect();
    let mut tx = pool.begin().await?;
    // `WITH ORDINALITY ... ORDER BY` so the positions follow the order given, whatever plan
    // Postgres picks.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         SELECT t, i, s, e, v, p::json, m::json \
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[]) \
              WITH ORDINALITY AS u(t, i, s, e, v, p, m, n) \
         ORDER BY n",
    )
    .bind(aggregate_types)
    .bind(aggregate_ids)
    .bind(sequences)
    .bind(event_types)
    .bind(event_versions)
    .bind(payloads)
    .bind(metadata)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

fn json_text(value: &Value) -> String {
    // Serialising a `Value` cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}
