//! Token exchange (RFC 8693) at the token endpoint: the client presents a subject token (an
//! access token or ID token this server issued, or a JWT of a trusted external issuer, see
//! `external.rs`) and, for delegation, an actor token (an access token); the domain's [`ExchangePolicy`] decides from the client's registration, and a new
//! grant records the source grant and the chain of actors. The access token issued carries
//! `act` (as JWT claim, and in introspection); no refresh token is issued, and the token lives
//! no longer than its subject token.

mod external;

use authledger_domain::client::{ClientMetadata, RegisteredClient};
use authledger_domain::consent::{consent_id, Consent};
use authledger_domain::grant::{
    Actor, ExchangePolicy, ExchangeRefused, GrantCommand, Source, SubjectToken, TokenType,
};
use authledger_domain::metadata::EventMetadata;
use authledger_domain::oauth::Scopes;
use authledger_domain::settings::SettingsValues;
use authledger_domain::user::Username;
use authledger_projections::grants::TokenRecord;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::error::{TokenError, TokenErrorCode};
use super::grants::TokenResponse;
use super::minting::{active_user, grant_error, mint, target_of, Bearer};
use super::tokens::GrantId;
use super::Authority;
use crate::error::AppError;

/// A token exchange request (RFC 8693 §2.1), its types already read. The tokens are secrets:
/// `Debug` cannot print them.
#[derive(Debug)]
pub struct ExchangeRequest {
    pub subject_token: SecretString,
    pub subject_token_type: TokenType,
    pub actor_token: Option<SecretString>,
    pub scope: Option<Scopes>,
    /// `resource` and `audience` together: each must name a registered resource.
    pub resources: Vec<String>,
}

/// RFC 8693 §2.2.2: a subject or actor token that is not acceptable is `invalid_request`.
fn unacceptable(why: impl Into<String>) -> TokenError {
    TokenError::invalid_request(why)
}

fn time(rfc3339: &str) -> Result<DateTime<Utc>, AppError> {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| AppError::Internal(anyhow::anyhow!("token time `{rfc3339}`: {e}")))
}

/// What a subject token tells beyond [`SubjectToken`]: when its person signed in and how,
/// and when it expires.
struct Subject {
    token: SubjectToken,
    auth_time: Option<DateTime<Utc>>,
    amr: Vec<String>,
    expires_at: DateTime<Utc>,
}

/// The record of an active access token this server issued, presented as `parameter`.
async fn active_access_token(
    authority: &Authority,
    token: &str,
    parameter: &str,
) -> Result<TokenRecord, TokenError> {
    super::introspect::active_token(authority, token)
        .await?
        .filter(|r| r.kind == "access")
        .ok_or_else(|| {
            unacceptable(format!(
                "{parameter} is not an active access token issued by this server"
            ))
        })
}

/// An active access token this server issued, as the subject.
async fn access_token_subject(authority: &Authority, token: &str) -> Result<Subject, TokenError> {
    let record = active_access_token(authority, token, "subject_token").await?;
    let grant = authority
        .store
        .grants
        .load(&record.grant_id)
        .await
        .map_err(grant_error)?;
    let state = grant
        .state()
        .ok_or_else(|| unacceptable("subject_token's grant is gone"))?;
    let scopes = Scopes::parse(&record.scopes).map_err(|e| AppError::Internal(e.into()))?;
    Ok(Subject {
        token: SubjectToken {
            token_type: TokenType::AccessToken,
            source: Source::Issued {
                client_id: record.client_id.clone(),
                grant_id: Some(record.grant_id.clone()),
            },
            user: state.user.clone(),
            scopes,
            actors: state
                .exchange
                .as_ref()
                .map(|e| e.actors.clone())
                .unwrap_or_default(),
        },
        auth_time: state.auth_time,
        amr: state.amr.clone(),
        expires_at: time(&record.expires_at)?,
    })
}

