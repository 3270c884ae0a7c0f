//! The server's start-up and life: [`Application::build`] opens the store, catches the
//! projections up and binds, reporting the real address, so tests run exactly what
//! production runs on port 0; [`Application::run_until`] serves until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum_extra::extract::cookie::Key;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tracing::info;

use super::{background, serve, AppState, Limits};
use crate::config::Config;
use crate::master_key::MasterKey;
use crate::oauth::Authority;
use crate::signing::KeyRing;
use crate::store::Store;
use authledger_projections::StoreKind;

pub struct Application {
    listener: TcpListener,
    state: AppState,
    limits: Limits,
    link_ledger: bool,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        config.check()?;
        let store = Store::open(config.database_url.expose_secret()).await?;
        store.runner.use_archive(
            config
                .archive_dir
                .as_ref()
                .map(authledger_projections::ledger::segments::Archive::new),
        );
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
            config.master_key.as_ref().map(|k| k.expose_secret()),
            &config.master_key_file,
            !store.holds_sealed_values().await?,
        )?;
        let keys = KeyRing::open(&store, &master).await?;
        let cookie_key = Key::from(&master.derive("authledger cookies v1"));
        Ok(Application {
            listener,
            limits: config.limits,
            link_ledger: config.link_ledger,
            state: AppState {
                secure_cookies: issuer.starts_with("https://"),
                authority: Arc::new(Authority {
                    store: Arc::new(store),
                    keys,
                    master,
                    issuer,
                    usage: crate::usage::Usage::new(),
                    device_polls: Default::default(),
                    upstream: Default::default(),
                }),
                cookie_key,
                registrations: Default::default(),
                store_health: Default::default(),
                throttle: Default::default(),
                session_ends: Default::default(),
                connections: Default::default(),
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
        let background = background::start(
            &authority,
            &health,
            &self.state.session_ends,
            self.link_ledger,
        );
        // One line that says what is running where (never the database URL: it may hold a
        // password).
        let schema_version = store.schema_version().await.unwrap_or_default();
        info!(
            version = env!("CARGO_PKG_VERSION"),
            store = match store.kind() {
                StoreKind::Sqlite => "sqlite",
                StoreKind::Postgres => "postgres",
            },
            issuer = %self.state.authority.issuer,
            listen = %self.local_addr(),
            schema_version,
            "serving"
        );
        let served = serve::serve(
            self.listener,
            super::router::router(self.state, self.limits.clone()),
            self.limits,
            store.metrics.clone(),
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
