//! Storage: one key/value trait; an in-memory implementation (dev mode and tests) and SQL
//! ones ([`SqlStore`]: embedded SQLite, PostgreSQL for several nodes); and the prefixed
//! view each mount (and the core) works in.
//!
//! Keys are `/`-separated strings; values are bytes (JSON in practice). `list` returns the
//! direct children under a prefix as Vault does: `a` for a key, `dir/` for a folder.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{de::DeserializeOwned, Serialize};

use crate::error::{Error, Result};

mod cas;
pub(crate) mod exact;
mod expiry;
pub mod feed;
#[cfg(test)]
pub(crate) mod recording;
mod sql;
pub use cas::{Retry, CAS_ATTEMPTS};
pub use expiry::ExpiryIndex;
pub use feed::{Changes, LocalFeed};
pub use sql::SqlStore;

/// A key/value store. Implementations must make each `put` and `delete` atomic and
/// immediately visible to later reads. Errors are internal faults (500/503).
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// The value at `key`, or `None`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Stores `value` at `key`, replacing what was there.
    async fn put(&self, key: &str, value: &[u8]) -> Result<()>;
    /// Stores `value` at `key` only when `key` is absent, atomically (also across server
    /// nodes sharing the store); true when it stored.
    async fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<bool>;
    /// Stores `value` at `key` only when the stored value is still `expected` (`None`: the
    /// key is absent), atomically; true when it stored. For read-modify-write of shared
    /// documents (the mount table) by several server nodes.
    async fn compare_and_put(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool>;
    /// Stores several keys at once, all or none (one transaction where the store has them).
    /// The default stores them one by one.
    async fn put_batch(&self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        for (key, value) in entries {
            self.put(key, value).await?;
        }
        Ok(())
    }
    /// Stores `guard` and every entry of `entries` in one transaction, only when `guard` is
    /// absent (also across server nodes sharing the store); true when it stored, false (and
    /// nothing written) when `guard` exists. For a change that must happen once and whole,
    /// such as encrypting a store in place under a new seal. The default is not atomic:
    /// stores with transactions override it.
    async fn put_batch_if_absent(
        &self,
        guard: &str,
        guard_value: &[u8],
        entries: &[(String, Vec<u8>)],
    ) -> Result<bool> {
        if !self.put_if_absent(guard, guard_value).await? {
            return Ok(false);
        }
        self.put_batch(entries).await?;
        Ok(true)
    }
    /// Removes `key`; removing a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<()>;
    /// The direct children of `prefix` (which ends with `/` or is empty), sorted:
    /// `name` for a key, `name/` for a folder holding further keys.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;
    /// Checks that the store answers (for `sys/health`). Errors: 503 when it does not.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
    /// The store's kind as `sys/seal-status` reports it (`storage_type`): `inmem`, `sqlite`,
    /// `postgresql`.
    fn type_name(&self) -> &'static str {
        "unknown"
    }
    /// The keys written or deleted after point `since` of this store's change feed, and the
    /// feed's newest point (see [`feed`]): what lets the seal's barrier keep decrypted values
    /// in memory and still serve a write made through another node at the next request.
    /// Every write (`put*`, `compare_and_put`, `delete`) must be in the feed, with a point
    /// assigned in commit order, before it is answered. The default, [`Changes::Unknown`],
    /// says the store has no feed: nothing above it is cached. Errors: the store's (503 when
    /// it cannot be reached).
    async fn changes_since(&self, since: u64) -> Result<Changes> {
        let _ = since;
        Ok(Changes::Unknown)
    }
    /// Every key with its value as stored (barrier ciphertext stays ciphertext), sorted by
    /// key, read in ONE consistent view while writers go on (a single read transaction): the
    /// image a snapshot holds. Errors: 400 where the store does not make images (PostgreSQL:
    /// its own tools, `pg_dump`, do); 503 when the store does not answer.
    async fn export(&self) -> Result<Vec<(String, Vec<u8>)>> {
        Err(no_images(self.type_name()))
    }
    /// Replaces the WHOLE contents of the store with `entries` (an image from
    /// [`Storage::export`]), all or nothing: one transaction, so a failure leaves the store
    /// as it was and readers never see a half-restored store. Errors: those of
    /// [`Storage::export`].
    async fn import(&self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        let _ = entries;
        Err(no_images(self.type_name()))
    }
}

