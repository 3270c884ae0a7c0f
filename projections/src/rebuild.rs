//! `projections rebuild`: replaying the whole log into fresh views, then putting them in place.
//!
//! Two costs dominate a rebuild, and both are avoided the same way on both stores:
//! - Maintaining a view's secondary indexes row by row (measured on Postgres with a million
//!   grants: 14 index entries per token, each a random B-tree insert), while building an index
//!   over a full table is one sort. So the replay writes into tables that keep only their
//!   unique indexes (the projections look rows up and upsert by them) and the other indexes
//!   are created at the end, with the names and definitions the migrations gave them, read
//!   from the catalog rather than repeated here.
//! - Reading and decoding the log: the next page is read on a connection of its own while the
//!   current one is applied.
//!
//! **SQLite** ([`in_one_transaction`]) has one writer, so the rebuild is one transaction: the
//! secondary indexes are dropped, the tables emptied and refilled, the indexes created again
//! and the checkpoints set, in one commit. Readers in WAL mode keep reading the old snapshot
//! until then; other writers wait.
//!
//! **Postgres** ([`side_by_side`]) builds the new views next to the old ones, in a schema of
//! its own, while the server keeps serving and projecting into the old ones:
//! 1. an advisory lock makes rebuilds take turns, and schemas a crashed rebuild left behind
//!    are dropped;
//! 2. each projection is replayed on a connection of its own, into copies of its tables in the
//!    scratch schema (put first on the `search_path` of each of its transactions, so the
//!    projections' unqualified SQL lands there), a transaction per page of the log, and its
//!    indexes are built at the end. The log is read once and every page handed to each
//!    projection, so the backends writing different views work in parallel (one backend
//!    writing every view was the bottleneck: measured, it was busy 70% of the time and the
//!    rest of the machine idle);
//! 3. one short transaction then locks the checkpoints (waiting for a live projector's batch
//!    in flight), replays onto the new tables whatever was committed during the build, drops
//!    the old tables, moves the new ones in and moves the checkpoints. Readers see the old
//!    views until that commit, wait only for the swap, and never see a checkpoint move back.
//!
//! The new tables get the old tables' privileges (a reporting role's `SELECT` on the audit
//! log); triggers or row-level policies an operator added to a view table by hand are not
//! carried over. If anything fails, the scratch schema is dropped and the old views stay.

use std::sync::Arc;

use sqlx::{PgPool, Postgres, Row, Transaction};
use tokio::sync::mpsc;

use crate::batch::ViewTx;
use crate::checkpoint;
use crate::db::{Db, DbTx};
use crate::event_log::{self, Position, StoredEvent};
use crate::{Projection, ProjectionError};

/// Index builds sort; Postgres' default 64 MB spills a million-row sort to disk.
const INDEX_BUILD_MEMORY: &str = "256MB";

/// A page of the log as the reader hands it to every projection being rebuilt; an empty page
/// is the end of the log. A channel that closes before it means the reading stopped.
type Page = Arc<Vec<StoredEvent>>;
type Pages = mpsc::Receiver<Result<Page, ProjectionError>>;

/// SQLite: the whole rebuild of `projections` in one transaction (see the module
/// documentation). Returns how many events were replayed.
pub(crate) async fn in_one_transaction(
    db: &Db,
    projections: &[Arc<dyn Projection>],
    page: i64,
) -> Result<u64, ProjectionError> {
    let mut tx = ViewTx::new(db.begin().await?);
    for projection in projections {
        checkpoint::lock(tx.db().await?, projection.name()).await?;
    }
    let DbTx::Sqlite(sqlite) = tx.db().await? else {
        unreachable!("in_one_transaction is the SQLite rebuild");
    };
    let mut deferred_indexes: Vec<String> = Vec::new();
    for table in projections.iter().flat_map(|p| p.tables()) {
        let indexes = sqlx::query(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? \
             AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%'",
        )
        .bind(table)
        .fetch_all(&mut **sqlite)
        .await?;
        for index in indexes {
            let name: String = index.get("name");
            sqlx::query(&format!("DROP INDEX \"{name}\""))
                .execute(&mut **sqlite)
                .await?;
            deferred_indexes.push(index.get("sql"));
        }
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut **sqlite)
            .await?;
    }
    let (replayed, position) = replay(&mut tx, projections, read_ahead(db, page)).await?;
    tx.flush().await?;
    for statement in &deferred_indexes {
        crate::on_tx!(tx.db().await?, conn => sqlx::query(statement).execute(conn).await.map(drop))?;
    }
    if let Some(position) = position {
        for projection in projections {
            checkpoint::save(tx.db().await?, projection.name(), position).await?;
        }
    }
    tx.commit().await?;
    Ok(replayed)
}

