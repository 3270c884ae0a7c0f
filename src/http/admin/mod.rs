//! The admin API (`/admin/api/...`, JSON). Callers present a bearer token issued by this
//! server with scope `admin`: to a person holding the role `admin`, or to a client registered
//! for that scope (client credentials). Lists are keyset-paginated (`cursor`, `limit`); bad
//! input is a 400 naming the field.

//!
//! One file per resource (`clients`, `users`, `grants`, `audit`, `settings`), with the
//! caller's authentication (`auth`), the error type (`error`) and keyset paging (`paging`).

use axum::routing::{get, post, put};
use axum::Router;

use super::AppState;

mod audit;
mod auth;
mod clients;
mod connected_apps;
mod error;
mod grants;
mod paging;
mod settings;
mod social_logins;
mod users;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/clients",
            get(clients::list_clients).post(clients::create_client),
        )
        .route(
            "/clients/{id}",
            get(clients::show_client).patch(clients::update_client),
        )
        .route("/clients/{id}/disable", post(clients::disable_client))
        .route("/clients/{id}/enable", post(clients::enable_client))
        .route("/clients/{id}/rotate-secret", post(clients::rotate_secret))
        .route("/users", get(users::list_users).post(users::create_user))
        .route("/users/{username}", get(users::show_user))
        .route("/users/{username}/disable", post(users::disable_user))
        .route("/users/{username}/enable", post(users::enable_user))
        .route(
            "/users/{username}/two-factor/reset",
            post(users::reset_two_factor),
        )
        .route("/users/{username}/roles", put(users::set_roles))
        .route("/consents", get(grants::list_consents))
        .route("/consents/revoke", post(grants::revoke_consent))
        .route("/grants", get(grants::list_grants))
        .route("/grants/{id}", get(grants::show_grant))
        .route("/grants/{id}/revoke", post(grants::revoke_grant))
        .route("/tokens", get(grants::list_tokens))
        .route("/audit", get(audit::audit))
        .route("/usage", get(audit::usage))
        .route(
            "/connected-apps",
            get(connected_apps::list).post(connected_apps::create),
        )
        .route(
            "/connected-apps/{id}",
            get(connected_apps::show).delete(connected_apps::delete),
        )
        .route("/connected-apps/{id}/token", get(connected_apps::token))
        .route(
            "/connected-apps/{id}/disconnect",
            post(connected_apps::disconnect),
        )
        .route(
            "/social-logins",
            get(social_logins::list).post(social_logins::create),
        )
        .route("/social-logins/identities", get(social_logins::identities))
        .route(
            "/social-logins/{id}",
            get(social_logins::show)
                .patch(social_logins::update)
                .delete(social_logins::delete),
        )
        .route("/social-logins/{id}/unlink", post(social_logins::unlink))
        .route(
            "/settings",
            get(settings::show_settings).patch(settings::change_settings),
        )
}
