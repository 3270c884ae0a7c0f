//! The global event log, in commit order.
//!
//! Every event row has a global position. A reader that remembers "I have read up to P" must
//! never later find an event *before* P that it has not seen, or it skips that event forever.
//!
//! - **SQLite** serialises writers, and a trigger numbers each event from a counter inside the
//!   writing transaction, so position order is commit order.
//! - **Postgres** allocates `bigserial` values before commit: transaction A can take 10, B take
//!   11 and commit first, and a reader that sees 11 and moves on misses 10 when A commits. So
//!   each row also records its writer's transaction id (`pg_current_xact_id()`), the log is
//!   ordered by `(transaction_id, global_position)`, and a reader only reads rows whose
//!   transaction id is below `pg_snapshot_xmin(pg_current_snapshot())`: every transaction
//!   below that horizon has finished, so no row can later appear behind what was read.
//!   Writers are never serialised; a reader only lags while an older transaction is open.

use std::collections::{BTreeSet, HashMap};

use authledger_domain::metadata::EventMetadata;
use serde::Serialize;

use crate::db::{Db, DbTx};
use crate::error::ProjectionError;
use crate::{on_db, personal};

mod kinds;
mod sqlite_read;
mod stored_event;
pub use kinds::{read_kinds_after, Scanned};
use stored_event::EventRow;
pub use stored_event::{Parts, StoredEvent};

/// A point in the commit-ordered log. Ordered by `transaction` first (always 0 on SQLite),
/// then `global`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Position {
    /// The writer's transaction id (Postgres); 0 on SQLite.
    pub transaction: i64,
    /// The event's global position: unique, and the number people quote.
    pub global: i64,
}

/// An event's columns but its payload and metadata, on SQLite ([`kinds`] sends those only for
/// some events).
macro_rules! sqlite_head {
    () => {
        "0 AS transaction_id, global_position, aggregate_type, aggregate_id, sequence, \
         event_type, event_version"
    };
}
use sqlite_head;

/// The same on Postgres. Note for queries selecting these: `transaction_id` here names the
/// *output* column (a cast), so `ORDER BY` must say `events.transaction_id` to sort by the
/// indexed column; a bare name sorts the whole table by the cast on every page.
macro_rules! postgres_head {
    () => {
        "transaction_id::text::bigint AS transaction_id, global_position, aggregate_type, \
         aggregate_id, sequence, event_type, event_version"
    };
}
use postgres_head;

const SQLITE_COLUMNS: &str = concat!(sqlite_head!(), ", payload, metadata");
const POSTGRES_COLUMNS: &str = concat!(
    postgres_head!(),
    ", payload::text AS payload, metadata::text AS metadata"
);

/// The SQLite query behind [`read_after`] selecting `columns` (`$1` global position, `$2`
/// limit).
fn sqlite_read_after(columns: &str) -> String {
    format!(
        "SELECT {columns} FROM events WHERE global_position > $1 \
         ORDER BY global_position LIMIT $2"
    )
}

/// The Postgres query behind [`read_after`] (`$1` transaction id as text, `$2` global
/// position, `$3` limit); public so a test can check its plan walks the commit-order index.
pub fn postgres_read_after() -> String {
    postgres_read_after_selecting(POSTGRES_COLUMNS)
}

fn postgres_read_after_selecting(columns: &str) -> String {
    format!(
        "SELECT {columns} FROM events \
         WHERE (transaction_id, global_position) > ($1::text::xid8, $2) \
           AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY events.transaction_id, events.global_position LIMIT $3"
    )
}

/// Up to `limit` events after `after`, in commit order, that can no longer be overtaken by a
/// late commit (see the module comment), their personal data opened (`crate::personal`).
pub async fn read_after(
    tx: &mut DbTx,
    after: Position,
    limit: i64,
) -> Result<Vec<StoredEvent>, ProjectionError> {
    let mut events = read_after_as_stored(tx, after, limit).await?;
    open_sealed(tx, &mut events).await?;
    Ok(events)
}

/// Opens the personal data of events read as stored, with the keys as they are in `tx`: a
/// person erased meanwhile reads as absent.
pub async fn open_sealed(tx: &mut DbTx, events: &mut [StoredEvent]) -> Result<(), ProjectionError> {
    let owners = sealed_owners(events);
    if !owners.is_empty() {
        let keys = personal::keys_for_reading_in(tx, &owners).await?;
        open_all(events, &keys)?;
    }
    Ok(())
}

