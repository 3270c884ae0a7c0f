//! `authledger export` and `import`: an installation's configuration as one JSON document,
//! to move it between stores (SQLite to PostgreSQL and back), keep it in version control, or
//! seed a test installation.
//!
//! What travels: the settings, clients (with their ids, which relying parties are configured
//! with), people (profile, roles, enabled or not), connected apps and social login providers
//! (their configuration), and, to be read, the signing keys' metadata. Secrets travel only
//! with `--with-secrets`, and then only inside a file sealed under a passphrase (`seal`):
//! client secret hashes (and the secret of a client signing with HS256), password hashes,
//! providers' client secrets. Without them an imported confidential client gets a new secret
//! (shown once), an imported person a password nobody knows until an operator sets one, and
//! connected apps and providers are not created (they cannot work without their secret).
//! Private signing keys never travel: each deployment has its own.
//!
//! An import is checked whole before anything is written (every client as `client create`
//! checks it, every person and setting likewise), then applied through the ordinary commands:
//! each change one event whose actor is the caller. Applying the same document twice changes
//! nothing the second time.

use std::collections::BTreeMap;

use authledger_domain::client::{ClientId, ClientStatus, RegistrationSource};
use authledger_domain::connected_app::{AppId, ConnectedAppConfig};
use authledger_domain::metadata::EventMetadata;
use authledger_domain::secret::SecretHash;
use authledger_domain::settings::Setting;
use authledger_domain::social_login::SocialLoginConfig;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::clients::{ClientInput, SecretSource};
use super::users::{ProfileInput, UserInput};
use crate::error::AppError;
use crate::master_key::MasterKey;
use crate::store::Store;

pub mod seal;

/// The document's format; an import refuses any other.
pub const FORMAT: &str = "authledger-export/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub format: String,
    /// When it was written (RFC 3339); informative.
    pub exported_at: String,
    /// Every setting by key, as `settings show` prints them.
    pub settings: Map<String, Value>,
    #[serde(default)]
    pub clients: Vec<ClientEntry>,
    #[serde(default)]
    pub users: Vec<UserEntry>,
    /// Informative: each deployment keeps its own keys, so `import` leaves them alone.
    #[serde(default)]
    pub signing_keys: Vec<Value>,
    /// Created by `import` only with their secrets (`secrets.connected_apps`).
    #[serde(default)]
    pub connected_apps: Vec<ProviderEntry>,
    /// Created by `import` only with their secrets (`secrets.social_logins`).
    #[serde(default)]
    pub social_logins: Vec<ProviderEntry>,
    /// Only in a sealed export (`--with-secrets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Secrets>,
}

