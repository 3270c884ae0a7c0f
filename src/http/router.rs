//! The routes, and the layers every request passes: request ids and tracing, the security
//! headers, latency metrics, the edge checks (`edge.rs`), CORS for public clients and
//! `no-store` on whatever carries a secret.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use super::{
    account, admin, authorize, connected_apps, console, device, edge, failure, health, login,
    logout, metrics, pages, paths, register, render, request_log, session, social_login, surface,
    token, two_factor, userinfo, well_known, AppState, Limits,
};
use crate::oauth::Authority;

pub fn router(state: AppState, limits: Limits) -> Router {
    let security_headers = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                // Pages use our one stylesheet and no script; images are logos, on https.
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; frame-ancestors 'none'; base-uri 'none'",
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
        .route(
            paths::DEVICE_AUTHORIZATION,
            post(device::device_authorization),
        )
        .route(paths::REGISTER, post(register::register))
        .route(paths::FRAPPE_REGISTER, post(register::register))
        .route(
            paths::REGISTRATION,
            get(register::read_registration)
                .put(register::replace_registration)
                .delete(register::delete_registration),
        )
        .layer(cors_for_public_clients(state.authority.clone()));
    // Responses that carry tokens, codes, claims or a person's pages: never cached.
    // A person's pages: with an idle limit, each view keeps their session alive. Only these:
    // the token endpoints carry no session and must not pay for reading one.
    let pages = Router::new()
        .route(
            paths::AUTHORIZE,
            get(authorize::authorize).post(authorize::authorize),
        )
        .route(
            paths::FRAPPE_AUTHORIZE,
            get(authorize::authorize).post(authorize::authorize),
        )
        .route(paths::LOGIN, get(login::login_page).post(login::login))
        .route(paths::LOGOUT, get(logout::logout).post(logout::logout))
        .route(
            paths::LOGIN_SECOND_FACTOR,
            post(two_factor::complete_sign_in),
        )
        .route(paths::LOGIN_ENROL, post(two_factor::enrol_at_sign_in))
        .route(paths::ACCOUNT, get(account::account_page))
        .route(paths::DEVICE, get(device::device_page).post(device::decide))
        .route(
            paths::ACCOUNT_TWO_FACTOR,
            get(two_factor::setup).post(two_factor::confirm_setup),
        )
        .route(paths::ACCOUNT_TWO_FACTOR_REMOVE, post(two_factor::remove))
        .route(paths::ACCOUNT_END_SESSION, post(account::end_session))
        .route(
            paths::ACCOUNT_REMOVE_APPLICATION,
            post(account::remove_application),
        )
        .route(paths::ACCOUNT_DISCONNECT, post(account::disconnect))
        .route(paths::ACCOUNT_UNLINK, post(account::unlink_identity))
        .route("/login/social/{id}", get(social_login::begin))
        .route("/login/social/{id}/callback", get(social_login::callback))
        .route("/connected-apps/{id}/connect", get(connected_apps::connect))
        .route(
            "/connected-apps/{id}/callback",
            get(connected_apps::callback),
        )
        .nest(paths::CONSOLE, console::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::keep_alive,
        ));
    let not_cached = Router::new()
        .merge(public_client_endpoints)
        .merge(pages)
        .merge(admin::router())
        .layer(render::no_store());
    Router::new()
        .merge(not_cached)
        .route(paths::HEALTHZ, get(health::healthz))
        .route(paths::READYZ, get(health::readyz))
        .route(paths::JWKS, get(well_known::jwks))
        .route(paths::LEDGER_KEYS, get(well_known::ledger_keys))
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
        .route(paths::STYLESHEET, get(pages::stylesheet))
        .route(paths::LOCAL_TIME_SCRIPT, get(pages::local_time_script))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            record_latency,
        ))
        .with_state(state.clone())
        .layer(axum::middleware::from_fn(failure::log_failures))
        .layer(axum::middleware::from_fn_with_state(limits, edge::guard))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::finish_pages,
        ))
        .layer(security_headers)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_log::span)
                        .on_response(request_log::finished),
                )
                .layer(PropagateRequestIdLayer::x_request_id()),
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
    if let Some(request_log::OAuthError(code)) = response.extensions().get() {
        state.authority.store.metrics.oauth_error(&route, code);
    }
    response
}

async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    surface::Surface::of(uri.path()).error(StatusCode::NOT_FOUND, "no such endpoint", None)
}
