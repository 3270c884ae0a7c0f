//! `authledger social-login create|list|show|delete`: providers people may sign in through.
//! The client secret is read from stdin or a file, never from an argument.

use clap::{Args, Subcommand};

use super::connected_app::read_secret;
use super::output::print_json;
use super::{cli_metadata, MasterKeySource};
use crate::connected_apps::provider::ProviderClient;
use crate::error::AppError;
use crate::social_login::{self, SocialLoginInput};
use crate::store::Store;

#[derive(Subcommand)]
pub(super) enum SocialLoginCommand {
    /// Add a provider; prints JSON with `id` (the slug of the name) and `redirect_uri`
    /// (register it at the provider).
    Create(Box<CreateArgs>),
    /// Change a provider: each option given replaces its value (enable or disable it here).
    Update(Box<UpdateArgs>),
    /// Every provider, as JSON or --format table.
    List(super::output::ListFormat),
    /// One provider, with the redirect URI to register at it, as JSON.
    Show {
        /// The provider's id (the slug of its name).
        id: String,
    },
    /// Delete the provider and its secret; its button goes, its linked identities sign no one in.
    Delete {
        /// The provider's id.
        id: String,
    },
    /// The identities at other providers linked to a person, as JSON.
    Identities {
        /// The person.
        #[arg(long)]
        user: String,
    },
    /// Unlink a person's identity at the provider ID: it no longer signs in as them.
    Unlink {
        /// The provider's id.
        id: String,
        /// The person.
        #[arg(long)]
        user: String,
        /// Only this subject (a person may have linked more than one).
        #[arg(long)]
        subject: Option<String>,
    },
}

#[derive(Args)]
pub(super) struct CreateArgs {
    /// Its name on the sign-in button; its id (and callback path) is the slug of it.
    #[arg(long)]
    name: String,
    /// An OpenID provider's issuer (its discovery document is read from it).
    #[arg(long, value_name = "URL", conflicts_with_all = ["base_url", "authorize_url"])]
    issuer: Option<String>,
    /// Another authledger or Frappe server: its base URL (its issuer).
    #[arg(long, value_name = "URL", conflicts_with = "authorize_url")]
    base_url: Option<String>,
    /// A plain OAuth 2 provider: its authorization endpoint ...
    #[arg(long, value_name = "URL", requires_all = ["token_url", "api_endpoint", "user_id_property"])]
    authorize_url: Option<String>,
    /// ... its token endpoint ...
    #[arg(long, value_name = "URL")]
    token_url: Option<String>,
    /// ... its user-info endpoint ...
    #[arg(long, value_name = "URL")]
    api_endpoint: Option<String>,
    /// ... and the property of its answer that holds the person's id (GitHub: `id`).
    #[arg(long)]
    user_id_property: Option<String>,
    /// The client id authledger is registered under at the provider.
    #[arg(long)]
    client_id: String,
    /// Read the client secret from the first line of stdin.
    #[arg(long, conflicts_with = "client_secret_file")]
    client_secret_stdin: bool,
    /// Read the client secret from this file (its first line).
    #[arg(long, value_name = "FILE")]
    client_secret_file: Option<std::path::PathBuf>,
    /// Space-separated; OpenID providers default to "openid email profile".
    #[arg(long)]
    scope: Option<String>,
    /// Whether a first sign-in with no account here creates one.
    #[arg(long, value_parser = ["allow", "deny"], default_value = "allow")]
    sign_ups: String,
    /// Take the provider's emails as verified even without `email_verified` (your own
    /// organisation's identity provider).
    #[arg(long)]
    trusted_emails: bool,
    /// An https image for its "Sign in with" button.
    #[arg(long, value_name = "URL")]
    icon: Option<String>,
    /// Whether its issuer is listed among this server's authorization servers in the
    /// protected-resource metadata (RFC 9728) when the setting
    /// show_social_login_key_as_authorization_server is on.
    #[arg(long, value_parser = clap::value_parser!(bool), default_value_t = true)]
    show_in_resource_metadata: bool,
    /// Trust its signed tokens (ID tokens, JWT access tokens issued to this server) as the
    /// subject of token exchanges by clients that name its issuer (OpenID providers only).
    #[arg(long)]
    token_exchange: bool,
}

