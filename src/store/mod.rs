//! The store, chosen once at start-up from `AUTHLEDGER_DATABASE_URL`.
//!
//! Everything above this module holds a [`Store`] and `Arc<dyn Commands<A>>`; only
//! `sqlite.rs` and `postgres.rs` know which crate writes the events. Both use cqrs-es'
//! `PersistedEventStore::new_event_store` and nothing else: in cqrs-es 0.5 its snapshot and
//! aggregate stores apply each event twice (`EventSink::write` already applies it, and
//! `update_snapshot_with_events` applies it again: a grant after 1 issue and 12 rotations
//! loads as 14 or 24 rotations), and our aggregates are small enough to load whole. On Postgres the
//! repository behind it reads through postgres-es and commits commands in groups
//! (`postgres.rs`).

mod aggregate_cache;
mod event_store_commands;
mod group_commit;
mod live_feed;
mod personal_data;
mod postgres;
mod sqlite;

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use authledger_domain::client::Client;
use authledger_domain::connected_app::connection::AppConnection;
use authledger_domain::connected_app::ConnectedApp;
use authledger_domain::consent::Consent;
use authledger_domain::device::UserCodeAssignment;
use authledger_domain::grant::Grant;
use authledger_domain::metadata::EventMetadata;
use authledger_domain::resource::Resource;
use authledger_domain::services::Services;
use authledger_domain::settings::{Settings, SettingsValues, SETTINGS_ID};
use authledger_domain::signing_keys::SigningKeys;
use authledger_domain::social_login::{ExternalIdentity, SocialLogin};
use authledger_domain::user::User;
use authledger_projections::live::LiveIndex;
use authledger_projections::{Db, ProjectionRunner, StoreKind};
use cqrs_es::persist::{PersistedEventRepository, PersistedEventStore};
use cqrs_es::{Aggregate, AggregateError, EventEnvelope};

use aggregate_cache::AggregateCache;
use event_store_commands::EventStoreCommands;
pub use live_feed::Live;

/// Runs commands against one aggregate type.
#[async_trait]
pub trait Commands<A: Aggregate>: Send + Sync {
    /// Loads the aggregate, lets it decide, commits its events with `metadata`, and returns
    /// once what reads them includes them (read-your-writes): the live index if the store has
    /// one, and the views too unless the aggregate is [`Live::VIEWS_FOLLOW_LATER`]. Returns the
    /// committed events.
    async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>>;

