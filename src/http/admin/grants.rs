//! `/admin/api/consents`, `/grants` and `/tokens`: who allowed what, and what was issued.

use authledger_projections::consents::ConsentsView;
use authledger_projections::grants::GrantsView;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Admin;
use super::error::{ok, ApiResult};
use super::paging::{page, pair_cursor, Page};
use crate::admin::grants as grant_ops;
use crate::http::AppState;

pub(super) async fn list_consents(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<Page>,
) -> ApiResult {
    let limit = q.limit();
    let after = q.pair()?;
    let items = ConsentsView::list(
        app.authority.store.current_views().await?,
        q.user.as_deref(),
        q.client_id.as_deref(),
        after.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        limit,
    )
    .await?;
    Ok(page(items, limit, |c| pair_cursor(&c.username, &c.client_id)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsentBody {
    user: String,
    client_id: String,
}

pub(super) async fn revoke_consent(
    State(app): State<AppState>,
    admin: Admin,
    body: Result<Json<ConsentBody>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    grant_ops::revoke_consent(&app.authority.store, &b.user, &b.client_id, &admin.metadata).await?;
    ok(json!({ "revoked": true, "user": b.user, "client_id": b.client_id }))
}

pub(super) async fn list_grants(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<Page>,
) -> ApiResult {
    let limit = q.limit();
    let after = q.pair()?;
    let items = GrantsView::grants(
        app.authority.store.current_views().await?,
        &q.subject(),
        q.active.unwrap_or(false),
        after.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        limit,
    )
    .await?;
    Ok(page(items, limit, |g| pair_cursor(&g.created_at, &g.grant_id)).into_response())
}

pub(super) async fn show_grant(
    State(app): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult {
    ok(grant_ops::show_grant(&app.authority.store, &id).await?)
}

pub(super) async fn revoke_grant(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> ApiResult {
    ok(grant_ops::revoke_grant(&app.authority.store, &id, &admin.metadata).await?)
}

pub(super) async fn list_tokens(
    State(app): State<AppState>,
    _admin: Admin,
    Query(q): Query<Page>,
) -> ApiResult {
    let limit = q.limit();
    let after = q.pair()?;
    let now = chrono::Utc::now();
    let items: Vec<Value> = GrantsView::tokens(
        app.authority.store.current_views().await?,
        &q.subject(),
        after.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        limit,
    )
    .await?
    .into_iter()
    .map(|t| {
        let active = t.is_active(now);
        let mut value = json!(t);
        value["active"] = json!(active);
        value
    })
    .collect();
    Ok(page(items, limit, |t| {
        pair_cursor(
            t["issued_at"].as_str().unwrap_or_default(),
            t["token_hash"].as_str().unwrap_or_default(),
        )
    })
    .into_response())
}
