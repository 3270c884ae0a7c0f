//! The grants of the token endpoint (RFC 6749 §4.1.3, §4.4, §6) and the issuance done at the
//! authorization endpoint (codes, implicit tokens). Each grant becomes one command on one
//! `Grant` aggregate; the answer follows from the events it committed.

use authledger_domain::client::RegisteredClient;
use authledger_domain::grant::{CodeIssue, GrantCommand, GrantEvent, GrantState};
use authledger_domain::metadata::EventMetadata;
use authledger_domain::oauth::{GrantType, Scopes};
use authledger_domain::pkce::CodeVerifier;
use authledger_domain::secret::SecretHash;
use authledger_domain::settings::SettingsValues;
use authledger_domain::user::{RegisteredUser, Username};
use chrono::{DateTime, Duration, Utc};
use cqrs_es::EventEnvelope;
use serde::Serialize;

use super::authorize::AuthorizationRequest;
use super::device::DEVICE_CODE_PREFIX;
use super::error::{TokenError, TokenErrorCode};
use super::exchange::{token_exchange, ExchangeRequest};
use super::id_token::{self, IdTokenInput};
use super::minting::{active_user, grant_error, mint, target_of, Bearer, Minted};
use super::resources::Target;
use super::tokens::{self, GrantId, CODE_PREFIX, REFRESH_TOKEN_PREFIX};
use super::Authority;
use crate::error::AppError;
use crate::secrets;
use secrecy::{ExposeSecret, SecretString};

/// RFC 6749 §5.1. Its `Debug` shows no token.
#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// RFC 8693 §2.2.1: what a token exchange issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("refresh_token", &self.refresh_token.is_some())
            .field("id_token", &self.id_token.is_some())
            .finish_non_exhaustive()
    }
}

/// A token request (RFC 6749 §4.1.3, §4.4.2, §6), parsed from its form by the HTTP layer:
/// the grants this endpoint serves, each with exactly its parameters. The code and refresh
/// token are secrets: `Debug` cannot print them.
#[derive(Debug)]
pub enum TokenRequest {
    AuthorizationCode {
        code: SecretString,
        redirect_uri: Option<String>,
        code_verifier: Option<CodeVerifier>,
        resources: Vec<String>,
    },
    RefreshToken {
        refresh_token: SecretString,
        scope: Option<Scopes>,
        resources: Vec<String>,
    },
    ClientCredentials {
        scope: Option<Scopes>,
        resources: Vec<String>,
    },
    /// RFC 8628 §3.4.
    DeviceCode {
        device_code: SecretString,
        resources: Vec<String>,
    },
    /// RFC 8693 §2.1.
    TokenExchange(ExchangeRequest),
}

impl TokenRequest {
    pub fn grant_type(&self) -> GrantType {
        match self {
            TokenRequest::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            TokenRequest::RefreshToken { .. } => GrantType::RefreshToken,
            TokenRequest::ClientCredentials { .. } => GrantType::ClientCredentials,
            TokenRequest::DeviceCode { .. } => GrantType::DeviceCode,
            TokenRequest::TokenExchange(_) => GrantType::TokenExchange,
        }
    }
}

/// How strictly `code_verifier` is read: RFC 7636 on the standard endpoint; leniently on
/// Frappe's, whose clients (and test vector `420`) send short verifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifierRules {
    Rfc7636,
    Frappe,
}

fn has_event(
    events: &[EventEnvelope<authledger_domain::grant::Grant>],
    wanted: fn(&GrantEvent) -> bool,
) -> bool {
    events.iter().any(|e| wanted(&e.payload))
}