/// Postgres: the new views built next to the old ones, one connection per projection, then
/// swapped in (see the module documentation). Returns how many events were replayed.
pub(crate) async fn side_by_side(
    db: &Db,
    pool: &PgPool,
    projections: &[Arc<dyn Projection>],
    page: i64,
) -> Result<u64, ProjectionError> {
    let turn = RebuildTurn::take(pool).await?;
    let built = build_in_scratch(db, pool, &turn.scratch, projections, page).await;
    let swapped = match built {
        Ok((replayed, reached)) => swap_in(db, &turn.scratch, projections, reached)
            .await
            .map(|()| replayed),
        Err(error) => Err(error),
    };
    // Empty after a swap; after a failure, whatever was built goes. If that fails too, the
    // next rebuild drops what is left, and closing the connection ends the turn.
    if let Err(error) = turn.end().await {
        tracing::warn!(%error, "could not drop the rebuild's scratch schema");
    }
    swapped
}

/// Replays the log into each projection's tables in `scratch`, one connection per projection,
/// every page of the log read once and handed to all of them. Returns how many events were
/// replayed and the last one's position.
async fn build_in_scratch(
    db: &Db,
    pool: &PgPool,
    scratch: &Scratch,
    projections: &[Arc<dyn Projection>],
    page: i64,
) -> Result<(u64, Position), ProjectionError> {
    let mut pages = read_ahead(db, page);
    let mut feeds = Vec::new();
    let mut builders = tokio::task::JoinSet::new();
    for projection in projections {
        let (feed, pages) = mpsc::channel(2);
        feeds.push(feed);
        let (pool, scratch, projection) = (pool.clone(), scratch.clone(), projection.clone());
        builders.spawn(async move { build_one(&pool, &scratch, projection, pages).await });
    }
    // The reader's pages, to every builder. A builder that stopped has failed: its error is
    // what the join below reports, and dropping the feeds stops the others.
    let fan_out = async move {
        let mut reached = Position::default();
        while let Some(page) = pages.recv().await {
            let page = page?;
            if let Some(last) = page.last() {
                reached = last.position;
            }
            for feed in &feeds {
                if feed.send(Ok(page.clone())).await.is_err() {
                    return Ok(reached);
                }
            }
            if page.is_empty() {
                break;
            }
        }
        Ok::<Position, ProjectionError>(reached)
    };
    let read = fan_out.await;
    let mut replayed = 0;
    let mut failure = None;
    let reached = read.unwrap_or_else(|error| {
        failure = Some(error);
        Position::default()
    });
    while let Some(built) = builders.join_next().await {
        match built {
            Ok(Ok(events)) => replayed = events,
            // A builder that failed is the cause; the others stopped because of it.
            Ok(Err(error)) => {
                if matches!(failure, None | Some(ProjectionError::RebuildStopped)) {
                    failure = Some(error);
                }
                builders.abort_all();
            }
            Err(join) if join.is_cancelled() => {}
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }
    match failure {
        Some(error) => Err(error),
        None => Ok((replayed, reached)),
    }
}

/// One projection's new tables: created in the scratch schema, filled from every page of the
/// log, indexed. Returns how many events it was given.
///
/// Each page is its own transaction. Nobody else reads the scratch schema, and a failed
/// rebuild drops it whole, so nothing needs the build to be one transaction, while one long
/// transaction would hold back the horizon under which every reader of the log reads (see
/// `event_log.rs`): the server's views would stop following the log until the build ended.
async fn build_one(
    pool: &PgPool,
    scratch: &Scratch,
    projection: Arc<dyn Projection>,
    mut pages: Pages,
) -> Result<u64, ProjectionError> {
    let mut tx = pool.begin().await?;
    let deferred_indexes = create_scratch_tables(&mut tx, scratch, projection.tables()).await?;
    tx.commit().await?;
    let mut replayed = 0;
    loop {
        let events = pages
            .recv()
            .await
            .ok_or(ProjectionError::RebuildStopped)??;
        if events.is_empty() {
            break;
        }
        let mut tx = pool.begin().await?;
        scratch.search_first(&mut tx).await?;
        let mut tx = ViewTx::new(DbTx::Postgres(tx));
        for event in events.iter() {
            projection.apply(&mut tx, event).await?;
        }
        tx.commit().await?;
        replayed += events.len() as u64;
    }
    let mut tx = pool.begin().await?;
    sqlx::query(&format!(
        "SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'"
    ))
    .execute(&mut *tx)
    .await?;
    for statement in &deferred_indexes {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(replayed)
}

/// Creates copies of `tables` in the scratch schema, with their unique indexes and the
/// originals' privileges; returns the `CREATE INDEX` statements of the originals' other
/// indexes, aimed at the copies.
async fn create_scratch_tables(
    tx: &mut Transaction<'static, Postgres>,
    scratch: &Scratch,
    tables: &[&str],
) -> Result<Vec<String>, ProjectionError> {
    let schema = &scratch.schema;
    let home = quote(&scratch.home_schema);
    let mut deferred_indexes = Vec::new();
    for table in tables {
        sqlx::query(&format!(
            "CREATE TABLE {schema}.{table} (LIKE {home}.{table} INCLUDING ALL)"
        ))
        .execute(&mut **tx)
        .await?;
        // LIKE copies no privileges: grant the new table what the old one had (a reporting
        // role's SELECT on the audit log, say), so the swap takes none away.
        let grants: Vec<String> = sqlx::query_scalar(
            "SELECT 'GRANT ' || a.privilege_type || ' ON ' || $3 || ' TO ' || \
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END || \
                    CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END \
             FROM pg_class t CROSS JOIN LATERAL aclexplode(t.relacl) a \
             LEFT JOIN pg_roles r ON r.oid = a.grantee \
             WHERE t.relname = $1 AND t.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $2) \
             ORDER BY a.grantee, a.privilege_type",
        )
        .bind(table)
        .bind(&scratch.home_schema)
        .bind(format!("{schema}.{table}"))
        .fetch_all(&mut **tx)
        .await?;
        for grant in grants {
            sqlx::query(&grant).execute(&mut **tx).await?;
        }
        // LIKE copied every index under a generated name: keep the unique ones, drop the rest
        // and recreate them after the replay from the originals' definitions.
        for copy in secondary_indexes(tx, schema, table).await? {
            sqlx::query(&format!("DROP INDEX {schema}.{}", quote(&copy.name)))
                .execute(&mut **tx)
                .await?;
        }
        for original in secondary_indexes(tx, &scratch.home_schema, table).await? {
            if !original.definition.contains(&original.target) {
                return Err(ProjectionError::Db(sqlx::Error::Protocol(format!(
                    "unexpected index definition on {table}: {}",
                    original.definition
                ))));
            }
            let aimed = format!(" ON {schema}.{} ", quote(table));
            deferred_indexes.push(original.definition.replacen(&original.target, &aimed, 1));
        }
    }
    Ok(deferred_indexes)
}

/// The one transaction that puts the new views in place: lock the checkpoints, replay onto the
/// new tables what was committed since the build read the log, swap the tables, move the
/// checkpoints.
async fn swap_in(
    db: &Db,
    scratch: &Scratch,
    projections: &[Arc<dyn Projection>],
    built_to: Position,
) -> Result<(), ProjectionError> {
    let mut tx = ViewTx::new(db.begin().await?);
    let mut checkpoints = Vec::new();
    for projection in projections {
        checkpoints.push(checkpoint::lock(tx.db().await?, projection.name()).await?);
    }
    let DbTx::Postgres(pg) = tx.db().await? else {
        unreachable!("swap_in is the Postgres rebuild");
    };
    scratch.search_first(pg).await?;
    let mut position = built_to;
    loop {
        let events = event_log::read_after(tx.db().await?, position, TAIL_PAGE).await?;
        let Some(last) = events.last().map(|e| e.position) else {
            break;
        };
        for event in &events {
            for projection in projections {
                projection.apply(&mut tx, event).await?;
            }
        }
        position = last;
    }
    tx.flush().await?;
    let DbTx::Postgres(pg) = tx.db().await? else {
        unreachable!("swap_in is the Postgres rebuild");
    };
    let home = quote(&scratch.home_schema);
    for table in projections.iter().flat_map(|p| p.tables()) {
        sqlx::query(&format!("DROP TABLE {home}.{table}"))
            .execute(&mut **pg)
            .await?;
        sqlx::query(&format!(
            "ALTER TABLE {}.{table} SET SCHEMA {home}",
            scratch.schema
        ))
        .execute(&mut **pg)
        .await?;
    }
    scratch.search_home(pg).await?;
    for (projection, checkpoint) in projections.iter().zip(checkpoints) {
        checkpoint::save(tx.db().await?, projection.name(), position.max(checkpoint)).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Events per read of what was committed during the build.
const TAIL_PAGE: i64 = 500;

/// Where a Postgres rebuild builds, and where its tables go.
#[derive(Clone)]
struct Scratch {
    /// `authledger_rebuild_<backend pid of the lock holder>`.
    schema: String,
    home_schema: String,
    search_path: String,
}

impl Scratch {
    /// Puts the scratch schema first on this transaction's `search_path`.
    async fn search_first(
        &self,
        tx: &mut Transaction<'static, Postgres>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(&format!(
            "SELECT set_config('search_path', '{}, ' || $1, true)",
            self.schema
        ))
        .bind(&self.search_path)
        .execute(&mut **tx)
        .await
        .map(drop)
    }

    async fn search_home(
        &self,
        tx: &mut Transaction<'static, Postgres>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT set_config('search_path', $1, true)")
            .bind(&self.search_path)
            .execute(&mut **tx)
            .await
            .map(drop)
    }
}

/// Postgres: this process's turn to rebuild, held as a session advisory lock on a connection
/// of its own (taken out of the pool, so a crash or a dropped future closes it and ends the
/// turn), with the scratch schema it builds in.
struct RebuildTurn {
    connection: sqlx::PgConnection,
    scratch: Scratch,
}

/// The advisory lock key of the rebuild turn ("authledg").
const REBUILD_LOCK: i64 = 0x6175_7468_6c65_6467;

impl RebuildTurn {
    async fn take(pool: &PgPool) -> Result<RebuildTurn, ProjectionError> {
        let mut connection = pool.acquire().await?.detach();
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(REBUILD_LOCK)
            .execute(&mut connection)
            .await?;
        // Nobody else is rebuilding: any scratch schema left is a crashed rebuild's.
        let leftovers: Vec<String> = sqlx::query_scalar(
            "SELECT quote_ident(nspname) FROM pg_namespace WHERE nspname LIKE 'authledger\\_rebuild\\_%'",
        )
        .fetch_all(&mut connection)
        .await?;
        for schema in leftovers {
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&mut connection)
                .await?;
        }
        let (schema, home_schema, search_path): (String, String, String) = sqlx::query_as(
            "SELECT 'authledger_rebuild_' || pg_backend_pid(), current_schema(), current_setting('search_path')",
        )
        .fetch_one(&mut connection)
        .await?;
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut connection)
            .await?;
        Ok(RebuildTurn {
            connection,
            scratch: Scratch {
                schema,
                home_schema,
                search_path,
            },
        })
    }

    /// Drops the scratch schema with whatever is left in it and gives the turn up.
    async fn end(mut self) -> Result<(), ProjectionError> {
        sqlx::query(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            self.scratch.schema
        ))
        .execute(&mut self.connection)
        .await?;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(REBUILD_LOCK)
            .execute(&mut self.connection)
            .await?;
        Ok(())
    }
}

