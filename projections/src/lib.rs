//! # authledger-projections
//!
//! Read models, built from the event log alone and therefore always rebuildable.
//!
//! # Layout
//! - [`db`]: the database handle the read side uses, the same code for SQLite and Postgres
//!   (both accept `$n` placeholders and `ON CONFLICT` upserts; the few dialect differences are
//!   spelled out where they occur).
//! - [`event_log`]: the global, commit-ordered event log: [`event_log::Position`] and the query
//!   that reads "everything after my checkpoint" without ever skipping a late commit.
//! - `filter`: list filters as SQL, a condition per filter that is set (why: there).
//! - [`batch`]: the transaction projections write through, which batches their inserts.
//! - [`error`]: the read side's error; [`projection`]: what a read model is; [`checkpoint`]:
//!   how far each reader of the log has read.
//! - [`runner`]: the projection runner. Each projection's checkpoint is written in the same
//!   transaction as its view rows, so a crash between an event's commit and its view update is
//!   repaired by the next catch-up.
//! - [`clients`], [`users`], [`consents`]: the registries, for the CLI and the admin API.
//! - [`grants`]: grants and the token index behind introspection, userinfo and revocation.
//! - [`audit`]: one row per event, for audit queries.
//! - [`usage`]: hourly token usage per client and user.
//! - [`sessions`]: sign-in sessions, open and ended.
//! - [`social_logins`]: the providers people sign in through, and the identities linked.
//! - [`connected_apps`]: the providers authledger is a client of, and people's connections.
//! - [`live`]: the in-memory index of clients, settings and live access tokens that the hot
//!   paths of a running server read instead of the views.

pub mod audit;
pub mod batch;
pub mod checkpoint;
pub mod clients;
pub mod connected_apps;
pub mod consents;
pub mod db;
pub mod error;
pub mod event_log;
mod filter;
pub mod grants;
pub mod ledger;
pub mod live;
pub mod personal;
pub mod projection;
mod rebuild;
pub mod runner;
pub mod sessions;
pub mod social_logins;
mod sqlite_rows;
pub mod usage;
pub mod users;
pub mod views_file;
mod write_turn;

use std::sync::Arc;

pub use db::{Db, DbTx, StoreKind};
pub use error::ProjectionError;
pub use event_log::{Position, StoredEvent};
pub use projection::Projection;
pub use rebuild::{RebuildReport, RebuildState};
pub use runner::ProjectionRunner;

/// Every projection the server maintains, in the order the runner feeds them.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(clients::ClientsView),
        Arc::new(users::UsersView),
        Arc::new(grants::GrantsView),
        Arc::new(consents::ConsentsView),
        Arc::new(audit::AuditLog),
        Arc::new(sessions::SessionsView),
        Arc::new(connected_apps::ConnectedAppsView),
        Arc::new(social_logins::SocialLoginsView),
    ]
}

/// Times in views are RFC 3339 UTC strings of fixed width, so that they sort as text the same
/// way on both stores.
pub fn view_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
