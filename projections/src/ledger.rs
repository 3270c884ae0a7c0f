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

use std::collections::HashMap;

use chrono::Utc;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::db::{Db, DbTx};
use crate::error::ProjectionError;
use crate::event_log::{self, StoredEvent};
use crate::{checkpoint, on_db, on_tx, view_time};

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
    let mut out = Vec::with_capacity(256);
    let string = |out: &mut Vec<u8>, key: &str, value: &str| {
        serde_json::to_writer(&mut *out, key).expect("a string serialises");
        out.push(b':');
        serde_json::to_writer(&mut *out, value).expect("a string serialises");
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
        serde_json::to_writer(&mut out, key).expect("a string serialises");
        out.push(b':');
        serde_json::to_writer(&mut out, value).expect("a string serialises");
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

/// JSON with every object's keys sorted, written here rather than left to `serde_json`'s map
/// order, which a crate feature elsewhere in the build could change.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key).expect("a string serialises");
                out.push(b':');
                write_canonical(&map[key], out);
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

/// Links the next batch of events in commit order; returns how many. The checkpoint row's
/// lock keeps two linkers (two instances) from linking the same event twice.
pub async fn link(db: &Db) -> Result<usize, ProjectionError> {
    let mut tx = db.begin().await?;
    let after = checkpoint::lock(&mut tx, READER).await?;
    let events = event_log::read_after_as_stored(&mut tx, after, BATCH).await?;
    let Some(last) = events.last().map(|e| e.position) else {
        return Ok(0);
    };
    let (mut link, mut previous) = head(&mut tx).await?;
    let linked_at = view_time(Utc::now());
    let mut rows = Vec::with_capacity(events.len());
    for event in &events {
        link += 1;
        previous = digest(&previous, &canonical(event));
        rows.push((link, event.position.global, hex::encode(previous)));
    }
    // One statement per batch: a statement per event made the chain cost about a tenth of
    // the token rate on Postgres.
    on_tx!(&mut tx, conn => {
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO ledger_chain (link, global_position, digest, linked_at) ",
        );
        insert.push_values(&rows, |mut row, (link, position, digest)| {
            row.push_bind(*link)
                .push_bind(*position)
                .push_bind(digest)
                .push_bind(&linked_at);
        });
        insert.build().execute(conn).await.map(drop)
    })?;
    checkpoint::save(&mut tx, READER, last).await?;
    tx.commit().await?;
    Ok(events.len())
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

/// What [`verify`] found wrong first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Break {
    /// The event at this link no longer hashes to the digest recorded for it.
    Altered { link: i64, global_position: i64 },
    /// A link names an event that is no longer in the log.
    Missing { link: i64, global_position: i64 },
    /// An event the chain has passed is not in it: added to the log afterwards.
    Inserted { global_position: i64 },
    /// The link's event hashes to the digest recorded at another link: events swapped.
    Reordered {
        link: i64,
        global_position: i64,
        /// Where this event's content was recorded.
        recorded_at_link: i64,
    },
    /// The chain's own rows are not consecutive (a link removed from the chain table).
    Gap { after_link: i64, next_link: i64 },
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Break::Altered { link, global_position } => write!(
                f,
                "altered: the event at position {global_position} (link {link}) is not the one that was linked"
            ),
            Break::Missing { link, global_position } => write!(
                f,
                "missing: the event at position {global_position} (link {link}) is gone from the log"
            ),
            Break::Inserted { global_position } => write!(
                f,
                "inserted: the event at position {global_position} was added after the chain passed it"
            ),
            Break::Reordered { link, global_position, recorded_at_link } => write!(
                f,
                "reordered: the event at position {global_position} (link {link}) holds what was linked at link {recorded_at_link}"
            ),
            Break::Gap { after_link, next_link } => write!(
                f,
                "gap: the chain jumps from link {after_link} to link {next_link}"
            ),
        }
    }
}

