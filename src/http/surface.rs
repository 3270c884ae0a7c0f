//! Which kind of caller an endpoint answers, and how a refusal is said to it.
//!
//! Every error must reach its caller in the endpoint's own format, including the refusals that
//! happen before a handler runs (a body too large, a method not allowed, a query that does not
//! parse, a control character in the path): RFC 6749 §5.2 JSON on the OAuth endpoints, RFC 7591
//! §3.2.2 JSON on registration, the admin API's JSON, and an HTML page for a person.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::paths;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Token, introspection, revocation, userinfo, discovery, metrics: JSON for programs.
    OAuth,
    /// RFC 7591 / 7592 registration: JSON with `invalid_client_metadata` for bad metadata.
    Registration,
    /// `/admin/api`: JSON with the offending field when there is one.
    Admin,
    /// Pages a person's browser shows: sign-in, sign-out and the authorization endpoint.
    Page,
}

impl Surface {
    pub fn of(path: &str) -> Surface {
        if path.starts_with(paths::ADMIN_API) {
            Surface::Admin
        } else if path.starts_with(paths::REGISTER) || path == paths::FRAPPE_REGISTER {
            Surface::Registration
        } else if path.starts_with(paths::ACCOUNT)
            || path.starts_with(paths::CONSOLE)
            || path.starts_with(paths::LOGIN)
            || [
                paths::AUTHORIZE,
                paths::FRAPPE_AUTHORIZE,
                paths::LOGIN,
                paths::LOGOUT,
                paths::DEVICE,
            ]
            .contains(&path)
        {
            Surface::Page
        } else {
            Surface::OAuth
        }
    }

    /// The refusal `status` with `description`, in this surface's format. `field` names the
    /// input at fault, where there is one.
    pub fn error(self, status: StatusCode, description: &str, field: Option<&str>) -> Response {
        let mut response = match self {
            Surface::Page => super::pages::error_page(status, title(status), description),
            Surface::OAuth | Surface::Registration | Surface::Admin => {
                let code = match (self, status) {
                    (Surface::Registration, StatusCode::BAD_REQUEST) if field.is_some() => {
                        "invalid_client_metadata"
                    }
                    _ => code(status),
                };
                let mut body = json!({ "error": code, "error_description": description });
                if let (Surface::Admin, Some(field)) = (self, field) {
                    body["field"] = json!(field);
                }
                (status, axum::Json(body)).into_response()
            }
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            headers
                .entry(header::RETRY_AFTER)
                .or_insert(HeaderValue::from_static("1"));
        }
        response
    }
}

/// The error code for an HTTP-level refusal. RFC 6749 has no code for most of these; the
/// request is malformed, so `invalid_request`, except where the status says more.
fn code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::CONFLICT => "conflict",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        StatusCode::SERVICE_UNAVAILABLE => "temporarily_unavailable",
        s if s.is_server_error() => "server_error",
        _ => "invalid_request",
    }
}

fn title(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "Page not found",
        StatusCode::METHOD_NOT_ALLOWED => "Not allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "Request too large",
        StatusCode::REQUEST_TIMEOUT => "Request timed out",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        StatusCode::SERVICE_UNAVAILABLE => "Temporarily unavailable",
        s if s.is_server_error() => "Something went wrong",
        _ => "Bad request",
    }
}

/// What a person or client is told for a refusal the HTTP layer itself produced.
pub fn describe(status: StatusCode, detail: &str) -> String {
    let detail = detail.trim();
    match status {
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed here".into(),
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large".into(),
        StatusCode::NOT_FOUND if detail.is_empty() => "no such endpoint".into(),
        _ if detail.is_empty() => status
            .canonical_reason()
            .unwrap_or("the request was refused")
            .to_lowercase(),
        _ => detail.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_has_its_surface() {
        assert_eq!(Surface::of("/oauth/token"), Surface::OAuth);
        assert_eq!(Surface::of("/oauth/register/abc"), Surface::Registration);
        assert_eq!(Surface::of("/admin/api/clients"), Surface::Admin);
        assert_eq!(Surface::of("/login"), Surface::Page);
        assert_eq!(Surface::of("/oauth/authorize"), Surface::Page);
        assert_eq!(Surface::of("/nowhere"), Surface::OAuth);
    }
}
