//! authledger as a client of other providers (Frappe's Connected Apps and Token Cache): the
//! operations the CLI, the admin API and the pages share.
//!
//! - [`provider`]: the calls to the other provider (discovery, tokens, revocation, ID token
//!   verification), bounded and timed.
//! - [`cache`]: the app's client secret and the people's tokens, sealed outside the log.
//! - Here: registering an app ([`create`], [`show`], [`list`], [`delete`]), completing a
//!   connection and handing out a currently valid access token (`connections.rs`).

pub mod cache;
mod connections;
pub mod provider;

pub use connections::{Connections, Exchange, FreshToken, REFRESH_MARGIN};

use std::collections::BTreeMap;

use authledger_domain::connected_app::{
    AppId, ConnectedApp, ConnectedAppCommand, ConnectedAppConfig, ConnectedAppError,
    ProviderEndpoints, RegisteredApp,
};
use authledger_domain::metadata::EventMetadata;
use authledger_domain::oauth::{Scopes, WebUrl};
use cqrs_es::AggregateError;
use serde::Serialize;

use crate::error::AppError;
use crate::master_key::MasterKey;
use crate::store::Store;
use cache::Sealed;
use provider::ProviderClient;

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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
    // Before discovery: a name taken is answered without calling the provider.
    refuse_existing(store, &id).await?;
    let config = config_of(provider, &input).await?;
    create_configured(store, master, config, &input.client_secret, metadata).await?;
    Ok(AppSummary::of(&load(store, &id).await?, issuer))
}

async fn refuse_existing(store: &Store, id: &AppId) -> Result<(), AppError> {
    let existing: ConnectedApp = store
        .connected_apps
        .load(id.as_str())
        .await
        .map_err(|e| app_error(id, e))?;
    if existing != ConnectedApp::default() {
        return Err(app_error(
            id,
            AggregateError::UserError(ConnectedAppError::Exists),
        ));
    }
    Ok(())
}

/// Registers an app whose endpoints are known already (`import` brings them): no discovery.
/// Its id is the slug of its name, as always.
pub async fn create_configured(
    store: &Store,
    master: &MasterKey,
    config: ConnectedAppConfig,
    client_secret: &str,
    metadata: &EventMetadata,
) -> Result<AppId, AppError> {
    let id = AppId::slug(&config.name)
        .map_err(|e| AppError::invalid_field("name", format!("name: {e}")))?;
    check_secret(client_secret)?;
    refuse_existing(store, &id).await?;
    config.check().map_err(AppError::invalid)?;
    // The secret first: an app in the log always has its secret in the vault.
    let sealed = Sealed {
        db: &store.db,
        master,
    };
    sealed.put_secret(id.as_str(), client_secret).await?;
    let command = ConnectedAppCommand::Create {
        id: id.clone(),
        config,
        client_secret: crate::secrets::hash(client_secret),
    };
    store
        .connected_apps
        .execute(id.as_str(), command, metadata)
        .await
        .map_err(|e| app_error(&id, e))?;
    Ok(id)
}

/// The app's client secret, from the vault (`export --with-secrets`).
pub async fn client_secret(
    store: &Store,
    master: &MasterKey,
    id: &str,
) -> Result<String, AppError> {
    let id = parse_id(id)?;
    Sealed {
        db: &store.db,
        master,
    }
    .secret(id.as_str())
    .await
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
