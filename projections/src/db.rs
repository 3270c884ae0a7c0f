//! One handle for both stores.
//!
//! The read side's SQL is written once: SQLite and Postgres both take `$n` placeholders,
//! `ON CONFLICT ... DO UPDATE` and keyset `LIMIT` queries. [`on_db!`](crate::on_db) and [`on_tx!`](crate::on_tx) run one
//! expression against whichever pool or transaction is behind the handle; the expression is
//! type-checked for each store.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use crate::views_file::ViewsFile;
pub use crate::write_turn::{WriteTurn, Writes};

#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

pub enum DbTx {
    /// With this process's turn at the file's write lock when begun to write
    /// ([`Db::begin_write`]); the turn passes on when the transaction ends.
    Sqlite(Transaction<'static, Sqlite>, Option<WriteTurn>),
    Postgres(Transaction<'static, Postgres>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

/// Runs `$body` with `$pool` bound to the concrete pool behind a [`Db`].
#[macro_export]
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$conn` bound to the connection of the transaction behind a [`DbTx`].
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::db::DbTx::Sqlite(tx, _) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::db::DbTx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}

/// How long a SQLite writer waits for another writer (the server and a CLI command may share
/// the file) before giving up with "database is locked".
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates the SQLite file readable by its owner only, if it does not exist yet: it holds
/// password hashes and personal data. SQLite gives its WAL and shared-memory files the
/// database file's permissions.
pub(crate) fn create_private_file(path: &str) -> std::io::Result<()> {
    if path.is_empty() || path.starts_with(':') || std::path::Path::new(path).exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Why Postgres could not be opened, in words that name the server and the cause: the pool
/// only says it timed out, so one connection is tried on its own to hear the real reason
/// (refused, unknown host, no such role or database, a password refused).
async fn postgres_refused(options: &PgConnectOptions, pooled: sqlx::Error) -> ConnectError {
    use sqlx::Connection;
    let store = format!(
        "the PostgreSQL database {} at {}:{} (as {})",
        options.get_database().unwrap_or("(default)"),
        options.get_host(),
        options.get_port(),
        options.get_username()
    );
    let alone = tokio::time::timeout(
        Duration::from_secs(5),
        sqlx::PgConnection::connect_with(options),
    )
    .await;
    let (unreachable, cause) = match alone {
        Ok(Err(cause)) => (is_unreachable(&cause), cause),
        Ok(Ok(_)) => (is_unreachable(&pooled), pooled),
        Err(_) => (true, sqlx::Error::PoolTimedOut),
    };
    let cause = match cause {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Database(refused) => refused.message().to_owned(),
        sqlx::Error::PoolTimedOut => "no answer within 5 s".to_owned(),
        other => other.to_string(),
    };
    ConnectError::Refused {
        store,
        unreachable,
        cause,
    }
}

/// How long a request waits for a Postgres connection. With Postgres down, every command
/// fails after this long and is answered 503: a second keeps that answer quick, and under
/// load the pool hands a connection over in milliseconds.
pub const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

impl Db {
    /// Connects to the store named by `url`: `sqlite://PATH` (created if missing) or
    /// `postgres://...`.
    pub async fn connect(url: &str) -> Result<Db, ConnectError> {
        if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if rest.is_empty() {
                return Err(ConnectError::BadUrl("sqlite:// needs a file path".into()));
            }
            create_private_file(rest.split('?').next().unwrap_or(rest))
                .map_err(|e| ConnectError::BadUrl(format!("cannot create {rest}: {e}")))?;
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| ConnectError::BadUrl(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL, not the NORMAL that sqlite-es defaults to: an acknowledged revocation
                // must survive a power cut, not only a process crash.
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                // Deleted content is zeroed, not left in free pages: an erased person's data
                // must not survive in the file.
                .pragma("secure_delete", "on")
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            let refused = |cause: sqlx::Error| ConnectError::Refused {
                store: format!("the SQLite database {rest}"),
                unreachable: false,
                cause: cause.to_string(),
            };
            let views = ViewsFile::open(options.get_filename())
                .await
                .map_err(refused)?;
            let (on_connect, on_acquire) = (views.clone(), views);
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(SQLITE_BUSY_TIMEOUT)
                .after_connect(move |connection, _| {
                    let views = on_connect.clone();
                    Box::pin(async move {
                        crate::write_turn::poll_every_millisecond(connection, SQLITE_BUSY_TIMEOUT)
                            .await?;
                        views.attach(connection).await
                    })
                })
                // A connection opened before the views file was switched is closed rather
                // than handed out (`views_file.rs`).
                .before_acquire(move |_, opened| {
                    let current = on_acquire.attached_current(opened.age);
                    Box::pin(async move { Ok(current) })
                })
                .connect_with(options)
                .await
                .map_err(refused)?;
            Ok(Db::Sqlite(pool))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options =
                PgConnectOptions::from_str(url).map_err(|e| ConnectError::BadUrl(e.to_string()))?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
                .connect_with(options.clone())
                .await;
            match pool {
                Ok(pool) => Ok(Db::Postgres(pool)),
                Err(pooled) => Err(postgres_refused(&options, pooled).await),
            }
        } else {
            Err(ConnectError::BadUrl(
                "expected sqlite://PATH or postgres://...".into(),
            ))
        }
    }

    pub fn kind(&self) -> StoreKind {
        match self {
            Db::Sqlite(_) => StoreKind::Sqlite,
            Db::Postgres(_) => StoreKind::Postgres,
        }
    }

    pub async fn begin(&self) -> Result<DbTx, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(pool) => DbTx::Sqlite(pool.begin().await?, None),
            Db::Postgres(pool) => DbTx::Postgres(pool.begin().await?),
        })
    }

    /// A transaction that may write anything. On SQLite it first waits for this process's
    /// turns at the write locks of both files, then takes the locks at once (see
    /// `write_turn.rs` for why); transactions that only read use [`Db::begin`] and never wait
    /// for a writer.
    pub async fn begin_write(&self) -> Result<DbTx, sqlx::Error> {
        self.begin_write_to(Writes::Both).await
    }

    /// A transaction that writes only what `writes` names: on SQLite only that file's write
    /// lock is taken, so the log's writers and the projector do not wait for each other
    /// (a write to the other file would take its lock out of this process's turn: don't). On
    /// Postgres, as [`Db::begin_write`].
    pub async fn begin_write_to(&self, writes: Writes) -> Result<DbTx, sqlx::Error> {
        match self {
            Db::Sqlite(pool) => {
                let (tx, turn) = begin_sqlite_write(pool, writes).await?;
                Ok(DbTx::Sqlite(tx, Some(turn)))
            }
            Db::Postgres(pool) => Ok(DbTx::Postgres(pool.begin().await?)),
        }
    }

    pub async fn close(&self) {
        on_db!(self, pool => pool.close().await)
    }
}

