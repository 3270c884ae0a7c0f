//! `/admin/grants`: grants by client, person and status; a grant's page (how it began, every
//! token it issued, by hash prefix, never the value), and revoking it.

use askama::Template;
use authledger_projections::grants::{GrantRecord, GrantsView, Subject};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::SignedCookieJar;
use serde::Deserialize;

use super::{act, operator, shown_time, Operator, Refusal, PAGE};
use crate::error::AppError;
use crate::http::context::RequestContext;
use crate::http::pages::{render, Chrome};
use crate::http::AppState;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    client: String,
    #[serde(default)]
    user: String,
    /// `active` for grants still in force.
    #[serde(default)]
    status: String,
    after_time: Option<String>,
    after_id: Option<String>,
}

#[derive(Template)]
#[template(path = "console/grants.html")]
struct ListPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    query: &'a ListQuery,
    grants: Vec<GrantRecord>,
    next: Option<String>,
}

impl ListPage<'_> {
    fn time(&self, view_time: &str) -> String {
        shown_time(view_time)
    }
}

pub async fn list(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Query(query): Query<ListQuery>,
) -> Response {
    let page = async {
        let (jar, operator) = operator(&app, jar, &uri).await?;
        let text = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
        let subject = Subject {
            client_id: text(&query.client),
            username: text(&query.user).map(|u| u.to_ascii_lowercase()),
        };
        let after = query.after_time.as_deref().zip(query.after_id.as_deref());
        let db = app.authority.store.current_views().await?;
        let grants =
            GrantsView::grants(db, &subject, query.status == "active", after, PAGE).await?;
        let next = (grants.len() as i64 == PAGE)
            .then(|| grants.last())
            .flatten()
            .map(|last| {
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("client", &query.client)
                    .append_pair("user", &query.user)
                    .append_pair("status", &query.status)
                    .append_pair("after_time", &last.created_at)
                    .append_pair("after_id", &last.grant_id)
                    .finish()
            });
        let page = ListPage {
            chrome: &operator.chrome,
            operator: &operator,
            query: &query,
            grants,
            next,
        };
        Ok::<_, Refusal>((jar, render(StatusCode::OK, &page)).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}

/// A token of the grant as the page shows it.
struct TokenRow {
    kind: &'static str,
    hash_prefix: String,
    expires: String,
    state: &'static str,
}

#[derive(Template)]
#[template(path = "console/grant.html")]
struct GrantPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    grant: GrantRecord,
    tokens: Vec<TokenRow>,
}

impl GrantPage<'_> {
    fn time(&self, view_time: &str) -> String {
        shown_time(view_time)
    }
}

pub async fn show(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Path(id): Path<String>,
) -> Response {
    let page = async {
        let (jar, operator) = operator(&app, jar, &uri).await?;
        let store = &app.authority.store;
        let grant = crate::admin::grants::show_grant(store, &id).await?;
        // The tokens as the grant's own events know them: the source of truth.
        let aggregate = store.grants.load(&id).await.map_err(AppError::store)?;
        let now = chrono::Utc::now();
        let prefix = |h: &authledger_domain::secret::SecretHash| format!("{}…", &h.as_hex()[..12]);
        let mut tokens = vec![];
        if let Some(state) = aggregate.state() {
            for t in &state.access_tokens {
                tokens.push(TokenRow {
                    kind: "access token",
                    hash_prefix: prefix(&t.hash),
                    expires: t.expires_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    state: if t.revoked || state.revoked.is_some() {
                        "revoked"
                    } else if t.expires_at <= now {
                        "expired"
                    } else {
                        "active"
                    },
                });
            }
            if let Some(t) = &state.refresh_token {
                tokens.push(TokenRow {
                    kind: "refresh token",
                    hash_prefix: prefix(&t.hash),
                    expires: t.expires_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    state: if t.revoked || state.revoked.is_some() {
                        "revoked"
                    } else if t.expires_at <= now {
                        "expired"
                    } else {
                        "active"
                    },
                });
            }
            for h in &state.rotated_refresh_tokens {
                tokens.push(TokenRow {
                    kind: "refresh token",
                    hash_prefix: prefix(h),
                    expires: "—".into(),
                    state: "rotated",
                });
            }
        }
        let page = GrantPage {
            chrome: &operator.chrome,
            operator: &operator,
            grant,
            tokens,
        };
        Ok::<_, Refusal>((jar, render(StatusCode::OK, &page)).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/grants/{id}/revoke`: the grant and every token in it end at once.
pub async fn revoke(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    context: RequestContext,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    act(&app, jar, &uri, &context, &body, async |actor, _| {
        crate::admin::grants::revoke_grant(&app.authority.store, &id, &actor).await?;
        Ok(format!("/admin/grants/{id}"))
    })
    .await
}
