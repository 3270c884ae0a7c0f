//! # authledger
//!
//! An event-sourced OAuth 2 / OpenID Connect authorization server. Commands go through the
//! aggregates of `authledger-domain`; their events land in one commit-ordered log; the read
//! models of `authledger-projections` are fed from that log.
//!
//! # Layout
//! The dependency picture is domain < projections < this crate; inside it, `http` and `cli`
//! are the edges, `oauth` the protocol, `store` the command path.
//! - [`config`]: settings from the environment (`AUTHLEDGER_*`), checked at start.
//! - [`store`]: opens SQLite or Postgres once, at start-up, and hands out store-agnostic
//!   command executors; the only place that names `sqlite_es` / `postgres_es`.
//! - [`services`]: the production clock and argon2id password hashing behind the domain's
//!   `DomainServices`.
//! - [`secrets`]: minting 256-bit secrets and hashing them; raw values never leave this module
//!   except to be shown once.
//! - [`master_key`]: the key that seals what the vault keeps, and the cookies' signing key.
//! - [`vault`]: secrets the server reads again (private signing keys, HS256 client
//!   secrets), sealed under the master key outside the event log.
//! - [`signing`]: the ID token signing keys and their lifecycle.
//! - [`social_login`]: signing in through another provider, and linking or creating the
//!   local account.
//! - [`connected_apps`]: authledger as a client of other providers (Connected Apps and
//!   their token cache).
//! - [`oauth`]: the OAuth 2 / OpenID Connect protocol: typed requests in, typed outcomes and
//!   errors out, no HTTP.
//! - [`admin`]: the operations an operator performs (register a client, create a user, ...),
//!   shared by the CLI and the admin API.
//! - [`cascade`]: the reactor that revokes the grants a disabled client or user, a rotated
//!   secret or a withdrawn consent ends.
//! - [`replay`]: an aggregate as it was at an instant (`state --as-of`).
//! - [`usage`]: read counts kept in memory and saved in batches; the Prometheus metrics.
//! - [`backchannel`]: logout tokens to clients when a person's session ends (OIDC
//!   Back-Channel Logout).
//! - [`throttle`]: failed sign-ins and client authentications make their source wait.
//! - [`two_factor`]: authenticator-app (TOTP) and recovery codes, and the enrolment QR code.
//! - [`http`]: the axum application, built so tests run it on port 0.
//! - [`cli`]: the `authledger` command line (DESIGN §4).
//! - [`error`]: the application error, mapped once per surface (CLI exit codes, HTTP).
//! - [`scratch_db`]: throw-away Postgres databases for the test suites and the benchmark.

pub mod admin;
pub mod allocator;
pub mod backchannel;
pub mod cascade;
pub mod cli;
pub mod config;
pub mod connected_apps;
pub mod credentials;
pub mod error;
pub mod http;
pub mod ledger_archive;
pub mod ledger_export;
pub mod ledger_seal;
pub mod master_key;
pub mod metrics;
pub mod oauth;
pub mod replay;
pub mod scratch_db;
pub mod secrets;
pub mod services;
pub mod signing;
pub mod social_login;
pub mod store;
pub mod throttle;
pub mod two_factor;
pub mod usage;
pub mod vault;