/// What [`verify`] checked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verified {
    /// Links whose digests were recomputed from their events.
    pub links: i64,
    /// The last link checked, and its digest.
    pub head: Option<Link>,
    /// Events committed but not linked yet (the linker runs after commit).
    pub unlinked: i64,
    /// The first break, if any; nothing after it is trusted.
    pub first_break: Option<Break>,
}

/// One page of the chain as [`verify`] reads it: the links, their events as stored, and each
/// link's event in canonical form (None when the event is gone).
struct Page {
    links: Vec<(i64, i64, String)>,
    events: HashMap<i64, StoredEvent>,
    canonical: Vec<Option<Vec<u8>>>,
}

/// Links per page [`verify`] reads.
const VERIFY_PAGE: i64 = 5_000;
/// Pages read at once: reading and decoding, not hashing, is most of verifying's work.
const VERIFY_READERS: i64 = 2;

/// Reads every `VERIFY_READERS`th page of the chain, the `nth` first, from `start` to `end`,
/// into `pages`, until a page is empty or [`verify`] stops listening. Pages are fixed link
/// ranges, so the readers need not wait for each other.
async fn read_pages(
    db: Db,
    start: i64,
    end: i64,
    nth: i64,
    pages: tokio::sync::mpsc::Sender<Result<Page, ProjectionError>>,
) {
    let mut first = start + nth * VERIFY_PAGE;
    while first <= end {
        let last = end.min(first.saturating_add(VERIFY_PAGE - 1));
        let page = async {
            let sql = "SELECT c.link, c.global_position, c.digest FROM ledger_chain c \
                       WHERE c.link >= $1 AND c.link <= $2 ORDER BY c.link";
            let links: Vec<(i64, i64, String)> = on_db!(&db, pool => sqlx::query_as(sql)
                .bind(first)
                .bind(last)
                .fetch_all(pool)
                .await)?;
            let positions: Vec<i64> = links.iter().map(|(_, p, _)| *p).collect();
            let events = event_log::read_positions(&db, &positions).await?;
            let canonical = positions
                .iter()
                .map(|p| events.get(p).map(canonical))
                .collect();
            Ok::<_, ProjectionError>(Page {
                links,
                events,
                canonical,
            })
        }
        .await;
        let empty = matches!(&page, Ok(p) if p.links.is_empty());
        let failed = page.is_err();
        if pages.send(page).await.is_err() || empty || failed {
            return;
        }
        first = first.saturating_add(VERIFY_READERS * VERIFY_PAGE);
    }
}