#[derive(Args)]
pub(super) struct UpdateArgs {
    /// The provider's id.
    id: String,
    /// A new label (the id stays).
    #[arg(long)]
    name: Option<String>,
    /// A new client id at the provider.
    #[arg(long)]
    client_id: Option<String>,
    /// Read a new client secret from the first line of stdin.
    #[arg(long)]
    client_secret_stdin: bool,
    /// New space-separated scopes to ask for (an OpenID provider's include openid).
    #[arg(long)]
    scope: Option<String>,
    /// allow: a first sign-in with no account here makes one; deny: it is refused.
    #[arg(long, value_parser = ["allow", "deny"])]
    sign_ups: Option<String>,
    /// Whether the provider's emails count as verified (links accounts by email).
    #[arg(long, value_parser = clap::value_parser!(bool))]
    trusted_emails: Option<bool>,
    /// false hides its button and refuses sign-ins through it.
    #[arg(long, value_parser = clap::value_parser!(bool))]
    enabled: Option<bool>,
    /// An https image, or "" to remove it.
    #[arg(long, value_name = "URL")]
    icon: Option<String>,
    /// Whether its issuer is listed in the protected-resource metadata (RFC 9728).
    #[arg(long, value_parser = clap::value_parser!(bool))]
    show_in_resource_metadata: Option<bool>,
    /// Whether its signed tokens are trusted as token-exchange subjects.
    #[arg(long, value_parser = clap::value_parser!(bool))]
    token_exchange: Option<bool>,
}

pub(super) async fn social_login(
    store: &Store,
    command: SocialLoginCommand,
    master: &MasterKeySource,
) -> Result<(), AppError> {
    let metadata = cli_metadata();
    let issuer = super::connected_app::issuer();
    match command {
        SocialLoginCommand::Create(args) => {
            let input = SocialLoginInput {
                client_secret: read_secret(&args.client_secret_file, args.client_secret_stdin)?,
                name: args.name,
                issuer: args.issuer,
                base_url: args.base_url,
                authorize_url: args.authorize_url,
                token_url: args.token_url,
                api_endpoint: args.api_endpoint,
                user_id_property: args.user_id_property,
                client_id: args.client_id,
                scope: args.scope,
                sign_ups: Some(args.sign_ups),
                trusted_emails: args.trusted_emails,
                icon: args.icon,
                show_in_resource_metadata: Some(args.show_in_resource_metadata),
                token_exchange: args.token_exchange,
            };
            let master = master.load(store).await?;
            let created = social_login::create(
                store,
                &master,
                &ProviderClient::new(),
                &issuer,
                input,
                &metadata,
            )
            .await?;
            eprintln!(
                "social login {} created; register {} as a redirect URI at the provider",
                created.id, created.redirect_uri
            );
            print_json(&created)
        }
        SocialLoginCommand::Update(args) => {
            let client_secret = args
                .client_secret_stdin
                .then(|| read_secret(&None, true))
                .transpose()?;
            let change = social_login::SocialLoginChange {
                name: args.name,
                client_id: args.client_id,
                client_secret,
                scope: args.scope,
                sign_ups: args.sign_ups,
                trusted_emails: args.trusted_emails,
                enabled: args.enabled,
                icon: args.icon,
                show_in_resource_metadata: args.show_in_resource_metadata,
                token_exchange: args.token_exchange,
            };
            let master = master.load(store).await?;
            let updated =
                social_login::update(store, &master, &issuer, &args.id, change, &metadata).await?;
            print_json(&updated)
        }
        SocialLoginCommand::List(list) => super::output::print_records(
            &social_login::list(store).await?,
            list.format,
            &[
                ("ID", "/provider_id"),
                ("NAME", "/name"),
                ("STATUS", "/status"),
                ("UPDATED", "/updated_at"),
            ],
        ),
        SocialLoginCommand::Show { id } => {
            print_json(&social_login::show(store, &issuer, &id).await?)
        }
        SocialLoginCommand::Identities { user } => {
            print_json(&social_login::identities(store, &user).await?)
        }
        SocialLoginCommand::Unlink { id, user, subject } => {
            let unlinked =
                social_login::unlink(store, &id, &user, subject.as_deref(), &metadata).await?;
            let what = if unlinked == 1 {
                "identity"
            } else {
                "identities"
            };
            eprintln!("{unlinked} {what} of {user} at {id} unlinked");
            Ok(())
        }
        SocialLoginCommand::Delete { id } => {
            social_login::delete(store, &id, &metadata).await?;
            eprintln!("social login {id} deleted; identities linked through it stay linked");
            Ok(())
        }
    }
}
