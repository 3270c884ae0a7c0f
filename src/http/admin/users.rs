//! `/admin/api/users`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::auth::Admin;
use super::error::{ok, ApiResult};
use super::paging::{page, Page};
use crate::admin::users::{self, UserInput};
use crate::http::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUserBody {
    username: String,
    password: String,
    email: Option<String>,
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    picture: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

pub(super) async fn list_users(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<Page>,
) -> ApiResult {
    let limit = q.limit();
    let items = users::list(&app.authority.store, q.cursor.as_deref(), limit).await?;
    Ok(page(items, limit, |u| u.username.clone()).into_response())
}

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

pub(super) async fn show_user(
    State(app): State<AppState>,
    _admin: Admin,
    Path(username): Path<String>,
) -> ApiResult {
    ok(users::show(&app.authority.store, &username).await?)
}

pub(super) async fn disable_user(
    State(app): State<AppState>,
    admin: Admin,
    Path(username): Path<String>,
) -> ApiResult {
    ok(users::disable(&app.authority.store, &username, &admin.metadata).await?)
}

pub(super) async fn reset_two_factor(
    State(app): State<AppState>,
    admin: Admin,
    Path(username): Path<String>,
) -> ApiResult {
    ok(users::reset_two_factor(&app.authority.store, &username, &admin.metadata).await?)
}

pub(super) async fn enable_user(
    State(app): State<AppState>,
    admin: Admin,
    Path(username): Path<String>,
) -> ApiResult {
    ok(users::enable(&app.authority.store, &username, &admin.metadata).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RolesBody {
    roles: Vec<String>,
}

pub(super) async fn set_roles(
    State(app): State<AppState>,
    admin: Admin,
    Path(username): Path<String>,
    body: Result<Json<RolesBody>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    ok(users::set_roles(&app.authority.store, &username, &b.roles, &admin.metadata).await?)
}
