//! The SQLite rebuild (see the module documentation in `mod.rs`): the new views are built in
//! a scratch database file beside the store, holding no lock on the store.
//!
//! - **Every projection** (the usual case): each projection is replayed into a part file of
//!   its own on a connection of its own (the two cores both work) and indexed there; the other
//!   parts are moved into the largest, which becomes the new views file (every table, every
//!   index, the checkpoints): under the views file's write lock it takes the last few events,
//!   is made durable, and the views link is switched to it (`views_file.rs`): nothing is
//!   copied under the lock, and the projector waits only for those last events.
//! - **Some projections**: their tables are built in the scratch file, then copied into the
//!   views file under one write transaction, with their indexes made again.
//!
//! Either way only the views file's write lock is taken, never the log's: commands go on
//! committing, and events committed after the last ones the rebuild took are the projector's,
//! from the checkpoints the rebuild left.
//!
//! The scratch file's connection has the log's file attached (as `store`), and for a partial
//! rebuild the views file (as `views`): the projections' unqualified SQL finds the scratch
//! file's tables first (SQLite looks in `main` before any attached database), and a deferred
//! transaction that writes only those locks only the scratch file.
//!
//! Measured before (a million events, everything in one transaction on the store): 16,000
//! events/s, and the store's write lock held for the whole minute. Most of that minute was
//! SQLite spilling the transaction's pages into the write-ahead log and finding them there
//! again (`walFindFrame`, `pread` of WAL frames): the scratch file has no journal and no fsync
//! while it is built (a crash loses only the scratch, which is removed), and nobody else uses
//! it. Then, with the views inside the log's file, copying them back took 18 s under the lock.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::{Executor, SqlitePool};

mod scratch;

use super::{read_ahead, replay, Progress};
use crate::batch::ViewTx;
use crate::db::{Db, DbTx, Writes, SQLITE_BUSY_TIMEOUT};
use crate::event_log::{self, Position};
use crate::ledger::segments::Archive;
use crate::views_file::{self, Statement, ViewsFile};
use crate::{Projection, ProjectionError};
use scratch::{make_tables, Scratch, PART_CACHE_KIB, SCRATCH_CACHE_KIB};

/// `CREATE INDEX name ...` as `CREATE INDEX schema.name ...`: from the scratch file's
/// connection, the index is made on the attached file's table.
fn in_schema(create_index: &str, schema: &str) -> String {
    let upper = create_index.to_ascii_uppercase();
    let mut at = upper.find("INDEX ").map_or(0, |i| i + "INDEX ".len());
    if upper[at..].starts_with("IF NOT EXISTS ") {
        at += "IF NOT EXISTS ".len();
    }
    format!("{}{schema}.{}", &create_index[..at], &create_index[at..])
}

/// The index a `CREATE INDEX` statement makes.
fn index_name(create_index: &str) -> &str {
    let words: Vec<&str> = create_index.split_whitespace().collect();
    match words.as_slice() {
        ["CREATE", "INDEX", name, ..] | ["CREATE", "UNIQUE", "INDEX", name, ..] => name,
        _ => "",
    }
}

