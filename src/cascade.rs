//! Cascades: events that end other aggregates' tokens.
//!
//! Disabling or deleting a client, rotating its secret with `--revoke-tokens`, disabling a user,
//! revoking a consent, or revoking a grant that tokens were exchanged from (RFC 8693; the
//! exchanged grants' own revocations then cascade further down the chain) revokes the affected
//! grants for good: each becomes a `GrantRevoked`
//! event on its grant (actor and request of the event that caused it), so re-enabling a client
//! or user resurrects nothing, and the audit trail says who ended every token and why.
//!
//! The reactor follows the log from its own checkpoint, like a projection, but acts through
//! commands. `RevokeGrant` is idempotent, so processing an event twice (after a crash between
//! the revocations and the checkpoint) does no harm. Operations that cause a cascade run it
//! before they return; the background loop catches up whatever a crash interrupted.

use authledger_domain::client::ClientEvent;
use authledger_domain::consent::ConsentEvent;
use authledger_domain::grant::{GrantCommand, GrantError, RevocationReason};
use authledger_domain::user::UserEvent;
use authledger_projections::checkpoint;
use authledger_projections::event_log::{self, StoredEvent};
use authledger_projections::grants::{GrantsView, Subject};
use cqrs_es::AggregateError;
use tokio::sync::Mutex;

use crate::error::AppError;
use crate::store::Store;

const CHECKPOINT: &str = "cascade";
const BATCH: i64 = 500;

/// One cascade run at a time in this process: two would revoke the same grants twice over
/// (harmless, every revocation is idempotent, but wasted). Across processes the reactor's
/// checkpoint keeps them from going far apart.
static RUNNING: Mutex<()> = Mutex::const_new(());

/// The kinds of event [`affected`] may find a cascade in, `(aggregate type, event type)`:
/// only these are read whole.
const KINDS: &[(&str, &str)] = &[
    ("Grant", "GrantRevoked"),
    ("Client", "ClientDisabled"),
    ("Client", "ClientDeleted"),
    ("Client", "ClientSecretRotated"),
    ("User", "UserDisabled"),
    ("User", "UserErased"),
    ("Consent", "ConsentRevoked"),
];

/// Which grants an event ends.
enum Ended {
    /// Every grant in force of a client and/or user.
    Of(Subject),
    /// The grants exchanged from this one.
    ExchangedFrom(String),
}

/// The grants an event ends, and why.
fn affected(event: &StoredEvent) -> Option<(Ended, RevocationReason)> {
    let id = event.aggregate_id.clone();
    let for_client = |reason| {
        Some((
            Ended::Of(Subject {
                client_id: Some(id.clone()),
                username: None,
            }),
            reason,
        ))
    };
    match event.aggregate_type.as_str() {
        // Read from the type alone: grant events are most of the log.
        "Grant" => (event.event_type == "GrantRevoked").then(|| {
            (
                Ended::ExchangedFrom(id.clone()),
                RevocationReason::SourceRevoked,
            )
        }),
        "Client" => match event.decode::<ClientEvent>().ok()? {
            ClientEvent::ClientDisabled { .. } | ClientEvent::ClientDeleted {} => {
                for_client(RevocationReason::Admin)
            }
            ClientEvent::ClientSecretRotated {
                revoke_tokens: true,
                ..
            } => for_client(RevocationReason::SecretRotated),
            _ => None,
        },
        "User" => match event.decode::<UserEvent>().ok()? {
            UserEvent::UserDisabled {} | UserEvent::UserErased { .. } => Some((
                Ended::Of(Subject {
                    client_id: None,
                    username: Some(id),
                }),
                RevocationReason::Admin,
            )),
            _ => None,
        },
        "Consent" => match event.decode::<ConsentEvent>().ok()? {
            ConsentEvent::ConsentRevoked { user, client_id } => Some((
                Ended::Of(Subject {
                    client_id: Some(client_id),
                    username: Some(user.to_string()),
                }),
                RevocationReason::ConsentRevoked,
            )),
            _ => None,
        },
        _ => None,
    }
}

/// Applies every cascade of the readable log after the reactor's checkpoint. The views must
/// be current first (the grants to revoke are found in `grant_view`), so this catches the
/// projections up before reading.
pub async fn run(store: &Store) -> Result<(), AppError> {
    let _guard = RUNNING.lock().await;
    store.runner.catch_up().await?;
    let db = &store.db;
    checkpoint::register(db, CHECKPOINT).await?;
    let mut from = checkpoint::read(db, CHECKPOINT).await?;
    let mut unsaved = None;
    loop {
        let mut tx = db.begin().await.map_err(|e| AppError::Internal(e.into()))?;
        let scanned = event_log::read_kinds_after(&mut tx, from, BATCH, KINDS).await?;
        drop(tx);
        let events = scanned.events;
        let Some(last) = scanned.last else {
            break;
        };
        // The grants an event ends are found in the grants view, which must therefore
        // include every grant committed before it (token commands do not wait for it).
        if events.iter().any(|e| affected(e).is_some()) {
            store.runner.wait_for(last).await?;
            for event in &events {
                if let Some((ended, reason)) = affected(event) {
                    revoke_all(store, &ended, reason, event).await?;
                }
            }
            checkpoint::save_reader(db, CHECKPOINT, last).await?;
            unsaved = None;
        } else {
            unsaved = Some(last);
        }
        // The end of the log as it was: what is committed from now on is the next run's.
        // Under load a reader that chased the end took the write lock for every batch.
        if (scanned.read as i64) < BATCH {
            break;
        }
        from = last;
    }
    // Batches that caused nothing move the checkpoint once, at the end of the run: a crash
    // before it only reads them again.
    if let Some(last) = unsaved {
        checkpoint::save_reader(db, CHECKPOINT, last).await?;
    }
    Ok(())
}

async fn revoke_all(
    store: &Store,
    ended: &Ended,
    reason: RevocationReason,
    cause: &StoredEvent,
) -> Result<(), AppError> {
    // The revocation is attributed to whoever caused the triggering event, in the same request.
    let metadata = &cause.metadata;
    let mut targets = Vec::new();
    match ended {
        Ended::ExchangedFrom(source) => {
            targets = GrantsView::exchanged_from(&store.db, source).await?;
        }
        Ended::Of(subject) => {
            let mut after: Option<(String, String)> = None;
            loop {
                let cursor = after.as_ref().map(|(t, id)| (t.as_str(), id.as_str()));
                let page = GrantsView::grants(&store.db, subject, true, cursor, 500).await?;
                let Some(last) = page.last() else { break };
                after = Some((last.created_at.clone(), last.grant_id.clone()));
                targets.extend(page.into_iter().map(|g| g.grant_id));
            }
        }
    }
    for grant_id in targets {
        let revoked = store
            .grants
            .execute(&grant_id, GrantCommand::RevokeGrant { reason }, metadata)
            .await;
        match revoked {
            // Its events were archived (`ledger archive`): it had ended, nothing to revoke.
            Err(AggregateError::UserError(GrantError::NotFound)) => {}
            other => drop(other.map_err(AppError::store)?),
        }
    }
    Ok(())
}
