//! Checkpoints: how far each reader of the log (every projection, and the cascade reactor)
//! has read, one row each in `projection_checkpoints`.
//!
//! A projection's checkpoint is kept beside its views, so that rows and how far they are built
//! commit (and, on SQLite, switch) together: on SQLite in the views file (`views_file.rs`), as
//! `views.projection_checkpoints`. The readers that act on the log (the ledger's linker, the
//! cascade and back-channel reactors) keep theirs in the log's own `projection_checkpoints`,
//! beside what they did, and a rebuild of the views never moves them.

use crate::db::{Db, DbTx, StoreKind, Writes};
use crate::error::ProjectionError;
use crate::event_log::Position;
use crate::{on_db, on_tx};

/// The table of the projections' checkpoints (see the module documentation).
pub(crate) fn of_views(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Sqlite => "views.projection_checkpoints",
        StoreKind::Postgres => "projection_checkpoints",
    }
}

/// Adds projection `name`'s row, at the start of the log, unless it exists.
pub async fn register_view(db: &Db, name: &str) -> Result<(), ProjectionError> {
    let sql = format!(
        "INSERT INTO {} (projection, transaction_id, global_position) \
         VALUES ($1, 0, 0) ON CONFLICT (projection) DO NOTHING",
        of_views(db.kind())
    );
    on_db!(db, pool => sqlx::query(&sql).bind(name).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Adds reader `name`'s row, at the start of the log, unless it exists.
pub async fn register(db: &Db, name: &str) -> Result<(), ProjectionError> {
    let sql = "INSERT INTO projection_checkpoints (projection, transaction_id, global_position) \
               VALUES ($1, 0, 0) ON CONFLICT (projection) DO NOTHING";
    on_db!(db, pool => sqlx::query(sql).bind(name).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}

const SELECT: &str = "SELECT transaction_id, global_position FROM projection_checkpoints \
                      WHERE projection = $1";

/// [`SELECT`] for a projection or a reader alike: on SQLite their rows are in two files.
fn select_any(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Sqlite => {
            "SELECT transaction_id, global_position FROM views.projection_checkpoints \
             WHERE projection = $1 UNION ALL \
             SELECT transaction_id, global_position FROM main.projection_checkpoints \
             WHERE projection = $1"
        }
        StoreKind::Postgres => SELECT,
    }
}

fn position((transaction, global): (i64, i64)) -> Position {
    Position {
        transaction,
        global,
    }
}

/// `name`'s checkpoint, without locking it: for a reader whose work is idempotent and is
/// done through commands on other connections while it reads (the cascade reactor), which a
/// held lock would block on SQLite.
pub async fn read(db: &Db, name: &str) -> Result<Position, ProjectionError> {
    let row =
        on_db!(db, pool => sqlx::query_as(select_any(db.kind())).bind(name).fetch_one(pool).await)?;
    Ok(position(row))
}

/// `name`'s checkpoint as `tx` sees it, without locking it: for a reader that reads ahead in
/// one snapshot and checks the checkpoint again under its lock (the ledger's linker).
pub async fn read_in(tx: &mut DbTx, name: &str) -> Result<Position, ProjectionError> {
    let kind = match tx {
        DbTx::Sqlite(..) => StoreKind::Sqlite,
        DbTx::Postgres(_) => StoreKind::Postgres,
    };
    let row =
        on_tx!(tx, conn => sqlx::query_as(select_any(kind)).bind(name).fetch_one(conn).await)?;
    Ok(position(row))
}

/// Registers a reader that starts at the end of the log as it is now: a reactor added to a
/// store with history must not act on events from before it existed.
pub async fn register_at_end(db: &Db, name: &str) -> Result<(), ProjectionError> {
    let end = crate::event_log::last_position(db)
        .await?
        .unwrap_or_default();
    let sql = "INSERT INTO projection_checkpoints (projection, transaction_id, global_position) \
               VALUES ($1, $2, $3) ON CONFLICT (projection) DO NOTHING";
    on_db!(db, pool => sqlx::query(sql)
        .bind(name)
        .bind(end.transaction)
        .bind(end.global)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Every reader's name and the global position it has read to, by name.
pub async fn all(db: &Db) -> Result<Vec<(String, i64)>, ProjectionError> {
    let sql = match db.kind() {
        StoreKind::Sqlite => {
            "SELECT projection, global_position FROM views.projection_checkpoints UNION ALL \
             SELECT projection, global_position FROM main.projection_checkpoints ORDER BY projection"
        }
        StoreKind::Postgres => {
            "SELECT projection, global_position FROM projection_checkpoints ORDER BY projection"
        }
    };
    Ok(on_db!(db, pool => sqlx::query_as(sql).fetch_all(pool).await)?)
}

/// Takes the checkpoint row's lock before reading it: a row lock on Postgres, the write lock
/// on SQLite. Two runners (two server instances, or the server and a CLI command) thus never
/// apply the same batch twice.
pub async fn lock(tx: &mut DbTx, name: &str) -> Result<Position, ProjectionError> {
    let touch = "UPDATE projection_checkpoints SET projection = projection WHERE projection = $1";
    on_tx!(tx, conn => sqlx::query(touch).bind(name).execute(conn).await.map(|r| r.rows_affected()))?;
    let row = on_tx!(tx, conn => sqlx::query_as(SELECT).bind(name).fetch_one(conn).await)?;
    Ok(position(row))
}

/// [`lock`] for each of `names`, in that order. On SQLite, in a transaction begun with
/// [`Db::begin_write`](crate::db::Db::begin_write), the write lock is held already: one
/// statement reads them all (a statement per checkpoint, two each, cost the projector a tenth
/// of its time under the lock, every writer of the process waiting).
pub async fn lock_all(tx: &mut DbTx, names: &[&str]) -> Result<Vec<Position>, ProjectionError> {
    if let DbTx::Sqlite(conn, _) = tx {
        let sql = "SELECT projection, transaction_id, global_position \
                   FROM views.projection_checkpoints \
                   WHERE projection IN (SELECT value FROM json_each($1))";
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(sql)
            .bind(serde_json::to_string(names).map_err(|e| ProjectionError::Decode(e.to_string()))?)
            .fetch_all(&mut **conn)
            .await?;
        return names
            .iter()
            .map(|name| {
                rows.iter()
                    .find(|(found, _, _)| found == name)
                    .map(|(_, transaction, global)| position((*transaction, *global)))
                    .ok_or_else(|| ProjectionError::Decode(format!("no checkpoint named {name}")))
            })
            .collect();
    }
    let mut positions = Vec::with_capacity(names.len());
    for name in names {
        positions.push(lock(tx, name).await?);
    }
    Ok(positions)
}

/// [`save`] for each `(name, position)`; on SQLite one statement for all that move to the
/// same position (all of them, as a rule).
pub async fn save_all(tx: &mut DbTx, moves: &[(&str, Position)]) -> Result<(), ProjectionError> {
    if let DbTx::Sqlite(conn, _) = tx {
        let mut positions: Vec<Position> = moves.iter().map(|(_, p)| *p).collect();
        positions.dedup();
        let sql = "UPDATE views.projection_checkpoints \
                   SET transaction_id = $1, global_position = $2 \
                   WHERE projection IN (SELECT value FROM json_each($3))";
        for at in positions {
            let names: Vec<&str> = moves
                .iter()
                .filter(|(_, p)| *p == at)
                .map(|(n, _)| *n)
                .collect();
            sqlx::query(sql)
                .bind(at.transaction)
                .bind(at.global)
                .bind(
                    serde_json::to_string(&names)
                        .map_err(|e| ProjectionError::Decode(e.to_string()))?,
                )
                .execute(&mut **conn)
                .await?;
        }
        return Ok(());
    }
    for (name, position) in moves {
        save(tx, name, *position).await?;
    }
    Ok(())
}

/// Moves `name`'s checkpoint: binds the transaction id, the global position and the name.
pub(crate) const SAVE: &str = "UPDATE projection_checkpoints SET transaction_id = $1, \
                               global_position = $2 WHERE projection = $3";

pub async fn save(tx: &mut DbTx, name: &str, position: Position) -> Result<(), ProjectionError> {
    on_tx!(tx, conn => sqlx::query(SAVE)
        .bind(position.transaction)
        .bind(position.global)
        .bind(name)
        .execute(conn)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Moves reader `name`'s checkpoint to `position` in a transaction of its own, which on
/// SQLite takes only the log's file's write lock (a reader's checkpoint is kept there).
pub async fn save_reader(db: &Db, name: &str, position: Position) -> Result<(), ProjectionError> {
    let mut tx = db.begin_write_to(Writes::Log).await?;
    save(&mut tx, name, position).await?;
    tx.commit().await?;
    Ok(())
}

/// The global position of the checkpoint furthest behind, if any reader has one.
pub async fn slowest(db: &Db) -> Result<Option<i64>, ProjectionError> {
    let sql = match db.kind() {
        StoreKind::Sqlite => {
            "SELECT MIN(global_position) FROM (SELECT global_position FROM views.projection_checkpoints \
             UNION ALL SELECT global_position FROM main.projection_checkpoints)"
        }
        StoreKind::Postgres => "SELECT MIN(global_position) FROM projection_checkpoints",
    };
    Ok(on_db!(db, pool => sqlx::query_scalar(sql).fetch_one(pool).await)?)
}