/// The grant a code or refresh token names, and its user, who must still be enabled. The user
/// is only checked when the grant belongs to the calling client: otherwise the grant aggregate
/// refuses the command anyway, and a foreign client learns nothing about the user.
async fn grant_and_user(
    authority: &Authority,
    grant_id: &GrantId,
    client: &RegisteredClient,
    unknown: &'static str,
) -> Result<(GrantState, Option<RegisteredUser>), TokenError> {
    let grant = authority
        .store
        .grants
        .load(grant_id.as_str())
        .await
        .map_err(grant_error)?;
    let state = grant
        .state()
        .cloned()
        .ok_or_else(|| TokenError::invalid_grant(unknown))?;
    let user = match (&state.user, state.client_id == client.client_id) {
        (Some(user), true) => Some(active_user(authority, user).await?),
        _ => None,
    };
    Ok((state, user))
}

/// Answers a token request from an authenticated client.
pub async fn exchange(
    authority: &Authority,
    client: &RegisteredClient,
    request: TokenRequest,
    metadata: &EventMetadata,
) -> Result<TokenResponse, TokenError> {
    let grant_type = request.grant_type();
    if !client.metadata.grant_types.contains(&grant_type) {
        return Err(TokenError::new(
            TokenErrorCode::UnauthorizedClient,
            format!("the client is not registered for grant_type `{grant_type}`"),
        ));
    }
    let settings = authority.store.settings_values().await?;
    match request {
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
            resources,
        } => {
            let presented = PresentedCode {
                code: code.expose_secret(),
                redirect_uri,
                code_verifier,
                resources,
            };
            authorization_code(authority, client, presented, metadata, &settings).await
        }
        TokenRequest::RefreshToken {
            refresh_token: presented,
            scope,
            resources,
        } => {
            let presented = Presented {
                secret: presented.expose_secret(),
                resources,
            };
            refresh_token(authority, client, presented, scope, metadata, &settings).await
        }
        TokenRequest::ClientCredentials { scope, resources } => {
            client_credentials(authority, client, scope, &resources, metadata, &settings).await
        }
        TokenRequest::DeviceCode {
            device_code,
            resources,
        } => {
            let presented = Presented {
                secret: device_code.expose_secret(),
                resources,
            };
            device_code_grant(authority, client, presented, metadata, &settings).await
        }
        TokenRequest::TokenExchange(request) => {
            token_exchange(authority, client, request, metadata, &settings).await
        }
    }
}

/// RFC 8628 §3.4, §3.5: a device's poll. Until the person decides, the answer is an error
/// that records nothing; a poll sooner than the interval is `slow_down`.
async fn device_code_grant(
    authority: &Authority,
    client: &RegisteredClient,
    presented: Presented<'_>,
    metadata: &EventMetadata,
    settings: &SettingsValues,
) -> Result<TokenResponse, TokenError> {
    let Presented {
        secret: presented,
        resources,
    } = presented;
    let grant_id = tokens::grant_of(presented, DEVICE_CODE_PREFIX)
        .ok_or_else(|| TokenError::invalid_grant("device code is invalid"))?;
    let presented_hash = secrets::hash(presented);
    let grant = authority
        .store
        .grants
        .load(grant_id.as_str())
        .await
        .map_err(grant_error)?;
    // Only the device code itself is paced: a made-up one cannot slow the real device down.
    let device = grant
        .state()
        .filter(|s| s.client_id == client.client_id)
        .and_then(|s| s.device.as_ref())
        .filter(|d| d.device_code_hash.matches(&presented_hash));
    if let Some(device) = device {
        let now = std::time::Instant::now();
        if let Err(slow) = authority
            .device_polls
            .poll(&presented_hash, device.interval, now)
        {
            return Err(TokenError::new(
                TokenErrorCode::SlowDown,
                format!(
                    "polling too often; wait at least {} seconds between requests",
                    slow.interval
                ),
            ));
        }
    }
    let now = metadata.at;
    let wants_refresh = client
        .metadata
        .grant_types
        .contains(&GrantType::RefreshToken);
    let state = grant
        .state()
        .ok_or_else(|| TokenError::invalid_grant("device code is invalid"))?;
    let target = target_of(authority, client, &resources, &state.resources).await?;
    let bearer = Bearer::of(client, state, &state.scopes);
    let minted = mint(
        authority,
        &grant_id,
        wants_refresh,
        settings,
        now,
        &target,
        bearer,
    )?;
    let events = authority
        .store
        .grants
        .execute(
            grant_id.as_str(),
            GrantCommand::RedeemDeviceCode {
                client_id: client.client_id.clone(),
                device_code_hash: presented_hash.clone(),
                tokens: minted.tokens.clone(),
            },
            metadata,
        )
        .await
        .map_err(grant_error)?;
    authority.device_polls.forget(&presented_hash);
    let username = events
        .iter()
        .find_map(|e| match &e.payload {
            GrantEvent::TokensIssued { user, .. } => user.clone(),
            _ => None,
        })
        .ok_or_else(|| TokenError::invalid_grant("device code is invalid"))?;
    let user = active_user(authority, &username).await?;
    let sign_in = SignIn {
        auth_time: events.iter().find_map(|e| match &e.payload {
            GrantEvent::TokensIssued { auth_time, .. } => *auth_time,
            _ => None,
        }),
        session: None,
        amr: state.amr.clone(),
    };
    respond(
        authority,
        client,
        Some(&user),
        &state.scopes,
        None,
        sign_in,
        minted,
        now,
    )
    .await
}

