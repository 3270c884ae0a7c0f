//! `authledger client ...`.

use authledger_domain::client::RegistrationSource;
use clap::{Args, Subcommand};

use super::output::{all_pages, print_json};
use super::{cli_metadata, MasterKeySource};
use crate::admin::{self, clients::ClientInput};
use crate::error::AppError;
use crate::store::Store;

#[derive(Subcommand)]
pub(super) enum ClientCommand {
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
pub(super) struct ClientCreateArgs {
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

pub(super) async fn client(
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
