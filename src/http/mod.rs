//! The HTTP server. [`Application::build`] opens the store, catches the projections up and
//! binds, reporting the real address, so tests run exactly what production runs on port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, State};
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::Key;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::{info, warn};

use crate::config::Config;
use crate::master_key::MasterKey;
use crate::oauth::Authority;
use crate::services::SystemServices;
use crate::signing::KeyRing;
use crate::store::Store;

mod admin;
mod authorize;
pub mod bearer;
pub mod context;
mod edge;
pub mod health;
mod metrics;
pub mod pages;
mod register;
pub mod render;
mod serve;
pub mod session;
pub mod surface;
mod token;
mod userinfo;
mod well_known;

/// Paths, shared by the router and the discovery metadata.
pub mod paths {
    pub const HEALTHZ: &str = "/healthz";
    pub const READYZ: &str = "/readyz";
    pub const AUTHORIZE: &str = "/oauth/authorize";
    pub const TOKEN: &str = "/oauth/token";
    pub const JWKS: &str = "/oauth/jwks";
    pub const LOGIN: &str = "/login";
    pub const LOGOUT: &str = "/logout";
    pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
    pub const AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
    pub const PROTECTED_RESOURCE: &str = "/.well-known/oauth-protected-resource";
    pub const PROTECTED_RESOURCE_PATH: &str = "/.well-known/oauth-protected-resource/{*path}";
    pub const REGISTER: &str = "/oauth/register";
    /// Frappe's endpoints, so Frappe's clients work unchanged.
    pub const FRAPPE_AUTHORIZE: &str = "/api/method/frappe.integrations.oauth2.authorize";
    pub const FRAPPE_GET_TOKEN: &str = "/api/method/frappe.integrations.oauth2.get_token";
    pub const INTROSPECT: &str = "/oauth/introspect";
    pub const REVOKE: &str = "/oauth/revoke";
    pub const USERINFO: &str = "/oauth/userinfo";
    pub const METRICS: &str = "/metrics";
    pub const ADMIN_API: &str = "/admin/api";
    pub const FRAPPE_INTROSPECT: &str = "/api/method/frappe.integrations.oauth2.introspect_token";
    pub const FRAPPE_REVOKE: &str = "/api/method/frappe.integrations.oauth2.revoke_token";
    pub const FRAPPE_USERINFO: &str = "/api/method/frappe.integrations.oauth2.openid_profile";
    pub const FRAPPE_REGISTER: &str = "/api/method/frappe.integrations.oauth2.register_client";
    pub const REGISTRATION: &str = "/oauth/register/{client_id}";
}

/// How often signing keys are activated, retired and removed as their times come, and reloaded
/// (rotations by the CLI or another instance take effect within this).
const KEY_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(2);

/// How often the server reads events written by others (CLI commands, other instances).
const CATCH_UP_INTERVAL: Duration = Duration::from_millis(500);
/// How often the projector looks for events when no command woke it (others' events).
const PROJECTOR_IDLE_INTERVAL: Duration = Duration::from_millis(250);
/// How often expired tokens leave the live index.
const LIVE_PRUNE_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct AppState {
    pub authority: Arc<Authority>,
    /// Signs the session and CSRF cookies; derived from the master key.
    pub cookie_key: Key,
    /// Cookies are `Secure` when the issuer is https.
    pub secure_cookies: bool,
    /// Per-IP limit on dynamic registrations.
    pub registrations: Arc<register::RegistrationLimiter>,
    /// Whether the database answered the store watch's last question.
    pub store_health: Arc<health::StoreHealth>,
    /// Failed sign-ins and client authentications (see [`crate::throttle`]).
    pub throttle: Arc<crate::throttle::Throttle>,
}

impl FromRef<AppState> for Key {
    fn from_ref(state: &AppState) -> Key {
        state.cookie_key.clone()
    }
}

pub use serve::Limits;

