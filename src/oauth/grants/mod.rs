//! The grants of the token endpoint (RFC 6749 §4.1.3, §4.4, §6, RFC 8628 §3.4) and the
//! issuance done at the authorization endpoint (codes, implicit tokens), one file each. Each
//! grant becomes one command on one `Grant` aggregate; the answer follows from the events it
//! committed. Here: the request and response types, the dispatch, and the response every
//! grant ends with.

mod client_credentials;
mod code;
mod device_code;
mod front_channel;
mod refresh;

use authledger_domain::client::RegisteredClient;
use authledger_domain::grant::{GrantEvent, GrantState};
use authledger_domain::metadata::EventMetadata;
use authledger_domain::oauth::{GrantType, Scopes};
use authledger_domain::pkce::CodeVerifier;
use authledger_domain::secret::SecretHash;
use authledger_domain::user::RegisteredUser;
use chrono::{DateTime, Utc};
use cqrs_es::EventEnvelope;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::error::{TokenError, TokenErrorCode};
use super::exchange::{token_exchange, ExchangeRequest};
use super::id_token::{self, IdTokenInput};
use super::minting::{active_user, grant_error, Minted};
use super::tokens::GrantId;
use super::Authority;
use client_credentials::client_credentials;
use code::authorization_code;
use device_code::device_code_grant;
pub use front_channel::{issue_code, issue_implicit};
use refresh::refresh_token;

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
