//! `/admin/users`: people, one person's page (profile, roles, consents, recent sign-ins),
//! disabling and enabling.

use askama::Template;
use authledger_projections::audit::{AuditLog, AuditRecord};
use authledger_projections::consents::{ConsentRecord, ConsentsView};
use authledger_projections::users::{UserSummary, UsersView};
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
    after: Option<String>,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct ListPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    users: Vec<UserSummary>,
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
        let users = UsersView::list(&app.authority.store.db, query.after.as_deref(), PAGE).await?;
        let next = (users.len() as i64 == PAGE)
            .then(|| users.last())
            .flatten()
            .map(|last| {
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("after", &last.username)
                    .finish()
            });
        let page = ListPage {
            chrome: &operator.chrome,
            operator: &operator,
            users,
            next,
        };
        Ok::<_, Refusal>((jar, render(StatusCode::OK, &page)).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    user: UserSummary,
    roles: String,
    /// The roles as the roles field takes them.
    roles_input: String,
    consents: Vec<ConsentRecord>,
    sign_ins: Vec<AuditRecord>,
    /// Tokens issued to them and refreshed per hour over the last 7 days, as an SVG chart.
    usage: String,
}

impl UserPage<'_> {
    fn time(&self, view_time: &str) -> String {
        shown_time(view_time)
    }
}

pub async fn show(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Path(username): Path<String>,
) -> Response {
    let page = async {
        let (jar, operator) = operator(&app, jar, &uri).await?;
        let store = &app.authority.store;
        let user = admin::users::show(store, &username).await?;
        let consents = ConsentsView::list(&store.db, Some(&user.username), None, None, 100).await?;
        let sign_ins = AuditLog::sign_ins(&store.db, &user.username, 20).await?;
        let usage =
            super::chart::tokens_last_week(&store.db, None, Some(user.username.as_str())).await?;
        let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
        let page = UserPage {
            chrome: &operator.chrome,
            operator: &operator,
            roles: if roles.is_empty() {
                "none".into()
            } else {
                roles.join(", ")
            },
            roles_input: roles.join(", "),
            user,
            consents,
            sign_ins,
            usage,
        };
        Ok::<_, Refusal>((jar, render(StatusCode::OK, &page)).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}

pub async fn disable(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    context: RequestContext,
    Path(username): Path<String>,
    body: Bytes,
) -> Response {
    act(&app, jar, &uri, &context, &body, async |actor, _| {
        let user = admin::users::disable(&app.authority.store, &username, &actor).await?;
        app.session_ends.notify_one();
        Ok(format!("/admin/users/{}", user.username))
    })
    .await
}

pub async fn enable(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    context: RequestContext,
    Path(username): Path<String>,
    body: Bytes,
) -> Response {
    act(&app, jar, &uri, &context, &body, async |actor, _| {
        let user = admin::users::enable(&app.authority.store, &username, &actor).await?;
        Ok(format!("/admin/users/{}", user.username))
    })
    .await
}

/// `POST /admin/users/{username}/consents/{client_id}/revoke`: withdraws the consent; every
/// grant it covered is revoked before the page comes back (as `consent revoke` does).
pub async fn revoke_consent(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    context: RequestContext,
    Path((username, client_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    act(&app, jar, &uri, &context, &body, async |actor, _| {
        admin::grants::revoke_consent(&app.authority.store, &username, &client_id, &actor).await?;
        Ok(format!("/admin/users/{username}"))
    })
    .await
}
