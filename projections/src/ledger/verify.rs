//! `ledger verify`: the chain recomputed from the events, link by link, and the first break
//! reported precisely. Events moved to archive segments are read from there (see
//! [`super::segments`]).

use std::collections::HashMap;

use crate::db::Db;
use crate::error::ProjectionError;
use crate::event_log::{self, StoredEvent};
use crate::on_db;

use super::segments::{self, Archive, FileProblem};
use super::{canonical, decode, digest, Link, GENESIS, READER};

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
    /// A recorded archive segment's file is not in the archive directory.
    SegmentMissing { segment: String, why: String },
    /// A recorded archive segment's file is not the one that was written.
    SegmentAltered { segment: String },
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
            Break::SegmentMissing { segment, why } => {
                write!(f, "missing segment: archive segment {segment} cannot be read: {why}")
            }
            Break::SegmentAltered { segment } => write!(
                f,
                "altered segment: archive segment {segment} is not the file that was archived (its SHA-256 differs)"
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
    /// Of the links verified, those whose events were read from archive segments.
    pub archived: i64,
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
            let (links, events) = match &db {
                Db::Sqlite(pool) => sqlite_page(pool, first, last).await?,
                Db::Postgres(_) => {
                    let sql = "SELECT c.link, c.global_position, c.digest FROM ledger_chain c \
                               WHERE c.link >= $1 AND c.link <= $2 ORDER BY c.link";
                    let links: Vec<(i64, i64, String)> = on_db!(&db, pool => sqlx::query_as(sql)
                        .bind(first)
                        .bind(last)
                        .fetch_all(pool)
                        .await)?;
                    let positions: Vec<i64> = links.iter().map(|(_, p, _)| *p).collect();
                    let events = event_log::read_positions(&db, &positions).await?;
                    (links, events)
                }
            };
            let canonical = links
                .iter()
                .map(|(_, p, _)| events.get(p).map(canonical))
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

/// One page of links and their events on SQLite, read as one JSON value: sqlx hands a query's
/// rows over one at a time from the connection's thread, which cost more than everything else
/// verifying does (measured: 10.7 s for a million events as rows). The payload and metadata
/// come out of SQLite's `json()` already parsed, as they would from their stored text.
async fn sqlite_page(
    pool: &sqlx::SqlitePool,
    first: i64,
    last: i64,
) -> Result<(Vec<(i64, i64, String)>, HashMap<i64, StoredEvent>), ProjectionError> {
    let sql = "SELECT json_group_array(json_array(c.link, c.global_position, c.digest, \
                   e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.event_version, \
                   json(e.payload), json(e.metadata)) ORDER BY c.link) \
               FROM ledger_chain c LEFT JOIN events e ON e.global_position = c.global_position \
               WHERE c.link >= ?1 AND c.link <= ?2";
    let text: String = sqlx::query_scalar(sql)
        .bind(first)
        .bind(last)
        .fetch_one(pool)
        .await?;
    type Row = (
        i64,
        i64,
        String,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<String>,
        Option<String>,
        serde_json::Value,
        Option<HashMap<String, String>>,
    );
    let rows: Vec<Row> = serde_json::from_str(&text)
        .map_err(|e| ProjectionError::Decode(format!("ledger links {first} to {last}: {e}")))?;
    let may_hold_nul = text.contains("\\u0000");
    let mut links = Vec::with_capacity(rows.len());
    let mut events = HashMap::with_capacity(rows.len());
    for (
        link,
        position,
        digest,
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        version,
        payload,
        metadata,
    ) in rows
    {
        links.push((link, position, digest));
        let (
            Some(aggregate_type),
            Some(aggregate_id),
            Some(sequence),
            Some(event_type),
            Some(event_version),
            Some(metadata),
        ) = (
            aggregate_type,
            aggregate_id,
            sequence,
            event_type,
            version,
            metadata,
        )
        else {
            // Not in the log.
            continue;
        };
        let parts = event_log::Parts {
            aggregate_type,
            aggregate_id,
            sequence,
            event_type,
            event_version,
        };
        let at = event_log::Position {
            transaction: 0,
            global: position,
        };
        events.insert(
            position,
            StoredEvent::from_parsed(at, parts, payload, metadata, may_hold_nul)?,
        );
    }
    Ok((links, events))
}

/// Recomputes the chain from the events, from the first link (or `from_link`, trusting the
/// digest recorded before it) to the last (or `to_link`), and reports the first break. Events
/// archived are read from their segments in `archive`, which is needed once any exists.
pub async fn verify(
    db: &Db,
    from_link: Option<i64>,
    to_link: Option<i64>,
    archive: Option<&Archive>,
) -> Result<Verified, ProjectionError> {
    let start = from_link.unwrap_or(1).max(1);
    let end = to_link.unwrap_or(i64::MAX);
    let recorded = segments::recorded(db).await?;
    let mut archived_events = match (archive, recorded.is_empty()) {
        (_, true) => segments::Reader::none(),
        (None, false) => {
            return Err(ProjectionError::Archive(format!(
                "{} archive segment(s) hold events of this log; verifying them needs the archive \
                 directory (--archive-dir or archive_dir)",
                recorded.len()
            )))
        }
        (Some(archive), false) => {
            if let Some(problem) = archive.check_files(&recorded) {
                let first_break = Some(match problem {
                    FileProblem::Missing { segment, why } => Break::SegmentMissing { segment, why },
                    FileProblem::Altered { segment } => Break::SegmentAltered { segment },
                });
                return Ok(Verified {
                    links: 0,
                    head: None,
                    archived: 0,
                    unlinked: 0,
                    first_break,
                });
            }
            archive.open(&recorded)?
        }
    };
    let mut archived = 0;
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
            // Not in the live log: archived, or missing.
            let from_archive = match canonical {
                Some(_) => None,
                None => archived_events.event_of(*link, *global_position)?,
            };
            let read_from_archive;
            let canonical: &[u8] = match (canonical, &from_archive) {
                (Some(canonical), _) => canonical,
                (None, Some(archived)) => {
                    read_from_archive = super::canonical(&archived.event);
                    &read_from_archive
                }
                (None, None) => {
                    first_break = Some(Break::Missing {
                        link: *link,
                        global_position: *global_position,
                    });
                    break 'pages;
                }
            };
            let computed = digest(&previous, canonical);
            if !same_digest(&computed, recorded) {
                let event = match &from_archive {
                    Some(archived) => &archived.event,
                    None => &page.events[global_position],
                };
                first_break = Some(classify(db, *link, *global_position, event).await?);
                break 'pages;
            }
            archived += i64::from(from_archive.is_some());
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
        archived,
        unlinked,
        first_break,
    })
}

/// Whether `recorded` (hex) is `computed`, without encoding it for every link.
fn same_digest(computed: &[u8; 32], recorded: &str) -> bool {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(recorded, &mut bytes).is_ok() && bytes == *computed
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