/// What an authorization-code request presents.
struct PresentedCode<'a> {
    code: &'a str,
    redirect_uri: Option<String>,
    code_verifier: Option<CodeVerifier>,
    resources: Vec<String>,
}

/// A refresh token or device code, and the resources the request names.
struct Presented<'a> {
    secret: &'a str,
    resources: Vec<String>,
}

async fn authorization_code(
    authority: &Authority,
    client: &RegisteredClient,
    presented: PresentedCode<'_>,
    metadata: &EventMetadata,
    settings: &SettingsValues,
) -> Result<TokenResponse, TokenError> {
    let PresentedCode {
        code,
        redirect_uri,
        code_verifier,
        resources,
    } = presented;
    let grant_id = tokens::grant_of(code, CODE_PREFIX)
        .ok_or_else(|| TokenError::invalid_grant("authorization code is invalid"))?;
    let (state, user) = grant_and_user(
        authority,
        &grant_id,
        client,
        "authorization code is invalid",
    )
    .await?;
    let nonce = state.nonce.clone();

    let now = metadata.at;
    let wants_refresh = client
        .metadata
        .grant_types
        .contains(&GrantType::RefreshToken);
    let target = target_of(authority, client, &resources, &state.resources).await?;
    let bearer = Bearer::of(client, &state, &state.scopes);
    let minted = mint(
        authority,
        &grant_id,
        wants_refresh,
        settings,
        now,
        &target,
        bearer,
    )?;
    let events = authority
        .store
        .grants
        .execute(
            grant_id.as_str(),
            GrantCommand::RedeemCode {
                client_id: client.client_id.clone(),
                code_hash: secrets::hash(code),
                redirect_uri,
                code_verifier,
                tokens: minted.tokens.clone(),
            },
            metadata,
        )
        .await
        .map_err(grant_error)?;
    if has_event(&events, |e| {
        matches!(e, GrantEvent::CodeReplayDetected { .. })
    }) {
        return Err(TokenError::invalid_grant(
            "authorization code was already used; every token issued from it is revoked",
        ));
    }
    let user = user.ok_or_else(|| TokenError::invalid_grant("authorization code is invalid"))?;
    respond(
        authority,
        client,
        Some(&user),
        &state.scopes,
        nonce.as_deref(),
        SignIn::of(&state),
        minted,
        now,
    )
    .await
}

