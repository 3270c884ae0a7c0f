//! The admin API (`/admin/api/...`, JSON). Callers present a bearer token issued by this
//! server with scope `admin`: to a person holding the role `admin`, or to a client registered
//! for that scope (client credentials). Lists are keyset-paginated (`cursor`, `limit`); bad
//! input is a 400 naming the field.
//!
//! One file per resource (`clients`, `users`, `grants`, `audit`, `connected_apps`,
//! `social_logins`, `resources`, `settings`), with the caller's authentication (`auth`), the error type
//! (`error`), keyset paging (`paging`) and the OpenAPI document (`openapi`).

use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

mod audit;
mod auth;
mod clients;
mod connected_apps;
mod error;
mod grants;
mod ledger;
pub mod openapi;
mod paging;
mod resources;
mod settings;
mod social_logins;
mod users;

/// The admin API's routes, mounted at `/admin/api`.
pub fn router() -> Router<AppState> {
    build().0
}

/// The routes and their documentation, from one list: `routes!` mounts only handlers that
/// carry `#[utoipa::path]`, so no route can be left out of the document.
fn build() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::new()
        .routes(routes!(clients::list_clients, clients::create_client))
        .routes(routes!(clients::show_client, clients::update_client))
        .routes(routes!(clients::disable_client))
        .routes(routes!(clients::enable_client))
        .routes(routes!(clients::rotate_secret))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(users::show_user))
        .routes(routes!(users::disable_user))
        .routes(routes!(users::enable_user))
        .routes(routes!(users::erase_user))
        .routes(routes!(users::reset_two_factor))
        .routes(routes!(users::set_roles))
        .routes(routes!(grants::list_consents))
        .routes(routes!(grants::revoke_consent))
        .routes(routes!(grants::list_grants))
        .routes(routes!(grants::show_grant))
        .routes(routes!(grants::revoke_grant))
        .routes(routes!(grants::list_tokens))
        .routes(routes!(audit::audit))
        .routes(routes!(audit::usage))
        .routes(routes!(ledger::export))
        .routes(routes!(connected_apps::list, connected_apps::create))
        .routes(routes!(connected_apps::show, connected_apps::delete))
        .routes(routes!(connected_apps::token))
        .routes(routes!(connected_apps::disconnect))
        .routes(routes!(social_logins::list, social_logins::create))
        .routes(routes!(social_logins::identities))
        .routes(routes!(
            social_logins::show,
            social_logins::update,
            social_logins::delete
        ))
        .routes(routes!(social_logins::unlink))
        .routes(routes!(resources::list, resources::create))
        .routes(routes!(
            resources::show,
            resources::update,
            resources::delete
        ))
        .routes(routes!(settings::show_settings, settings::change_settings))
        .routes(routes!(openapi::openapi_json));
    OpenApiRouter::new()
        .nest(openapi::MOUNT, api)
        .split_for_parts()
}

#[cfg(test)]
mod tests {
    /// `routes!` refuses a handler without `#[utoipa::path]`, so the document cannot miss a
    /// route mounted through it; a plain axum `route`, `merge` or `nest_service` would.
    #[test]
    fn every_route_is_mounted_through_routes() {
        let source = include_str!("mod.rs");
        let build = &source[source.find("fn build()").expect("build")..];
        let build = &build[..build.find("\n}\n").expect("end of build")];
        for escape in [
            ".route(",
            ".merge(",
            ".nest_service(",
            ".route_service(",
            ".fallback(",
        ] {
            assert!(
                !build.contains(escape),
                "the admin router mounts something with `{escape}`, outside the document"
            );
        }
    }
}
