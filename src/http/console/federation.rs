//! `/admin/connected-apps` and `/admin/social-logins`: the providers authledger is a client
//! of, as the CLI's `connected-app list` and `social-login list` show them, with how many
//! people are connected and linked. Their forms: `connected_app_forms.rs` and
//! `social_login_forms.rs`.

use askama::Template;
use authledger_domain::connected_app::ConnectedAppConfig;
use authledger_domain::social_login::{Identification, SignUps, SocialLoginConfig};
use authledger_projections::connected_apps::ConnectedAppsView;
use authledger_projections::social_logins::SocialLoginsView;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::SignedCookieJar;

use super::{operator, Operator, Refusal};
use crate::http::pages::{render, Chrome};
use crate::http::AppState;

struct AppRow {
    id: String,
    name: String,
    token_uri: String,
    scope: String,
    connected: usize,
    lost: usize,
}

#[derive(Template)]
#[template(path = "console/connected_apps.html")]
struct AppsPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    apps: Vec<AppRow>,
}

pub async fn connected_apps(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> Response {
    let page = async {
        let (jar, operator) = operator(&app, jar, &uri).await?;
        let db = &app.authority.store.db;
        let mut apps = vec![];
        for record in ConnectedAppsView::list(db).await? {
            let Ok(config) = serde_json::from_str::<ConnectedAppConfig>(&record.config) else {
                continue;
            };
            let connections = ConnectedAppsView::connections(db, &record.app_id).await?;
            apps.push(AppRow {
                connected: connections
                    .iter()
                    .filter(|c| c.status == "connected")
                    .count(),
                lost: connections.iter().filter(|c| c.status == "lost").count(),
                name: record.name,
                token_uri: config.endpoints.token.as_str().to_owned(),
                scope: config.scopes.to_string(),
                id: record.app_id,
            });
        }
        let page = AppsPage {
            chrome: &operator.chrome,
            operator: &operator,
            apps,
        };
        Ok::<_, Refusal>((jar, render(StatusCode::OK, &page)).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}

struct ProviderRow {
    id: String,
    name: String,
    kind: &'static str,
    issuer: String,
    sign_ups: &'static str,
    enabled: bool,
}

#[derive(Template)]
#[template(path = "console/social_logins.html")]
struct ProvidersPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    providers: Vec<ProviderRow>,
}

pub async fn social_logins(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> Response {
    let page = async {
        let (jar, operator) = operator(&app, jar, &uri).await?;
        let providers = SocialLoginsView::list(&app.authority.store.db)
            .await?
            .into_iter()
            .filter_map(|record| {
                let config: SocialLoginConfig = serde_json::from_str(&record.config).ok()?;
                Some(ProviderRow {
                    kind: match config.identification {
                        Identification::OpenId => "OpenID Connect",
                        Identification::UserInfo { .. } => "OAuth 2 with a user-info endpoint",
                    },
                    issuer: config
                        .endpoints
                        .issuer
                        .unwrap_or_else(|| config.endpoints.authorization.as_str().to_owned()),
                    sign_ups: match config.sign_ups {
                        SignUps::Allow => "allowed",
                        SignUps::Deny => "denied",
                    },
                    enabled: config.enabled,
                    name: record.name,
                    id: record.provider_id,
                })
            })
            .collect();
        let page = ProvidersPage {
            chrome: &operator.chrome,
            operator: &operator,
            providers,
        };
        Ok::<_, Refusal>((jar, render(StatusCode::OK, &page)).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}
