use std::collections::BTreeSet;

use authledger_domain::client::{
    ClientCommand, ClientId, ClientMetadata, IdTokenAlg, RegistrationSource,
};
use authledger_domain::metadata::EventMetadata;
use authledger_domain::oauth::{
    GrantType, RedirectUri, ResponseType, Scopes, TokenEndpointAuthMethod, WebUrl,
};
use authledger_projections::clients::{ClientSummary, ClientsView};

use crate::error::{client_error, AppError};
use crate::master_key::MasterKey;
use crate::oauth::id_token::store_hs256_secret;
use crate::secrets::{self, MintedSecret, CLIENT_SECRET_PREFIX};
use crate::store::Store;
use authledger_domain::secret::SecretHash;

/// Scopes a client gets when registered without `--scope`.
pub const DEFAULT_SCOPES: &str = "openid profile email";

/// A client registration as an operator writes it: the CLI's `client create` flags and the
/// admin API's JSON body are this one type, checked by one [`ClientInput::parse`]. (Dynamic
/// registration speaks RFC 7591: `oauth::registration` reads its request into this type and
/// adds its narrower rules.)
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    clap::Args,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct ClientInput {
    /// What people see on the consent page.
    #[arg(long)]
    #[serde(rename = "client_name")]
    pub name: String,
    /// Where codes may be sent, compared exactly (repeatable): https, a loopback http address, or an app's own scheme.
    #[arg(long = "redirect-uri", value_name = "URI")]
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The redirect URI used when a request names none (one of --redirect-uri).
    #[arg(long, value_name = "URI")]
    pub default_redirect_uri: Option<String>,
    /// Space-separated scopes [default: "openid profile email"].
    #[arg(long)]
    pub scope: Option<String>,
    /// authorization_code | refresh_token | client_credentials | device_code | token_exchange
    /// | implicit [default: authorization_code refresh_token].
    #[arg(long = "grant-type", value_name = "GRANT")]
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// client_secret_basic (default) | client_secret_post | none
    #[arg(long)]
    pub token_endpoint_auth_method: Option<String>,
    /// A public client (no secret; token_endpoint_auth_method `none`).
    #[arg(long)]
    #[serde(default)]
    pub public: bool,
    /// A trusted client: people are not asked for consent.
    #[arg(long)]
    #[serde(default)]
    pub skip_authorization: bool,
    /// Require PKCE although the client is confidential.
    #[arg(long)]
    #[serde(default)]
    pub require_pkce: bool,
    /// Only people holding one of these roles may use the client (repeatable).
    #[arg(long = "allowed-role", value_name = "ROLE")]
    #[serde(default)]
    pub allowed_roles: Vec<String>,
    /// The client's home page, shown on the consent page.
    #[arg(long)]
    pub client_uri: Option<String>,
    /// An https logo, shown on the consent page.
    #[arg(long)]
    pub logo_uri: Option<String>,
    /// The client's terms of service.
    #[arg(long)]
    pub tos_uri: Option<String>,
    /// The client's privacy policy.
    #[arg(long)]
    pub policy_uri: Option<String>,
    /// Someone responsible for the client (repeatable), e.g. an email address.
    #[arg(long = "contact", value_name = "CONTACT")]
    #[serde(default)]
    pub contacts: Vec<String>,
    /// An identifier of the client software (RFC 7591), the same for every instance.
    #[arg(long)]
    pub software_id: Option<String>,
    /// The version of the client software (RFC 7591).
    #[arg(long)]
    pub software_version: Option<String>,
    /// RS256 (default) | ES256 | EdDSA | HS256 (signed with the client secret, as Frappe does).
    #[arg(long)]
    pub id_token_signed_response_alg: Option<String>,
    /// Put every profile claim under `openid`, as Frappe does.
    #[arg(long)]
    #[serde(default)]
    pub frappe_claims: bool,
    /// Where the client may send people after signing them out (RP-Initiated Logout).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Where to tell the client that a person's session ended (Back-Channel Logout).
    #[arg(long, value_name = "URI")]
    pub backchannel_logout_uri: Option<String>,
    /// The client wants the session id (`sid`) in back-channel logout tokens.
    #[arg(long)]
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
    /// Token exchange: a client whose tokens this one may exchange, i.e. whose users it may
    /// get tokens for (repeatable; its own tokens always).
    #[arg(long = "token-exchange-subject-client", value_name = "ID")]
    #[serde(default)]
    pub token_exchange_subject_clients: Vec<String>,
    /// Token exchange: a client whose tokens may act for the user in this client's
    /// exchanges (RFC 8693 `may_act`; repeatable; the client itself always may).
    #[arg(long = "token-exchange-actor-client", value_name = "ID")]
    #[serde(default)]
    pub token_exchange_actor_clients: Vec<String>,
    /// Token exchange: an external issuer (its `iss`, exactly) whose signed tokens this
    /// client may exchange for tokens of the people they name (repeatable; the issuer must be
    /// a social login provider trusted for token exchange).
    #[arg(long = "token-exchange-subject-issuer", value_name = "ISSUER")]
    #[serde(default)]
    pub token_exchange_subject_issuers: Vec<String>,
}

