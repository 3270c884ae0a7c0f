//! A person's connections and their tokens: completing a connection
//! ([`Connections::connect`]), handing out a currently valid access token, refreshed first
//! when it is about to expire ([`Connections::fresh_token`], one refresh at a time per
//! connection across every process on the store), and giving a connection up
//! ([`Connections::disconnect`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use authledger_domain::connected_app::connection::{
    connection_id, AppConnection, ConnectionCommand, ConnectionError, ConnectionStatus,
    ProviderTokens,
};
use authledger_domain::connected_app::{AppId, RegisteredApp};
use authledger_domain::metadata::EventMetadata;
use authledger_domain::oauth::Scopes;
use authledger_domain::user::Username;
use chrono::{Duration, Utc};
use cqrs_es::AggregateError;
use serde::Serialize;

use super::cache::{CachedTokens, Sealed};
use super::load;
use super::provider::{ProviderClient, TokenAnswer, TokenRefused};
use crate::error::AppError;
use crate::master_key::MasterKey;
use crate::store::Store;

/// An access token expiring sooner than this is refreshed before it is handed out.
pub const REFRESH_MARGIN: Duration = Duration::seconds(60);

fn connection_error(error: AggregateError<ConnectionError>) -> AppError {
    match error {
        AggregateError::UserError(why) => AppError::Conflict(why.to_string()),
        other => AppError::store(other),
    }
}

/// A currently valid access token of a connection.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct FreshToken {
    pub access_token: String,
    /// `Bearer`.
    #[schema(value_type = String)]
    pub token_type: &'static str,
    /// RFC 3339, when the provider said.
    pub expires_at: Option<String>,
    pub scope: String,
}

impl std::fmt::Debug for FreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FreshToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What a code exchange needs from the authorization request that began it.
pub struct Exchange<'a> {
    pub code: &'a str,
    pub verifier: &'a str,
    pub nonce: &'a str,
    pub redirect_uri: &'a str,
}

/// Connections and their tokens: one refresh at a time per connection in this process.
#[derive(Default)]
pub struct Connections {
    pub provider: ProviderClient,
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

fn tokens_of(
    answer: &TokenAnswer,
    asked: &Scopes,
) -> Result<(ProviderTokens, CachedTokens), AppError> {
    // RFC 6749 §5.1: the scope is omitted when it is the one requested.
    let scopes = match &answer.scope {
        Some(scope) => Scopes::parse(scope).map_err(|e| {
            AppError::Upstream(format!("the provider answered an unreadable scope: {e}"))
        })?,
        None => asked.clone(),
    };
    let expires = answer
        .expires_in
        .filter(|s| *s > 0)
        .map(|s| Utc::now() + Duration::seconds(s.min(10 * 365 * 86_400)));
    Ok((
        ProviderTokens {
            scopes,
            access_expires_at: expires,
            access_token_hash: crate::secrets::hash(&answer.access_token),
            refresh_token_hash: answer.refresh_token.as_deref().map(crate::secrets::hash),
        },
        CachedTokens {
            access_token: answer.access_token.clone(),
            refresh_token: answer.refresh_token.clone(),
            access_expires_at: expires,
        },
    ))
}

/// How long a claim to refresh a connection's tokens holds: longer than the provider call
/// it covers (10 s at most), so that a process that died holding one does not stop the others
/// for longer.
const REFRESH_LEASE: Duration = Duration::seconds(20);

/// A connection's tokens as the cache holds them: fresh enough to hand out, or not.
enum Current {
    Fresh(FreshToken),
    Stale(Stale),
}

struct Stale {
    status: Option<ConnectionStatus>,
    cached: Option<CachedTokens>,
}

/// The answer for a person whose connection cannot be refreshed.
fn connect_again(id: &AppId, user: Option<&Username>, why: &str) -> AppError {
    match user {
        Some(user) => AppError::Conflict(format!(
            "{why}: {user} must connect again at /connected-apps/{id}/connect (connect_again)"
        )),
        None => AppError::Conflict(format!("{why} (connect_again)")),
    }
}

/// The connection's tokens now, or why there are none to refresh.
async fn current(
    store: &Store,
    sealed: &Sealed<'_>,
    id: &AppId,
    user: Option<&Username>,
) -> Result<Current, AppError> {
    let connection: AppConnection = store
        .app_connections
        .load(&connection_id(id, user))
        .await
        .map_err(connection_error)?;
    let status = connection.state().map(|s| s.status);
    let cached = match status {
        Some(ConnectionStatus::Connected) => {
            sealed
                .tokens(id.as_str(), user.map_or("", |u| u.as_str()))
                .await?
        }
        Some(ConnectionStatus::Lost) if user.is_some() => {
            return Err(connect_again(
                id,
                user,
                "the provider refused this connection's refresh token",
            ))
        }
        _ if user.is_none() => None,
        _ => {
            return Err(AppError::NotFound(format!(
                "{} has not connected {id}",
                user.map_or("the app", |u| u.as_str())
            )))
        }
    };
    let fresh = |c: &CachedTokens| {
        c.access_expires_at
            .is_none_or(|at| at > Utc::now() + REFRESH_MARGIN)
    };
    Ok(match cached {
        Some(cached) if fresh(&cached) => Current::Fresh(FreshToken {
            access_token: cached.access_token,
            token_type: "Bearer",
            expires_at: cached
                .access_expires_at
                .map(authledger_projections::view_time),
            scope: connection
                .state()
                .map(|s| s.tokens.scopes.to_string())
                .unwrap_or_default(),
        }),
        cached => Current::Stale(Stale { status, cached }),
    })
}

impl Connections {
    fn flight(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        // Forget locks nobody holds or waits for, so the map stays as small as the traffic.
        flights.retain(|_, lock| Arc::strong_count(lock) > 1);
        flights.entry(key.to_owned()).or_default().clone()
    }

