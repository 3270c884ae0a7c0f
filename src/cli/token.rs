//! `authledger token inspect`: which grant a token (or code) belongs to, how that grant went,
//! and whether the token could be used now or at an instant; the token itself is read from
//! stdin and never printed (only its SHA-256, as the events hold it).

use std::io::BufRead;

use authledger_domain::grant::{Grant, GrantEvent};
use authledger_projections::event_log::{self, StoredEvent};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde_json::{json, Value};

use super::output::print_json;
use crate::error::AppError;
use crate::oauth::tokens::{grant_of, ACCESS_TOKEN_PREFIX, CODE_PREFIX, REFRESH_TOKEN_PREFIX};
use crate::replay::summary;
use crate::store::Store;

#[derive(Subcommand)]
pub(super) enum TokenCommand {
    /// Read a token (or authorization code) from the first line of stdin and print, as JSON,
    /// its grant, the grant's events, the event that issued it and whether it could be used
    /// now (and --as-of an instant).
    Inspect {
        /// Also whether it could be used at this instant: RFC 3339, a date, or a time ago.
        #[arg(long, value_name = "TIME")]
        as_of: Option<String>,
    },
}

/// Whether the event issued the secret with this hash.
fn issued(event: &StoredEvent, hash: &authledger_domain::secret::SecretHash) -> bool {
    match event.decode::<GrantEvent>() {
        Ok(GrantEvent::CodeIssued { code_hash, .. }) => code_hash.matches(hash),
        Ok(GrantEvent::TokensIssued {
            access_token_hash,
            refresh_token_hash,
            ..
        }) => {
            access_token_hash.matches(hash) || refresh_token_hash.is_some_and(|r| r.matches(hash))
        }
        Ok(GrantEvent::TokensRefreshed {
            access_token_hash,
            refresh_token_hash,
            ..
        }) => access_token_hash.matches(hash) || refresh_token_hash.matches(hash),
        _ => false,
    }
}

pub(super) async fn token(store: &Store, command: TokenCommand) -> Result<(), AppError> {
    let TokenCommand::Inspect { as_of } = command;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| AppError::invalid(format!("cannot read the token from stdin: {e}")))?;
    let presented = line.trim();
    let kinds = [
        (ACCESS_TOKEN_PREFIX, "access_token"),
        (REFRESH_TOKEN_PREFIX, "refresh_token"),
        (CODE_PREFIX, "authorization_code"),
    ];
    let Some((grant, kind)) = kinds
        .iter()
        .find_map(|(prefix, kind)| grant_of(presented, prefix).map(|g| (g, *kind)))
    else {
        return Err(AppError::invalid(
            "stdin holds no token this server issues (alat_, alrt_ or alac_ followed by its \
             grant and 43 characters); nothing was looked up",
        ));
    };
    let hash = crate::secrets::hash(presented);
    let events = store.history("Grant", grant.as_str()).await?;
    if events.is_empty() {
        return Err(AppError::NotFound(format!(
            "grant {grant} has no events here: the token was not issued by this server"
        )));
    }
    let usable_at = |instant: DateTime<Utc>| -> Result<bool, AppError> {
        let before: Vec<&StoredEvent> =
            events.iter().filter(|e| e.metadata.at <= instant).collect();
        let grant: Grant = event_log::fold(before)?;
        Ok(grant.usable(&hash, instant))
    };
    let issuing = events.iter().find(|e| issued(e, &hash));
    let mut answer = json!({
        "kind": kind,
        "sha256": hash.as_hex(),
        "grant": format!("grant:{grant}"),
        "issued_by": issuing.map(summary),
        "usable_now": issuing.is_some() && usable_at(Utc::now())?,
        "timeline": events.iter().map(summary).collect::<Vec<Value>>(),
    });
    if issuing.is_none() {
        answer["note"] = json!(
            "no event of this grant issued a secret with this hash: it is not one of its tokens"
        );
    }
    if let Some(raw) = as_of {
        let instant = authledger_domain::instant::parse(&raw, Utc::now())
            .map_err(|e| AppError::invalid(format!("--as-of {e}")))?;
        answer["as_of"] = json!({
            "at": instant.to_rfc3339(),
            "usable": issuing.is_some() && usable_at(instant)?,
        });
    }
    print_json(&answer)
}
