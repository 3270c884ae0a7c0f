//! A rebuild's scratch database files (`sqlite.rs`): each made beside the store with no
//! journal and no fsync while it is filled, the store attached, and removed when dropped
//! unless it became the views file.

use std::path::{Path, PathBuf};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Executor, SqlitePool};

use crate::db::{Db, SQLITE_BUSY_TIMEOUT};
use crate::views_file::{self, Statement};
use crate::ProjectionError;

/// The scratch file's page cache: its pages are written once and read back by the views'
/// lookups while they replay. (256 MiB replayed a million events no faster.)
pub(super) const SCRATCH_CACHE_KIB: i64 = 32 * 1024;

/// Each projection's part file's page cache, during a rebuild of every projection: there are
/// eight of them.
pub(super) const PART_CACHE_KIB: i64 = 8 * 1024;

/// How many helper threads SQLite's sorter may start for an index build: one per other
/// core, up to three.
fn sorter_helpers() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get().saturating_sub(1).min(3))
}

/// The scratch database and its files, removed when dropped (a failed rebuild leaves none)
/// unless it became the views file.
pub(super) struct Scratch {
    pub(super) path: PathBuf,
    pub(super) db: Db,
    pub(super) kept: bool,
}

impl Scratch {
    /// `views`: the views file to attach (a partial rebuild copies into it).
    pub(super) async fn create(
        store: &Path,
        views: Option<PathBuf>,
        cache_kib: i64,
    ) -> Result<Scratch, ProjectionError> {
        let store_path = store.to_string_lossy().into_owned();
        let path = views_file::new_file_name(store);
        views_file::remove_files(&path);
        crate::db::create_private_file(&path.to_string_lossy())
            .map_err(|e| ProjectionError::Db(sqlx::Error::Io(e)))?;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Off)
            .page_size(views_file::PAGE_SIZE)
            .synchronous(SqliteSynchronous::Off)
            // It becomes (or is copied into) the views file: what is deleted is zeroed there.
            .pragma("secure_delete", "on")
            .pragma("cache_size", format!("-{cache_kib}"))
            // Index builds sort with helper threads: the last part still indexing has the
            // other cores to itself.
            .pragma("threads", sorter_helpers().to_string())
            .pragma("user_version", views_file::VERSION.to_string())
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .after_connect(move |conn, _| {
                let store_path = store_path.clone();
                let views = views.clone();
                Box::pin(async move {
                    crate::write_turn::poll_every_millisecond(conn, SQLITE_BUSY_TIMEOUT).await?;
                    sqlx::query("ATTACH DATABASE ? AS store")
                        .bind(store_path)
                        .execute(&mut *conn)
                        .await?;
                    // The store's own settings (`db.rs`, `views_file.rs`).
                    conn.execute("PRAGMA store.synchronous = FULL").await?;
                    if let Some(views) = views {
                        sqlx::query("ATTACH DATABASE ? AS views")
                            .bind(views.to_string_lossy().into_owned())
                            .execute(&mut *conn)
                            .await?;
                        conn.execute("PRAGMA views.synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Scratch {
            path,
            db: Db::Sqlite(pool),
            kept: false,
        })
    }

    pub(super) fn pool(&self) -> &SqlitePool {
        let Db::Sqlite(pool) = &self.db else {
            unreachable!("the scratch database is SQLite");
        };
        pool
    }

    /// Makes the scratch file a views file others can use, but for the last events: a
    /// write-ahead log like the store's, and every page on disk (a million events' views are
    /// over a gigabyte: written out here, not under the store's lock).
    pub(super) async fn write_out(&self) -> Result<(), ProjectionError> {
        // `main.`: without a schema name the pragma would change every attached file.
        self.pool()
            .execute("PRAGMA main.journal_mode = WAL")
            .await?;
        self.sync()
    }

    /// After the last events: no connection of ours left open (closing the last one moves
    /// its write-ahead log into the file), and the file on disk.
    pub(super) async fn close(&self) -> Result<(), ProjectionError> {
        self.pool().close().await;
        self.sync()
    }

    fn sync(&self) -> Result<(), ProjectionError> {
        std::fs::File::open(&self.path)
            .and_then(|file| file.sync_all())
            .map_err(|e| ProjectionError::Db(sqlx::Error::Io(e)))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // The pool's connection closes when the pool is gone; on Linux an open file can be
        // unlinked anyway.
        if !self.kept {
            views_file::remove_files(&self.path);
        }
    }
}

/// Makes `tables` in the scratch file with the indexes the projections look rows up and
/// upsert by; returns the other indexes' statements, to be made once the tables are filled.
pub(super) async fn make_tables(
    scratch: &Scratch,
    tables: &[&str],
) -> Result<Vec<Statement>, ProjectionError> {
    let mut deferred = Vec::new();
    for statement in views_file::statements() {
        if !tables.contains(&statement.table) {
            continue;
        }
        if statement.needed_while_filling {
            scratch.pool().execute(statement.sql).await?;
        } else {
            deferred.push(statement);
        }
    }
    Ok(deferred)
}