/// The people whose keys opening `events` needs.
fn sealed_owners(events: &[StoredEvent]) -> BTreeSet<String> {
    let mut owners = BTreeSet::new();
    for event in events.iter().filter(|e| e.may_be_sealed) {
        personal::sealed_owners(&event.payload, &event.raw_metadata, &mut owners);
    }
    owners
}

/// Opens the personal data of `events` with `keys` (what has no key reads as absent).
fn open_all(
    events: &mut [StoredEvent],
    keys: &HashMap<String, [u8; 32]>,
) -> Result<(), ProjectionError> {
    for event in events.iter_mut().filter(|e| e.may_be_sealed) {
        let mut owners = BTreeSet::new();
        personal::sealed_owners(&event.payload, &event.raw_metadata, &mut owners);
        if owners.is_empty() {
            continue;
        }
        personal::open(&mut event.payload, &mut event.raw_metadata, keys);
        event.decoded = Default::default();
        event.metadata = EventMetadata::from_map(&event.raw_metadata).map_err(|e| {
            ProjectionError::Decode(format!("event {}: metadata: {e}", event.position.global))
        })?;
    }
    Ok(())
}

/// Opens the personal data of events read outside a transaction.
pub async fn opened(
    db: &Db,
    mut events: Vec<StoredEvent>,
) -> Result<Vec<StoredEvent>, ProjectionError> {
    let owners = sealed_owners(&events);
    if !owners.is_empty() {
        let keys = personal::keys_for_reading(db, &owners).await?;
        open_all(&mut events, &keys)?;
    }
    Ok(events)
}

/// [`read_after`] with events exactly as stored, personal data sealed: what the ledger's
/// digests cover.
pub async fn read_after_as_stored(
    tx: &mut DbTx,
    after: Position,
    limit: i64,
) -> Result<Vec<StoredEvent>, ProjectionError> {
    let rows: Vec<EventRow> = match tx {
        DbTx::Sqlite(tx, _) => return sqlite_read::after(tx, after.global, limit).await,
        DbTx::Postgres(tx) => {
            sqlx::query_as(&postgres_read_after())
                .bind(after.transaction.to_string())
                .bind(after.global)
                .bind(limit)
                .fetch_all(&mut **tx)
                .await?
        }
    };
    rows.into_iter().map(StoredEvent::try_from).collect()
}

fn columns(db: &Db) -> &'static str {
    match db {
        Db::Sqlite(_) => SQLITE_COLUMNS,
        Db::Postgres(_) => POSTGRES_COLUMNS,
    }
}

/// Folds one aggregate's events, oldest first, into the aggregate they make.
pub fn fold<'a, A: cqrs_es::Aggregate>(
    events: impl IntoIterator<Item = &'a StoredEvent>,
) -> Result<A, ProjectionError> {
    let mut aggregate = A::default();
    for event in events {
        aggregate.apply(event.decode()?);
    }
    Ok(aggregate)
}

