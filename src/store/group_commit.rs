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
    async fn insert_and_commit(
        &self,
        events: &[(&str, &SerializedEvent)],
    ) -> Result<(), sqlx::Error> {
        match self {
            Writer::Postgres(pool) => super::postgres::insert_and_commit(pool, events).await,
            Writer::Sqlite(pool) => super::sqlite::insert_and_commit(pool, events).await,
        }
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
    aggregate_type: &'static str,
    events: Vec<SerializedEvent>,
    committed: oneshot::Sender<Result<(), PersistenceError>>,
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
        let all: Vec<(&str, &SerializedEvent)> = group
            .iter()
            .flat_map(|w| w.events.iter().map(|e| (w.aggregate_type, e)))
            .collect();
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
            Err(error) if authledger_projections::db::is_unreachable(&error) => {
                for waiting in group {
                    let cause = sqlx::Error::PoolTimedOut;
                    let _ = waiting.committed.send(Err(persistence_error(cause)));
                }
                tracing::debug!(%error, "a commit group failed: the database is unreachable");
                return;
            }
            // Nothing of the group was written: each command on its own, for its own answer.
            Err(_) => {}
        }
    }
    for waiting in group {
        let events: Vec<_> = waiting
            .events
            .iter()
            .map(|e| (waiting.aggregate_type, e))
            .collect();
        let outcome = writer
            .insert_and_commit(&events)
            .await
            .map_err(persistence_error);
        let _ = waiting.committed.send(outcome);
    }
}

/// What the event-store crates answer for the same failure: a taken (aggregate, sequence) is
/// the optimistic-concurrency conflict the command retries on.
fn persistence_error(error: sqlx::Error) -> PersistenceError {
    match &error {
        sqlx::Error::Database(e) if e.is_unique_violation() => {
            PersistenceError::OptimisticLockError
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
            PersistenceError::ConnectionError(Box::new(error))
        }
        _ => PersistenceError::UnknownError(Box::new(error)),
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
            aggregate_type: A::TYPE,
            events: events.to_vec(),
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
            aggregate_type: "Probe",
            events,
            committed,
        };
        (waiting, answer)
    }

    /// A group holding one command that lost its race: the others are committed, that one is
    /// told of the conflict, and nothing is written twice.
    #[tokio::test]
    async fn a_group_with_a_conflict_commits_the_others_and_refuses_that_one() {
        let scratch = crate::scratch_db::ScratchPostgres::create("authledger_unit").await;
        let pool = PgPool::connect(&scratch.url).await.unwrap();
        super::super::postgres::migrate(&pool).await.unwrap();

        let (first, _) = waiting(vec![event("taken", 1)]);
        commit_group(&Writer::Postgres(pool.clone()), vec![first]).await;
        let (a, a_answer) = waiting(vec![event("a", 1), event("a", 2)]);
        let (late, late_answer) = waiting(vec![event("taken", 1)]);
        let (b, b_answer) = waiting(vec![event("b", 1)]);
        commit_group(&Writer::Postgres(pool.clone()), vec![a, late, b]).await;

        assert!(a_answer.await.unwrap().is_ok());
        assert!(b_answer.await.unwrap().is_ok());
        assert!(matches!(
            late_answer.await.unwrap(),
            Err(PersistenceError::OptimisticLockError)
        ));
        let stored: Vec<(String, i64)> =
            sqlx::query_as("SELECT aggregate_id, sequence FROM events ORDER BY global_position")
                .fetch_all(&pool)
                .await
                .unwrap();
        let expected = [("taken", 1), ("a", 1), ("a", 2), ("b", 1)];
        let expected: Vec<(String, i64)> =
            expected.iter().map(|(i, s)| (i.to_string(), *s)).collect();
        assert_eq!(stored, expected);

        pool.close().await;
        scratch.drop_now().await;
    }
}
