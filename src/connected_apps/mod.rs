//! authledger as a client of other providers (Frappe's Connected Apps and Token Cache): the
//! operations the CLI, the admin API and the pages share.
//!
//! - [`provider`]: the calls to the other provider (discovery, tokens, revocation, ID token
//!   verification), bounded and timed.
//! - [`cache`]: the app's client secret and the people's tokens, sealed outside the log.
//! - Here: registering an app ([`create`], [`show`], [`list`], [`delete`]), completing a
//!   connection ([`Connections::connect`]) and handing out a currently valid access token,
//!   refreshed first when it is about to expire ([`Connections::fresh_token`]), one refresh
//!   at a time per connection.

pub mod cache;
pub mod provider;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use authledger_domain::connected_app::connection::{
    connection_id, AppConnection, ConnectionCommand, ConnectionError, ConnectionStatus,
    ProviderTokens,
};
use authledger_domain::connected_app::{
    AppId, ConnectedApp, ConnectedAppCommand, ConnectedAppConfig, ConnectedAppError,
    ProviderEndpoints, RegisteredApp,
};
use authledger_domain::metadata::EventMetadata;
use authledger_domain::oauth::{Scopes, WebUrl};
use authledger_domain::user::Username;
use chrono::{Duration, Utc};
use cqrs_es::AggregateError;
use serde::Serialize;

use crate::error::AppError;
use crate::master_key::MasterKey;
use crate::store::Store;
use cache::{CachedTokens, Sealed};
use provider::{ProviderClient, TokenAnswer, TokenRefused};

/// An access token expiring sooner than this is refreshed before it is handed out.
pub const REFRESH_MARGIN: Duration = Duration::seconds(60);

/// A connected app as typed on the command line or sent to the admin API.
#[derive(Default, Clone)]
pub struct ConnectedAppInput {
    pub name: String,
    /// The provider's discovery document; its endpoints fill in those not typed.
    pub openid_configuration: Option<String>,
    pub authorization_uri: Option<String>,
    pub token_uri: Option<String>,
    pub revocation_uri: Option<String>,
    pub userinfo_uri: Option<String>,
    pub introspection_uri: Option<String>,
    pub issuer: Option<String>,
    pub jwks_uri: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    /// Space-separated.
    pub scope: Option<String>,
    pub extra_params: BTreeMap<String, String>,
}

impl std::fmt::Debug for ConnectedAppInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectedAppInput")
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// What `show` and `create` answer: the app and the redirect URI to register at the provider.
#[derive(Debug, Clone, Serialize)]
pub struct AppSummary {
    pub id: String,
    pub name: String,
    pub redirect_uri: String,
    pub client_id: String,
    pub scope: String,
    pub openid_configuration: Option<String>,
    pub authorization_uri: String,
    pub token_uri: String,
    pub revocation_uri: Option<String>,
    pub userinfo_uri: Option<String>,
    pub introspection_uri: Option<String>,
    pub issuer: Option<String>,
    pub jwks_uri: Option<String>,
    pub extra_params: BTreeMap<String, String>,
}

/// `/connected-apps/{id}/callback` on this server.
pub fn redirect_uri(issuer: &str, id: &AppId) -> String {
    format!(
        "{}/connected-apps/{id}/callback",
        issuer.trim_end_matches('/')
    )
}

impl AppSummary {
    fn of(app: &RegisteredApp, issuer: &str) -> Self {
        let config = &app.config;
        let text = |u: &Option<WebUrl>| u.as_ref().map(|u| u.as_str().to_owned());
        AppSummary {
            id: app.id.to_string(),
            name: config.name.clone(),
            redirect_uri: redirect_uri(issuer, &app.id),
            client_id: config.client_id.clone(),
            scope: config.scopes.to_string(),
            openid_configuration: text(&config.openid_configuration),
            authorization_uri: config.endpoints.authorization.as_str().to_owned(),
            token_uri: config.endpoints.token.as_str().to_owned(),
            revocation_uri: text(&config.endpoints.revocation),
            userinfo_uri: text(&config.endpoints.userinfo),
            introspection_uri: text(&config.endpoints.introspection),
            issuer: config.endpoints.issuer.clone(),
            jwks_uri: text(&config.endpoints.jwks),
            extra_params: config.extra_params.clone(),
        }
    }
}

