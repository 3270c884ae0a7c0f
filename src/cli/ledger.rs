//! `authledger ledger verify`: recomputes the hash chain over the event log and reports the
//! first break (see `authledger_projections::ledger`).

use authledger_projections::ledger::{self, Verified};
use clap::Subcommand;

use super::events::EventsFormat;
use crate::error::AppError;
use crate::store::Store;

#[derive(Subcommand)]
pub(super) enum LedgerCommand {
    /// Recompute the chain from the events and check it link by link; exits 7 at the first
    /// break (altered, missing, inserted or reordered event, or a gap in the chain) and says
    /// where it is.
    Verify {
        /// Start at the first link at or after this global position (trusting the digest
        /// recorded before it); from the beginning when omitted.
        #[arg(long, value_name = "POS")]
        from: Option<i64>,
        /// Stop at the last link at or before this global position.
        #[arg(long, value_name = "POS")]
        to: Option<i64>,
        /// text for people (the default), or json.
        #[arg(long, value_enum, default_value_t = EventsFormat::Text)]
        format: EventsFormat,
    },
}

/// The link of the first event at or after `position` (`first`), or of the last at or before.
async fn link_at(store: &Store, position: i64, first: bool) -> Result<Option<i64>, AppError> {
    let sql = match first {
        true => "SELECT min(link) FROM ledger_chain WHERE global_position >= $1",
        false => "SELECT max(link) FROM ledger_chain WHERE global_position <= $1",
    };
    authledger_projections::on_db!(&store.db, pool => sqlx::query_scalar(sql).bind(position).fetch_one(pool).await)
        .map_err(|e| AppError::Internal(e.into()))
}

pub(super) async fn ledger(store: &Store, command: LedgerCommand) -> Result<(), AppError> {
    let LedgerCommand::Verify { from, to, format } = command;
    let from_link = match from {
        Some(position) => Some(link_at(store, position, true).await?.unwrap_or(i64::MAX)),
        None => None,
    };
    let to_link = match to {
        Some(position) => Some(link_at(store, position, false).await?.unwrap_or(0)),
        None => None,
    };
    let verified = ledger::verify(&store.db, from_link, to_link).await?;
    match format {
        EventsFormat::Json => super::output::print_json(&verified)?,
        EventsFormat::Text => say(&verified),
    }
    match &verified.first_break {
        Some(found) => Err(AppError::Tampered(found.to_string())),
        None => Ok(()),
    }
}

fn say(verified: &Verified) {
    match &verified.head {
        Some(head) => eprintln!(
            "{} link(s) verified, up to position {} (link {}, digest {})",
            verified.links, head.global_position, head.link, head.digest
        ),
        None => eprintln!("{} link(s) verified", verified.links),
    }
    if verified.unlinked > 0 {
        eprintln!(
            "{} event(s) committed since are not linked yet (the server links them within a second)",
            verified.unlinked
        );
    }
}