/// Recomputes the chain from the events, from the first link (or `from_link`, trusting the
/// digest recorded before it) to the last (or `to_link`), and reports the first break.
pub async fn verify(
    db: &Db,
    from_link: Option<i64>,
    to_link: Option<i64>,
) -> Result<Verified, ProjectionError> {
    let start = from_link.unwrap_or(1).max(1);
    let end = to_link.unwrap_or(i64::MAX);
    let mut previous = match start {
        1 => GENESIS,
        n => {
            let sql = "SELECT digest FROM ledger_chain WHERE link = $1";
            let digest: Option<String> =
                on_db!(db, pool => sqlx::query_scalar(sql).bind(n - 1).fetch_optional(pool).await)?;
            digest.as_deref().and_then(decode).unwrap_or(GENESIS)
        }
    };
    // Reading a page and putting its events in canonical form runs on one core while the
    // chain is checked on the other: a page ahead, so verifying is not the sum of the two.
    // What the linker has not linked, taken before the chain is read: while the server links
    // on, the report then never says "nothing unlinked" of links it did not read.
    let inserted = event_log::unlinked_before(db, READER).await?;
    let mut readers = Vec::new();
    let mut pages = Vec::new();
    for nth in 0..VERIFY_READERS {
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Page, ProjectionError>>(1);
        readers.push(tokio::spawn(read_pages(
            db.clone(),
            start,
            end,
            nth,
            sender,
        )));
        pages.push(receiver);
    }
    let mut expected_link = start;
    let mut checked = 0;
    let mut head = None;
    let mut first_break = None;
    let mut turn = 0;
    'pages: loop {
        // Pages in link order: each reader's in turn.
        let Some(page) = pages[turn % VERIFY_READERS as usize].recv().await else {
            break;
        };
        turn += 1;
        let page = page?;
        if page.links.is_empty() {
            // The end, unless links go on after a missing range.
            let sql = "SELECT MIN(link) FROM ledger_chain WHERE link >= $1 AND link <= $2";
            let next: Option<i64> = on_db!(db, pool => sqlx::query_scalar(sql)
                .bind(expected_link)
                .bind(end)
                .fetch_one(pool)
                .await)?;
            // Links at `expected_link` itself were appended since the page was read: not a
            // gap, only more than this verification covers.
            if let Some(next_link) = next.filter(|next| *next > expected_link) {
                first_break = Some(Break::Gap {
                    after_link: expected_link - 1,
                    next_link,
                });
            }
            break;
        }
        for ((link, global_position, recorded), canonical) in page.links.iter().zip(&page.canonical)
        {
            if *link != expected_link {
                first_break = Some(Break::Gap {
                    after_link: expected_link - 1,
                    next_link: *link,
                });
                break 'pages;
            }
            let Some(canonical) = canonical else {
                first_break = Some(Break::Missing {
                    link: *link,
                    global_position: *global_position,
                });
                break 'pages;
            };
            let computed = digest(&previous, canonical);
            if hex::encode(computed) != *recorded {
                let event = &page.events[global_position];
                first_break = Some(classify(db, *link, *global_position, event).await?);
                break 'pages;
            }
            previous = computed;
            checked += 1;
            expected_link += 1;
            head = Some(Link {
                link: *link,
                global_position: *global_position,
                digest: recorded.clone(),
            });
        }
    }
    drop(pages);
    for reader in readers {
        reader.abort();
    }
    let unlinked = match first_break {
        Some(_) => 0,
        None => {
            if let Some(global_position) = inserted.first_inserted {
                first_break = Some(Break::Inserted { global_position });
            }
            inserted.after_checkpoint
        }
    };
    Ok(Verified {
        links: checked,
        head,
        unlinked,
        first_break,
    })
}

/// Told apart: the event at `link` hashes as the one recorded at another link (swapped), or
/// not at all (altered). Found by its content, since digests chain.
async fn classify(
    db: &Db,
    link: i64,
    global_position: i64,
    event: &StoredEvent,
) -> Result<Break, ProjectionError> {
    // Another link whose own previous digest, with this event, gives that link's digest.
    let sql = "SELECT c.link, c.digest, p.digest FROM ledger_chain c \
               LEFT JOIN ledger_chain p ON p.link = c.link - 1 \
               WHERE c.link <> $1 ORDER BY abs(c.link - $1) LIMIT 64";
    let neighbours: Vec<(i64, String, Option<String>)> =
        on_db!(db, pool => sqlx::query_as(sql).bind(link).fetch_all(pool).await)?;
    for (other, recorded, before) in neighbours {
        let before = before.as_deref().and_then(decode).unwrap_or(GENESIS);
        let mut moved = event.clone();
        if let Some(position) = position_of_link(db, other).await? {
            moved.position.global = position;
        }
        if hex::encode(digest(&before, &canonical(&moved))) == recorded {
            return Ok(Break::Reordered {
                link,
                global_position,
                recorded_at_link: other,
            });
        }
    }
    Ok(Break::Altered {
        link,
        global_position,
    })
}

async fn position_of_link(db: &Db, link: i64) -> Result<Option<i64>, ProjectionError> {
    let sql = "SELECT global_position FROM ledger_chain WHERE link = $1";
    Ok(on_db!(db, pool => sqlx::query_scalar(sql).bind(link).fetch_optional(pool).await)?)
}

#[cfg(test)]
mod tests {
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
