//! `authledger client ...`.

use authledger_domain::client::RegistrationSource;
use clap::Subcommand;

use super::output::{all_pages, print_json};
use super::{cli_metadata, MasterKeySource};
use crate::admin::{self, clients::ClientInput};
use crate::error::AppError;
use crate::store::Store;

#[derive(Subcommand)]
pub(super) enum ClientCommand {
    /// Register a client; prints JSON with `client_id` and, if confidential, `client_secret`
    /// (shown only this once).
    Create(Box<ClientInput>),
    /// Every client, as JSON or --format table (secrets are never shown again).
    List(super::output::ListFormat),
    /// One client's registration, as JSON.
    Show {
        /// The client's id, or its name when no other client has it.
        client_id: String,
    },
    /// Stop the client: its tokens stop working at once and it gets no new ones.
    Disable {
        /// The client's id.
        client_id: String,
        /// Why, for the audit trail.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Let a disabled client work again.
    Enable {
        /// The client's id.
        client_id: String,
    },
    /// Delete the client: its grants are revoked; its history stays.
    Delete {
        /// The client's id.
        client_id: String,
    },
    /// Replace the client secret; prints the new one (shown only this once).
    RotateSecret {
        /// The client's id.
        client_id: String,
        /// Also revoke every token issued to the client.
        #[arg(long)]
        revoke_tokens: bool,
    },
}

pub(super) async fn client(
    store: &Store,
    command: ClientCommand,
    master: &MasterKeySource,
) -> Result<(), AppError> {
    let metadata = cli_metadata();
    match command {
        ClientCommand::Create(args) => {
            let input = *args;
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
        ClientCommand::List(list) => {
            let clients = all_pages(
                |after| async move {
                    admin::clients::list(store, after.as_deref(), admin::MAX_PAGE).await
                },
                |c| c.client_id.clone(),
            )
            .await?;
            super::output::print_records(
                &clients,
                list.format,
                &[
                    ("CLIENT_ID", "/client_id"),
                    ("NAME", "/name"),
                    ("STATUS", "/status"),
                    ("PUBLIC", "/public"),
                    ("GRANT_TYPES", "/metadata/grant_types"),
                    ("REGISTERED", "/registered_at"),
                ],
            )
        }
        ClientCommand::Show { client_id } => {
            print_json(&admin::clients::find(store, &client_id).await?)
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
