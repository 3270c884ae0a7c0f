//! The OAuth / OpenID Connect flows, black box: a browser (cookies on, redirects off) and a
//! client talking HTTP to the real server.

mod authorize_errors;
mod code_flow;
mod device;
mod exchange;
pub(crate) mod flow;
mod frappe;
mod grants;
mod real_client;
mod resources;
mod token_errors;
