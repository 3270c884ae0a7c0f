//! Signing in through another provider (social login): registering providers, and turning
//! what a provider said about a person into a local account, linked or new.
//!
//! A first sign-in links to an existing account by email only when the provider says the
//! email is verified (or the provider is trusted for emails); otherwise, with sign-ups
//! allowed, it creates an account from the claims, and with sign-ups denied it signs no one
//! in. Each identity at a provider is linked to one account only (the `ExternalIdentity`
//! aggregate's key decides).
//!
//! Here: registering providers; `sign_in.rs`: a provider's answer to an account;
//! `identities.rs`: a person's linked identities and unlinking them.

mod identities;
mod sign_in;

pub use identities::{identities, unlink};
pub use sign_in::{complete, Answer, Outcome};

use authledger_domain::connected_app::{AppId, ProviderEndpoints};
use authledger_domain::metadata::EventMetadata;
use authledger_domain::oauth::{Scopes, WebUrl};
use authledger_domain::social_login::{
    Identification, RegisteredProvider, SignUps, SocialLogin, SocialLoginCommand,
    SocialLoginConfig, SocialLoginError,
};
use authledger_projections::{on_db, view_time};
use chrono::Utc;
use cqrs_es::AggregateError;
use serde::Serialize;

use crate::connected_apps::provider::ProviderClient;
use crate::error::AppError;
use crate::master_key::MasterKey;
use crate::store::Store;

/// A provider as typed on the command line: one of three presets.
#[derive(Default, Clone)]
pub struct SocialLoginInput {
    pub name: String,
    /// An OpenID provider's issuer: its discovery document is read from it.
    pub issuer: Option<String>,
    /// Another authledger or Frappe server (Frappe's "Add Primary Server"): its base URL
    /// is its issuer.
    pub base_url: Option<String>,
    /// A plain OAuth 2 provider: its endpoints, the user-info endpoint and the property of
    /// its answer that holds the person's id.
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub api_endpoint: Option<String>,
    pub user_id_property: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    pub scope: Option<String>,
    /// `allow` (the default) or `deny`.
    pub sign_ups: Option<String>,
    pub trusted_emails: bool,
    /// An https image for the sign-in button.
    pub icon: Option<String>,
    /// Listed in RFC 9728 metadata (when the setting is on); yes unless `Some(false)`.
    pub show_in_resource_metadata: Option<bool>,
    /// Its signed tokens are trusted as token-exchange subjects (OpenID providers only).
    pub token_exchange: bool,
}

/// A change to a provider: each field given replaces the provider's.
#[derive(Default, Clone)]
pub struct SocialLoginChange {
    pub name: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
    pub sign_ups: Option<String>,
    pub trusted_emails: Option<bool>,
    pub enabled: Option<bool>,
    /// `Some("")` removes the icon.
    pub icon: Option<String>,
    pub show_in_resource_metadata: Option<bool>,
    pub token_exchange: Option<bool>,
}

fn parse_sign_ups(raw: &str) -> Result<SignUps, AppError> {
    match raw {
        "allow" => Ok(SignUps::Allow),
        "deny" => Ok(SignUps::Deny),
        other => Err(AppError::invalid_field(
            "sign_ups",
            format!("sign-ups `{other}`: expected allow or deny"),
        )),
    }
}

fn parse_icon(raw: &str) -> Result<Option<WebUrl>, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    // The pages' Content-Security-Policy loads images from this host and https only.
    match WebUrl::parse(raw) {
        Ok(url) if raw.starts_with("https://") => Ok(Some(url)),
        _ => Err(AppError::invalid_field(
            "icon",
            "the icon must be an https URL",
        )),
    }
}

fn seal_secret(master: &MasterKey, id: &AppId, secret: &str) -> Result<String, AppError> {
    if secret.is_empty() || secret.len() > 4096 || secret.chars().any(char::is_control) {
        return Err(AppError::invalid_field(
            "client_secret",
            "the client secret must be 1 to 4096 printable characters",
        ));
    }
    Ok(master.seal(secret.as_bytes(), &secret_context(id)))
}

async fn put_secret(store: &Store, id: &AppId, sealed: &str) -> Result<(), AppError> {
    let sql = "INSERT INTO social_login_secrets (provider_id, sealed_secret, updated_at) VALUES ($1, $2, $3) \
               ON CONFLICT (provider_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, updated_at = excluded.updated_at";
    on_db!(&store.db, pool => sqlx::query(sql).bind(id.as_str()).bind(sealed).bind(view_time(Utc::now())).execute(pool).await.map(drop))
        .map_err(|e| AppError::Internal(e.into()))
}

