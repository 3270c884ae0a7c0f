//! Group commit, on both stores. The event-store crates commit each command on its own:
//! `BEGIN`, one `INSERT` per event, `COMMIT`: one transaction's worth of work per command, and
//! on SQLite with `synchronous=FULL` one wait for the disk, which caps issuance at the store's
//! single-row commit rate (measured on PostgreSQL: its work per transaction took half of two
//! saturated cores during client_credentials issuance; on SQLite, 29% of the commit rate).
//! So [`GroupCommitRepository`] hands the events of every command to committer tasks, each of
//! which takes whatever commands are waiting, writes all their events in one transaction, and
//! answers each command only after that transaction has committed: a command is acknowledged
//! exactly when its events are durable, as before, and under no load a group is one command.
//!
//! A group commits or fails as a whole, so when it fails (another instance or a CLI process
//! took one of its aggregates' next sequence number, say) nothing of it was written, and each
//! of its commands is committed again on its own: each command gets the answer it would have
//! got alone, the optimistic-concurrency conflict included.
//!
//! What differs per store is only how one transaction writes a list of events
//! (`postgres::insert_and_commit`, `sqlite::insert_and_commit`) and how many groups commit at
//! once. Reads (loading an aggregate's events) go to the event-store crate unchanged.
//! Snapshots are never used (see `store/mod.rs` for why).

use std::sync::Arc;

use authledger_projections::db::LogWriteError;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Mutex};

/// Where a group is written.
#[derive(Clone)]
pub(super) enum Writer {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

impl Writer {
    async fn insert_and_commit(&self, events: &[&EventRow]) -> Result<(), CommitFailed> {
        match self {
            Writer::Postgres(pool) => super::postgres::insert_and_commit(pool, events).await?,
            Writer::Sqlite(pool) => super::sqlite::insert_and_commit(pool, events).await?,
        }
        Ok(())
    }