/// A field of a [`ClientInput`] that does not parse: which field (and which of its values,
/// for a list), the value, and why. The CLI and the admin API say it as
/// [`InvalidClientInput::message`]; RFC 7591 registration names the field its own way.
#[derive(Debug)]
pub struct InvalidClientInput {
    pub field: &'static str,
    /// The position of the refused value in a list field.
    pub index: Option<usize>,
    /// The refused value, where quoting it helps.
    pub value: Option<String>,
    pub reason: String,
}

impl InvalidClientInput {
    fn new(field: &'static str, reason: impl std::fmt::Display) -> Self {
        InvalidClientInput {
            field,
            index: None,
            value: None,
            reason: reason.to_string(),
        }
    }

    fn of(field: &'static str, value: &str, reason: impl std::fmt::Display) -> Self {
        InvalidClientInput {
            value: Some(value.to_owned()),
            ..Self::new(field, reason)
        }
    }

    /// The problem as people read it, under the field name `name`.
    pub fn message_as(&self, name: &str) -> String {
        match &self.value {
            Some(value) => format!("{name} `{value}`: {}", self.reason),
            None => format!("{name}: {}", self.reason),
        }
    }

    /// The problem under the field's own name.
    pub fn message(&self) -> String {
        self.message_as(self.field)
    }
}

impl From<InvalidClientInput> for AppError {
    fn from(invalid: InvalidClientInput) -> Self {
        AppError::invalid_field(invalid.field, invalid.message())
    }
}

impl ClientInput {
    /// The input that [`ClientInput::parse`]s back to `metadata`: how `export` writes a
    /// client, so that `import` checks it as any operator's input.
    pub fn from_metadata(metadata: &ClientMetadata) -> ClientInput {
        let text = |url: &Option<WebUrl>| url.as_ref().map(|u| u.as_str().to_owned());
        ClientInput {
            name: metadata.name.clone(),
            redirect_uris: metadata
                .redirect_uris
                .iter()
                .map(|u| u.to_string())
                .collect(),
            default_redirect_uri: metadata
                .default_redirect_uri
                .as_ref()
                .map(|u| u.to_string()),
            scope: Some(metadata.scopes.to_string()),
            grant_types: metadata.grant_types.iter().map(|g| g.to_string()).collect(),
            token_endpoint_auth_method: Some(metadata.token_endpoint_auth_method.to_string()),
            public: false,
            skip_authorization: metadata.skip_authorization,
            require_pkce: metadata.require_pkce,
            allowed_roles: metadata.allowed_roles.iter().cloned().collect(),
            client_uri: text(&metadata.client_uri),
            logo_uri: text(&metadata.logo_uri),
            tos_uri: text(&metadata.tos_uri),
            policy_uri: text(&metadata.policy_uri),
            contacts: metadata.contacts.clone(),
            software_id: metadata.software_id.clone(),
            software_version: metadata.software_version.clone(),
            id_token_signed_response_alg: metadata
                .id_token_signed_response_alg
                .map(|alg| alg.as_str().to_owned()),
            frappe_claims: metadata.frappe_claims,
            post_logout_redirect_uris: metadata
                .post_logout_redirect_uris
                .iter()
                .map(|u| u.to_string())
                .collect(),
            backchannel_logout_uri: text(&metadata.backchannel_logout_uri),
            backchannel_logout_session_required: metadata.backchannel_logout_session_required,
            token_exchange_subject_clients: metadata
                .token_exchange_subject_clients
                .iter()
                .cloned()
                .collect(),
            token_exchange_actor_clients: metadata
                .token_exchange_actor_clients
                .iter()
                .cloned()
                .collect(),
            token_exchange_subject_issuers: metadata
                .token_exchange_subject_issuers
                .iter()
                .cloned()
                .collect(),
        }
    }

