//! Parsed objects kept in memory, exact across server nodes.
//!
//! [`Cached`] maps a storage key to the object parsed from its stored bytes. Every use reads
//! the stored bytes (behind a seal, from the barrier's cache of decrypted values, which the
//! store's change feed keeps exact: no storage query when warm) and reuses the parsed object
//! while they are unchanged, so a write made through another node sharing the store is seen
//! by this node's very next request, and an
//! expensive parse (key verifiers, compiled policies, a backend instance) happens once per
//! stored version. The framework's own caches (mount table, policies) and the JWT backend's
//! (config with its verifiers, roles) all use it; so can a backend of yours.

use std::future::Future;
use std::sync::Arc;

use dashmap::DashMap;

use crate::error::Result;
use crate::storage::View;

/// Objects parsed from the values of keys of one [`View`], each reused while its stored
/// bytes are unchanged.
pub struct Cached<T> {
    entries: DashMap<String, (Vec<u8>, Arc<T>)>,
}

impl<T> Default for Cached<T> {
    fn default() -> Self {
        Cached {
            entries: DashMap::new(),
        }
    }
}

impl<T: Send + Sync + 'static> Cached<T> {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The object for `key` in `view`: `None` when the key is absent, the cached object when
    /// the stored bytes are those it was parsed from, else `parse(bytes)` (cached for next
    /// time). Errors: the storage's, or the parser's.
    pub async fn get<F, Fut>(&self, view: &View, key: &str, parse: F) -> Result<Option<Arc<T>>>
    where
        F: FnOnce(Vec<u8>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let Some(bytes) = view.get(key).await? else {
            self.entries.remove(key);
            return Ok(None);
        };
        // Clone the Arc out so that no map guard is held across the await below.
        let hit = self
            .entries
            .get(key)
            .filter(|entry| entry.0 == bytes)
            .map(|entry| entry.1.clone());
        crate::metrics::metrics().cache_lookup::<T>(hit.is_some());
        if hit.is_some() {
            return Ok(hit);
        }
        let parsed = Arc::new(parse(bytes.clone()).await?);
        self.entries
            .insert(key.to_string(), (bytes, parsed.clone()));
        Ok(Some(parsed))
    }

    /// Records `value` as the object parsed from `bytes`, just written at `key` by this node
    /// (so the next [`Cached::get`] does not parse again).
    pub fn insert(&self, key: &str, bytes: Vec<u8>, value: Arc<T>) {
        self.entries.insert(key.to_string(), (bytes, value));
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &str) {
        self.entries.remove(key);
    }

    /// Every cached object, in no particular order (objects seen so far; not a listing of
    /// storage).
    pub fn values(&self) -> Vec<Arc<T>> {
        self.entries.iter().map(|e| e.1.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::InMemory;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn parses_once_per_stored_version_and_sees_other_writers() {
        let view = View::new(Arc::new(InMemory::new()), "x/");
        let cache: Cached<String> = Cached::new();
        let parses = AtomicUsize::new(0);
        let parse = |b: Vec<u8>| {
            parses.fetch_add(1, Ordering::SeqCst);
            async move { Ok(String::from_utf8(b).unwrap()) }
        };
        assert!(cache.get(&view, "k", parse).await.unwrap().is_none());
        view.put("k", b"one").await.unwrap();
        assert_eq!(*cache.get(&view, "k", parse).await.unwrap().unwrap(), "one");
        assert_eq!(*cache.get(&view, "k", parse).await.unwrap().unwrap(), "one");
        assert_eq!(parses.load(Ordering::SeqCst), 1);
        // Another node (another handle on the same store) writes: seen at once.
        view.put("k", b"two").await.unwrap();
        assert_eq!(*cache.get(&view, "k", parse).await.unwrap().unwrap(), "two");
        view.delete("k").await.unwrap();
        assert!(cache.get(&view, "k", parse).await.unwrap().is_none());
        assert_eq!(parses.load(Ordering::SeqCst), 2);
    }
}
