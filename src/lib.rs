//! # authledger
//!
//! An event-sourced OAuth 2 / OpenID Connect authorization server. Commands go through the
//! aggregates of `authledger-domain`; their events land in one commit-ordered log; the read
//! models of `authledger-projections` are fed from that log.
//!
//! # Layout
//! - [`config`]: settings from the environment (`AUTHLEDGER_*`).
//! - [`store`]: opens SQLite or Postgres once, at start-up, and hands out store-agnostic
//!   command executors; the only place that names `sqlite_es` / `postgres_es`.
//! - [`services`]: the production clock and argon2id password hashing behind the domain's
//!   `DomainServices`.
//! - [`secrets`]: minting 256-bit secrets and hashing them; raw values never leave this module
//!   except to be shown once.
//! - [`admin`]: the operations an operator performs (register a client, create a user, ...),
//!   shared by the CLI and, later, the admin API.
//! - [`http`]: the axum application, built so tests run it on port 0.
//! - [`cli`]: the `authledger` command line (DESIGN §4).
//! - [`error`]: the application error, mapped once per surface (CLI exit codes, HTTP).
//! - [`scratch_db`]: throw-away Postgres databases for the test suites and the benchmark.
//! - [`vault`]: secrets the server reads again (private signing keys, HS256 client
//!   secrets), sealed under the master key outside the event log.
//! - [`throttle`]: failed sign-ins and client authentications make their source wait.

pub mod admin;
pub mod cascade;
pub mod cli;
pub mod config;
pub mod error;
pub mod http;
pub mod master_key;
pub mod oauth;
pub mod replay;
pub mod scratch_db;
pub mod secrets;
pub mod services;
pub mod signing;
pub mod store;
pub mod throttle;
pub mod usage;
pub mod vault;
