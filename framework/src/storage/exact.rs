//! A bounded cache of values by key, kept exact by a store's change feed (see
//! [`feed`](super::feed)): the seal's barrier keeps its decrypted values here, so a warm
//! read costs no storage query and no decryption.
//!
//! Rules that keep it exact:
//! - it serves nothing until [`ExactCache::apply`] has given it a point of the feed
//!   (a store without a feed never gets one: every read goes through);
//! - each request first applies the feed's changes since that point
//!   (the barrier's `refresh`), dropping exactly the keys changed;
//! - every write through this process drops its keys after it is committed, whatever its
//!   outcome;
//! - a value read from storage is kept only if no drop touched its key's bucket between the
//!   read's start and its end (a [`Ticket`] carries the bucket's epoch), so a read that raced
//!   a change never installs the value the change replaced.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

use super::feed::Changes;

/// How many keys the cache holds at most.
pub const CACHE_KEYS: usize = 16_384;
/// Values larger than this (bytes) are not kept.
pub const CACHE_VALUE_BYTES: usize = 64 * 1024;
const BUCKETS: usize = 64;

type Value = Option<Arc<[u8]>>;

/// What [`ExactCache::lookup`] found.
pub(crate) enum Lookup {
    /// The value (`None`: the key is absent).
    Hit(Option<Vec<u8>>),
    /// Not cached: read storage, then hand the value to [`ExactCache::fill`] with this.
    Miss(Ticket),
}

/// Permission to keep a value read from storage, if nothing changed meanwhile.
pub(crate) struct Ticket(Option<(usize, u64)>);

/// See the module documentation.
pub(crate) struct ExactCache {
    state: Mutex<State>,
    hasher: RandomState,
}

struct State {
    /// The feed point every cached value is current at; `None`: serving nothing.
    point: Option<u64>,
    /// Two generations: lookups promote from `old` to `new`; when `new` is full, it becomes
    /// `old` and the previous `old` is dropped (an approximate LRU in bounded memory).
    new: HashMap<String, Value>,
    old: HashMap<String, Value>,
    epochs: [u64; BUCKETS],
}

impl Default for State {
    fn default() -> Self {
        State {
            point: None,
            new: HashMap::new(),
            old: HashMap::new(),
            epochs: [0; BUCKETS],
        }
    }
}

impl Default for ExactCache {
    fn default() -> Self {
        ExactCache {
            state: Mutex::new(State::default()),
            hasher: RandomState::new(),
        }
    }
}

impl State {
    fn drop_key(&mut self, bucket: usize, key: &str) {
        self.new.remove(key);
        self.old.remove(key);
        self.epochs[bucket] += 1;
    }

    fn drop_all(&mut self) {
        self.new.clear();
        self.old.clear();
        for epoch in &mut self.epochs {
            *epoch += 1;
        }
    }
}

