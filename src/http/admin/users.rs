//! `/admin/api/users`.

use authledger_projections::users::UserSummary;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::{ok, ApiResult};
use super::openapi::Paged;
use super::paging::{page, Page};
use crate::admin::users::{self, UserInput};
use crate::http::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUserBody {
    /// 1 to 64 characters: letters, digits, `.`, `_`, `-`, `@`, `+`.
    username: String,
    /// At least the settings' minimum length; stored as an Argon2 hash only.
    password: String,
    email: Option<String>,
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    /// An https URL.
    picture: Option<String>,
    /// `admin`, `auditor`.
    #[serde(default)]
    roles: Vec<String>,
}

#[utoipa::path(
    get, path = "/users", tag = "users",
    params(Page),
    responses((status = 200, description = "People, by username", body = Paged<UserSummary>)),
)]
pub(super) async fn list_users(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<Page>,
) -> ApiResult {
    let limit = q.limit();
    let items = users::list(&app.authority.store, q.cursor.as_deref(), limit).await?;
    Ok(page(items, limit, |u| u.username.clone()).into_response())
}

#[utoipa::path(
    post, path = "/users", tag = "users",
    request_body = NewUserBody,
    responses(
        (status = 201, description = "Created", body = UserSummary),
        (status = 409, description = "The username is taken", body = super::openapi::ApiErrorBody),
    ),
)]
pub(super) async fn create_user(
    State(app): State<AppState>,
    admin: Admin,
    body: Result<Json<NewUserBody>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    let input = UserInput {
        username: b.username,
        password: b.password,
        email: b.email,
        name: b.name,
        given_name: b.given_name,
        family_name: b.family_name,
        picture: b.picture,
        roles: b.roles,
    };
    let user = users::create(&app.authority.store, input, &admin.metadata).await?;
    Ok((StatusCode::CREATED, Json(json!(user))).into_response())
}

#[utoipa::path(
    get, path = "/users/{username}", tag = "users",
    params(("username" = String, Path, description = "The username")),
    responses((status = 200, description = "The person", body = UserSummary)),
)]
pub(super) async fn show_user(
    State(app): State<AppState>,
    _admin: Admin,
    Path(username): Path<String>,
) -> ApiResult {
    ok(users::show(&app.authority.store, &username).await?)
}

#[utoipa::path(
    post, path = "/users/{username}/disable", tag = "users",
    params(("username" = String, Path, description = "The username")),
    responses((status = 200, description = "Disabled: sign-in refused, tokens stop working", body = UserSummary)),
)]
pub(super) async fn disable_user(
    State(app): State<AppState>,
    admin: Admin,
    Path(username): Path<String>,
) -> ApiResult {
    ok(users::disable(&app.authority.store, &username, &admin.metadata).await?)
}

#[utoipa::path(
    post, path = "/users/{username}/two-factor/reset", tag = "users",
    params(("username" = String, Path, description = "The username")),
    responses((status = 200, description = "The second factor removed; the person enrols again", body = UserSummary)),
)]
pub(super) async fn reset_two_factor(
    State(app): State<AppState>,
    admin: Admin,
    Path(username): Path<String>,
) -> ApiResult {
    ok(users::reset_two_factor(&app.authority.store, &username, &admin.metadata).await?)
}

#[utoipa::path(
    post, path = "/users/{username}/erase", tag = "users",
    params(("username" = String, Path, description = "The username")),
    request_body(content = Option<EraseBody>, description = "Optional"),
    responses((status = 200, description = "Erased: the person's data can no longer be read; the account stays, disabled", body = users::Erased)),
)]
pub(super) async fn erase_user(
    State(app): State<AppState>,
    admin: Admin,
    Path(username): Path<String>,
    body: Result<Option<Json<EraseBody>>, JsonRejection>,
) -> ApiResult {
    let reason = body?.and_then(|Json(b)| b.reason);
    ok(users::erase(&app.authority.store, &username, reason, &admin.metadata).await?)
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EraseBody {
    /// Why (e.g. the request's reference), recorded in the clear: it must not name the person.
    reason: Option<String>,
}

#[utoipa::path(
    post, path = "/users/{username}/enable", tag = "users",
    params(("username" = String, Path, description = "The username")),
    responses((status = 200, description = "Enabled again", body = UserSummary)),
)]
pub(super) async fn enable_user(
    State(app): State<AppState>,
    admin: Admin,
    Path(username): Path<String>,
) -> ApiResult {
    ok(users::enable(&app.authority.store, &username, &admin.metadata).await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RolesBody {
    /// The whole set of roles (`admin`, `auditor`); `[]` removes them all.
    roles: Vec<String>,
}

#[utoipa::path(
    put, path = "/users/{username}/roles", tag = "users",
    params(("username" = String, Path, description = "The username")),
    request_body = RolesBody,
    responses((status = 200, description = "The person with these roles", body = UserSummary)),
)]
pub(super) async fn set_roles(
    State(app): State<AppState>,
    admin: Admin,
    Path(username): Path<String>,
    body: Result<Json<RolesBody>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    ok(users::set_roles(&app.authority.store, &username, &b.roles, &admin.metadata).await?)
}
