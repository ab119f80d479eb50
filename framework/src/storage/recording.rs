//! For tests: an in-memory store that records the reads it serves, to show what an
//! operation reads (a `list` is a range read of every key under its prefix).

use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::Result;
use crate::storage::{InMemory, Storage};

/// An [`InMemory`] store that records `get <key>` and `list <prefix>` for every read.
#[derive(Default)]
pub(crate) struct Recording {
    inner: InMemory,
    reads: Mutex<Vec<String>>,
}

impl Recording {
    /// The reads recorded since the last call, oldest first.
    pub(crate) fn take_reads(&self) -> Vec<String> {
        std::mem::take(&mut *self.reads.lock().unwrap())
    }

    fn record(&self, read: String) {
        self.reads.lock().unwrap().push(read);
    }
}

#[async_trait]
impl Storage for Recording {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.record(format!("get {key}"));
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.inner.put(key, value).await
    }
    async fn put_batch(&self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        self.inner.put_batch(entries).await
    }
    async fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<bool> {
        self.inner.put_if_absent(key, value).await
    }
    async fn compare_and_put(&self, key: &str, old: Option<&[u8]>, new: &[u8]) -> Result<bool> {
        self.inner.compare_and_put(key, old, new).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.record(format!("list {prefix}"));
        self.inner.list(prefix).await
    }
}