/// SQLite: builds `projections` beside the store and puts them in place (see the module
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
    let store = pool.connect_options().get_filename().to_path_buf();
    let views = ViewsFile::of(&store).ok_or_else(|| {
        ProjectionError::Decode("the store's views file is not open in this process".into())
    })?;
    let tables: Vec<&str> = projections
        .iter()
        .flat_map(|p| p.tables())
        .copied()
        .collect();
    // Every view of the schema: the scratch file can become the views file.
    let every = views_file::statements()
        .iter()
        .all(|s| s.table == "projection_checkpoints" || tables.contains(&s.table));
    // 1. The whole log, into the scratch views: no lock on the store.
    let started = std::time::Instant::now();
    let (scratch, deferred, (mut replayed, position)) = match every {
        true => {
            let pages = read_ahead(db, page, archive, progress.clone());
            let (scratch, replayed) = in_parts(&store, projections, pages).await?;
            (scratch, Vec::new(), replayed)
        }
        false => {
            let scratch = Scratch::create(&store, Some(views.current()), SCRATCH_CACHE_KIB).await?;
            let deferred = make_tables(&scratch, &tables).await?;
            let pages = read_ahead(db, page, archive, progress.clone());
            let mut tx = ViewTx::new(scratch.db.begin().await?);
            let replayed = replay(&mut tx, projections, pages).await?;
            tx.commit().await?;
            (scratch, deferred, replayed)
        }
    };
    tracing::info!(
        events = replayed,
        replay_ms = started.elapsed().as_millis() as u64,
        "the log replayed into the scratch views"
    );
    // 2. What was committed meanwhile, still without the lock.
    //    (Deferred: it writes the scratch file only, and so locks nothing else.)
    let tail = Tail {
        store: db,
        projections,
        page,
        progress: &progress,
    };
    let mut tx = ViewTx::new(scratch.db.begin().await?);
    let (more, position) = tail.apply(&mut tx, position.unwrap_or_default()).await?;
    tx.commit().await?;
    replayed += more;

    let (more, held) = match every {
        true => switch(&views, scratch, &tail, position).await?,
        false => copy(&views, &scratch, &tables, &deferred, &tail, position).await?,
    };
    replayed += more;
    // What other writers waited for: the figure to watch against their busy timeout.
    tracing::info!(
        held_ms = held.as_millis() as u64,
        last_events = more,
        switched = every,
        "rebuilt views put in place under the views file's write lock"
    );
    Ok(replayed)
}

/// Replays `pages` into each projection's tables in a part file of its own, each on its own
/// connection (so on its own SQLite thread), then moves the other parts' rows into the
/// largest, which becomes the new views file (returned). One connection applying every
/// projection kept one core busy and the other mostly idle.
///
/// Each part makes its other indexes (one sort each) as soon as its replay is done, beside
/// the replays and index builds of the others: made one after another on the whole views
/// file, they had one core busy for 10-16 s of a million events' rebuild, the other idle.
/// The largest part then gets the other views' tables and indexes, all empty, so SQLite
/// copies each table and every one of its indexes from its part in key order (its transfer
/// optimisation) rather than inserting row by row; the largest part's own rows are not
/// copied at all.
async fn in_parts(
    store: &Path,
    projections: &[Arc<dyn Projection>],
    pages: super::Pages,
) -> Result<(Scratch, (u64, Option<Position>)), ProjectionError> {
    let mut parts = std::collections::HashMap::new();
    let mut builders = std::collections::HashMap::new();
    for projection in projections {
        let part = Scratch::create(store, None, PART_CACHE_KIB).await?;
        let indexes = make_tables(&part, projection.tables()).await?;
        builders.insert(projection.name(), (part.db.clone(), indexes));
        parts.insert(projection.name(), part);
    }
    let (replayed, reached) =
        super::side_by_side_replay(pages, projections, move |projection, pages| {
            let (db, indexes) = builders[projection.name()].clone();
            async move {
                let started = std::time::Instant::now();
                let mut tx = ViewTx::new(db.begin().await?);
                let (replayed, _) =
                    replay(&mut tx, std::slice::from_ref(&projection), pages).await?;
                tx.commit().await?;
                let replay_ms = started.elapsed().as_millis() as u64;
                let Db::Sqlite(pool) = &db else {
                    unreachable!("a part file is SQLite");
                };
                for index in &indexes {
                    pool.execute(index.sql).await?;
                }
                tracing::debug!(
                    projection = projection.name(),
                    replay_ms,
                    indexed_ms = started.elapsed().as_millis() as u64 - replay_ms,
                    "a rebuild's part replayed and indexed"
                );
                Ok(replayed)
            }
        })
        .await?;
    let merged = std::time::Instant::now();
    let size = |part: &Scratch| std::fs::metadata(&part.path).map_or(0, |m| m.len());
    let largest = projections
        .iter()
        .max_by_key(|projection| size(&parts[projection.name()]))
        .expect("a rebuild of every projection has projections");
    let base = parts
        .remove(largest.name())
        .expect("every projection has a part");
    let mut views = base.pool().acquire().await?;
    for statement in views_file::statements() {
        if !largest.tables().contains(&statement.table) {
            views.execute(statement.sql).await?;
        }
    }
    for projection in projections {
        let Some(part) = parts.get(projection.name()) else {
            continue;
        };
        part.pool().close().await;
        sqlx::query("ATTACH DATABASE ? AS part")
            .bind(part.path.to_string_lossy().into_owned())
            .execute(&mut *views)
            .await?;
        views.execute("BEGIN").await?;
        for table in projection.tables() {
            views
                .execute(
                    format!("INSERT INTO main.\"{table}\" SELECT * FROM part.\"{table}\"").as_str(),
                )
                .await?;
        }
        views.execute("COMMIT").await?;
        views.execute("DETACH DATABASE part").await?;
    }
    drop(views);
    tracing::info!(
        merge_ms = merged.elapsed().as_millis() as u64,
        views = largest.name(),
        "each projection's part moved into the largest, the new views file"
    );
    Ok((base, (replayed, (replayed > 0).then_some(reached))))
}