/// What `--with-secrets` adds. Never written but sealed under a passphrase.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    /// By client id.
    #[serde(default)]
    pub clients: BTreeMap<String, ClientSecret>,
    /// By username: the argon2 PHC password hash.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
    /// By connected app id: its client secret at the provider.
    #[serde(default)]
    pub connected_apps: BTreeMap<String, String>,
    /// By social login provider id: its client secret at the provider.
    #[serde(default)]
    pub social_logins: BTreeMap<String, String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSecret {
    /// SHA-256 of the secret, hex: what the store keeps.
    pub secret_hash: String,
    /// The secret itself, for a client whose ID tokens are signed with it (HS256) only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    pub client_id: String,
    /// `active` or `disabled`.
    pub status: String,
    /// The client as `client create` and `POST /admin/api/clients` take it.
    pub metadata: ClientInput,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub username: String,
    /// `active` or `disabled`.
    pub status: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub profile: ProfileInput,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEntry {
    pub id: String,
    pub name: String,
    pub status: String,
    /// The provider's configuration (endpoints, client id, scope); never its secret.
    pub config: Value,
}

/// The installation's configuration now; with `secrets` (the master key opens the sealed
/// ones), its secrets too.
pub async fn export(store: &Store, secrets: Option<&MasterKey>) -> Result<Document, AppError> {
    let settings = match serde_json::to_value(store.settings_values().await?) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let mut clients = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = super::clients::list(store, after.as_deref(), super::MAX_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.client_id.clone());
        let full = page.len() as i64 == super::MAX_PAGE;
        clients.extend(
            page.into_iter()
                .filter(|c| c.status != ClientStatus::Deleted.as_str())
                .map(|c| ClientEntry {
                    metadata: ClientInput::from_metadata(&c.metadata),
                    client_id: c.client_id,
                    status: c.status,
                }),
        );
        if !full {
            break;
        }
    }
    let mut users = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = super::users::list(store, after.as_deref(), super::MAX_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.username.clone());
        let full = page.len() as i64 == super::MAX_PAGE;
        users.extend(page.into_iter().map(|u| {
            let profile = &u.profile;
            UserEntry {
                username: u.username.clone(),
                status: u.status.clone(),
                roles: u.roles.iter().map(|r| r.as_str().to_owned()).collect(),
                profile: ProfileInput {
                    email: profile.email.as_ref().map(|e| e.as_str().to_owned()),
                    name: profile.name.clone(),
                    given_name: profile.given_name.clone(),
                    family_name: profile.family_name.clone(),
                    picture: profile.picture.as_ref().map(|p| p.as_str().to_owned()),
                },
            }
        }));
        if !full {
            break;
        }
    }
    let keys = store
        .signing_keys
        .load(authledger_domain::signing_keys::SIGNING_KEYS_ID)
        .await
        .map_err(AppError::store)?;
    let signing_keys = keys.keys().iter().map(crate::signing::summary).collect();
    let provider = |id: String, name: String, status: String, config: &str| ProviderEntry {
        id,
        name,
        status,
        config: serde_json::from_str(config).unwrap_or(Value::Null),
    };
    let connected_apps: Vec<ProviderEntry> = crate::connected_apps::list(store)
        .await?
        .into_iter()
        .filter(|a| a.status != "deleted")
        .map(|a| provider(a.app_id, a.name, a.status, &a.config))
        .collect();
    let social_logins: Vec<ProviderEntry> = crate::social_login::list(store)
        .await?
        .into_iter()
        .filter(|p| p.status != "deleted")
        .map(|p| provider(p.provider_id, p.name, p.status, &p.config))
        .collect();
    let secrets = match secrets {
        None => None,
        Some(master) => Some(
            secrets_of(
                store,
                master,
                &clients,
                &users,
                &connected_apps,
                &social_logins,
            )
            .await?,
        ),
    };
    Ok(Document {
        format: FORMAT.into(),
        exported_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        settings,
        clients,
        users,
        signing_keys,
        connected_apps,
        social_logins,
        secrets,
    })
}

async fn secrets_of(
    store: &Store,
    master: &MasterKey,
    clients: &[ClientEntry],
    users: &[UserEntry],
    connected_apps: &[ProviderEntry],
    social_logins: &[ProviderEntry],
) -> Result<Secrets, AppError> {
    let mut secrets = Secrets::default();
    for entry in clients {
        let client = store
            .clients
            .load(&entry.client_id)
            .await
            .map_err(|e| crate::error::client_error(&entry.client_id, e))?;
        let Some(client) = client.registered() else {
            continue;
        };
        let Some(hash) = &client.secret_hash else {
            continue;
        };
        let secret = match super::clients::signs_with_secret(&client.metadata) {
            true => Some(
                String::from_utf8(
                    crate::oauth::id_token::hs256_secret(store, master, client).await?,
                )
                .map_err(|e| AppError::Internal(e.into()))?,
            ),
            false => None,
        };
        secrets.clients.insert(
            entry.client_id.clone(),
            ClientSecret {
                secret_hash: hash.as_hex().to_owned(),
                secret,
            },
        );
    }
    for entry in users {
        let user = store
            .users
            .load(&entry.username)
            .await
            .map_err(AppError::store)?;
        if let Some(user) = user.registered() {
            secrets.users.insert(
                entry.username.clone(),
                user.password_hash.as_str().to_owned(),
            );
        }
    }
    for entry in connected_apps {
        let secret = crate::connected_apps::client_secret(store, master, &entry.id).await?;
        secrets.connected_apps.insert(entry.id.clone(), secret);
    }
    for entry in social_logins {
        let secret = crate::social_login::client_secret(store, master, &entry.id).await?;
        secrets.social_logins.insert(entry.id.clone(), secret);
    }
    Ok(secrets)
}

/// What an import did (or, dry, would do) with one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Changed,
    Unchanged,
    /// Not imported; `detail` says why.
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub outcome: Outcome,
    /// `setting`, `client`, `user`, `signing_keys`, `connected_app`, `social_login`.
    pub kind: &'static str,
    pub id: String,
    /// What changed, or why it was skipped.
    pub detail: String,
    /// A new client secret, to be shown this once and never kept.
    #[serde(skip)]
    pub client_secret: Option<String>,
}

