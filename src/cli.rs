//! The `authledger` command line (DESIGN §4). Output meant for programs is JSON on stdout;
//! messages for people go to stderr; every failure exits non-zero.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;

use authledger_domain::client::RegistrationSource;
use authledger_domain::metadata::{Actor, EventMetadata, Source};
use authledger_projections::event_log::{self, StoredEvent};
use authledger_projections::{Db, Position};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::admin::{self, clients::ClientInput, users::UserInput};
use crate::config::{
    Config, DEFAULT_DATABASE_URL, DEFAULT_LISTEN, DEFAULT_MASTER_KEY_FILE, DEFAULT_TOKEN_CACHE,
};
use crate::error::AppError;
use crate::http::{shutdown_signal, Application};
use crate::master_key::MasterKey;
use crate::services::SystemServices;
use crate::store::Store;

#[derive(Parser)]
#[command(
    name = "authledger",
    version,
    about = "An event-sourced OAuth 2 / OpenID Connect authorization server"
)]
struct Cli {
    /// Where events and views live: sqlite://PATH or postgres://...
    #[arg(long, global = true, env = "AUTHLEDGER_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    database_url: String,
    /// The master key (base64url, 32 bytes) sealing signing keys and HS256 client secrets.
    #[arg(
        long,
        global = true,
        env = "AUTHLEDGER_MASTER_KEY",
        hide_env_values = true
    )]
    master_key: Option<String>,
    /// Where the master key is kept when AUTHLEDGER_MASTER_KEY is unset (created if missing).
    #[arg(long, global = true, env = "AUTHLEDGER_MASTER_KEY_FILE", default_value = DEFAULT_MASTER_KEY_FILE)]
    master_key_file: std::path::PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the authorization server (runs `migrate` first).
    Serve {
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
        #[arg(long, env = "AUTHLEDGER_MAX_CONNECTIONS", default_value_t = crate::http::Limits::default().max_connections as u32,
              value_parser = clap::value_parser!(u32).range(1..))]
        max_connections: u32,
        /// Seconds a client may take to send a request's headers (and a keep-alive connection
        /// may stay idle).
        #[arg(long, env = "AUTHLEDGER_HEADER_READ_TIMEOUT", default_value_t = crate::http::Limits::default().header_read_timeout.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        header_read_timeout: u64,
    },
    /// Create or upgrade the database schema.
    Migrate,
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
    /// Query the audit trail (one row per event), or export it as JSON lines.
    Audit(AuditArgs),
    /// Print one aggregate's events with their metadata, e.g. `history grant:ID`.
    History {
        #[arg(value_name = "TYPE:ID")]
        aggregate: String,
    },
    /// Print an aggregate's state as it was at an instant, replaying only the events before it.
    State {
        #[arg(value_name = "TYPE:ID")]
        aggregate: String,
        #[arg(long, value_name = "RFC3339")]
        as_of: String,
    },
    /// Rebuild read models from the event log.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// List or rotate the ID token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the raw event history, with metadata.
    Events {
        /// Only this aggregate's events, e.g. client:ID or user:NAME.
        #[arg(long, value_name = "TYPE:ID")]
        aggregate: Option<String>,
        /// Only events at or after this RFC 3339 time.
        #[arg(long, value_name = "RFC3339")]
        since: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConsentCommand {
    /// Withdraw a person's consent for a client; their grants to it are revoked.
    Revoke {
        #[arg(long)]
        user: String,
        #[arg(long)]
        client: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Every key with its state (published, active, retired, removed), as JSON.
    List,
    /// Generate new keys: published now, signing after `key_activation_delay`.
    Rotate {
        /// RS256, ES256 or EdDSA; every algorithm when omitted.
        #[arg(long = "alg", value_name = "ALG")]
        algs: Vec<String>,
        /// Sign with the new keys at once (relying parties with a cached JWKS will fail to
        /// verify new tokens until they refresh it).
        #[arg(long)]
        now: bool,
    },
}

#[derive(Subcommand)]
enum ProjectionsCommand {
    /// Replay the whole log into fresh views (all, or the one named) and swap them in.
    Rebuild { name: Option<String> },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct AuditArgs {
    #[command(subcommand)]
    export: Option<AuditExport>,
    #[command(flatten)]
    filter: AuditFilterArgs,
    /// json (one object per line) or table.
    #[arg(long, default_value = "table")]
    format: String,
    /// At most this many rows.
    #[arg(long, default_value_t = 100)]
    limit: i64,
}

#[derive(Subcommand)]
enum AuditExport {
    /// Every matching row as JSON lines, e.g. `audit export --since T > audit.jsonl`.
    Export {
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
}

#[derive(Args, Clone, Default)]
struct AuditFilterArgs {
    #[arg(long)]
    client_id: Option<String>,
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    grant: Option<String>,
    /// An event type, e.g. LoginFailed.
    #[arg(long = "type")]
    event_type: Option<String>,
    #[arg(long, value_name = "RFC3339")]
    since: Option<String>,
    #[arg(long, value_name = "RFC3339")]
    until: Option<String>,
}

#[derive(Subcommand)]
enum SettingsCommand {
    /// Print the settings in force as JSON.
    Show,
    /// Change one setting: consent_mode (force|auto), access_token_ttl, refresh_token_ttl,
    /// code_ttl (seconds), allow_implicit (true|false).
    Set { key: String, value: String },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Register a user; prints it as JSON.
    Create {
        #[arg(long)]
        username: String,
        #[command(flatten)]
        password: PasswordArg,
        #[arg(long)]
        email: Option<String>,
        /// Full name.
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        given_name: Option<String>,
        #[arg(long)]
        family_name: Option<String>,
        #[arg(long)]
        picture: Option<String>,
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
    },
    List,
    Show {
        username: String,
    },
    Disable {
        username: String,
    },
    Enable {
        username: String,
    },
    SetRoles {
        username: String,
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
    },
    SetPassword {
        username: String,
        #[command(flatten)]
        password: PasswordArg,
    },
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct PasswordArg {
    /// The password (visible to other local users in the process list; prefer --password-stdin).
    #[arg(long)]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

impl PasswordArg {
    fn read(self) -> Result<String, AppError> {
        match self.password {
            Some(password) => Ok(password),
            None => {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(|e| AppError::invalid(format!("password: cannot read stdin: {e}")))?;
                Ok(line.trim_end_matches(['\r', '\n']).to_owned())
            }
        }
    }
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a client; prints JSON with `client_id` and, if confidential, `client_secret`
    /// (shown only this once).
    Create(Box<ClientCreateArgs>),
    List,
    Show {
        client_id: String,
    },
    Disable {
        client_id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    Enable {
        client_id: String,
    },
    Delete {
        client_id: String,
    },
    /// Replace the client secret; prints the new one (shown only this once).
    RotateSecret {
        client_id: String,
        /// Also revoke every token issued to the client.
        #[arg(long)]
        revoke_tokens: bool,
    },
}

#[derive(Args)]
struct ClientCreateArgs {
    #[arg(long)]
    name: String,
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    #[arg(long, value_name = "URI")]
    default_redirect_uri: Option<String>,
    /// Space-separated scopes [default: "openid profile email"].
    #[arg(long)]
    scope: Option<String>,
    /// authorization_code | refresh_token | client_credentials | implicit
    /// [default: authorization_code refresh_token].
    #[arg(long = "grant-type", value_name = "GRANT")]
    grant_types: Vec<String>,
    /// A public client (no secret; token_endpoint_auth_method `none`).
    #[arg(long)]
    public: bool,
    /// client_secret_basic (default) | client_secret_post | none
    #[arg(long)]
    token_endpoint_auth_method: Option<String>,
    /// A trusted client: people are not asked for consent.
    #[arg(long)]
    skip_authorization: bool,
    /// Require PKCE although the client is confidential.
    #[arg(long)]
    require_pkce: bool,
    #[arg(long = "allowed-role", value_name = "ROLE")]
    allowed_roles: Vec<String>,
    #[arg(long)]
    client_uri: Option<String>,
    #[arg(long)]
    logo_uri: Option<String>,
    #[arg(long)]
    tos_uri: Option<String>,
    #[arg(long)]
    policy_uri: Option<String>,
    #[arg(long = "contact", value_name = "CONTACT")]
    contacts: Vec<String>,
    /// RS256 (default) | ES256 | EdDSA | HS256 (signed with the client secret, as Frappe does).
    #[arg(long)]
    id_token_signed_response_alg: Option<String>,
    /// Put every profile claim under `openid`, as Frappe does.
    #[arg(long)]
    frappe_claims: bool,
}

impl From<ClientCreateArgs> for ClientInput {
    fn from(args: ClientCreateArgs) -> Self {
        ClientInput {
            name: args.name,
            redirect_uris: args.redirect_uris,
            default_redirect_uri: args.default_redirect_uri,
            scope: args.scope,
            grant_types: args.grant_types,
            token_endpoint_auth_method: args.token_endpoint_auth_method,
            public: args.public,
            skip_authorization: args.skip_authorization,
            require_pkce: args.require_pkce,
            allowed_roles: args.allowed_roles,
            client_uri: args.client_uri,
            logo_uri: args.logo_uri,
            tos_uri: args.tos_uri,
            policy_uri: args.policy_uri,
            contacts: args.contacts,
            software_id: None,
            software_version: None,
            id_token_signed_response_alg: args.id_token_signed_response_alg,
            frappe_claims: args.frappe_claims,
        }
    }
}

pub fn main() -> ExitCode {
    // Arguments can reach events (a client's name, a disable reason): the log cannot be
    // edited afterwards, so control characters are refused before anything runs.
    if let Some((index, argument)) = std::env::args_os()
        .enumerate()
        .skip(1)
        .find(|(_, a)| a.to_string_lossy().chars().any(char::is_control))
    {
        eprintln!(
            "error: argument {index} ({:?}) contains a control character; none is allowed",
            argument.to_string_lossy()
        );
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve { .. });
    init_tracing(serving);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(serving: bool) {
    // The server logs requests at info; one-shot commands stay quiet unless asked (a
    // rebuild's index builds are slow statements by design: sqlx would warn about each).
    let default = if serving {
        "info,sqlx=warn"
    } else {
        "warn,sqlx::query=error"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// How the CLI finds the master key, loaded only by the commands that need it.
struct MasterKeySource {
    configured: Option<String>,
    file: std::path::PathBuf,
}

impl MasterKeySource {
    async fn load(&self, store: &Store) -> Result<MasterKey, AppError> {
        let may_generate = !store.holds_sealed_values().await?;
        MasterKey::load(self.configured.as_deref(), &self.file, may_generate)
            .map_err(|e| AppError::Internal(e.into()))
    }
}

async fn run(cli: Cli) -> Result<(), AppError> {
    let database_url = cli.database_url;
    let master = MasterKeySource {
        configured: cli.master_key,
        file: cli.master_key_file,
    };
    match cli.command {
        Command::Serve {
            listen,
            issuer,
            token_cache,
            max_connections,
            header_read_timeout,
        } => {
            let config = Config {
                database_url,
                listen,
                issuer,
                master_key: master.configured,
                master_key_file: master.file,
                token_cache_capacity: token_cache,
                limits: crate::http::Limits {
                    header_read_timeout: std::time::Duration::from_secs(header_read_timeout),
                    max_connections: max_connections as usize,
                    ..Default::default()
                },
            };
            let app = Application::build(config).await?;
            app.run_until(shutdown_signal())
                .await
                .map_err(|e| AppError::Internal(e.into()))
        }
        Command::Migrate => {
            let store = open(&database_url).await?;
            store.runner.catch_up_fully().await?;
            eprintln!("schema is up to date");
            Ok(())
        }
        Command::User(command) => user(&open(&database_url).await?, command).await,
        Command::Client(command) => client(&open(&database_url).await?, command, &master).await,
        Command::Settings(command) => settings(&open(&database_url).await?, command).await,
        Command::Consent(ConsentCommand::Revoke { user, client }) => {
            let store = open(&database_url).await?;
            admin::grants::revoke_consent(&store, &user, &client, &cli_metadata()).await?;
            eprintln!("consent of {user} for client {client} revoked, with every grant it covered");
            Ok(())
        }
        Command::Audit(args) => audit(&open(&database_url).await?, args).await,
        Command::History { aggregate } => {
            let store = open(&database_url).await?;
            let (kind, id) = parse_aggregate(&aggregate)?;
            let events = event_log::read_aggregate(&store.db, kind, &id).await?;
            if events.is_empty() {
                return Err(AppError::NotFound(format!("no events for {aggregate}")));
            }
            let mut out = std::io::stdout().lock();
            for event in &events {
                if !write_line(&mut out, &describe(event))? {
                    break;
                }
            }
            Ok(())
        }
        Command::State { aggregate, as_of } => {
            let store = open(&database_url).await?;
            print_json(&crate::replay::state_as_of(&store, &aggregate, &as_of).await?)
        }
        Command::Keys(command) => {
            let store = open(&database_url).await?;
            if let KeysCommand::Rotate { algs, now } = command {
                let algs = if algs.is_empty() {
                    crate::signing::ASYMMETRIC.to_vec()
                } else {
                    algs.iter()
                        .map(|raw| {
                            authledger_domain::client::IdTokenAlg::parse(raw)
                                .filter(|alg| crate::signing::ASYMMETRIC.contains(alg))
                                .ok_or_else(|| {
                                    AppError::invalid(format!(
                                        "--alg: `{raw}` is not RS256, ES256 or EdDSA"
                                    ))
                                })
                        })
                        .collect::<Result<Vec<_>, _>>()?
                };
                let master = master.load(&store).await?;
                let kids = crate::signing::rotate(&store, &master, &algs, now, &cli_metadata())
                    .await
                    .map_err(|e| AppError::Internal(e.into()))?;
                eprintln!("published {} new key(s): {}", kids.len(), kids.join(", "));
            }
            let keys = store
                .signing_keys
                .load(authledger_domain::signing_keys::SIGNING_KEYS_ID)
                .await
                .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?;
            let listed: Vec<serde_json::Value> = keys
                .keys()
                .iter()
                .map(|k| {
                    serde_json::json!({
                        "kid": k.kid, "alg": k.alg.as_str(), "state": k.state,
                        "activate_after": k.activate_after, "remove_after": k.remove_after,
                    })
                })
                .collect();
            print_json(&listed)
        }
        Command::Projections(ProjectionsCommand::Rebuild { name }) => {
            let store = open(&database_url).await?;
            let started = std::time::Instant::now();
            let replayed = store.runner.rebuild(name.as_deref()).await?;
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "rebuilt {} from {replayed} events in {seconds:.2} s ({:.0} events/s)",
                name.as_deref().unwrap_or("every projection"),
                replayed as f64 / seconds.max(1e-9)
            );
            Ok(())
        }
        Command::Events {
            aggregate,
            since,
            json,
        } => {
            let store = open(&database_url).await?;
            events(&store.db, aggregate, since, json).await
        }
    }
}

async fn open(database_url: &str) -> Result<Store, AppError> {
    Store::open(database_url, Arc::new(SystemServices))
        .await
        .map_err(|e| AppError::Internal(e.into()))
}

/// Metadata for everything one CLI invocation does: the OS user is the actor.
fn cli_metadata() -> EventMetadata {
    let os_user = whoami::username();
    EventMetadata {
        actor: Actor::Cli(os_user),
        request_id: uuid::Uuid::new_v4().to_string(),
        source: Source::Cli,
        at: Utc::now(),
    }
}

fn print_json(value: &impl Serialize) -> Result<(), AppError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| AppError::Internal(e.into()))?;
    write_line(&mut std::io::stdout().lock(), &text).map(drop)
}

/// Writes one line of output. A reader that went away (`| head`) is not an error: returns
/// `Ok(false)` so the caller stops producing.
fn write_line(out: &mut impl Write, line: &str) -> Result<bool, AppError> {
    match writeln!(out, "{line}") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(AppError::Internal(e.into())),
    }
}

async fn user(store: &Store, command: UserCommand) -> Result<(), AppError> {
    let metadata = cli_metadata();
    match command {
        UserCommand::Create {
            username,
            password,
            email,
            name,
            given_name,
            family_name,
            picture,
            roles,
        } => {
            let input = UserInput {
                username,
                password: password.read()?,
                email,
                name,
                given_name,
                family_name,
                picture,
                roles,
            };
            print_json(&admin::users::create(store, input, &metadata).await?)
        }
        UserCommand::List => {
            let users = all_pages(
                |after| async move {
                    admin::users::list(store, after.as_deref(), admin::MAX_PAGE).await
                },
                |u| u.username.clone(),
            )
            .await?;
            print_json(&users)
        }
        UserCommand::Show { username } => print_json(&admin::users::show(store, &username).await?),
        UserCommand::Disable { username } => {
            admin::users::disable(store, &username, &metadata).await?;
            eprintln!("user {username} disabled");
            Ok(())
        }
        UserCommand::Enable { username } => {
            admin::users::enable(store, &username, &metadata).await?;
            eprintln!("user {username} enabled");
            Ok(())
        }
        UserCommand::SetRoles { username, roles } => {
            print_json(&admin::users::set_roles(store, &username, &roles, &metadata).await?)
        }
        UserCommand::SetPassword { username, password } => {
            admin::users::set_password(store, &username, &password.read()?, &metadata).await?;
            eprintln!("password of {username} changed");
            Ok(())
        }
    }
}

async fn settings(store: &Store, command: SettingsCommand) -> Result<(), AppError> {
    use authledger_domain::settings::{Setting, SettingsCommand as Change, SETTINGS_ID};
    if let SettingsCommand::Set { key, value } = command {
        let setting = Setting::parse(&key, &value).map_err(AppError::invalid)?;
        store
            .settings
            .execute(
                SETTINGS_ID,
                Change::Change(setting.clone()),
                &cli_metadata(),
            )
            .await
            .map_err(crate::error::settings_error)?;
        eprintln!("{setting}");
    }
    print_json(&store.settings_values().await?)
}

async fn client(
    store: &Store,
    command: ClientCommand,
    master: &MasterKeySource,
) -> Result<(), AppError> {
    let metadata = cli_metadata();
    match command {
        ClientCommand::Create(args) => {
            let input = ClientInput::from(*args);
            let master = match input.id_token_signed_response_alg.as_deref() {
                Some("HS256") => Some(master.load(store).await?),
                _ => None,
            };
            let client = admin::clients::register(
                store,
                input,
                RegistrationSource::Admin,
                &metadata,
                master.as_ref(),
            )
            .await?;
            print_json(&client.to_json())
        }
        ClientCommand::List => {
            let clients = all_pages(
                |after| async move {
                    admin::clients::list(store, after.as_deref(), admin::MAX_PAGE).await
                },
                |c| c.client_id.clone(),
            )
            .await?;
            print_json(&clients)
        }
        ClientCommand::Show { client_id } => {
            print_json(&admin::clients::show(store, &client_id).await?)
        }
        ClientCommand::Disable { client_id, reason } => {
            admin::clients::disable(store, &client_id, reason, &metadata).await?;
            eprintln!("client {client_id} disabled");
            Ok(())
        }
        ClientCommand::Enable { client_id } => {
            admin::clients::enable(store, &client_id, &metadata).await?;
            eprintln!("client {client_id} enabled");
            Ok(())
        }
        ClientCommand::Delete { client_id } => {
            admin::clients::delete(store, &client_id, &metadata).await?;
            eprintln!("client {client_id} deleted");
            Ok(())
        }
        ClientCommand::RotateSecret {
            client_id,
            revoke_tokens,
        } => {
            let current = admin::clients::show(store, &client_id).await?;
            let master = match admin::clients::signs_with_secret(&current.metadata) {
                true => Some(master.load(store).await?),
                false => None,
            };
            let secret = admin::clients::rotate_secret(
                store,
                &client_id,
                revoke_tokens,
                &metadata,
                master.as_ref(),
            )
            .await?;
            print_json(&serde_json::json!({
                "client_id": client_id,
                "client_secret": secret.reveal(),
                "tokens_revoked": revoke_tokens,
            }))
        }
    }
}

/// Follows keyset pages to the end.
async fn all_pages<T, F, Fut>(mut page: F, key: impl Fn(&T) -> String) -> Result<Vec<T>, AppError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, AppError>>,
{
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let batch = page(after.take()).await?;
        let full = batch.len() as i64 == admin::MAX_PAGE;
        after = batch.last().map(&key);
        all.extend(batch);
        if !full {
            return Ok(all);
        }
    }
}

fn parse_aggregate(raw: &str) -> Result<(&'static str, String), AppError> {
    crate::replay::parse_aggregate(raw)
}

async fn audit(store: &Store, args: AuditArgs) -> Result<(), AppError> {
    use authledger_projections::audit::{AuditFilter, AuditLog};
    let (filter, json, limit) = match args.export {
        Some(AuditExport::Export { filter }) => (filter, true, i64::MAX),
        None => {
            let json = match args.format.as_str() {
                "json" => true,
                "table" => false,
                other => {
                    return Err(AppError::invalid(format!(
                        "--format: `{other}` is not json or table"
                    )))
                }
            };
            (args.filter, json, args.limit)
        }
    };
    let time = |flag: &str, value: Option<String>| -> Result<Option<String>, AppError> {
        value
            .map(|raw| {
                DateTime::parse_from_rfc3339(&raw)
                    .map(|t| authledger_projections::view_time(t.with_timezone(&Utc)))
                    .map_err(|e| AppError::invalid(format!("--{flag} `{raw}`: {e}")))
            })
            .transpose()
    };
    let mut query = AuditFilter {
        client_id: filter.client_id,
        username: filter.user.map(|u| u.to_ascii_lowercase()),
        grant_id: filter.grant,
        event_type: filter.event_type,
        since: time("since", filter.since)?,
        until: time("until", filter.until)?,
        after: None,
    };
    let mut out = std::io::stdout().lock();
    let columns = |pos: &str, time: &str, event: &str, actor: &str, ip: &str, summary: &str| {
        format!("{pos:<7} {time:<28} {event:<22} {actor:<24} {ip:<15} {summary}")
    };
    if !json {
        write_line(
            &mut out,
            &columns("POS", "TIME", "EVENT", "ACTOR", "IP", "SUMMARY"),
        )?;
    }
    let mut printed = 0i64;
    while printed < limit {
        let page =
            AuditLog::query(&store.db, &query, (limit - printed).min(admin::MAX_PAGE)).await?;
        let Some(last) = page.last() else { break };
        query.after = Some(last.global_position);
        for row in &page {
            let line = if json {
                serde_json::to_string(row).map_err(|e| AppError::Internal(e.into()))?
            } else {
                columns(
                    &row.global_position.to_string(),
                    &row.occurred_at,
                    &row.event_type,
                    &row.actor,
                    row.ip.as_deref().unwrap_or("-"),
                    &row.summary,
                )
            };
            if !write_line(&mut out, &line)? {
                return Ok(());
            }
            printed += 1;
        }
    }
    Ok(())
}
async fn events(
    db: &Db,
    aggregate: Option<String>,
    since: Option<String>,
    json: bool,
) -> Result<(), AppError> {
    let since: Option<DateTime<Utc>> = since
        .map(|raw| {
            DateTime::parse_from_rfc3339(&raw)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| AppError::invalid(format!("--since `{raw}`: {e}")))
        })
        .transpose()?;
    let keep = |event: &StoredEvent| since.is_none_or(|since| event.metadata.at >= since);
    let mut out = std::io::stdout().lock();
    // Returns whether to go on.
    let mut print = |event: &StoredEvent| -> Result<bool, AppError> {
        if !keep(event) {
            return Ok(true);
        }
        let line = if json {
            serde_json::to_string(event).map_err(|e| AppError::Internal(e.into()))?
        } else {
            describe(event)
        };
        write_line(&mut out, &line)
    };
    if let Some(aggregate) = aggregate {
        let (kind, id) = parse_aggregate(&aggregate)?;
        for event in event_log::read_aggregate(db, kind, &id).await? {
            if !print(&event)? {
                break;
            }
        }
        return Ok(());
    }
    let mut after = Position::default();
    loop {
        let mut tx = db.begin().await.map_err(|e| AppError::Internal(e.into()))?;
        let batch = event_log::read_after(&mut tx, after, 1000).await?;
        drop(tx);
        let Some(last) = batch.last() else {
            return Ok(());
        };
        after = last.position;
        for event in &batch {
            if !print(event)? {
                return Ok(());
            }
        }
    }
}

/// One event as a line for people: position, time, aggregate, type, who and from where, then
/// the payload.
fn describe(event: &StoredEvent) -> String {
    let m = &event.raw_metadata;
    let get = |key: &str| m.get(key).map(String::as_str).unwrap_or("-");
    let mut line = format!(
        "#{:<6} {}  {}:{} v{}  {}  actor={} source={}",
        event.position.global,
        get("time"),
        event.aggregate_type,
        event.aggregate_id,
        event.sequence,
        event.event_type,
        get("actor"),
        get("source"),
    );
    for key in ["ip", "user_agent"] {
        if let Some(value) = m.get(key) {
            line.push_str(&format!(" {key}={value:?}"));
        }
    }
    line.push_str(&format!(
        " request_id={}\n        {}",
        get("request_id"),
        event.payload
    ));
    line
}