pub struct Application {
    listener: TcpListener,
    state: AppState,
    limits: Limits,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        config.check()?;
        let store = Store::open(&config.database_url, Arc::new(SystemServices)).await?;
        // Repair whatever a previous run left between an event commit and its view update,
        // before the first request can read a view.
        store.runner.catch_up_fully().await?;
        store.start_live_index(config.token_cache_capacity).await?;
        let listener = TcpListener::bind(&config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let address = listener.local_addr()?;
        let issuer = config
            .issuer
            .unwrap_or_else(|| format!("http://{address}"))
            .trim_end_matches('/')
            .to_owned();
        let master = MasterKey::load(
            config.master_key.as_deref(),
            &config.master_key_file,
            !store.holds_sealed_values().await?,
        )?;
        let keys = KeyRing::open(&store, &master).await?;
        let cookie_key = Key::from(&master.derive("authledger cookies v1"));
        Ok(Application {
            listener,
            limits: config.limits,
            state: AppState {
                secure_cookies: issuer.starts_with("https://"),
                authority: Arc::new(Authority {
                    store: Arc::new(store),
                    keys,
                    master,
                    issuer,
                    usage: crate::usage::Usage::new(),
                }),
                cookie_key,
                registrations: Default::default(),
                store_health: Default::default(),
                throttle: Default::default(),
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
        let authority = self.state.authority.clone();
        let store = authority.store.clone();
        let health = self.state.store_health.clone();
        let background = [
            tokio::spawn(keep_projections_current(authority.clone(), health.clone())),
            tokio::spawn(project_in_batches(store.clone(), health.clone())),
            tokio::spawn(follow_the_log(store.clone(), health.clone())),
            tokio::spawn(health::watch_the_store(
                store.db.clone(),
                self.state.store_health.clone(),
            )),
        ];
        info!(address = %self.local_addr(), store = ?store.kind(), issuer = %self.state.authority.issuer, "serving");
        let served = serve::serve(
            self.listener,
            router(self.state, self.limits),
            self.limits,
            shutdown,
        )
        .await;
        for task in background {
            task.abort();
        }
        authority.usage.flush(&store.db).await;
        store.db.close().await;
        info!("stopped");
        served
    }
}

pub fn router(state: AppState, limits: Limits) -> Router {
    let security_headers = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        // Authorization URLs carry state and (in responses) codes: never leak them onward.
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ));
    // Endpoints browser-based public clients call: CORS for the origins in settings.
    let public_client_endpoints = Router::new()
        .route(paths::TOKEN, post(token::token))
        .route(paths::FRAPPE_GET_TOKEN, post(token::frappe_get_token))
        .route(paths::INTROSPECT, post(token::introspect))
        .route(paths::FRAPPE_INTROSPECT, post(token::introspect))
        .route(paths::REVOKE, post(token::revoke))
        .route(paths::FRAPPE_REVOKE, post(token::revoke))
        .route(
            paths::USERINFO,
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route(
            paths::FRAPPE_USERINFO,
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route(paths::REGISTER, post(register::register))
        .route(paths::FRAPPE_REGISTER, post(register::register))
        .route(
            paths::REGISTRATION,
            get(register::manage)
                .put(register::manage)
                .delete(register::manage),
        )
        .layer(cors_for_public_clients(state.authority.clone()));
    // Responses that carry tokens, codes, claims or a person's pages: never cached.
    let not_cached = Router::new()
        .merge(public_client_endpoints)
        .route(
            paths::AUTHORIZE,
            get(authorize::authorize).post(authorize::authorize),
        )
        .route(
            paths::FRAPPE_AUTHORIZE,
            get(authorize::authorize).post(authorize::authorize),
        )
        .route(paths::LOGIN, get(pages::login_page).post(pages::login))
        .route(paths::LOGOUT, post(pages::logout))
        .nest(paths::ADMIN_API, admin::router())
        .layer(render::no_store());
    Router::new()
        .merge(not_cached)
        .route(paths::HEALTHZ, get(health::healthz))
        .route(paths::READYZ, get(health::readyz))
        .route(paths::JWKS, get(well_known::jwks))
        .route(
            paths::OPENID_CONFIGURATION,
            get(well_known::openid_configuration),
        )
        .route(
            paths::AUTHORIZATION_SERVER,
            get(well_known::authorization_server),
        )
        .route(
            paths::PROTECTED_RESOURCE,
            get(well_known::protected_resource_root),
        )
        .route(
            paths::PROTECTED_RESOURCE_PATH,
            get(well_known::protected_resource_path),
        )
        .route(paths::METRICS, get(metrics::metrics))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            record_latency,
        ))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(limits, edge::guard))
        .layer(security_headers)
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

/// CORS (tower-http) for the origins listed in `allowed_public_client_origins` (or `*`): the
/// origin is echoed, with `Vary: Origin`; an unlisted origin gets no CORS headers at all.
fn cors_for_public_clients(authority: Arc<Authority>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::async_predicate(
            move |origin: HeaderValue, _| {
                let authority = authority.clone();
                async move {
                    let Ok(settings) = authority.store.settings_values().await else {
                        return false;
                    };
                    let origin = origin.to_str().unwrap_or_default();
                    settings
                        .allowed_public_client_origins
                        .iter()
                        .any(|allowed| allowed == "*" || allowed == origin)
                }
            },
        ))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(600))
}

