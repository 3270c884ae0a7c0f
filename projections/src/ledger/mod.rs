//! The hash chain over the event log: what makes the log tamper-evident.
//!
//! Link n is the n-th event in commit order (the order every reader of the log sees, see
//! [`event_log`]) with
//!
//! ```text
//! digest(n) = SHA-256( digest(n-1) || canonical(event n) )      digest(0) = 32 zero bytes
//! ```
//!
//! where `canonical` is the event's JSON object `{aggregate_id, aggregate_type, event_type,
//! event_version, metadata, payload, position, sequence}` (`position` the global position,
//! `metadata` the stored string map) written with every object's keys in byte order, no
//! whitespace, and strings escaped as JSON requires and no more. Changing, removing, inserting
//! or reordering an event changes every digest from there on; [`verify`] recomputes the chain
//! from the events themselves and says where the first difference is.
//!
//! The linker runs after commit, in the background of the server (on Postgres the commit
//! order is known only then): its progress is the `ledger` row of the checkpoints, so its
//! delay shows as `authledger_projection_lag_seconds{projection="ledger"}`.

use chrono::Utc;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::db::{Db, DbTx, StoreKind, Writes};
use crate::error::ProjectionError;
use crate::event_log::{self, Position, StoredEvent};
use crate::{checkpoint, on_db, on_tx, view_time};

pub mod segments;
mod verify;

pub use verify::{verify, Break, Verified};

/// The linker's checkpoint row.
pub const READER: &str = "ledger";
/// The digest before the first event.
pub const GENESIS: [u8; 32] = [0; 32];
/// Events linked per transaction.
const BATCH: i64 = 1_000;

/// The event's canonical form (see the module comment).
pub fn canonical(event: &StoredEvent) -> Vec<u8> {
    // Written straight from the event's parts, keys in sorted order, rather than by building
    // (and cloning the payload into) an object first: this runs once per event verified.
    let mut out = Vec::with_capacity(768);
    let string = |out: &mut Vec<u8>, key: &str, value: &str| {
        write_str(key, out);
        out.push(b':');
        write_str(value, out);
        out.push(b',');
    };
    out.push(b'{');
    string(&mut out, "aggregate_id", &event.aggregate_id);
    string(&mut out, "aggregate_type", &event.aggregate_type);
    string(&mut out, "event_type", &event.event_type);
    string(&mut out, "event_version", &event.event_version);
    out.extend_from_slice(b"\"metadata\":{");
    let mut metadata: Vec<(&String, &String)> = event.raw_metadata.iter().collect();
    metadata.sort();
    for (i, (key, value)) in metadata.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(key, &mut out);
        out.push(b':');
        write_str(value, &mut out);
    }
    out.extend_from_slice(b"},\"payload\":");
    write_canonical(&event.payload, &mut out);
    out.extend_from_slice(
        format!(
            ",\"position\":{},\"sequence\":{}}}",
            event.position.global, event.sequence
        )
        .as_bytes(),
    );
    out
}

/// Any JSON value in the canonical form (an exported event is checked with this).
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out);
    out
}

/// A JSON string as `serde_json` writes it (only `"`, `\\` and control characters escaped),
/// without its serializer when there is nothing to escape: most strings, and the canonical
/// form is written for every event verified.
fn write_str(text: &str, out: &mut Vec<u8>) {
    if text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        serde_json::to_writer(&mut *out, text).expect("a string serialises");
        return;
    }
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

/// JSON with every object's keys sorted, written here rather than left to `serde_json`'s map
/// order, which a crate feature elsewhere in the build could change (checked, not assumed:
/// a map already in order is written as it is, any other is sorted first).
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            out.push(b'{');
            let in_order = map.keys().zip(map.keys().skip(1)).all(|(a, b)| a < b);
            let write = |i: usize, key: &String, value: &Value, out: &mut Vec<u8>| {
                if i > 0 {
                    out.push(b',');
                }
                write_str(key, out);
                out.push(b':');
                write_canonical(value, out);
            };
            if in_order {
                for (i, (key, value)) in map.iter().enumerate() {
                    write(i, key, value, out);
                }
            } else {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for (i, key) in keys.into_iter().enumerate() {
                    write(i, key, &map[key], out);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("a scalar serialises"),
    }
}

