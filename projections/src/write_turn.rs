//! This process's turn at a SQLite file's write lock.
//!
//! SQLite lets one connection write at a time. A connection that finds the lock taken sleeps
//! in SQLite's busy handler (1, 2, 5, 10, 15, 20, 25 ms and on) and tries again, so the
//! writers of one server (the group committer, the projector, the ledger's linker) lost
//! milliseconds each time they met at the lock, more than a commit takes: measured under
//! client-credentials load, a group of a dozen tokens took 3.9 ms from `BEGIN` to `COMMIT`
//! where one commit takes 0.3 ms, and the server's two cores sat two-thirds idle.
//!
//! So the writers of one process take turns before they ask SQLite: a fair queue per file,
//! each turn handed on the moment the last writer commits, and the transaction begun with
//! `BEGIN IMMEDIATE` so the lock is taken at once rather than on its first write (a deferred
//! transaction that read first cannot wait for the lock at all).
//!
//! A SQLite store is two files, the log's and the views' (`views_file.rs`), each with its own
//! write lock and its own queue here: the group committer and the ledger's linker write only
//! the log's file, the projector only the views file, so a command's commit never waits for
//! the projector's rows ([`Writes`]). A writer of both (an erasure, a rebuild's switch) queues
//! for the log's file first, then the views file; no writer of one waits for the other. A
//! writer of both holds the log's turn while it waits for the projector's, so whatever runs
//! often writes one file: the cascade and back-channel reactors moving their checkpoints
//! with both locks, for every batch they read, held up the commits of a token load by a
//! millisecond and a half per group (`checkpoint::save_reader` takes the log's alone).
//!
//! A writer in another process (a CLI command beside the server) is not in that queue: it
//! can only find the lock free between two of this process's turns. Under load there is
//! always a turn waiting, so the lock would pass from turn to turn and never be free; and
//! SQLite's own busy handler tries again only every 100 ms once it has waited a while. So
//! after [`STREAK`] of turns handed straight on, the next turn starts only after the lock has
//! been left free for [`GAP`], and every connection polls for a lock held elsewhere every
//! millisecond ([`poll_every_millisecond`]), so any gap of the server's is one a waiting
//! process sees. The gap costs the server little: commands that arrive meanwhile join the
//! next group.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::OwnedMutexGuard;

/// How long this process's writers may hand the lock on among themselves before they leave
/// it free for another process's writer.
const STREAK: Duration = Duration::from_millis(50);

/// How long the lock is left free: two of a waiting process's polls (every millisecond).
const GAP: Duration = Duration::from_millis(2);

/// Which files of a SQLite store a write transaction changes, so which write locks it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// The log's file only: events, the ledger's chain, the log readers' checkpoints, the
    /// read counts.
    Log,
    /// The views file only: the projections' rows and checkpoints.
    Views,
    /// Both files: what is rare (an erasure, a rebuild's switch, an upgrade).
    Both,
}

impl Writes {
    fn files(self) -> &'static [File] {
        match self {
            Writes::Log => &[File::Log],
            Writes::Views => &[File::Views],
            // Always in this order, so two writers of both never hold one each.
            Writes::Both => &[File::Log, File::Views],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum File {
    Log,
    Views,
}

/// This process's turns at the write locks of the files a transaction writes, held until
/// dropped.
pub struct WriteTurn {
    turns: Vec<OwnedMutexGuard<Streak>>,
}

/// Since when this process's writers have handed the lock straight on, and when the last
/// turn ended.
struct Streak {
    since: Instant,
    last_ended: Instant,
}

impl Drop for WriteTurn {
    fn drop(&mut self) {
        let now = Instant::now();
        for turn in &mut self.turns {
            turn.last_ended = now;
        }
    }
}

impl std::fmt::Debug for WriteTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteTurn")
    }
}

type Queue = tokio::sync::Mutex<Streak>;

/// One queue per database file, whichever pool opened it: two pools on one store (a test's
/// server and its CLI calls) share its locks in SQLite, so they share the queues.
static QUEUES: LazyLock<Mutex<HashMap<QueueKey, Weak<Queue>>>> = LazyLock::new(Default::default);

/// A store's main file, and which of its files.
type QueueKey = (PathBuf, File);

fn queue_of(pool: &SqlitePool, file: File) -> Arc<Queue> {
    let file = (pool.connect_options().get_filename().to_path_buf(), file);
    let mut queues = QUEUES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(queue) = queues.get(&file).and_then(Weak::upgrade) {
        return queue;
    }
    // Files whose every pool is gone (tests make thousands) are forgotten here.
    queues.retain(|_, queue| queue.strong_count() > 0);
    let now = Instant::now();
    let queue = Arc::new(Queue::new(Streak {
        since: now,
        last_ended: now,
    }));
    queues.insert(file, Arc::downgrade(&queue));
    queue
}

