//! The SQLite rebuild (see the module documentation in `mod.rs`): the new views are built in
//! a scratch database file beside the store, holding no lock on the store, then copied in
//! under one short write transaction.
//!
//! The scratch file's one connection has the store attached (as `store`): the projections'
//! unqualified SQL finds the scratch file's tables first (SQLite looks in `main` before any
//! attached database), a deferred transaction that writes only those locks only the scratch
//! file, and the swap's `BEGIN IMMEDIATE` takes the write lock of both at once.
//!
//! Measured before (a million events, everything in one transaction on the store): 16,000
//! events/s, and the store's write lock held for the whole minute, so the server's commands
//! waited out their busy timeout. Most of that minute was SQLite spilling the transaction's
//! pages into the write-ahead log and finding them there again (`walFindFrame`, `pread` of
//! WAL frames): the scratch file has no journal and no fsync (a crash loses only the scratch,
//! which is rebuilt), and nobody else uses it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Executor, Row, SqlitePool};

use super::{read_ahead, replay, Progress};
use crate::batch::ViewTx;
use crate::checkpoint;
use crate::db::{Db, DbTx, SQLITE_BUSY_TIMEOUT};
use crate::event_log::{self, Position};
use crate::ledger::segments::Archive;
use crate::{Projection, ProjectionError};

/// The scratch file's page cache: its pages are written once and read back by the views'
/// lookups while they replay.
const SCRATCH_CACHE_KIB: i64 = 32 * 1024;

/// The scratch database and its files, removed when dropped (a failed rebuild leaves none).
struct Scratch {
    path: PathBuf,
    db: Db,
}