/// The digest of a link: SHA-256 over the one before and the event's canonical form.
pub fn digest(previous: &[u8; 32], canonical: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(canonical);
    hasher.finalize().into()
}

/// One stored link.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Link {
    pub link: i64,
    pub global_position: i64,
    pub digest: String,
}

async fn head(tx: &mut DbTx) -> Result<(i64, [u8; 32]), ProjectionError> {
    let sql = "SELECT link, digest FROM ledger_chain ORDER BY link DESC LIMIT 1";
    let row: Option<(i64, String)> =
        on_tx!(tx, conn => sqlx::query_as(sql).fetch_optional(conn).await)?;
    match row {
        None => Ok((0, GENESIS)),
        Some((link, digest)) => Ok((
            link,
            decode(&digest).ok_or_else(|| {
                ProjectionError::Decode(format!("ledger link {link}: digest `{digest}` is not hex"))
            })?,
        )),
    }
}

fn decode(hex_digest: &str) -> Option<[u8; 32]> {
    hex::decode(hex_digest).ok()?.try_into().ok()
}

/// Registers the linker's checkpoint at the start of the log: a store with history gets all
/// of it linked.
pub async fn register(db: &Db) -> Result<(), ProjectionError> {
    checkpoint::register(db, READER).await
}

/// The links one pass adds after the checkpoint `after`, up to `last`.
struct Pass {
    after: Position,
    last: Position,
    linked_at: String,
    rows: Vec<(i64, i64, String)>,
}

/// Reads the batch after `after` and the chain's head, and hashes the batch onto it; `None`
/// when nothing is new.
async fn plan(tx: &mut DbTx, after: Position) -> Result<Option<Pass>, ProjectionError> {
    let events = event_log::read_after_as_stored(tx, after, BATCH).await?;
    let Some(last) = events.last().map(|e| e.position) else {
        return Ok(None);
    };
    let (mut link, mut previous) = head(tx).await?;
    let mut rows = Vec::with_capacity(events.len());
    for event in &events {
        link += 1;
        previous = digest(&previous, &canonical(event));
        rows.push((link, event.position.global, hex::encode(previous)));
    }
    Ok(Some(Pass {
        after,
        last,
        linked_at: view_time(Utc::now()),
        rows,
    }))
}

/// Links the next batch of events in commit order; returns how many. The checkpoint row's
/// lock keeps two linkers (two instances) from linking the same event twice.
///
/// On SQLite the batch is read and hashed before the write lock is taken, from one snapshot
/// of the checkpoint, the log and the chain (every writer of the process waits while the
/// linker holds the lock: reading and hashing were most of that time); the pass is used only
/// if the checkpoint has not moved meanwhile (another instance linked), as the projector does.
pub async fn link(db: &Db) -> Result<usize, ProjectionError> {
    let ahead = match db.kind() {
        StoreKind::Sqlite => {
            let mut read = db.begin().await?;
            let after = checkpoint::read_in(&mut read, READER).await?;
            match plan(&mut read, after).await? {
                Some(pass) => Some(pass),
                None => return Ok(0),
            }
        }
        StoreKind::Postgres => None,
    };
    let mut tx = db.begin_write_to(Writes::Log).await?;
    let after = checkpoint::lock(&mut tx, READER).await?;
    let pass = match ahead {
        Some(pass) if pass.after == after => pass,
        _ => match plan(&mut tx, after).await? {
            Some(pass) => pass,
            None => return Ok(0),
        },
    };
    let Pass {
        last,
        linked_at,
        rows,
        ..
    } = pass;
    let linked = rows.len();
    // One statement per batch: a statement per event made the chain cost about a tenth of
    // the token rate on Postgres. There, three arrays rather than a parameter per value: a
    // statement of four thousand parameters costs Postgres more to parse and bind than to run.
    match &mut tx {
        DbTx::Sqlite(conn, _) => {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO ledger_chain (link, global_position, digest, linked_at) ",
            );
            insert.push_values(&rows, |mut row, (link, position, digest)| {
                row.push_bind(*link)
                    .push_bind(*position)
                    .push_bind(digest)
                    .push_bind(&linked_at);
            });
            // Not kept prepared: each batch size is another statement (see `ViewTx::flush_rows`).
            insert
                .build()
                .persistent(false)
                .execute(&mut **conn)
                .await?;
        }
        DbTx::Postgres(conn) => {
            let (links, positions, digests): (Vec<i64>, Vec<i64>, Vec<String>) =
                rows.into_iter().fold(
                    (Vec::new(), Vec::new(), Vec::new()),
                    |(mut l, mut p, mut d), (link, position, digest)| {
                        l.push(link);
                        p.push(position);
                        d.push(digest);
                        (l, p, d)
                    },
                );
            sqlx::query(
                "INSERT INTO ledger_chain (link, global_position, digest, linked_at) \
                 SELECT link, global_position, digest, $4 \
                 FROM UNNEST($1::bigint[], $2::bigint[], $3::text[]) AS t(link, global_position, digest)",
            )
            .bind(&links)
            .bind(&positions)
            .bind(&digests)
            .bind(&linked_at)
            .execute(&mut **conn)
            .await?;
        }
    }
    checkpoint::save(&mut tx, READER, last).await?;
    tx.commit().await?;
    Ok(linked)
}

