//! Applying a document: checked whole, then the ordinary commands, one event per change.

use std::collections::BTreeMap;

use authledger_domain::client::{ClientId, ClientStatus, RegistrationSource};
use authledger_domain::connected_app::{AppId, ConnectedAppConfig};
use authledger_domain::metadata::EventMetadata;
use authledger_domain::secret::SecretHash;
use authledger_domain::settings::Setting;
use authledger_domain::social_login::SocialLoginConfig;
use serde::Serialize;
use serde_json::Value;

use super::{ClientSecret, Document, ProviderEntry, UserEntry, FORMAT};
use crate::admin::clients::SecretSource;
use crate::admin::users::UserInput;
use crate::error::AppError;
use crate::master_key::MasterKey;
use crate::store::Store;

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
    #[serde(skip_serializing_if = "Option::is_none")]
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
            crate::admin::settings::parse(key, value).map(|s| (key.clone(), value.clone(), s))
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
        crate::admin::users::parse_username(&entry.username).map_err(at)?;
        crate::admin::users::parse_roles(&entry.roles).map_err(at)?;
        crate::admin::users::parse_profile(entry.profile.clone()).map_err(at)?;
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
        crate::admin::settings::change(store, changed, metadata).await?;
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
            let created = crate::admin::clients::register_as(
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
                crate::admin::clients::disable(
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
            crate::admin::clients::replace(store, id.as_str(), client_metadata, metadata).await?;
        }
    }
    let is_disabled = current.status == ClientStatus::Disabled;
    if is_disabled != disabled {
        changes.push(if disabled { "disabled" } else { "enabled" });
        if !dry_run {
            if disabled {
                crate::admin::clients::disable(store, id.as_str(), Some("import".into()), metadata)
                    .await?;
            } else {
                crate::admin::clients::enable(store, id.as_str(), metadata).await?;
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
                Some(hash) => crate::admin::users::import(store, input, hash, metadata).await?,
                None => crate::admin::users::create(store, input, metadata).await?,
            };
            if disabled {
                crate::admin::users::disable(store, &entry.username, metadata).await?;
            }
        }
        return Ok(line);
    };
    let mut changes = Vec::new();
    let profile = crate::admin::users::parse_profile(entry.profile.clone())?;
    if current.profile != profile {
        changes.push("profile");
        if !dry_run {
            crate::admin::users::update_profile(store, &entry.username, entry.profile, metadata)
                .await?;
        }
    }
    let roles = crate::admin::users::parse_roles(&entry.roles)?;
    if current.roles != roles {
        changes.push("roles");
        if !dry_run {
            crate::admin::users::set_roles(store, &entry.username, &entry.roles, metadata).await?;
        }
    }
    if (current.status == "disabled") != disabled {
        changes.push(if disabled { "disabled" } else { "enabled" });
        if !dry_run {
            if disabled {
                crate::admin::users::disable(store, &entry.username, metadata).await?;
            } else {
                crate::admin::users::enable(store, &entry.username, metadata).await?;
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