/// Observes each request's latency by route pattern (not raw path: ids would explode the
/// label set).
async fn record_latency(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    state
        .authority
        .usage
        .requests
        .with_label_values(&[route.as_str(), method.as_str(), response.status().as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    surface::Surface::of(uri.path()).error(StatusCode::NOT_FOUND, "no such endpoint", None)
}

/// Logs a background task's failure, unless the database is unreachable: the store watch
/// says that once per outage, and the tasks retry by themselves.
fn background_failure(health: &health::StoreHealth, error: &dyn std::fmt::Display, what: &str) {
    if health.reachable() {
        warn!(%error, "{what}");
    } else {
        tracing::debug!(%error, "{what}");
    }
}

/// Updates the views behind token commands, which return without waiting for them: woken by
/// each such command, it applies whatever has accumulated in batches (one transaction per
/// batch), so under load many commands share one view update.
async fn project_in_batches(store: Arc<Store>, health: Arc<health::StoreHealth>) {
    loop {
        let _ = tokio::time::timeout(PROJECTOR_IDLE_INTERVAL, store.views_behind()).await;
        if let Err(error) = store.runner.catch_up().await {
            background_failure(&health, &error, "updating the views failed; retrying");
            tokio::time::sleep(PROJECTOR_IDLE_INTERVAL).await;
        }
    }
}

/// Keeps the live index current with events committed by others (CLI commands, other
/// instances), and drops the tokens that expired.
async fn follow_the_log(store: Arc<Store>, health: Arc<health::StoreHealth>) {
    let Some(live) = store.live().cloned() else {
        return;
    };
    let mut tick = tokio::time::interval(authledger_projections::live::FOLLOW_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        if let Err(error) = live.follow().await {
            background_failure(&health, &error, "following the event log failed; retrying");
        }
        if last_prune.elapsed() >= LIVE_PRUNE_INTERVAL {
            live.prune(chrono::Utc::now());
            last_prune = tokio::time::Instant::now();
        }
    }
}

/// Reads events written by others (CLI commands, other instances) into the views, runs the
/// cascades they cause, and saves read usage counts.
async fn keep_projections_current(authority: Arc<Authority>, health: Arc<health::StoreHealth>) {
    let mut tick = tokio::time::interval(CATCH_UP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_flush = tokio::time::Instant::now();
    let mut last_keys = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        if let Err(error) = authority.store.run_cascades().await {
            background_failure(&health, &error, "running cascades failed; retrying");
        }
        if last_flush.elapsed() >= crate::usage::FLUSH_INTERVAL {
            authority.usage.flush(&authority.store.db).await;
            last_flush = tokio::time::Instant::now();
        }
        if last_keys.elapsed() >= KEY_MAINTENANCE_INTERVAL {
            let store = &authority.store;
            let maintained = match crate::signing::maintain(store, &authority.master).await {
                Ok(()) => authority.keys.reload(store, &authority.master).await,
                Err(error) => Err(error),
            };
            if let Err(error) = maintained {
                background_failure(&health, &error, "signing key maintenance failed; retrying");
            }
            last_keys = tokio::time::Instant::now();
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