/// Up to `limit` links from `from_link` on, in order.
pub async fn links(db: &Db, from_link: i64, limit: i64) -> Result<Vec<Link>, ProjectionError> {
    let sql = "SELECT link, global_position, digest FROM ledger_chain WHERE link >= $1 \
               ORDER BY link LIMIT $2";
    let rows: Vec<(i64, i64, String)> = on_db!(db, pool => sqlx::query_as(sql)
        .bind(from_link)
        .bind(limit)
        .fetch_all(pool)
        .await)?;
    Ok(rows
        .into_iter()
        .map(|(link, global_position, digest)| Link {
            link,
            global_position,
            digest,
        })
        .collect())
}

/// The digest recorded at `link` (genesis for link 0).
pub async fn digest_at(db: &Db, link: i64) -> Result<Option<String>, ProjectionError> {
    if link <= 0 {
        return Ok(Some(hex::encode(GENESIS)));
    }
    let sql = "SELECT digest FROM ledger_chain WHERE link = $1";
    Ok(on_db!(db, pool => sqlx::query_scalar(sql).bind(link).fetch_optional(pool).await)?)
}

/// Links until nothing readable is left.
pub async fn link_all(db: &Db) -> Result<usize, ProjectionError> {
    let mut total = 0;
    loop {
        let linked = link(db).await?;
        total += linked;
        if linked < BATCH as usize {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn the_canonical_form_sorts_keys_at_every_depth_and_has_no_whitespace() {
        let mut out = Vec::new();
        let value: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"d": [ {"z": 1, "y": "é\n"} ], "c": null}}"#)
                .unwrap();
        write_canonical(&value, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":{"c":null,"d":[{"y":"é\n","z":1}]},"b":1}"#
        );
    }

    #[test]
    fn an_event_written_from_its_parts_is_its_object_in_canonical_form() {
        let raw_metadata: HashMap<String, String> = [
            ("time", "2026-11-27T09:00:00.000000Z"),
            ("actor", "user:al\"ice"),
            ("source", "cli"),
            ("request_id", "r-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let event = StoredEvent {
            position: event_log::Position {
                transaction: 7,
                global: 42,
            },
            aggregate_type: "User".into(),
            aggregate_id: "alice".into(),
            sequence: 3,
            event_type: "ProfileUpdated".into(),
            event_version: "1".into(),
            payload: serde_json::json!({"ProfileUpdated": {"profile": {"name": "Älice\u{1}", "email": null}}}),
            metadata: authledger_domain::metadata::EventMetadata::from_map(&raw_metadata).unwrap(),
            raw_metadata: raw_metadata.clone(),
            decoded: Default::default(),
            may_be_sealed: true,
        };
        let object = serde_json::json!({
            "aggregate_id": "alice", "aggregate_type": "User", "event_type": "ProfileUpdated",
            "event_version": "1", "metadata": raw_metadata, "payload": event.payload,
            "position": 42, "sequence": 3,
        });
        assert_eq!(
            String::from_utf8(canonical(&event)).unwrap(),
            String::from_utf8(canonical_json(&object)).unwrap()
        );
    }

    #[test]
    fn each_digest_covers_the_one_before() {
        let first = digest(&GENESIS, b"{}");
        assert_ne!(digest(&first, b"{}"), first);
        assert_eq!(digest(&GENESIS, b"{}"), first);
    }
}
