//! `projections rebuild`: replaying the whole log into fresh views, then putting them in place.
//!
//! Two costs dominate a rebuild, and both are avoided the same way on both stores:
//! - Maintaining a view's secondary indexes row by row (measured on Postgres with a million
//!   grants: 14 index entries per token, each a random B-tree insert), while building an index
//!   over a full table is one sort. So the replay writes into tables that keep only their
//!   unique indexes (the projections look rows up and upsert by them) and the other indexes
//!   are created at the end, with the names and definitions the migrations gave them, read
//!   from the catalog rather than repeated here.
//! - Reading and decoding the log: the next page is read on a connection of its own while the
//!   current one is applied.
//!
//! **SQLite** (`sqlite.rs`) has one writer, so the new views are built in a scratch database
//! file beside the store (no journal, no fsync, no lock on the store: the server keeps
//! committing and projecting), catching up with what was committed meanwhile. The views have a
//! file of their own (`views_file.rs`), so a rebuild of every projection (each replayed on a
//! connection of its own, into a part file then merged) makes the scratch file the views file:
//! its secondary indexes are made, then under the views file's write lock it takes the last
//! few events and checkpoints and the views link is switched to it. Readers see the old views
//! until the switch; the projector waits only for those last events, and commands not at all
//! (the log's file has a lock of its own). A rebuild of some projections copies their tables
//! into the views file in one write transaction instead.
//!
//! **Postgres** (`postgres.rs`) builds the new views next to the old ones, in a schema of
//! its own, while the server keeps serving and projecting into the old ones:
//! 1. an advisory lock makes rebuilds take turns, and schemas a crashed rebuild left behind
//!    are dropped;
//! 2. each projection is replayed on a connection of its own, into copies of its tables in the
//!    scratch schema (put first on the `search_path` of each of its transactions, so the
//!    projections' unqualified SQL lands there), a transaction per page of the log, and its
//!    indexes are built at the end. The log is read once and every page handed to each
//!    projection, so the backends writing different views work in parallel (one backend
//!    writing every view was the bottleneck: measured, it was busy 70% of the time and the
//!    rest of the machine idle);
//! 3. one short transaction then locks the checkpoints (waiting for a live projector's batch
//!    in flight), replays onto the new tables whatever was committed during the build, drops
//!    the old tables, moves the new ones in and moves the checkpoints. Readers see the old
//!    views until that commit, wait only for the swap, and never see a checkpoint move back.
//!
//! The new tables get the old tables' privileges (a reporting role's `SELECT` on the audit
//! log); triggers or row-level policies an operator added to a view table by hand are not
//! carried over. If anything fails, the scratch schema is dropped and the old views stay.

use std::sync::Arc;

use tokio::sync::mpsc;

mod postgres;
mod progress;
mod sqlite;

pub(crate) use postgres::side_by_side;
pub(crate) use progress::{Latest, Progress};
pub use progress::{RebuildReport, RebuildState};
pub(crate) use sqlite::beside_then_swap;

use crate::batch::ViewTx;
use crate::db::Db;
use crate::event_log::{self, Position, StoredEvent};
use crate::ledger::segments::{self, Archive};
use crate::{Projection, ProjectionError};

/// A page of the log as the reader hands it to every projection being rebuilt; an empty page
/// is the end of the log. A channel that closes before it means the reading stopped.
pub(super) type Page = Arc<Vec<StoredEvent>>;
pub(super) type Pages = mpsc::Receiver<Result<Page, ProjectionError>>;

/// Applies every page to every projection; returns how many events there were and the last
/// one's position. The per-page memo of grants is cleared after each page, so a rebuild's
/// memory does not grow with the log.
pub(super) async fn replay(
    tx: &mut ViewTx,
    projections: &[Arc<dyn Projection>],
    mut pages: Pages,
) -> Result<(u64, Option<Position>), ProjectionError> {
    let mut replayed = 0;
    let mut position = None;
    loop {
        let events = pages
            .recv()
            .await
            .ok_or(ProjectionError::RebuildStopped)??;
        let Some(last) = events.last().map(|e| e.position) else {
            break;
        };
        for event in events.iter() {
            for projection in projections {
                projection.apply(tx, event).await?;
            }
        }
        tx.forget_grants();
        replayed += events.len() as u64;
        position = Some(last);
    }
    Ok((replayed, position))
}

