//! The command tree: every command, flag and environment variable of `authledger`, as clap
//! reads them (DESIGN §4); `mod.rs` runs the one chosen.

use clap::{Parser, Subcommand};

use crate::config::{
    DEFAULT_DATABASE_URL, DEFAULT_LISTEN, DEFAULT_MASTER_KEY_FILE, DEFAULT_TOKEN_CACHE,
};

use super::audit::{self, AuditArgs};
use super::client::ClientCommand;
use super::keys::KeysCommand;
use super::logging;
use super::settings::SettingsCommand;
use super::user::UserCommand;
use super::{
    connected_app, events, ledger, projections, resource, social_login, token, transfer, usage,
};

#[derive(Parser)]
#[command(
    name = "authledger",
    version,
    about = "An event-sourced OAuth 2 / OpenID Connect authorization server"
)]
pub(super) struct Cli {
    /// A TOML file of settings (keys as the environment variables without AUTHLEDGER_, in
    /// lowercase); the environment overrides it, and flags both.
    #[arg(long, global = true, env = "AUTHLEDGER_CONFIG", value_name = "FILE")]
    pub(super) config: Option<std::path::PathBuf>,
    /// Where events and views live: sqlite://PATH or postgres://...
    #[arg(long, global = true, env = "AUTHLEDGER_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub(super) database_url: String,
    /// The master key (base64url, 32 bytes) sealing signing keys and HS256 client secrets.
    #[arg(
        long,
        global = true,
        env = "AUTHLEDGER_MASTER_KEY",
        hide_env_values = true
    )]
    pub(super) master_key: Option<String>,
    /// Where the master key is kept when AUTHLEDGER_MASTER_KEY is unset (created if missing).
    #[arg(long, global = true, env = "AUTHLEDGER_MASTER_KEY_FILE", default_value = DEFAULT_MASTER_KEY_FILE)]
    pub(super) master_key_file: std::path::PathBuf,
    /// How log lines are written (to stderr): text for people, or one JSON object per line.
    #[arg(long, global = true, env = "AUTHLEDGER_LOG_FORMAT", value_enum, default_value_t = logging::LogFormat::Text)]
    pub(super) log_format: logging::LogFormat,
    /// Where `ledger archive` writes segments of ended grants' events, and where `ledger
    /// verify`, `ledger export` and a projections rebuild read them back.
    #[arg(
        long,
        global = true,
        env = "AUTHLEDGER_ARCHIVE_DIR",
        value_name = "DIR"
    )]
    pub(super) archive_dir: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Subcommand)]
