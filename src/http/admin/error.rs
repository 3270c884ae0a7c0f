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
    /// Another provider authledger called failed or refused.
    BadGateway(String),
    Unavailable,
    /// Our own failure; its cause is logged once (see `http/failure.rs`), never shown.
    Internal(std::sync::Arc<anyhow::Error>),
}

impl ApiError {
    /// Bad input that no single field is to blame for.
    pub(super) fn invalid(message: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: None,
            message: message.into(),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Invalid { field, message } => ApiError::Invalid { field, message },
            AppError::NotFound(m) => ApiError::NotFound(m),
            AppError::Conflict(m) => ApiError::Conflict(m),
            AppError::Upstream(m) => ApiError::BadGateway(m),
            AppError::Tampered(m) => ApiError::Internal(std::sync::Arc::new(anyhow::anyhow!(m))),
            error if error.is_unavailable() => ApiError::Unavailable,
            AppError::Unavailable(e) | AppError::Internal(e) => {
                ApiError::Internal(std::sync::Arc::new(e))
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
        // serde names the field it could not read: "missing field `x`", "unknown field `x`".
        let message = rejection.body_text();
        let field = message
            .split("field `")
            .nth(1)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned);
        ApiError::Invalid { field, message }
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
        let cause = match &self {
            ApiError::Internal(cause) => Some(cause.clone()),
            _ => None,
        };
        let (status, error, description, field) = match self {
            ApiError::Invalid { field, message } => {
                (StatusCode::BAD_REQUEST, "invalid_request", message, field)
            }
            ApiError::Unauthorized | ApiError::Forbidden(_) => unreachable!("rendered above"),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m, None),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m, None),
            ApiError::BadGateway(m) => (StatusCode::BAD_GATEWAY, "upstream_error", m, None),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the store is unreachable; retry shortly".into(),
                None,
            ),
            ApiError::Internal(_) => (
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
        let mut response =
            crate::http::request_log::with_error((status, Json(body)).into_response(), error);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Some(cause) = cause {
            crate::http::failure::Failure::new(cause).attach(&mut response);
        }
        response
    }
}

pub(super) type ApiResult = Result<Response, ApiError>;

pub(super) fn ok(value: impl Serialize) -> ApiResult {
    Ok(Json(json!(value)).into_response())
}
