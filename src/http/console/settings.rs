//! `/admin/settings`: every setting as a form field with a line of help, grouped as Frappe's
//! OAuth Settings are; each change is one `SettingsChanged` event with the person as actor.

use askama::Template;
use authledger_domain::metadata::Actor;
use authledger_domain::settings::{Setting, SettingsCommand, GROUPS, SETTINGS_ID};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::SignedCookieJar;

use super::{change, operator, Operator, Refusal};
use crate::http::context::RequestContext;
use crate::http::pages::{render, Chrome};
use crate::http::AppState;

struct Field {
    key: &'static str,
    value: String,
    help: &'static str,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/settings.html")]
struct SettingsPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    groups: Vec<(&'static str, Vec<Field>)>,
}

fn groups(
    current: &[Setting],
    failed: Option<(&str, &str, String)>,
) -> Vec<(&'static str, Vec<Field>)> {
    GROUPS
        .iter()
        .map(|(title, keys)| {
            let fields = keys
                .iter()
                .map(|(key, help)| {
                    let shown = current
                        .iter()
                        .find(|s| s.key() == *key)
                        .map(Setting::value)
                        .unwrap_or_default();
                    let (value, error) = match &failed {
                        Some((k, typed, why)) if k == key => {
                            ((*typed).to_owned(), Some(why.clone()))
                        }
                        // A secret is never shown back, not even its hash.
                        _ if *key == "registration_initial_access_token" => (String::new(), None),
                        _ => (shown, None),
                    };
                    Field {
                        key,
                        value,
                        help,
                        error,
                    }
                })
                .collect();
            (*title, fields)
        })
        .collect()
}

async fn page(
    app: &AppState,
    jar: SignedCookieJar,
    uri: &axum::http::Uri,
    failed: Option<(&str, &str, String)>,
) -> Result<Response, Refusal> {
    let (jar, operator) = operator(app, jar, uri).await?;
    let current = app.authority.store.settings_values().await?.all();
    let status = if failed.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = SettingsPage {
        chrome: &operator.chrome,
        operator: &operator,
        groups: groups(&current, failed),
    };
    Ok((jar, render(status, &page)).into_response())
}

pub async fn show(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> Response {
    page(&app, jar, &uri, None)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/settings`: one setting, `key` and `value`; a value that does not parse is
/// shown next to its field, and nothing changes.
pub async fn set(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    context: RequestContext,
    body: Bytes,
) -> Response {
    let done = async {
        let (operator, form) = change(&app, jar.clone(), &uri, &body).await?;
        let key = form.get("key").unwrap_or_default();
        let value = form.get("value").unwrap_or_default().trim();
        let setting = match Setting::parse(key, value) {
            Ok(setting) => setting,
            Err(error) => {
                return page(&app, jar, &uri, Some((key, value, error.to_string()))).await
            }
        };
        app.authority
            .store
            .settings
            .execute(
                SETTINGS_ID,
                SettingsCommand::Change(setting),
                &context.metadata(Actor::User(operator.username)),
            )
            .await
            .map_err(crate::error::settings_error)?;
        Ok(Redirect::to(&format!("/admin/settings#{key}")).into_response())
    };
    done.await.unwrap_or_else(IntoResponse::into_response)
}