pub(super) enum Command {
    /// Run the authorization server (runs `migrate` first).
    Serve {
        /// The address to bind, HOST:PORT (0 as the port picks a free one).
        #[arg(long, env = "AUTHLEDGER_LISTEN", default_value = DEFAULT_LISTEN)]
        listen: String,
        /// The issuer identifier; defaults to http:// + the listen address.
        #[arg(long, env = "AUTHLEDGER_ISSUER")]
        issuer: Option<String>,
        /// How many live access tokens the in-memory index holds; past it, introspection of
        /// the tokens left out reads the database.
        #[arg(long, env = "AUTHLEDGER_TOKEN_CACHE", default_value_t = DEFAULT_TOKEN_CACHE)]
        token_cache: usize,
        /// The most connections open at once; past it a new one is answered 503 and closed.
        #[arg(long, env = "AUTHLEDGER_MAX_CONNECTIONS", default_value_t = crate::config::Limits::default().max_connections as u32,
              value_parser = clap::value_parser!(u32).range(1..))]
        max_connections: u32,
        /// Seconds a client may take to send a request's headers (and a keep-alive connection
        /// may stay idle).
        #[arg(long, env = "AUTHLEDGER_HEADER_READ_TIMEOUT", default_value_t = crate::config::Limits::default().header_read_timeout.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        header_read_timeout: u64,
        /// Reverse proxies whose X-Forwarded-For names the client (IP addresses or CIDR
        /// networks, comma-separated); from anyone else the header is ignored.
        #[arg(long, env = "AUTHLEDGER_TRUSTED_PROXIES", default_value = "", value_name = "IPS",
              value_parser = crate::config::TrustedProxies::parse)]
        trusted_proxies: crate::config::TrustedProxies,
    },
    /// Create or upgrade the database schema.
    Migrate,
    /// Check the configuration (file, environment, defaults) and print the effective values.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Make a master key.
    #[command(subcommand)]
    MasterKey(MasterKeyCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Show or change the OAuth settings.
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// Manage consents.
    #[command(subcommand)]
    Consent(ConsentCommand),
    /// Providers authledger is a client of (Connected Apps), and tokens from them.
    #[command(subcommand)]
    ConnectedApp(connected_app::ConnectedAppCommand),
    /// Providers people may sign in through (social login).
    #[command(subcommand)]
    SocialLogin(social_login::SocialLoginCommand),
    /// Protected resources (APIs) tokens can be restricted to (RFC 8707).
    #[command(subcommand)]
    Resource(resource::ResourceCommand),
    /// Query the audit trail (one row per event), or export it as JSON lines.
    Audit(AuditArgs),
    /// Tokens issued and refreshed, introspections, userinfo calls and failed client
    /// authentications, per hour: totals and an hourly table.
    Usage(usage::UsageArgs),
    /// Print one aggregate's events with their metadata, e.g. `history grant:ID`.
    History {
        /// Which aggregate, e.g. client:ID, user:NAME, grant:ID, consent:USER:CLIENT.
        #[arg(value_name = "TYPE:ID")]
        aggregate: String,
        /// text for people (the default), or json: one JSON object per line.
        #[arg(long, value_enum, default_value_t = events::EventsFormat::Text)]
        format: events::EventsFormat,
    },
    /// What a token is: its grant, the grant's history, and whether it could be used.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Print an aggregate's state as it was at an instant, replaying only the events before it.
    State {
        /// Which aggregate, e.g. grant:ID.
        #[arg(value_name = "TYPE:ID")]
        aggregate: String,
        /// The instant: RFC 3339, a date, or a time ago (e.g. 2h).
        #[arg(long, value_name = "RFC3339")]
        as_of: String,
    },
    /// The read models: how far behind the log each is, and rebuilding them from it.
    #[command(subcommand)]
    Projections(projections::ProjectionsCommand),
    /// The tamper-evident ledger: the hash chain over the event log.
    #[command(subcommand)]
    Ledger(ledger::LedgerCommand),
    /// List or rotate the ID token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Write the configuration (settings, clients, users, connected apps, social login
    /// providers; signing-key metadata) to one JSON document: without secrets, or with them
    /// sealed under a passphrase (--with-secrets).
    Export(transfer::ExportArgs),
    /// Apply a document `export` wrote: creates and changes through the ordinary commands
    /// (one event each, actor the CLI), leaves alone what matches; checked whole first.
    Import(transfer::ImportArgs),
    /// Print the raw event history, with metadata.
    Events {
        /// Only this aggregate's events, e.g. client:ID or user:NAME.
        #[arg(long, value_name = "TYPE:ID")]
        aggregate: Option<String>,
        /// Only events at or after this time: RFC 3339, a date, or a time ago (24h, 7d).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only events before this time, in the same forms.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// text for people (the default), or json: one JSON object per line.
        #[arg(long, value_enum, default_value_t = events::EventsFormat::Text)]
        format: events::EventsFormat,
        /// The same as --format json (its first name).
        #[arg(long, conflicts_with = "format")]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(super) enum ConfigCommand {
    /// Print every setting's effective value (secrets masked), where it came from, and what
    /// is wrong with it; exits 5 when anything is.
    Check {
        /// table for people, json for programs.
        #[arg(long, value_enum, default_value_t = audit::Format::Table)]
        format: audit::Format,
    },
}

#[derive(Subcommand)]
pub(super) enum MasterKeyCommand {
    /// Print a new random master key (32 bytes, base64url) on stdout, or write it to a new
    /// file readable by its owner only. Values sealed under another key cannot be opened
    /// with it: this is for a new store, not to replace the key of one in use.
    Generate {
        /// Write it here instead (refused if the file exists).
        #[arg(long, value_name = "FILE")]
        file: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
pub(super) enum ConsentCommand {
    /// Withdraw a person's consent for a client; their grants to it are revoked.
    Revoke {
        /// The person who gave the consent.
        #[arg(long)]
        user: String,
        /// The client's id.
        #[arg(long)]
        client: String,
    },
}