    /// Parses every field; the first problem found is reported with the field's name.
    pub fn parse(self) -> Result<ClientMetadata, InvalidClientInput> {
        let redirect_uris = self
            .redirect_uris
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                RedirectUri::parse(raw).map_err(|e| InvalidClientInput {
                    index: Some(i),
                    ..InvalidClientInput::of("redirect_uri", raw, e)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let post_logout_redirect_uris = self
            .post_logout_redirect_uris
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                RedirectUri::parse(raw).map_err(|e| InvalidClientInput {
                    index: Some(i),
                    ..InvalidClientInput::of("post_logout_redirect_uri", raw, e)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let default_redirect_uri = self
            .default_redirect_uri
            .as_deref()
            .map(|raw| {
                RedirectUri::parse(raw)
                    .map_err(|e| InvalidClientInput::of("default_redirect_uri", raw, e))
            })
            .transpose()?;
        let scopes = Scopes::parse(self.scope.as_deref().unwrap_or(DEFAULT_SCOPES))
            .map_err(|e| InvalidClientInput::new("scope", e))?;
        let grant_types: BTreeSet<GrantType> = if self.grant_types.is_empty() {
            BTreeSet::from([GrantType::AuthorizationCode, GrantType::RefreshToken])
        } else {
            self.grant_types
                .iter()
                .map(|g| match g.as_str() {
                    // RFC 8628's URN is long to type: operators may say `device_code`.
                    "device_code" => Ok(GrantType::DeviceCode),
                    "token_exchange" | "token-exchange" => Ok(GrantType::TokenExchange),
                    g => g
                        .parse()
                        .map_err(|e| InvalidClientInput::new("grant_types", e)),
                })
                .collect::<Result<_, _>>()?
        };
        // Response types follow from grant types (RFC 7591 §2.1), so operators need not
        // spell both.
        let response_types = grant_types
            .iter()
            .filter_map(|g| match g {
                GrantType::AuthorizationCode => Some(ResponseType::Code),
                GrantType::Implicit => Some(ResponseType::Token),
                _ => None,
            })
            .collect();
        let token_endpoint_auth_method = match (&self.token_endpoint_auth_method, self.public) {
            (Some(method), _) => method
                .parse::<TokenEndpointAuthMethod>()
                .map_err(|e| InvalidClientInput::new("token_endpoint_auth_method", e))?,
            (None, true) => TokenEndpointAuthMethod::None,
            (None, false) => TokenEndpointAuthMethod::ClientSecretBasic,
        };
        if self.public && !token_endpoint_auth_method.is_public() {
            return Err(InvalidClientInput::new(
                "token_endpoint_auth_method",
                "a public client uses `none`",
            ));
        }
        let web = |field: &'static str, raw: &Option<String>| {
            raw.as_deref()
                .map(|raw| WebUrl::parse(raw).map_err(|e| InvalidClientInput::of(field, raw, e)))
                .transpose()
        };
        // Kept as typed (`iss` is compared exactly), once it reads as a URL.
        let field = "token_exchange_subject_issuers";
        let token_exchange_subject_issuers = self
            .token_exchange_subject_issuers
            .into_iter()
            .map(|raw| match WebUrl::parse(raw.trim()) {
                Ok(_) => Ok(raw.trim().to_owned()),
                Err(e) => Err(InvalidClientInput::of(field, &raw, e)),
            })
            .collect::<Result<_, _>>()?;
        Ok(ClientMetadata {
            name: self.name.trim().to_owned(),
            redirect_uris,
            default_redirect_uri,
            scopes,
            grant_types,
            response_types,
            token_endpoint_auth_method,
            skip_authorization: self.skip_authorization,
            require_pkce: self.require_pkce,
            allowed_roles: self.allowed_roles.into_iter().collect(),
            client_uri: web("client_uri", &self.client_uri)?,
            logo_uri: web("logo_uri", &self.logo_uri)?,
            tos_uri: web("tos_uri", &self.tos_uri)?,
            policy_uri: web("policy_uri", &self.policy_uri)?,
            contacts: self.contacts,
            software_id: self.software_id,
            software_version: self.software_version,
            id_token_signed_response_alg: self
                .id_token_signed_response_alg
                .as_deref()
                .map(|raw| {
                    IdTokenAlg::parse(raw).ok_or_else(|| {
                        InvalidClientInput::new(
                            "id_token_signed_response_alg",
                            format!("`{raw}` is not one of RS256, ES256, EdDSA, HS256"),
                        )
                    })
                })
                .transpose()?,
            frappe_claims: self.frappe_claims,
            post_logout_redirect_uris,
            backchannel_logout_uri: web("backchannel_logout_uri", &self.backchannel_logout_uri)?,
            backchannel_logout_session_required: self.backchannel_logout_session_required,
            token_exchange_subject_clients: self
                .token_exchange_subject_clients
                .into_iter()
                .collect(),
            token_exchange_actor_clients: self.token_exchange_actor_clients.into_iter().collect(),
            token_exchange_subject_issuers,
        })
    }
}

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
