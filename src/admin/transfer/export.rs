//! Writing the document: the installation's configuration as it is now.

use authledger_domain::client::ClientStatus;
use serde_json::{Map, Value};

use super::{ClientEntry, ClientSecret, Document, ProviderEntry, Secrets, UserEntry, FORMAT};
use crate::admin::clients::ClientInput;
use crate::admin::users::ProfileInput;
use crate::error::AppError;
use crate::master_key::MasterKey;
use crate::store::Store;

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
        let page =
            crate::admin::clients::list(store, after.as_deref(), crate::admin::MAX_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.client_id.clone());
        let full = page.len() as i64 == crate::admin::MAX_PAGE;
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
        let page =
            crate::admin::users::list(store, after.as_deref(), crate::admin::MAX_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.username.clone());
        let full = page.len() as i64 == crate::admin::MAX_PAGE;
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
        let secret = match crate::admin::clients::signs_with_secret(&client.metadata) {
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
        let Some(user) = user.registered() else {
            continue;
        };
        // A hash whose row is gone (the person was erased) travels as no hash at all.
        if let Some(hash) = crate::credentials::hash_of(&store.db, &user.password)
            .await
            .map_err(|e| AppError::Internal(e.into()))?
        {
            secrets
                .users
                .insert(entry.username.clone(), hash.as_str().to_owned());
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