/// Applies every page to every projection; returns how many events there were and the last
/// one's position. The per-page memo of grants is cleared after each page, so a rebuild's
/// memory does not grow with the log.
async fn replay(
    tx: &mut ViewTx,
    projections: &[Arc<dyn Projection>],
    mut pages: Pages,
) -> Result<(u64, Option<Position>), ProjectionError> {
    let mut replayed = 0;
    let mut position = None;
    loop {
        let events = pages
            .recv()
            .await
            .ok_or(ProjectionError::RebuildStopped)??;
        let Some(last) = events.last().map(|e| e.position) else {
            break;
        };
        for event in events.iter() {
            for projection in projections {
                projection.apply(tx, event).await?;
            }
        }
        tx.forget_grants();
        replayed += events.len() as u64;
        position = Some(last);
    }
    Ok((replayed, position))
}

/// The log from the start, page by page, read on a connection of its own while the rebuild
/// applies the previous page: reading and decoding overlap with writing the views. An empty
/// page ends it. Any page is as valid as the rebuild transaction's own read would be: the log
/// only grows, and the rebuild's checkpoint is the last event it applied.
fn read_ahead(db: &Db, page: i64) -> Pages {
    let (pages, receiver) = mpsc::channel(2);
    let db = db.clone();
    tokio::spawn(async move {
        let mut position = Position::default();
        loop {
            let page = async {
                let mut tx = db.begin().await?;
                event_log::read_after(&mut tx, position, page).await
            }
            .await;
            let end = match &page {
                Ok(events) => match events.last() {
                    Some(last) => {
                        position = last.position;
                        false
                    }
                    None => true,
                },
                Err(_) => true,
            };
            // A closed channel means the rebuild stopped (failed): stop reading too.
            if pages.send(page.map(Arc::new)).await.is_err() || end {
                break;
            }
        }
    });
    receiver
}

/// A non-unique index of a Postgres table: its name, its `CREATE INDEX` statement, and the
/// ` ON schema.table ` part of that statement.
struct SecondaryIndex {
    name: String,
    definition: String,
    target: String,
}

async fn secondary_indexes(
    tx: &mut Transaction<'static, Postgres>,
    schema: &str,
    table: &str,
) -> Result<Vec<SecondaryIndex>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT i.relname::text AS name, pg_get_indexdef(x.indexrelid) AS definition, \
                ' ON ' || quote_ident($2) || '.' || quote_ident($1) || ' ' AS target \
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
         WHERE t.relname = $1 AND t.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $2) \
           AND NOT x.indisunique",
    )
    .bind(table)
    .bind(schema)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| SecondaryIndex {
            name: row.get("name"),
            definition: row.get("definition"),
            target: row.get("target"),
        })
        .collect())
}

/// A Postgres identifier, quoted.
fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}