/// Hands every page of `pages` to one builder per projection, each a task of its own (built
/// by `build` from the projection and its feed of pages), so builders writing different
/// views work in parallel; waits for all of them. Returns how many events each was given and
/// the last one's position. A builder that fails is the error reported; the others stop.
pub(super) async fn side_by_side_replay<B, F>(
    mut pages: Pages,
    projections: &[Arc<dyn Projection>],
    build: B,
) -> Result<(u64, Position), ProjectionError>
where
    B: Fn(Arc<dyn Projection>, Pages) -> F,
    F: std::future::Future<Output = Result<u64, ProjectionError>> + Send + 'static,
{
    let mut feeds = Vec::new();
    let mut builders = tokio::task::JoinSet::new();
    for projection in projections {
        let (feed, pages) = mpsc::channel(2);
        feeds.push(feed);
        builders.spawn(build(projection.clone(), pages));
    }
    // The reader's pages, to every builder. A builder that stopped has failed: its error is
    // what the join below reports, and dropping the feeds stops the others.
    let fan_out = async move {
        let mut reached = Position::default();
        while let Some(page) = pages.recv().await {
            let page = page?;
            if let Some(last) = page.last() {
                reached = last.position;
            }
            for feed in &feeds {
                if feed.send(Ok(page.clone())).await.is_err() {
                    return Ok(reached);
                }
            }
            if page.is_empty() {
                break;
            }
        }
        Ok::<Position, ProjectionError>(reached)
    };
    let read = fan_out.await;
    let mut replayed = 0;
    let mut failure = None;
    let reached = read.unwrap_or_else(|error| {
        failure = Some(error);
        Position::default()
    });
    while let Some(built) = builders.join_next().await {
        match built {
            Ok(Ok(events)) => replayed = events,
            // A builder that failed is the cause; the others stopped because of it.
            Ok(Err(error)) => {
                if matches!(failure, None | Some(ProjectionError::RebuildStopped)) {
                    failure = Some(error);
                }
                builders.abort_all();
            }
            Err(join) if join.is_cancelled() => {}
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }
    match failure {
        Some(error) => Err(error),
        None => Ok((replayed, reached)),
    }
}

/// The log from the start, page by page, read on a connection of its own while the rebuild
/// applies the previous page: reading and decoding overlap with writing the views. An empty
/// page ends it. Any page is as valid as the rebuild transaction's own read would be: the log
/// only grows, and the rebuild's checkpoint is the last event it applied.
///
/// Events moved to archive segments (`ledger archive`) are merged back in commit order, so the
/// views come out as if they had never left the log; a log with segments cannot be rebuilt
/// without the archive directory.
pub(super) fn read_ahead(
    db: &Db,
    page: i64,
    archive: Option<Archive>,
    progress: Arc<Progress>,
) -> Pages {
    let (pages, receiver) = mpsc::channel(2);
    let db = db.clone();
    tokio::spawn(async move {
        let mut position = Position::default();
        let opened = segments::open_recorded(&db, archive.as_ref(), None, "a rebuild").await;
        let mut archived = match opened {
            Ok(reader) => reader,
            Err(error) => {
                let _ = pages.send(Err(error)).await;
                return;
            }
        };
        loop {
            let page = read_merged(&db, &mut archived, position, page).await;
            let end = match &page {
                Ok(events) => match events.last() {
                    Some(last) => {
                        position = last.position;
                        progress.read(events.len(), position.global);
                        false
                    }
                    None => true,
                },
                Err(_) => true,
            };
            // A closed channel means the rebuild stopped (failed): stop reading too.
            if pages.send(page.map(Arc::new)).await.is_err() || end {
                break;
            }
        }
    });
    receiver
}

/// The next events after `position` of the live log and the archive merged in commit order:
/// up to `page` of each. Live events past the last archived one taken, when the archive has
/// more, are left for the next page (read again from the log after this page's last event).
async fn read_merged(
    db: &Db,
    archived: &mut segments::Reader,
    position: Position,
    page: i64,
) -> Result<Vec<StoredEvent>, ProjectionError> {
    let mut live = {
        let mut tx = db.begin().await?;
        event_log::read_after(&mut tx, position, page).await?
    };
    if archived.peek().is_none() {
        return Ok(live);
    }
    // A full live page may stop before archived events that come after it; a short one is
    // the end of the live log, so any archived event may follow.
    let live_bound = match live.len() as i64 == page {
        true => live.last().map(|e| e.position),
        false => None,
    };
    let from_archive = archived.up_to(live_bound, page as usize)?;
    let archive_has_more = archived
        .peek()
        .is_some_and(|next| live_bound.is_none_or(|bound| next.event.position <= bound));
    if archive_has_more {
        if let Some(last) = from_archive.last().map(|e| e.position) {
            live.retain(|e| e.position < last);
        }
    }
    let from_archive = event_log::opened(db, from_archive).await?;
    let mut merged = Vec::with_capacity(live.len() + from_archive.len());
    let mut live = live.into_iter().peekable();
    let mut from_archive = from_archive.into_iter().peekable();
    loop {
        let take_live = match (live.peek(), from_archive.peek()) {
            (Some(l), Some(a)) => l.position < a.position,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        merged.extend(if take_live {
            live.next()
        } else {
            from_archive.next()
        });
    }
    Ok(merged)
}
