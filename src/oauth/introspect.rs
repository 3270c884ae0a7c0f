//! Token introspection (RFC 7662) and revocation (RFC 7009), for authenticated clients.
//! Introspection reads the token index projection; revocation is a command on the token's
//! grant.

use authledger_domain::client::RegisteredClient;
use authledger_domain::grant::GrantCommand;
use authledger_domain::metadata::EventMetadata;
use authledger_projections::grants::{GrantsView, TokenRecord};
use authledger_projections::live::TokenLookup;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::error::TokenError;
use super::tokens::{self, ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX};
use super::Authority;
use crate::error::AppError;
use crate::secrets;
use crate::usage::ReadMetric;

/// A view time as Unix seconds. The views write these times themselves, so one that does not
/// parse is a fault of the store, reported as such rather than answered as 1970.
fn unix(rfc3339: &str) -> Result<i64, AppError> {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.timestamp())
        .map_err(|e| {
            AppError::Internal(anyhow::anyhow!("token time `{rfc3339}` in the views: {e}"))
        })
}

/// The active token a presented bearer value stands for, if any. Access tokens come from the
/// live index without a database round trip; refresh tokens (introspected rarely) and tokens
/// the index had no room for come from the `grants` view.
pub async fn active_token(
    authority: &Authority,
    presented: &str,
) -> Result<Option<TokenRecord>, AppError> {
    let hash = secrets::hash(presented);
    let store = &authority.store;
    let held = match store.live() {
        Some(live) if !presented.starts_with(REFRESH_TOKEN_PREFIX) => live.access_token(&hash),
        _ => TokenLookup::NotHeld,
    };
    let record = match held {
        TokenLookup::Held(record) => Some(*record),
        TokenLookup::Unknown => None,
        TokenLookup::NotHeld => {
            GrantsView::token(store.current_views().await?, hash.as_hex()).await?
        }
    };
    Ok(record.filter(|r| r.is_active(Utc::now())))
}

/// RFC 7662 §2.2. `token_type_hint` needs no special handling: one index holds every token, so
/// a wrong hint still finds it. Tokens of other clients are reported inactive, unless they are
/// restricted to a resource whose server introspects as the calling client.
pub async fn introspect(
    authority: &Authority,
    client: &RegisteredClient,
    token: &str,
) -> Result<Value, TokenError> {
    let Some(record) = active_token(authority, token).await? else {
        return Ok(json!({ "active": false }));
    };
    if record.client_id != client.client_id
        && !resource_server_of(authority, &record, &client.client_id).await?
    {
        return Ok(json!({ "active": false }));
    }
    authority.usage.count(
        &record.client_id,
        record.username.as_deref(),
        ReadMetric::IntrospectionActive,
    );
    let iat = unix(&record.issued_at)?;
    // RFC 8707: a token restricted to resources is for them; any other is for its client.
    let audience = match record.audience.as_deref() {
        Some(resources) => json!(resources.split(' ').collect::<Vec<_>>()),
        None => json!(record.client_id),
    };
    let mut answer = json!({
        "active": true,
        "scope": record.scopes,
        "client_id": record.client_id,
        "username": record.username,
        "sub": record.username.clone().unwrap_or_else(|| record.client_id.clone()),
        "token_type": if record.kind == "access" { "Bearer" } else { "refresh_token" },
        "exp": unix(&record.expires_at)?,
        "iat": iat,
        "nbf": iat,
        "aud": audience,
        "iss": authority.issuer,
    });
    // RFC 8693 §4.1: who acts for the subject, for a token got by exchange with an actor.
    if let Some(act) = record.act.as_deref() {
        let act: Value = serde_json::from_str(act).map_err(|e| {
            AppError::Internal(anyhow::anyhow!("`act` of a token in the views: {e}"))
        })?;
        answer["act"] = act;
    }
    Ok(answer)
}

/// Whether `client_id` introspects for one of the resources `record` is restricted to.
async fn resource_server_of(
    authority: &Authority,
    record: &TokenRecord,
    client_id: &str,
) -> Result<bool, AppError> {
    for resource in record.audience.as_deref().unwrap_or_default().split(' ') {
        if resource.is_empty() {
            continue;
        }
        let found = crate::admin::resources::find(&authority.store, resource).await?;
        if found.is_some_and(|r| r.settings.introspectable_by(client_id)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// RFC 7009 §2. Unknown tokens and other clients' tokens change nothing and are answered the
/// same way, so the endpoint reveals nothing.
pub async fn revoke(
    authority: &Authority,
    client: &RegisteredClient,
    token: &str,
    metadata: &EventMetadata,
) -> Result<(), TokenError> {
    let Some(grant) = tokens::grant_of(token, ACCESS_TOKEN_PREFIX)
        .or_else(|| tokens::grant_of(token, REFRESH_TOKEN_PREFIX))
        .or_else(|| super::access_token::grant_of(authority, token))
    else {
        return Ok(());
    };
    authority
        .store
        .grants
        .execute(
            grant.as_str(),
            GrantCommand::RevokeToken {
                client_id: client.client_id.clone(),
                token_hash: secrets::hash(token),
            },
            metadata,
        )
        .await
        .map_err(|e| TokenError::from(AppError::store(e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_time_that_does_not_parse_is_an_error_not_1970() {
        assert_eq!(unix("2026-11-27T07:00:00.000000Z").unwrap(), 1_795_762_800);
        assert!(unix("yesterday").is_err());
    }
}
