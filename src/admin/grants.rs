//! Consents and grants: revoking them, as an operator or a person.

use authledger_domain::consent::{consent_id, ConsentCommand, ConsentError};
use authledger_domain::grant::{GrantCommand, GrantError, RevocationReason};
use authledger_domain::metadata::EventMetadata;
use authledger_projections::grants::{GrantRecord, GrantsView};
use cqrs_es::AggregateError;

use super::users::parse_username;
use crate::error::AppError;
use crate::store::Store;

/// Withdraws a person's consent for a client; every grant of that person to that client is
/// revoked before this returns.
pub async fn revoke_consent(
    store: &Store,
    username: &str,
    client_id: &str,
    metadata: &EventMetadata,
) -> Result<(), AppError> {
    let user = parse_username(username)?;
    let command = ConsentCommand::Revoke {
        user: user.clone(),
        client_id: client_id.to_owned(),
    };
    match store
        .consents
        .execute(&consent_id(&user, client_id), command, metadata)
        .await
    {
        Ok(_) => {}
        Err(AggregateError::UserError(ConsentError::NotGranted)) => {
            return Err(AppError::NotFound(format!(
                "no consent of {user} for client {client_id} is in force"
            )))
        }
        Err(other) => return Err(AppError::store(other)),
    }
    crate::cascade::run(store).await
}

/// Revokes one grant and every token in it.
pub async fn revoke_grant(
    store: &Store,
    grant_id: &str,
    metadata: &EventMetadata,
) -> Result<GrantRecord, AppError> {
    let command = GrantCommand::RevokeGrant {
        reason: RevocationReason::Admin,
    };
    match store.grants.execute(grant_id, command, metadata).await {
        Ok(_) => {}
        Err(AggregateError::UserError(GrantError::NotFound)) => {
            return Err(AppError::NotFound(format!(
                "grant {grant_id} does not exist"
            )))
        }
        Err(other) => return Err(AppError::store(other)),
    }
    // What was exchanged from it (RFC 8693) ends before the operator is answered.
    crate::cascade::run(store).await?;
    show_grant(store, grant_id).await
}

pub async fn show_grant(store: &Store, grant_id: &str) -> Result<GrantRecord, AppError> {
    GrantsView::grant(store.current_views().await?, grant_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("grant {grant_id} does not exist")))
}
