//! The HTTP server. [`Application::build`] opens the store, catches the projections up and
//! binds, reporting the real address, so tests run exactly what production runs on port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::{info, warn};

use crate::config::Config;
use crate::services::SystemServices;
use crate::store::Store;

/// Paths, shared by the router and (later) discovery metadata.
pub mod paths {
    pub const HEALTHZ: &str = "/healthz";
}

/// How often the server reads events written by others (CLI commands, other instances).
const CATCH_UP_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub issuer: Arc<str>,
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let store = Store::open(&config.database_url, Arc::new(SystemServices)).await?;
        // Repair whatever a previous run left between an event commit and its view update,
        // before the first request can read a view.
        store.runner.catch_up().await?;
        let listener = TcpListener::bind(&config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let address = listener.local_addr()?;
        let issuer = config.issuer.unwrap_or_else(|| format!("http://{address}"));
        Ok(Application {
            listener,
            state: AppState {
                store: Arc::new(store),
                issuer: issuer.into(),
            },
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let store = self.state.store.clone();
        let background = tokio::spawn(keep_projections_current(store.clone()));
        info!(address = %self.local_addr(), store = ?store.kind(), issuer = %self.state.issuer, "serving");
        let app = router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        background.abort();
        store.db.close().await;
        info!("stopped");
        served
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(paths::HEALTHZ, get(healthz))
        .fallback(not_found)
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
}

/// The span every request's log lines carry. Only the path is logged, never the query
/// string: authorization responses and some clients put codes and tokens there.
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
    )
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let store = match state.store.kind() {
        authledger_projections::StoreKind::Sqlite => "sqlite",
        authledger_projections::StoreKind::Postgres => "postgres",
    };
    Json(json!({ "status": "ok", "store": store }))
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "not_found", "error_description": "no such endpoint" })),
    )
}

async fn keep_projections_current(store: Arc<Store>) {
    let mut tick = tokio::time::interval(CATCH_UP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(error) = store.runner.catch_up().await {
            warn!(%error, "projection catch-up failed; retrying");
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    info!("shutdown requested");
}
