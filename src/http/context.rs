//! Who is calling and from where: the source of every event's metadata.

use std::convert::Infallible;
use std::net::SocketAddr;

use authledger_domain::metadata::{Actor, EventMetadata, Source};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl RequestContext {
    /// Metadata for an event caused by this request on behalf of `actor`.
    pub fn metadata(&self, actor: Actor) -> EventMetadata {
        EventMetadata {
            actor,
            request_id: self.request_id.clone(),
            source: Source::Http {
                ip: self.ip.clone(),
                user_agent: self.user_agent.clone(),
            },
            at: chrono::Utc::now(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header_text = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                // A tab is the one control character a header value may carry: it would
                // become part of an event's metadata, so it is a space there.
                .map(|v| {
                    v.chars()
                        .take(256)
                        .map(|c| if c.is_control() { ' ' } else { c })
                        .collect::<String>()
                })
        };
        Ok(RequestContext {
            // Set by the request-id layer before any handler runs.
            request_id: header_text(header::HeaderName::from_static("x-request-id"))
                .unwrap_or_default(),
            ip: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip().to_string()),
            user_agent: header_text(header::USER_AGENT),
        })
    }
}
