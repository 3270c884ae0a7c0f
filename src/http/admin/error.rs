//! The admin API's one error type, rendered as JSON with the field at fault.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

use crate::error::AppError;
use crate::http::bearer::BearerError;

/// The admin API's error, rendered as JSON.
#[derive(Debug)]
pub enum ApiError {
    Invalid {
        field: Option<String>,
        message: String,
    },
    Unauthorized,
    Forbidden(&'static str),
    NotFound(String),
    Conflict(String),
    Unavailable,
    Internal,
}

/// The field an error message is about: `missing field \`x\``, or the leading identifier of
/// messages written as `field: reason`.
pub(super) fn field_of(message: &str) -> Option<String> {
    if let Some(rest) = message.split("field `").nth(1) {
        return rest.split('`').next().map(str::to_owned);
    }
    let lead: String = message
        .chars()
        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
        .collect();
    (!lead.is_empty() && message[lead.len()..].starts_with([':', ' '])).then_some(lead)
}

impl ApiError {
    pub(super) fn invalid(message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::Invalid {
            field: field_of(&message),
            message,
        }
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Invalid(m) => ApiError::invalid(m),
            AppError::NotFound(m) => ApiError::NotFound(m),
            AppError::Conflict(m) => ApiError::Conflict(m),
            error if error.is_unavailable() => ApiError::Unavailable,
            AppError::Unavailable(e) | AppError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "admin API failure");
                ApiError::Internal
            }
        }
    }
}

impl From<authledger_projections::ProjectionError> for ApiError {
    fn from(error: authledger_projections::ProjectionError) -> Self {
        ApiError::from(AppError::from(error))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::invalid(rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let refused = match &self {
            ApiError::Unauthorized => Some(BearerError::invalid_token(
                "a valid admin bearer token is required",
            )),
            ApiError::Forbidden(why) => Some(BearerError::insufficient_scope(*why)),
            _ => None,
        };
        if let Some(refused) = refused {
            return refused.with_scope("admin").into_response();
        }
        let (status, error, description, field) = match self {
            ApiError::Invalid { field, message } => {
                (StatusCode::BAD_REQUEST, "invalid_request", message, field)
            }
            ApiError::Unauthorized | ApiError::Forbidden(_) => unreachable!("rendered above"),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m, None),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m, None),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the store is unreachable; retry shortly".into(),
                None,
            ),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error".into(),
                None,
            ),
        };
        let mut body = json!({ "error": error, "error_description": description });
        if let Some(field) = field {
            body["field"] = json!(field);
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

pub(super) type ApiResult = Result<Response, ApiError>;

pub(super) fn ok(value: impl Serialize) -> ApiResult {
    Ok(Json(json!(value)).into_response())
}
