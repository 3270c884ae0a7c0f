//! Minting the tokens of one token response, shared by every grant: an opaque access token
//! or a JWT (RFC 9068) for the resources it is for (RFC 8707), a refresh token when the grant
//! keeps one, and the hashes and expiries that go into the grant's command.

use authledger_domain::client::RegisteredClient;
use authledger_domain::grant::{GrantError, GrantState, NewRefreshToken, NewTokens};
use authledger_domain::oauth::Scopes;
use authledger_domain::resource::{ResourceId, TokenFormat};
use authledger_domain::settings::SettingsValues;
use authledger_domain::user::{RegisteredUser, Username};
use chrono::{DateTime, Duration, Utc};
use cqrs_es::AggregateError;
use serde_json::Value;

use super::access_token;
use super::error::{TokenError, TokenErrorCode};
use super::resources::{Target, TargetRefused};
use super::tokens::{self, GrantId, ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX};
use super::Authority;
use crate::error::{user_error, AppError};
use crate::secrets::MintedSecret;

pub(super) fn grant_error(error: AggregateError<GrantError>) -> TokenError {
    match error {
        AggregateError::UserError(refused) => {
            let code = TokenErrorCode::from_rfc6749(refused.code())
                .unwrap_or(TokenErrorCode::InvalidGrant);
            TokenError::new(code, refused.to_string())
        }
        AggregateError::AggregateConflict => {
            TokenError::invalid_grant("the grant was used concurrently; try again")
        }
        other => TokenError::from(AppError::store(other)),
    }
}

/// The user behind a grant, who must still exist and be enabled.
pub(super) async fn active_user(
    authority: &Authority,
    username: &Username,
) -> Result<RegisteredUser, TokenError> {
    let user = authority
        .store
        .users
        .load(username.as_str())
        .await
        .map_err(|e| TokenError::from(user_error(username.as_str(), e)))?;
    match user.registered() {
        Some(user) if !user.disabled => Ok(user.clone()),
        _ => Err(TokenError::invalid_grant("the user's account is disabled")),
    }
}

/// Tokens for one response, minted here; only their hashes go into the command.
pub(super) struct Minted {
    pub(super) access: MintedSecret,
    pub(super) refresh: Option<MintedSecret>,
    pub(super) expires_in: i64,
    pub(super) tokens: NewTokens,
}

/// Who and what an access token is for, as a JWT access token says it (RFC 9068 §2.2).
pub(super) struct Bearer<'a> {
    pub(super) client_id: &'a str,
    pub(super) user: Option<&'a Username>,
    pub(super) scopes: &'a Scopes,
    pub(super) auth_time: Option<DateTime<Utc>>,
    pub(super) amr: &'a [String],
    /// Who acts for the user (RFC 8693 `act`), for a token got by exchange.
    pub(super) act: Option<&'a Value>,
    /// The latest the access token may live to: an exchanged token's source's expiry.
    pub(super) expires_by: Option<DateTime<Utc>>,
}

impl<'a> Bearer<'a> {
    /// The bearer of a person's grant (the person, unless the grant is the client's own).
    pub(super) fn of(
        client: &'a RegisteredClient,
        grant: &'a GrantState,
        scopes: &'a Scopes,
    ) -> Bearer<'a> {
        Bearer {
            client_id: &client.client_id,
            user: grant.user.as_ref(),
            scopes,
            auth_time: grant.auth_time,
            amr: &grant.amr,
            act: None,
            expires_by: None,
        }
    }
}

/// Mints the tokens of one response for `target`'s resources: an opaque access token, or a
/// JWT when its resources take one, living as long as the shortest of them allows. `now` is
/// the accepted instant of the command that records them (its metadata's `at`), which the
/// views take as the tokens' issue time: any other clock reading lets `exp - iat` differ from
/// the lifetime by a second.
pub(super) fn mint(
    authority: &Authority,
    grant: &GrantId,
    refresh: bool,
    settings: &SettingsValues,
    now: DateTime<Utc>,
    target: &Target,
    bearer: Bearer<'_>,
) -> Result<Minted, TokenError> {
    let lifetime = i64::from(target.lifetime(settings.access_token_ttl));
    let expires_in = match bearer.expires_by {
        Some(by) => lifetime.min((by - now).num_seconds()).max(1),
        None => lifetime,
    };
    let audience = target.ids();
    let access = match target.format().map_err(invalid_target)? {
        TokenFormat::Opaque => tokens::mint(ACCESS_TOKEN_PREFIX, grant),
        TokenFormat::Jwt => {
            let claims = access_token::Claims {
                client_id: bearer.client_id,
                user: bearer.user.map(Username::as_str),
                scopes: bearer.scopes,
                audience: &audience,
                auth_time: bearer.auth_time,
                amr: bearer.amr,
                act: bearer.act,
                issued_at: now,
                lifetime_seconds: expires_in,
                alg: target.signing_alg().map_err(invalid_target)?,
            };
            MintedSecret::kept(access_token::sign(authority, grant, claims)?)
        }
    };
    let refresh = refresh.then(|| tokens::mint(REFRESH_TOKEN_PREFIX, grant));
    let tokens = NewTokens {
        access_token_hash: access.hash().clone(),
        access_expires_at: now + Duration::seconds(expires_in),
        refresh: refresh.as_ref().map(|r| NewRefreshToken {
            hash: r.hash().clone(),
            expires_at: now + Duration::seconds(i64::from(settings.refresh_token_ttl)),
        }),
        audience,
    };
    Ok(Minted {
        access,
        refresh,
        expires_in,
        tokens,
    })
}

/// RFC 8707 §2: a resource that cannot be granted.
fn invalid_target(refused: TargetRefused) -> TokenError {
    match refused {
        TargetRefused::Invalid(why) => TokenError::new(TokenErrorCode::InvalidTarget, why),
        TargetRefused::Failed(error) => TokenError::from(error),
    }
}

/// The resources a token request at the token endpoint is for: those it names (which the
/// grant must cover; the grant decides), else every resource the grant covers.
pub(super) async fn target_of(
    authority: &Authority,
    client: &RegisteredClient,
    requested: &[String],
    granted: &[ResourceId],
) -> Result<Target, TokenError> {
    let target = if requested.is_empty() {
        Target::of(authority, &client.client_id, granted).await
    } else {
        let raw: Vec<&str> = requested.iter().map(String::as_str).collect();
        Target::resolve(authority, &client.client_id, &raw).await
    };
    target.map_err(invalid_target)
}
