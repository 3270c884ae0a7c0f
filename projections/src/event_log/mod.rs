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

use std::any::Any;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use authledger_domain::metadata::EventMetadata;
use serde::Serialize;
use sqlx::FromRow;

use crate::db::{Db, DbTx};
use crate::error::ProjectionError;
use crate::{on_db, personal};

mod kinds;
mod sqlite_read;
pub use kinds::{read_kinds_after, Scanned};

/// A point in the commit-ordered log. Ordered by `transaction` first (always 0 on SQLite),
/// then `global`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Position {
    /// The writer's transaction id (Postgres); 0 on SQLite.
    pub transaction: i64,
    /// The event's global position: unique, and the number people quote.
    pub global: i64,
}

/// One event as read from the log, with its metadata parsed.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub position: Position,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    #[serde(skip)]
    pub metadata: EventMetadata,
    /// The raw map as stored, for display.
    #[serde(rename = "metadata")]
    pub raw_metadata: HashMap<String, String>,
    /// The payload decoded as its aggregate's event type, by the first projection that asked
    /// ([`StoredEvent::decoded`]); the others share it.
    #[serde(skip)]
    pub(crate) decoded: OnceLock<Arc<dyn Any + Send + Sync>>,
    /// False when the stored text shows no sealed personal data, so opening it has nothing
    /// to look for.
    #[serde(skip)]
    pub(crate) may_be_sealed: bool,
}

impl StoredEvent {
    /// The payload as the aggregate's event type, decoded once for every projection that
    /// reads this event (the grants view and the audit log both read each grant event: a
    /// rebuild's profile had the second decoding at 2% of its CPU).
    pub fn decoded<E>(&self) -> Result<Arc<E>, ProjectionError>
    where
        E: serde::de::DeserializeOwned + Send + Sync + 'static,
    {
        if let Some(Ok(known)) = self.decoded.get().map(|any| any.clone().downcast::<E>()) {
            return Ok(known);
        }
        let event = Arc::new(self.decode::<E>()?);
        // Another projection decoding it at the same moment sets it first: the same value.
        let _ = self.decoded.set(event.clone());
        Ok(event)
    }

    /// Deserialises the payload as the aggregate's event type.
    pub fn decode<E: serde::de::DeserializeOwned>(&self) -> Result<E, ProjectionError> {
        E::deserialize(&self.payload).map_err(|e| {
            ProjectionError::Decode(format!(
                "event {} ({} {}): {e}",
                self.position.global, self.aggregate_type, self.event_type
            ))
        })
    }
}

#[derive(FromRow)]
struct EventRow {
    transaction_id: i64,
    global_position: i64,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: String,
    metadata: String,
}

impl TryFrom<EventRow> for StoredEvent {
    type Error = ProjectionError;

    fn try_from(row: EventRow) -> Result<Self, Self::Error> {
        StoredEvent::from_text(
            Position {
                transaction: row.transaction_id,
                global: row.global_position,
            },
            Parts {
                aggregate_type: row.aggregate_type,
                aggregate_id: row.aggregate_id,
                sequence: row.sequence,
                event_type: row.event_type,
                event_version: row.event_version,
            },
            &row.payload,
            &row.metadata,
        )
    }
}

/// An event row's columns other than its position, payload and metadata.
#[derive(Debug, serde::Deserialize)]
pub struct Parts {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
}

impl StoredEvent {
    /// An event from its stored columns, payload and metadata as the log stores them (JSON
    /// text).
    fn from_text(
        position: Position,
        parts: Parts,
        payload: &str,
        metadata: &str,
    ) -> Result<StoredEvent, ProjectionError> {
        let corrupt = |what: &str, e: &dyn std::fmt::Display| {
            ProjectionError::Decode(format!("event {}: {what}: {e}", position.global))
        };
        let raw_metadata: HashMap<String, String> =
            serde_json::from_str(metadata).map_err(|e| corrupt("metadata", &e))?;
        let parsed: serde_json::Value =
            serde_json::from_str(payload).map_err(|e| corrupt("payload", &e))?;
        let may_hold_nul = metadata.contains(JSON_NUL) || payload.contains(JSON_NUL);
        let mut event =
            StoredEvent::from_parsed(position, parts, parsed, raw_metadata, may_hold_nul)?;
        // A seal's mark (`personal::MARK`) is written as JSON writes it, its letters as they
        // are: text without them has nothing sealed (walking every event's JSON for the mark
        // cost a rebuild 1.4% of its CPU).
        event.may_be_sealed = payload.contains(SEAL_LETTERS) || metadata.contains(SEAL_LETTERS);
        Ok(event)
    }