impl DbTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            // The turn is held until the commit has returned.
            DbTx::Sqlite(tx, _turn) => tx.commit().await,
            DbTx::Postgres(tx) => tx.commit().await,
        }
    }
}

/// [`Db::begin_write_to`] on a SQLite pool, for a writer that holds the pool itself: keep
/// the turn until the transaction has ended.
pub async fn begin_sqlite_write(
    pool: &SqlitePool,
    writes: Writes,
) -> Result<(Transaction<'static, Sqlite>, WriteTurn), sqlx::Error> {
    let turn = crate::write_turn::wait(pool, writes, SQLITE_BUSY_TIMEOUT).await?;
    let views = ViewsFile::of(pool.connect_options().get_filename());
    loop {
        let switches = views.as_ref().map(|v| v.switches_seen());
        // `BEGIN IMMEDIATE` takes the write lock of every attached file. For one file, a
        // deferred transaction whose first statement writes that file (and changes nothing)
        // takes its lock alone, waiting for it as `BEGIN IMMEDIATE` would.
        let take_one = match writes {
            Writes::Both => None,
            Writes::Log => Some("DELETE FROM main.projection_checkpoints WHERE 0"),
            Writes::Views => Some("DELETE FROM views.projection_checkpoints WHERE 0"),
        };
        let tx = match take_one {
            None => pool.begin_with("BEGIN IMMEDIATE").await?,
            Some(write_nothing) => {
                let mut tx = pool.begin().await?;
                sqlx::Executor::execute(&mut *tx, write_nothing).await?;
                tx
            }
        };
        if writes == Writes::Log {
            // The log's writers never touch the views file: a switch is nothing to them.
            return Ok((tx, turn));
        }
        // The views file is switched under its write lock: if it was switched since this
        // connection was taken, the connection may still have the old one attached; the
        // next one taken has the new one.
        if views.as_ref().map(|v| {
            v.follow();
            v.switches_seen()
        }) == switches
        {
            return Ok((tx, turn));
        }
    }
}

