//! The production store: postgres-es over PostgreSQL, its writes committed in groups
//! (`group_commit.rs`): a group's events go in as one statement over seven arrays.

use postgres_es::PostgresEventRepository;
use sqlx::PgPool;

use super::group_commit::{EventRow, GroupCommit, GroupCommitRepository};

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
    events: &[&EventRow],
) -> Result<(), sqlx::Error> {
    let column = |f: fn(&EventRow) -> &str| events.iter().map(|e| f(e)).collect::<Vec<&str>>();
    let aggregate_types = column(|e| e.aggregate_type);
    let aggregate_ids = column(|e| &e.aggregate_id);
    let event_types = column(|e| &e.event_type);
    let event_versions = column(|e| &e.event_version);
    let payloads = column(|e| &e.payload);
    let metadata = column(|e| &e.metadata);
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
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
