//! The OAuth 2 / OpenID Connect protocol, between HTTP and the aggregates: what a request
//! means, which command it becomes, and what answer follows from the committed events.
//!
//! - [`error`]: the two error surfaces of RFC 6749, rendered in one place each: JSON for the
//!   token endpoint (§5.2) and redirects for the authorization endpoint (§4.1.2.1), plus the
//!   HTML page for requests whose client or redirect URI cannot be trusted.
//! - [`tokens`]: minting codes and tokens (with their grant id inside) and reading them back.
//! - [`authorize`]: validation of authorization requests.
//! - [`token`]: the grants of the token endpoint.
//! - [`client_auth`]: client authentication (RFC 6749 §2.3).
//! - [`id_token`]: ID token claims (OIDC Core §2, §5.4) and signing.
//! - [`introspect`]: introspection (RFC 7662) and revocation (RFC 7009).

pub mod authorize;
pub mod client_auth;
pub mod error;
pub mod id_token;
pub mod introspect;
pub mod params;
pub mod registration;
pub mod token;
pub mod tokens;

use std::sync::Arc;

use crate::master_key::MasterKey;
use crate::signing::KeyRing;
use crate::store::Store;

/// The authorization server's moving parts, shared by every protocol endpoint.
pub struct Authority {
    pub store: Arc<Store>,
    pub keys: KeyRing,
    pub master: MasterKey,
    /// The issuer identifier (RFC 8414 §2): `iss` of ID tokens and of authorization responses.
    pub issuer: String,
    pub usage: crate::usage::Usage,
}
