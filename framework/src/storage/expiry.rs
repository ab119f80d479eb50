//! A minute-bucketed index of things that expire, kept in storage beside them so that every
//! node can sweep them, at a cost that follows what is due and not what is stored.
//!
//! Layout under the index's prefix `P` (inside some [`View`]):
//!
//! * `P<minute>/<name>`, empty: `name` is due at `<minute>`, the first whole minute (Unix
//!   seconds / 60, twelve digits) after its expiry. The writer puts this key in the batch
//!   that stores the thing (or before it), so nothing is ever stored without its index.
//! * `Pswept`: the last minute a sweep finished, as decimal text.
//!
//! A sweep reads the buckets from a few minutes before the last finished one up to now, one
//! small range read each (none again within the same minute), and never lists the whole
//! index. Without a `swept` mark (a store older than the mark, or a sweep that has not run
//! for a day) it lists the index once.
//! Several nodes may sweep at once: every step is idempotent.

use crate::error::Result;
use crate::storage::View;

/// How many minutes before the last finished sweep a sweep looks again: room for nodes
/// whose clocks differ a little (an entry filed by a node behind the sweeper's clock).
const LOOKBACK_MINUTES: u64 = 5;

/// Beyond this many minutes since the last finished sweep, listing the whole index once is
/// cheaper than one range read per minute.
const WALK_MAX_MINUTES: u64 = 24 * 60;

/// An expiry index under one prefix of a [`View`] (which ends with `/`), e.g. `expiry/`.
#[derive(Debug, Clone)]
pub struct ExpiryIndex {
    prefix: String,
}

impl ExpiryIndex {
    /// The index under `prefix` (ending with `/`).
    pub fn new(prefix: impl Into<String>) -> Self {
        ExpiryIndex {
            prefix: prefix.into(),
        }
    }

    /// The index key (relative to the view) of `name`, which expires at `expires` (Unix
    /// seconds): put it, empty, in the same batch as the thing.
    pub fn key(&self, expires: u64, name: &str) -> String {
        format!("{}{}/{name}", self.prefix, bucket_name(expires / 60 + 1))
    }

    fn swept_key(&self) -> String {
        format!("{}swept", self.prefix)
    }

    /// The minute the last sweep finished, if one ever did. Errors: storage failures.
    pub async fn last_swept(&self, storage: &View) -> Result<Option<u64>> {
        let stored = storage.get(&self.swept_key()).await?;
        Ok(stored.and_then(|b| String::from_utf8_lossy(&b).trim().parse().ok()))
    }

    /// The entries due at `now` (Unix seconds): `(index key, name)` for every name in a
    /// bucket whose minute has come. The caller deals with each thing, deletes its index
    /// key, and then calls [`ExpiryIndex::swept`]. Errors: storage failures.
    pub async fn due(&self, storage: &View, now: u64) -> Result<Vec<(String, String)>> {
        let current = now / 60;
        let buckets = match self.last_swept(storage).await? {
            // Swept this minute already: what is filed now goes to later buckets.
            Some(last) if last >= current => return Ok(Vec::new()),
            Some(last) if current.saturating_sub(last) <= WALK_MAX_MINUTES => {
                (last.saturating_sub(LOOKBACK_MINUTES)..=current)
                    .map(|minute| format!("{}/", bucket_name(minute)))
                    .collect()
            }
            _ => storage.list(&self.prefix).await?,
        };
        let mut found = Vec::new();
        for bucket in buckets {
            let Some(minute) = bucket.strip_suffix('/').and_then(|b| b.parse::<u64>().ok()) else {
                continue;
            };
            if minute > current {
                continue;
            }
            let dir = format!("{}{bucket}", self.prefix);
            for name in storage.list(&dir).await? {
                found.push((format!("{dir}{name}"), name));
            }
        }
        Ok(found)
    }

    /// Records that everything due at `now` was dealt with, so the next sweep starts from
    /// here. Errors: storage failures.
    /// Writes only when the mark moves (a sweep may run on every request).
    pub async fn swept(&self, storage: &View, now: u64) -> Result<()> {
        let minute = now / 60;
        if self.last_swept(storage).await? == Some(minute) {
            return Ok(());
        }
        storage
            .put(&self.swept_key(), minute.to_string().as_bytes())
            .await
    }
}

