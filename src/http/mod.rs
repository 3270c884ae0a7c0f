//! The HTTP server: start-up and life (`app`), the routes and the layers around them
//! (`router`), the background tasks (`background`), the accept loop and its limits (`serve`),
//! and one file per endpoint family.

use std::sync::Arc;

use axum::extract::FromRef;
use axum_extra::extract::cookie::Key;

use crate::oauth::Authority;

mod account;
pub mod admin;
mod app;
mod authorize;
mod background;
pub mod bearer;
mod connected_apps;
mod console;
pub mod context;
mod device;
mod edge;
pub mod failure;
mod federation;
pub mod health;
mod login;
mod logout;
mod metrics;
pub mod pages;
mod register;
pub mod render;
mod request_log;
mod router;
mod serve;
pub mod session;
mod social_login;
pub mod surface;
mod token;
mod two_factor;
mod userinfo;
mod well_known;

pub use crate::config::Limits;
pub use app::{shutdown_signal, Application};
pub use router::router;

/// Paths, shared by the router and the discovery metadata.
pub mod paths {
    pub const HEALTHZ: &str = "/healthz";
    pub const READYZ: &str = "/readyz";
    pub const AUTHORIZE: &str = "/oauth/authorize";
    pub const TOKEN: &str = "/oauth/token";
    pub const DEVICE_AUTHORIZATION: &str = "/oauth/device_authorization";
    pub const DEVICE: &str = "/device";
    pub const JWKS: &str = "/oauth/jwks";
    /// The public keys that sign the ledger's seals (see `crate::ledger_seal`).
    pub const LEDGER_KEYS: &str = "/.well-known/ledger-keys";
    pub const LOGIN: &str = "/login";
    pub const LOGOUT: &str = "/logout";
    pub const ACCOUNT: &str = "/account";
    pub const LOGIN_SECOND_FACTOR: &str = "/login/two-factor";
    pub const LOGIN_ENROL: &str = "/login/two-factor/enrol";
    pub const ACCOUNT_TWO_FACTOR: &str = "/account/two-factor";
    pub const ACCOUNT_TWO_FACTOR_REMOVE: &str = "/account/two-factor/remove";
    pub const ACCOUNT_END_SESSION: &str = "/account/sessions/end";
    pub const ACCOUNT_REMOVE_APPLICATION: &str = "/account/applications/remove";
    pub const ACCOUNT_DISCONNECT: &str = "/account/connected-apps/disconnect";
    pub const ACCOUNT_UNLINK: &str = "/account/identities/unlink";
    pub const STYLESHEET: &str = "/assets/authledger.css";
    pub const LOCAL_TIME_SCRIPT: &str = "/assets/local-time.js";
    pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
    pub const AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
    pub const PROTECTED_RESOURCE: &str = "/.well-known/oauth-protected-resource";
    pub const PROTECTED_RESOURCE_PATH: &str = "/.well-known/oauth-protected-resource/{*path}";
    pub const REGISTER: &str = "/oauth/register";
    /// Frappe's endpoints, so Frappe's clients work unchanged.
    pub const FRAPPE_AUTHORIZE: &str = "/api/method/frappe.integrations.oauth2.authorize";
    pub const FRAPPE_GET_TOKEN: &str = "/api/method/frappe.integrations.oauth2.get_token";
    pub const INTROSPECT: &str = "/oauth/introspect";
    pub const REVOKE: &str = "/oauth/revoke";
    pub const USERINFO: &str = "/oauth/userinfo";
    pub const METRICS: &str = "/metrics";
    pub const ADMIN_API: &str = "/admin/api";
    pub const CONSOLE: &str = "/admin";
    pub const FRAPPE_INTROSPECT: &str = "/api/method/frappe.integrations.oauth2.introspect_token";
    pub const FRAPPE_REVOKE: &str = "/api/method/frappe.integrations.oauth2.revoke_token";
    pub const FRAPPE_USERINFO: &str = "/api/method/frappe.integrations.oauth2.openid_profile";
    pub const FRAPPE_REGISTER: &str = "/api/method/frappe.integrations.oauth2.register_client";
    pub const REGISTRATION: &str = "/oauth/register/{client_id}";
}

#[derive(Clone)]
pub struct AppState {
    pub authority: Arc<Authority>,
    /// Signs the session and CSRF cookies; derived from the master key.
    pub cookie_key: Key,
    /// Cookies are `Secure` when the issuer is https.
    pub secure_cookies: bool,
    /// Per-IP limit on dynamic registrations.
    pub registrations: Arc<register::RegistrationLimiter>,
    /// Whether the database answered the store watch's last question.
    pub store_health: Arc<health::StoreHealth>,
    /// Failed sign-ins and client authentications (see [`crate::throttle`]).
    pub throttle: Arc<crate::throttle::Throttle>,
    /// Rung when this instance ends a session: back-channel logout runs at once.
    pub session_ends: Arc<tokio::sync::Notify>,
    /// Connected apps' tokens: one refresh at a time per connection.
    pub connections: Arc<crate::connected_apps::Connections>,
}

impl FromRef<AppState> for Key {
    fn from_ref(state: &AppState) -> Key {
        state.cookie_key.clone()
    }
}
