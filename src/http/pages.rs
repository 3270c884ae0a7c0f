//! Pages for people, and what every page shares: the frame around its content ([`Chrome`]:
//! the site's name and logo, who is signed in, the sign-out link), the stylesheet, and the
//! error pages. Plain server-rendered HTML that works without JavaScript (DESIGN §6); the
//! pages themselves live in `login.rs`, `logout.rs`, `account.rs` and `authorize.rs`.

use askama::Template;
use authledger_domain::client::RegisteredClient;
use authledger_domain::settings::SettingsValues;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::failure::Failure;
use super::AppState;
use crate::error::AppError;

/// What every page shows around its content.
pub struct Chrome {
    pub site_name: String,
    /// Only an https logo is shown: a page over https must not load anything in the clear.
    pub site_logo_uri: Option<String>,
    /// The signed-in person's username: the header then links their account and sign-out.
    pub signed_in: Option<String>,
}

impl Chrome {
    /// The frame as the settings describe it.
    pub fn new(settings: &SettingsValues, signed_in: Option<String>) -> Chrome {
        Chrome {
            site_name: settings.site_name.clone(),
            site_logo_uri: settings
                .site_logo_uri
                .as_ref()
                .map(|u| u.as_str())
                .filter(|u| u.starts_with("https://"))
                .map(str::to_owned),
            signed_in,
        }
    }

    /// The frame when the settings cannot be read (the database is down).
    pub fn plain() -> Chrome {
        Chrome::new(&SettingsValues::default(), None)
    }
}

/// A client as a page shows it: its name, its logo and the links it registered.
pub struct AppCard {
    pub name: String,
    pub logo: Option<String>,
    /// (URL, label): privacy policy, terms, home page.
    pub links: Vec<(String, &'static str)>,
}

impl AppCard {
    pub fn of(client: &RegisteredClient) -> AppCard {
        let metadata = &client.metadata;
        let https = |u: &authledger_domain::oauth::WebUrl| {
            Some(u.as_str().to_owned()).filter(|u| u.starts_with("https://"))
        };
        let links = [
            (&metadata.policy_uri, "Privacy policy"),
            (&metadata.tos_uri, "Terms of service"),
            (&metadata.client_uri, "About the application"),
        ]
        .into_iter()
        .filter_map(|(uri, label)| uri.as_ref().map(|u| (u.as_str().to_owned(), label)))
        .collect();
        AppCard {
            name: metadata.name.clone(),
            logo: metadata.logo_uri.as_ref().and_then(https),
            links,
        }
    }
}

/// What a scope lets the client do, in words for the consent and account pages.
pub fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "confirm who you are (your username)".into(),
        "profile" => "see your name and picture".into(),
        "email" => "see your email address".into(),
        "roles" => "see your roles".into(),
        "offline_access" => "keep access while you are away".into(),
        "all" => "act as you everywhere your account can".into(),
        "admin" => "administer this authorization server".into(),
        other => format!("use the `{other}` permission"),
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    chrome: &'a Chrome,
    title: &'a str,
    message: &'a str,
    link: Option<(&'a str, &'a str)>,
}

/// An HTML page (the router adds `Cache-Control: no-store` and the security headers).
pub fn html(status: StatusCode, body: String) -> Response {
    (status, Html(body)).into_response()
}

/// Renders a template; a template that fails to render is a bug, answered as a plain 500.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => html(status, body),
        Err(error) => {
            tracing::error!(%error, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// A page that says one thing, in `chrome`, optionally with one link onward.
pub fn message_page(
    chrome: &Chrome,
    status: StatusCode,
    title: &str,
    message: &str,
    link: Option<(&str, &str)>,
) -> Response {
    let page = MessagePage {
        chrome,
        title,
        message,
        link,
    };
    render(status, &page)
}

/// An error page whose frame is filled in on its way out ([`finish_pages`]), so that code
/// without the settings at hand (refusals before a handler runs, protocol errors) can say
/// what went wrong.
#[derive(Clone)]
struct PendingPage {
    title: String,
    message: String,
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let mut page = message_page(&Chrome::plain(), status, title, message, None);
    page.extensions_mut().insert(PendingPage {
        title: title.to_owned(),
        message: message.to_owned(),
    });
    page
}

/// Middleware: error pages get the site's name and logo. Headers and status stay as they
/// were; if the settings cannot be read the plain frame stays.
pub async fn finish_pages(
    State(app): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let Some(pending) = response.extensions_mut().remove::<PendingPage>() else {
        return response;
    };
    let Ok(settings) = app.authority.store.settings_values().await else {
        return response;
    };
    let chrome = Chrome::new(&settings, None);
    let page = MessagePage {
        chrome: &chrome,
        title: &pending.title,
        message: &pending.message,
        link: None,
    };
    if let Ok(body) = page.render() {
        response.headers_mut().remove(header::CONTENT_LENGTH);
        *response.body_mut() = axum::body::Body::from(body);
    }
    response
}

/// The page for our own failure: 503 with `Retry-After` while the database cannot be
/// reached, else 500, whose cause is logged once (see `failure.rs`), never shown.
pub fn failure_page(error: AppError) -> Response {
    if error.is_unavailable() {
        let mut page = error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "The service is briefly unavailable. Please try again in a moment.",
        );
        page.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return page;
    }
    let mut page = error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The request could not be completed. Please try again.",
    );
    if let Some(failure) = Failure::of(error) {
        failure.attach(&mut page);
    }
    page
}

/// The console's one script (times in the viewer's time zone), served from here so that the
/// CSP allows scripts from this host only, and no inline script.
pub async fn local_time_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/local-time.js"),
    )
        .into_response()
}

/// The pages' one stylesheet, served from here so that the CSP can forbid inline styles and
/// other hosts.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/authledger.css"),
    )
        .into_response()
}

/// Only local paths may be returned to after sign-in or sign-out: anything else would make
/// the page an open redirector.
pub fn safe_return_to(raw: Option<&str>) -> Option<String> {
    match raw {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            Some(path.to_owned())
        }
        _ => None,
    }
}