    /// An event from its stored columns, payload and metadata already parsed as JSON.
    /// `may_hold_nul`: whether the stored text had an escaped NUL anywhere (it is made
    /// storable as views store it, see [`storable`]); false skips looking.
    pub fn from_parsed(
        position: Position,
        parts: Parts,
        mut payload: serde_json::Value,
        mut raw_metadata: HashMap<String, String>,
        may_hold_nul: bool,
    ) -> Result<StoredEvent, ProjectionError> {
        if may_hold_nul {
            raw_metadata = raw_metadata
                .into_iter()
                .map(|(k, v)| (storable(&k), storable(&v)))
                .collect();
            make_storable(&mut payload);
        }
        Ok(StoredEvent {
            position,
            metadata: EventMetadata::from_map(&raw_metadata).map_err(|e| {
                ProjectionError::Decode(format!("event {}: metadata: {e}", position.global))
            })?,
            raw_metadata,
            payload,
            aggregate_type: parts.aggregate_type,
            aggregate_id: parts.aggregate_id,
            sequence: parts.sequence,
            event_type: parts.event_type,
            event_version: parts.event_version,
            decoded: OnceLock::new(),
            may_be_sealed: true,
        })
    }
}

/// What every seal of personal data has in its stored text (`personal::MARK` without its
/// `$`, which a JSON writer may escape).
const SEAL_LETTERS: &str = "personal";

/// How JSON writes a NUL character. An event's text may hold one that was accepted before
/// input was checked at the edge: JSON (and so the log) keeps it, but Postgres text columns
/// refuse it (`invalid byte sequence for encoding "UTF8": 0x00`), and a projection that cannot
/// store an event stops there for good, since the log cannot be edited.
const JSON_NUL: &str = "\\u0000";

/// `text` as a view stores it: each NUL written as JSON writes it (`\u0000`, six characters),
/// the same on both stores, so a rebuild on either equals the live views.
fn storable(text: &str) -> String {
    text.replace('\0', JSON_NUL)
}

/// [`storable`] applied to every string and key of a JSON document.
fn make_storable(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) if s.contains('\0') => *s = storable(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(make_storable),
        serde_json::Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                make_storable(&mut item);
                map.insert(storable(&key), item);
            }
        }
        _ => {}
    }
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
        event.decoded = OnceLock::new();
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use authledger_domain::grant::GrantEvent;

    use super::{Parts, Position, StoredEvent, SEAL_LETTERS};
    use crate::personal::MARK;

    const CLI: &str = r#"{"actor": "cli:root", "request_id": "r-1", "source": "cli",
        "time": "2026-11-29T12:00:00Z"}"#;

    fn revoked(metadata: &str) -> StoredEvent {
        let parts = Parts {
            aggregate_type: "Grant".into(),
            aggregate_id: "g-1".into(),
            sequence: 2,
            event_type: "GrantRevoked".into(),
            event_version: "1".into(),
        };
        StoredEvent::from_text(
            Position::default(),
            parts,
            r#"{"GrantRevoked": {"reason": "admin"}}"#,
            metadata,
        )
        .unwrap()
    }

    #[test]
    fn projections_reading_one_event_share_its_decoding() {
        let event = revoked(CLI);
        let first = event.decoded::<GrantEvent>().unwrap();
        let again = event.decoded::<GrantEvent>().unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        // Asked as another type, it is decoded as that type (here, as plain JSON).
        let value = event.decoded::<serde_json::Value>().unwrap();
        assert_eq!(value["GrantRevoked"]["reason"], "admin");
        assert!(event.decoded::<GrantEvent>().is_ok());
    }

    #[test]
    fn only_text_with_a_seals_letters_is_looked_through_for_seals() {
        assert!(MARK.contains(SEAL_LETTERS));
        let plain = revoked(CLI);
        assert!(!plain.may_be_sealed);
        let sealed = revoked(
            r#"{"actor": "user:alice", "request_id": "r-1", "source": "http",
                "time": "2026-11-29T12:00:00Z", "ip": "$personal:alice:x"}"#,
        );
        assert!(sealed.may_be_sealed);
    }
}