/// The refusal of a store that does not make or install images.
fn no_images(store: &str) -> Error {
    match store {
        "postgresql" => Error::invalid(
            "snapshots are not made by the postgresql storage: back it up with PostgreSQL's own \
             tools (pg_dump, pg_restore; see docs/backups.md)",
        ),
        other => Error::invalid(format!("the {other} storage does not make snapshots")),
    }
}

/// The direct children of `prefix` among `keys` (sorted), as [`Storage::list`] returns them.
pub fn children<'a>(prefix: &str, keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for key in keys {
        let Some(rest) = key.strip_prefix(prefix) else {
            continue;
        };
        let child = match rest.find('/') {
            Some(i) => &rest[..=i],
            None => rest,
        };
        if out.last().map(String::as_str) != Some(child) {
            out.push(child.to_string());
        }
    }
    out
}

/// A store kept in memory, lost on exit: for `server --dev` and tests. Its change feed is a
/// [`LocalFeed`].
#[derive(Default)]
pub struct InMemory {
    map: std::sync::RwLock<BTreeMap<String, Vec<u8>>>,
    feed: LocalFeed,
}

impl InMemory {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned<T>(_: T) -> Error {
    Error::internal("storage lock poisoned")
}

#[async_trait]
impl Storage for InMemory {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.map.read().map_err(poisoned)?.get(key).cloned())
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.map
            .write()
            .map_err(poisoned)?
            .insert(key.to_string(), value.to_vec());
        self.feed.record([key]);
        Ok(())
    }

    async fn put_batch(&self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        let mut map = self.map.write().map_err(poisoned)?;
        for (key, value) in entries {
            map.insert(key.clone(), value.clone());
        }
        self.feed.record(entries.iter().map(|(k, _)| k.as_str()));
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<bool> {
        self.compare_and_put(key, None, value).await
    }

    async fn put_batch_if_absent(
        &self,
        guard: &str,
        guard_value: &[u8],
        entries: &[(String, Vec<u8>)],
    ) -> Result<bool> {
        let mut map = self.map.write().map_err(poisoned)?;
        if map.contains_key(guard) {
            return Ok(false);
        }
        map.insert(guard.to_string(), guard_value.to_vec());
        for (key, value) in entries {
            map.insert(key.clone(), value.clone());
        }
        self.feed
            .record(std::iter::once(guard).chain(entries.iter().map(|(k, _)| k.as_str())));
        Ok(true)
    }

    fn type_name(&self) -> &'static str {
        "inmem"
    }

    async fn changes_since(&self, since: u64) -> Result<Changes> {
        Ok(self.feed.since(since))
    }

    async fn compare_and_put(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool> {
        let mut map = self.map.write().map_err(poisoned)?;
        if map.get(key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        map.insert(key.to_string(), value.to_vec());
        self.feed.record([key]);
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let mut map = self.map.write().map_err(poisoned)?;
        map.remove(key);
        self.feed.record([key]);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let map = self.map.read().map_err(poisoned)?;
        let keys = map
            .range(prefix.to_string()..)
            .map(|(k, _)| k.as_str())
            .take_while(|k| k.starts_with(prefix));
        Ok(children(prefix, keys))
    }

    /// A copy under the read lock: writers wait for it, so it is one point in time.
    async fn export(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let map = self.map.read().map_err(poisoned)?;
        Ok(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    /// The new map is built first, then swapped in under the write lock.
    async fn import(&self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        let fresh: BTreeMap<String, Vec<u8>> = entries.iter().cloned().collect();
        let mut map = self.map.write().map_err(poisoned)?;
        *map = fresh;
        self.feed.record_everything();
        Ok(())
    }
}

/// A storage restricted to keys under one prefix: a mount's private space, or the core's.
#[derive(Clone)]
pub struct View {
    store: Arc<dyn Storage>,
    prefix: String,
}

impl View {
    /// A view of `store` under `prefix` (which should end with `/`).
    pub fn new(store: Arc<dyn Storage>, prefix: impl Into<String>) -> Self {
        View {
            store,
            prefix: prefix.into(),
        }
    }

    /// A narrower view under `sub` inside this one.
    pub fn sub(&self, sub: &str) -> View {
        View::new(self.store.clone(), format!("{}{}", self.prefix, sub))
    }

    /// The raw value at `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.store.get(&format!("{}{key}", self.prefix)).await
    }

    /// Stores raw bytes at `key`.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.store
            .put(&format!("{}{key}", self.prefix), value)
            .await
    }

    /// Stores several keys (relative to this view) at once, all or none.
    pub async fn put_batch(&self, entries: Vec<(String, Vec<u8>)>) -> Result<()> {
        let entries: Vec<(String, Vec<u8>)> = entries
            .into_iter()
            .map(|(k, v)| (format!("{}{k}", self.prefix), v))
            .collect();
        self.store.put_batch(&entries).await
    }

    /// Stores raw bytes at `key` unless it exists; true when stored.
    pub async fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<bool> {
        self.store
            .put_if_absent(&format!("{}{key}", self.prefix), value)
            .await
    }

    /// Stores `value` at `key` only when the stored value is still `expected`.
    pub async fn compare_and_put(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool> {
        self.store
            .compare_and_put(&format!("{}{key}", self.prefix), expected, value)
            .await
    }

    /// Removes `key`.
    pub async fn delete(&self, key: &str) -> Result<()> {
        self.store.delete(&format!("{}{key}", self.prefix)).await
    }

    /// The direct children under `prefix` inside this view.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.store.list(&format!("{}{prefix}", self.prefix)).await
    }

    /// The JSON value at `key`, decoded. Errors: 500 when the stored bytes do not decode.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.get(key).await? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::internal(format!("corrupt entry at {key:?}: {e}"))),
        }
    }

    /// Stores `value` as JSON at `key`.
    pub async fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(Error::internal)?;
        self.put(key, &bytes).await
    }

    /// Removes every key in this view (used when a mount is disabled).
    pub async fn clear(&self) -> Result<()> {
        let mut pending = vec![String::new()];
        while let Some(dir) = pending.pop() {
            for child in self.list(&dir).await? {
                let key = format!("{dir}{child}");
                if child.ends_with('/') {
                    pending.push(key);
                } else {
                    self.delete(&key).await?;
                }
            }
        }
        Ok(())
    }
}

