//! The embedded store: sqlite-es over one SQLite file (WAL, `synchronous=FULL`), its writes
//! committed in groups (`group_commit.rs`): one transaction, one wait for the disk, for every
//! command waiting when the last commit ended.

use authledger_projections::db::Writes;
use cqrs_es::persist::SerializedEvent;
use sqlite_es::SqliteEventRepository;
use sqlx::SqlitePool;

use super::group_commit::{GroupCommit, GroupCommitRepository};

pub(super) async fn migrate(pool: &SqlitePool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations/sqlite").run(pool).await
}

pub(super) fn repository(
    pool: &SqlitePool,
    committer: &GroupCommit,
) -> GroupCommitRepository<SqliteEventRepository> {
    GroupCommitRepository::new(SqliteEventRepository::new(pool.clone()), committer)
}

/// Writes `events` in one transaction, in order (the log's trigger numbers them as inserted),
/// with one multi-row statement.
pub(super) async fn insert_and_commit(
    pool: &SqlitePool,
    events: &[(&str, &SerializedEvent)],
) -> Result<(), sqlx::Error> {
    let (mut tx, _turn) = authledger_projections::db::begin_sqlite_write(pool, Writes::Log).await?;
    let mut insert = sqlx::QueryBuilder::new(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) ",
    );
    insert.push_values(events, |mut row, (aggregate_type, event)| {
        row.push_bind(*aggregate_type)
            .push_bind(event.aggregate_id.as_str())
            .push_bind(event.sequence as i64)
            .push_bind(event.event_type.as_str())
            .push_bind(event.event_version.as_str())
            .push_bind(serde_json::to_string(&event.payload).unwrap_or_default())
            .push_bind(serde_json::to_string(&event.metadata).unwrap_or_default());
    });
    // Not kept prepared: each group size is another statement, and a connection's cache of
    // large multi-row statements was most of the server's memory (see `ViewTx::flush_rows`).
    insert.build().persistent(false).execute(&mut *tx).await?;
    tx.commit().await
}
