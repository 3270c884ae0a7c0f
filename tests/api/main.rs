//! Black-box tests: the real server and CLI against a real store, on SQLite and Postgres.
//! One test binary, because linking dominates build time on two cores.

#[macro_use]
mod helpers;

mod archive;
mod browser;
mod cli;
mod configuration;
mod connected_apps;
mod console;
mod console_in_a_browser;
mod discovery;
mod durability;
mod erasure;
mod event_log;
mod health;
mod hostile_input;
mod ledger;
mod live_index;
mod oauth;
mod openapi;
mod password_hashes;
mod people;
mod projections;
mod read_side;
mod server_log;
mod social_login;
mod store_commands;
mod transfer;
mod trusted_issuer;
mod views_file;
