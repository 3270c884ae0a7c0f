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
//! transaction that read first cannot wait for the lock at all). The busy handler is left
//! to what it is for: a writer in another process, such as a CLI command.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use sqlx::SqlitePool;
use tokio::sync::OwnedMutexGuard;

/// A turn at the file's write lock, held until dropped.
pub struct WriteTurn {
    _turn: OwnedMutexGuard<()>,
}

impl std::fmt::Debug for WriteTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteTurn")
    }
}

type Queue = tokio::sync::Mutex<()>;

/// One queue per database file, whichever pool opened it: two pools on one file (a test's
/// server and its CLI calls) share a lock in SQLite, so they share the queue.
static QUEUES: LazyLock<Mutex<HashMap<PathBuf, Weak<Queue>>>> = LazyLock::new(Default::default);

fn queue_of(pool: &SqlitePool) -> Arc<Queue> {
    let file = pool.connect_options().get_filename().to_path_buf();
    let mut queues = QUEUES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(queue) = queues.get(&file).and_then(Weak::upgrade) {
        return queue;
    }
    // Files whose every pool is gone (tests make thousands) are forgotten here.
    queues.retain(|_, queue| queue.strong_count() > 0);
    let queue = Arc::new(Queue::new(()));
    queues.insert(file, Arc::downgrade(&queue));
    queue
}

/// Waits for this process's turn at `pool`'s file, at most `patience` (as SQLite's busy
/// timeout bounds waiting for another process): past it, the pool's timeout error.
pub(crate) async fn wait(pool: &SqlitePool, patience: Duration) -> Result<WriteTurn, sqlx::Error> {
    let queue = queue_of(pool);
    match tokio::time::timeout(patience, queue.lock_owned()).await {
        Ok(turn) => Ok(WriteTurn { _turn: turn }),
        Err(_) => Err(sqlx::Error::PoolTimedOut),
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

    #[tokio::test]
    async fn pools_on_one_file_take_turns_and_other_files_do_not_wait() {
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("write-turn-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (first, second) = (pool(&dir.join("a.db")).await, pool(&dir.join("a.db")).await);
        let other = pool(&dir.join("b.db")).await;
        let patience = Duration::from_millis(50);

        let turn = wait(&first, patience).await.unwrap();
        assert!(matches!(
            wait(&second, patience).await,
            Err(sqlx::Error::PoolTimedOut)
        ));
        assert!(wait(&other, patience).await.is_ok());
        drop(turn);
        assert!(wait(&second, patience).await.is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
