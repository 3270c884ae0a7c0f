//! Managing clients, one function per operation the CLI and the admin API share: register,
//! replace, rotate the secret, update, disable, enable, delete, show, find and list. What an
//! operator writes is checked first, in `input.rs`.

mod input;

use authledger_domain::client::{
    ClientCommand, ClientId, ClientMetadata, IdTokenAlg, RegistrationSource,
};
use authledger_domain::metadata::EventMetadata;
use authledger_projections::clients::{ClientSummary, ClientsView};

use crate::error::{client_error, AppError};
use crate::master_key::MasterKey;
use crate::oauth::id_token::store_hs256_secret;
use crate::secrets::{self, MintedSecret, CLIENT_SECRET_PREFIX};
use crate::store::Store;
use authledger_domain::secret::SecretHash;

pub use input::{ClientInput, InvalidClientInput, DEFAULT_SCOPES};

/// A client just registered. Built from the command, not read back from a view: once the
/// event is committed the secret must reach its owner even if the views lag.
#[derive(Debug)]
pub struct NewClient {
    pub client_id: ClientId,
    pub metadata: ClientMetadata,
    /// `None` for a public client. Shown once, then gone.
    pub client_secret: Option<MintedSecret>,
}

impl NewClient {
    /// The registration as JSON, secret included: for the one answer that reveals it.
    pub fn to_json(&self) -> serde_json::Value {
        let mut json = serde_json::json!({
            "client_id": self.client_id.as_str(),
            "client_secret": self.client_secret.as_ref().map(|s| s.reveal()),
        });
        if let serde_json::Value::Object(fields) =
            serde_json::to_value(&self.metadata).expect("client metadata serialises")
        {
            json.as_object_mut().expect("an object").extend(fields);
        }
        json
    }
}

/// Whether the client's ID tokens are signed with its secret, which must then be kept sealed
/// under the master key.
pub fn signs_with_secret(metadata: &ClientMetadata) -> bool {
    metadata.id_token_signed_response_alg == Some(IdTokenAlg::HS256)
}

fn master_needed(master: Option<&MasterKey>) -> Result<&MasterKey, AppError> {
    master.ok_or_else(|| {
        AppError::Internal(anyhow::anyhow!(
            "HS256 clients need the master key to keep their secret sealed"
        ))
    })
}

/// Registers a client, minting its id and (for a confidential client) its secret. `master`
/// is needed only for clients whose ID tokens are HS256-signed with their secret.
pub async fn register(
    store: &Store,
    input: ClientInput,
    via: RegistrationSource,
    metadata: &EventMetadata,
    master: Option<&MasterKey>,
) -> Result<NewClient, AppError> {
    register_parsed(store, input.parse()?, via, None, metadata, master).await
}

/// Registers already-parsed metadata; `registration_access_token_hash` is set for dynamically
/// registered clients (RFC 7592).
pub async fn register_parsed(
    store: &Store,
    client_metadata: ClientMetadata,
    via: RegistrationSource,
    registration_access_token_hash: Option<SecretHash>,
    metadata: &EventMetadata,
    master: Option<&MasterKey>,
) -> Result<NewClient, AppError> {
    let client_id =
        ClientId::parse(&uuid::Uuid::new_v4().to_string()).expect("a UUID is a valid client_id");
    register_as(
        store,
        client_id,
        client_metadata,
        via,
        registration_access_token_hash,
        SecretSource::Mint,
        metadata,
        master,
    )
    .await
}

/// Where a new confidential client's secret comes from.
pub enum SecretSource {
    /// A new one, returned to be shown once.
    Mint,
    /// The one it had in another store (`import --with-secrets`): its hash, and the secret
    /// itself for a client that signs ID tokens with it (HS256), which the vault must hold.
    Kept {
        hash: SecretHash,
        secret: Option<String>,
    },
}

/// Registers a client under an id chosen by the caller (`import` keeps the exported ids,
/// which relying parties are configured with); refused if the id is taken.
#[allow(clippy::too_many_arguments)] // each is one fact of the ClientRegistered event
pub async fn register_as(
    store: &Store,
    client_id: ClientId,
    client_metadata: ClientMetadata,
    via: RegistrationSource,
    registration_access_token_hash: Option<SecretHash>,
    source: SecretSource,
    metadata: &EventMetadata,
    master: Option<&MasterKey>,
) -> Result<NewClient, AppError> {
    let confidential = !client_metadata.token_endpoint_auth_method.is_public();
    let (secret, secret_hash) = match source {
        _ if !confidential => (None, None),
        SecretSource::Mint => {
            let secret = secrets::mint(CLIENT_SECRET_PREFIX);
            let hash = secret.hash().clone();
            (Some(secret), Some(hash))
        }
        SecretSource::Kept { hash, secret } => {
            let kept = secret.map(secrets::MintedSecret::kept);
            if kept.as_ref().is_some_and(|k| !k.hash().matches(&hash)) {
                return Err(AppError::invalid_field(
                    "client_secret",
                    format!("client {client_id}: the secret does not match its hash"),
                ));
            }
            // The client is not given its secret again: it has it.
            if let (true, Some(kept)) = (signs_with_secret(&client_metadata), &kept) {
                store_hs256_secret(store, master_needed(master)?, client_id.as_str(), kept).await?;
            } else if signs_with_secret(&client_metadata) {
                return Err(AppError::invalid_field(
                    "client_secret",
                    format!("client {client_id} signs ID tokens with its secret (HS256): the secret itself is needed"),
                ));
            }
            (None, Some(hash))
        }
    };
    // Sealed before the client exists, so no HS256 client is ever without its secret.
    if let (true, Some(secret)) = (signs_with_secret(&client_metadata), &secret) {
        store_hs256_secret(store, master_needed(master)?, client_id.as_str(), secret).await?;
    }
    let command = ClientCommand::Register {
        client_id: client_id.clone(),
        metadata: client_metadata.clone(),
        secret_hash,
        registered_via: via,
        registration_access_token_hash,
    };
    execute(store, client_id.as_str(), command, metadata).await?;
    Ok(NewClient {
        client_id,
        metadata: client_metadata,
        client_secret: secret,
    })
}

