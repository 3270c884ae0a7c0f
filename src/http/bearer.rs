//! Bearer tokens (RFC 6750) where this server is the resource server: the userinfo endpoint,
//! the admin API and RFC 7592 registration management. Reading the token from a request, and
//! the one refusal all three answer with: 401 `invalid_token` or 403 `insufficient_scope`,
//! JSON body and `WWW-Authenticate` challenge alike.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The token of an `Authorization: Bearer ...` header (RFC 6750 §2.1). The scheme is
/// case-insensitive (RFC 9110 §11.1).
pub fn from_header(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A refusal of a bearer token (RFC 6750 §3.1).
#[derive(Debug, Clone)]
pub struct BearerError {
    insufficient_scope: bool,
    description: String,
    /// The scope a token must hold, named in the challenge.
    scope: Option<&'static str>,
    /// Where the protected-resource metadata is (RFC 9728 §5.1).
    resource_metadata: Option<String>,
}

impl BearerError {
    /// 401: no token, or one that is not an active access token.
    pub fn invalid_token(description: impl Into<String>) -> Self {
        BearerError {
            insufficient_scope: false,
            description: description.into(),
            scope: None,
            resource_metadata: None,
        }
    }

    /// 403: an active token without what this resource needs.
    pub fn insufficient_scope(description: impl Into<String>) -> Self {
        BearerError {
            insufficient_scope: true,
            ..BearerError::invalid_token(description)
        }
    }

    pub fn with_scope(self, scope: &'static str) -> Self {
        BearerError {
            scope: Some(scope),
            ..self
        }
    }

    pub fn with_resource_metadata(self, url: String) -> Self {
        BearerError {
            resource_metadata: Some(url),
            ..self
        }
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let (status, error) = match self.insufficient_scope {
            false => (StatusCode::UNAUTHORIZED, "invalid_token"),
            true => (StatusCode::FORBIDDEN, "insufficient_scope"),
        };
        // RFC 6750 §3: these values use printable ASCII but `"` and `\\` only.
        let quoted = |s: &str| -> String {
            s.replace('§', "section ")
                .chars()
                .map(|c| match c {
                    '"' | '\\' => '\'',
                    ' '..='~' => c,
                    _ => '?',
                })
                .collect()
        };
        let mut challenge = format!(
            "Bearer error=\"{error}\", error_description=\"{}\"",
            quoted(&self.description)
        );
        if let Some(scope) = self.scope {
            challenge.push_str(&format!(", scope=\"{scope}\""));
        }
        if let Some(url) = &self.resource_metadata {
            challenge.push_str(&format!(", resource_metadata=\"{}\"", quoted(url)));
        }
        let body = json!({ "error": error, "error_description": self.description });
        let mut response =
            super::request_log::with_error((status, axum::Json(body)).into_response(), error);
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_outside_printable_ascii_still_makes_a_challenge() {
        let response =
            BearerError::invalid_token("a token is required (RFC 7591 §3) \"x\"").into_response();
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(challenge.contains("RFC 7591 section 3) 'x'"), "{challenge}");
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_the_token_required() {
        let mut headers = HeaderMap::new();
        for (value, expected) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER  abc ", Some("abc")),
            ("Bearer ", None),
            ("Basic abc", None),
        ] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(from_header(&headers), expected, "{value}");
        }
    }
}
