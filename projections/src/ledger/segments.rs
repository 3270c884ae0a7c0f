//! Archive segments: events moved out of the live log into files, still part of the chain.
//!
//! `authledger ledger archive` moves the events of grants that ended long ago into a segment
//! file in the archive directory, records the file in `ledger_segments` and deletes the events
//! from the live log. Their links stay in `ledger_chain`: [`super::verify`] reads an event the
//! log no longer holds from its segment and recomputes its digest as for any other, so the
//! chain and every seal over it verify as before, and a rebuild replays segments and live log
//! merged in commit order, so the views come out the same.
//!
//! A segment is JSON lines, like an export (`src/ledger_export.rs`):
//!
//! ```text
//! {"archived_at":T,"ended_before":T,"format":"authledger-ledger-segment/1","segment":NAME}
//! {"digest":HEX,"event":{...canonical event...},"link":n,"previous_digest":HEX,"transaction":X,"type":"event"}
//! ```
//!
//! one event line per archived event, in link order (which is commit order). Each line carries
//! the digest before it, so a reader holding the published chain can check any line alone;
//! `transaction` is the writer's transaction id on Postgres (0 on SQLite), which places the
//! event in commit order for a rebuild. Personal data stays sealed as it is in the log, so
//! erasing a person (destroying their key) reaches archived events too.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::db::{Db, DbTx};
use crate::error::ProjectionError;
use crate::event_log::{Position, StoredEvent};
use crate::{on_db, on_tx};

/// The first line's `format`.
pub const FORMAT: &str = "authledger-ledger-segment/1";

/// A segment as `ledger_segments` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Segment {
    /// The file's name in the archive directory.
    pub name: String,
    /// SHA-256 of the whole file, hex.
    pub sha256: String,
    pub events: i64,
    pub grants: i64,
    pub first_link: i64,
    pub last_link: i64,
    /// The grants in it had ended before this instant (RFC 3339).
    pub ended_before: String,
    pub archived_at: String,
    /// Who ran the archive (`cli:NAME`).
    pub archived_by: String,
}

const COLUMNS: &str = "name, sha256, events, grants, first_link, last_link, ended_before, \
     archived_at, archived_by";

/// Every recorded segment, oldest first.
pub async fn recorded(db: &Db) -> Result<Vec<Segment>, ProjectionError> {
    let sql = format!("SELECT {COLUMNS} FROM ledger_segments ORDER BY archived_at, name");
    Ok(on_db!(db, pool => sqlx::query_as(&sql).fetch_all(pool).await)?)
}

/// Records `segment` inside the transaction that deletes its events from the log.
pub async fn record(tx: &mut DbTx, segment: &Segment) -> Result<(), ProjectionError> {
    let sql = format!(
        "INSERT INTO ledger_segments ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    );
    on_tx!(tx, conn => sqlx::query(&sql)
        .bind(&segment.name)
        .bind(&segment.sha256)
        .bind(segment.events)
        .bind(segment.grants)
        .bind(segment.first_link)
        .bind(segment.last_link)
        .bind(&segment.ended_before)
        .bind(&segment.archived_at)
        .bind(&segment.archived_by)
        .execute(conn)
        .await
        .map(drop))?;
    Ok(())
}

/// A segment's first line (how many events and grants it holds is in `ledger_segments`,
/// since the file is written as the log is walked).
pub fn header(name: &str, ended_before: &str, archived_at: &str) -> Vec<u8> {
    super::canonical_json(&serde_json::json!({
        "format": FORMAT, "segment": name, "ended_before": ended_before,
        "archived_at": archived_at,
    }))
}

/// The line of one archived event (see the module comment).
pub fn event_line(link: i64, digest: &str, previous_digest: &str, event: &StoredEvent) -> Vec<u8> {
    let mut line = Vec::with_capacity(512);
    line.extend_from_slice(format!("{{\"digest\":\"{digest}\",\"event\":").as_bytes());
    line.extend_from_slice(&super::canonical(event));
    line.extend_from_slice(
        format!(
            ",\"link\":{link},\"previous_digest\":\"{previous_digest}\",\"transaction\":{},\"type\":\"event\"}}",
            event.position.transaction
        )
        .as_bytes(),
    );
    line
}

/// One event as a segment holds it: as stored in the log (personal data sealed).
#[derive(Debug, Clone)]
pub struct ArchivedEvent {
    pub link: i64,
    pub digest: String,
    pub event: StoredEvent,
}

/// Reads an event line back.
fn parse_event_line(text: &str) -> Result<ArchivedEvent, String> {
    let line: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if line["type"] != "event" {
        return Err("not an event line".into());
    }
    let number = |value: &Value, what: &str| {
        value
            .as_i64()
            .ok_or_else(|| format!("`{what}` is not a number"))
    };
    let string = |value: &Value, what: &str| {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("`{what}` is not a string"))
    };
    let event = &line["event"];
    let raw_metadata: HashMap<String, String> = serde_json::from_value(event["metadata"].clone())
        .map_err(|e| format!("`metadata`: {e}"))?;
    let metadata = authledger_domain::metadata::EventMetadata::from_map(&raw_metadata)
        .map_err(|e| format!("`metadata`: {e}"))?;
    Ok(ArchivedEvent {
        link: number(&line["link"], "link")?,
        digest: string(&line["digest"], "digest")?,
        event: StoredEvent {
            position: Position {
                transaction: number(&line["transaction"], "transaction")?,
                global: number(&event["position"], "position")?,
            },
            aggregate_type: string(&event["aggregate_type"], "aggregate_type")?,
            aggregate_id: string(&event["aggregate_id"], "aggregate_id")?,
            sequence: number(&event["sequence"], "sequence")?,
            event_type: string(&event["event_type"], "event_type")?,
            event_version: string(&event["event_version"], "event_version")?,
            payload: event["payload"].clone(),
            metadata,
            raw_metadata,
            decoded: Default::default(),
            may_be_sealed: true,
        },
    })
}

