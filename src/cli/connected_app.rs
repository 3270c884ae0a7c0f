//! `authledger connected-app create|list|show|delete|token|disconnect`: authledger as a
//! client of another provider. The client secret is read from stdin or a file, never from an
//! argument (which other local users can read in the process list).

use std::collections::BTreeMap;
use std::io::Read;

use clap::{Args, Subcommand};

use super::output::print_json;
use super::{cli_metadata, MasterKeySource};
use crate::connected_apps::{self, ConnectedAppInput, Connections};
use crate::error::AppError;
use crate::store::Store;

#[derive(Subcommand)]
pub(super) enum ConnectedAppCommand {
    /// Register a provider authledger connects people to; prints JSON with `id` (the slug of
    /// the name) and `redirect_uri` (register it at the provider).
    Create(Box<CreateArgs>),
    /// Change an app: each option given replaces its value (a new secret from stdin or a
    /// file); prints the app as JSON.
    Update(Box<UpdateArgs>),
    /// Every connected app, as JSON or --format table.
    List(super::output::ListFormat),
    /// One app, with the redirect URI to register at the provider, as JSON.
    Show {
        /// The app's id (the slug of its name).
        id: String,
    },
    /// Delete the app, its secret and every token cached for it.
    Delete {
        /// The app's id.
        id: String,
    },
    /// Print a currently valid access token (refreshed first when about to expire) of a
    /// person's connection, or without --user the app's own (client credentials), as JSON.
    Token {
        /// The app's id.
        id: String,
        /// The person whose connection's token it is; without it, the app's own.
        #[arg(long)]
        user: Option<String>,
    },
    /// Give up a person's connection: revoke at the provider when it can, forget the tokens.
    Disconnect {
        /// The app's id.
        id: String,
        /// The person whose connection to give up.
        #[arg(long)]
        user: String,
    },
}

#[derive(Args)]
pub(super) struct CreateArgs {
    /// Its name; its id (and so its callback path) is the slug of it.
    #[arg(long)]
    name: String,
    /// The provider's OpenID configuration URL: its endpoints are read from it.
    #[arg(long, value_name = "URL")]
    openid_configuration: Option<String>,
    /// The provider's authorization endpoint (read from the configuration URL when not given).
    #[arg(long, value_name = "URL")]
    authorization_uri: Option<String>,
    /// The provider's token endpoint.
    #[arg(long, value_name = "URL")]
    token_uri: Option<String>,
    /// The provider's revocation endpoint (RFC 7009), used to disconnect.
    #[arg(long, value_name = "URL")]
    revocation_uri: Option<String>,
    /// The provider's user-info endpoint.
    #[arg(long, value_name = "URL")]
    userinfo_uri: Option<String>,
    /// The provider's introspection endpoint (RFC 7662).
    #[arg(long, value_name = "URL")]
    introspection_uri: Option<String>,
    /// The provider's issuer identifier, checked in its ID tokens.
    #[arg(long)]
    issuer: Option<String>,
    /// The provider's JWKS, to verify its ID tokens.
    #[arg(long, value_name = "URL")]
    jwks_uri: Option<String>,
    /// The client id authledger is registered under at the provider.
    #[arg(long)]
    client_id: String,
    /// Read the client secret from the first line of stdin.
    #[arg(long, conflicts_with = "client_secret_file")]
    client_secret_stdin: bool,
    /// Read the client secret from this file (its first line).
    #[arg(long, value_name = "FILE")]
    client_secret_file: Option<std::path::PathBuf>,
    /// Space-separated scopes to ask for, e.g. "openid email files".
    #[arg(long)]
    scope: Option<String>,
    /// An extra query parameter of the authorization request, NAME=VALUE (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
}

#[derive(Args)]
pub(super) struct UpdateArgs {
    /// The app's id.
    id: String,
    /// A new display name (the id stays).
    #[arg(long)]
    name: Option<String>,
    /// A new OpenID configuration URL: fetched again, its endpoints replace those not given.
    #[arg(long, value_name = "URL")]
    openid_configuration: Option<String>,
    /// The provider's authorization endpoint.
    #[arg(long, value_name = "URL")]
    authorization_uri: Option<String>,
    /// The provider's token endpoint.
    #[arg(long, value_name = "URL")]
    token_uri: Option<String>,
    /// The provider's revocation endpoint.
    #[arg(long, value_name = "URL")]
    revocation_uri: Option<String>,
    /// The provider's user-info endpoint.
    #[arg(long, value_name = "URL")]
    userinfo_uri: Option<String>,
    /// The provider's introspection endpoint.
    #[arg(long, value_name = "URL")]
    introspection_uri: Option<String>,
    /// The provider's issuer identifier.
    #[arg(long)]
    issuer: Option<String>,
    /// The provider's JWKS URL.
    #[arg(long, value_name = "URL")]
    jwks_uri: Option<String>,
    /// A new client id at the provider.
    #[arg(long)]
    client_id: Option<String>,
    /// Read a new client secret from the first line of stdin.
    #[arg(long, conflicts_with = "client_secret_file")]
    client_secret_stdin: bool,
    /// Read a new client secret from this file (its first line).
    #[arg(long, value_name = "FILE")]
    client_secret_file: Option<std::path::PathBuf>,
    /// New space-separated scopes to ask for.
    #[arg(long)]
    scope: Option<String>,
    /// Replaces every extra parameter, NAME=VALUE (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
}

