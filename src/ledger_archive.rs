//! `authledger ledger archive`: the events of grants that ended longer ago than the retention
//! period leave the live log for a segment file, still covered by the chain and its seals.
//!
//! 1. Every projection and the linker are brought up to date: only events every reader has
//!    passed and the chain has linked are moved (a reader behind them would never see them).
//! 2. The grants that had ended before the cutoff are taken from the grants view: revoked
//!    before it, or with no token valid at it.
//! 3. The chain is walked in link order and those grants' events are written to a new segment
//!    in the archive directory (format in `authledger_projections::ledger::segments`), which
//!    is flushed to disk and hashed.
//! 4. One transaction records the segment (name, SHA-256, links) and deletes exactly those
//!    events from the log. If any of them is already gone (another archive ran at the same
//!    time), it is rolled back and the file removed.
//!
//! What stays: every link and seal, the views (a rebuild replays segments and log merged),
//! usage totals and the audit log. What changes: the archived grants' history is read from the
//! segment, not the log (`events`, `history` and the console no longer show it), and commands
//! on an archived grant find no grant.

use std::collections::HashSet;
use std::io::Write;

use authledger_projections::event_log::{self, Position};
use authledger_projections::grants::GrantsView;
use authledger_projections::ledger::segments::{self, Archive, Segment};
use authledger_projections::ledger::{self, GENESIS};
use authledger_projections::{checkpoint, on_tx, view_time};
use chrono::{DateTime, Utc};

use crate::error::AppError;
use crate::store::Store;

/// Links read per page of the walk.
const PAGE: i64 = 5_000;
/// Events deleted per statement.
const DELETE_BATCH: usize = 500;

/// What an archive run did (or, dry, would do).
#[derive(Debug, serde::Serialize)]
pub struct Archived {
    /// Grants ended before this instant were archived.
    pub ended_before: String,
    pub grants: usize,
    pub events: usize,
    /// The segment written; none for a dry run or when nothing was due.
    pub segment: Option<Segment>,
    pub dry_run: bool,
}

/// Moves the events of grants ended before `ended_before` into a new segment of `archive`
/// (or counts them, `dry_run`). `actor` is recorded with the segment.
pub async fn archive(
    store: &Store,
    archive: &Archive,
    ended_before: DateTime<Utc>,
    actor: &str,
    dry_run: bool,
) -> Result<Archived, AppError> {
    store.runner.catch_up_fully().await?;
    ledger::link_all(&store.db).await?;
    let horizon = horizon(store).await?;
    // An unredeemed code is live for its lifetime after the grant was created.
    let code_ttl = chrono::Duration::seconds(i64::from(store.settings_values().await?.code_ttl));
    let ended = GrantsView::ended_before(
        &store.db,
        &view_time(ended_before),
        &view_time(ended_before - code_ttl),
    )
    .await?;
    let mut outcome = Archived {
        ended_before: view_time(ended_before),
        grants: 0,
        events: 0,
        segment: None,
        dry_run,
    };
    if ended.is_empty() {
        return Ok(outcome);
    }
    let archived_at = Utc::now();
    let name = format!(
        "segment-{}-{}.jsonl",
        archived_at.format("%Y%m%dT%H%M%S%.6fZ"),
        uuid::Uuid::new_v4().simple()
    );
    let path = archive.path_of(&name);
    let mut file = match dry_run {
        true => None,
        false => Some(create(archive, &path, &name, ended_before, archived_at)?),
    };
    let walked = walk(store, &ended, horizon, file.as_mut()).await;
    let recorded = match (walked, file) {
        (Err(error), _) => Err(error),
        (Ok(walked), None) => {
            outcome.grants = walked.grants;
            outcome.events = walked.positions.len();
            return Ok(outcome);
        }
        (Ok(walked), Some(file)) => {
            outcome.grants = walked.grants;
            outcome.events = walked.positions.len();
            match walked.positions.is_empty() {
                true => Ok(None),
                false => {
                    let segment = Segment {
                        name: name.clone(),
                        sha256: String::new(),
                        events: walked.positions.len() as i64,
                        grants: walked.grants as i64,
                        first_link: walked.first_link,
                        last_link: walked.last_link,
                        ended_before: view_time(ended_before),
                        archived_at: view_time(archived_at),
                        archived_by: actor.to_owned(),
                    };
                    match close(file, archive, &path) {
                        Ok(sha256) => {
                            let segment = Segment { sha256, ..segment };
                            commit(store, &segment, &walked.positions)
                                .await
                                .map(|()| Some(segment))
                        }
                        Err(error) => Err(error),
                    }
                }
            }
        }
    };
    match recorded {
        Ok(Some(segment)) => {
            outcome.segment = Some(segment);
            Ok(outcome)
        }
        Ok(None) => {
            let _ = std::fs::remove_file(&path);
            Ok(outcome)
        }
        Err(error) => {
            let _ = std::fs::remove_file(&path);
            Err(error)
        }
    }
}

type SegmentWriter = std::io::BufWriter<std::fs::File>;