/// Waits for this process's turns at the write locks of the files `writes` names in `pool`'s
/// store, at most `patience` in all (as SQLite's busy timeout bounds waiting for another
/// process): past it, the pool's timeout error.
pub(crate) async fn wait(
    pool: &SqlitePool,
    writes: Writes,
    patience: Duration,
) -> Result<WriteTurn, sqlx::Error> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut turns = Vec::with_capacity(2);
    for file in writes.files() {
        let queue = queue_of(pool, *file);
        let mut turn = match tokio::time::timeout_at(deadline, queue.lock_owned()).await {
            Ok(turn) => turn,
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
        };
        let now = Instant::now();
        if now.duration_since(turn.last_ended) >= GAP {
            turn.since = now;
        } else if now.duration_since(turn.since) >= STREAK {
            tokio::time::sleep(GAP).await;
            turn.since = Instant::now();
        }
        turns.push(turn);
    }
    Ok(WriteTurn { turns })
}

/// Makes `connection` poll every millisecond for a lock another connection holds, for as
/// long as `patience`, where SQLite's default busy handler waits 1, 2, 5, 10 ... and then
/// 100 ms between tries: a gap of [`GAP`] in another process's writing is found.
pub(crate) async fn poll_every_millisecond(
    connection: &mut SqliteConnection,
    patience: Duration,
) -> Result<(), sqlx::Error> {
    extern "C" fn busy(
        tries_allowed: *mut std::ffi::c_void,
        tries: std::ffi::c_int,
    ) -> std::ffi::c_int {
        if tries as usize >= tries_allowed as usize {
            return 0; // SQLITE_BUSY to the caller: "database is locked"
        }
        std::thread::sleep(Duration::from_millis(1));
        1
    }
    let tries_allowed = patience.as_millis() as usize;
    let mut handle = connection.lock_handle().await?;
    // SAFETY: the handle is this open connection's, locked for the call; the handler reads no
    // memory (its argument is a count carried in the pointer) and SQLite calls it only on the
    // thread running a statement of this connection, where sleeping is what it is for.
    let code = unsafe {
        libsqlite3_sys::sqlite3_busy_handler(
            handle.as_raw_handle().as_ptr(),
            Some(busy),
            tries_allowed as *mut std::ffi::c_void,
        )
    };
    match code {
        libsqlite3_sys::SQLITE_OK => Ok(()),
        code => Err(sqlx::Error::Protocol(format!(
            "sqlite3_busy_handler failed with code {code}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    async fn pool(file: &std::path::Path) -> SqlitePool {
        match Db::connect(&format!("sqlite://{}", file.display())).await {
            Ok(Db::Sqlite(pool)) => pool,
            _ => panic!("a SQLite pool"),
        }
    }

    fn scratch_dir() -> std::path::PathBuf {
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("write-turn-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A connection to `file` outside this process's queue, as another process has.
    async fn outsider(file: &std::path::Path, patience: Duration) -> SqliteConnection {
        use sqlx::ConnectOptions;
        let mut connection = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(file)
            .connect()
            .await
            .unwrap();
        poll_every_millisecond(&mut connection, patience)
            .await
            .unwrap();
        connection
    }

    #[tokio::test]
    async fn a_lock_held_elsewhere_is_polled_for_as_long_as_the_patience_and_no_longer() {
        use sqlx::Executor;
        let dir = scratch_dir();
        let file = dir.join("a.db");
        let server = pool(&file).await;
        let held = server.begin_with("BEGIN IMMEDIATE").await.unwrap();

        let mut impatient = outsider(&file, Duration::from_millis(100)).await;
        let refused =
            tokio::time::timeout(Duration::from_secs(5), impatient.execute("BEGIN IMMEDIATE"))
                .await
                .expect("gives up after its patience, not SQLite's default busy timeout");
        assert!(refused.unwrap_err().to_string().contains("locked"));

        let mut patient = outsider(&file, Duration::from_secs(5)).await;
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            held.commit().await.unwrap();
        });
        patient.execute("BEGIN IMMEDIATE").await.unwrap();
        patient.execute("COMMIT").await.unwrap();
        release.await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// This process's writers hand the lock straight on to each other with no pause of their
    /// own; a writer of another process still gets it, within its patience, every time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_process_gets_the_lock_while_this_one_writes_without_pause() {
        use sqlx::Executor;
        let dir = scratch_dir();
        let file = dir.join("a.db");
        let server = pool(&file).await;
        server
            .execute("CREATE TABLE written (by TEXT NOT NULL)")
            .await
            .unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let (server, stop) = (server.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let (mut tx, _turn) = crate::db::begin_sqlite_write(&server, Writes::Both)
                            .await
                            .unwrap();
                        sqlx::query("INSERT INTO written VALUES ('server')")
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                        // A group's worth of work with the lock held.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        tx.commit().await.unwrap();
                    }
                })
            })
            .collect();

        let mut other = outsider(&file, Duration::from_secs(2)).await;
        for _ in 0..10 {
            other.execute("BEGIN IMMEDIATE").await.unwrap();
            other
                .execute("INSERT INTO written VALUES ('other')")
                .await
                .unwrap();
            other.execute("COMMIT").await.unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for writer in writers {
            writer.await.unwrap();
        }
        let (other, by_server): (i64, i64) =
            sqlx::query_as("SELECT SUM(by = 'other'), SUM(by = 'server') FROM written")
                .fetch_one(&server)
                .await
                .unwrap();
        assert_eq!(other, 10);
        assert!(by_server > 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn pools_on_one_file_take_turns_and_other_files_do_not_wait() {
        let dir = scratch_dir();
        let (first, second) = (pool(&dir.join("a.db")).await, pool(&dir.join("a.db")).await);
        let other = pool(&dir.join("b.db")).await;
        let patience = Duration::from_millis(50);

        let turn = wait(&first, Writes::Both, patience).await.unwrap();
        for writes in [Writes::Log, Writes::Views, Writes::Both] {
            assert!(matches!(
                wait(&second, writes, patience).await,
                Err(sqlx::Error::PoolTimedOut)
            ));
        }
        assert!(wait(&other, Writes::Both, patience).await.is_ok());
        drop(turn);
        assert!(wait(&second, Writes::Both, patience).await.is_ok());

        // The log's and the views' turns are apart.
        let log = wait(&first, Writes::Log, patience).await.unwrap();
        assert!(wait(&second, Writes::Views, patience).await.is_ok());
        drop(log);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// In SQLite too, not only in this process's queues: while another process holds the
    /// views file's write lock, the log is written and committed at once, and a writer of
    /// both waits until it is released.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_is_written_while_the_views_are_locked_and_a_writer_of_both_waits() {
        use sqlx::Executor;
        let dir = scratch_dir();
        let file = dir.join("a.db");
        let server = pool(&file).await;
        server
            .execute("CREATE TABLE projection_checkpoints (projection TEXT PRIMARY KEY)")
            .await
            .unwrap();
        server
            .execute("CREATE TABLE written (by TEXT NOT NULL)")
            .await
            .unwrap();
        let mut other = outsider(&file, Duration::from_secs(5)).await;
        sqlx::query("ATTACH DATABASE ? AS views")
            .bind(
                crate::views_file::ViewsFile::of(&file)
                    .unwrap()
                    .current()
                    .display()
                    .to_string(),
            )
            .execute(&mut other)
            .await
            .unwrap();
        other.execute("BEGIN").await.unwrap();
        other
            .execute("INSERT INTO views.projection_checkpoints (projection) VALUES ('other')")
            .await
            .unwrap();

        let (mut log, turn) = tokio::time::timeout(
            Duration::from_secs(2),
            crate::db::begin_sqlite_write(&server, Writes::Log),
        )
        .await
        .expect("the log's writer does not wait for the views file's lock")
        .unwrap();
        sqlx::query("INSERT INTO written VALUES ('log')")
            .execute(&mut *log)
            .await
            .unwrap();
        log.commit().await.unwrap();
        drop(turn);

        let both = tokio::spawn({
            let server = server.clone();
            async move {
                let (tx, _turn) = crate::db::begin_sqlite_write(&server, Writes::Both)
                    .await
                    .unwrap();
                let got = Instant::now();
                tx.rollback().await.unwrap();
                got
            }
        });
        let views = tokio::spawn({
            let server = server.clone();
            async move {
                let (tx, _turn) = crate::db::begin_sqlite_write(&server, Writes::Views)
                    .await
                    .unwrap();
                let got = Instant::now();
                tx.rollback().await.unwrap();
                got
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!both.is_finished() && !views.is_finished());
        let released = Instant::now();
        other.execute("COMMIT").await.unwrap();
        assert!(both.await.unwrap() >= released);
        assert!(views.await.unwrap() >= released);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
