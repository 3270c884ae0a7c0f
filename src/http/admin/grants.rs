//! `/admin/api/consents`, `/grants` and `/tokens`: who allowed what, and what was issued.

use authledger_projections::consents::ConsentRecord;
use authledger_projections::consents::ConsentsView;
use authledger_projections::grants::GrantsView;
use authledger_projections::grants::{GrantRecord, TokenRecord};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Admin;
use super::error::{ok, ApiResult};
use super::openapi::Paged;
use super::paging::{page, pair_cursor, Page, SubjectQuery};
use crate::admin::grants as grant_ops;
use crate::http::AppState;

#[utoipa::path(
    get, path = "/consents", tag = "grants",
    params(Page, SubjectQuery),
    responses((status = 200, description = "Consents in force, by person and client", body = Paged<ConsentRecord>)),
)]
pub(super) async fn list_consents(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<Page>,
    Query(whose): Query<SubjectQuery>,
) -> ApiResult {
    let limit = q.limit();
    let after = q.pair()?;
    let items = ConsentsView::list(
        app.authority.store.current_views().await?,
        whose.user.as_deref(),
        whose.client_id.as_deref(),
        after.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        limit,
    )
    .await?;
    Ok(page(items, limit, |c| pair_cursor(&c.username, &c.client_id)).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsentBody {
    /// The person's username.
    user: String,
    client_id: String,
}

#[derive(Serialize, ToSchema)]
pub(super) struct ConsentRevoked {
    revoked: bool,
    user: String,
    client_id: String,
}

#[utoipa::path(
    post, path = "/consents/revoke", tag = "grants",
    request_body = ConsentBody,
    responses(
        (status = 200, description = "Revoked, with every grant and token under it", body = ConsentRevoked),
        (status = 404, description = "No such consent", body = super::openapi::ApiErrorBody),
    ),
)]
pub(super) async fn revoke_consent(
    State(app): State<AppState>,
    admin: Admin,
    body: Result<Json<ConsentBody>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    grant_ops::revoke_consent(&app.authority.store, &b.user, &b.client_id, &admin.metadata).await?;
    ok(ConsentRevoked {
        revoked: true,
        user: b.user,
        client_id: b.client_id,
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ActiveQuery {
    /// Only grants still in force.
    active: Option<bool>,
}

#[utoipa::path(
    get, path = "/grants", tag = "grants",
    params(Page, SubjectQuery, ActiveQuery),
    responses((status = 200, description = "Grants, newest first", body = Paged<GrantRecord>)),
)]
pub(super) async fn list_grants(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<Page>,
    Query(whose): Query<SubjectQuery>,
    Query(active): Query<ActiveQuery>,
) -> ApiResult {
    let limit = q.limit();
    let after = q.pair()?;
    let items = GrantsView::grants(
        app.authority.store.current_views().await?,
        &whose.subject(),
        active.active.unwrap_or(false),
        after.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        limit,
    )
    .await?;
    Ok(page(items, limit, |g| pair_cursor(&g.created_at, &g.grant_id)).into_response())
}

#[utoipa::path(
    get, path = "/grants/{id}", tag = "grants",
    params(("id" = String, Path, description = "The grant id")),
    responses((status = 200, description = "The grant", body = GrantRecord)),
)]
pub(super) async fn show_grant(
    State(app): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult {
    ok(grant_ops::show_grant(&app.authority.store, &id).await?)
}

#[utoipa::path(
    post, path = "/grants/{id}/revoke", tag = "grants",
    params(("id" = String, Path, description = "The grant id")),
    responses((status = 200, description = "Revoked, with its tokens", body = GrantRecord)),
)]
pub(super) async fn revoke_grant(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult {
    ok(grant_ops::revoke_grant(&app.authority.store, &id, &admin.metadata).await?)
}

/// A token as listed: never the token itself, its hash.
#[derive(Serialize, ToSchema)]
pub(super) struct ListedToken {
    #[serde(flatten)]
    token: TokenRecord,
    /// Whether it would be accepted now.
    active: bool,
}

#[utoipa::path(
    get, path = "/tokens", tag = "grants",
    params(Page, SubjectQuery),
    responses((status = 200, description = "Tokens, newest first", body = Paged<ListedToken>)),
)]
pub(super) async fn list_tokens(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<Page>,
    Query(whose): Query<SubjectQuery>,
) -> ApiResult {
    let limit = q.limit();
    let after = q.pair()?;
    let now = chrono::Utc::now();
    let items: Vec<ListedToken> = GrantsView::tokens(
        app.authority.store.current_views().await?,
        &whose.subject(),
        after.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        limit,
    )
    .await?
    .into_iter()
    .map(|token| ListedToken {
        active: token.is_active(now),
        token,
    })
    .collect();
    Ok(page(items, limit, |t| {
        pair_cursor(&t.token.issued_at, &t.token.token_hash)
    })
    .into_response())
}