/// A rebuild of every projection: the scratch file, indexed already (`in_parts`), is written
/// out (no lock held), then, under the views file's write lock, takes the last events and the
/// checkpoints, and becomes the views file. Returns how many events it took under the lock,
/// and how long it held it.
async fn switch(
    views: &ViewsFile,
    mut scratch: Scratch,
    tail: &Tail<'_>,
    position: Position,
) -> Result<(u64, std::time::Duration), ProjectionError> {
    let started = std::time::Instant::now();
    scratch.write_out().await?;
    tracing::info!(
        written_out_ms = started.elapsed().as_millis() as u64,
        "rebuilt views on disk"
    );
    // No one else writes the views while this is held; commands go on writing the log.
    let (lock, _turn) = crate::db::begin_sqlite_write(tail.pool(), Writes::Views).await?;
    let locked = std::time::Instant::now();
    let mut tx = ViewTx::new(scratch.db.begin().await?);
    let (more, position) = tail.apply(&mut tx, position).await?;
    let DbTx::Sqlite(conn, _) = tx.db().await? else {
        unreachable!("the scratch database is SQLite");
    };
    for projection in tail.projections {
        sqlx::query(
            "INSERT INTO main.projection_checkpoints (projection, transaction_id, global_position) \
             VALUES ($1, $2, $3)",
        )
        .bind(projection.name())
        .bind(position.transaction)
        .bind(position.global)
        .execute(&mut **conn)
        .await?;
    }
    tx.commit().await?;
    scratch.close().await?;
    let old = views
        .switch_to(&scratch.path)
        .map_err(|e| ProjectionError::Db(sqlx::Error::Io(e)))?;
    scratch.kept = true;
    lock.rollback().await?;
    let held = locked.elapsed();
    // Connections still reading the old file keep it open until they are done (on Linux a
    // removed file stays readable to whoever has it open); none will write to it again.
    views_file::remove_files(&old);
    Ok((more, held))
}

