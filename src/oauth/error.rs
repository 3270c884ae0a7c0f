//! The OAuth errors, as the protocol defines them: the token endpoint's (RFC 6749 §5.2) and
//! the authorization endpoint's (§4.1.2.1), and where an authorization response goes.
//! `crate::http::render` says them to the client, once each.

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
    /// RFC 8707 §2: a resource that is unknown, not open to the client, or not granted.
    InvalidTarget,
    /// RFC 8628 §3.5: the person has not decided yet.
    AuthorizationPending,
    /// RFC 8628 §3.5: polling too often.
    SlowDown,
    /// RFC 8628 §3.5: the person denied the device.
    AccessDenied,
    /// RFC 8628 §3.5: the device code expired.
    ExpiredToken,
    /// Too many failed attempts from this caller: 429 with `Retry-After`.
    TooManyAttempts,
    /// The database cannot be reached: 503 with `Retry-After` (the RFC 6749 §4.1.2.1 code
    /// for a temporary condition).
    TemporarilyUnavailable,
    ServerError,
}

impl TokenErrorCode {
    /// The code of an RFC 6749 §5.2 error name, as domain errors give it.
    pub fn from_rfc6749(code: &str) -> Option<TokenErrorCode> {
        [
            TokenErrorCode::InvalidRequest,
            TokenErrorCode::InvalidClient,
            TokenErrorCode::InvalidGrant,
            TokenErrorCode::UnauthorizedClient,
            TokenErrorCode::UnsupportedGrantType,
            TokenErrorCode::InvalidScope,
            TokenErrorCode::InvalidTarget,
            TokenErrorCode::AuthorizationPending,
            TokenErrorCode::SlowDown,
            TokenErrorCode::AccessDenied,
            TokenErrorCode::ExpiredToken,
        ]
        .into_iter()
        .find(|c| c.as_str() == code)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TokenErrorCode::InvalidRequest => "invalid_request",
            TokenErrorCode::InvalidClient => "invalid_client",
            TokenErrorCode::InvalidGrant => "invalid_grant",
            TokenErrorCode::UnauthorizedClient => "unauthorized_client",
            TokenErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            TokenErrorCode::InvalidScope => "invalid_scope",
            TokenErrorCode::InvalidTarget => "invalid_target",
            TokenErrorCode::AuthorizationPending => "authorization_pending",
            TokenErrorCode::SlowDown => "slow_down",
            TokenErrorCode::AccessDenied => "access_denied",
            TokenErrorCode::ExpiredToken => "expired_token",
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
    /// Our own failure behind a `server_error`: logged once by the HTTP layer, never shown.
    pub cause: Option<std::sync::Arc<anyhow::Error>>,
}

impl TokenError {
    pub fn new(code: TokenErrorCode, description: impl Into<String>) -> Self {
        TokenError {
            code,
            description: description.into(),
            basic_attempted: false,
            retry_after: None,
            cause: None,
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
            AppError::Invalid { message, .. } => TokenError::invalid_request(message),
            AppError::NotFound(m) | AppError::Conflict(m) => TokenError::invalid_grant(m),
            AppError::Upstream(m) => TokenError::new(TokenErrorCode::ServerError, m),
            AppError::Tampered(m) => TokenError {
                cause: Some(std::sync::Arc::new(anyhow::anyhow!(m))),
                ..TokenError::new(TokenErrorCode::ServerError, "internal error")
            },
            error if error.is_unavailable() => TokenError {
                retry_after: Some(1),
                ..TokenError::new(
                    TokenErrorCode::TemporarilyUnavailable,
                    "the service is temporarily unavailable; retry shortly",
                )
            },
            AppError::Unavailable(e) | AppError::Internal(e) => TokenError {
                cause: Some(std::sync::Arc::new(e)),
                ..TokenError::new(TokenErrorCode::ServerError, "internal error")
            },
        }
    }
}

/// Error codes of the authorization endpoint (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizeErrorCode {
    InvalidRequest,
    UnauthorizedClient,
    AccessDenied,
    UnsupportedResponseType,
    InvalidScope,
    /// RFC 8707 §2: a `resource` that is unknown or not open to the client.
    InvalidTarget,
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
            AuthorizeErrorCode::InvalidTarget => "invalid_target",
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
    /// Where to send the person back with `params`, plus `state` and `iss`. Existing query
    /// parameters of the registered URI are kept (RFC 6749 §3.1.2).
    pub fn url(&self, params: &[(&str, &str)]) -> url::Url {
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
        url
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
    Failure(AppError),
    /// Sent back to the client.
    Redirect {
        target: ResponseTarget,
        code: AuthorizeErrorCode,
        description: String,
    },
}