async fn refresh_token(
    authority: &Authority,
    client: &RegisteredClient,
    presented: Presented<'_>,
    scopes: Option<Scopes>,
    metadata: &EventMetadata,
    settings: &SettingsValues,
) -> Result<TokenResponse, TokenError> {
    let Presented {
        secret: presented,
        resources,
    } = presented;
    let grant_id = tokens::grant_of(presented, REFRESH_TOKEN_PREFIX)
        .ok_or_else(|| TokenError::invalid_grant("refresh token is invalid"))?;
    let (state, user) =
        grant_and_user(authority, &grant_id, client, "refresh token is invalid").await?;

    let now = metadata.at;
    let target = target_of(authority, client, &resources, &state.resources).await?;
    // The JWT says the scope the refresh asks for; the grant refuses it if it is wider.
    let narrowed = scopes
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| state.scopes.clone());
    let bearer = Bearer::of(client, &state, &narrowed);
    let minted = mint(authority, &grant_id, true, settings, now, &target, bearer)?;
    let events = authority
        .store
        .grants
        .execute(
            grant_id.as_str(),
            GrantCommand::Refresh {
                client_id: client.client_id.clone(),
                refresh_token_hash: secrets::hash(presented),
                scopes,
                tokens: minted.tokens.clone(),
            },
            metadata,
        )
        .await
        .map_err(grant_error)?;
    if has_event(&events, |e| {
        matches!(e, GrantEvent::RefreshReplayDetected { .. })
    }) {
        return Err(TokenError::invalid_grant(
            "refresh token was already used; the whole grant is revoked",
        ));
    }
    let scopes = events
        .iter()
        .find_map(|e| match &e.payload {
            GrantEvent::TokensRefreshed { scopes, .. } => Some(scopes.clone()),
            _ => None,
        })
        .unwrap_or_else(|| state.scopes.clone());
    respond(
        authority,
        client,
        user.as_ref(),
        &scopes,
        None,
        SignIn::of(&state),
        minted,
        now,
    )
    .await
}

async fn client_credentials(
    authority: &Authority,
    client: &RegisteredClient,
    requested: Option<Scopes>,
    resources: &[String],
    metadata: &EventMetadata,
    settings: &SettingsValues,
) -> Result<TokenResponse, TokenError> {
    let scopes = match requested {
        None => client.metadata.scopes.clone(),
        Some(scopes) => {
            if !scopes.is_subset_of(&client.metadata.scopes) {
                return Err(TokenError::new(
                    TokenErrorCode::InvalidScope,
                    "the requested scope exceeds the scope registered for the client",
                ));
            }
            scopes
        }
    };
    let grant_id = GrantId::new();
    let now = metadata.at;
    let target = target_of(authority, client, resources, &[]).await?;
    let bearer = Bearer {
        client_id: &client.client_id,
        user: None,
        scopes: &scopes,
        auth_time: None,
        amr: &[],
        act: None,
        expires_by: None,
    };
    let minted = mint(authority, &grant_id, false, settings, now, &target, bearer)?;
    authority
        .store
        .grants
        .create(
            grant_id.as_str(),
            GrantCommand::IssueTokens {
                grant_type: GrantType::ClientCredentials,
                client_id: client.client_id.clone(),
                user: None,
                scopes: scopes.clone(),
                auth_time: None,
                tokens: minted.tokens.clone(),
            },
            metadata,
        )
        .await
        .map_err(grant_error)?;
    let nobody = SignIn::default();
    respond(authority, client, None, &scopes, None, nobody, minted, now).await
}

/// When, and in which session, the person behind a grant signed in: the ID token's
/// `auth_time` and `sid`.
#[derive(Debug, Default)]
struct SignIn {
    auth_time: Option<DateTime<Utc>>,
    session: Option<SecretHash>,
    amr: Vec<String>,
}

impl SignIn {
    fn of(grant: &GrantState) -> SignIn {
        SignIn {
            auth_time: grant.auth_time,
            session: grant.session.clone(),
            amr: grant.amr.clone(),
        }
    }
}