/// Changes a provider (its id, and so its callback, stays).
pub async fn update(
    store: &Store,
    master: &MasterKey,
    issuer: &str,
    id: &str,
    change: SocialLoginChange,
    metadata: &EventMetadata,
) -> Result<ProviderSummary, AppError> {
    let id = parse_id(id)?;
    let mut config = load(store, &id).await?.config;
    if let Some(name) = change.name.filter(|n| !n.trim().is_empty()) {
        config.name = name.trim().to_owned();
    }
    if let Some(client_id) = change.client_id.filter(|c| !c.trim().is_empty()) {
        config.client_id = client_id.trim().to_owned();
    }
    if let Some(scope) = change.scope {
        config.scopes = Scopes::parse(&scope)
            .map_err(|e| AppError::invalid_field("scope", format!("scope: {e}")))?;
        if config.identification == Identification::OpenId && !config.scopes.contains("openid") {
            return Err(AppError::invalid_field(
                "scope",
                "an OpenID provider's scope must include openid",
            ));
        }
    }
    if let Some(sign_ups) = change.sign_ups {
        config.sign_ups = parse_sign_ups(&sign_ups)?;
    }
    if let Some(trusted) = change.trusted_emails {
        config.trusted_emails = trusted;
    }
    if let Some(enabled) = change.enabled {
        config.enabled = enabled;
    }
    if let Some(icon) = change.icon {
        config.icon = parse_icon(&icon)?;
    }
    if let Some(listed) = change.show_in_resource_metadata {
        config.show_in_resource_metadata = listed;
    }
    if let Some(trusted) = change.token_exchange {
        config.token_exchange = trusted;
    }
    let sealed = change
        .client_secret
        .as_deref()
        .map(|secret| seal_secret(master, &id, secret))
        .transpose()?;
    store
        .social_logins
        .execute(id.as_str(), SocialLoginCommand::Update { config }, metadata)
        .await
        .map_err(|e| provider_error(&id, e))?;
    if let Some(sealed) = sealed {
        put_secret(store, &id, &sealed).await?;
    }
    Ok(ProviderSummary::of(&load(store, &id).await?, issuer))
}

impl std::fmt::Debug for SocialLoginInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocialLoginInput")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderSummary {
    pub id: String,
    pub name: String,
    pub redirect_uri: String,
    pub client_id: String,
    pub scope: String,
    pub issuer: Option<String>,
    pub authorization_uri: String,
    pub token_uri: String,
    pub userinfo_uri: Option<String>,
    /// How the person is identified: `{"kind": "open_id"}` (the ID token's `sub`) or
    /// `{"kind": "user_info", "property": P}`.
    #[schema(value_type = Object)]
    pub identification: Identification,
    /// `allow` or `deny`: whether unknown people get an account.
    #[schema(value_type = String, pattern = "^(allow|deny)$")]
    pub sign_ups: SignUps,
    pub trusted_emails: bool,
    pub enabled: bool,
    pub icon: Option<String>,
    pub show_in_resource_metadata: bool,
    /// Whether its signed tokens are trusted as token-exchange subjects (RFC 8693).
    pub token_exchange: bool,
}

/// `/login/social/{id}/callback` on this server.
pub fn redirect_uri(issuer: &str, id: &AppId) -> String {
    format!(
        "{}/login/social/{id}/callback",
        issuer.trim_end_matches('/')
    )
}

impl ProviderSummary {
    fn of(provider: &RegisteredProvider, issuer: &str) -> Self {
        let config = &provider.config;
        ProviderSummary {
            id: provider.id.to_string(),
            name: config.name.clone(),
            redirect_uri: redirect_uri(issuer, &provider.id),
            client_id: config.client_id.clone(),
            scope: config.scopes.to_string(),
            issuer: config.endpoints.issuer.clone(),
            authorization_uri: config.endpoints.authorization.as_str().to_owned(),
            token_uri: config.endpoints.token.as_str().to_owned(),
            userinfo_uri: config
                .endpoints
                .userinfo
                .as_ref()
                .map(|u| u.as_str().to_owned()),
            identification: config.identification.clone(),
            sign_ups: config.sign_ups,
            trusted_emails: config.trusted_emails,
            enabled: config.enabled,
            icon: config.icon.as_ref().map(|i| i.as_str().to_owned()),
            show_in_resource_metadata: config.show_in_resource_metadata,
            token_exchange: config.token_exchange,
        }
    }
}

fn provider_error(id: &AppId, error: AggregateError<SocialLoginError>) -> AppError {
    match error {
        AggregateError::UserError(SocialLoginError::Exists) => AppError::Conflict(format!(
            "a social login provider with id {id} exists or existed (ids are not reused): choose another name"
        )),
        AggregateError::UserError(SocialLoginError::NotFound) => {
            AppError::NotFound(format!("no social login provider is named `{id}`"))
        }
        AggregateError::UserError(SocialLoginError::Config(why)) => AppError::invalid(why),
        other => AppError::store(other),
    }
}