/// Runs `work` in a transaction that writes the log's file only, committed before this
/// returns, all of it in one blocking section on the connection's own handle: the group
/// committer's path. Through sqlx the same transaction is five trips to the connection's
/// thread and back (the pool's liveness ping on acquiring it, `BEGIN`, the statement that
/// takes the lock, the rows, `COMMIT`), each two thread wake-ups on a machine whose two cores
/// the load itself keeps busy; here it is two (the ping, and the handle handed over). Whatever
/// fails, the transaction is rolled back before the connection goes back to the pool, which
/// knows nothing of it.
pub async fn write_log_on_handle<T>(
    pool: &SqlitePool,
    work: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
) -> Result<T, LogWriteError> {
    let _turn = crate::write_turn::wait(pool, Writes::Log, SQLITE_BUSY_TIMEOUT).await?;
    let mut conn = pool.acquire().await?;
    crate::sqlite_rows::on_handle(&mut conn, |db| {
        let written = db
            // As `begin_sqlite_write` does for `Writes::Log`: the log's lock alone.
            .execute_batch("BEGIN; DELETE FROM main.projection_checkpoints WHERE 0")
            .and_then(|()| work(db))
            .and_then(|done| db.execute_batch("COMMIT").map(|()| done));
        if written.is_err() && !db.is_autocommit() {
            // Nothing to do if it fails too: the error that led here is the one to report,
            // and a connection left inside a transaction would fail its next `BEGIN`.
            let _ = db.execute_batch("ROLLBACK");
        }
        Ok(written?)
    })
    .await
}

/// Why [`write_log_on_handle`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum LogWriteError {
    /// No connection, or none in time.
    #[error(transparent)]
    Pool(#[from] sqlx::Error),
    /// SQLite's own error (its messages name tables and constraints, never values).
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

impl LogWriteError {
    /// A row's unique key was taken: for the log, another writer's event at the same
    /// aggregate's sequence number.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            LogWriteError::Pool(error) => {
                matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
            }
            LogWriteError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ),
            LogWriteError::Sqlite(_) => false,
        }
    }

    /// The store was not there to write to: no connection, or its write lock still held
    /// elsewhere when the busy timeout ran out.
    pub fn is_unreachable(&self) -> bool {
        match self {
            LogWriteError::Pool(error) => is_unreachable(error),
            LogWriteError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            LogWriteError::Sqlite(_) => false,
        }
    }
}

/// Whether `error` says the database could not be reached (no connection within the pool's
/// acquire timeout, a broken or garbled connection: a proxy in front of a stopped database
/// accepts and closes, which the driver reports as a protocol error), as opposed to a
/// statement it refused: the first passes when the database returns, the second does not.
pub fn is_unreachable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    )
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("AUTHLEDGER_DATABASE_URL is not usable: {0}")]
    BadUrl(String),
    /// `store` names the database (never with its password), `cause` what went wrong;
    /// `unreachable` when it may pass by itself (nothing answered), not when the database
    /// refused (no such role or database, a wrong password).
    #[error("cannot open {store}: {cause}")]
    Refused {
        store: String,
        unreachable: bool,
        cause: String,
    },
}

/// Makes what was just deleted or overwritten unreadable in the database files too. SQLite
/// runs with `secure_delete` (freed content is zeroed), but the write-ahead log still holds
/// the pages as they were until a checkpoint copies it back and truncates it. On Postgres a
/// dead row stays in its page until vacuum reuses it; no dump or query shows it.
pub async fn purge_freed_pages(db: &Db) -> Result<(), sqlx::Error> {
    if let Db::Sqlite(pool) = db {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(pool)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::ffi;

    use super::LogWriteError;

    fn failure(code: i32) -> LogWriteError {
        LogWriteError::Sqlite(rusqlite::Error::SqliteFailure(ffi::Error::new(code), None))
    }

    /// The group committer answers a taken sequence number as the conflict a command retries
    /// on, and a write lock held elsewhere past the busy timeout as a store out of reach (its
    /// whole group fails at once, rather than each command waiting out the timeout again).
    #[test]
    fn sqlite_failures_are_told_apart() {
        assert!(failure(ffi::SQLITE_CONSTRAINT_PRIMARYKEY).is_unique_violation());
        assert!(failure(ffi::SQLITE_CONSTRAINT_UNIQUE).is_unique_violation());
        assert!(!failure(ffi::SQLITE_CONSTRAINT_CHECK).is_unique_violation());
        assert!(!failure(ffi::SQLITE_CONSTRAINT_PRIMARYKEY).is_unreachable());
        assert!(failure(ffi::SQLITE_BUSY).is_unreachable());
        assert!(!failure(ffi::SQLITE_BUSY).is_unique_violation());
        assert!(LogWriteError::Pool(sqlx::Error::PoolTimedOut).is_unreachable());
    }
}
