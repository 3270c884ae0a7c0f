//! The `authledger` command line (DESIGN §4). Output meant for programs is JSON on stdout;
//! messages for people go to stderr; every failure exits non-zero.
//!
//! This file runs the command chosen from the tree in `command_tree.rs`; each command group
//! has its own file (`user`, `client`, `settings`, `audit`, `events`, `keys`, ...), with
//! `output` for what they print and `logging` for the log set-up.

use std::process::ExitCode;

use authledger_domain::metadata::{Actor, EventMetadata, Source};
use chrono::Utc;
use clap::{CommandFactory, FromArgMatches};

use crate::admin;
use crate::config::{Config, DEFAULT_LISTEN};
use crate::error::AppError;
use crate::http::{shutdown_signal, Application};
use crate::master_key::MasterKey;
use crate::store::Store;

mod audit;
mod client;
mod command_tree;
mod config_file;
mod connected_app;
mod events;
mod keys;
mod ledger;
mod logging;
mod output;
mod projections;
mod resource;
mod settings;
mod social_login;
mod token;
mod transfer;
mod usage;
mod user;

use command_tree::{Cli, Command, ConfigCommand, ConsentCommand, MasterKeyCommand};

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
    // The configuration file becomes environment variables before the command line is
    // parsed, while this process has one thread (see `config_file`).
    let sources = match config_file::apply(&std::env::args_os().collect::<Vec<_>>()) {
        Ok(sources) => sources,
        Err(error) => {
            eprintln!("error: {error}");
            return exit_code(&error);
        }
    };
    // `settings set --help` lists every setting, from the domain's one list.
    let command = Cli::command().mut_subcommand("settings", |settings| {
        settings.mut_subcommand("set", |set| set.after_help(settings::keys_help()))
    });
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let serving = matches!(cli.command, Command::Serve { .. });
    logging::init(serving, cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, sources)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            exit_code(&error)
        }
    }
}

/// What a failed command exits with, so that scripts can tell failures apart (README,
/// *Command line*): 2 is a usage error (clap's own), and then one code per kind of refusal.
pub mod exit {
    /// Our own failure, or one with no better code.
    pub const FAILURE: u8 = 1;
    /// A command line that does not parse (clap).
    pub const USAGE: u8 = 2;
    /// What was named does not exist.
    pub const NOT_FOUND: u8 = 3;
    /// The current state refuses it (it exists already, or is disabled, ...).
    pub const CONFLICT: u8 = 4;
    /// A value given is refused (a malformed URL, an unknown setting, a configuration
    /// that does not check).
    pub const INVALID: u8 = 5;
    /// The store cannot be reached, or another server called failed: trying again later
    /// may work.
    pub const UNAVAILABLE: u8 = 6;
    /// `ledger verify` found a break: the log or its chain was changed.
    pub const TAMPERED: u8 = 7;
}

fn exit_code(error: &AppError) -> ExitCode {
    ExitCode::from(match error {
        AppError::NotFound(_) => exit::NOT_FOUND,
        AppError::Conflict(_) => exit::CONFLICT,
        AppError::Invalid { .. } => exit::INVALID,
        AppError::Upstream(_) => exit::UNAVAILABLE,
        AppError::Tampered(_) => exit::TAMPERED,
        error if error.is_unavailable() => exit::UNAVAILABLE,
        _ => exit::FAILURE,
    })
}

/// How the CLI finds the master key, loaded only by the commands that need it.
pub(super) struct MasterKeySource {
    configured: Option<String>,
    file: std::path::PathBuf,
}

impl MasterKeySource {
    pub(super) async fn load(&self, store: &Store) -> Result<MasterKey, AppError> {
        let may_generate = !store.holds_sealed_values().await?;
        MasterKey::load(self.configured.as_deref(), &self.file, may_generate)
            .map_err(|e| AppError::Internal(e.into()))
    }
}

async fn run(cli: Cli, sources: config_file::Sources) -> Result<(), AppError> {
    // A command that may have written events links them into the ledger's chain before it
    // ends, so that a store run from the CLI alone has no unlinked history either (the server
    // links continuously). `ledger verify` only reads.
    let may_write = !matches!(
        cli.command,
        Command::Serve { .. }
            | Command::Config(_)
            | Command::MasterKey(_)
            | Command::Ledger(_)
            | Command::Events { .. }
            | Command::History { .. }
            | Command::State { .. }
    );
    let database_url = cli.database_url.clone();
    let archive_dir = cli.archive_dir.clone();
    let done = run_command(cli, sources).await;
    if done.is_ok() && may_write {
        let store = open(&database_url, &archive_dir).await?;
        authledger_projections::ledger::link_all(&store.db).await?;
    }
    done
}

