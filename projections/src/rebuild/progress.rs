//! What a rebuild in this process is doing, or last did: read by the console while the
//! rebuild runs on a task of its own.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// Counters the log reader of a running rebuild moves after each page it reads (replay
/// trails them by at most the two pages in flight).
#[derive(Debug, Default)]
pub(crate) struct Progress {
    reached: AtomicI64,
    events: AtomicU64,
}

impl Progress {
    pub(crate) fn read(&self, page_events: usize, last_position: i64) {
        self.events.fetch_add(page_events as u64, Ordering::Relaxed);
        self.reached.store(last_position, Ordering::Relaxed);
    }
}

/// A rebuild as the console shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildReport {
    /// The view rebuilt, or `None` for every view.
    pub name: Option<String>,
    pub started_at: DateTime<Utc>,
    pub state: RebuildState,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RebuildState {
    /// Reading the log: `reached` of `head` (global positions; the log's last one when the
    /// rebuild began), `events` read so far.
    Running {
        reached: i64,
        head: i64,
        events: u64,
    },
    Finished {
        events: u64,
        seconds: f64,
    },
    Failed {
        error: String,
    },
}

impl RebuildState {
    pub fn is_running(&self) -> bool {
        matches!(self, RebuildState::Running { .. })
    }
}

/// The runner's record of its latest rebuild.
#[derive(Debug, Default)]
pub(crate) struct Latest(std::sync::Mutex<Option<Running>>);

#[derive(Debug)]
struct Running {
    name: Option<String>,
    started_at: DateTime<Utc>,
    head: i64,
    progress: Arc<Progress>,
    ended: Option<RebuildState>,
}

impl Latest {
    /// Records a rebuild as begun and returns its counters; `None` if `exclusive` and one is
    /// running already.
    pub(crate) fn begin(
        &self,
        name: Option<&str>,
        head: i64,
        exclusive: bool,
    ) -> Option<Arc<Progress>> {
        let mut latest = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if exclusive && latest.as_ref().is_some_and(|r| r.ended.is_none()) {
            return None;
        }
        let progress = Arc::new(Progress::default());
        *latest = Some(Running {
            name: name.map(str::to_owned),
            started_at: Utc::now(),
            head,
            progress: progress.clone(),
            ended: None,
        });
        Some(progress)
    }

    pub(crate) fn end(&self, progress: &Arc<Progress>, outcome: RebuildState) {
        let mut latest = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // A later rebuild may have replaced this one's record (the CLI-style `rebuild`
        // does not wait its turn here): only this rebuild's own record is ended.
        if let Some(running) = latest
            .as_mut()
            .filter(|r| Arc::ptr_eq(&r.progress, progress))
        {
            running.ended = Some(outcome);
        }
    }

    pub(crate) fn report(&self) -> Option<RebuildReport> {
        let latest = self.0.lock().unwrap_or_else(|p| p.into_inner());
        latest.as_ref().map(|r| RebuildReport {
            name: r.name.clone(),
            started_at: r.started_at,
            state: r.ended.clone().unwrap_or_else(|| RebuildState::Running {
                reached: r.progress.reached.load(Ordering::Relaxed),
                head: r.head,
                events: r.progress.events.load(Ordering::Relaxed),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebuild_follows_its_pages_and_a_second_one_waits_for_the_first_to_end() {
        let latest = Latest::default();
        assert_eq!(latest.report(), None);
        let first = latest.begin(Some("audit"), 10, true).unwrap();
        assert!(latest.begin(None, 10, true).is_none(), "one at a time");
        first.read(4, 6);
        let report = latest.report().unwrap();
        assert_eq!(report.name.as_deref(), Some("audit"));
        assert_eq!(
            report.state,
            RebuildState::Running {
                reached: 6,
                head: 10,
                events: 4
            }
        );
        let finished = RebuildState::Finished {
            events: 7,
            seconds: 0.5,
        };
        latest.end(&first, finished.clone());
        assert_eq!(latest.report().unwrap().state, finished);
        let second = latest.begin(None, 10, true).unwrap();
        latest.end(
            &first,
            RebuildState::Failed {
                error: "late".into(),
            },
        );
        assert!(
            latest.report().unwrap().state.is_running(),
            "an older rebuild's end does not end a newer one"
        );
        latest.end(&second, finished);
    }
}