pub fn parse_id(raw: &str) -> Result<AppId, AppError> {
    AppId::parse(raw).map_err(|_| AppError::NotFound(format!("no connected app is named `{raw}`")))
}

fn app_error(id: &AppId, error: AggregateError<ConnectedAppError>) -> AppError {
    match error {
        AggregateError::UserError(ConnectedAppError::Exists) => AppError::Conflict(format!(
            "a connected app with id {id} exists or existed (ids are not reused): choose another name"
        )),
        AggregateError::UserError(ConnectedAppError::NotFound) => {
            AppError::NotFound(format!("no connected app is named `{id}`"))
        }
        AggregateError::UserError(ConnectedAppError::Config(why)) => AppError::invalid(why),
        other => AppError::store(other),
    }
}

fn connection_error(error: AggregateError<ConnectionError>) -> AppError {
    match error {
        AggregateError::UserError(why) => AppError::Conflict(why.to_string()),
        other => AppError::store(other),
    }
}

/// The app as its events make it, if it exists.
pub async fn load(store: &Store, id: &AppId) -> Result<RegisteredApp, AppError> {
    let app: ConnectedApp = store
        .connected_apps
        .load(id.as_str())
        .await
        .map_err(|e| app_error(id, e))?;
    app.registered()
        .cloned()
        .ok_or_else(|| AppError::NotFound(format!("no connected app is named `{id}`")))
}

/// The configuration `input` describes, discovery fetched if it names a document.
async fn config_of(
    provider: &ProviderClient,
    input: &ConnectedAppInput,
) -> Result<ConnectedAppConfig, AppError> {
    let url = |field: &str, raw: &Option<String>| -> Result<Option<WebUrl>, AppError> {
        raw.as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| {
                WebUrl::parse(r)
                    .map_err(|e| AppError::invalid_field(field, format!("{field}: {e}")))
            })
            .transpose()
    };
    let discovery = url("openid_configuration", &input.openid_configuration)?;
    let discovered = match &discovery {
        Some(document) => Some(provider.discover(document).await?),
        None => None,
    };
    let typed_or = |field: &str, raw: &Option<String>, found: Option<WebUrl>| {
        url(field, raw).map(|typed| typed.or(found))
    };
    let d = discovered.as_ref();
    let authorization = typed_or(
        "authorization_uri",
        &input.authorization_uri,
        d.map(|d| d.authorization.clone()),
    )?
    .ok_or_else(|| {
        AppError::invalid_field(
            "authorization_uri",
            "an authorization URI (or an OpenID configuration URL) is required",
        )
    })?;
    let token =
        typed_or("token_uri", &input.token_uri, d.map(|d| d.token.clone()))?.ok_or_else(|| {
            AppError::invalid_field(
                "token_uri",
                "a token URI (or an OpenID configuration URL) is required",
            )
        })?;
    let endpoints = ProviderEndpoints {
        authorization,
        token,
        revocation: typed_or(
            "revocation_uri",
            &input.revocation_uri,
            d.and_then(|d| d.revocation.clone()),
        )?,
        userinfo: typed_or(
            "userinfo_uri",
            &input.userinfo_uri,
            d.and_then(|d| d.userinfo.clone()),
        )?,
        introspection: typed_or(
            "introspection_uri",
            &input.introspection_uri,
            d.and_then(|d| d.introspection.clone()),
        )?,
        issuer: input
            .issuer
            .clone()
            .filter(|i| !i.trim().is_empty())
            .or_else(|| d.and_then(|d| d.issuer.clone())),
        jwks: typed_or("jwks_uri", &input.jwks_uri, d.and_then(|d| d.jwks.clone()))?,
    };
    let scopes = Scopes::parse(input.scope.as_deref().unwrap_or(""))
        .map_err(|e| AppError::invalid_field("scope", format!("scope: {e}")))?;
    Ok(ConnectedAppConfig {
        name: input.name.trim().to_owned(),
        openid_configuration: discovery,
        endpoints,
        client_id: input.client_id.trim().to_owned(),
        scopes,
        extra_params: input.extra_params.clone(),
    })
}

