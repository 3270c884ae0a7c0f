//! The harness: a fresh store, the yardsticks every figure is compared with (a durable commit,
//! an RS256 signature), driving requests for a bounded time, and what the machine did meanwhile
//! (CPU steal, peak memory).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use authledger::oauth::Authority;
use authledger::scratch_db::ScratchPostgres;
use authledger_domain::client::IdTokenAlg;
use authledger_domain::metadata::{Actor, EventMetadata, Source};
use authledger_projections::{on_db, on_tx, Db};
use hdrhistogram::Histogram;
use serde_json::json;

/// A fresh database, dropped at the end for Postgres.
pub(crate) struct Database {
    pub(crate) url: String,
    pub(crate) _dir: Option<tempfile::TempDir>,
    pub(crate) postgres: Option<ScratchPostgres>,
}

impl Database {
    pub(crate) async fn create(store: &str) -> Database {
        match store {
            "sqlite" => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                Database {
                    url,
                    _dir: Some(dir),
                    postgres: None,
                }
            }
            "postgres" => {
                let scratch = ScratchPostgres::create("authledger_bench").await;
                Database {
                    url: scratch.url.clone(),
                    _dir: None,
                    postgres: Some(scratch),
                }
            }
            other => panic!("--store must be sqlite or postgres, not {other}"),
        }
    }

    pub(crate) async fn drop_database(&mut self) {
        if let Some(scratch) = self.postgres.take() {
            scratch.drop_now().await;
        }
    }
}

pub(crate) fn metadata() -> EventMetadata {
    EventMetadata {
        actor: Actor::Cli("bench".into()),
        request_id: uuid::Uuid::new_v4().to_string(),
        source: Source::Cli,
        at: chrono::Utc::now(),
    }
}

/// The store's raw one-row INSERT+COMMIT rate on `db`'s pool with `connections` concurrent
/// writers: the cost of one durable commit, the floor under every issuance.
pub(crate) async fn yardstick(db: &Db, connections: usize, duration: Duration) -> f64 {
    let ddl = match db {
        Db::Sqlite(_) => "CREATE TABLE IF NOT EXISTS bench_yardstick (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)",
        Db::Postgres(_) => "CREATE TABLE IF NOT EXISTS bench_yardstick (id bigserial PRIMARY KEY, payload text NOT NULL)",
    };
    on_db!(db, pool => sqlx::query(ddl).execute(pool).await.map(drop)).unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let db = db.clone();
            let done = done.clone();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let mut tx = db.begin().await.unwrap();
                    on_tx!(&mut tx, conn => sqlx::query("INSERT INTO bench_yardstick (payload) VALUES ($1)").bind("x").execute(conn).await.map(drop)).unwrap();
                    tx.commit().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    futures::future::join_all(tasks).await;
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Raw RS256 signing of an ID-token-sized claim set, on every core.
pub(crate) async fn rs256_rate(authority: &Arc<Authority>, duration: Duration) -> f64 {
    let claims = json!({"iss": "http://127.0.0.1", "sub": "bench", "aud": "client", "azp": "client",
        "iat": 1_800_000_000u64, "exp": 1_800_003_600u64, "nonce": "n", "at_hash": "abcdefghijklmnopqrstuv", "email": "bench@example.com"});
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let tasks: Vec<_> = (0..threads)
        .map(|_| {
            let authority = authority.clone();
            let claims = claims.clone();
            let done = done.clone();
            tokio::task::spawn_blocking(move || {
                while Instant::now() < deadline {
                    authority
                        .keys
                        .sign(IdTokenAlg::RS256, &claims, None)
                        .unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    futures::future::join_all(tasks).await;
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Cumulative CPU time of the whole machine, from the first line of `/proc/stat`.
#[derive(Clone, Copy)]
pub(crate) struct CpuTimes {
    pub(crate) steal: u64,
    pub(crate) total: u64,
}

pub(crate) fn cpu_times() -> Option<CpuTimes> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal
    Some(CpuTimes {
        steal: *fields.get(7)?,
        total: fields.iter().sum(),
    })
}

/// The share of CPU time the hypervisor gave to other guests ("steal") since `from`: on a
/// shared virtual machine every figure moves with it, so each one is printed with its own.
pub(crate) fn steal_since(from: Option<CpuTimes>) -> Option<f64> {
    let (from, to) = (from?, cpu_times()?);
    let total = to.total.checked_sub(from.total)?;
    (total > 0).then(|| to.steal.saturating_sub(from.steal) as f64 / total as f64)
}

/// The peak resident set of this process (server and load generator share it), in MiB.
pub(crate) fn rss_peak_mib() -> f64 {
    status_mib("VmHWM:")
}

/// The resident set of this process now, in MiB.
pub(crate) fn rss_now_mib() -> f64 {
    status_mib("VmRSS:")
}

/// What SQLite holds now (page caches, prepared statements, schemas), in MiB: its own
/// count of the memory it allocated, every connection of the process together.
pub(crate) fn sqlite_mib() -> f64 {
    // SAFETY: a read of SQLite's global counters; it takes no pointer and is thread-safe.
    let used = unsafe { libsqlite3_sys::sqlite3_memory_used() };
    used as f64 / (1024.0 * 1024.0)
}

/// A size in kB from `/proc/self/status`, in MiB (NaN where there is no such file).
fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(str::to_owned))
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

pub(crate) enum Outcome {
    Ok,
    Error,
    Exhausted,
}

pub(crate) struct Measured {
    /// Latencies in microseconds.
    pub(crate) latencies_us: Histogram<u64>,
    pub(crate) errors: u64,
    pub(crate) elapsed: Duration,
}

/// Runs `request(connection)` from `connections` tasks until `duration` has passed.
pub(crate) async fn drive<F, Fut>(
    connections: usize,
    duration: Duration,
    request: Arc<F>,
) -> Measured
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Outcome> + Send,
{
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|connection| {
            let request = request.clone();
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (latency_histogram(), 0u64);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    match request(connection).await {
                        Outcome::Ok => {}
                        Outcome::Error => errors += 1,
                        Outcome::Exhausted => break,
                    }
                    let micros = sent.elapsed().as_micros().min(u64::MAX as u128) as u64;
                    latencies.saturating_record(micros.max(1));
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut measured = Measured {
        latencies_us: latency_histogram(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for task in futures::future::join_all(tasks).await {
        let (latencies, errors) = task.unwrap();
        measured
            .latencies_us
            .add(latencies)
            .expect("histograms of the same bounds add");
        measured.errors += errors;
    }
    measured.elapsed = started.elapsed();
    measured
}

/// Latencies from 1 µs to an hour, to three significant digits.
pub(crate) fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// The latency at quantile `q` (0 to 1), in milliseconds.
pub(crate) fn percentile(latencies_us: &Histogram<u64>, q: f64) -> f64 {
    if latencies_us.is_empty() {
        return f64::NAN;
    }
    latencies_us.value_at_quantile(q) as f64 / 1000.0
}