/// Creates the segment file (never over an existing one) and writes its first line.
fn create(
    archive: &Archive,
    path: &std::path::Path,
    name: &str,
    ended_before: DateTime<Utc>,
    archived_at: DateTime<Utc>,
) -> Result<SegmentWriter, AppError> {
    std::fs::create_dir_all(archive.dir()).map_err(|e| unwritable(archive, e))?;
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| unwritable(archive, e))?;
    let mut file = std::io::BufWriter::new(created);
    let header = segments::header(name, &view_time(ended_before), &view_time(archived_at));
    file.write_all(&header)
        .and_then(|()| file.write_all(b"\n"))
        .map_err(|e| unwritable(archive, e))?;
    Ok(file)
}

/// Flushes the segment to disk; returns its SHA-256.
fn close(
    file: SegmentWriter,
    archive: &Archive,
    path: &std::path::Path,
) -> Result<String, AppError> {
    file.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|file| file.sync_all())
        .and_then(|()| segments::sha256_of(path))
        .map_err(|e| unwritable(archive, e))
}

fn unwritable(archive: &Archive, error: std::io::Error) -> AppError {
    AppError::invalid_field(
        "archive_dir",
        format!(
            "the archive directory {} cannot be written: {error}",
            archive.dir().display()
        ),
    )
}

/// The last position every projection and the linker have passed: nothing after it is
/// archived.
async fn horizon(store: &Store) -> Result<Position, AppError> {
    let mut lowest: Option<Position> = None;
    for name in store.runner.names().into_iter().chain([ledger::READER]) {
        let at = checkpoint::read(&store.db, name).await?;
        lowest = Some(lowest.map_or(at, |l| l.min(at)));
    }
    Ok(lowest.unwrap_or_default())
}

/// What the walk found.
struct Walked {
    grants: usize,
    positions: Vec<i64>,
    first_link: i64,
    last_link: i64,
}

/// Walks the chain in link order up to `horizon` and collects the events of `ended` grants,
/// writing each to `file` as a segment line (a dry run has none).
async fn walk(
    store: &Store,
    ended: &HashSet<String>,
    horizon: Position,
    mut file: Option<&mut SegmentWriter>,
) -> Result<Walked, AppError> {
    let mut grants = HashSet::new();
    let mut walked = Walked {
        grants: 0,
        positions: Vec::new(),
        first_link: 0,
        last_link: 0,
    };
    let mut previous = hex::encode(GENESIS);
    let mut next = 1;
    'links: loop {
        let links = ledger::links(&store.db, next, PAGE).await?;
        let Some(end) = links.last().map(|l| l.link) else {
            break;
        };
        let positions: Vec<i64> = links.iter().map(|l| l.global_position).collect();
        let events = event_log::read_positions(&store.db, &positions).await?;
        for link in &links {
            // An event not in the log is archived already, or gone (which `ledger verify`
            // reports): not this run's.
            if let Some(event) = events.get(&link.global_position) {
                if event.position > horizon {
                    break 'links;
                }
                if event.aggregate_type == "Grant" && ended.contains(&event.aggregate_id) {
                    if let Some(file) = file.as_deref_mut() {
                        let mut line =
                            segments::event_line(link.link, &link.digest, &previous, event);
                        line.push(b'\n');
                        file.write_all(&line)
                            .map_err(|e| AppError::Internal(e.into()))?;
                    }
                    if !grants.contains(&event.aggregate_id) {
                        grants.insert(event.aggregate_id.clone());
                    }
                    walked.positions.push(link.global_position);
                    if walked.first_link == 0 {
                        walked.first_link = link.link;
                    }
                    walked.last_link = link.link;
                }
            }
            previous.clone_from(&link.digest);
        }
        next = end + 1;
    }
    walked.grants = grants.len();
    Ok(walked)
}

/// Records the segment and deletes its events from the log, in one transaction.
async fn commit(store: &Store, segment: &Segment, positions: &[i64]) -> Result<(), AppError> {
    let mut tx = store.db.begin_write().await.map_err(stored)?;
    let postgres = matches!(store.db, authledger_projections::db::Db::Postgres(_));
    // The one deletion the log's guard lets through (migration 20261128000018).
    let allow = match postgres {
        true => "SET LOCAL authledger.archiving = 'on'",
        false => "INSERT INTO ledger_archiving (archiving) VALUES (1)",
    };
    on_tx!(&mut tx, conn => sqlx::query(allow).execute(conn).await.map(drop)).map_err(stored)?;
    segments::record(&mut tx, segment).await?;
    let mut deleted = 0;
    for chunk in positions.chunks(DELETE_BATCH) {
        deleted += on_tx!(&mut tx, conn => {
            let mut delete =
                sqlx::QueryBuilder::new("DELETE FROM events WHERE global_position IN (");
            let mut list = delete.separated(", ");
            for position in chunk {
                list.push_bind(*position);
            }
            list.push_unseparated(")");
            delete.build().execute(conn).await.map(|r| r.rows_affected())
        })
        .map_err(stored)?;
    }
    if deleted != positions.len() as u64 {
        return Err(AppError::Conflict(
            "another archive ran at the same time and moved some of these events; nothing was \
             archived by this one: run it again"
                .into(),
        ));
    }
    if !postgres {
        on_tx!(&mut tx, conn => sqlx::query("DELETE FROM ledger_archiving").execute(conn).await.map(drop))
            .map_err(stored)?;
    }
    tx.commit().await.map_err(stored)?;
    Ok(())
}

fn stored(error: sqlx::Error) -> AppError {
    authledger_projections::ProjectionError::from(error).into()
}