pub fn parse_id(raw: &str) -> Result<AppId, AppError> {
    AppId::parse(raw)
        .map_err(|_| AppError::NotFound(format!("no social login provider is named `{raw}`")))
}

pub async fn load(store: &Store, id: &AppId) -> Result<RegisteredProvider, AppError> {
    let provider: SocialLogin = store
        .social_logins
        .load(id.as_str())
        .await
        .map_err(|e| provider_error(id, e))?;
    provider
        .registered()
        .cloned()
        .ok_or_else(|| AppError::NotFound(format!("no social login provider is named `{id}`")))
}

fn url(field: &str, raw: &Option<String>) -> Result<Option<WebUrl>, AppError> {
    raw.as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| {
            WebUrl::parse(r).map_err(|e| AppError::invalid_field(field, format!("{field}: {e}")))
        })
        .transpose()
}

/// The endpoints and identification the input's preset describes.
async fn endpoints_of(
    client: &ProviderClient,
    input: &SocialLoginInput,
) -> Result<(ProviderEndpoints, Identification, &'static str), AppError> {
    let issuer = url("issuer", &input.issuer)?.or(url("base_url", &input.base_url)?);
    if let Some(issuer) = issuer {
        let issuer = issuer.as_str().trim_end_matches('/').to_owned();
        let document = WebUrl::parse(&format!("{issuer}/.well-known/openid-configuration"))
            .map_err(|e| AppError::invalid_field("issuer", format!("issuer: {e}")))?;
        let endpoints = client.discover(&document).await?;
        // OpenID Connect Discovery §4.3: the document names the issuer it was asked for.
        if endpoints.issuer.as_deref().map(|i| i.trim_end_matches('/')) != Some(issuer.as_str()) {
            return Err(AppError::Upstream(format!(
                "the discovery document at {issuer} names another issuer ({})",
                endpoints.issuer.as_deref().unwrap_or("none")
            )));
        }
        if endpoints.jwks.is_none() {
            return Err(AppError::Upstream(
                "the provider publishes no jwks_uri: its ID tokens could not be checked".into(),
            ));
        }
        return Ok((endpoints, Identification::OpenId, "openid email profile"));
    }
    let required = |field: &str, raw: &Option<String>| {
        url(field, raw)?.ok_or_else(|| {
            AppError::invalid_field(
                field,
                format!("`{field}` is required without an issuer or a base URL"),
            )
        })
    };
    let property = input
        .user_id_property
        .clone()
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| {
            AppError::invalid_field(
                "user_id_property",
                "`user_id_property` (the user-info property that holds the person's id) is required without an issuer or a base URL",
            )
        })?;
    Ok((
        ProviderEndpoints {
            authorization: required("authorize_url", &input.authorize_url)?,
            token: required("token_url", &input.token_url)?,
            revocation: None,
            userinfo: Some(required("api_endpoint", &input.api_endpoint)?),
            introspection: None,
            issuer: None,
            jwks: None,
        },
        Identification::UserInfo { property },
        "",
    ))
}

fn secret_context(id: &AppId) -> String {
    format!("social-login-secret:{id}")
}

pub async fn create(
    store: &Store,
    master: &MasterKey,
    client: &ProviderClient,
    issuer: &str,
    input: SocialLoginInput,
    metadata: &EventMetadata,
) -> Result<ProviderSummary, AppError> {
    let id = AppId::slug(&input.name)
        .map_err(|e| AppError::invalid_field("name", format!("name: {e}")))?;
    // The secret and the name are checked before the provider is called.
    seal_secret(master, &id, &input.client_secret)?;
    refuse_existing(store, &id).await?;
    let (endpoints, identification, default_scope) = endpoints_of(client, &input).await?;
    let scope = input
        .scope
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| default_scope.to_owned());
    let scopes = Scopes::parse(&scope)
        .map_err(|e| AppError::invalid_field("scope", format!("scope: {e}")))?;
    if identification == Identification::OpenId && !scopes.contains("openid") {
        return Err(AppError::invalid_field(
            "scope",
            "an OpenID provider's scope must include openid",
        ));
    }
    let sign_ups = parse_sign_ups(input.sign_ups.as_deref().unwrap_or("allow"))?;
    let icon = parse_icon(input.icon.as_deref().unwrap_or(""))?;
    let config = SocialLoginConfig {
        name: input.name.trim().to_owned(),
        endpoints,
        identification,
        client_id: input.client_id.trim().to_owned(),
        scopes,
        sign_ups,
        trusted_emails: input.trusted_emails,
        enabled: true,
        icon,
        show_in_resource_metadata: input.show_in_resource_metadata.unwrap_or(true),
        token_exchange: input.token_exchange,
    };
    let id = create_configured(store, master, config, &input.client_secret, metadata).await?;
    Ok(ProviderSummary::of(&load(store, &id).await?, issuer))
}

