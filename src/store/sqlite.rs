//! The embedded store: sqlite-es over one SQLite file (WAL, `synchronous=FULL`), its writes
//! committed in groups (`group_commit.rs`): one transaction, one wait for the disk, for every
//! command waiting when the last commit ended. Reads go through sqlite-es; a group is written
//! on the connection's own handle (`db::write_log_on_handle`).

use authledger_projections::db::LogWriteError;
use sqlite_es::SqliteEventRepository;
use sqlx::SqlitePool;

use super::group_commit::{EventRow, GroupCommit, GroupCommitRepository};

pub(super) async fn migrate(pool: &SqlitePool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations/sqlite").run(pool).await
}

pub(super) fn repository(
    pool: &SqlitePool,
    committer: &GroupCommit,
) -> GroupCommitRepository<SqliteEventRepository> {
    GroupCommitRepository::new(SqliteEventRepository::new(pool.clone()), committer)
}

/// Writes `events` in one transaction, in order, each taking the next global position in
/// its own `INSERT` (see the migration `positions_given_on_insert`), with one prepared
/// single-row statement stepped once per event, on the connection's own handle.
pub(super) async fn insert_and_commit(
    pool: &SqlitePool,
    events: &[&EventRow],
) -> Result<(), LogWriteError> {
    authledger_projections::db::write_log_on_handle(pool, |db| {
        let mut insert = db.prepare(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
                                 payload, metadata, global_position) \
             VALUES (?, ?, ?, ?, ?, ?, ?, \
                     (SELECT last_position + 1 FROM event_position_counter WHERE id = 1))",
        )?;
        for event in events {
            insert.execute((
                event.aggregate_type,
                &event.aggregate_id,
                event.sequence,
                &event.event_type,
                &event.event_version,
                &event.payload,
                &event.metadata,
            ))?;
        }
        Ok(())
    })
    .await
}
