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

/// A value read (or made) from storage at its first use and kept in memory until
/// [`Loaded::forget`] (called when the whole store was replaced: a snapshot restore). For
/// values that never change once written (the token store's and the identity store's keys):
/// unlike [`Cached`], no read of storage per use.
pub struct Loaded<T> {
    value: std::sync::RwLock<Option<Arc<T>>>,
    loading: tokio::sync::Mutex<()>,
}

impl<T> Default for Loaded<T> {
    fn default() -> Self {
        Loaded {
            value: std::sync::RwLock::new(None),
            loading: tokio::sync::Mutex::new(()),
        }
    }
}

impl<T: Send + Sync + 'static> Loaded<T> {
    /// Nothing loaded yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn current(&self) -> Option<Arc<T>> {
        self.value.read().ok().and_then(|v| v.clone())
    }

    /// The value, running `load` when none is kept (one `load` at a time: callers arriving
    /// meanwhile wait for its result). Errors: `load`'s (nothing is kept then).
    pub async fn get_or_load<F, Fut>(&self, load: F) -> Result<Arc<T>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if let Some(value) = self.current() {
            return Ok(value);
        }
        let _one_at_a_time = self.loading.lock().await;
        if let Some(value) = self.current() {
            return Ok(value);
        }
        let value = Arc::new(load().await?);
        if let Ok(mut slot) = self.value.write() {
            *slot = Some(value.clone());
        }
        Ok(value)
    }

    /// Forgets the value: the next use loads it again.
    pub fn forget(&self) {
        if let Ok(mut slot) = self.value.write() {
            *slot = None;
        }
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

    #[tokio::test]
    async fn a_loaded_value_is_kept_until_forgotten() {
        let loaded: Loaded<u32> = Loaded::new();
        let loads = AtomicUsize::new(0);
        let load = |n: u32| {
            loads.fetch_add(1, Ordering::SeqCst);
            async move { Ok(n) }
        };
        assert_eq!(*loaded.get_or_load(|| load(1)).await.unwrap(), 1);
        assert_eq!(*loaded.get_or_load(|| load(2)).await.unwrap(), 1);
        loaded.forget();
        assert_eq!(*loaded.get_or_load(|| load(3)).await.unwrap(), 3);
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        let failed = loaded.get_or_load(|| async { Err(crate::Error::internal("x")) });
        assert_eq!(
            *failed.await.unwrap(),
            3,
            "a kept value is not loaded again"
        );
    }
}