/// What is wrong with a recorded segment's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum FileProblem {
    /// Not in the archive directory (or unreadable).
    Missing { segment: String, why: String },
    /// Its bytes are not those recorded when it was written.
    Altered { segment: String },
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileProblem::Missing { segment, why } => {
                write!(f, "archive segment {segment} cannot be read: {why}")
            }
            FileProblem::Altered { segment } => write!(
                f,
                "archive segment {segment} is not the file that was archived (its SHA-256 differs)"
            ),
        }
    }
}

/// The archive directory: where segments are written and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    dir: PathBuf,
}

impl Archive {
    pub fn new(dir: impl Into<PathBuf>) -> Archive {
        Archive { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The first problem with the recorded segments' files, if any: each must be present and
    /// hash to what was recorded.
    pub fn check_files(&self, segments: &[Segment]) -> Option<FileProblem> {
        for segment in segments {
            match sha256_of(&self.path_of(&segment.name)) {
                Err(e) => {
                    return Some(FileProblem::Missing {
                        segment: segment.name.clone(),
                        why: format!("{}: {e}", self.path_of(&segment.name).display()),
                    })
                }
                Ok(sha256) if sha256 != segment.sha256 => {
                    return Some(FileProblem::Altered {
                        segment: segment.name.clone(),
                    })
                }
                Ok(_) => {}
            }
        }
        None
    }

    /// Reads every segment in `segments` at once, in link order.
    pub fn open(&self, segments: &[Segment]) -> Result<Reader, ProjectionError> {
        self.open_with(segments, None)
    }

    /// [`Archive::open`], passing over unparsed every line without `only_containing`.
    fn open_with(
        &self,
        segments: &[Segment],
        only_containing: Option<String>,
    ) -> Result<Reader, ProjectionError> {
        let mut files = Vec::with_capacity(segments.len());
        for segment in segments {
            let path = self.path_of(&segment.name);
            let opened = std::fs::File::open(&path).map_err(|e| {
                ProjectionError::Archive(format!(
                    "archive segment {} cannot be read: {}: {e}",
                    segment.name,
                    path.display()
                ))
            })?;
            let mut lines = BufReader::new(opened).lines();
            // The header: checked to be a segment, then skipped.
            let header = lines.next().transpose().ok().flatten().unwrap_or_default();
            let format = serde_json::from_str::<Value>(&header)
                .ok()
                .and_then(|h| h["format"].as_str().map(str::to_owned));
            if format.as_deref() != Some(FORMAT) {
                return Err(ProjectionError::Archive(format!(
                    "{} is not an archive segment ({FORMAT})",
                    path.display()
                )));
            }
            files.push(SegmentFile {
                name: segment.name.clone(),
                lines,
                line: 1,
                next: None,
            });
        }
        let mut reader = Reader {
            files,
            only_containing,
        };
        for index in 0..reader.files.len() {
            reader.advance(index)?;
        }
        Ok(reader)
    }
}

/// Every recorded segment's events in link order: none when nothing is archived, refused
/// without the archive directory (`needs` says what needed it). With `only_containing`, lines
/// without that text are passed over unparsed.
pub async fn open_recorded(
    db: &Db,
    archive: Option<&Archive>,
    only_containing: Option<&str>,
    needs: &str,
) -> Result<Reader, ProjectionError> {
    let recorded = recorded(db).await?;
    match (archive, recorded.is_empty()) {
        (_, true) => Ok(Reader::none()),
        (None, false) => Err(ProjectionError::Archive(format!(
            "{} archive segment(s) hold events of this log; {needs} needs the archive directory \
             (--archive-dir or archive_dir)",
            recorded.len()
        ))),
        (Some(archive), false) => archive.open_with(&recorded, only_containing.map(str::to_owned)),
    }
}

/// The events of one aggregate held in the recorded segments, oldest first, their personal
/// data opened: an archived grant's history, for `events`, `history`, `state`, `token
/// inspect` and the console. None without segments; refused without the archive directory.
pub async fn aggregate_history(
    db: &Db,
    archive: Option<&Archive>,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<StoredEvent>, ProjectionError> {
    let mut reader = open_recorded(
        db,
        archive,
        Some(aggregate_id),
        "reading an archived history",
    )
    .await?;
    let mut events = Vec::new();
    while let Some(archived) = reader.take()? {
        let event = archived.event;
        if event.aggregate_type == aggregate_type && event.aggregate_id == aggregate_id {
            events.push(event);
        }
    }
    events.sort_by_key(|e| e.sequence);
    crate::event_log::opened(db, events).await
}

/// SHA-256 of a file, hex.
pub fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..read]);
    }
}