    /// Completes a person's connection: exchanges the code (with its PKCE verifier), checks
    /// the ID token if one came, and keeps the tokens.
    pub async fn connect(
        &self,
        store: &Store,
        master: &MasterKey,
        app: &RegisteredApp,
        user: &Username,
        exchange: Exchange<'_>,
        metadata: &EventMetadata,
    ) -> Result<(), AppError> {
        let sealed = Sealed {
            db: &store.db,
            master,
        };
        let secret = sealed.secret(app.id.as_str()).await?;
        let config = &app.config;
        let answer = self
            .provider
            .token(
                &config.endpoints.token,
                &config.client_id,
                &secret,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", exchange.code),
                    ("redirect_uri", exchange.redirect_uri),
                    ("code_verifier", exchange.verifier),
                ],
            )
            .await?;
        let subject = match (&answer.id_token, &config.endpoints.jwks) {
            (Some(id_token), Some(_)) => Some(
                self.provider
                    .verify_id_token(
                        &config.endpoints,
                        &config.client_id,
                        id_token,
                        exchange.nonce,
                    )
                    .await?
                    .sub,
            ),
            _ => None,
        };
        let (tokens, cached) = tokens_of(&answer, &config.scopes)?;
        sealed
            .put_tokens(app.id.as_str(), user.as_str(), &cached)
            .await?;
        let command = ConnectionCommand::Connect {
            app: app.id.clone(),
            user: Some(user.clone()),
            tokens,
            subject,
        };
        store
            .app_connections
            .execute(&connection_id(&app.id, Some(user)), command, metadata)
            .await
            .map_err(connection_error)?;
        Ok(())
    }