impl ExactCache {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bucket(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) % BUCKETS as u64) as usize
    }

    /// The feed point the cache is current at (`None`: not in use yet).
    pub fn point(&self) -> Option<u64> {
        self.state().point
    }

    /// The cached value of `key`, or a ticket to fill it.
    pub fn lookup(&self, key: &str) -> Lookup {
        let bucket = self.bucket(key);
        let mut state = self.state();
        if state.point.is_none() {
            return Lookup::Miss(Ticket(None));
        }
        if let Some(value) = state.new.get(key) {
            return Lookup::Hit(value.as_deref().map(<[u8]>::to_vec));
        }
        if let Some(value) = state.old.remove(key) {
            let out = value.as_deref().map(<[u8]>::to_vec);
            state.new.insert(key.to_string(), value);
            return Lookup::Hit(out);
        }
        Lookup::Miss(Ticket(Some((bucket, state.epochs[bucket]))))
    }

    /// Keeps `value` (`None`: absent), read from storage for `key` under `ticket`, unless
    /// the key's bucket changed since the ticket was issued.
    pub fn fill(&self, key: &str, ticket: Ticket, value: Option<&[u8]>) {
        let Ticket(Some((bucket, epoch))) = ticket else {
            return;
        };
        if value.is_some_and(|v| v.len() > CACHE_VALUE_BYTES) {
            return;
        }
        let mut state = self.state();
        if state.point.is_none() || state.epochs[bucket] != epoch {
            return;
        }
        if state.new.len() >= CACHE_KEYS / 2 {
            state.old = std::mem::take(&mut state.new);
        }
        state.new.insert(key.to_string(), value.map(Arc::from));
    }

    /// Drops `keys` (after a write through this process, whatever its outcome).
    pub fn invalidate<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        let buckets: Vec<(usize, &str)> = keys.into_iter().map(|k| (self.bucket(k), k)).collect();
        let mut state = self.state();
        for (bucket, key) in buckets {
            state.drop_key(bucket, key);
        }
    }

    /// Applies what the feed says changed since [`ExactCache::point`]; the cache is then
    /// current at the feed's newest point.
    pub fn apply(&self, changes: Changes) {
        let mut state = self.state();
        match changes {
            Changes::Unknown => {
                state.drop_all();
                state.point = None;
            }
            Changes::Everything { through } => {
                state.drop_all();
                state.point = Some(through);
            }
            Changes::Keys { through, keys } => {
                if state.point.is_none() {
                    state.drop_all();
                }
                for key in &keys {
                    let bucket = self.bucket(key);
                    state.drop_key(bucket, key);
                }
                state.point = Some(state.point.map_or(through, |p| p.max(through)));
            }
        }
    }

    /// Forgets everything and serves nothing until the next [`ExactCache::apply`] (sealing).
    pub fn reset(&self) {
        let mut state = self.state();
        state.drop_all();
        state.point = None;
    }

    /// How many keys are cached.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        let state = self.state();
        state.new.len() + state.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(cache: &ExactCache, key: &str) -> Option<Option<Vec<u8>>> {
        match cache.lookup(key) {
            Lookup::Hit(v) => Some(v),
            Lookup::Miss(_) => None,
        }
    }

    #[test]
    fn serves_only_after_a_feed_point_and_drops_exactly_what_changed() {
        let cache = ExactCache::default();
        let Lookup::Miss(t) = cache.lookup("a") else {
            panic!("hit before any feed point")
        };
        cache.fill("a", t, Some(b"1"));
        assert_eq!(hit(&cache, "a"), None, "nothing kept without a feed point");
        cache.apply(Changes::Keys {
            through: 5,
            keys: vec![],
        });
        for (key, value) in [("a", Some(&b"1"[..])), ("b", None), ("c", Some(b"3"))] {
            let Lookup::Miss(t) = cache.lookup(key) else {
                panic!()
            };
            cache.fill(key, t, value);
        }
        assert_eq!(hit(&cache, "a"), Some(Some(b"1".to_vec())));
        assert_eq!(hit(&cache, "b"), Some(None), "absence is cached too");
        cache.apply(Changes::Keys {
            through: 6,
            keys: vec!["a".into()],
        });
        assert_eq!(hit(&cache, "a"), None);
        assert_eq!(hit(&cache, "c"), Some(Some(b"3".to_vec())));
        assert_eq!(cache.point(), Some(6));
        cache.apply(Changes::Everything { through: 9 });
        assert_eq!(hit(&cache, "c"), None);
        cache.apply(Changes::Unknown);
        assert_eq!(cache.point(), None);
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let cache = ExactCache::default();
        cache.apply(Changes::Keys {
            through: 1,
            keys: vec![],
        });
        let Lookup::Miss(stale) = cache.lookup("k") else {
            panic!()
        };
        // The value was read; before it is kept, a change of the key is applied.
        cache.apply(Changes::Keys {
            through: 2,
            keys: vec!["k".into()],
        });
        cache.fill("k", stale, Some(b"old"));
        assert_eq!(hit(&cache, "k"), None);
        let Lookup::Miss(t) = cache.lookup("k") else {
            panic!()
        };
        cache.invalidate(["k"]); // a local write
        cache.fill("k", t, Some(b"old"));
        assert_eq!(hit(&cache, "k"), None);
        cache.reset();
        assert_eq!(cache.point(), None);
    }

    #[test]
    fn stays_bounded() {
        let cache = ExactCache::default();
        cache.apply(Changes::Everything { through: 1 });
        for i in 0..CACHE_KEYS * 3 {
            let key = format!("k{i}");
            let Lookup::Miss(t) = cache.lookup(&key) else {
                panic!()
            };
            cache.fill(&key, t, Some(b"v"));
        }
        assert!(cache.len() <= CACHE_KEYS, "{}", cache.len());
        let Lookup::Miss(t) = cache.lookup("big") else {
            panic!()
        };
        cache.fill("big", t, Some(&vec![0u8; CACHE_VALUE_BYTES + 1]));
        assert_eq!(hit(&cache, "big"), None);
    }
}