async fn refuse_existing(store: &Store, id: &AppId) -> Result<(), AppError> {
    let existing: SocialLogin = store
        .social_logins
        .load(id.as_str())
        .await
        .map_err(|e| provider_error(id, e))?;
    if existing != SocialLogin::default() {
        return Err(provider_error(
            id,
            AggregateError::UserError(SocialLoginError::Exists),
        ));
    }
    Ok(())
}

/// Registers a provider whose endpoints are known already (`import` brings them): no
/// discovery. Its id is the slug of its name, as always.
pub async fn create_configured(
    store: &Store,
    master: &MasterKey,
    config: SocialLoginConfig,
    client_secret: &str,
    metadata: &EventMetadata,
) -> Result<AppId, AppError> {
    let id = AppId::slug(&config.name)
        .map_err(|e| AppError::invalid_field("name", format!("name: {e}")))?;
    let sealed = seal_secret(master, &id, client_secret)?;
    refuse_existing(store, &id).await?;
    config.check().map_err(AppError::invalid)?;
    put_secret(store, &id, &sealed).await?;
    let command = SocialLoginCommand::Create {
        id: id.clone(),
        config,
        client_secret: crate::secrets::hash(client_secret),
    };
    store
        .social_logins
        .execute(id.as_str(), command, metadata)
        .await
        .map_err(|e| provider_error(&id, e))?;
    Ok(id)
}

/// The provider's client secret, from the vault (`export --with-secrets`).
pub async fn client_secret(
    store: &Store,
    master: &MasterKey,
    id: &str,
) -> Result<String, AppError> {
    secret(store, master, &parse_id(id)?).await
}

pub(super) async fn secret(
    store: &Store,
    master: &MasterKey,
    id: &AppId,
) -> Result<String, AppError> {
    let sql = "SELECT sealed_secret FROM social_login_secrets WHERE provider_id = $1";
    let sealed: Option<String> = on_db!(&store.db, pool => sqlx::query_scalar(sql).bind(id.as_str()).fetch_optional(pool).await)
        .map_err(|e| AppError::Internal(e.into()))?;
    let sealed = sealed
        .ok_or_else(|| AppError::Conflict(format!("the vault holds no client secret for {id}")))?;
    let raw = master
        .open(&sealed, &secret_context(id))
        .map_err(|e| AppError::Internal(e.into()))?;
    String::from_utf8(raw).map_err(|e| AppError::Internal(e.into()))
}

pub async fn show(store: &Store, issuer: &str, id: &str) -> Result<ProviderSummary, AppError> {
    let id = parse_id(id)?;
    Ok(ProviderSummary::of(&load(store, &id).await?, issuer))
}

/// An enabled provider's button on the sign-in page.
pub struct Button {
    pub id: String,
    pub name: String,
    pub icon: Option<String>,
}

/// The enabled providers, for the sign-in page (by id).
pub async fn enabled(store: &Store) -> Result<Vec<Button>, AppError> {
    let rows = authledger_projections::social_logins::SocialLoginsView::list(&store.db).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let config: SocialLoginConfig = serde_json::from_str(&row.config).ok()?;
            config.enabled.then(|| Button {
                id: row.provider_id,
                name: config.name,
                icon: config.icon.map(|i| i.as_str().to_owned()),
            })
        })
        .collect())
}

/// The issuers of the enabled OpenID providers shown in resource metadata, for RFC 9728.
pub async fn issuers(store: &Store) -> Result<Vec<String>, AppError> {
    let rows = authledger_projections::social_logins::SocialLoginsView::list(&store.db).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| serde_json::from_str::<SocialLoginConfig>(&row.config).ok())
        .filter(|config| config.enabled && config.show_in_resource_metadata)
        .filter_map(|config| config.endpoints.issuer)
        .collect())
}

pub async fn list(
    store: &Store,
) -> Result<Vec<authledger_projections::social_logins::SocialLoginRecord>, AppError> {
    let db = store.current_views().await?;
    Ok(authledger_projections::social_logins::SocialLoginsView::list(db).await?)
}

pub async fn delete(store: &Store, id: &str, metadata: &EventMetadata) -> Result<(), AppError> {
    let id = parse_id(id)?;
    store
        .social_logins
        .execute(id.as_str(), SocialLoginCommand::Delete, metadata)
        .await
        .map_err(|e| provider_error(&id, e))?;
    let sql = "DELETE FROM social_login_secrets WHERE provider_id = $1";
    on_db!(&store.db, pool => sqlx::query(sql).bind(id.as_str()).execute(pool).await.map(drop))
        .map_err(|e| AppError::Internal(e.into()))
}