    /// How many groups commit at once. Postgres: one group waits for its commit while the
    /// next forms. SQLite has one writer: a second committer would only wait for its lock.
    fn committers(&self) -> usize {
        match self {
            Writer::Postgres(_) => 4,
            Writer::Sqlite(_) => 1,
        }
    }
}

/// The most events one group writes.
const MOST_EVENTS_PER_GROUP: usize = 512;

/// The committer tasks' queue. Cloned into each aggregate's repository; the tasks end when
/// every clone is gone.
#[derive(Clone)]
pub(super) struct GroupCommit {
    queue: mpsc::Sender<Waiting>,
}

/// One command's events, waiting for their group's commit.
pub(super) struct Waiting {
    events: Vec<EventRow>,
    committed: oneshot::Sender<Result<(), PersistenceError>>,
}

/// An event as the log stores it, its JSON already text. The command's own task writes it, so
/// the committer, whose work is serial (one group at a time on SQLite, and the next waits for
/// it), has only rows to write.
pub(super) struct EventRow {
    pub(super) aggregate_type: &'static str,
    pub(super) aggregate_id: String,
    pub(super) sequence: i64,
    pub(super) event_type: String,
    pub(super) event_version: String,
    pub(super) payload: String,
    pub(super) metadata: String,
}

impl EventRow {
    fn of(aggregate_type: &'static str, event: &SerializedEvent) -> EventRow {
        // Serialising a `Value` cannot fail.
        let text = |value: &Value| serde_json::to_string(value).unwrap_or_default();
        EventRow {
            aggregate_type,
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence as i64,
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
            payload: text(&event.payload),
            metadata: text(&event.metadata),
        }
    }
}

impl GroupCommit {
    pub(super) fn start(writer: Writer) -> GroupCommit {
        let (queue, waiting) = mpsc::channel(1024);
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..writer.committers() {
            let (writer, waiting) = (writer.clone(), waiting.clone());
            tokio::spawn(async move {
                while let Some(group) = next_group(&waiting).await {
                    commit_group(&writer, group).await;
                }
            });
        }
        GroupCommit { queue }
    }
}

/// The next command waiting and every one queued behind it, up to a group's size.
async fn next_group(waiting: &Mutex<mpsc::Receiver<Waiting>>) -> Option<Vec<Waiting>> {
    let mut waiting = waiting.lock().await;
    let first = waiting.recv().await?;
    let mut events = first.events.len();
    let mut group = vec![first];
    while events < MOST_EVENTS_PER_GROUP {
        match waiting.try_recv() {
            Ok(next) => {
                events += next.events.len();
                group.push(next);
            }
            Err(_) => break,
        }
    }
    Some(group)
}

pub(super) async fn commit_group(writer: &Writer, group: Vec<Waiting>) {
    if group.len() > 1 {
        let all: Vec<&EventRow> = group.iter().flat_map(|w| &w.events).collect();
        match writer.insert_and_commit(&all).await {
            Ok(()) => {
                for waiting in group {
                    // A command whose caller went away has committed all the same.
                    let _ = waiting.committed.send(Ok(()));
                }
                return;
            }
            // No connection: each command on its own would wait the pool's acquire timeout
            // in turn, the last of a large group many seconds. They all fail now instead.
            Err(CommitFailed::Unreachable(error)) => {
                let cause = error.to_string();
                for waiting in group {
                    let cause = CommitFailed::Unreachable(cause.clone().into());
                    let _ = waiting.committed.send(Err(cause.into()));
                }
                tracing::debug!(%error, "a commit group failed: the database is unreachable");
                return;
            }
            // Nothing of the group was written: each command on its own, for its own answer.
            Err(_) => {}
        }
    }
    for waiting in group {
        let events: Vec<&EventRow> = waiting.events.iter().collect();
        let outcome = writer.insert_and_commit(&events).await.map_err(Into::into);
        let _ = waiting.committed.send(outcome);
    }
}

type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why a transaction of the log did not commit (nothing of it was written), in the three
/// kinds a command's answer tells apart.
pub(super) enum CommitFailed {
    /// One of its events' (aggregate, sequence) was taken by another writer.
    Conflict,
    /// The store could not be reached, or its write lock not had in time.
    Unreachable(Cause),
    Failed(Cause),
}

impl From<sqlx::Error> for CommitFailed {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(e) if e.is_unique_violation() => CommitFailed::Conflict,
            e if authledger_projections::db::is_unreachable(e) => {
                CommitFailed::Unreachable(Box::new(error))
            }
            _ => CommitFailed::Failed(Box::new(error)),
        }
    }
}

impl From<LogWriteError> for CommitFailed {
    fn from(error: LogWriteError) -> Self {
        if error.is_unique_violation() {
            CommitFailed::Conflict
        } else if error.is_unreachable() {
            CommitFailed::Unreachable(Box::new(error))
        } else {
            CommitFailed::Failed(Box::new(error))
        }
    }
}

/// What the event-store crates answer for the same failure: a taken (aggregate, sequence) is
/// the optimistic-concurrency conflict the command retries on.
impl From<CommitFailed> for PersistenceError {
    fn from(failed: CommitFailed) -> Self {
        match failed {
            CommitFailed::Conflict => PersistenceError::OptimisticLockError,
            CommitFailed::Unreachable(cause) => PersistenceError::ConnectionError(cause),
            CommitFailed::Failed(cause) => PersistenceError::UnknownError(cause),
        }
    }
}

/// The event-store crate's repository `R` for reads, [`GroupCommit`] for writes.
pub(super) struct GroupCommitRepository<R> {
    reads: R,
    committer: GroupCommit,
}

impl<R> GroupCommitRepository<R> {
    pub(super) fn new(reads: R, committer: &GroupCommit) -> Self {
        GroupCommitRepository {
            reads,
            committer: committer.clone(),
        }
    }
}

impl<R: PersistedEventRepository> PersistedEventRepository for GroupCommitRepository<R> {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.reads.get_events::<A>(aggregate_id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.reads
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        self.reads.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        if snapshot_update.is_some() {
            return self.reads.persist::<A>(events, snapshot_update).await;
        }
        if events.is_empty() {
            return Ok(());
        }
        let (committed, outcome) = oneshot::channel();
        let waiting = Waiting {
            events: events.iter().map(|e| EventRow::of(A::TYPE, e)).collect(),
            committed,
        };
        let stopped = || PersistenceError::ConnectionError("the committer tasks stopped".into());
        self.committer
            .queue
            .send(waiting)
            .await
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.reads.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.reads.stream_all_events::<A>().await
    }
}