async fn run_command(cli: Cli, sources: config_file::Sources) -> Result<(), AppError> {
    let database_url = cli.database_url;
    let archive_dir = cli.archive_dir;
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
            trusted_proxies,
        } => {
            let config = Config {
                database_url: database_url.clone().into(),
                listen,
                issuer,
                master_key: master.configured.map(Into::into),
                master_key_file: master.file,
                token_cache_capacity: token_cache,
                limits: crate::config::Limits {
                    header_read_timeout: std::time::Duration::from_secs(header_read_timeout),
                    max_connections: max_connections as usize,
                    trusted_proxies,
                    ..Default::default()
                },
                link_ledger: true,
                archive_dir: archive_dir.clone(),
            };
            let app = Application::build(config).await.map_err(|e| match e
                .downcast::<crate::store::OpenError>()
            {
                Ok(refused) => refused.into(),
                Err(other) => AppError::Internal(other),
            })?;
            app.run_until(shutdown_signal())
                .await
                .map_err(|e| AppError::Internal(e.into()))
        }
        Command::Config(ConfigCommand::Check { format }) => {
            config_file::check_command(&sources, format == audit::Format::Json)
        }
        Command::MasterKey(MasterKeyCommand::Generate { file }) => {
            let key = MasterKey::generate().to_base64();
            match file {
                None => {
                    output::write_line(&mut std::io::stdout().lock(), &key)?;
                }
                Some(file) => {
                    crate::master_key::write_private(&file, &key)
                        .map_err(|e| AppError::invalid(format!("{}: {e}", file.display())))?;
                    eprintln!("wrote a new master key to {}", file.display());
                }
            }
            eprintln!(
                "keep it where AUTHLEDGER_MASTER_KEY or AUTHLEDGER_MASTER_KEY_FILE finds it, and \
                 back it up apart from the database: without it the sealed signing keys and \
                 secrets cannot be read"
            );
            Ok(())
        }
        Command::Migrate => {
            let store = open(&database_url, &archive_dir).await?;
            store.runner.catch_up_fully().await?;
            authledger_projections::ledger::link_all(&store.db).await?;
            eprintln!("schema is up to date");
            Ok(())
        }
        Command::User(command) => {
            user::user(&open(&database_url, &archive_dir).await?, command).await
        }
        Command::Client(command) => {
            client::client(&open(&database_url, &archive_dir).await?, command, &master).await
        }
        Command::Settings(command) => {
            settings::settings(&open(&database_url, &archive_dir).await?, command).await
        }
        Command::Consent(ConsentCommand::Revoke { user, client }) => {
            let store = open(&database_url, &archive_dir).await?;
            admin::grants::revoke_consent(&store, &user, &client, &cli_metadata()).await?;
            eprintln!("consent of {user} for client {client} revoked, with every grant it covered");
            Ok(())
        }
        Command::ConnectedApp(command) => {
            connected_app::connected_app(
                &open(&database_url, &archive_dir).await?,
                command,
                &master,
            )
            .await
        }
        Command::SocialLogin(command) => {
            social_login::social_login(&open(&database_url, &archive_dir).await?, command, &master)
                .await
        }
        Command::Resource(command) => {
            resource::resource(&open(&database_url, &archive_dir).await?, command).await
        }
        Command::Audit(args) => audit::audit(&open(&database_url, &archive_dir).await?, args).await,
        Command::Usage(args) => usage::usage(&open(&database_url, &archive_dir).await?, args).await,
        Command::Token(command) => {
            token::token(&open(&database_url, &archive_dir).await?, command).await
        }
        Command::History { aggregate, format } => {
            let json = format == events::EventsFormat::Json;
            events::history(&open(&database_url, &archive_dir).await?, &aggregate, json).await
        }
        Command::State { aggregate, as_of } => {
            let store = open(&database_url, &archive_dir).await?;
            output::print_json(&crate::replay::state_as_of(&store, &aggregate, &as_of).await?)
        }
        Command::Keys(command) => {
            keys::keys(&open(&database_url, &archive_dir).await?, command, &master).await
        }
        Command::Ledger(ledger::LedgerCommand::VerifyExport { file, keys }) => {
            ledger::verify_export(&file, &keys)
        }
        Command::Ledger(command) => {
            ledger::ledger(&open(&database_url, &archive_dir).await?, command, &master).await
        }
        Command::Export(args) => {
            transfer::export(&open(&database_url, &archive_dir).await?, args, &master).await
        }
        Command::Import(args) => {
            transfer::import(&open(&database_url, &archive_dir).await?, args, &master).await
        }
        Command::Projections(command) => {
            projections::projections(&open(&database_url, &archive_dir).await?, command).await
        }
        Command::Events {
            aggregate,
            since,
            until,
            format,
            json,
        } => {
            let store = open(&database_url, &archive_dir).await?;
            let json = json || format == events::EventsFormat::Json;
            events::events(&store, aggregate, since, until, json).await
        }
    }
}

pub(super) async fn open(
    database_url: &str,
    archive_dir: &Option<std::path::PathBuf>,
) -> Result<Store, AppError> {
    let store = Store::open(database_url).await?;
    store.runner.use_archive(
        archive_dir
            .as_ref()
            .map(authledger_projections::ledger::segments::Archive::new),
    );
    Ok(store)
}

/// Metadata for everything one CLI invocation does: the OS user is the actor.
pub(super) fn cli_metadata() -> EventMetadata {
    let os_user = whoami::username();
    EventMetadata {
        actor: Actor::Cli(os_user),
        request_id: uuid::Uuid::new_v4().to_string(),
        source: Source::Cli,
        at: Utc::now(),
    }
}

#[cfg(test)]
mod help_text {
    use clap::CommandFactory;

    /// Every command and every argument says what it is for (`--help` is the manual).
    #[test]
    fn every_subcommand_and_argument_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" || arg.is_global_set() && path.contains(' ') {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} --{id}"));
                }
            }
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(path.clone());
                }
                walk(sub, &path, missing);
            }
        }
        let mut missing = vec![];
        walk(&super::Cli::command(), "authledger", &mut missing);
        assert!(missing.is_empty(), "no help for:\n{}", missing.join("\n"));
    }
}
