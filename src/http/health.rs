//! `/healthz` (liveness), `/readyz` (readiness), and the watch that notices when the database
//! goes away and comes back.
//!
//! While the database cannot be reached, commands fail within the pool's acquire timeout and
//! are answered 503 with `Retry-After` (see [`crate::error::AppError::Unavailable`]); each
//! such request is not logged on its own. The watch says it once, with the database's address
//! and the real cause, and once more when the database is back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use authledger_projections::{event_log, Db, StoreKind};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use sqlx::ConnectOptions;
use tracing::{info, warn};

use super::AppState;

/// How often the watch asks the database whether it is there.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// How long the watch's question may take before the database counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How far (in events) the slowest projection may be behind the log before the instance is
/// reported not ready: the views it serves would be visibly stale.
pub const READY_MAX_LAG_EVENTS: i64 = 10_000;

/// Whether the database answered the watch's last question.
#[derive(Debug)]
pub struct StoreHealth {
    reachable: AtomicBool,
}

impl Default for StoreHealth {
    fn default() -> Self {
        StoreHealth {
            reachable: AtomicBool::new(true),
        }
    }
}

impl StoreHealth {
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }
}

pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    Json(json!({ "status": "ok", "store": store_name(state.authority.store.kind()) }))
}

fn store_name(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Sqlite => "sqlite",
        StoreKind::Postgres => "postgres",
    }
}

/// 200 when the store answers and the projections are caught up (within
/// [`READY_MAX_LAG_EVENTS`]); 503 otherwise, so a load balancer routes around the instance.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let store = &state.authority.store;
    let lag = match tokio::time::timeout(PROBE_TIMEOUT, projection_lag(&store.db)).await {
        Ok(Ok(lag)) => Some(lag),
        _ => None,
    };
    let ready = state.store_health.reachable() && lag.is_some_and(|l| l <= READY_MAX_LAG_EVENTS);
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "store": store_name(store.kind()),
        "store_reachable": lag.is_some() && state.store_health.reachable(),
        "projection_lag_events": lag,
    });
    let status = match ready {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut response = (status, Json(body)).into_response();
    if !ready {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
    }
    response
}

/// How many events the slowest projection has still to read.
async fn projection_lag(db: &Db) -> Result<i64, authledger_projections::ProjectionError> {
    let head = event_log::last_position(db).await?.map_or(0, |p| p.global);
    let slowest = authledger_projections::checkpoint::slowest(db).await?;
    Ok((head - slowest.unwrap_or(head)).max(0))
}

/// Asks the database every second whether it is there; logs each change, with
/// the database's address and the cause.
pub async fn watch_the_store(db: Db, health: Arc<StoreHealth>) {
    let address = address_of(&db);
    let mut down_since: Option<Instant> = None;
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match probe(&db).await {
            Ok(()) => {
                if let Some(since) = down_since.take() {
                    info!(database = %address, down_for = ?since.elapsed(), "the database is reachable again");
                }
                health.reachable.store(true, Ordering::Relaxed);
            }
            Err(cause) => {
                if down_since.is_none() {
                    warn!(database = %address, %cause, "the database is unreachable; requests that need it are answered 503 until it returns");
                    down_since = Some(Instant::now());
                }
                health.reachable.store(false, Ordering::Relaxed);
            }
        }
    }
}

/// One round trip through the pool; when that fails, a connection of its own, whose error
/// names the cause (the pool only says it timed out).
async fn probe(db: &Db) -> Result<(), String> {
    let through_pool = tokio::time::timeout(PROBE_TIMEOUT, async {
        authledger_projections::on_db!(db, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    })
    .await;
    if let Ok(Ok(())) = through_pool {
        return Ok(());
    }
    let direct = tokio::time::timeout(PROBE_TIMEOUT, async {
        match db {
            Db::Sqlite(pool) => pool.connect_options().connect().await.map(|_| ()),
            Db::Postgres(pool) => pool.connect_options().connect().await.map(|_| ()),
        }
    })
    .await;
    Err(match direct {
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("no answer within {PROBE_TIMEOUT:?}"),
        Ok(Ok(())) => "the connection pool timed out".into(),
    })
}

/// Where the database is, for log lines: host and port (never the URL, which may hold a
/// password), or the SQLite file.
fn address_of(db: &Db) -> String {
    match db {
        Db::Sqlite(pool) => pool.connect_options().get_filename().display().to_string(),
        Db::Postgres(pool) => {
            let options = pool.connect_options();
            format!("{}:{}", options.get_host(), options.get_port())
        }
    }
}
