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

//!
//! The document's types are here; writing it is `export.rs`, applying it `import.rs`, and the
//! passphrase envelope of `--with-secrets` `seal.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::clients::ClientInput;
use super::users::ProfileInput;

mod export;
mod import;
pub mod seal;

pub use export::export;
pub use import::{import, Line, Outcome};

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
