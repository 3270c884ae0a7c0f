//! The OAuth 2 / OpenID Connect protocol, between HTTP and the aggregates: what a request
//! means, which command it becomes, and what answer follows from the committed events. It
//! returns typed outcomes and typed errors; `crate::http` parses requests into them and
//! renders them (`http::render`), so nothing here knows about responses.
//!
//! - [`error`]: the errors of RFC 6749: the token endpoint's (§5.2), the authorization
//!   endpoint's (§4.1.2.1), and refusals whose client or redirect URI cannot be trusted.
//! - [`tokens`]: minting codes and tokens (with their grant id inside) and reading them back.
//! - [`authorize`]: validation of authorization requests.
//! - [`grants`]: the grants of the token endpoint, from a typed [`grants::TokenRequest`].
//! - [`client_auth`]: client authentication (RFC 6749 §2.3).
//! - [`device`]: the device authorization grant (RFC 8628): the device's request, the
//!   person's decision, the pace of polls.
//! - [`id_token`]: ID token claims (OIDC Core §2, §5.4) and signing.
//! - [`introspect`]: introspection (RFC 7662) and revocation (RFC 7009).
//! - [`logout`]: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
//! - [`params`]: request parameters (each at most once, no control characters).
//! - [`registration`]: dynamic client registration (RFC 7591, RFC 7592).
//! - [`resources`]: resource indicators (RFC 8707): the audience, format and lifetime of a
//!   token from the resources a request names.
//! - [`access_token`]: JWT access tokens (RFC 9068) for resources that take them.

pub mod access_token;
pub mod authorize;
pub mod client_auth;
pub mod device;
pub mod error;
pub mod exchange;
pub mod grants;
pub mod id_token;
pub mod introspect;
pub mod logout;
mod minting;
pub mod params;
pub mod registration;
pub mod resources;
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
    /// How often each device code may be polled (RFC 8628 §3.5).
    pub device_polls: device::PollPace,
    /// Calls to trusted external issuers (their key sets, for token exchange).
    pub upstream: crate::connected_apps::provider::ProviderClient,
}
