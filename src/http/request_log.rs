//! The one log line per request: its id, method, route (the matched pattern, so that ids in
//! paths do not make every line unique), status and latency, and, when the handler learnt
//! them, the client it served and the OAuth error it answered. Never the query string (codes
//! and tokens travel there) nor a header or body value.
//!
//! Handlers add what they learn to the request's span ([`note_client`], [`with_error`]): the
//! span is open for the whole request, so the closing line carries it, in text and in JSON
//! (`AUTHLEDGER_LOG_FORMAT=json`) alike.

use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::Request;
use axum::response::Response;

/// The span every request's log lines carry.
pub fn span<B>(request: &Request<B>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", MatchedPath::as_str);
    tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %request.method(),
        route = %route,
        client_id = tracing::field::Empty,
        error = tracing::field::Empty,
    )
}

/// The closing line.
pub fn finished(response: &Response, latency: Duration, _span: &tracing::Span) {
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = (latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        "request finished"
    );
}

/// The registered client this request authenticated as (or, failing, claimed to be: only a
/// registered one, so a made-up id never reaches the log).
pub fn note_client(client_id: &str) {
    tracing::Span::current().record("client_id", client_id);
}

/// The OAuth error code (RFC 6749 §5.2 and its kin) a response answers with: on the
/// request's log line, and on the response for the metrics (`router::record_latency`).
#[derive(Debug, Clone, Copy)]
pub struct OAuthError(pub &'static str);

/// `response`, noted as answering the OAuth error `code`.
pub fn with_error(mut response: Response, code: &'static str) -> Response {
    tracing::Span::current().record("error", code);
    response.extensions_mut().insert(OAuthError(code));
    response
}
