//! `GET /metrics`: this process's Prometheus metrics: request latency and per-client usage
//! ([`crate::usage`]), and what the server did and how far behind its views are
//! ([`crate::metrics`]).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(app): State<AppState>) -> Response {
    let store = &app.authority.store;
    let mut body = app.authority.usage.render();
    body.push_str(&store.metrics.render(&store.db).await);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        body,
    )
        .into_response()
}
