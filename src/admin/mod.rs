//! Operations an operator performs on clients and users. The CLI calls them today, the admin
//! API will call the same functions: input arrives as plain strings, is parsed here (errors
//! name the field), and becomes one command whose events carry the caller's metadata.

pub mod clients;
pub mod users;

/// Largest page a list operation returns.
pub const MAX_PAGE: i64 = 500;