/// An unexpired ID token this server signed, as the subject: it names a person and the client
/// it was issued to, and authorizes what that person still consents to that client (all of
/// the client's registered scopes for a trusted client, which asks no consent).
async fn id_token_subject(authority: &Authority, token: &str) -> Result<Subject, TokenError> {
    let not_ours = || unacceptable("subject_token is not a valid ID token issued by this server");
    let claims = super::id_token::verify_ours(authority, token)
        .await?
        .ok_or_else(not_ours)?;
    let expires_at = claims["exp"]
        .as_i64()
        .and_then(|exp| DateTime::from_timestamp(exp, 0))
        .ok_or_else(not_ours)?;
    if expires_at <= Utc::now() {
        return Err(unacceptable("subject_token has expired"));
    }
    let user = claims["sub"]
        .as_str()
        .and_then(|sub| Username::parse(sub).ok())
        .ok_or_else(not_ours)?;
    let client_id = claims["azp"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| super::id_token::audience(&claims).first().cloned())
        .ok_or_else(not_ours)?;
    let client = authority
        .store
        .client(&client_id)
        .await?
        .filter(|c| c.status == authledger_domain::client::ClientStatus::Active)
        .ok_or_else(|| unacceptable("subject_token's client is not active"))?;
    // An access token's record already answers for its user; an ID token's person is read.
    active_user(authority, &user).await?;
    let scopes = consented_scopes(authority, &client_id, &client.metadata, &user)
        .await?
        .ok_or_else(|| unacceptable("the person no longer consents to subject_token's client"))?;
    let auth_time = claims["auth_time"]
        .as_i64()
        .and_then(|t| DateTime::from_timestamp(t, 0));
    let amr = claims["amr"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok(Subject {
        token: SubjectToken {
            token_type: TokenType::IdToken,
            source: Source::Issued {
                client_id,
                grant_id: None,
            },
            user: Some(user),
            scopes,
            actors: vec![],
        },
        auth_time,
        amr,
        expires_at,
    })
}

/// What `user` allows `client_id` now: what they consented to it, or every scope registered
/// for a trusted client, which asks no consent. `None` without a consent.
async fn consented_scopes(
    authority: &Authority,
    client_id: &str,
    client: &ClientMetadata,
    user: &Username,
) -> Result<Option<Scopes>, TokenError> {
    if client.skip_authorization {
        return Ok(Some(client.scopes.clone()));
    }
    let consent: Consent = authority
        .store
        .consents
        .load(&consent_id(user, client_id))
        .await
        .map_err(AppError::store)?;
    Ok(consent.granted().cloned())
}

/// The actor: an active access token this server issued, whoever it was issued to.
async fn actor_of(authority: &Authority, token: &str) -> Result<Actor, TokenError> {
    let record = active_access_token(authority, token, "actor_token").await?;
    let user = record
        .username
        .as_deref()
        .map(Username::parse)
        .transpose()
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(Actor {
        client_id: record.client_id,
        user,
        grant_id: record.grant_id,
    })
}

/// Answers a token exchange from an authenticated client registered for it.
pub(super) async fn token_exchange(
    authority: &Authority,
    client: &RegisteredClient,
    request: ExchangeRequest,
    metadata: &EventMetadata,
    settings: &SettingsValues,
) -> Result<TokenResponse, TokenError> {
    let presented = request.subject_token.expose_secret();
    let foreign = external::foreign_issuer(presented, &authority.issuer);
    let subject = match (request.subject_token_type, foreign) {
        (token_type, Some(issuer)) => {
            external::subject(authority, client, token_type, presented, &issuer).await?
        }
        (TokenType::AccessToken, None) => access_token_subject(authority, presented).await?,
        (TokenType::IdToken, None) => id_token_subject(authority, presented).await?,
        (TokenType::Jwt, None) => {
            return Err(unacceptable(
                "a subject_token of type jwt must be a trusted external issuer's JWT \
                 (this server's own tokens are exchanged as access_token or id_token)",
            ))
        }
    };
    let actor = match &request.actor_token {
        Some(token) => Some(actor_of(authority, token.expose_secret()).await?),
        None => None,
    };
    let policy = ExchangePolicy {
        client_id: &client.client_id,
        registered_scopes: &client.metadata.scopes,
        subject_clients: &client.metadata.token_exchange_subject_clients,
        subject_issuers: &client.metadata.token_exchange_subject_issuers,
        actor_clients: &client.metadata.token_exchange_actor_clients,
    };
    let user = subject.token.user.clone();
    let (scopes, exchange) = policy
        .decide(subject.token, actor, request.scope.as_ref())
        .map_err(|refused| match refused {
            ExchangeRefused::Token(why) => unacceptable(why),
            ExchangeRefused::Scope(why) => TokenError::new(TokenErrorCode::InvalidScope, why),
        })?;
    let target = target_of(authority, client, &request.resources, &[]).await?;
    let act = exchange.act_claim();
    let grant_id = GrantId::new();
    let now = metadata.at;
    let bearer = Bearer {
        client_id: &client.client_id,
        user: user.as_ref(),
        scopes: &scopes,
        auth_time: subject.auth_time,
        amr: &subject.amr,
        act: act.as_ref(),
        expires_by: Some(subject.expires_at),
    };
    let minted = mint(authority, &grant_id, false, settings, now, &target, bearer)?;
    authority
        .store
        .grants
        .create(
            grant_id.as_str(),
            GrantCommand::Exchange {
                client_id: client.client_id.clone(),
                user,
                scopes: scopes.clone(),
                auth_time: subject.auth_time,
                exchange,
                tokens: minted.tokens.clone(),
            },
            metadata,
        )
        .await
        .map_err(grant_error)?;
    Ok(TokenResponse {
        access_token: minted.access.reveal().to_owned(),
        issued_token_type: Some(TokenType::AccessToken.as_str()),
        token_type: "Bearer",
        expires_in: minted.expires_in,
        scope: scopes.to_string(),
        refresh_token: None,
        id_token: None,
    })
}
