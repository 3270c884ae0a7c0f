//! The application's error: what the CLI and HTTP layers render, each in one place.

use authledger_domain::client::ClientError;
use authledger_domain::settings::SettingsError;
use authledger_domain::user::UserError;
use authledger_projections::ProjectionError;
use cqrs_es::AggregateError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad input: the field at fault, when there is one, and a message that names it.
    #[error("{message}")]
    Invalid {
        field: Option<String>,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    /// The request is well-formed but the current state refuses it.
    #[error("{0}")]
    Conflict(String),
    /// Another server authledger called (a connected app's or a social login's provider)
    /// failed or refused: what it said, in words safe to show (never a token or secret).
    #[error("{0}")]
    Upstream(String),
    /// The database cannot be reached (no connection within the pool's acquire timeout, or
    /// a connection broke): answered 503 with `Retry-After`, since it passes by itself.
    #[error("the database is unreachable: {0:#}")]
    Unavailable(anyhow::Error),
    /// The ledger does not verify: where and how it breaks (`authledger ledger verify`).
    #[error("the ledger does not verify: {0}")]
    Tampered(String),
    /// A store or infrastructure failure. Rendered as a generic message; the cause chain is
    /// logged, never shown to an HTTP caller.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl AppError {
    pub fn invalid(message: impl std::fmt::Display) -> Self {
        AppError::Invalid {
            field: None,
            message: message.to_string(),
        }
    }

    /// Bad input in `field`; the message (which says what is wrong) names it too, for people
    /// reading a CLI error.
    pub fn invalid_field(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        AppError::Invalid {
            field: Some(field.into()),
            message: message.to_string(),
        }
    }

    /// A failure of the event store behind a command: [`AppError::Conflict`] when the
    /// aggregate kept changing under it (the store already retried), [`AppError::Unavailable`]
    /// when the database could not be reached, [`AppError::Internal`] otherwise. An
    /// aggregate's own refusal ([`AggregateError::UserError`]) is for its caller to map first.
    pub fn store<E: std::error::Error + Send + Sync + 'static>(error: AggregateError<E>) -> Self {
        if let AggregateError::AggregateConflict = error {
            return AppError::Conflict(
                "it was changed concurrently too many times; try again".into(),
            );
        }
        let unreachable = match &error {
            AggregateError::DatabaseConnectionError(_) => true,
            AggregateError::UnexpectedError(cause) => cause
                .downcast_ref::<sqlx::Error>()
                .is_some_and(authledger_projections::db::is_unreachable),
            _ => false,
        };
        match unreachable {
            true => AppError::Unavailable(anyhow::Error::new(error)),
            false => AppError::Internal(anyhow::Error::new(error)),
        }
    }

    /// Whether this failure means the database cannot be reached, wherever in the cause chain
    /// that was found.
    pub fn is_unavailable(&self) -> bool {
        match self {
            AppError::Unavailable(_) => true,
            AppError::Internal(error) => unreachable_in_chain(error),
            _ => false,
        }
    }
}

fn unreachable_in_chain(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .is_some_and(authledger_projections::db::is_unreachable)
            || cause
                .downcast_ref::<ProjectionError>()
                .is_some_and(ProjectionError::is_unreachable)
    })
}

impl From<anyhow::Error> for AppError {
    fn from(error: anyhow::Error) -> Self {
        match unreachable_in_chain(&error) {
            true => AppError::Unavailable(error),
            false => AppError::Internal(error),
        }
    }
}

impl From<ProjectionError> for AppError {
    fn from(error: ProjectionError) -> Self {
        match error {
            ProjectionError::UnknownProjection { .. } => {
                return AppError::invalid_field("name", error)
            }
            ProjectionError::Archive(why) => return AppError::invalid_field("archive_dir", why),
            _ => {}
        }
        match error.is_unreachable() {
            true => AppError::Unavailable(error.into()),
            false => AppError::Internal(error.into()),
        }
    }
}

/// Store-level outcomes of any aggregate; `domain` maps the aggregate's own refusals.
pub fn from_aggregate_error<E: std::error::Error + Send + Sync + 'static>(
    error: AggregateError<E>,
    subject: &str,
    domain: impl FnOnce(E) -> AppError,
) -> AppError {
    match error {
        AggregateError::UserError(e) => domain(e),
        AggregateError::AggregateConflict => AppError::Conflict(format!(
            "{subject} was changed concurrently too many times; try again"
        )),
        other => AppError::store(other),
    }
}

pub fn client_error(client_id: &str, error: AggregateError<ClientError>) -> AppError {
    let subject = format!("client {client_id}");
    from_aggregate_error(error, &subject, |e| match e {
        ClientError::NotRegistered => AppError::NotFound(format!("{subject}: {e}")),
        ClientError::InvalidMetadata { ref field, .. } => {
            AppError::invalid_field(field.clone(), &e)
        }
        _ => AppError::Conflict(format!("{subject}: {e}")),
    })
}

pub fn user_error(username: &str, error: AggregateError<UserError>) -> AppError {
    let subject = format!("user {username}");
    from_aggregate_error(error, &subject, |e| match e {
        UserError::NotRegistered => AppError::NotFound(format!("{subject}: {e}")),
        UserError::Hashing(_) => AppError::Internal(anyhow::Error::new(e)),
        UserError::InvalidReason(_) => AppError::invalid_field("reason", &e),
        _ => AppError::Conflict(format!("{subject}: {e}")),
    })
}

pub fn settings_error(error: AggregateError<SettingsError>) -> AppError {
    from_aggregate_error(error, "the settings", |e| match &e {
        SettingsError::InvalidValue { key, .. } => AppError::invalid_field(*key, &e),
        SettingsError::UnknownKey(key) => AppError::invalid_field(key.clone(), &e),
    })
}

impl From<authledger_domain::user::ProfileRejected> for AppError {
    fn from(rejected: authledger_domain::user::ProfileRejected) -> Self {
        AppError::invalid_field(rejected.field(), &rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflict_that_outlasted_the_retries_is_a_conflict_not_an_internal_error() {
        let error = AppError::store(AggregateError::<SettingsError>::AggregateConflict);
        assert!(matches!(error, AppError::Conflict(_)), "{error:?}");
        let error = settings_error(AggregateError::AggregateConflict);
        assert!(matches!(error, AppError::Conflict(_)), "{error:?}");
    }

    #[test]
    fn an_unreachable_database_is_unavailable() {
        let cause: Box<dyn std::error::Error + Send + Sync> = Box::new(sqlx::Error::PoolTimedOut);
        let error = AppError::store(AggregateError::<SettingsError>::UnexpectedError(cause));
        assert!(error.is_unavailable(), "{error:?}");
    }
}
