//! What a read model is: a name, the tables it owns, and how it applies one event.

use async_trait::async_trait;

use crate::batch::ViewTx;
use crate::error::ProjectionError;
use crate::event_log::StoredEvent;

/// A read model fed from the event log.
#[async_trait]
pub trait Projection: Send + Sync {
    /// Stable name: the checkpoint row's key and the argument of `projections rebuild NAME`.
    fn name(&self) -> &'static str;
    /// The tables this projection owns; a rebuild empties them.
    fn tables(&self) -> &'static [&'static str];
    /// Applies one event inside the runner's transaction. Events of aggregates the projection
    /// does not follow are ignored.
    async fn apply(&self, tx: &mut ViewTx, event: &StoredEvent) -> Result<(), ProjectionError>;
}