struct SegmentFile {
    name: String,
    lines: std::io::Lines<BufReader<std::fs::File>>,
    line: usize,
    next: Option<ArchivedEvent>,
}

/// The events of several segments merged in link order (each file is in link order).
pub struct Reader {
    files: Vec<SegmentFile>,
    /// Lines without this text are passed over unparsed.
    only_containing: Option<String>,
}

impl Reader {
    /// An empty reader: no segments.
    pub fn none() -> Reader {
        Reader {
            files: vec![],
            only_containing: None,
        }
    }

    fn advance(&mut self, index: usize) -> Result<(), ProjectionError> {
        let file = &mut self.files[index];
        let wanted = |text: &std::io::Result<String>| match (&self.only_containing, text) {
            (Some(needle), Ok(text)) => text.contains(needle.as_str()),
            _ => true,
        };
        let mut next = file.lines.next();
        while let Some(text) = next.as_ref().filter(|text| !wanted(text)) {
            let _ = text;
            file.line += 1;
            next = file.lines.next();
        }
        file.next = match next {
            None => None,
            Some(text) => {
                file.line += 1;
                let corrupt = |why: String| {
                    ProjectionError::Archive(format!(
                        "archive segment {} line {}: {why}",
                        file.name, file.line
                    ))
                };
                let text = text.map_err(|e| corrupt(e.to_string()))?;
                Some(parse_event_line(&text).map_err(corrupt)?)
            }
        };
        Ok(())
    }

    fn lowest(&self) -> Option<usize> {
        (0..self.files.len())
            .filter(|i| self.files[*i].next.is_some())
            .min_by_key(|i| self.files[*i].next.as_ref().map(|e| e.link))
    }

    /// The next event in link order, without taking it.
    pub fn peek(&self) -> Option<&ArchivedEvent> {
        self.lowest().and_then(|i| self.files[i].next.as_ref())
    }

    /// Takes the next event in link order.
    pub fn take(&mut self) -> Result<Option<ArchivedEvent>, ProjectionError> {
        let Some(index) = self.lowest() else {
            return Ok(None);
        };
        let event = self.files[index].next.take();
        self.advance(index)?;
        Ok(event)
    }

    /// The archived event at `link`, passing over those before it. Links must be asked for in
    /// increasing order.
    pub fn at_link(&mut self, link: i64) -> Result<Option<ArchivedEvent>, ProjectionError> {
        while let Some(next) = self.peek().map(|e| e.link) {
            if next > link {
                return Ok(None);
            }
            let event = self.take()?;
            if next == link {
                return Ok(event);
            }
        }
        Ok(None)
    }

    /// The archived event of `link`, if it holds the event at `global_position` (what a link
    /// whose event is not in the live log should find). Links must be asked for in increasing
    /// order.
    pub fn event_of(
        &mut self,
        link: i64,
        global_position: i64,
    ) -> Result<Option<ArchivedEvent>, ProjectionError> {
        Ok(self
            .at_link(link)?
            .filter(|a| a.event.position.global == global_position))
    }

    /// Archived events up to `position` (inclusive, all when `None`), at most `limit`, in
    /// commit order.
    pub fn up_to(
        &mut self,
        position: Option<Position>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, ProjectionError> {
        let mut events = Vec::new();
        while events.len() < limit {
            match self.peek() {
                Some(next) if position.is_none_or(|p| next.event.position <= p) => {}
                _ => break,
            }
            if let Some(archived) = self.take()? {
                events.push(archived.event);
            }
        }
        Ok(events)
    }
}
