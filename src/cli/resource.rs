//! `authledger resource create|list|show|update|delete`: the protected resources (APIs) tokens
//! can be restricted to with `resource` (RFC 8707).

use clap::Subcommand;

use super::cli_metadata;
use super::output::{print_json, print_records};
use crate::admin::resources::{self, ResourceInput};
use crate::error::AppError;
use crate::store::Store;

#[derive(Subcommand)]
pub(super) enum ResourceCommand {
    /// Register a resource; prints it as JSON.
    Create {
        /// Its identifier: an absolute URI without a fragment, as clients send it in `resource`.
        #[arg(long, value_name = "URI")]
        identifier: String,
        #[command(flatten)]
        input: ResourceInput,
    },
    /// Every resource, as JSON or --format table.
    List(super::output::ListFormat),
    /// One resource, as JSON.
    Show {
        /// Its identifier.
        identifier: String,
    },
    /// Change a resource: each option given replaces its value.
    Update {
        /// Its identifier.
        identifier: String,
        #[command(flatten)]
        input: ResourceInput,
    },
    /// Delete a resource: it can no longer be asked for (tokens already issued keep their
    /// audience until they expire or are revoked).
    Delete {
        /// Its identifier.
        identifier: String,
    },
}

pub(super) async fn resource(store: &Store, command: ResourceCommand) -> Result<(), AppError> {
    match command {
        ResourceCommand::Create { identifier, input } => {
            let created = resources::create(store, &identifier, input, &cli_metadata()).await?;
            eprintln!("resource {identifier} registered");
            print_json(&created)
        }
        ResourceCommand::List(format) => print_records(
            &resources::list(store).await?,
            format.format,
            &[
                ("IDENTIFIER", "/identifier"),
                ("NAME", "/settings/name"),
                ("SCOPES", "/settings/scopes"),
                ("FORMAT", "/settings/token_format"),
                ("CLIENTS", "/settings/allowed_clients"),
            ],
        ),
        ResourceCommand::Show { identifier } => {
            print_json(&resources::show(store, &identifier).await?)
        }
        ResourceCommand::Update { identifier, input } => {
            let updated = resources::update(store, &identifier, input, &cli_metadata()).await?;
            print_json(&updated)
        }
        ResourceCommand::Delete { identifier } => {
            resources::delete(store, &identifier, &cli_metadata()).await?;
            eprintln!("resource {identifier} deleted");
            Ok(())
        }
    }
}