fn check_secret(secret: &str) -> Result<(), AppError> {
    if secret.is_empty() || secret.len() > 4096 || secret.chars().any(char::is_control) {
        return Err(AppError::invalid_field(
            "client_secret",
            "the client secret must be 1 to 4096 printable characters",
        ));
    }
    Ok(())
}

/// Registers a connected app: its id is the slug of its name.
pub async fn create(
    store: &Store,
    master: &MasterKey,
    provider: &ProviderClient,
    issuer: &str,
    input: ConnectedAppInput,
    metadata: &EventMetadata,
) -> Result<AppSummary, AppError> {
    let id = AppId::slug(&input.name)
        .map_err(|e| AppError::invalid_field("name", format!("name: {e}")))?;
    check_secret(&input.client_secret)?;
    let existing: ConnectedApp = store
        .connected_apps
        .load(id.as_str())
        .await
        .map_err(|e| app_error(&id, e))?;
    if existing != ConnectedApp::default() {
        return Err(app_error(
            &id,
            AggregateError::UserError(ConnectedAppError::Exists),
        ));
    }
    let config = config_of(provider, &input).await?;
    config.check().map_err(AppError::invalid)?;
    // The secret first: an app in the log always has its secret in the vault.
    let sealed = Sealed {
        db: &store.db,
        master,
    };
    sealed.put_secret(id.as_str(), &input.client_secret).await?;
    let command = ConnectedAppCommand::Create {
        id: id.clone(),
        config,
        client_secret: crate::secrets::hash(&input.client_secret),
    };
    store
        .connected_apps
        .execute(id.as_str(), command, metadata)
        .await
        .map_err(|e| app_error(&id, e))?;
    Ok(AppSummary::of(&load(store, &id).await?, issuer))
}

/// Changes a connected app: each field given replaces the app's; a new OpenID configuration
/// URL is fetched again and its endpoints replace those not given; a new secret replaces the
/// sealed one. Its id (and so its callback) stays.
pub async fn update(
    store: &Store,
    master: &MasterKey,
    provider: &ProviderClient,
    issuer: &str,
    id: &str,
    change: ConnectedAppInput,
    metadata: &EventMetadata,
) -> Result<AppSummary, AppError> {
    let id = parse_id(id)?;
    if !change.client_secret.is_empty() {
        check_secret(&change.client_secret)?;
    }
    let current = load(store, &id).await?;
    let config = &current.config;
    let text = |u: &Option<WebUrl>| u.as_ref().map(|u| u.as_str().to_owned());
    let given = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    let rediscover = given(&change.openid_configuration).is_some();
    // Without a new discovery document, the endpoints not given stay as they are.
    let kept = |new: &Option<String>, old: Option<String>| {
        given(new).or(if rediscover { None } else { old })
    };
    let mut input = ConnectedAppInput {
        name: given(&Some(change.name.clone())).unwrap_or_else(|| config.name.clone()),
        openid_configuration: given(&change.openid_configuration)
            .or_else(|| text(&config.openid_configuration)),
        authorization_uri: kept(
            &change.authorization_uri,
            Some(config.endpoints.authorization.as_str().to_owned()),
        ),
        token_uri: kept(
            &change.token_uri,
            Some(config.endpoints.token.as_str().to_owned()),
        ),
        revocation_uri: kept(&change.revocation_uri, text(&config.endpoints.revocation)),
        userinfo_uri: kept(&change.userinfo_uri, text(&config.endpoints.userinfo)),
        introspection_uri: kept(
            &change.introspection_uri,
            text(&config.endpoints.introspection),
        ),
        issuer: kept(&change.issuer, config.endpoints.issuer.clone()),
        jwks_uri: kept(&change.jwks_uri, text(&config.endpoints.jwks)),
        client_id: given(&Some(change.client_id.clone()))
            .unwrap_or_else(|| config.client_id.clone()),
        client_secret: String::new(),
        scope: given(&change.scope).or_else(|| Some(config.scopes.to_string())),
        extra_params: if change.extra_params.is_empty() {
            config.extra_params.clone()
        } else {
            change.extra_params.clone()
        },
    };
    // Discovery runs only when a new document was named: the old endpoints are kept as typed.
    if !rediscover {
        input.openid_configuration = None;
    }
    let mut new_config = config_of(provider, &input).await?;
    new_config.openid_configuration = if rediscover {
        new_config.openid_configuration
    } else {
        config.openid_configuration.clone()
    };
    store
        .connected_apps
        .execute(
            id.as_str(),
            ConnectedAppCommand::Update { config: new_config },
            metadata,
        )
        .await
        .map_err(|e| app_error(&id, e))?;
    if !change.client_secret.is_empty() {
        Sealed {
            db: &store.db,
            master,
        }
        .put_secret(id.as_str(), &change.client_secret)
        .await?;
        let command = ConnectedAppCommand::ChangeSecret {
            client_secret: crate::secrets::hash(&change.client_secret),
        };
        store
            .connected_apps
            .execute(id.as_str(), command, metadata)
            .await
            .map_err(|e| app_error(&id, e))?;
    }
    Ok(AppSummary::of(&load(store, &id).await?, issuer))
}

