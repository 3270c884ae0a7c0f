//! Protocol outcomes and errors as HTTP responses, each rendered here once: the token
//! endpoint's JSON (RFC 6749 §5.1, §5.2), redirects back to a client (§4.1.2, §4.1.2.1),
//! registration errors (RFC 7591 §3.2.2), and refusals for people through `pages`. None of them may be cached:
//! the routers that serve them add `Cache-Control: no-store` (see [`no_store`]).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;
use tower_http::set_header::SetResponseHeaderLayer;

use super::failure::Failure;
use crate::oauth::error::{AuthorizeError, ResponseTarget, TokenError, TokenErrorCode};
use crate::oauth::grants::TokenResponse;
use crate::oauth::registration::RegistrationError;

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        axum::Json(self).into_response()
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
        let mut response = super::request_log::with_error(
            (status, axum::Json(body)).into_response(),
            self.code.as_str(),
        );
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
        if let Some(cause) = self.cause {
            Failure::new(cause).attach(&mut response);
        }
        response
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1) on every response of the
/// routes it wraps that does not say otherwise: tokens, codes, claims and personal pages.
pub fn no_store() -> (
    SetResponseHeaderLayer<HeaderValue>,
    SetResponseHeaderLayer<HeaderValue>,
) {
    (
        SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ),
        SetResponseHeaderLayer::if_not_present(
            header::PRAGMA,
            HeaderValue::from_static("no-cache"),
        ),
    )
}

/// Sends the person back to the client with `params` (plus `state` and `iss`).
pub fn redirect(target: &ResponseTarget, params: &[(&str, &str)]) -> Response {
    Redirect::to(target.url(params).as_str()).into_response()
}

impl IntoResponse for AuthorizeError {
    fn into_response(self) -> Response {
        match self {
            AuthorizeError::Untrusted { title, message } => {
                // The person cannot be sent back; tell them where they stand and what to do.
                let message = format!(
                    "{message} Nothing about you was shared with the application. Go back to \
                     it and try again; if this keeps happening, tell the application's \
                     developers that its sign-in link is wrong."
                );
                super::pages::error_page(StatusCode::BAD_REQUEST, title, &message)
            }
            AuthorizeError::Failure(error) => super::pages::failure_page(error),
            AuthorizeError::Redirect {
                target,
                code,
                description,
            } => super::request_log::with_error(
                redirect(
                    &target,
                    &[
                        ("error", code.as_str()),
                        ("error_description", &description),
                    ],
                ),
                code.as_str(),
            ),
        }
    }
}

impl IntoResponse for RegistrationError {
    fn into_response(self) -> Response {
        let (error, description) = match self {
            RegistrationError::InvalidRedirectUri(d) => ("invalid_redirect_uri", d),
            RegistrationError::InvalidClientMetadata(d) => ("invalid_client_metadata", d),
        };
        let body = json!({ "error": error, "error_description": description });
        super::request_log::with_error(
            (StatusCode::BAD_REQUEST, axum::Json(body)).into_response(),
            error,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AppError;

    /// Our own failure at the authorization endpoint was once answered 400, as if the request
    /// were at fault.
    #[test]
    fn an_internal_failure_at_the_authorization_endpoint_is_a_500_page_and_an_outage_a_503() {
        let failed =
            AuthorizeError::Failure(AppError::Internal(anyhow::anyhow!("a bug"))).into_response();
        assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(failed.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(
            failed.extensions().get::<Failure>().is_some(),
            "the cause goes to the one log line"
        );
        let down =
            AuthorizeError::Failure(AppError::Unavailable(anyhow::anyhow!("down"))).into_response();
        assert!(
            down.extensions().get::<Failure>().is_none(),
            "an outage is reported by the store watch, not per request"
        );
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(down.headers()[header::RETRY_AFTER], "1");
    }
}
