//! The OAuth error surfaces, each rendered once.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::json;

use crate::error::AppError;

/// Error codes of the token endpoint (RFC 6749 §5.2; `server_error` for our own failures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    /// Too many failed attempts from this caller: 429 with `Retry-After`.
    TooManyAttempts,
    /// The database cannot be reached: 503 with `Retry-After` (the RFC 6749 §4.1.2.1 code
    /// for a temporary condition).
    TemporarilyUnavailable,
    ServerError,
}

impl TokenErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenErrorCode::InvalidRequest => "invalid_request",
            TokenErrorCode::InvalidClient => "invalid_client",
            TokenErrorCode::InvalidGrant => "invalid_grant",
            TokenErrorCode::UnauthorizedClient => "unauthorized_client",
            TokenErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            TokenErrorCode::InvalidScope => "invalid_scope",
            TokenErrorCode::TooManyAttempts => "invalid_client",
            TokenErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            TokenErrorCode::ServerError => "server_error",
        }
    }
}

/// An error answered as RFC 6749 §5.2 JSON.
#[derive(Debug)]
pub struct TokenError {
    pub code: TokenErrorCode,
    pub description: String,
    /// RFC 6749 §5.2: when the client tried HTTP Basic, a 401 carries `WWW-Authenticate`.
    pub basic_attempted: bool,
    /// Seconds before trying again, for 429 and 503 answers.
    pub retry_after: Option<u64>,
}

impl TokenError {
    pub fn new(code: TokenErrorCode, description: impl Into<String>) -> Self {
        TokenError {
            code,
            description: description.into(),
            basic_attempted: false,
            retry_after: None,
        }
    }
    pub fn invalid_request(description: impl Into<String>) -> Self {
        TokenError::new(TokenErrorCode::InvalidRequest, description)
    }
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        TokenError::new(TokenErrorCode::InvalidGrant, description)
    }
    pub fn invalid_client(description: impl Into<String>) -> Self {
        TokenError::new(TokenErrorCode::InvalidClient, description)
    }
}

impl From<AppError> for TokenError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Invalid(m) => TokenError::invalid_request(m),
            AppError::NotFound(m) | AppError::Conflict(m) => TokenError::invalid_grant(m),
            error if error.is_unavailable() => TokenError {
                retry_after: Some(1),
                ..TokenError::new(
                    TokenErrorCode::TemporarilyUnavailable,
                    "the service is temporarily unavailable; retry shortly",
                )
            },
            AppError::Unavailable(e) | AppError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "token endpoint failure");
                TokenError::new(TokenErrorCode::ServerError, "internal error")
            }
        }
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let status = match self.code {
            TokenErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            TokenErrorCode::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            TokenErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            TokenErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = json!({ "error": self.code.as_str(), "error_description": self.description });
        let mut response = (status, no_store(), axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED && self.basic_attempted {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"authledger\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// Error codes of the authorization endpoint (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizeErrorCode {
    InvalidRequest,
    UnauthorizedClient,
    AccessDenied,
    UnsupportedResponseType,
    InvalidScope,
    ServerError,
    LoginRequired,
    ConsentRequired,
}

impl AuthorizeErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizeErrorCode::InvalidRequest => "invalid_request",
            AuthorizeErrorCode::UnauthorizedClient => "unauthorized_client",
            AuthorizeErrorCode::AccessDenied => "access_denied",
            AuthorizeErrorCode::UnsupportedResponseType => "unsupported_response_type",
            AuthorizeErrorCode::InvalidScope => "invalid_scope",
            AuthorizeErrorCode::ServerError => "server_error",
            AuthorizeErrorCode::LoginRequired => "login_required",
            AuthorizeErrorCode::ConsentRequired => "consent_required",
        }
    }
}

/// Where an authorization response goes, once the client and redirect URI are trusted.
#[derive(Debug, Clone)]
pub struct ResponseTarget {
    pub redirect_uri: String,
    /// The implicit grant answers in the fragment (RFC 6749 §4.2.2), the code grant in the
    /// query.
    pub in_fragment: bool,
    pub state: Option<String>,
    /// RFC 9207: every authorization response names the issuer.
    pub issuer: String,
}

impl ResponseTarget {
    /// Redirects with `params`, plus `state` and `iss`. Existing query parameters of the
    /// registered URI are kept (RFC 6749 §3.1.2).
    pub fn redirect(&self, params: &[(&str, &str)]) -> Response {
        let mut pairs: Vec<(&str, &str)> = params.to_vec();
        if let Some(state) = &self.state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", &self.issuer));
        let mut url = url::Url::parse(&self.redirect_uri).expect("registered redirect URIs parse");
        if self.in_fragment {
            let fragment = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            url.set_fragment(Some(&fragment));
        } else {
            url.query_pairs_mut().extend_pairs(pairs);
        }
        let mut response = Redirect::to(url.as_str()).into_response();
        response.headers_mut().extend(no_store());
        response
    }
}

/// A refusal at the authorization endpoint.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted (RFC 6749 §4.1.2.1): tell the person,
    /// never redirect.
    Untrusted {
        title: &'static str,
        message: String,
    },
    /// Our own failure: a generic page (500), or 503 with `Retry-After` while the database
    /// cannot be reached. Never a redirect, never a 400.
    Failure { unavailable: bool },
    /// Sent back to the client.
    Redirect {
        target: ResponseTarget,
        code: AuthorizeErrorCode,
        description: String,
    },
}

impl IntoResponse for AuthorizeError {
    fn into_response(self) -> Response {
        match self {
            AuthorizeError::Untrusted { title, message } => {
                crate::http::pages::error_page(StatusCode::BAD_REQUEST, title, &message)
            }
            AuthorizeError::Failure { unavailable } => {
                crate::http::pages::failure_page(unavailable)
            }
            AuthorizeError::Redirect {
                target,
                code,
                description,
            } => target.redirect(&[
                ("error", code.as_str()),
                ("error_description", &description),
            ]),
        }
    }
}

/// An HTML page, never cached (the router adds the security headers every response carries).
pub fn html(status: StatusCode, body: String) -> Response {
    (status, no_store(), Html(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our own failure at the authorization endpoint was once answered 400, as if the request
    /// were at fault.
    #[test]
    fn an_internal_failure_at_the_authorization_endpoint_is_a_500_page_and_an_outage_a_503() {
        let failed = AuthorizeError::Failure { unavailable: false }.into_response();
        assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(failed.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let down = AuthorizeError::Failure { unavailable: true }.into_response();
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(down.headers()[header::RETRY_AFTER], "1");
    }
}