#[cfg(test)]
mod tests {

    use sqlx::PgPool;

    use super::*;

    fn event(aggregate_id: &str, sequence: usize) -> SerializedEvent {
        SerializedEvent {
            aggregate_id: aggregate_id.into(),
            sequence,
            aggregate_type: "Probe".into(),
            event_type: "Probed".into(),
            event_version: "1".into(),
            payload: serde_json::json!({"Probed": {}}),
            metadata: serde_json::json!({}),
        }
    }

    fn waiting(
        events: Vec<SerializedEvent>,
    ) -> (Waiting, oneshot::Receiver<Result<(), PersistenceError>>) {
        let (committed, answer) = oneshot::channel();
        let waiting = Waiting {
            events: events.iter().map(|e| EventRow::of("Probe", e)).collect(),
            committed,
        };
        (waiting, answer)
    }

    /// A group holding one command that lost its race: the others are committed, that one is
    /// told of the conflict, and nothing is written twice. The log as stored afterwards.
    async fn a_group_with_a_conflict(writer: Writer) -> Vec<(String, i64)> {
        let (first, _) = waiting(vec![event("taken", 1)]);
        commit_group(&writer, vec![first]).await;
        let (a, a_answer) = waiting(vec![event("a", 1), event("a", 2)]);
        let (late, late_answer) = waiting(vec![event("taken", 1)]);
        let (b, b_answer) = waiting(vec![event("b", 1)]);
        commit_group(&writer, vec![a, late, b]).await;

        assert!(a_answer.await.unwrap().is_ok());
        assert!(b_answer.await.unwrap().is_ok());
        assert!(matches!(
            late_answer.await.unwrap(),
            Err(PersistenceError::OptimisticLockError)
        ));
        let stored = "SELECT aggregate_id, sequence FROM events ORDER BY global_position";
        match writer {
            Writer::Postgres(pool) => sqlx::query_as(stored).fetch_all(&pool).await,
            Writer::Sqlite(pool) => sqlx::query_as(stored).fetch_all(&pool).await,
        }
        .unwrap()
    }

    fn as_stored(events: &[(&str, i64)]) -> Vec<(String, i64)> {
        events.iter().map(|(i, s)| (i.to_string(), *s)).collect()
    }

    #[tokio::test]
    async fn a_group_with_a_conflict_commits_the_others_and_refuses_that_one_on_postgres() {
        let scratch = crate::scratch_db::ScratchPostgres::create("authledger_unit").await;
        let pool = PgPool::connect(&scratch.url).await.unwrap();
        super::super::postgres::migrate(&pool).await.unwrap();

        let stored = a_group_with_a_conflict(Writer::Postgres(pool.clone())).await;
        assert_eq!(
            stored,
            as_stored(&[("taken", 1), ("a", 1), ("a", 2), ("b", 1)])
        );

        pool.close().await;
        scratch.drop_now().await;
    }

    /// On SQLite the group is written on the connection's own handle, and SQLite's unique
    /// violation (which ends the statement, not the transaction) must roll the whole group
    /// back before each command is committed alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_with_a_conflict_commits_the_others_and_refuses_that_one_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("log.db").display());
        let authledger_projections::Db::Sqlite(pool) =
            authledger_projections::Db::connect(&url).await.unwrap()
        else {
            unreachable!("a sqlite:// URL opens SQLite")
        };
        super::super::sqlite::migrate(&pool).await.unwrap();

        let stored = a_group_with_a_conflict(Writer::Sqlite(pool.clone())).await;
        assert_eq!(
            stored,
            as_stored(&[("taken", 1), ("a", 1), ("a", 2), ("b", 1)])
        );

        // The connections went back to the pool outside any transaction.
        for _ in 0..8 {
            let mut conn = pool.acquire().await.unwrap();
            sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
            sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();
        }
        pool.close().await;
    }
}