impl Line {
    fn new(outcome: Outcome, kind: &'static str, id: &str, detail: impl Into<String>) -> Line {
        Line {
            outcome,
            kind,
            id: id.to_owned(),
            detail: detail.into(),
            client_secret: None,
        }
    }
}

/// The document, checked: every value parsed as the ordinary commands parse it.
struct Checked {
    settings: Vec<(String, Value, Setting)>,
    clients: Vec<(ClientId, bool, authledger_domain::client::ClientMetadata)>,
    users: Vec<UserEntry>,
    connected_apps: Vec<(String, ConnectedAppConfig)>,
    social_logins: Vec<(String, SocialLoginConfig)>,
}

/// A provider's configuration as the domain reads and checks it, under the id its name makes.
fn provider_config<T: serde::de::DeserializeOwned>(
    kind: &str,
    entry: &ProviderEntry,
    name_of: impl Fn(&T) -> &str,
    check: impl Fn(&T) -> Result<(), String>,
) -> Result<(String, T), AppError> {
    let refused = |why: String| {
        AppError::invalid_field("config", format!("{kind} {}: config: {why}", entry.id))
    };
    let config: T =
        serde_json::from_value(entry.config.clone()).map_err(|e| refused(e.to_string()))?;
    check(&config).map_err(refused)?;
    let slug = AppId::slug(name_of(&config)).map_err(|e| refused(e.to_string()))?;
    if slug.as_str() != entry.id {
        return Err(refused(format!(
            "its name makes the id `{slug}`, not `{}`",
            entry.id
        )));
    }
    Ok((entry.id.clone(), config))
}

fn status_is_disabled(kind: &str, id: &str, status: &str) -> Result<bool, AppError> {
    match status {
        "active" => Ok(false),
        "disabled" => Ok(true),
        other => Err(AppError::invalid_field(
            "status",
            format!("{kind} {id}: status `{other}` is neither `active` nor `disabled`"),
        )),
    }
}

fn check(document: &Document) -> Result<Checked, AppError> {
    if document.format != FORMAT {
        return Err(AppError::invalid_field(
            "format",
            format!(
                "format `{}` is not one this version reads ({FORMAT})",
                document.format
            ),
        ));
    }
    let settings = document
        .settings
        .iter()
        .map(|(key, value)| {
            super::settings::parse(key, value).map(|s| (key.clone(), value.clone(), s))
        })
        .collect::<Result<_, _>>()?;
    let mut clients = Vec::new();
    for entry in &document.clients {
        let id = ClientId::parse(&entry.client_id).map_err(|e| {
            AppError::invalid_field("client_id", format!("client {}: {e}", entry.client_id))
        })?;
        let disabled = status_is_disabled("client", &entry.client_id, &entry.status)?;
        let metadata = entry.metadata.clone().parse().map_err(|invalid| {
            AppError::invalid_field(
                invalid.field,
                format!("client {}: {}", entry.client_id, invalid.message()),
            )
        })?;
        clients.push((id, disabled, metadata));
    }
    for entry in &document.users {
        let at = |e: AppError| match e {
            AppError::Invalid { field, message } => AppError::Invalid {
                field,
                message: format!("user {}: {message}", entry.username),
            },
            other => other,
        };
        super::users::parse_username(&entry.username).map_err(at)?;
        super::users::parse_roles(&entry.roles).map_err(at)?;
        super::users::parse_profile(entry.profile.clone()).map_err(at)?;
        status_is_disabled("user", &entry.username, &entry.status)?;
    }
    if let Some(secrets) = &document.secrets {
        for (id, secret) in &secrets.clients {
            SecretHash::from_hex(&secret.secret_hash).map_err(|_| {
                AppError::invalid_field(
                    "secret_hash",
                    format!("client {id}: secret_hash: not a SHA-256 in hex"),
                )
            })?;
        }
    }
    let connected_apps = document
        .connected_apps
        .iter()
        .map(|entry| {
            provider_config(
                "connected app",
                entry,
                |c: &ConnectedAppConfig| &c.name,
                |c| c.check().map_err(|e| e.to_string()),
            )
        })
        .collect::<Result<_, _>>()?;
    let social_logins = document
        .social_logins
        .iter()
        .map(|entry| {
            provider_config(
                "social login",
                entry,
                |c: &SocialLoginConfig| &c.name,
                |c| c.check().map_err(|e| e.to_string()),
            )
        })
        .collect::<Result<_, _>>()?;
    Ok(Checked {
        settings,
        clients,
        users: document.users.clone(),
        connected_apps,
        social_logins,
    })
}