    /// [`Commands::execute`] for an aggregate id just minted at random (a new grant): there is
    /// nothing to load, so the command is decided on the empty aggregate without reading the
    /// store. Were the id taken after all, the commit would conflict, never overwrite.
    async fn create(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>>;

    /// The aggregate as its events make it now (for decisions outside a command, such as
    /// authenticating a client). For an aggregate kept in memory ([`Live::KEPT_IN_MEMORY`])
    /// it may miss another process's latest events; the command that follows decides again.
    async fn load(&self, aggregate_id: &str) -> Result<A, AggregateError<A::Error>>;
}

/// What the rest of the server sees of the store.
pub struct Store {
    pub db: Db,
    pub runner: Arc<ProjectionRunner>,
    /// What `/metrics` counts of the commands this process ran (and reads at scrape time).
    pub metrics: Arc<crate::metrics::Metrics>,
    pub clients: Arc<dyn Commands<Client>>,
    pub users: Arc<dyn Commands<User>>,
    pub grants: Arc<dyn Commands<Grant>>,
    pub consents: Arc<dyn Commands<Consent>>,
    pub settings: Arc<dyn Commands<Settings>>,
    pub signing_keys: Arc<dyn Commands<SigningKeys>>,
    pub connected_apps: Arc<dyn Commands<ConnectedApp>>,
    pub app_connections: Arc<dyn Commands<AppConnection>>,
    pub social_logins: Arc<dyn Commands<SocialLogin>>,
    pub identities: Arc<dyn Commands<ExternalIdentity>>,
    /// Which pending device grant each user code names (RFC 8628).
    pub user_codes: Arc<dyn Commands<UserCodeAssignment>>,
    /// Protected resources (RFC 8707).
    pub resources: Arc<dyn Commands<Resource>>,
    live: Arc<OnceLock<Arc<LiveIndex>>>,
    /// Woken by commands whose views follow later, for the server's projector task.
    projector: Arc<tokio::sync::Notify>,
    /// The people's keys this process seals their data with (`personal_data`).
    writing_keys: Arc<personal_data::WritingKeys>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Connect(#[from] authledger_projections::db::ConnectError),
    #[error("cannot create or upgrade the schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot start the projections: {0}")]
    Projections(#[from] authledger_projections::ProjectionError),
}

impl From<OpenError> for crate::error::AppError {
    fn from(error: OpenError) -> Self {
        use crate::error::AppError;
        use authledger_projections::db::ConnectError;
        match error {
            OpenError::Connect(ConnectError::BadUrl(_)) => AppError::invalid(error),
            OpenError::Connect(ConnectError::Refused {
                unreachable: true, ..
            }) => AppError::Unavailable(anyhow::anyhow!("{error}")),
            OpenError::Connect(ConnectError::Refused { .. }) => AppError::invalid(error),
            other => AppError::Internal(other.into()),
        }
    }
}

impl Store {
    /// One aggregate's events, oldest first, personal data opened: from the live log, and for
    /// a grant whose events `ledger archive` moved, from its segment (the archive directory is
    /// then needed).
    pub async fn history(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<
        Vec<authledger_projections::event_log::StoredEvent>,
        authledger_projections::ProjectionError,
    > {
        let mut events = authledger_projections::event_log::read_aggregate(
            &self.db,
            aggregate_type,
            aggregate_id,
        )
        .await?;
        // Only grants are archived, and only whole: a grant with its first event live is not.
        if aggregate_type == "Grant" && events.first().is_none_or(|e| e.sequence > 1) {
            let archived = authledger_projections::ledger::segments::aggregate_history(
                &self.db,
                self.runner.archive().as_ref(),
                aggregate_type,
                aggregate_id,
            )
            .await?;
            events.splice(0..0, archived);
        }
        Ok(events)
    }

    /// Connects, creates or upgrades the schema, and registers the projections. Does not catch
    /// the projections up: callers decide when (the server does it before accepting requests).
    pub async fn open(url: &str) -> Result<Store, OpenError> {
        let db = Db::connect(url).await?;
        match &db {
            Db::Sqlite(pool) => sqlite::migrate(pool).await?,
            Db::Postgres(pool) => postgres::migrate(pool).await?,
        }
        let services: Services = Arc::new(crate::services::SystemServices::new(db.clone()));
        let runner =
            Arc::new(ProjectionRunner::new(db.clone(), authledger_projections::all()).await?);
        authledger_projections::ledger::register(&db).await?;
        let sealed = authledger_projections::personal::seal_recorded(&db).await?;
        if sealed > 0 {
            tracing::info!(
                events = sealed,
                "sealed the personal data of events recorded before"
            );
        }
        let wiring = Wiring {
            services,
            metrics: Default::default(),
            db: db.clone(),
            runner: runner.clone(),
            live: Default::default(),
            projector: Default::default(),
        };
        let writing_keys = Arc::new(personal_data::WritingKeys::default());
        macro_rules! wire {
            ($repository:expr) => {
                Store {
                    clients: wiring.commands::<Client, _>($repository),
                    users: wiring.commands::<User, _>($repository),
                    grants: wiring.commands::<Grant, _>($repository),
                    consents: wiring.commands::<Consent, _>($repository),
                    settings: wiring.commands::<Settings, _>($repository),
                    signing_keys: wiring.commands::<SigningKeys, _>($repository),
                    connected_apps: wiring.commands::<ConnectedApp, _>($repository),
                    app_connections: wiring.commands::<AppConnection, _>($repository),
                    social_logins: wiring.commands::<SocialLogin, _>($repository),
                    identities: wiring.commands::<ExternalIdentity, _>($repository),
                    user_codes: wiring.commands::<UserCodeAssignment, _>($repository),
                    resources: wiring.commands::<Resource, _>($repository),
                    runner: runner.clone(),
                    metrics: wiring.metrics.clone(),
                    db: db.clone(),
                    live: wiring.live.clone(),
                    projector: wiring.projector.clone(),
                    writing_keys: writing_keys.clone(),
                }
            };
        }
        Ok(match &db {
            Db::Sqlite(pool) => {
                let committer =
                    group_commit::GroupCommit::start(group_commit::Writer::Sqlite(pool.clone()));
                wire!(personal_data::Sealing::new(
                    sqlite::repository(pool, &committer),
                    db.clone(),
                    writing_keys.clone()
                ))
            }
            Db::Postgres(pool) => {
                let committer =
                    group_commit::GroupCommit::start(group_commit::Writer::Postgres(pool.clone()));
                wire!(personal_data::Sealing::new(
                    postgres::repository(pool, &committer),
                    db.clone(),
                    writing_keys.clone()
                ))
            }
        })
    }

    pub fn kind(&self) -> StoreKind {
        self.db.kind()
    }

    /// Destroys `username`'s key (crypto-shredding, `authledger_projections::personal`):
    /// their sealed data opens for no one from now on, and this process seals no more with it.
    pub async fn destroy_person_key(&self, username: &str) -> Result<(), sqlx::Error> {
        authledger_projections::personal::destroy_key(&self.db, username).await?;
        self.writing_keys.forget(username);
        Ok(())
    }

    /// Loads the live index (see [`authledger_projections::live`]) and makes the store keep it
    /// current: a server does this once before serving; one-shot CLI commands do not need it.
    pub async fn start_live_index(
        &self,
        capacity: usize,
    ) -> Result<Arc<LiveIndex>, authledger_projections::ProjectionError> {
        if let Some(live) = self.live.get() {
            return Ok(live.clone());
        }
        let live = Arc::new(LiveIndex::load(&self.db, capacity).await?);
        // Events committed while it loaded: the follower is idempotent, so catching up from
        // the views' checkpoint covers them.
        live.follow().await?;
        Ok(self.live.get_or_init(|| live).clone())
    }

    pub fn live(&self) -> Option<&Arc<LiveIndex>> {
        self.live.get()
    }

    /// Completes when a command has committed events whose views follow later (the server's
    /// projector waits on this, with a timeout).
    pub async fn views_behind(&self) {
        self.projector.notified().await
    }

    /// The views, including every event committed so far: what admin and audit reads use,
    /// since token commands return before their views are updated.
    pub async fn current_views(&self) -> Result<&Db, crate::error::AppError> {
        self.runner.catch_up_fully().await?;
        Ok(&self.db)
    }

    /// A client as its events make it, for authenticating it: from the live index when the
    /// store has one, else from its aggregate.
    pub async fn client(
        &self,
        client_id: &str,
    ) -> Result<Option<authledger_domain::client::RegisteredClient>, crate::error::AppError> {
        if let Some(live) = self.live.get() {
            if let Some(client) = live.client(client_id) {
                return Ok(Some(client));
            }
            // Registered a moment ago by the CLI or another instance? Clients are created
            // rarely and used at once, so an unknown one is worth one read of the log.
            live.follow().await?;
            return Ok(live.client(client_id));
        }
        let client = self
            .clients
            .load(client_id)
            .await
            .map_err(|e| crate::error::client_error(client_id, e))?;
        Ok(client.registered().cloned())
    }

    /// Whether any value is sealed under a master key (signing keys, HS256 client secrets):
    /// then a missing key file means the wrong directory, not a first start.
    /// The newest migration applied (`migrations/`), e.g. 20261127000014.
    pub async fn schema_version(&self) -> Result<i64, crate::error::AppError> {
        let sql = "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success";
        authledger_projections::on_db!(&self.db, pool => sqlx::query_scalar(sql).fetch_one(pool).await)
            .map_err(|e| crate::error::AppError::from(anyhow::Error::new(e)))
    }

    pub async fn holds_sealed_values(&self) -> Result<bool, crate::error::AppError> {
        crate::vault::holds_anything(&self.db)
            .await
            .map_err(|e| crate::error::AppError::from(anyhow::Error::new(e)))
    }

    /// Whether the sign-in session whose id hashes to `id_hash` is open and `username`'s. A
    /// session opened a moment ago by another instance is found by reading the log once;
    /// without a live index (one-shot CLI commands) no session is open.
    pub async fn session_is_open(
        &self,
        id_hash: &authledger_domain::secret::SecretHash,
        username: &str,
    ) -> Result<bool, crate::error::AppError> {
        let Some(live) = self.live.get() else {
            return Ok(false);
        };
        let owned = |live: &LiveIndex| {
            live.session(id_hash)
                .is_some_and(|s| s.username == username)
        };
        if !owned(live) {
            live.follow().await?;
            if !owned(live) {
                return Ok(false);
            }
        }
        live.saw_session(id_hash);
        Ok(true)
    }

    /// Whether the live index knows `client_id` (no database read; false without an index).
    pub fn is_known_client(&self, client_id: &str) -> bool {
        self.live
            .get()
            .is_some_and(|live| live.client(client_id).is_some())
    }

    /// The OAuth settings in force.
    pub async fn settings_values(&self) -> Result<SettingsValues, crate::error::AppError> {
        if let Some(live) = self.live.get() {
            return Ok(live.settings());
        }
        let settings = self
            .settings
            .load(SETTINGS_ID)
            .await
            .map_err(crate::error::AppError::store)?;
        Ok(settings.values().clone())
    }
}

/// What every aggregate's [`Commands`] share.
struct Wiring {
    services: Services,
    metrics: Arc<crate::metrics::Metrics>,
    db: Db,
    runner: Arc<ProjectionRunner>,
    live: Arc<OnceLock<Arc<LiveIndex>>>,
    projector: Arc<tokio::sync::Notify>,
}

impl Wiring {
    fn commands<A, R>(&self, repository: R) -> Arc<dyn Commands<A>>
    where
        A: Live<Services = Services> + Clone + 'static,
        A::Command: Clone + Send + Sync,
        A::Error: Send + Sync + 'static,
        R: PersistedEventRepository + 'static,
    {
        Arc::new(EventStoreCommands {
            store: PersistedEventStore::<R, A>::new_event_store(repository),
            kept: AggregateCache::new(A::KEPT_IN_MEMORY),
            services: self.services.clone(),
            metrics: self.metrics.clone(),
            db: self.db.clone(),
            runner: self.runner.clone(),
            live: self.live.clone(),
            projector: self.projector.clone(),
        })
    }
}
