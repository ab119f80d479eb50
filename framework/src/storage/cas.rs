//! Read-modify-write of shared state, atomic across server nodes: read a document, compute
//! its next value, store it with [`Storage::compare_and_put`](super::Storage::compare_and_put)
//! against the bytes that were read, and start again when another writer (on this node or
//! another) changed it in between. Never an in-process lock: a lock is not shared by the
//! other nodes of a cluster.

use std::time::Duration;

use rand::Rng;
use serde::{de::DeserializeOwned, Serialize};

use super::View;
use crate::error::{Error, Result};

/// How many times one read-modify-write is tried before it gives up with 503.
pub const CAS_ATTEMPTS: u32 = 100;

/// The attempts of one compare-and-set loop: a random pause that grows with each lost race
/// (up to 50 ms, so that writers who collided spread out), and an end after
/// [`CAS_ATTEMPTS`].
#[derive(Debug, Default)]
pub struct Retry {
    lost: u32,
}

impl Retry {
    /// A loop that has lost no race yet.
    pub fn new() -> Self {
        Retry::default()
    }

    /// Call after a lost race (a compare-and-set that did not store): waits before the next
    /// attempt. Errors: 503 when `what` lost [`CAS_ATTEMPTS`] races in a row.
    pub async fn lost(&mut self, what: &str) -> Result<()> {
        self.lost += 1;
        if self.lost >= CAS_ATTEMPTS {
            return Err(Error::Unavailable(format!(
                "too many concurrent changes of {what}; try again"
            )));
        }
        let ceiling = 1u64 << self.lost.min(6);
        let pause = rand::thread_rng().gen_range(0..=ceiling.min(50) * 1000);
        tokio::time::sleep(Duration::from_micros(pause)).await;
        Ok(())
    }
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::internal(format!("corrupt entry at {key:?}: {e}")))
}

impl View {
    /// Changes the JSON document at `key` atomically: `change` gets the current value
    /// (`None` when absent) and returns the next one, or `None` to leave it as it is; the
    /// result is stored only if the document is still what was read, else it is read again
    /// and `change` runs again (so `change` must depend only on its argument and on values
    /// that do not change while it retries). An error from `change` ends the loop.
    ///
    /// Returns the value before and the value after (equal when `change` kept it).
    /// Errors: those of `change`; 500 for a document that does not decode; 503 after
    /// [`CAS_ATTEMPTS`] lost races.
    pub async fn update_json<T, F>(
        &self,
        key: &str,
        mut change: F,
    ) -> Result<(Option<T>, Option<T>)>
    where
        T: Serialize + DeserializeOwned + Clone,
        F: FnMut(Option<T>) -> Result<Option<T>>,
    {
        let mut retry = Retry::new();
        loop {
            let raw = self.get(key).await?;
            let current: Option<T> = raw.as_deref().map(|b| decode(key, b)).transpose()?;
            let Some(next) = change(current.clone())? else {
                return Ok((current.clone(), current));
            };
            let bytes = serde_json::to_vec(&next).map_err(Error::internal)?;
            if self.compare_and_put(key, raw.as_deref(), &bytes).await? {
                return Ok((current, Some(next)));
            }
            retry.lost(key).await?;
        }
    }

    /// The JSON document at `key` with the exact bytes it was read from, for a later
    /// [`View::compare_and_put`] against them. Errors: 500 when it does not decode.
    pub async fn get_json_versioned<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<(T, Vec<u8>)>> {
        match self.get(key).await? {
            None => Ok(None),
            Some(bytes) => Ok(Some((decode(key, &bytes)?, bytes))),
        }
    }

    /// Stores `value` as JSON at `key` only if the stored bytes are still `expected`
    /// (`None`: only if absent); true when it stored.
    pub async fn compare_and_put_json<T: Serialize>(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &T,
    ) -> Result<bool> {
        let bytes = serde_json::to_vec(value).map_err(Error::internal)?;
        self.compare_and_put(key, expected, &bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::barrier::{random_key, Barrier, Keyring, Unsealed};
    use crate::storage::{InMemory, SqlStore, Storage};
    use std::sync::Arc;

    /// Many writers, on several nodes' views of one store, each add one item to one
    /// document: none is lost.
    async fn no_update_is_lost(nodes: Vec<Arc<dyn Storage>>) {
        let prefix = format!("t-{}/", uuid::Uuid::new_v4());
        let nodes: Vec<View> = nodes
            .into_iter()
            .map(|store| View::new(store, prefix.clone()))
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..24u32 {
            let view = nodes[i as usize % nodes.len()].clone();
            tasks.spawn(async move {
                view.update_json::<Vec<u32>, _>("doc", |current| {
                    let mut items = current.unwrap_or_default();
                    items.push(i);
                    Ok(Some(items))
                })
                .await
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("task").expect("update");
        }
        let mut items: Vec<u32> = nodes[0].get_json("doc").await.unwrap().unwrap();
        items.sort();
        assert_eq!(items, (0..24).collect::<Vec<_>>());
        // `None` from the change keeps the document; an error ends the loop.
        let (before, after) = nodes[1]
            .update_json::<Vec<u32>, _>("doc", |_| Ok(None))
            .await
            .unwrap();
        assert_eq!(before, after);
        let err = nodes[nodes.len() - 1]
            .update_json::<Vec<u32>, _>("doc", |_| Err(Error::invalid("no")))
            .await
            .unwrap_err();
        assert_eq!(err.status(), 400);
        nodes[0].clear().await.unwrap();
    }

    /// Three views of one store, as three nodes would have.
    fn three(store: Arc<dyn Storage>) -> Vec<Arc<dyn Storage>> {
        vec![store.clone(), store.clone(), store]
    }

    /// Unsealed barriers with one keyring over `physical` stores (one per node): values are
    /// encrypted with a fresh nonce per write, so a compare-and-set must swap against the
    /// exact ciphertext stored, never a re-encryption of what was read.
    fn barriers(physical: Vec<Arc<dyn Storage>>) -> Vec<Arc<dyn Storage>> {
        let keyring = Keyring::generate(0).to_json().unwrap();
        let root_key = random_key();
        physical
            .into_iter()
            .map(|store| {
                let barrier = Barrier::new(store);
                barrier
                    .install(Unsealed {
                        keyring: Keyring::from_json(&keyring).unwrap(),
                        root_key: root_key.clone(),
                    })
                    .unwrap();
                Arc::new(barrier) as Arc<dyn Storage>
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn in_memory_loses_no_update() {
        no_update_is_lost(three(Arc::new(InMemory::new()))).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_loses_no_update() {
        let dir = std::env::temp_dir().join(format!("authmount-cas-{}", uuid::Uuid::new_v4()));
        let store = SqlStore::sqlite(&dir.join("cas.db")).await.unwrap();
        no_update_is_lost(three(Arc::new(store))).await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_seal_barrier_loses_no_update() {
        no_update_is_lost(barriers(three(Arc::new(InMemory::new())))).await;
    }

    /// Three nodes, each with its own connection pool and its own barrier, over one
    /// PostgreSQL database. Runs only where `AUTHMOUNT_TEST_POSTGRES_URL` is set.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_seal_barrier_on_postgres_loses_no_update() {
        let Some(url) = crate::storage::postgres_test_url() else {
            return;
        };
        let pools = (0..3)
            .map(|_| Arc::new(SqlStore::postgres(&url).unwrap()) as Arc<dyn Storage>)
            .collect();
        no_update_is_lost(barriers(pools)).await;
    }
}