/// Applies `document` (or, with `dry_run`, only says what it would do). Nothing is written
/// unless the whole document checks.
pub async fn import(
    store: &Store,
    master: Option<&MasterKey>,
    document: &Document,
    dry_run: bool,
    metadata: &EventMetadata,
) -> Result<Vec<Line>, AppError> {
    let checked = check(document)?;
    let mut report = Vec::new();

    let current = serde_json::to_value(store.settings_values().await?).unwrap_or_default();
    let mut changed = Vec::new();
    for (key, value, setting) in checked.settings {
        if current.get(&key) == Some(&value) {
            report.push(Line::new(Outcome::Unchanged, "setting", &key, ""));
        } else {
            report.push(Line::new(
                Outcome::Changed,
                "setting",
                &key,
                value.to_string(),
            ));
            changed.push(setting);
        }
    }
    if !dry_run {
        super::settings::change(store, changed, metadata).await?;
    }

    let secrets = document.secrets.clone().unwrap_or_default();
    for (id, disabled, client_metadata) in checked.clients {
        let kept = secrets.clients.get(id.as_str());
        let line = import_client(
            store,
            master,
            id,
            disabled,
            client_metadata,
            kept,
            dry_run,
            metadata,
        );
        report.push(line.await?);
    }
    for entry in checked.users {
        let hash = secrets.users.get(&entry.username).map(String::as_str);
        report.push(import_user(store, entry, hash, dry_run, metadata).await?);
    }

    if !document.signing_keys.is_empty() {
        report.push(Line::new(
            Outcome::Skipped,
            "signing_keys",
            "",
            "each deployment keeps its own keys (`authledger keys rotate` makes new ones)",
        ));
    }
    let existing: Vec<String> = crate::connected_apps::list(store)
        .await?
        .into_iter()
        .filter(|a| a.status != "deleted")
        .map(|a| a.app_id)
        .collect();
    let (lines, to_create) = plan_providers(
        ("connected_app", "connected-app"),
        checked.connected_apps,
        &existing,
        &secrets.connected_apps,
    );
    report.extend(lines);
    for (config, secret) in to_create.into_iter().filter(|_| !dry_run) {
        let master = master_for(master)?;
        crate::connected_apps::create_configured(store, master, config, &secret, metadata).await?;
    }
    let existing: Vec<String> = crate::social_login::list(store)
        .await?
        .into_iter()
        .filter(|p| p.status != "deleted")
        .map(|p| p.provider_id)
        .collect();
    let (lines, to_create) = plan_providers(
        ("social_login", "social-login"),
        checked.social_logins,
        &existing,
        &secrets.social_logins,
    );
    report.extend(lines);
    for (config, secret) in to_create.into_iter().filter(|_| !dry_run) {
        let master = master_for(master)?;
        crate::social_login::create_configured(store, master, config, &secret, metadata).await?;
    }
    Ok(report)
}

fn master_for(master: Option<&MasterKey>) -> Result<&MasterKey, AppError> {
    master.ok_or_else(|| AppError::invalid("a master key is needed to seal the imported secrets"))
}

