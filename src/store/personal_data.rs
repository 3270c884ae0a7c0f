//! The write side of crypto-shredding: every repository is wrapped so that the personal data
//! of the events it writes is sealed under each person's key, and opened again as it loads
//! an aggregate's events (the rules and the cipher are `authledger_projections::personal`).
//! The aggregates never see ciphertext; the log never holds the plaintext.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use authledger_projections::personal::{self, PersonKey};
use authledger_projections::Db;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use serde_json::Value;

/// The keys this process sealed with lately. A key never changes; one destroyed since (the
/// person erased, maybe by another instance) only seals data no one can open any more.
#[derive(Default)]
pub(super) struct WritingKeys {
    known: Mutex<HashMap<String, PersonKey>>,
}

/// Past this many people the cache starts again, so it cannot grow without bound.
const MOST_CACHED: usize = 100_000;

impl WritingKeys {
    async fn get(&self, db: &Db, username: &str) -> Result<PersonKey, PersistenceError> {
        if let Some(key) = self.known.lock().expect("not poisoned").get(username) {
            return Ok(key.clone());
        }
        let key = personal::key_for_writing(db, username)
            .await
            .map_err(|e| PersistenceError::UnknownError(Box::new(e)))?;
        let mut known = self.known.lock().expect("not poisoned");
        if known.len() >= MOST_CACHED {
            known.clear();
        }
        known.insert(username.to_owned(), key.clone());
        Ok(key)
    }

    /// Forgets `username`'s key once it is destroyed, so this process seals no more with it.
    pub(super) fn forget(&self, username: &str) {
        self.known.lock().expect("not poisoned").remove(username);
    }
}

pub(super) struct Sealing<R> {
    inner: R,
    db: Db,
    keys: Arc<WritingKeys>,
}

impl<R> Sealing<R> {
    pub(super) fn new(inner: R, db: Db, keys: Arc<WritingKeys>) -> Self {
        Sealing { inner, db, keys }
    }

    async fn seal(
        &self,
        events: &[SerializedEvent],
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let mut sealed = Vec::with_capacity(events.len());
        for event in events {
            let mut event = event.clone();
            let owners =
                personal::owners(&event.aggregate_type, &event.aggregate_id, &event.metadata);
            let mut keys = HashMap::new();
            for owner in owners {
                let key = self.keys.get(&self.db, &owner).await?;
                keys.insert(owner, key);
            }
            if !keys.is_empty() {
                personal::seal(
                    &event.aggregate_type,
                    &event.aggregate_id,
                    &mut event.payload,
                    &mut event.metadata,
                    |owner| keys.get(owner).cloned(),
                );
            }
            sealed.push(event);
        }
        Ok(sealed)
    }

    /// Opens the payloads: what the aggregate applies. Their metadata stays as stored (sealed
    /// where personal): no aggregate reads it, and a grant's events, written by a person's
    /// browser, then load without looking up anyone's key.
    async fn open(
        &self,
        mut events: Vec<SerializedEvent>,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let no_metadata = HashMap::new();
        let mut owners = std::collections::BTreeSet::new();
        for event in &events {
            personal::sealed_owners(&event.payload, &no_metadata, &mut owners);
        }
        if owners.is_empty() {
            return Ok(events);
        }
        let keys = personal::keys_for_reading(&self.db, &owners)
            .await
            .map_err(|e| PersistenceError::UnknownError(Box::new(e)))?;
        for event in &mut events {
            personal::open(&mut event.payload, &mut HashMap::new(), &keys);
        }
        Ok(events)
    }
}

impl<R: PersistedEventRepository> PersistedEventRepository for Sealing<R> {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = self.inner.get_events::<A>(aggregate_id).await?;
        self.open(events).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = self
            .inner
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await?;
        self.open(events).await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        self.inner.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let events = self.seal(events).await?;
        self.inner.persist::<A>(&events, snapshot_update).await
    }

    /// As stored, personal data sealed: authledger reads the log through
    /// `authledger_projections::event_log`, never through these streams.
    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_all_events::<A>().await
    }
}
