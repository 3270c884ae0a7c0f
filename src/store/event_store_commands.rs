//! [`Commands`] over cqrs-es' persisted event store: a command decided on the aggregate (kept
//! in memory or loaded), committed with optimistic concurrency and retried on a lost race,
//! then fed to the live index and, unless its views may follow later, awaited in the views.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use authledger_domain::metadata::EventMetadata;
use authledger_projections::live::LiveIndex;
use authledger_projections::{event_log, Db, ProjectionRunner};
use cqrs_es::persist::{PersistedEventRepository, PersistedEventStore};
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventEnvelope, EventStore};
use tracing::warn;

use super::aggregate_cache::AggregateCache;
use super::{Commands, Live};

/// A command's starting point: `aggregate` after the events up to `sequence`.
fn context_of<A: Aggregate>(
    aggregate_id: &str,
    aggregate: A,
    sequence: usize,
) -> cqrs_es::persist::EventStoreAggregateContext<A> {
    cqrs_es::persist::EventStoreAggregateContext {
        aggregate_id: aggregate_id.to_owned(),
        aggregate,
        current_sequence: sequence,
        current_snapshot: None,
    }
}

/// How often a command is retried after losing an optimistic-concurrency race. The retry
/// reloads the aggregate, so the command is decided again on the state that won.
const CONFLICT_RETRIES: usize = 5;

/// [`Commands`] over cqrs-es' persisted event store, whatever the repository behind it.
pub(super) struct EventStoreCommands<R: PersistedEventRepository, A: Aggregate> {
    pub(super) store: PersistedEventStore<R, A>,
    pub(super) kept: AggregateCache<A>,
    pub(super) services: A::Services,
    pub(super) metrics: Arc<crate::metrics::Metrics>,
    pub(super) db: Db,
    pub(super) runner: Arc<ProjectionRunner>,
    pub(super) live: Arc<OnceLock<Arc<LiveIndex>>>,
    pub(super) projector: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl<R, A> Commands<A> for EventStoreCommands<R, A>
where
    R: PersistedEventRepository + 'static,
    A: Live + Clone + 'static,
    A::Command: Clone + Send + Sync,
    A::Error: Send + Sync + 'static,
{
    async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        self.run(aggregate_id, command, metadata, false).await
    }

    async fn create(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        self.run(aggregate_id, command, metadata, true).await
    }

    async fn load(&self, aggregate_id: &str) -> Result<A, AggregateError<A::Error>> {
        if let Some((aggregate, _)) = self.kept.get(aggregate_id) {
            return Ok(aggregate);
        }
        let mut context = self.store.load_aggregate(aggregate_id).await?;
        let aggregate = std::mem::take(context.aggregate());
        if aggregate.expects_more_commands() {
            self.kept
                .put(aggregate_id, aggregate.clone(), context.current_sequence);
        }
        Ok(aggregate)
    }
}

impl<R, A> EventStoreCommands<R, A>
where
    R: PersistedEventRepository + 'static,
    A: Live + Clone + 'static,
    A::Command: Clone + Send + Sync,
    A::Error: Send + Sync + 'static,
{
    async fn run(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
        fresh: bool,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        let live = self.live.get();
        let mut attempt = 0;
        let (committed, after) = loop {
            attempt += 1;
            let kept = match fresh || attempt > 1 {
                true => None,
                false => self.kept.get(aggregate_id),
            };
            let from_memory = kept.is_some();
            let mut context = match (fresh, kept) {
                (true, _) => context_of(aggregate_id, A::default(), 0),
                (false, Some((aggregate, sequence))) => {
                    context_of(aggregate_id, aggregate, sequence)
                }
                (false, None) => self.store.load_aggregate(aggregate_id).await?,
            };
            let sink = cqrs_es::event_sink::EventSink::default();
            let decided = context
                .aggregate()
                .handle(command.clone(), &self.services, &sink)
                .await;
            let events = sink.collect().await;
            // A refusal, or nothing to do, commits nothing, so no conflict would reveal that
            // the kept aggregate was stale (a refresh token rotated on another instance looks
            // unknown here): decide once more on the aggregate as the store has it.
            if from_memory && (decided.is_err() || events.is_empty()) {
                self.kept.forget(aggregate_id);
                continue;
            }
            decided.map_err(AggregateError::UserError)?;
            if events.is_empty() {
                return Ok(vec![]);
            }
            // `handle` wrote its events through the sink, which applied each one to the
            // aggregate as it went: this is the aggregate after them.
            let decided = context.aggregate().clone();
            match self.store.commit(events, context, metadata.to_map()).await {
                Err(AggregateError::AggregateConflict) if !fresh && attempt < CONFLICT_RETRIES => {
                    // Decided on a state that was not the latest: what we kept is stale.
                    self.kept.forget(aggregate_id);
                    continue;
                }
                Err(error) => {
                    self.kept.forget(aggregate_id);
                    return Err(error);
                }
                Ok(committed) => break (committed, decided),
            }
        };
        let Some(last) = committed.last() else {
            return Ok(committed);
        };
        for event in &committed {
            A::observe(&self.metrics, &after, &event.payload);
        }
        if after.expects_more_commands() {
            self.kept.put(aggregate_id, after.clone(), last.sequence);
        } else if !fresh {
            // A new aggregate was never kept: no lock to take on the issuance path.
            self.kept.forget(aggregate_id);
        }
        if let Some(live) = live {
            for event in &committed {
                let fed = A::feed(
                    live,
                    aggregate_id,
                    event.sequence as i64,
                    &event.payload,
                    metadata.at,
                );
                if let Err(error) = fed.await {
                    // Committed all the same; the follower brings the event within
                    // FOLLOW_INTERVAL, or the index reloads the aggregate on its next gap.
                    warn!(%error, aggregate_id, "live index not fed a committed event");
                }
            }
        }
        if live.is_some() && A::VIEWS_FOLLOW_LATER {
            self.projector.notify_one();
        } else {
            self.wait_for_projections(A::TYPE, aggregate_id, last.sequence)
                .await;
        }
        Ok(committed)
    }

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
