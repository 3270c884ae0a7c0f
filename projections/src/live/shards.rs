//! A hash map split into shards that grow one at a time.
//!
//! A `HashMap` grows by allocating a table twice its size and moving every entry across, so
//! for a moment it holds both: the live index's token map, past 114,688 tokens, went from 19
//! to 38 MiB with 57 MiB allocated at once, and that moment set the benchmark's memory peak. Split into [`SHARDS`] maps (a key's shard chosen by its hash), each grows on
//! its own, so a growth moves one shard's entries and the extra memory is a sixty-fourth of
//! the map's.

use std::borrow::Borrow;
use std::collections::hash_map::{Entry, RandomState};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::ops::Index;

const SHARDS: usize = 64;

pub(super) struct Sharded<K, V> {
    shards: Box<[HashMap<K, V>]>,
    /// Picks the shard. Each shard's map hashes with keys of its own, so the entries of one
    /// shard still spread over all of its buckets.
    picker: RandomState,
}

impl<K, V> Default for Sharded<K, V> {
    fn default() -> Self {
        Sharded {
            shards: (0..SHARDS).map(|_| HashMap::new()).collect(),
            picker: RandomState::new(),
        }
    }
}

impl<K: Hash + Eq, V> Sharded<K, V> {
    fn shard_of<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        (self.picker.hash_one(key) % SHARDS as u64) as usize
    }

    pub(super) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[self.shard_of(key)].get(key)
    }

    pub(super) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let shard = self.shard_of(key);
        self.shards[shard].get_mut(key)
    }

    pub(super) fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[self.shard_of(key)].get_key_value(key)
    }

    pub(super) fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }

    pub(super) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let shard = self.shard_of(&key);
        self.shards[shard].insert(key, value)
    }

    pub(super) fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        let shard = self.shard_of(&key);
        self.shards[shard].entry(key)
    }

    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }

    pub(super) fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        for shard in self.shards.iter_mut() {
            shard.retain(&mut keep);
        }
    }
}

impl<K, Q, V> Index<&Q> for Sharded<K, V>
where
    K: Hash + Eq + Borrow<Q>,
    Q: Hash + Eq + ?Sized,
{
    type Output = V;

    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("no entry for this key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn entries_are_found_by_borrowed_keys_in_whichever_shard_they_went_to() {
        let mut map: Sharded<Arc<str>, u32> = Sharded::default();
        for n in 0..1000 {
            assert!(map.insert(Arc::from(format!("grant-{n}")), n).is_none());
        }
        assert_eq!(map.len(), 1000);
        assert!(
            map.shards.iter().filter(|s| !s.is_empty()).count() > SHARDS / 2,
            "the keys spread over the shards"
        );
        assert_eq!(map["grant-7"], 7);
        assert_eq!(
            map.get_key_value("grant-9").map(|(k, _)| &**k),
            Some("grant-9")
        );
        *map.get_mut("grant-7").unwrap() += 1;
        *map.entry(Arc::from("grant-7")).or_default() += 1;
        assert_eq!(map.get("grant-7"), Some(&9));
        map.retain(|_, n| *n % 2 == 1);
        assert_eq!(map.len(), 500, "the odd ones (grant-7 is 9 now)");
        assert!(!map.contains_key("grant-8"));
        assert_eq!(map.insert(Arc::from("grant-9"), 0), Some(9));
    }
}
