//! `/admin/api/resources`: the protected resources (APIs) tokens can be restricted to
//! (RFC 8707). A resource's identifier is a URI: in a path it is percent-encoded
//! (`/admin/api/resources/https%3A%2F%2Fmcp.example%2Fmcp`).

use authledger_domain::client::IdTokenAlg;
use authledger_domain::resource::RegisteredResource;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::{ok, ApiResult};
use super::openapi::Items;
use crate::admin::resources::{self, ResourceInput};
use crate::http::AppState;

/// A resource as the API shows it.
#[derive(Serialize, ToSchema)]
pub(super) struct ResourceRecord {
    identifier: String,
    name: String,
    /// The scopes it defines, space-separated.
    scope: String,
    /// `opaque` or `jwt` (RFC 9068).
    token_format: String,
    /// Seconds its access tokens live; absent for the server's `access_token_ttl`.
    access_token_ttl: Option<u32>,
    /// The clients that may ask for it; every client when empty.
    allowed_clients: Vec<String>,
    /// The clients its server introspects tokens as.
    introspecting_clients: Vec<String>,
    /// How its JWT access tokens are signed (RS256, ES256 or EdDSA).
    signing_alg: &'static str,
}

impl From<RegisteredResource> for ResourceRecord {
    fn from(resource: RegisteredResource) -> Self {
        let settings = resource.settings;
        ResourceRecord {
            identifier: resource.identifier.to_string(),
            name: settings.name,
            scope: settings.scopes.to_string(),
            token_format: settings.token_format.as_str().to_owned(),
            access_token_ttl: settings.access_token_ttl,
            allowed_clients: settings.allowed_clients,
            introspecting_clients: settings.introspecting_clients,
            signing_alg: settings.signing_alg.unwrap_or(IdTokenAlg::RS256).as_str(),
        }
    }
}

/// A new resource, or the fields to change (absent ones are kept).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ResourceBody {
    /// Required to create; ignored (it is in the path) on update.
    identifier: Option<String>,
    name: Option<String>,
    scope: Option<String>,
    token_format: Option<String>,
    access_token_ttl: Option<u32>,
    allowed_clients: Option<Vec<String>>,
    introspecting_clients: Option<Vec<String>>,
    signing_alg: Option<String>,
}

impl ResourceBody {
    fn input(self) -> ResourceInput {
        ResourceInput {
            name: self.name,
            scope: self.scope.map(|s| vec![s]).unwrap_or_default(),
            token_format: self.token_format,
            access_token_ttl: self.access_token_ttl,
            allowed_clients: self.allowed_clients.unwrap_or_default(),
            introspecting_clients: self.introspecting_clients.unwrap_or_default(),
            signing_alg: self.signing_alg,
        }
    }
}

#[utoipa::path(
    get, path = "/resources", tag = "resources",
    responses((status = 200, description = "Every resource", body = Items<ResourceRecord>)),
)]
pub(super) async fn list(State(app): State<AppState>, _admin: Admin) -> ApiResult {
    let items: Vec<ResourceRecord> = resources::list(&app.authority.store)
        .await?
        .into_iter()
        .map(ResourceRecord::from)
        .collect();
    ok(Items { items })
}

#[utoipa::path(
    post, path = "/resources", tag = "resources",
    request_body = ResourceBody,
    responses(
        (status = 201, description = "Registered", body = ResourceRecord),
        (status = 409, description = "A resource with this identifier exists", body = super::openapi::ApiErrorBody),
    ),
)]
pub(super) async fn create(
    State(app): State<AppState>,
    admin: Admin,
    body: Result<Json<ResourceBody>, JsonRejection>,
) -> ApiResult {
    let Json(body) = body?;
    let identifier = body.identifier.clone().unwrap_or_default();
    let created = resources::create(
        &app.authority.store,
        &identifier,
        body.input(),
        &admin.metadata,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(ResourceRecord::from(created))).into_response())
}

#[utoipa::path(
    get, path = "/resources/{identifier}", tag = "resources",
    params(("identifier" = String, Path, description = "The resource's identifier, percent-encoded")),
    responses((status = 200, description = "The resource", body = ResourceRecord)),
)]
pub(super) async fn show(
    State(app): State<AppState>,
    _admin: Admin,
    Path(identifier): Path<String>,
) -> ApiResult {
    ok(ResourceRecord::from(
        resources::show(&app.authority.store, &identifier).await?,
    ))
}

#[utoipa::path(
    patch, path = "/resources/{identifier}", tag = "resources",
    params(("identifier" = String, Path, description = "The resource's identifier, percent-encoded")),
    request_body = ResourceBody,
    responses((status = 200, description = "The resource as changed", body = ResourceRecord)),
)]
pub(super) async fn update(
    State(app): State<AppState>,
    admin: Admin,
    Path(identifier): Path<String>,
    body: Result<Json<ResourceBody>, JsonRejection>,
) -> ApiResult {
    let Json(body) = body?;
    let updated = resources::update(
        &app.authority.store,
        &identifier,
        body.input(),
        &admin.metadata,
    )
    .await?;
    ok(ResourceRecord::from(updated))
}

#[utoipa::path(
    delete, path = "/resources/{identifier}", tag = "resources",
    params(("identifier" = String, Path, description = "The resource's identifier, percent-encoded")),
    responses((status = 204, description = "Deleted")),
)]
pub(super) async fn delete(
    State(app): State<AppState>,
    admin: Admin,
    Path(identifier): Path<String>,
) -> ApiResult {
    resources::delete(&app.authority.store, &identifier, &admin.metadata).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
