//! The edge: what every request passes before a handler sees it, and every refusal after.
//!
//! - A control character in the path or query is refused (a NUL reaching Postgres is refused
//!   there as invalid text: it must not get that far).
//! - The body is read whole, within [`MAX_BODY_BYTES`] and the body read timeout: a client
//!   that announces more than it sends, or sends it byte by byte, is answered 408 instead of
//!   holding a connection and a task.
//! - A JSON body with a control character in any string (or key) is refused, naming where.
//!   Form bodies are checked where they are parsed ([`crate::oauth::params::Params`]).
//! - Refusals produced by the HTTP layer itself (axum's plain-text 405, 413, 415, 422, query
//!   rejections) are said again in the endpoint's own format ([`Surface`]).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

use super::surface::{describe, Surface};
use super::Limits;

/// The largest request body accepted. OAuth forms and admin bodies are a few kilobytes; a
/// registration at the limits of `ClientMetadata` (100 redirect URIs of 2,000 characters)
/// stays under it.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The most bytes of an error body the HTTP layer produced that are re-read to re-render it.
const REJECTION_TEXT_LIMIT: usize = 4096;

pub async fn guard(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    let surface = Surface::of(request.uri().path());
    if let Some(part) = control_character_in_uri(request.uri()) {
        return surface.error(
            StatusCode::BAD_REQUEST,
            &format!("the request {part} contains a control character"),
            None,
        );
    }
    let (parts, body) = request.into_parts();
    let announced = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large(surface);
    }
    let bytes = match tokio::time::timeout(
        limits.body_read_timeout,
        axum::body::to_bytes(body, MAX_BODY_BYTES),
    )
    .await
    {
        Err(_) => {
            return surface.error(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
                None,
            )
        }
        Ok(Err(error)) if is_length_limit(&error) => return too_large(surface),
        Ok(Err(_)) => {
            return surface.error(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
                None,
            )
        }
        Ok(Ok(bytes)) => bytes,
    };
    if is_json(&parts.headers) {
        if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
            if let Some(at) = control_character_in_json(&value, "") {
                let field = at.trim_start_matches('.').to_owned();
                return surface.error(
                    StatusCode::BAD_REQUEST,
                    &format!("{field}: must not contain control characters"),
                    Some(&field),
                );
            }
        }
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    in_own_format(surface, response).await
}

fn too_large(surface: Surface) -> Response {
    surface.error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        None,
    )
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// Whether the body is declared as JSON (`application/json` or a `+json` type).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            v == "application/json" || v.ends_with("+json")
        })
}

/// "path" or "query" when the percent-decoded path or a decoded query name or value holds a
/// control character.
fn control_character_in_uri(uri: &axum::http::Uri) -> Option<&'static str> {
    let decoded = percent_encoding::percent_decode_str(uri.path()).decode_utf8_lossy();
    if decoded.chars().any(char::is_control) {
        return Some("path");
    }
    let query = uri.query()?;
    form_urlencoded::parse(query.as_bytes())
        .any(|(name, value)| {
            name.chars().any(char::is_control) || value.chars().any(char::is_control)
        })
        .then_some("query")
}

/// Where in a JSON document a string or key holds a control character: `.field`, `.list[2]`.
pub fn control_character_in_json(value: &Value, at: &str) -> Option<String> {
    match value {
        Value::String(s) if s.chars().any(char::is_control) => Some(at.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| control_character_in_json(item, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let here = format!("{at}.{key}");
            if key.chars().any(char::is_control) {
                return Some(at.to_owned() + ".(a key)");
            }
            control_character_in_json(item, &here)
        }),
        _ => None,
    }
}

/// Re-renders a refusal the HTTP layer produced as plain text (or with no body) in the
/// surface's format; every other response passes unchanged.
async fn in_own_format(surface: Surface, response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let plain = match response.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(v) => v.to_str().is_ok_and(|v| v.starts_with("text/plain")),
    };
    if !plain {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, REJECTION_TEXT_LIMIT)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut rendered = surface.error(status, &describe(status, &text), None);
    // Keep what the refusal says about the method or retry (`Allow`, `Retry-After`).
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = parts.headers.get(&name) {
            rendered.headers_mut().insert(name, value.clone());
        }
    }
    rendered
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_control_character_is_found_wherever_it_is_in_a_json_document() {
        let value = json!({"a": "ok", "b": ["x", "y\u{0}z"]});
        assert_eq!(
            control_character_in_json(&value, "").as_deref(),
            Some(".b[1]")
        );
        assert_eq!(control_character_in_json(&json!({"a": [1, "é"]}), ""), None);
    }

    #[test]
    fn an_encoded_nul_in_a_path_or_query_is_found() {
        let uri: axum::http::Uri = "/admin/api/clients/a%00b".parse().unwrap();
        assert_eq!(control_character_in_uri(&uri), Some("path"));
        let uri: axum::http::Uri = "/admin/api/audit?grant=%00".parse().unwrap();
        assert_eq!(control_character_in_uri(&uri), Some("query"));
        let uri: axum::http::Uri = "/login?return_to=%2Fa%20b".parse().unwrap();
        assert_eq!(control_character_in_uri(&uri), None);
    }
}