/// The success response; an ID token when a user granted `openid`.
#[allow(clippy::too_many_arguments)]
async fn respond(
    authority: &Authority,
    client: &RegisteredClient,
    user: Option<&RegisteredUser>,
    scopes: &Scopes,
    nonce: Option<&str>,
    sign_in: SignIn,
    minted: Minted,
    now: DateTime<Utc>,
) -> Result<TokenResponse, TokenError> {
    let id_token = match user {
        Some(user) if scopes.contains("openid") => Some(
            id_token::issue(
                &authority.store,
                &authority.keys,
                &authority.master,
                IdTokenInput {
                    issuer: &authority.issuer,
                    client,
                    user,
                    scopes,
                    nonce,
                    auth_time: sign_in.auth_time,
                    sid: sign_in.session.as_ref().map(SecretHash::as_hex),
                    amr: &sign_in.amr,
                    access_token: minted.access.reveal(),
                    now,
                    lifetime_seconds: minted.expires_in,
                },
            )
            .await?,
        ),
        _ => None,
    };
    Ok(TokenResponse {
        access_token: minted.access.reveal().to_owned(),
        issued_token_type: None,
        token_type: "Bearer",
        expires_in: minted.expires_in,
        scope: scopes.to_string(),
        refresh_token: minted.refresh.as_ref().map(|r| r.reveal().to_owned()),
        id_token,
    })
}

/// Issues an authorization code for `request`, granted by `user` (RFC 6749 §4.1.2).
pub async fn issue_code(
    authority: &Authority,
    request: &AuthorizationRequest,
    user: &Username,
    auth_time: DateTime<Utc>,
    session: (&SecretHash, &[String]),
    settings: &SettingsValues,
    metadata: &EventMetadata,
) -> Result<String, AppError> {
    let grant_id = GrantId::new();
    let code = tokens::mint(CODE_PREFIX, &grant_id);
    let issue = CodeIssue {
        client_id: request.client.client_id.clone(),
        user: user.clone(),
        scopes: request.scopes.clone(),
        redirect_uri: request.target.redirect_uri.clone(),
        redirect_uri_explicit: request.redirect_uri_explicit,
        challenge: request.challenge.clone(),
        nonce: request.nonce.clone(),
        auth_time,
        session: Some(session.0.clone()),
        amr: session.1.to_vec(),
        code_hash: code.hash().clone(),
        expires_at: metadata.at + Duration::seconds(i64::from(settings.code_ttl)),
        resources: request.resources.ids(),
    };
    authority
        .store
        .grants
        .create(grant_id.as_str(), GrantCommand::IssueCode(issue), metadata)
        .await
        .map_err(AppError::store)?;
    Ok(code.reveal().to_owned())
}

/// Issues an access token straight from the authorization endpoint (RFC 6749 §4.2.2): no
/// refresh token, ever.
pub async fn issue_implicit(
    authority: &Authority,
    request: &AuthorizationRequest,
    user: &Username,
    auth_time: DateTime<Utc>,
    settings: &SettingsValues,
    metadata: &EventMetadata,
) -> Result<(String, i64), AppError> {
    let grant_id = GrantId::new();
    let bearer = Bearer {
        client_id: &request.client.client_id,
        user: Some(user),
        scopes: &request.scopes,
        auth_time: Some(auth_time),
        amr: &[],
        act: None,
        expires_by: None,
    };
    let no_resource = Target::default();
    let minted = mint(
        authority,
        &grant_id,
        false,
        settings,
        metadata.at,
        &no_resource,
        bearer,
    )
    .map_err(|e| AppError::Internal(anyhow::anyhow!("{}", e.description)))?;
    authority
        .store
        .grants
        .create(
            grant_id.as_str(),
            GrantCommand::IssueTokens {
                grant_type: GrantType::Implicit,
                client_id: request.client.client_id.clone(),
                user: Some(user.clone()),
                scopes: request.scopes.clone(),
                auth_time: Some(auth_time),
                tokens: minted.tokens,
            },
            metadata,
        )
        .await
        .map_err(AppError::store)?;
    Ok((minted.access.reveal().to_owned(), minted.expires_in))
}