/// A rebuild of some projections: under one write transaction on the scratch file, the
/// store and the views file, the last events into the scratch tables, then their rows copied
/// into the views file's tables, their indexes made again, the checkpoints moved. Returns how
/// many events it took under the lock, and how long it held it.
async fn copy(
    views: &ViewsFile,
    scratch: &Scratch,
    tables: &[&str],
    deferred: &[Statement],
    tail: &Tail<'_>,
    position: Position,
) -> Result<(u64, std::time::Duration), ProjectionError> {
    let _turn = crate::write_turn::wait(tail.pool(), Writes::Views, SQLITE_BUSY_TIMEOUT).await?;
    let locked = std::time::Instant::now();
    // The views file's lock only (`BEGIN IMMEDIATE` would take the log's too, as attached
    // here): a deferred transaction whose first statement writes the views file.
    let mut swap = scratch.pool().begin().await?;
    swap.execute("DELETE FROM views.projection_checkpoints WHERE 0")
        .await?;
    let mut swap = ViewTx::new(DbTx::Sqlite(swap, None));
    let attached: Option<String> =
        sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'views'")
            .fetch_optional(&mut **swap_conn(&mut swap).await?)
            .await?;
    let current = views.current();
    if attached.map(PathBuf::from) != Some(current.canonicalize().unwrap_or(current)) {
        return Err(ProjectionError::Decode(
            "the views file was switched by another rebuild meanwhile; run this one again".into(),
        ));
    }
    let (more, position) = tail.apply(&mut swap, position).await?;
    let copy = swap_conn(&mut swap).await?;
    for index in deferred {
        copy.execute(format!("DROP INDEX views.\"{}\"", index_name(index.sql)).as_str())
            .await?;
    }
    for table in tables {
        copy.execute(format!("DELETE FROM views.\"{table}\"").as_str())
            .await?;
        copy.execute(
            format!("INSERT INTO views.\"{table}\" SELECT * FROM main.\"{table}\"").as_str(),
        )
        .await?;
    }
    for index in deferred {
        copy.execute(in_schema(index.sql, "views").as_str()).await?;
    }
    if position != Position::default() {
        for projection in tail.projections {
            sqlx::query(
                "UPDATE views.projection_checkpoints SET transaction_id = $1, \
                 global_position = $2 WHERE projection = $3",
            )
            .bind(position.transaction)
            .bind(position.global)
            .bind(projection.name())
            .execute(&mut **copy)
            .await?;
        }
    }
    swap.commit().await?;
    Ok((more, locked.elapsed()))
}

/// The connection behind a scratch transaction, every deferred row written.
async fn swap_conn(
    tx: &mut ViewTx,
) -> Result<&mut sqlx::Transaction<'static, sqlx::Sqlite>, ProjectionError> {
    match tx.db().await? {
        DbTx::Sqlite(conn, _) => Ok(conn),
        DbTx::Postgres(_) => unreachable!("the scratch database is SQLite"),
    }
}

/// The events committed after the replay's last one, which a rebuild applies twice: once
/// without any lock (most of them), then under the views file's write lock (the last few).
struct Tail<'a> {
    store: &'a Db,
    projections: &'a [Arc<dyn Projection>],
    page: i64,
    progress: &'a Progress,
}

impl Tail<'_> {
    /// The store's pool, whose write turns the last step takes.
    fn pool(&self) -> &SqlitePool {
        let Db::Sqlite(pool) = self.store else {
            unreachable!("the SQLite rebuild");
        };
        pool
    }

    /// Applies the events after `position` to the scratch views in `tx`, page by page, up to
    /// the end of the log as it is now. Returns how many there were and the last one's
    /// position.
    async fn apply(
        &self,
        tx: &mut ViewTx,
        mut position: Position,
    ) -> Result<(u64, Position), ProjectionError> {
        let mut count = 0;
        loop {
            let events = {
                let mut read = self.store.begin().await?;
                event_log::read_after(&mut read, position, self.page).await?
            };
            let Some(last) = events.last().map(|e| e.position) else {
                return Ok((count, position));
            };
            for event in &events {
                for projection in self.projections {
                    projection.apply(tx, event).await?;
                }
            }
            tx.forget_grants();
            self.progress.read(events.len(), last.global);
            count += events.len() as u64;
            position = last;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{in_schema, index_name};

    #[test]
    fn indexes_are_made_on_the_attached_files_tables() {
        assert_eq!(
            in_schema(
                "CREATE INDEX grant_view_user ON grant_view (username)",
                "views"
            ),
            "CREATE INDEX views.grant_view_user ON grant_view (username)"
        );
        assert_eq!(
            in_schema("create index if not exists \"a b\" ON t (c)", "views"),
            "create index if not exists views.\"a b\" ON t (c)"
        );
        assert_eq!(index_name("CREATE INDEX a_b ON t (c)"), "a_b");
    }
}
