//! [`StoredEvent`]: one event of the log as the projections read it, made from its stored
//! columns (its JSON parsed, NUL characters made storable), and its payload decoded once for
//! every projection that asks.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use authledger_domain::metadata::EventMetadata;
use serde::Serialize;
use sqlx::FromRow;

use super::Position;
use crate::error::ProjectionError;

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
pub(super) struct EventRow {
    pub(super) transaction_id: i64,
    pub(super) global_position: i64,
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
    pub(super) fn from_text(
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use authledger_domain::grant::GrantEvent;

    use super::{Parts, StoredEvent, SEAL_LETTERS};
    use crate::event_log::Position;
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