/// The PostgreSQL URL the storage tests run against (`AUTHMOUNT_TEST_POSTGRES_URL`), or `None`
/// after saying loudly, past the test harness's output capture, that the test did not run.
/// An empty variable (a failed `$(.ci/postgres.sh)`) is reported as such; a value that is
/// not a `postgres://` URL fails the test rather than being skipped.
#[cfg(test)]
pub(crate) fn postgres_test_url() -> Option<String> {
    use std::io::Write;
    let why = match std::env::var("AUTHMOUNT_TEST_POSTGRES_URL") {
        Ok(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            return Some(url)
        }
        Ok(url) if url.trim().is_empty() => {
            "AUTHMOUNT_TEST_POSTGRES_URL is empty (did `.ci/postgres.sh` fail?)"
        }
        Ok(url) => panic!("AUTHMOUNT_TEST_POSTGRES_URL is not a postgres:// URL: {url:?}"),
        Err(_) => "AUTHMOUNT_TEST_POSTGRES_URL is not set",
    };
    let _ = writeln!(
        std::io::stderr(),
        "*** SKIPPED: {why}: this PostgreSQL test did NOT run (README: `.ci/postgres.sh`)."
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lists_direct_children_and_clears_a_view() {
        let store: Arc<dyn Storage> = Arc::new(InMemory::new());
        let a = View::new(store.clone(), "auth/a/");
        let b = View::new(store.clone(), "auth/b/");
        a.put("role/x", b"1").await.unwrap();
        a.put("role/y", b"2").await.unwrap();
        a.put("config", b"3").await.unwrap();
        b.put("role/z", b"4").await.unwrap();
        assert_eq!(a.list("").await.unwrap(), vec!["config", "role/"]);
        assert_eq!(a.list("role/").await.unwrap(), vec!["x", "y"]);
        a.clear().await.unwrap();
        assert!(a.list("").await.unwrap().is_empty());
        assert_eq!(b.get("role/z").await.unwrap().as_deref(), Some(&b"4"[..]));
    }

    #[tokio::test]
    async fn an_image_is_exported_and_imported_whole() {
        let store = InMemory::new();
        store.put("b", b"2").await.unwrap();
        store.put("a/x", b"1").await.unwrap();
        let image = store.export().await.unwrap();
        assert_eq!(
            image,
            [
                ("a/x".to_string(), b"1".to_vec()),
                ("b".to_string(), b"2".to_vec())
            ]
        );
        store.put("c", b"3").await.unwrap();
        store.delete("b").await.unwrap();
        store.import(&image).await.unwrap();
        assert_eq!(store.export().await.unwrap(), image, "c gone, b back");
    }
}
