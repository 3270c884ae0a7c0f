//! Our own failures (a bug, a store that refused a statement): the caller gets a generic
//! answer in its endpoint's format, and the cause is logged here, once per request, with the
//! request id and the whole cause chain. Handlers and renderers attach the cause to the
//! response ([`Failure::attach`]); they do not log it themselves. A database that cannot be
//! reached is not such a failure: the store watch reports it once per outage.

use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::AppError;

/// The cause of a 500, carried from the handler to [`log_failures`].
#[derive(Clone)]
pub struct Failure(Arc<anyhow::Error>);

impl Failure {
    pub fn new(cause: Arc<anyhow::Error>) -> Self {
        Failure(cause)
    }

    /// The cause of `error`, if it is our own failure (not bad input, not an outage).
    pub fn of(error: AppError) -> Option<Failure> {
        match error {
            error if error.is_unavailable() => None,
            AppError::Internal(cause) | AppError::Unavailable(cause) => {
                Some(Failure(Arc::new(cause)))
            }
            _ => None,
        }
    }

    pub fn attach(self, response: &mut Response) {
        response.extensions_mut().insert(self);
    }
}

/// Logs the failure a response carries, with its request id.
pub async fn log_failures(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if let Some(Failure(cause)) = response.extensions().get::<Failure>() {
        tracing::error!(
            %request_id,
            %path,
            status = response.status().as_u16(),
            cause = format!("{cause:#}"),
            "request failed"
        );
    }
    response
}
