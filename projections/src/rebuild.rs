//! The tables a rebuild writes into, and their secondary indexes built once at the end.
//!
//! Maintaining a view's secondary indexes row by row is most of a rebuild's cost (measured on
//! Postgres with a million grants: 14 index entries per token, each a random B-tree insert),
//! while building an index over a full table is one sort. So a rebuild replays the log into
//! tables that keep only their unique indexes (the projections look rows up and upsert by
//! them), then creates the other indexes, all in the rebuild's one transaction:
//!
//! - **SQLite**: the secondary indexes are dropped and created again. Readers in WAL mode keep
//!   reading the old snapshot until the commit; the one writer is the rebuild anyway.
//! - **Postgres**: dropping an index would lock readers out for the whole rebuild, so the
//!   rebuild writes into new tables in a schema of its own, put first on the transaction's
//!   `search_path` so the projections' unqualified SQL lands there. At the end the old tables
//!   are dropped and the new ones moved in: readers see the old views until that commit and
//!   wait only for the swap.
//!
//! Either way the indexes come back with their names and definitions as the migrations made
//! them, read from the catalog rather than repeated here. On Postgres the new tables also get
//! the old tables' privileges; triggers or row-level policies an operator added to a view
//! table by hand are not carried over.

use sqlx::Row;

use crate::db::DbTx;

/// What [`finish`] has to do after the replay.
pub(crate) struct Scratch {
    /// `CREATE INDEX` statements of the secondary indexes, as the catalog gave them.
    deferred_indexes: Vec<String>,
    /// Postgres: the schema the new tables were built in, the schema they go to, its tables.
    swap: Option<Swap>,
}

struct Swap {
    scratch_schema: String,
    home_schema: String,
    tables: Vec<String>,
    search_path: String,
}

/// Empties `tables` for the replay (see the module documentation for how).
pub(crate) async fn prepare(tx: &mut DbTx, tables: &[&str]) -> Result<Scratch, sqlx::Error> {
    match tx {
        DbTx::Sqlite(tx) => {
            let mut deferred_indexes = Vec::new();
            for table in tables {
                let indexes = sqlx::query(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? \
                     AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%'",
                )
                .bind(table)
                .fetch_all(&mut **tx)
                .await?;
                for index in indexes {
                    let name: String = index.get("name");
                    sqlx::query(&format!("DROP INDEX \"{name}\""))
                        .execute(&mut **tx)
                        .await?;
                    deferred_indexes.push(index.get("sql"));
                }
                sqlx::query(&format!("DELETE FROM {table}"))
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(Scratch {
                deferred_indexes,
                swap: None,
            })
        }
        DbTx::Postgres(tx) => {
            let home_schema: String = sqlx::query_scalar("SELECT current_schema()")
                .fetch_one(&mut **tx)
                .await?;
            let search_path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
                .fetch_one(&mut **tx)
                .await?;
            // Unique per transaction, so concurrent rebuilds of different projections never
            // meet; rolled back with everything else if the rebuild fails.
            let scratch_schema: String =
                sqlx::query_scalar("SELECT 'authledger_rebuild_' || pg_current_xact_id()::text")
                    .fetch_one(&mut **tx)
                    .await?;
            sqlx::query(&format!("CREATE SCHEMA {scratch_schema}"))
                .execute(&mut **tx)
                .await?;
            let mut deferred_indexes = Vec::new();
            for table in tables {
                sqlx::query(&format!(
                    "CREATE TABLE {scratch_schema}.{table} (LIKE {home}.{table} INCLUDING ALL)",
                    home = quote(&home_schema),
                ))
                .execute(&mut **tx)
                .await?;
                // LIKE copies no privileges: grant the new table what the old one had (a
                // reporting role's SELECT on the audit log, say), so the swap takes none away.
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
                .bind(&home_schema)
                .bind(format!("{scratch_schema}.{table}"))
                .fetch_all(&mut **tx)
                .await?;
                for grant in grants {
                    sqlx::query(&grant).execute(&mut **tx).await?;
                }
                // LIKE copied every index under a generated name: keep the unique ones, drop
                // the rest and recreate them later from the originals' definitions.
                for copy in secondary_indexes(tx, &scratch_schema, table).await? {
                    sqlx::query(&format!(
                        "DROP INDEX {scratch_schema}.{}",
                        quote(&copy.name)
                    ))
                    .execute(&mut **tx)
                    .await?;
                }
                let originals = secondary_indexes(tx, &home_schema, table).await?;
                for original in originals {
                    let scratch_target = format!(" ON {scratch_schema}.{} ", quote(table));
                    if !original.definition.contains(&original.target) {
                        return Err(sqlx::Error::Protocol(format!(
                            "unexpected index definition on {table}: {}",
                            original.definition
                        )));
                    }
                    deferred_indexes.push(original.definition.replacen(
                        &original.target,
                        &scratch_target,
                        1,
                    ));
                }
            }
            sqlx::query(&format!(
                "SELECT set_config('search_path', '{scratch_schema}, ' || $1, true)"
            ))
            .bind(&search_path)
            .execute(&mut **tx)
            .await?;
            Ok(Scratch {
                deferred_indexes,
                swap: Some(Swap {
                    scratch_schema,
                    home_schema,
                    tables: tables.iter().map(|t| (*t).to_owned()).collect(),
                    search_path,
                }),
            })
        }
    }
}

/// Builds the deferred indexes and, on Postgres, puts the new tables in place of the old.
pub(crate) async fn finish(tx: &mut DbTx, scratch: Scratch) -> Result<(), sqlx::Error> {
    if let DbTx::Postgres(tx) = tx {
        // Index builds sort; the default 64 MB spills a million-row sort to disk.
        sqlx::query("SET LOCAL maintenance_work_mem = '256MB'")
            .execute(&mut **tx)
            .await?;
    }
    for statement in &scratch.deferred_indexes {
        crate::on_tx!(&mut *tx, conn => sqlx::query(statement).execute(conn).await.map(drop))?;
    }
    let (DbTx::Postgres(tx), Some(swap)) = (tx, scratch.swap) else {
        return Ok(());
    };
    let home = quote(&swap.home_schema);
    for table in &swap.tables {
        sqlx::query(&format!("DROP TABLE {home}.{table}"))
            .execute(&mut **tx)
            .await?;
        sqlx::query(&format!(
            "ALTER TABLE {}.{table} SET SCHEMA {home}",
            swap.scratch_schema
        ))
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query("SELECT set_config('search_path', $1, true)")
        .bind(&swap.search_path)
        .execute(&mut **tx)
        .await?;
    sqlx::query(&format!("DROP SCHEMA {}", swap.scratch_schema))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A non-unique index of a Postgres table: its name, its `CREATE INDEX` statement, and the
/// ` ON schema.table ` part of that statement.
struct SecondaryIndex {
    name: String,
    definition: String,
    target: String,
}

async fn secondary_indexes(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
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
