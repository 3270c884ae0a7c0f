//! Settings, from the environment (DESIGN §4).

/// `AUTHLEDGER_DATABASE_URL` when unset: an SQLite file in the working directory, so the
/// server starts with no database server.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://authledger.db";
/// `AUTHLEDGER_LISTEN` when unset.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub listen: String,
    /// `AUTHLEDGER_ISSUER`; `None` means `http://` + the address actually bound.
    pub issuer: Option<String>,
    /// `AUTHLEDGER_MASTER_KEY` (base64url, 32 bytes); when unset, the key file is used.
    pub master_key: Option<String>,
    /// `AUTHLEDGER_MASTER_KEY_FILE`, created on first start if missing.
    pub master_key_file: std::path::PathBuf,
    /// `AUTHLEDGER_TOKEN_CACHE`: how many live access tokens the in-memory index holds.
    pub token_cache_capacity: usize,
    /// Connection limits: header-read timeout and the cap on open connections.
    pub limits: crate::http::Limits,
}

/// `AUTHLEDGER_TOKEN_CACHE` when unset: about 200 bytes each, so at most ~100 MB.
pub const DEFAULT_TOKEN_CACHE: usize = 500_000;

/// `AUTHLEDGER_MASTER_KEY_FILE` when unset.
pub const DEFAULT_MASTER_KEY_FILE: &str = "authledger.key";