    /// A currently valid access token of `user`'s connection to the app (or, for `None`, the
    /// app's own, obtained with client credentials), refreshed first when it expires within
    /// [`REFRESH_MARGIN`]. Concurrent callers for one connection wait for one refresh: in
    /// this process behind a lock, across processes on the same store (other instances, the
    /// CLI) behind a lease in the database, since a provider that rotates refresh tokens
    /// takes a second refresh with the same token for a replay.
    pub async fn fresh_token(
        &self,
        store: &Store,
        master: &MasterKey,
        id: &AppId,
        user: Option<&Username>,
        metadata: &EventMetadata,
    ) -> Result<FreshToken, AppError> {
        let app = load(store, id).await?;
        let key = connection_id(id, user);
        let flight = self.flight(&key);
        let _one_at_a_time = flight.lock().await;
        let sealed = Sealed {
            db: &store.db,
            master,
        };
        let whose = user.map_or("", |u| u.as_str());
        let holder = uuid::Uuid::new_v4().to_string();
        let waited_since = std::time::Instant::now();
        loop {
            let stale = match current(store, &sealed, id, user).await? {
                Current::Fresh(token) => return Ok(token),
                Current::Stale(stale) => stale,
            };
            let until = Utc::now() + REFRESH_LEASE;
            if sealed
                .claim_refresh(id.as_str(), whose, &holder, until)
                .await?
            {
                let refreshed = self
                    .refresh(store, &sealed, &app, user, stale, metadata)
                    .await;
                sealed.release_refresh(id.as_str(), whose, &holder).await?;
                return refreshed;
            }
            // Another process is refreshing: its tokens will be in the cache, or its lease
            // runs out and this one takes over.
            if waited_since.elapsed()
                > (REFRESH_LEASE + Duration::seconds(5))
                    .to_std()
                    .unwrap_or_default()
            {
                return Err(AppError::Upstream(format!(
                    "another process has been refreshing the tokens of {key} for over {} s",
                    REFRESH_LEASE.num_seconds()
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Refreshes a stale connection's tokens (or obtains the app's own with client
    /// credentials), keeps them and records it.
    async fn refresh(
        &self,
        store: &Store,
        sealed: &Sealed<'_>,
        app: &RegisteredApp,
        user: Option<&Username>,
        stale: Stale,
        metadata: &EventMetadata,
    ) -> Result<FreshToken, AppError> {
        let id = &app.id;
        let key = connection_id(id, user);
        let whose = user.map_or("", |u| u.as_str());
        let secret = sealed.secret(id.as_str()).await?;
        let config = &app.config;
        let scope = config.scopes.to_string();
        let refresh_token = stale.cached.and_then(|c| c.refresh_token);
        let (form, refreshing): (Vec<(&str, &str)>, bool) = match (&refresh_token, user) {
            (Some(refresh), _) => (
                vec![("grant_type", "refresh_token"), ("refresh_token", refresh)],
                true,
            ),
            (None, None) => {
                let mut form = vec![("grant_type", "client_credentials")];
                if !scope.is_empty() {
                    form.push(("scope", &scope));
                }
                (form, false)
            }
            (None, Some(_)) => {
                return Err(connect_again(
                    id,
                    user,
                    "the access token expired and the provider gave no refresh token",
                ))
            }
        };
        let answer = match self
            .provider
            .token(&config.endpoints.token, &config.client_id, &secret, &form)
            .await
        {
            Ok(answer) => answer,
            Err(TokenRefused::InvalidGrant(said)) if refreshing && user.is_some() => {
                sealed.forget_tokens(id.as_str(), whose).await?;
                store
                    .app_connections
                    .execute(
                        &key,
                        ConnectionCommand::Lose {
                            reason: "invalid_grant".into(),
                        },
                        metadata,
                    )
                    .await
                    .map_err(connection_error)?;
                return Err(connect_again(id, user, &said));
            }
            Err(refused) => return Err(refused.into()),
        };
        let (tokens, mut keep) = tokens_of(&answer, &config.scopes)?;
        if keep.refresh_token.is_none() {
            keep.refresh_token = refresh_token;
        }
        sealed.put_tokens(id.as_str(), whose, &keep).await?;
        let command = match stale.status {
            Some(ConnectionStatus::Connected) => ConnectionCommand::Refresh {
                tokens: tokens.clone(),
            },
            _ => ConnectionCommand::Connect {
                app: id.clone(),
                user: None,
                tokens: tokens.clone(),
                subject: None,
            },
        };
        store
            .app_connections
            .execute(&key, command, metadata)
            .await
            .map_err(connection_error)?;
        Ok(FreshToken {
            access_token: keep.access_token,
            token_type: "Bearer",
            expires_at: keep
                .access_expires_at
                .map(authledger_projections::view_time),
            scope: tokens.scopes.to_string(),
        })
    }

    /// Gives a connection up: revokes its refresh (else access) token at the provider when
    /// it has a revocation endpoint, then forgets the tokens. Recorded either way.
    pub async fn disconnect(
        &self,
        store: &Store,
        master: &MasterKey,
        id: &AppId,
        user: &Username,
        metadata: &EventMetadata,
    ) -> Result<bool, AppError> {
        let app = load(store, id).await?;
        let sealed = Sealed {
            db: &store.db,
            master,
        };
        let mut revoked = false;
        if let (Some(endpoint), Some(tokens)) = (
            &app.config.endpoints.revocation,
            sealed.tokens(id.as_str(), user.as_str()).await?,
        ) {
            let secret = sealed.secret(id.as_str()).await?;
            let (token, hint) = match &tokens.refresh_token {
                Some(refresh) => (refresh.as_str(), "refresh_token"),
                None => (tokens.access_token.as_str(), "access_token"),
            };
            revoked = self
                .provider
                .revoke(endpoint, &app.config.client_id, &secret, token, hint)
                .await;
        }
        sealed.forget_tokens(id.as_str(), user.as_str()).await?;
        let command = ConnectionCommand::Disconnect {
            revoked_at_provider: revoked,
        };
        store
            .app_connections
            .execute(&connection_id(id, Some(user)), command, metadata)
            .await
            .map_err(connection_error)?;
        Ok(revoked)
    }
}