pub async fn show(store: &Store, issuer: &str, id: &str) -> Result<AppSummary, AppError> {
    let id = parse_id(id)?;
    Ok(AppSummary::of(&load(store, &id).await?, issuer))
}

pub async fn list(
    store: &Store,
) -> Result<Vec<authledger_projections::connected_apps::ConnectedAppRecord>, AppError> {
    let db = store.current_views().await?;
    Ok(authledger_projections::connected_apps::ConnectedAppsView::list(db).await?)
}

/// Deletes the app and forgets its secret and every token cached for it.
pub async fn delete(
    store: &Store,
    master: &MasterKey,
    id: &str,
    metadata: &EventMetadata,
) -> Result<(), AppError> {
    let id = parse_id(id)?;
    store
        .connected_apps
        .execute(id.as_str(), ConnectedAppCommand::Delete, metadata)
        .await
        .map_err(|e| app_error(&id, e))?;
    Sealed {
        db: &store.db,
        master,
    }
    .forget_app(id.as_str())
    .await
}

/// A currently valid access token of a connection.
#[derive(Clone, Serialize)]
pub struct FreshToken {
    pub access_token: String,
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
    /// [`REFRESH_MARGIN`]. Concurrent callers for one connection wait for one refresh.
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
        let connection: AppConnection = store
            .app_connections
            .load(&key)
            .await
            .map_err(connection_error)?;
        let connect_again = |why: &str| match user {
            Some(user) => AppError::Conflict(format!(
                "{why}: {user} must connect again at /connected-apps/{id}/connect (connect_again)"
            )),
            None => AppError::Conflict(format!("{why} (connect_again)")),
        };
        let status = connection.state().map(|s| s.status);
        let cached = match status {
            Some(ConnectionStatus::Connected) => sealed.tokens(id.as_str(), whose).await?,
            Some(ConnectionStatus::Lost) if user.is_some() => {
                return Err(connect_again(
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
        if let Some(cached) = cached.as_ref().filter(|c| fresh(c)) {
            return Ok(FreshToken {
                access_token: cached.access_token.clone(),
                token_type: "Bearer",
                expires_at: cached
                    .access_expires_at
                    .map(authledger_projections::view_time),
                scope: connection
                    .state()
                    .map(|s| s.tokens.scopes.to_string())
                    .unwrap_or_default(),
            });
        }
        let secret = sealed.secret(id.as_str()).await?;
        let config = &app.config;
        let scope = config.scopes.to_string();
        let refresh_token = cached.as_ref().and_then(|c| c.refresh_token.clone());
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
                return Err(connect_again(&said));
            }
            Err(refused) => return Err(refused.into()),
        };
        let (tokens, mut keep) = tokens_of(&answer, &config.scopes)?;
        if keep.refresh_token.is_none() {
            keep.refresh_token = refresh_token;
        }
        sealed.put_tokens(id.as_str(), whose, &keep).await?;
        let command = match status {
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
