//! The application's error: what the CLI and HTTP layers render, each in one place.

use authledger_domain::client::ClientError;
use authledger_domain::user::UserError;
use authledger_projections::ProjectionError;
use cqrs_es::AggregateError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad input; the message names the field.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The request is well-formed but the current state refuses it.
    #[error("{0}")]
    Conflict(String),
    /// A store or infrastructure failure. Rendered as a generic message; the cause chain is
    /// logged, never shown to an HTTP caller.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn invalid(message: impl std::fmt::Display) -> Self {
        AppError::Invalid(message.to_string())
    }
}

impl From<ProjectionError> for AppError {
    fn from(error: ProjectionError) -> Self {
        AppError::Internal(error.into())
    }
}

/// Store-level outcomes of any aggregate; `domain` maps the aggregate's own refusals.
fn from_aggregate_error<E: std::error::Error + Send + Sync + 'static>(
    error: AggregateError<E>,
    subject: &str,
    domain: impl FnOnce(E) -> AppError,
) -> AppError {
    match error {
        AggregateError::UserError(e) => domain(e),
        AggregateError::AggregateConflict => AppError::Conflict(format!(
            "{subject} was changed concurrently too many times; try again"
        )),
        other => AppError::Internal(anyhow::Error::new(other)),
    }
}

pub fn client_error(client_id: &str, error: AggregateError<ClientError>) -> AppError {
    let subject = format!("client {client_id}");
    from_aggregate_error(error, &subject, |e| match e {
        ClientError::NotRegistered => AppError::NotFound(format!("{subject}: {e}")),
        ClientError::InvalidMetadata { .. } => AppError::Invalid(e.to_string()),
        _ => AppError::Conflict(format!("{subject}: {e}")),
    })
}

pub fn user_error(username: &str, error: AggregateError<UserError>) -> AppError {
    let subject = format!("user {username}");
    from_aggregate_error(error, &subject, |e| match e {
        UserError::NotRegistered => AppError::NotFound(format!("{subject}: {e}")),
        UserError::Hashing(_) => AppError::Internal(anyhow::Error::new(e)),
        _ => AppError::Conflict(format!("{subject}: {e}")),
    })
}
