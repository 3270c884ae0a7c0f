//! Operations an operator performs on clients, users, consents and grants. The CLI and the
//! admin API call the same functions: input arrives as plain strings, is parsed here (errors
//! name the field), and becomes one command whose events carry the caller's metadata.

pub mod clients;
pub mod grants;
pub mod usage;
pub mod users;

/// Largest page a list operation returns.
pub const MAX_PAGE: i64 = 500;