/// What becomes of each connected app or provider (`kind`, and the CLI `command` that makes
/// one): one that exists is left alone (not compared), one without its secret cannot be
/// created; the rest are returned with their secrets, to create.
fn plan_providers<C>(
    (kind, command): (&'static str, &str),
    entries: Vec<(String, C)>,
    existing: &[String],
    secrets: &BTreeMap<String, String>,
) -> (Vec<Line>, Vec<(C, String)>) {
    let mut lines = Vec::new();
    let mut to_create = Vec::new();
    for (id, config) in entries {
        if existing.contains(&id) {
            lines.push(Line::new(
                Outcome::Unchanged,
                kind,
                &id,
                "exists; not compared",
            ));
        } else if let Some(secret) = secrets.get(&id) {
            lines.push(Line::new(Outcome::Created, kind, &id, ""));
            to_create.push((config, secret.clone()));
        } else {
            lines.push(Line::new(
                Outcome::Skipped,
                kind,
                &id,
                format!(
                    "needs its client secret: export --with-secrets, or `authledger {command} create`"
                ),
            ));
        }
    }
    (lines, to_create)
}

#[allow(clippy::too_many_arguments)]
async fn import_client(
    store: &Store,
    master: Option<&MasterKey>,
    id: ClientId,
    disabled: bool,
    client_metadata: authledger_domain::client::ClientMetadata,
    kept: Option<&ClientSecret>,
    dry_run: bool,
    metadata: &EventMetadata,
) -> Result<Line, AppError> {
    let existing = store
        .clients
        .load(id.as_str())
        .await
        .map_err(|e| crate::error::client_error(id.as_str(), e))?;
    let Some(current) = existing.registered().cloned() else {
        let mut line = Line::new(
            Outcome::Created,
            "client",
            id.as_str(),
            &client_metadata.name,
        );
        if !dry_run {
            let source = match kept {
                None => SecretSource::Mint,
                Some(kept) => SecretSource::Kept {
                    hash: SecretHash::from_hex(&kept.secret_hash).map_err(|_| {
                        AppError::invalid_field("secret_hash", "not a SHA-256 in hex")
                    })?,
                    secret: kept.secret.clone(),
                },
            };
            let created = super::clients::register_as(
                store,
                id.clone(),
                client_metadata,
                RegistrationSource::Admin,
                None,
                source,
                metadata,
                master,
            )
            .await?;
            line.client_secret = created.client_secret.map(|s| s.reveal().to_owned());
            if disabled {
                super::clients::disable(
                    store,
                    id.as_str(),
                    Some("imported disabled".into()),
                    metadata,
                )
                .await?;
            }
        }
        return Ok(line);
    };
    if current.status == ClientStatus::Deleted {
        return Ok(Line::new(
            Outcome::Skipped,
            "client",
            id.as_str(),
            "a client with this id was deleted here; ids are not reused",
        ));
    }
    let mut changes = Vec::new();
    if current.metadata != client_metadata {
        changes.push("metadata");
        if !dry_run {
            super::clients::replace(store, id.as_str(), client_metadata, metadata).await?;
        }
    }
    let is_disabled = current.status == ClientStatus::Disabled;
    if is_disabled != disabled {
        changes.push(if disabled { "disabled" } else { "enabled" });
        if !dry_run {
            if disabled {
                super::clients::disable(store, id.as_str(), Some("import".into()), metadata)
                    .await?;
            } else {
                super::clients::enable(store, id.as_str(), metadata).await?;
            }
        }
    }
    Ok(outcome_of("client", id.as_str(), &changes))
}

async fn import_user(
    store: &Store,
    entry: UserEntry,
    password_hash: Option<&str>,
    dry_run: bool,
    metadata: &EventMetadata,
) -> Result<Line, AppError> {
    let disabled = entry.status == "disabled";
    let current = authledger_projections::users::UsersView::get(&store.db, &entry.username).await?;
    let Some(current) = current else {
        let line = Line::new(
            Outcome::Created,
            "user",
            &entry.username,
            match password_hash {
                Some(_) => "with the password they had",
                None => "no password yet: set one with `authledger user set-password`",
            },
        );
        if !dry_run {
            let profile = entry.profile;
            let input = UserInput {
                username: entry.username.clone(),
                // Without the hash, a password nobody knows: the account must not be usable
                // before an operator sets one.
                password: crate::secrets::mint("unset_").reveal().to_owned(),
                email: profile.email,
                name: profile.name,
                given_name: profile.given_name,
                family_name: profile.family_name,
                picture: profile.picture,
                roles: entry.roles,
            };
            match password_hash {
                Some(hash) => super::users::import(store, input, hash, metadata).await?,
                None => super::users::create(store, input, metadata).await?,
            };
            if disabled {
                super::users::disable(store, &entry.username, metadata).await?;
            }
        }
        return Ok(line);
    };
    let mut changes = Vec::new();
    let profile = super::users::parse_profile(entry.profile.clone())?;
    if current.profile != profile {
        changes.push("profile");
        if !dry_run {
            super::users::update_profile(store, &entry.username, entry.profile, metadata).await?;
        }
    }
    let roles = super::users::parse_roles(&entry.roles)?;
    if current.roles != roles {
        changes.push("roles");
        if !dry_run {
            super::users::set_roles(store, &entry.username, &entry.roles, metadata).await?;
        }
    }
    if (current.status == "disabled") != disabled {
        changes.push(if disabled { "disabled" } else { "enabled" });
        if !dry_run {
            if disabled {
                super::users::disable(store, &entry.username, metadata).await?;
            } else {
                super::users::enable(store, &entry.username, metadata).await?;
            }
        }
    }
    Ok(outcome_of("user", &entry.username, &changes))
}

fn outcome_of(kind: &'static str, id: &str, changes: &[&str]) -> Line {
    if changes.is_empty() {
        Line::new(Outcome::Unchanged, kind, id, "")
    } else {
        Line::new(Outcome::Changed, kind, id, changes.join(", "))
    }
}
