//! Aggregates kept in memory between commands, so a grant's next command (the code exchange
//! after the code, each refresh rotation after the last) does not read its events again.
//!
//! A cached aggregate may be behind the log: another instance, or the CLI, may have appended
//! to it. That is safe for commands because cqrs-es commits with optimistic concurrency: the
//! commit of a command decided on a stale aggregate conflicts on the event's sequence number,
//! the entry is dropped, and the command is decided again on the aggregate read from the store.
//! A command that a kept aggregate refuses, or that leaves it unchanged, commits nothing and so
//! cannot conflict: it too is decided again on the aggregate read from the store.
//! Reads through `Commands::load` may see the stale aggregate; they serve facts a grant never
//! changes (its client, user, nonce), and every decision is taken again by the command.

use std::sync::Mutex;

use hashlink::LruCache;

/// A bounded least-recently-used map from aggregate id to the aggregate and the sequence number
/// of its last event.
pub(super) struct AggregateCache<A> {
    entries: Option<Mutex<LruCache<String, (A, usize)>>>,
}

impl<A: Clone> AggregateCache<A> {
    /// A cache of up to `capacity` aggregates; 0 keeps none.
    pub(super) fn new(capacity: usize) -> AggregateCache<A> {
        AggregateCache {
            entries: (capacity > 0).then(|| Mutex::new(LruCache::new(capacity))),
        }
    }

    pub(super) fn get(&self, aggregate_id: &str) -> Option<(A, usize)> {
        let mut entries = self.entries.as_ref()?.lock().ok()?;
        entries.get(aggregate_id).cloned()
    }

    /// Keeps `aggregate` as of `sequence`, unless a later state is already kept (two commands
    /// can finish in either order).
    pub(super) fn put(&self, aggregate_id: &str, aggregate: A, sequence: usize) {
        let Some(mut entries) = self.entries.as_ref().and_then(|e| e.lock().ok()) else {
            return;
        };
        match entries.get_mut(aggregate_id) {
            Some(kept) if kept.1 >= sequence => {}
            Some(kept) => *kept = (aggregate, sequence),
            None => {
                entries.insert(aggregate_id.to_owned(), (aggregate, sequence));
            }
        }
    }

    pub(super) fn forget(&self, aggregate_id: &str) {
        if let Some(mut entries) = self.entries.as_ref().and_then(|e| e.lock().ok()) {
            entries.remove(aggregate_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AggregateCache;

    #[test]
    fn a_later_state_is_never_replaced_by_an_earlier_one() {
        let cache = AggregateCache::new(2);
        cache.put("g", "after two events", 2);
        cache.put("g", "after one event", 1);
        assert_eq!(cache.get("g"), Some(("after two events", 2)));
        cache.put("g", "after three events", 3);
        assert_eq!(cache.get("g"), Some(("after three events", 3)));
    }

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let cache = AggregateCache::new(2);
        cache.put("a", 1, 1);
        cache.put("b", 2, 1);
        cache.get("a");
        cache.put("c", 3, 1);
        assert_eq!(cache.get("b"), None);
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
        cache.forget("a");
        assert_eq!(cache.get("a"), None);
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let cache = AggregateCache::new(0);
        cache.put("a", 1, 1);
        assert_eq!(cache.get("a"), None);
    }
}