fn params(raw: &[String]) -> Result<BTreeMap<String, String>, AppError> {
    let mut params = BTreeMap::new();
    for param in raw {
        let (name, value) = param.split_once('=').ok_or_else(|| {
            AppError::invalid_field("param", format!("--param `{param}`: expected NAME=VALUE"))
        })?;
        params.insert(name.to_owned(), value.to_owned());
    }
    Ok(params)
}

/// The client secret from the first line of a file or of stdin.
pub(super) fn read_secret(
    file: &Option<std::path::PathBuf>,
    stdin: bool,
) -> Result<String, AppError> {
    let raw = match (file, stdin) {
        (Some(file), _) => std::fs::read_to_string(file).map_err(|e| {
            AppError::invalid_field(
                "client_secret_file",
                format!("cannot read {}: {e}", file.display()),
            )
        })?,
        (None, true) => {
            let mut raw = String::new();
            std::io::stdin()
                .read_to_string(&mut raw)
                .map_err(|e| AppError::invalid(format!("client secret: cannot read stdin: {e}")))?;
            raw
        }
        (None, false) => {
            return Err(AppError::invalid_field(
                "client_secret",
                "give the client secret with --client-secret-stdin or --client-secret-file",
            ))
        }
    };
    Ok(raw.lines().next().unwrap_or_default().trim().to_owned())
}

/// This server's issuer as `serve` would take it: callbacks are under it.
pub(super) fn issuer() -> String {
    std::env::var("AUTHLEDGER_ISSUER").unwrap_or_else(|_| {
        let listen =
            std::env::var("AUTHLEDGER_LISTEN").unwrap_or_else(|_| super::DEFAULT_LISTEN.to_owned());
        format!("http://{listen}")
    })
}

pub(super) async fn connected_app(
    store: &Store,
    command: ConnectedAppCommand,
    master: &MasterKeySource,
) -> Result<(), AppError> {
    let metadata = cli_metadata();
    let connections = Connections::default();
    match command {
        ConnectedAppCommand::Create(args) => {
            let client_secret = read_secret(&args.client_secret_file, args.client_secret_stdin)?;
            let extra_params = params(&args.params)?;
            let input = ConnectedAppInput {
                name: args.name,
                openid_configuration: args.openid_configuration,
                authorization_uri: args.authorization_uri,
                token_uri: args.token_uri,
                revocation_uri: args.revocation_uri,
                userinfo_uri: args.userinfo_uri,
                introspection_uri: args.introspection_uri,
                issuer: args.issuer,
                jwks_uri: args.jwks_uri,
                client_id: args.client_id,
                client_secret,
                scope: args.scope,
                extra_params,
            };
            let master = master.load(store).await?;
            let created = connected_apps::create(
                store,
                &master,
                &connections.provider,
                &issuer(),
                input,
                &metadata,
            )
            .await?;
            eprintln!(
                "connected app {} created; register {} as a redirect URI at the provider",
                created.id, created.redirect_uri
            );
            print_json(&created)
        }
        ConnectedAppCommand::Update(args) => {
            let client_secret = if args.client_secret_stdin || args.client_secret_file.is_some() {
                read_secret(&args.client_secret_file, args.client_secret_stdin)?
            } else {
                String::new()
            };
            let change = ConnectedAppInput {
                name: args.name.unwrap_or_default(),
                openid_configuration: args.openid_configuration,
                authorization_uri: args.authorization_uri,
                token_uri: args.token_uri,
                revocation_uri: args.revocation_uri,
                userinfo_uri: args.userinfo_uri,
                introspection_uri: args.introspection_uri,
                issuer: args.issuer,
                jwks_uri: args.jwks_uri,
                client_id: args.client_id.unwrap_or_default(),
                client_secret,
                scope: args.scope,
                extra_params: params(&args.params)?,
            };
            let master = master.load(store).await?;
            let updated = connected_apps::update(
                store,
                &master,
                &connections.provider,
                &issuer(),
                &args.id,
                change,
                &metadata,
            )
            .await?;
            print_json(&updated)
        }
        ConnectedAppCommand::List(list) => super::output::print_records(
            &connected_apps::list(store).await?,
            list.format,
            &[
                ("ID", "/app_id"),
                ("NAME", "/name"),
                ("CLIENT_ID", "/client_id"),
                ("STATUS", "/status"),
            ],
        ),
        ConnectedAppCommand::Show { id } => {
            print_json(&connected_apps::show(store, &issuer(), &id).await?)
        }
        ConnectedAppCommand::Delete { id } => {
            let master = master.load(store).await?;
            connected_apps::delete(store, &master, &id, &metadata).await?;
            eprintln!("connected app {id} deleted, with its secret and cached tokens");
            Ok(())
        }
        ConnectedAppCommand::Token { id, user } => {
            let master = master.load(store).await?;
            let id = connected_apps::parse_id(&id)?;
            let user = user
                .as_deref()
                .map(crate::admin::users::parse_username)
                .transpose()?;
            let token = connections
                .fresh_token(store, &master, &id, user.as_ref(), &metadata)
                .await?;
            print_json(&token)
        }
        ConnectedAppCommand::Disconnect { id, user } => {
            let master = master.load(store).await?;
            let id = connected_apps::parse_id(&id)?;
            let user = crate::admin::users::parse_username(&user)?;
            let revoked = connections
                .disconnect(store, &master, &id, &user, &metadata)
                .await?;
            eprintln!(
                "{user}'s connection to {id} given up{}",
                if revoked {
                    "; its tokens were revoked at the provider"
                } else {
                    ""
                }
            );
            Ok(())
        }
    }
}
