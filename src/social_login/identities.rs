//! The identities at other providers linked to a person, and unlinking them.

use authledger_domain::metadata::EventMetadata;
use authledger_domain::social_login::{identity_id, IdentityCommand, IdentityError};
use cqrs_es::AggregateError;

use crate::error::AppError;
use crate::store::Store;

use super::parse_id;

/// The identities at other providers linked to `username`.
pub async fn identities(
    store: &Store,
    username: &str,
) -> Result<Vec<authledger_projections::social_logins::IdentityRecord>, AppError> {
    let user = crate::admin::users::parse_username(username)?;
    let db = store.current_views().await?;
    Ok(
        authledger_projections::social_logins::SocialLoginsView::identities_of(db, user.as_str())
            .await?,
    )
}

/// Unlinks `username`'s identities at `provider` (only `subject`, when given): they no longer
/// sign in as this person. Returns how many were unlinked.
pub async fn unlink(
    store: &Store,
    provider: &str,
    username: &str,
    subject: Option<&str>,
    metadata: &EventMetadata,
) -> Result<usize, AppError> {
    let provider = parse_id(provider)?;
    let mut unlinked = 0;
    for identity in identities(store, username).await? {
        if identity.provider_id != provider.as_str()
            || subject.is_some_and(|s| s != identity.subject)
        {
            continue;
        }
        let key = identity_id(&provider, &identity.subject);
        match store
            .identities
            .execute(&key, IdentityCommand::Unlink, metadata)
            .await
        {
            Ok(_) | Err(AggregateError::UserError(IdentityError::NotLinked)) => unlinked += 1,
            Err(other) => return Err(AppError::store(other)),
        }
    }
    if unlinked == 0 {
        return Err(AppError::NotFound(format!(
            "{username} has no identity at {provider} linked"
        )));
    }
    Ok(unlinked)
}
