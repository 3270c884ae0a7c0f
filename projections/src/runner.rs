//! The projection runner: feeds each projection the log in commit order, checkpointed.
//!
//! One catch-up step is one transaction for all projections: lock their checkpoint rows, read
//! the next batch after the lowest, apply it to the views, move the checkpoints, commit. Views
//! and checkpoints therefore always agree, whatever crashes when. The same step serves the
//! read-your-writes update right after a command ([`ProjectionRunner::wait_for`]) and the
//! start-up / background catch-up ([`ProjectionRunner::catch_up`]): there is only one way a
//! view changes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::batch::ViewTx;
use crate::checkpoint;
use crate::db::{Db, StoreKind, Writes};
use crate::error::ProjectionError;
use crate::event_log::{self, Position};
use crate::ledger::segments::Archive;
use crate::projection::Projection;
use crate::rebuild;

const BATCH: i64 = 500;
/// A rebuild reads the log in larger pages: fewer, larger statements per event. (Measured on
/// Postgres with a million events: pages of 2,000 lowered the rebuild's memory from about 210
/// to 140 MiB but took about 15% longer.)
const REBUILD_BATCH: i64 = 5_000;
/// How long a command waits for its own events to reach the views. On Postgres the wait is
/// only as long as the oldest transaction still open when the command committed.
const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(5);

pub struct ProjectionRunner {
    db: Db,
    projections: Vec<Arc<dyn Projection>>,
    /// One catch-up at a time in this process; the lowest checkpoint it reached, so callers
    /// waiting for a position that is already projected return without a query.
    reached: Mutex<Position>,
    /// Events per page of a rebuild: [`REBUILD_BATCH`] unless a test asks for small pages.
    rebuild_page: std::sync::atomic::AtomicI64,
    /// This process's latest rebuild, for the console.
    latest_rebuild: rebuild::Latest,
    /// Where archived events are, for a rebuild to replay them (see `ledger::segments`).
    archive: std::sync::RwLock<Option<Archive>>,
}

impl ProjectionRunner {
    /// Registers each projection's checkpoint row (at 0 if new).
    pub async fn new(
        db: Db,
        projections: Vec<Arc<dyn Projection>>,
    ) -> Result<Self, ProjectionError> {
        for projection in &projections {
            checkpoint::register_view(&db, projection.name()).await?;
        }
        Ok(ProjectionRunner {
            db,
            projections,
            reached: Mutex::new(Position::default()),
            rebuild_page: std::sync::atomic::AtomicI64::new(REBUILD_BATCH),
            latest_rebuild: rebuild::Latest::default(),
            archive: std::sync::RwLock::new(None),
        })
    }