impl Scratch {
    async fn create(store: &Path) -> Result<Scratch, ProjectionError> {
        let store_path = store.to_string_lossy().into_owned();
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let mut name = store.as_os_str().to_owned();
        name.push(format!(
            "-rebuild-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let path = PathBuf::from(name);
        remove_abandoned(store);
        remove_files(&path);
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Off)
            .synchronous(SqliteSynchronous::Off)
            .pragma("cache_size", format!("-{SCRATCH_CACHE_KIB}"))
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .after_connect(move |conn, _| {
                let store_path = store_path.clone();
                Box::pin(async move {
                    crate::write_turn::poll_every_millisecond(conn, SQLITE_BUSY_TIMEOUT).await?;
                    sqlx::query("ATTACH DATABASE ? AS store")
                        .bind(store_path)
                        .execute(&mut *conn)
                        .await?;
                    // The store's own settings (`db.rs`): the swap's commit is durable, and
                    // the old views' rows are zeroed as they are deleted.
                    conn.execute(
                        "PRAGMA store.synchronous = FULL; PRAGMA store.secure_delete = ON",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Scratch {
            path,
            db: Db::Sqlite(pool),
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // The pool's connection closes when the pool is gone; on Linux an open file can be
        // unlinked anyway.
        remove_files(&self.path);
    }
}

/// Scratch files a rebuild left when its process died (killed, or the machine stopped): their
/// names carry the process id. Only where `/proc` says which processes live.
fn remove_abandoned(store: &Path) {
    let (Some(dir), Some(file)) = (store.parent(), store.file_name()) else {
        return;
    };
    if !Path::new("/proc/self").exists() {
        return;
    }
    let prefix = format!("{}-rebuild-", file.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn remove_files(path: &Path) {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(file));
    }
}

/// `CREATE INDEX [IF NOT EXISTS] name ...` as `... store.name ...`: from the scratch file's
/// connection, the index is made on the store's table.
fn in_store(create_index: &str) -> String {
    let upper = create_index.to_ascii_uppercase();
    let mut at = upper.find("INDEX ").map_or(0, |i| i + "INDEX ".len());
    if upper[at..].starts_with("IF NOT EXISTS ") {
        at += "IF NOT EXISTS ".len();
    }
    format!("{}store.{}", &create_index[..at], &create_index[at..])
}

/// The views' definitions: the tables and their unique indexes are made in the scratch file
/// (the projections look rows up and upsert by them while they replay); the other indexes
/// are returned, to be made on the store's tables once they are filled.
async fn make_tables(
    store: &SqlitePool,
    scratch: &Db,
    tables: &[&str],
) -> Result<Vec<(String, String)>, ProjectionError> {
    let Db::Sqlite(scratch) = scratch else {
        unreachable!("the scratch database is SQLite");
    };
    let mut deferred = Vec::new();
    for table in tables {
        let rows = sqlx::query(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL \
             ORDER BY type = 'index'",
        )
        .bind(table)
        .fetch_all(store)
        .await?;
        for row in rows {
            let (kind, name, sql): (String, String, String) =
                (row.get("type"), row.get("name"), row.get("sql"));
            let unique = sql.to_ascii_uppercase().starts_with("CREATE UNIQUE");
            match kind.as_str() {
                "table" => sqlx::query(&sql).execute(scratch).await.map(drop)?,
                "index" if unique => sqlx::query(&sql).execute(scratch).await.map(drop)?,
                "index" => deferred.push((name, sql)),
                // A trigger an operator added by hand is not carried over (as on Postgres).
                _ => {}
            }
        }
    }
    Ok(deferred)
}

/// SQLite: builds `projections` beside the store and swaps them in (see the module
/// documentation). Returns how many events were replayed.
pub(crate) async fn beside_then_swap(
    db: &Db,
    projections: &[Arc<dyn Projection>],
    page: i64,
    archive: Option<Archive>,
    progress: Arc<Progress>,
) -> Result<u64, ProjectionError> {
    let Db::Sqlite(pool) = db else {
        unreachable!("beside_then_swap is the SQLite rebuild");
    };
    let scratch = Scratch::create(pool.connect_options().get_filename()).await?;
    let tables: Vec<&str> = projections
        .iter()
        .flat_map(|p| p.tables())
        .copied()
        .collect();
    let deferred = make_tables(pool, &scratch.db, &tables).await?;

    // 1. The whole log, into the scratch views: no lock on the store.
    let mut tx = ViewTx::new(scratch.db.begin().await?);
    let pages = read_ahead(db, page, archive, progress.clone());
    let (mut replayed, position) = replay(&mut tx, projections, pages).await?;
    tx.commit().await?;
    // 2. What was committed meanwhile, still without the lock.
    //    (Deferred: it writes the scratch file only, and so locks nothing else.)
    let mut tx = ViewTx::new(scratch.db.begin().await?);
    let start = position.unwrap_or_default();
    let (more, position) = tail_into(&mut tx, db, projections, start, page, &progress).await?;
    tx.commit().await?;
    replayed += more;

    // 3. The swap: under the store's write lock, the last events into the scratch views, then
    //    the views' rows copied into the store's tables, their indexes made, the checkpoints
    //    moved, in one commit. Readers see the old views until then.
    let Db::Sqlite(scratch_pool) = &scratch.db else {
        unreachable!("the scratch database is SQLite");
    };
    let _turn = crate::write_turn::wait(pool, SQLITE_BUSY_TIMEOUT).await?;
    let locked = std::time::Instant::now();
    let mut swap = ViewTx::new(DbTx::Sqlite(
        scratch_pool.begin_with("BEGIN IMMEDIATE").await?,
        None,
    ));
    let (more, position) = tail_into(&mut swap, db, projections, position, page, &progress).await?;
    replayed += more;
    let DbTx::Sqlite(copy, _) = swap.db().await? else {
        unreachable!("the scratch database is SQLite");
    };
    for (name, _) in &deferred {
        copy.execute(format!("DROP INDEX store.\"{name}\"").as_str())
            .await?;
    }
    for table in &tables {
        copy.execute(format!("DELETE FROM store.\"{table}\"").as_str())
            .await?;
        copy.execute(
            format!("INSERT INTO store.\"{table}\" SELECT * FROM main.\"{table}\"").as_str(),
        )
        .await?;
    }
    for (_, sql) in &deferred {
        copy.execute(in_store(sql).as_str()).await?;
    }
    if position != Position::default() {
        let save = checkpoint::SAVE.replace("UPDATE ", "UPDATE store.");
        for projection in projections {
            sqlx::query(&save)
                .bind(position.transaction)
                .bind(position.global)
                .bind(projection.name())
                .execute(&mut **copy)
                .await?;
        }
    }
    swap.commit().await?;
    // What other writers waited for: the figure to watch against their busy timeout.
    tracing::info!(
        held_ms = locked.elapsed().as_millis() as u64,
        last_events = more,
        "rebuilt views swapped in under the store's write lock"
    );
    Ok(replayed)
}

/// Applies the events after `position` to the scratch views in `tx`, page by page, up to the
/// end of the log as it is now. Returns how many there were and the last one's position.
async fn tail_into(
    tx: &mut ViewTx,
    store: &Db,
    projections: &[Arc<dyn Projection>],
    mut position: Position,
    page: i64,
    progress: &Progress,
) -> Result<(u64, Position), ProjectionError> {
    let mut count = 0;
    loop {
        let events = {
            let mut read = store.begin().await?;
            event_log::read_after(&mut read, position, page).await?
        };
        let Some(last) = events.last().map(|e| e.position) else {
            return Ok((count, position));
        };
        for event in &events {
            for projection in projections {
                projection.apply(tx, event).await?;
            }
        }
        tx.forget_grants();
        progress.read(events.len(), last.global);
        count += events.len() as u64;
        position = last;
    }
}

#[cfg(test)]
mod tests {
    use super::in_store;

    #[test]
    fn indexes_are_made_on_the_stores_tables() {
        assert_eq!(
            in_store("CREATE INDEX grant_view_user ON grant_view (username)"),
            "CREATE INDEX store.grant_view_user ON grant_view (username)"
        );
        assert_eq!(
            in_store("create index if not exists \"a b\" ON t (c)"),
            "create index if not exists store.\"a b\" ON t (c)"
        );
    }
}
