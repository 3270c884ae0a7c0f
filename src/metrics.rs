//! What `/metrics` says about the server beyond request latency and per-client usage
//! (`usage.rs`): sign-ins, refreshes, revocations, OAuth errors, introspections, rate-limit
//! refusals, and, read at each scrape, the log's head, each projection's lag and the
//! database pool.
//!
//! Counters that follow from events are counted where every command's events pass once
//! committed (the store, through [`crate::store::live_feed::Live::observe`]), so that one
//! place, not each handler, keeps them true. Labels stay bounded: event kinds, causes and
//! OAuth error codes are fixed sets, client ids and providers are bounded by registration;
//! never a user or a token. They are this process's counts, as Prometheus expects.

use authledger_domain::grant::{Grant, GrantEvent, RevocationReason};
use authledger_domain::user::{LoginFailure, UserEvent};
use authledger_projections::{checkpoint, event_log, Db};
use prometheus::{GaugeVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// The longest a scrape waits for a pool connection to time it.
const ACQUIRE_PROBE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Metrics {
    registry: Registry,
    sign_ins: IntCounterVec,
    refreshes: IntCounterVec,
    revocations: IntCounterVec,
    oauth_errors: IntCounterVec,
    introspections: IntCounterVec,
    rate_limited: IntCounterVec,
    log_head: IntGauge,
    projection_lag_events: IntGaugeVec,
    projection_lag_seconds: GaugeVec,
    pool_connections: IntGaugeVec,
    pool_acquire_seconds: prometheus::Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("a valid counter")
}

impl Metrics {
    pub fn new() -> Metrics {
        let metrics = Metrics {
            registry: Registry::new(),
            sign_ins: counter(
                "authledger_sign_ins_total",
                "Sign-in steps by outcome and method (password, or social:<provider>)",
                &["outcome", "method"],
            ),
            refreshes: counter(
                "authledger_token_refreshes_total",
                "Refresh token grants that issued new tokens, by client",
                &["client_id"],
            ),
            revocations: counter(
                "authledger_revocations_total",
                "Tokens and grants revoked, by cause",
                &["cause"],
            ),
            oauth_errors: counter(
                "authledger_oauth_errors_total",
                "OAuth error answers (RFC 6749 5.2 and kin) by route and error code",
                &["route", "error"],
            ),
            introspections: counter(
                "authledger_introspections_total",
                "Introspection answers by result",
                &["result"],
            ),
            rate_limited: counter(
                "authledger_rate_limited_total",
                "Requests refused by a rate limit or the connection limit, by limit",
                &["limit"],
            ),
            log_head: IntGauge::new(
                "authledger_event_log_head_position",
                "The global position of the last committed event",
            )
            .expect("a valid gauge"),
            projection_lag_events: IntGaugeVec::new(
                Opts::new(
                    "authledger_projection_lag_events",
                    "Events committed that a projection has not applied yet",
                ),
                &["projection"],
            )
            .expect("a valid gauge"),
            projection_lag_seconds: GaugeVec::new(
                Opts::new(
                    "authledger_projection_lag_seconds",
                    "Age of the oldest event a projection has not applied yet (0 when caught up)",
                ),
                &["projection"],
            )
            .expect("a valid gauge"),
            pool_connections: IntGaugeVec::new(
                Opts::new(
                    "authledger_db_pool_connections",
                    "Database connections of this process's pool: open, idle, and the most allowed",
                ),
                &["state"],
            )
            .expect("a valid gauge"),
            pool_acquire_seconds: prometheus::Gauge::new(
                "authledger_db_pool_acquire_seconds",
                "How long taking a connection from the pool took at scrape time: near 0 while \
                 connections are free, the wait of requests when the pool is exhausted (capped \
                 at 5)",
            )
            .expect("a valid gauge"),
        };
        for collector in [
            Box::new(metrics.sign_ins.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.refreshes.clone()),
            Box::new(metrics.revocations.clone()),
            Box::new(metrics.oauth_errors.clone()),
            Box::new(metrics.introspections.clone()),
            Box::new(metrics.rate_limited.clone()),
            Box::new(metrics.log_head.clone()),
            Box::new(metrics.projection_lag_events.clone()),
            Box::new(metrics.projection_lag_seconds.clone()),
            Box::new(metrics.pool_connections.clone()),
            Box::new(metrics.pool_acquire_seconds.clone()),
        ] {
            metrics
                .registry
                .register(collector)
                .expect("unique metric names");
        }
        metrics
    }

    /// A committed `User` event.
    pub fn user_event(&self, event: &UserEvent) {
        let (outcome, method) = match event {
            UserEvent::LoginSucceeded { method } => {
                ("succeeded", method.as_deref().unwrap_or("password"))
            }
            UserEvent::LoginFailed { reason } => (
                match reason {
                    LoginFailure::WrongPassword => "wrong_password",
                    LoginFailure::UnknownUser => "unknown_user",
                    LoginFailure::UserDisabled => "user_disabled",
                },
                "password",
            ),
            UserEvent::LoginThrottled { .. } => ("throttled", "password"),
            UserEvent::PasswordVerified { .. } => ("second_factor_required", "password"),
            UserEvent::VouchedElsewhere { method, .. } => {
                ("second_factor_required", method.as_str())
            }
            UserEvent::SecondFactorFailed { .. } => ("second_factor_failed", "otp"),
            _ => return,
        };
        self.sign_ins.with_label_values(&[outcome, method]).inc();
    }

    /// A committed `Grant` event, with the grant as it stands after it.
    pub fn grant_event(&self, grant: &Grant, event: &GrantEvent) {
        let cause = match event {
            GrantEvent::TokensRefreshed { .. } => {
                if let Some(state) = grant.state() {
                    self.refreshes
                        .with_label_values(&[state.client_id.as_str()])
                        .inc();
                }
                return;
            }
            GrantEvent::TokenRevoked { .. } => "client_request",
            GrantEvent::GrantRevoked { reason } => match reason {
                RevocationReason::CodeReplay => "code_replay",
                RevocationReason::RefreshReplay => "refresh_replay",
                RevocationReason::ClientRequest => "client_request",
                RevocationReason::Admin => "admin",
                RevocationReason::ConsentRevoked => "consent_revoked",
                RevocationReason::SecretRotated => "secret_rotated",
                RevocationReason::SourceRevoked => "source_revoked",
            },
            _ => return,
        };
        self.revocations.with_label_values(&[cause]).inc();
    }

    /// An OAuth error answered on `route` (its pattern).
    pub fn oauth_error(&self, route: &str, error: &str) {
        self.oauth_errors.with_label_values(&[route, error]).inc();
    }

    /// `active` or `inactive`.
    pub fn introspection(&self, active: bool) {
        let result = if active { "active" } else { "inactive" };
        self.introspections.with_label_values(&[result]).inc();
    }

    /// `client_authentication`, `sign_in`, `second_factor`, `connections`, ...
    pub fn rate_limited(&self, limit: &str) {
        self.rate_limited.with_label_values(&[limit]).inc();
    }

    /// Reads what is measured at scrape time (the log's head, each projection's lag, the
    /// pool), then renders every metric. A store that cannot be read leaves those gauges as
    /// they were: the scrape still answers.
    pub async fn render(&self, db: &Db) -> String {
        if let Ok(head) = event_log::last_position(db).await {
            let head = head.map_or(0, |p| p.global);
            self.log_head.set(head);
            if let Ok(readers) = checkpoint::all(db).await {
                for (name, at) in readers {
                    let behind = (head - at).max(0);
                    self.projection_lag_events
                        .with_label_values(&[&name])
                        .set(behind);
                    let seconds = match behind {
                        0 => 0.0,
                        _ => event_log::recorded_after(db, at)
                            .await
                            .ok()
                            .flatten()
                            .map_or(0.0, |at| {
                                (chrono::Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0
                            }),
                    };
                    self.projection_lag_seconds
                        .with_label_values(&[&name])
                        .set(seconds);
                }
            }
        }
        let (open, idle, most) = authledger_projections::on_db!(db, pool => (
            pool.size() as i64,
            pool.num_idle() as i64,
            pool.options().get_max_connections() as i64,
        ));
        for (state, value) in [("open", open), ("idle", idle), ("max", most)] {
            self.pool_connections.with_label_values(&[state]).set(value);
        }
        // sqlx counts no waits; one acquisition, timed, is what a request would wait now.
        let started = std::time::Instant::now();
        let _ = authledger_projections::on_db!(db, pool => {
            tokio::time::timeout(ACQUIRE_PROBE_LIMIT, pool.acquire()).await.map(drop)
        });
        self.pool_acquire_seconds
            .set(started.elapsed().min(ACQUIRE_PROBE_LIMIT).as_secs_f64());
        let mut out = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&self.registry.gather(), &mut out)
            .expect("text encoding of gathered metrics");
        out
    }
}
