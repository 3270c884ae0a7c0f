//! The Postgres rebuild: new views built side by side with the live ones, then swapped in
//! (see the module documentation in `mod.rs`).

use std::sync::Arc;

use sqlx::{PgPool, Postgres, Row, Transaction};

use super::{read_ahead, side_by_side_replay, Pages, Progress};
use crate::batch::ViewTx;
use crate::checkpoint;
use crate::db::{Db, DbTx};
use crate::event_log::{self, Position};
use crate::ledger::segments::Archive;
use crate::{Projection, ProjectionError};

/// Index builds sort; Postgres' default 64 MB spills a million-row sort to disk.
const INDEX_BUILD_MEMORY: &str = "256MB";

/// Postgres: the new views built next to the old ones, one connection per projection, then
/// swapped in (see the module documentation). Returns how many events were replayed.
pub(crate) async fn side_by_side(
    db: &Db,
    pool: &PgPool,
    projections: &[Arc<dyn Projection>],
    page: i64,
    archive: Option<Archive>,
    progress: Arc<Progress>,
) -> Result<u64, ProjectionError> {
    let turn = RebuildTurn::take(pool).await?;
    let built = build_in_scratch(
        db,
        pool,
        &turn.scratch,
        projections,
        page,
        archive,
        progress,
    )
    .await;
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
    archive: Option<Archive>,
    progress: Arc<Progress>,
) -> Result<(u64, Position), ProjectionError> {
    let pages = read_ahead(db, page, archive, progress);
    let (pool, scratch) = (pool.clone(), scratch.clone());
    side_by_side_replay(pages, projections, move |projection, pages| {
        let (pool, scratch) = (pool.clone(), scratch.clone());
        async move { build_one(&pool, &scratch, projection, pages).await }
    })
    .await
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
