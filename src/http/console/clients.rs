//! `/admin/clients`: clients by name, one client's page, disabling and enabling.

use askama::Template;
use authledger_domain::client::ClientStatus;
use authledger_projections::clients::{ClientSummary, ClientsView};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::SignedCookieJar;
use serde::Deserialize;

use super::{act, operator, shown_time, Operator, Refusal, PAGE};
use crate::admin;
use crate::http::context::RequestContext;
use crate::http::pages::{render, Chrome};
use crate::http::AppState;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    /// The keyset: the last row of the previous page, `name` and `id`.
    after_name: Option<String>,
    after_id: Option<String>,
}

#[derive(Template)]
#[template(path = "console/clients.html")]
struct ListPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    q: &'a str,
    clients: Vec<ClientSummary>,
    /// The query string of the next page, if there may be one.
    next: Option<String>,
}

pub async fn list(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Query(query): Query<ListQuery>,
) -> Response {
    let page = async {
        let (jar, operator) = operator(&app, jar, &uri).await?;
        let after = query.after_name.as_deref().zip(query.after_id.as_deref());
        let clients =
            ClientsView::by_name(&app.authority.store.db, query.q.trim(), after, PAGE).await?;
        let next = (clients.len() as i64 == PAGE)
            .then(|| clients.last())
            .flatten()
            .map(|last| {
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("q", &query.q)
                    .append_pair("after_name", &last.name)
                    .append_pair("after_id", &last.client_id)
                    .finish()
            });
        let page = ListPage {
            chrome: &operator.chrome,
            operator: &operator,
            q: &query.q,
            clients,
            next,
        };
        Ok::<_, Refusal>((jar, render(StatusCode::OK, &page)).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Template)]
#[template(path = "console/client.html")]
struct ClientPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    client: ClientSummary,
    /// The client's settings, as label and value.
    fields: Vec<(&'static str, String)>,
    enabled: bool,
    /// Tokens issued and refreshed per hour over the last 7 days, as an SVG chart.
    usage: String,
}

impl ClientPage<'_> {
    fn time(&self, view_time: &str) -> String {
        shown_time(view_time)
    }
}

fn fields(client: &ClientSummary) -> Vec<(&'static str, String)> {
    let m = &client.metadata;
    let list = |items: Vec<&str>| {
        if items.is_empty() {
            "—".to_owned()
        } else {
            items.join(", ")
        }
    };
    let optional = |v: Option<&str>| v.unwrap_or("—").to_owned();
    vec![
        (
            "Redirect URIs",
            list(m.redirect_uris.iter().map(|u| u.as_str()).collect()),
        ),
        ("Scopes", m.scopes.to_string()),
        (
            "Grant types",
            list(m.grant_types.iter().map(|g| g.as_str()).collect()),
        ),
        (
            "Client authentication",
            m.token_endpoint_auth_method.as_str().to_owned(),
        ),
        (
            "Skips consent",
            if m.skip_authorization { "yes" } else { "no" }.to_owned(),
        ),
        (
            "Requires PKCE",
            if m.require_pkce { "yes" } else { "no" }.to_owned(),
        ),
        (
            "Allowed roles",
            list(m.allowed_roles.iter().map(String::as_str).collect()),
        ),
        (
            "Home page",
            optional(m.client_uri.as_ref().map(|u| u.as_str())),
        ),
        (
            "Privacy policy",
            optional(m.policy_uri.as_ref().map(|u| u.as_str())),
        ),
        ("Terms", optional(m.tos_uri.as_ref().map(|u| u.as_str()))),
        (
            "Post-logout redirect URIs",
            list(
                m.post_logout_redirect_uris
                    .iter()
                    .map(|u| u.as_str())
                    .collect(),
            ),
        ),
        (
            "Back-channel logout URI",
            optional(m.backchannel_logout_uri.as_ref().map(|u| u.as_str())),
        ),
    ]
}

pub async fn show(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Path(id): Path<String>,
) -> Response {
    let page = async {
        let (jar, operator) = operator(&app, jar, &uri).await?;
        let client = admin::clients::show(&app.authority.store, &id).await?;
        let usage =
            super::chart::tokens_last_week(&app.authority.store.db, Some(&id), None).await?;
        let page = ClientPage {
            usage,
            chrome: &operator.chrome,
            operator: &operator,
            fields: fields(&client),
            enabled: client.status == ClientStatus::Active.as_str(),
            client,
        };
        Ok::<_, Refusal>((jar, render(StatusCode::OK, &page)).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/clients/{id}/disable`, with an optional `reason`.
pub async fn disable(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    context: RequestContext,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    act(&app, jar, &uri, &context, &body, async |actor, form| {
        let reason = form.get("reason").map(str::trim).filter(|r| !r.is_empty());
        admin::clients::disable(&app.authority.store, &id, reason.map(str::to_owned), &actor)
            .await?;
        Ok(format!("/admin/clients/{id}"))
    })
    .await
}

/// `POST /admin/clients/{id}/enable`.
pub async fn enable(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    context: RequestContext,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    act(&app, jar, &uri, &context, &body, async |actor, _| {
        admin::clients::enable(&app.authority.store, &id, &actor).await?;
        Ok(format!("/admin/clients/{id}"))
    })
    .await
}
