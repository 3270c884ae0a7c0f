//! `authledger keys list|rotate`.

use authledger_domain::client::IdTokenAlg;
use clap::Subcommand;

use super::{cli_metadata, MasterKeySource};
use crate::error::AppError;
use crate::store::Store;

#[derive(Subcommand)]
pub(super) enum KeysCommand {
    /// Every key with its state (published, active, retired, removed), as JSON or --format
    /// table.
    List(super::output::ListFormat),
    /// Generate new keys: published now, signing after `key_activation_delay`.
    Rotate {
        /// Every algorithm when omitted.
        #[arg(long = "alg", value_name = "ALG", value_enum)]
        algs: Vec<KeyAlg>,
        /// Sign with the new keys at once (relying parties with a cached JWKS will fail to
        /// verify new tokens until they refresh it).
        #[arg(long)]
        now: bool,
    },
}

/// The algorithms this server signs ID tokens with (HS256 signs with a client's secret).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(super) enum KeyAlg {
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "ES256")]
    Es256,
    #[value(name = "EdDSA")]
    EdDsa,
}

impl From<KeyAlg> for IdTokenAlg {
    fn from(alg: KeyAlg) -> Self {
        match alg {
            KeyAlg::Rs256 => IdTokenAlg::RS256,
            KeyAlg::Es256 => IdTokenAlg::ES256,
            KeyAlg::EdDsa => IdTokenAlg::EdDSA,
        }
    }
}

pub(super) async fn keys(
    store: &Store,
    command: KeysCommand,
    master: &MasterKeySource,
) -> Result<(), AppError> {
    let command_format = match &command {
        KeysCommand::List(list) => Some(*list),
        KeysCommand::Rotate { .. } => None,
    };
    if let KeysCommand::Rotate { algs, now } = command {
        let algs = if algs.is_empty() {
            crate::signing::ASYMMETRIC.to_vec()
        } else {
            algs.into_iter().map(IdTokenAlg::from).collect()
        };
        let master = master.load(store).await?;
        let kids = crate::signing::rotate(store, &master, &algs, now, &cli_metadata())
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
        eprintln!("published {} new key(s): {}", kids.len(), kids.join(", "));
    }
    let keys = store
        .signing_keys
        .load(authledger_domain::signing_keys::SIGNING_KEYS_ID)
        .await
        .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?;
    let listed: Vec<serde_json::Value> = keys.keys().iter().map(crate::signing::summary).collect();
    let format = match command_format {
        Some(list) => list.format,
        None => super::audit::Format::Json,
    };
    super::output::print_records(
        &listed,
        format,
        &[
            ("KID", "/kid"),
            ("ALG", "/alg"),
            ("STATE", "/state"),
            ("ACTIVATE_AFTER", "/activate_after"),
            ("REMOVE_AFTER", "/remove_after"),
        ],
    )
}
