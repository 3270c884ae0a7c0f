//! The store, chosen once at start-up from `AUTHLEDGER_DATABASE_URL`.
//!
//! Everything above this module holds a [`Store`] and `Arc<dyn Commands<A>>`; only
//! `sqlite.rs` and `postgres.rs` know which crate writes the events. Both use cqrs-es'
//! `PersistedEventStore::new_event_store` and nothing else: its snapshot and aggregate stores
//! apply events twice in 0.5 (see STACK.md), and our aggregates are small.

mod postgres;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use authledger_domain::client::Client;
use authledger_domain::consent::Consent;
use authledger_domain::grant::Grant;
use authledger_domain::metadata::EventMetadata;
use authledger_domain::services::Services;
use authledger_domain::settings::{Settings, SettingsValues, SETTINGS_ID};
use authledger_domain::signing_keys::SigningKeys;
use authledger_domain::user::User;
use authledger_projections::{event_log, Db, ProjectionRunner, StoreKind};
use cqrs_es::persist::{PersistedEventRepository, PersistedEventStore};
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventEnvelope, EventStore};
use tracing::warn;

/// Runs commands against one aggregate type.
#[async_trait]
pub trait Commands<A: Aggregate>: Send + Sync {
    /// Loads the aggregate, lets it decide, commits its events with `metadata`, and returns
    /// once the projections include them (read-your-writes). Returns the committed events.
    async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>>;

    /// The aggregate as its events make it now (for decisions outside a command, such as
    /// authenticating a client).
    async fn load(&self, aggregate_id: &str) -> Result<A, AggregateError<A::Error>>;
}

/// What the rest of the server sees of the store.
pub struct Store {
    pub db: Db,
    pub runner: Arc<ProjectionRunner>,
    pub clients: Arc<dyn Commands<Client>>,
    pub users: Arc<dyn Commands<User>>,
    pub grants: Arc<dyn Commands<Grant>>,
    pub consents: Arc<dyn Commands<Consent>>,
    pub settings: Arc<dyn Commands<Settings>>,
    pub signing_keys: Arc<dyn Commands<SigningKeys>>,
    cascade: crate::cascade::Cascade,
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

impl Store {
    /// Connects, creates or upgrades the schema, and registers the projections. Does not catch
    /// the projections up: callers decide when (the server does it before accepting requests).
    pub async fn open(url: &str, services: Services) -> Result<Store, OpenError> {
        let db = Db::connect(url).await?;
        match &db {
            Db::Sqlite(pool) => sqlite::migrate(pool).await?,
            Db::Postgres(pool) => postgres::migrate(pool).await?,
        }
        let runner =
            Arc::new(ProjectionRunner::new(db.clone(), authledger_projections::all()).await?);
        macro_rules! wire {
            ($repository:expr) => {
                Store {
                    clients: commands::<Client, _>($repository, &services, &db, &runner),
                    users: commands::<User, _>($repository, &services, &db, &runner),
                    grants: commands::<Grant, _>($repository, &services, &db, &runner),
                    consents: commands::<Consent, _>($repository, &services, &db, &runner),
                    settings: commands::<Settings, _>($repository, &services, &db, &runner),
                    signing_keys: commands::<SigningKeys, _>($repository, &services, &db, &runner),
                    runner: runner.clone(),
                    db: db.clone(),
                    cascade: Default::default(),
                }
            };
        }
        Ok(match &db {
            Db::Sqlite(pool) => wire!(sqlite::repository(pool)),
            Db::Postgres(pool) => wire!(postgres::repository(pool)),
        })
    }

    pub fn kind(&self) -> StoreKind {
        self.db.kind()
    }

    /// Revokes the grants that recent events (a client or user disabled, a consent revoked, a
    /// secret rotated with token revocation) end; see [`crate::cascade`].
    pub async fn run_cascades(&self) -> Result<(), crate::error::AppError> {
        self.cascade.run(self).await
    }

    /// The OAuth settings in force.
    pub async fn settings_values(&self) -> Result<SettingsValues, crate::error::AppError> {
        let settings = self
            .settings
            .load(SETTINGS_ID)
            .await
            .map_err(|e| crate::error::AppError::Internal(anyhow::Error::new(e)))?;
        Ok(settings.values().clone())
    }
}

fn commands<A, R>(
    repository: R,
    services: &Services,
    db: &Db,
    runner: &Arc<ProjectionRunner>,
) -> Arc<dyn Commands<A>>
where
    A: Aggregate<Services = Services> + 'static,
    A::Command: Clone + Send + Sync,
    A::Error: Send + Sync + 'static,
    R: PersistedEventRepository + 'static,
{
    Arc::new(EventStoreCommands {
        store: PersistedEventStore::<R, A>::new_event_store(repository),
        services: services.clone(),
        db: db.clone(),
        runner: runner.clone(),
    })
}

/// How often a command is retried after losing an optimistic-concurrency race. The retry
/// reloads the aggregate, so the command is decided again on the state that won.
const CONFLICT_RETRIES: usize = 5;

/// [`Commands`] over cqrs-es' persisted event store, whatever the repository behind it.
struct EventStoreCommands<R: PersistedEventRepository, A: Aggregate> {
    store: PersistedEventStore<R, A>,
    services: A::Services,
    db: Db,
    runner: Arc<ProjectionRunner>,
}

#[async_trait]
impl<R, A> Commands<A> for EventStoreCommands<R, A>
where
    R: PersistedEventRepository + 'static,
    A: Aggregate + 'static,
    A::Command: Clone + Send + Sync,
    A::Error: Send + Sync + 'static,
{
    async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        let mut attempt = 0;
        let committed = loop {
            attempt += 1;
            let mut context = self.store.load_aggregate(aggregate_id).await?;
            let sink = cqrs_es::event_sink::EventSink::default();
            context
                .aggregate()
                .handle(command.clone(), &self.services, &sink)
                .await
                .map_err(AggregateError::UserError)?;
            let events = sink.collect().await;
            if events.is_empty() {
                return Ok(vec![]);
            }
            match self.store.commit(events, context, metadata.to_map()).await {
                Err(AggregateError::AggregateConflict) if attempt < CONFLICT_RETRIES => continue,
                other => break other?,
            }
        };
        if let Some(last) = committed.last() {
            self.wait_for_projections(A::TYPE, aggregate_id, last.sequence)
                .await;
        }
        Ok(committed)
    }

    async fn load(&self, aggregate_id: &str) -> Result<A, AggregateError<A::Error>> {
        let mut context = self.store.load_aggregate(aggregate_id).await?;
        Ok(std::mem::take(context.aggregate()))
    }
}

impl<R: PersistedEventRepository, A: Aggregate> EventStoreCommands<R, A> {
    /// Read-your-writes: the command's own events are in the views before it returns. The
    /// events are committed whatever happens here; a failure only delays the views, which the
    /// background catch-up then repairs, so it is logged rather than returned.
    async fn wait_for_projections(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: usize,
    ) {
        let position =
            event_log::position_of(&self.db, aggregate_type, aggregate_id, sequence as i64).await;
        let outcome = match position {
            Ok(Some(position)) => self.runner.wait_for(position).await,
            Ok(None) => {
                return warn!(
                    aggregate_type,
                    aggregate_id, sequence, "committed event not found"
                )
            }
            Err(e) => Err(e),
        };
        if let Err(error) = outcome {
            warn!(%error, aggregate_type, aggregate_id, "views not yet updated after a command");
        }
    }
}