/// The events of one aggregate, oldest first (its own history, for `events --aggregate`,
/// `history` and `state --as-of`), their personal data opened.
pub async fn read_aggregate(
    db: &Db,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<StoredEvent>, ProjectionError> {
    let columns = columns(db);
    let sql = format!(
        "SELECT {columns} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
         ORDER BY sequence"
    );
    let rows: Vec<EventRow> = on_db!(db, pool => sqlx::query_as(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(pool)
        .await?);
    opened_rows(db, rows).await
}

/// Rows read outside a transaction, as events with their personal data opened.
async fn opened_rows(db: &Db, rows: Vec<EventRow>) -> Result<Vec<StoredEvent>, ProjectionError> {
    let events = rows
        .into_iter()
        .map(StoredEvent::try_from)
        .collect::<Result<_, _>>()?;
    opened(db, events).await
}

/// Every event of one aggregate type, grouped by aggregate and oldest first within each (for
/// loading all aggregates of a small type, such as clients, into memory).
pub async fn read_type(db: &Db, aggregate_type: &str) -> Result<Vec<StoredEvent>, ProjectionError> {
    let columns = columns(db);
    let sql = format!(
        "SELECT {columns} FROM events WHERE aggregate_type = $1 ORDER BY aggregate_id, sequence"
    );
    let rows: Vec<EventRow> = on_db!(db, pool => sqlx::query_as(&sql)
        .bind(aggregate_type)
        .fetch_all(pool)
        .await?);
    opened_rows(db, rows).await
}

/// Where one committed event sits in the log.
pub async fn position_of(
    db: &Db,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
) -> Result<Option<Position>, ProjectionError> {
    let transaction = match db {
        Db::Sqlite(_) => "0",
        Db::Postgres(_) => "transaction_id::text::bigint",
    };
    let sql = format!(
        "SELECT {transaction} AS transaction_id, global_position FROM events \
         WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3"
    );
    let row: Option<(i64, i64)> = on_db!(db, pool => sqlx::query_as(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(sequence)
        .fetch_optional(pool)
        .await?);
    Ok(row.map(|(transaction, global)| Position {
        transaction,
        global,
    }))
}

/// When the first event after global position `global` was recorded, if there is one: how
/// long a reader at `global` has been behind.
pub async fn recorded_after(
    db: &Db,
    global: i64,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ProjectionError> {
    let sql = format!(
        "SELECT {} FROM events WHERE global_position > $1 ORDER BY global_position LIMIT 1",
        columns(db)
    );
    let row: Option<EventRow> =
        on_db!(db, pool => sqlx::query_as(&sql).bind(global).fetch_optional(pool).await)?;
    Ok(row
        .map(StoredEvent::try_from)
        .transpose()?
        .map(|event| event.metadata.at))
}

/// The last committed event's position, if any: what "everything committed so far" means.
pub async fn last_position(db: &Db) -> Result<Option<Position>, ProjectionError> {
    let sql = match db {
        Db::Sqlite(_) => {
            "SELECT 0 AS transaction_id, global_position FROM events \
                          ORDER BY global_position DESC LIMIT 1"
        }
        Db::Postgres(_) => {
            "SELECT transaction_id::text::bigint AS transaction_id, global_position \
                            FROM events ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1"
        }
    };
    let row: Option<(i64, i64)> =
        on_db!(db, pool => sqlx::query_as(sql).fetch_optional(pool).await)?;
    Ok(row.map(|(transaction, global)| Position {
        transaction,
        global,
    }))
}

/// The events at these global positions, by position (those that exist), exactly as stored:
/// what the ledger's digests cover.
pub async fn read_positions(
    db: &Db,
    positions: &[i64],
) -> Result<HashMap<i64, StoredEvent>, ProjectionError> {
    let (Some(low), Some(high)) = (positions.iter().min(), positions.iter().max()) else {
        return Ok(HashMap::new());
    };
    let sql = format!(
        "SELECT {} FROM events WHERE global_position >= $1 AND global_position <= $2",
        columns(db)
    );
    let rows: Vec<EventRow> =
        on_db!(db, pool => sqlx::query_as(&sql).bind(low).bind(high).fetch_all(pool).await)?;
    let wanted: std::collections::HashSet<i64> = positions.iter().copied().collect();
    rows.into_iter()
        .filter(|row| wanted.contains(&row.global_position))
        .map(|row| StoredEvent::try_from(row).map(|event| (event.position.global, event)))
        .collect()
}

/// Events a reader of the log has not linked: the first one it passed without linking (an
/// event added to the log after the reader moved on), and how many lie ahead of it.
pub struct Unlinked {
    pub first_inserted: Option<i64>,
    pub after_checkpoint: i64,
}

/// [`Unlinked`] for the reader `name`, whose links are rows of `ledger_chain`.
pub async fn unlinked_before(db: &Db, name: &str) -> Result<Unlinked, ProjectionError> {
    let at = crate::checkpoint::read(db, name).await?;
    let (passed, ahead) = match db {
        Db::Sqlite(_) => (
            "SELECT min(e.global_position) FROM events e \
             LEFT JOIN ledger_chain c ON c.global_position = e.global_position \
             WHERE c.link IS NULL AND e.global_position <= $2",
            "SELECT count(*) FROM events WHERE global_position > $2 AND $1 = $1",
        ),
        Db::Postgres(_) => (
            "SELECT min(e.global_position) FROM events e \
             LEFT JOIN ledger_chain c ON c.global_position = e.global_position \
             WHERE c.link IS NULL AND (e.transaction_id, e.global_position) <= ($1::text::xid8, $2)",
            "SELECT count(*) FROM events \
             WHERE (transaction_id, global_position) > ($1::text::xid8, $2)",
        ),
    };
    let transaction = at.transaction.to_string();
    let first_inserted: Option<i64> = on_db!(db, pool => sqlx::query_scalar(passed)
        .bind(&transaction)
        .bind(at.global)
        .fetch_one(pool)
        .await)?;
    let after_checkpoint: i64 = on_db!(db, pool => sqlx::query_scalar(ahead)
        .bind(&transaction)
        .bind(at.global)
        .fetch_one(pool)
        .await)?;
    Ok(Unlinked {
        first_inserted,
        after_checkpoint,
    })
}
