//! The server's background tasks, each on its own clock: applying views in batches,
//! following the log written by others, running cascades, saving read usage counts,
//! maintaining signing keys, pruning the live index, telling clients of ended sessions, and
//! watching the store.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::warn;

use super::health::{self, StoreHealth};
use crate::oauth::Authority;
use crate::store::Store;

/// How often the projector looks for events when no command woke it (others' events).
const PROJECTOR_IDLE_INTERVAL: Duration = Duration::from_millis(250);
/// How long the projector lets commands gather once one has woken it, so that one pass
/// applies them all. A pass costs mostly per pass (checkpoints, a commit) and on SQLite holds
/// the one write lock that commands wait for: under client-credentials load a pass every
/// 20 ms held it about 80 µs per event, every 50 ms about 56 µs. Token commands do not wait
/// for the views, and reads that must see them catch up themselves (`Store::current_views`).
const PROJECTOR_GATHER: Duration = Duration::from_millis(50);
/// How often cascades caused by others' events (a client disabled from the CLI) run.
const CASCADE_INTERVAL: Duration = Duration::from_millis(500);
/// How often signing keys are activated, retired and removed as their times come, and reloaded
/// (rotations by the CLI or another instance take effect within this).
const KEY_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(2);
/// How often sessions ended elsewhere (the CLI, another instance) are told to clients; this
/// instance's own sign-outs wake the task at once.
const BACKCHANNEL_INTERVAL: Duration = Duration::from_secs(1);
/// How often events committed since are linked into the ledger's hash chain: the bound on
/// how long an event stays unlinked (reported as the `ledger` reader's lag).
const LEDGER_INTERVAL: Duration = Duration::from_millis(250);
/// How often expired tokens and sessions leave the live index.
const LIVE_PRUNE_INTERVAL: Duration = Duration::from_secs(10);

/// Starts every task; the server aborts them when it stops.
pub fn start(
    authority: &Arc<Authority>,
    health: &Arc<StoreHealth>,
    session_ends: &Arc<tokio::sync::Notify>,
    link_ledger: bool,
) -> Vec<JoinHandle<()>> {
    let store = authority.store.clone();
    let mut tasks = vec![
        tokio::spawn(project_in_batches(store.clone(), health.clone())),
        tokio::spawn(run_cascades(store.clone(), health.clone())),
        tokio::spawn(save_usage(authority.clone())),
        tokio::spawn(maintain_keys(authority.clone(), health.clone())),
        tokio::spawn(tell_clients_of_ended_sessions(
            authority.clone(),
            health.clone(),
            session_ends.clone(),
        )),
        tokio::spawn(health::watch_the_store(store.db.clone(), health.clone())),
    ];
    if link_ledger {
        tasks.push(tokio::spawn(link_and_seal_the_ledger(
            authority.clone(),
            health.clone(),
        )));
    }
    if let Some(live) = store.live().cloned() {
        tasks.push(tokio::spawn(follow_the_log(live.clone(), health.clone())));
        tasks.push(tokio::spawn(prune_the_live_index(live)));
    }
    tasks
}

/// A ticker that waits out a slow tick rather than bursting to catch up.
fn every(period: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// Logs a background task's failure, unless the database is unreachable: the store watch
/// says that once per outage, and the tasks retry by themselves.
fn failed(health: &StoreHealth, error: &dyn std::fmt::Display, what: &str) {
    if health.reachable() {
        warn!(%error, "{what}");
    } else {
        tracing::debug!(%error, "{what}");
    }
}

/// Updates the views behind token commands, which return without waiting for them: woken by
/// each such command, it applies whatever has accumulated in batches (one transaction per
/// batch), so under load many commands share one view update.
async fn project_in_batches(store: Arc<Store>, health: Arc<StoreHealth>) {
    loop {
        let _ = tokio::time::timeout(PROJECTOR_IDLE_INTERVAL, store.views_behind()).await;
        tokio::time::sleep(PROJECTOR_GATHER).await;
        if let Err(error) = store.runner.catch_up().await {
            failed(&health, &error, "updating the views failed; retrying");
            tokio::time::sleep(PROJECTOR_IDLE_INTERVAL).await;
        }
    }
}

/// Keeps the live index current with events committed by others (CLI commands, other
/// instances).
async fn follow_the_log(
    live: Arc<authledger_projections::live::LiveIndex>,
    health: Arc<StoreHealth>,
) {
    let mut tick = every(authledger_projections::live::FOLLOW_INTERVAL);
    loop {
        tick.tick().await;
        if let Err(error) = live.follow().await {
            failed(&health, &error, "following the event log failed; retrying");
        }
    }
}

async fn prune_the_live_index(live: Arc<authledger_projections::live::LiveIndex>) {
    let mut tick = every(LIVE_PRUNE_INTERVAL);
    loop {
        tick.tick().await;
        live.prune(chrono::Utc::now());
    }
}

/// Links new events into the ledger's hash chain, in commit order (see
/// `authledger_projections::ledger`), and seals the chain head when the settings say it is
/// time (see `crate::ledger_seal`).
async fn link_and_seal_the_ledger(authority: Arc<Authority>, health: Arc<StoreHealth>) {
    let store = &authority.store;
    let mut tick = every(LEDGER_INTERVAL);
    loop {
        tick.tick().await;
        if let Err(error) = authledger_projections::ledger::link_all(&store.db).await {
            failed(&health, &error, "linking the ledger failed; retrying");
            continue;
        }
        let sealed = match store.settings_values().await {
            Ok(settings) => {
                crate::ledger_seal::seal_if_due(
                    &store.db,
                    &authority.master,
                    settings.ledger_seal_every,
                    settings.ledger_seal_interval,
                    false,
                )
                .await
            }
            Err(error) => Err(error),
        };
        if let Err(error) = sealed {
            failed(&health, &error, "sealing the ledger failed; retrying");
        }
    }
}

/// Revokes the grants that others' events end (see `crate::cascade`).
async fn run_cascades(store: Arc<Store>, health: Arc<StoreHealth>) {
    let mut tick = every(CASCADE_INTERVAL);
    loop {
        tick.tick().await;
        if let Err(error) = crate::cascade::run(&store).await {
            failed(&health, &error, "running cascades failed; retrying");
        }
    }
}

/// Sends back-channel logout tokens for ended sessions (see `crate::backchannel`).
async fn tell_clients_of_ended_sessions(
    authority: Arc<Authority>,
    health: Arc<StoreHealth>,
    session_ends: Arc<tokio::sync::Notify>,
) {
    let mut tick = every(BACKCHANNEL_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = session_ends.notified() => {}
        }
        if let Err(error) = crate::backchannel::run(&authority).await {
            failed(&health, &error, "back-channel logout failed; retrying");
        }
    }
}

/// Adds the read usage counts kept in memory to the store (see `crate::usage`).
async fn save_usage(authority: Arc<Authority>) {
    let mut tick = every(crate::usage::FLUSH_INTERVAL);
    tick.tick().await;
    loop {
        tick.tick().await;
        authority.usage.flush(&authority.store.db).await;
    }
}

async fn maintain_keys(authority: Arc<Authority>, health: Arc<StoreHealth>) {
    let mut tick = every(KEY_MAINTENANCE_INTERVAL);
    tick.tick().await;
    loop {
        tick.tick().await;
        let store = &authority.store;
        let maintained = match crate::signing::maintain(store, &authority.master).await {
            Ok(()) => authority.keys.reload(store, &authority.master).await,
            Err(error) => Err(error),
        };
        if let Err(error) = maintained {
            failed(&health, &error, "signing key maintenance failed; retrying");
        }
    }
}