/// Replaces a client's metadata wholesale (RFC 7592 §2.2).
pub async fn replace(
    store: &Store,
    client_id: &str,
    client_metadata: ClientMetadata,
    metadata: &EventMetadata,
) -> Result<(), AppError> {
    execute(
        store,
        client_id,
        ClientCommand::Update {
            metadata: client_metadata,
        },
        metadata,
    )
    .await
}

/// Replaces the secret; the new one is returned to be shown once.
pub async fn rotate_secret(
    store: &Store,
    client_id: &str,
    revoke_tokens: bool,
    metadata: &EventMetadata,
    master: Option<&MasterKey>,
) -> Result<MintedSecret, AppError> {
    let secret = secrets::mint(CLIENT_SECRET_PREFIX);
    let current = store
        .clients
        .load(client_id)
        .await
        .map_err(|e| client_error(client_id, e))?;
    if current
        .registered()
        .is_some_and(|c| signs_with_secret(&c.metadata))
    {
        store_hs256_secret(store, master_needed(master)?, client_id, &secret).await?;
    }
    let command = ClientCommand::RotateSecret {
        secret_hash: secret.hash().clone(),
        revoke_tokens,
    };
    execute(store, client_id, command, metadata).await?;
    crate::cascade::run(store).await?;
    Ok(secret)
}

/// Applies a JSON patch of metadata fields (names as in `client show`'s `metadata`) to the
/// client. Unknown fields and invalid values are refused, naming the field.
pub async fn update(
    store: &Store,
    client_id: &str,
    patch: serde_json::Map<String, serde_json::Value>,
    metadata: &EventMetadata,
) -> Result<ClientSummary, AppError> {
    let current = show(store, client_id).await?;
    let mut merged = serde_json::to_value(&current.metadata).expect("client metadata serialises");
    for (field, value) in patch {
        let object = merged.as_object_mut().expect("metadata is an object");
        if !object.contains_key(&field) {
            return Err(AppError::invalid_field(
                &field,
                format!("{field}: not a client metadata field"),
            ));
        }
        object.insert(field.clone(), value);
        if let Err(e) = serde_json::from_value::<ClientMetadata>(merged.clone()) {
            return Err(AppError::invalid_field(&field, format!("{field}: {e}")));
        }
    }
    let updated: ClientMetadata = serde_json::from_value(merged).expect("checked field by field");
    execute(
        store,
        client_id,
        ClientCommand::Update { metadata: updated },
        metadata,
    )
    .await?;
    show(store, client_id).await
}

pub async fn disable(
    store: &Store,
    client_id: &str,
    reason: Option<String>,
    metadata: &EventMetadata,
) -> Result<ClientSummary, AppError> {
    execute(
        store,
        client_id,
        ClientCommand::Disable { reason },
        metadata,
    )
    .await?;
    crate::cascade::run(store).await?;
    show(store, client_id).await
}

pub async fn enable(
    store: &Store,
    client_id: &str,
    metadata: &EventMetadata,
) -> Result<ClientSummary, AppError> {
    execute(store, client_id, ClientCommand::Enable, metadata).await?;
    show(store, client_id).await
}

pub async fn delete(
    store: &Store,
    client_id: &str,
    metadata: &EventMetadata,
) -> Result<ClientSummary, AppError> {
    execute(store, client_id, ClientCommand::Delete, metadata).await?;
    crate::cascade::run(store).await?;
    show(store, client_id).await
}

pub async fn show(store: &Store, client_id: &str) -> Result<ClientSummary, AppError> {
    ClientsView::get(&store.db, client_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("client {client_id}: client is not registered")))
}

/// The client whose id is `id_or_name`, else the one client whose name it is (any case).
/// Names need not be unique: a name two clients share is refused with their ids.
pub async fn find(store: &Store, id_or_name: &str) -> Result<ClientSummary, AppError> {
    if let Some(client) = ClientsView::get(&store.db, id_or_name).await? {
        return Ok(client);
    }
    let wanted = id_or_name.trim().to_lowercase();
    let named: Vec<ClientSummary> = ClientsView::by_name(&store.db, &wanted, None, super::MAX_PAGE)
        .await?
        .into_iter()
        .filter(|c| c.name.to_lowercase() == wanted)
        .collect();
    match named.as_slice() {
        [] => Err(AppError::NotFound(format!(
            "client {id_or_name}: no client has that id or name"
        ))),
        [one] => Ok(one.clone()),
        many => Err(AppError::Conflict(format!(
            "{} clients are named `{id_or_name}`: {}; name one by its id",
            many.len(),
            many.iter()
                .map(|c| c.client_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

pub async fn list(
    store: &Store,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ClientSummary>, AppError> {
    Ok(ClientsView::list(&store.db, after, limit.clamp(1, super::MAX_PAGE)).await?)
}

async fn execute(
    store: &Store,
    client_id: &str,
    command: ClientCommand,
    metadata: &EventMetadata,
) -> Result<(), AppError> {
    store
        .clients
        .execute(client_id, command, metadata)
        .await
        .map(drop)
        .map_err(|e| client_error(client_id, e))
}
