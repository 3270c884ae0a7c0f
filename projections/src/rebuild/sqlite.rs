//! The SQLite rebuild: one transaction, since SQLite has one writer (see the module
//! documentation in `mod.rs`).

use std::sync::Arc;

use sqlx::Row;

use super::{read_ahead, replay, Progress};
use crate::batch::ViewTx;
use crate::checkpoint;
use crate::db::{Db, DbTx};
use crate::ledger::segments::Archive;
use crate::{Projection, ProjectionError};

/// SQLite: the whole rebuild of `projections` in one transaction (see the module
/// documentation). Returns how many events were replayed.
pub(crate) async fn in_one_transaction(
    db: &Db,
    projections: &[Arc<dyn Projection>],
    page: i64,
    archive: Option<Archive>,
    progress: Arc<Progress>,
) -> Result<u64, ProjectionError> {
    let mut tx = ViewTx::new(db.begin_write().await?);
    for projection in projections {
        checkpoint::lock(tx.db().await?, projection.name()).await?;
    }
    let DbTx::Sqlite(sqlite, _) = tx.db().await? else {
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
    let (replayed, position) = replay(
        &mut tx,
        projections,
        read_ahead(db, page, archive, progress),
    )
    .await?;
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