    /// Makes later rebuilds read the log `events` at a time, so a test can make a grant's events
    /// fall on different pages (what a rebuild of a large log does) with a small one.
    pub fn rebuild_in_pages_of(&self, events: i64) {
        self.rebuild_page
            .store(events.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Where a rebuild finds archived events (the `archive_dir` configuration).
    pub fn use_archive(&self, archive: Option<Archive>) {
        *self.archive.write().unwrap_or_else(|e| e.into_inner()) = archive;
    }

    /// The archive directory, when one is configured.
    pub fn archive(&self) -> Option<Archive> {
        self.archive
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.projections.iter().map(|p| p.name()).collect()
    }

    /// Brings every projection up to the end of the readable log; returns the lowest
    /// checkpoint reached.
    pub async fn catch_up(&self) -> Result<Position, ProjectionError> {
        let mut reached = self.reached.lock().await;
        *reached = self.catch_up_locked(*reached).await?;
        Ok(*reached)
    }

    async fn catch_up_locked(&self, mut reached: Position) -> Result<Position, ProjectionError> {
        loop {
            let read;
            (reached, read) = step_all(&self.db, &self.projections, reached).await?;
            if read < BATCH as usize {
                return Ok(reached);
            }
        }
    }

    /// Brings every projection up to the last event committed when this is called, waiting
    /// (boundedly) for older transactions elsewhere to end on Postgres, where a single pass may
    /// not yet see it. What start-up runs before serving.
    pub async fn catch_up_fully(&self) -> Result<(), ProjectionError> {
        match event_log::last_position(&self.db).await? {
            Some(last) => self.wait_for(last).await,
            None => self.catch_up().await.map(drop),
        }
    }

    /// Returns once every projection has applied the event at `position` (read-your-writes
    /// after a command).
    pub async fn wait_for(&self, position: Position) -> Result<(), ProjectionError> {
        let deadline = tokio::time::Instant::now() + READ_YOUR_WRITES_TIMEOUT;
        let mut pause = Duration::from_millis(1);
        loop {
            {
                let mut reached = self.reached.lock().await;
                if *reached >= position {
                    return Ok(());
                }
                *reached = self.catch_up_locked(*reached).await?;
                if *reached >= position {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ProjectionError::Lagging(
                    position.global,
                    READ_YOUR_WRITES_TIMEOUT,
                ));
            }
            // An older transaction is still open on Postgres: our event is committed but not
            // yet below the safe horizon.
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    /// Rebuilds the named projection (or every one) from position 0: its views are built
    /// again from the whole log and put in place of the old ones in one commit, with the
    /// checkpoints. Readers see the old views until that commit and the rebuilt ones after it,
    /// never a half-built one; on Postgres the old views keep following the log meanwhile (see
    /// `rebuild.rs`). Returns how many events were replayed.
    pub async fn rebuild(&self, name: Option<&str>) -> Result<u64, ProjectionError> {
        let selected = self.selected(name)?;
        let head = event_log::last_position(&self.db)
            .await?
            .map_or(0, |p| p.global);
        let progress = self
            .latest_rebuild
            .begin(name, head, false)
            .expect("a non-exclusive rebuild always begins");
        self.rebuild_selected(&selected, progress).await
    }

    /// Starts rebuilding every view (or `name`) on a task of its own and returns at once;
    /// [`ProjectionRunner::latest_rebuild`] follows it. Refused while another rebuild started
    /// this way is running, or for an unknown name.
    pub async fn start_rebuild(self: &Arc<Self>, name: Option<&str>) -> Result<(), RebuildRefused> {
        let selected = self.selected(name).map_err(RebuildRefused::Failed)?;
        let head = event_log::last_position(&self.db)
            .await
            .map_err(RebuildRefused::Failed)?
            .map_or(0, |p| p.global);
        let progress = self
            .latest_rebuild
            .begin(name, head, true)
            .ok_or(RebuildRefused::Running)?;
        let runner = self.clone();
        tokio::spawn(async move {
            if let Err(error) = runner.rebuild_selected(&selected, progress).await {
                tracing::error!(%error, "rebuild failed; the old views stay");
            }
        });
        Ok(())
    }

    /// What this process's latest rebuild is doing or did, if it started one.
    pub fn latest_rebuild(&self) -> Option<rebuild::RebuildReport> {
        self.latest_rebuild.report()
    }

    async fn rebuild_selected(
        &self,
        selected: &[Arc<dyn Projection>],
        progress: Arc<rebuild::Progress>,
    ) -> Result<u64, ProjectionError> {
        let started = std::time::Instant::now();
        let page = self.rebuild_page.load(std::sync::atomic::Ordering::Relaxed);
        let archive = self.archive();
        let replayed = async {
            let replayed = match &self.db {
                Db::Sqlite(_) => {
                    rebuild::beside_then_swap(&self.db, selected, page, archive, progress.clone())
                        .await?
                }
                Db::Postgres(pool) => {
                    rebuild::side_by_side(&self.db, pool, selected, page, archive, progress.clone())
                        .await?
                }
            };
            self.catch_up().await?;
            Ok::<_, ProjectionError>(replayed)
        }
        .await;
        let outcome = match &replayed {
            Ok(events) => rebuild::RebuildState::Finished {
                events: *events,
                seconds: started.elapsed().as_secs_f64(),
            },
            Err(error) => rebuild::RebuildState::Failed {
                error: error.to_string(),
            },
        };
        self.latest_rebuild.end(&progress, outcome);
        replayed
    }

    /// The projections `name` names (every one for `None`).
    fn selected(&self, name: Option<&str>) -> Result<Vec<Arc<dyn Projection>>, ProjectionError> {
        Ok(match name {
            None => self.projections.clone(),
            Some(name) => {
                let found: Vec<_> = self
                    .projections
                    .iter()
                    .filter(|p| p.name() == name)
                    .cloned()
                    .collect();
                if found.is_empty() {
                    return Err(ProjectionError::UnknownProjection {
                        name: name.to_owned(),
                        known: self.names(),
                    });
                }
                found
            }
        })
    }
}

/// One transaction for every projection: lock their checkpoints, read the batch after the
/// lowest, give each projection the events past its own checkpoint, move every checkpoint,
/// commit. One commit per batch, whatever the number of projections; a failure anywhere rolls
/// the whole batch back. Returns the lowest checkpoint reached and how many events were read.
///
/// `reached` is where this process's last step left the lowest checkpoint. On SQLite the batch
/// after it is read before the write lock is taken: every writer of the process waits while
/// the projector holds it (reading was a fifth of that time under load), and when nothing is
/// new the lock is not taken at all. Checkpoints only move forward, so the read is used only
/// if no other process moved the lowest meanwhile.
async fn step_all(
    db: &Db,
    projections: &[Arc<dyn Projection>],
    reached: Position,
) -> Result<(Position, usize), ProjectionError> {
    let read_ahead = match db.kind() {
        StoreKind::Sqlite => {
            let mut tx = db.begin().await?;
            let events = event_log::read_after_as_stored(&mut tx, reached, BATCH).await?;
            if events.is_empty() {
                return Ok((reached, 0));
            }
            Some(events)
        }
        StoreKind::Postgres => None,
    };
    let mut tx = ViewTx::new(db.begin_write_to(Writes::Views).await?);
    let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
    let checkpoints = checkpoint::lock_all(tx.db().await?, &names).await?;
    let lowest = checkpoints.iter().copied().min().unwrap_or_default();
    let events = match read_ahead {
        Some(mut events) if lowest == reached => {
            event_log::open_sealed(tx.db().await?, &mut events).await?;
            events
        }
        _ => event_log::read_after(tx.db().await?, lowest, BATCH).await?,
    };
    let Some(last) = events.last().map(|e| e.position) else {
        // Nothing new; dropping the transaction rolls it back and releases the locks.
        return Ok((lowest, 0));
    };
    for event in &events {
        for (projection, checkpoint) in projections.iter().zip(&checkpoints) {
            if event.position > *checkpoint {
                projection.apply(&mut tx, event).await?;
            }
        }
    }
    let moves: Vec<(&str, Position)> = names
        .iter()
        .zip(&checkpoints)
        .map(|(name, checkpoint)| (*name, last.max(*checkpoint)))
        .collect();
    checkpoint::save_all(tx.db().await?, &moves).await?;
    tx.commit().await?;
    Ok((last, events.len()))
}

/// Why [`ProjectionRunner::start_rebuild`] did not start one.
#[derive(Debug, thiserror::Error)]
pub enum RebuildRefused {
    #[error("a rebuild is running already")]
    Running,
    #[error(transparent)]
    Failed(ProjectionError),
}