fn bucket_name(minute: u64) -> String {
    format!("{minute:012}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::recording::Recording;
    use crate::storage::InMemory;
    use std::sync::Arc;

    const NOW: u64 = 1_800_000_000;

    /// The prefixes listed since the last look.
    fn lists(store: &Recording) -> Vec<String> {
        let reads = store.take_reads();
        reads
            .iter()
            .filter_map(|r| r.strip_prefix("list "))
            .map(String::from)
            .collect()
    }

    #[tokio::test]
    async fn a_sweep_reads_the_due_buckets_and_not_the_whole_index() {
        let store = Arc::new(Recording::default());
        let view = View::new(store.clone(), "m/");
        let index = ExpiryIndex::new("expiry/");
        // 500 things far in the future, 3 due now.
        for i in 0..500 {
            view.put(&index.key(NOW + 86_400, &format!("later{i}")), b"")
                .await
                .unwrap();
        }
        for i in 0..3 {
            view.put(&index.key(NOW - 30, &format!("due{i}")), b"")
                .await
                .unwrap();
        }
        // The first sweep has no mark: it lists the whole index once.
        store.take_reads();
        let due = index.due(&view, NOW).await.unwrap();
        let names: Vec<&str> = due.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["due0", "due1", "due2"]);
        assert_eq!(lists(&store)[0], "m/expiry/");
        for (key, _) in &due {
            view.delete(key).await.unwrap();
        }
        index.swept(&view, NOW).await.unwrap();
        assert_eq!(index.last_swept(&view).await.unwrap(), Some(NOW / 60));

        // Ten minutes on, with two newly due: the sweep reads only the minutes since the
        // mark (and the look-back), not the 500 later entries.
        let later = NOW + 600;
        view.put(&index.key(later - 10, "new0"), b"").await.unwrap();
        view.put(&index.key(NOW + 1, "new1"), b"").await.unwrap();
        store.take_reads();
        let due = index.due(&view, later).await.unwrap();
        let mut names: Vec<&str> = due.iter().map(|(_, n)| n.as_str()).collect();
        names.sort();
        assert_eq!(names, ["new0", "new1"]);
        let listed = lists(&store);
        assert!(!listed.contains(&"m/expiry/".to_string()), "{listed:?}");
        assert!(
            listed.iter().all(|p| p.len() == "m/expiry/".len() + 13),
            "{listed:?}"
        );
        // From five minutes before the mark through now.
        assert_eq!(listed.len(), 16);
    }

    #[tokio::test]
    async fn a_second_sweep_in_the_same_minute_lists_nothing() {
        let store = Arc::new(Recording::default());
        let view = View::new(store.clone(), "m/");
        let index = ExpiryIndex::new("expiry/");
        index.due(&view, NOW).await.unwrap();
        index.swept(&view, NOW).await.unwrap();
        store.take_reads();
        assert!(index.due(&view, NOW + 59).await.unwrap().is_empty());
        assert_eq!(lists(&store), Vec::<String>::new());
    }

    #[tokio::test]
    async fn an_entry_filed_by_a_node_a_little_behind_is_still_found() {
        let view = View::new(Arc::new(InMemory::new()), "m/");
        let index = ExpiryIndex::new("expiry/");
        index.swept(&view, NOW).await.unwrap();
        // Filed for a minute the sweeper already finished (a node two minutes behind).
        view.put(&index.key(NOW - 150, "late"), b"").await.unwrap();
        let due = index.due(&view, NOW + 60).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1, "late");
    }

    #[tokio::test]
    async fn after_a_long_pause_the_sweep_lists_the_index_once() {
        let view = View::new(Arc::new(InMemory::new()), "m/");
        let index = ExpiryIndex::new("expiry/");
        index.swept(&view, NOW).await.unwrap();
        view.put(&index.key(NOW + 10, "old"), b"").await.unwrap();
        let a_week_later = NOW + 7 * 86_400;
        let due = index.due(&view, a_week_later).await.unwrap();
        assert_eq!(due.len(), 1);
    }
}
