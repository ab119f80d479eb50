//! Single-use JWTs (authmount only; role field `single_use`): a JWT logs in once.
//!
//! A token is known by its issuer and its `jti` (RFC 7519 §4.1.7: "a unique identifier for
//! the JWT ... used to prevent the JWT from being replayed"). The first login through a
//! single-use role remembers that pair in the mount's storage, so every server node sharing
//! the store sees it at once:
//!
//! * under `single-use/used/<SHA-256 of iss and jti>`, with the time it may be forgotten:
//!   the token's `exp` plus [`MAX_CLOCK_SKEW`], the largest clock skew leeway a single-use
//!   role may have, i.e. after the last instant any single-use role of the mount (whatever
//!   its leeway, now or after a rewrite) would still accept it. A single-use role refuses
//!   a token without `exp`: one that never expires could never be forgotten;
//! * written with insert-if-absent, so of two logins racing with one token on any nodes,
//!   exactly one gets in; an entry past its time (an issuer reusing a `jti` after the first
//!   token expired, before the sweep) is replaced with a compare-and-set;
//! * indexed under `single-use/expiry/<minute>/<same hash>` and swept a minute at a time, as
//!   the OIDC states are ([`crate::oidc_state`]). Neither the `jti` nor the issuer is stored in
//!   the clear.
//!
//! The memory is mount-wide: a token used on one single-use role of a mount is refused by
//! every single-use role of that mount.

use authmount_framework::storage::ExpiryIndex;
use authmount_framework::{Error, Result, View};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const USED_PREFIX: &str = "single-use/used/";

/// The largest `clock_skew_leeway` of a single-use role, in seconds (a larger one is refused
/// at role write): every remembered token is kept until its `exp` plus this, so no role's
/// leeway outlives the memory.
pub const MAX_CLOCK_SKEW: u64 = 3600;

/// The expiry index of the remembered single-use tokens: `single-use/expiry/<minute>/<hash>`.
fn expiry_index() -> ExpiryIndex {
    ExpiryIndex::new("single-use/expiry/")
}

/// One remembered token: when it may be forgotten (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Used {
    until: u64,
}

/// The single-use memory of one mount.
pub struct SingleUse<'a> {
    storage: &'a View,
}

impl<'a> SingleUse<'a> {
    /// The memory inside a mount's storage view.
    pub fn new(storage: &'a View) -> Self {
        SingleUse { storage }
    }

    /// The storage name of a token: SHA-256 over the length-prefixed issuer and `jti` (so no
    /// two pairs share a name), in hex.
    fn hash(iss: &str, jti: &str) -> String {
        let mut h = Sha256::new();
        h.update((iss.len() as u64).to_be_bytes());
        h.update(iss.as_bytes());
        h.update(jti.as_bytes());
        hex::encode(h.finalize())
    }

    async fn read(&self, key: &str) -> Result<Option<(Used, Vec<u8>)>> {
        self.storage.get_json_versioned(key).await
    }

    /// True when the token `(iss, jti)` already logged in and is still remembered at `now`.
    /// Reads only (login explain uses it).
    pub async fn is_used(&self, iss: &str, jti: &str, now: u64) -> Result<bool> {
        let key = format!("{USED_PREFIX}{}", Self::hash(iss, jti));
        Ok(self
            .read(&key)
            .await?
            .is_some_and(|(used, _)| used.until > now))
    }

    /// Remembers the token `(iss, jti)` until `until` (Unix seconds). True when this call is
    /// its first use; false when it was used already (a replay). Atomic across nodes.
    /// Errors: storage failures.
    pub async fn consume(&self, iss: &str, jti: &str, until: u64, now: u64) -> Result<bool> {
        let hash = Self::hash(iss, jti);
        let key = format!("{USED_PREFIX}{hash}");
        let entry = serde_json::to_vec(&Used { until }).map_err(Error::internal)?;
        // The index first: an entry is never left without the index that sweeps it.
        let index = expiry_index().key(until, &hash);
        self.storage.put(&index, b"").await?;
        if self.storage.put_if_absent(&key, &entry).await? {
            return Ok(true);
        }
        match self.read(&key).await? {
            // Remembered and still live: a replay.
            Some((used, _)) if used.until > now => Ok(false),
            // Past its time but not swept yet: this is a new token with a reused jti.
            Some((_, seen)) => {
                self.storage
                    .compare_and_put(&key, Some(&seen), &entry)
                    .await
            }
            // Swept between the two calls.
            None => self.storage.put_if_absent(&key, &entry).await,
        }
    }

    /// Forgets the tokens whose time passed before `now`, a minute at a time by their
    /// index; returns how many went. An entry whose time was moved on (a reused `jti`) is
    /// kept. Safe to run on several nodes at once.
    pub async fn sweep(&self, now: u64) -> Result<usize> {
        let mut removed = 0;
        for (index, hash) in expiry_index().due(self.storage, now).await? {
            let key = format!("{USED_PREFIX}{hash}");
            if let Some((used, _)) = self.read(&key).await? {
                if used.until <= now {
                    self.storage.delete(&key).await?;
                    removed += 1;
                }
            }
            self.storage.delete(&index).await?;
        }
        expiry_index().swept(self.storage, now).await?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authmount_framework::storage::InMemory;
    use std::sync::Arc;

    fn store() -> View {
        View::new(Arc::new(InMemory::new()), "auth/test/")
    }

    #[tokio::test]
    async fn a_token_is_consumed_once_and_not_stored_in_the_clear() {
        let view = store();
        let memory = SingleUse::new(&view);
        assert!(!memory.is_used("https://i/", "j-1", 100).await.unwrap());
        assert!(memory
            .consume("https://i/", "j-1", 1000, 100)
            .await
            .unwrap());
        assert!(memory.is_used("https://i/", "j-1", 100).await.unwrap());
        assert!(!memory
            .consume("https://i/", "j-1", 1000, 101)
            .await
            .unwrap());
        // Another issuer's j-1 is another token; the pair is length-prefixed.
        assert!(memory
            .consume("https://other/", "j-1", 1000, 101)
            .await
            .unwrap());
        assert!(memory
            .consume("https://i/j", "-1", 1000, 101)
            .await
            .unwrap());
        let keys = view.list("single-use/used/").await.unwrap();
        assert_eq!(keys.len(), 3);
        assert!(keys.iter().all(|k| !k.contains("j-1") && k.len() == 64));
    }

    #[tokio::test]
    async fn concurrent_logins_with_one_token_consume_it_once() {
        let view = store();
        let results = futures_util::future::join_all((0..16).map(|_| async {
            SingleUse::new(&view)
                .consume("iss", "race", 1000, 10)
                .await
                .unwrap()
        }))
        .await;
        assert_eq!(results.iter().filter(|t| **t).count(), 1);
    }

    #[tokio::test]
    async fn expired_entries_are_swept_and_a_reused_jti_replaces_a_stale_one() {
        let view = store();
        let memory = SingleUse::new(&view);
        assert!(memory.consume("iss", "old", 600, 1).await.unwrap());
        assert!(memory.consume("iss", "new", 6000, 1).await.unwrap());
        assert_eq!(memory.sweep(599).await.unwrap(), 0);
        assert_eq!(memory.sweep(700).await.unwrap(), 1);
        assert_eq!(view.list("single-use/used/").await.unwrap().len(), 1);
        assert!(memory.is_used("iss", "new", 700).await.unwrap());
        // A stale entry of a reused jti, not swept yet, does not refuse the new token, and
        // the old index entry does not sweep the new one.
        assert!(memory.consume("iss", "again", 650, 1).await.unwrap());
        assert!(memory.consume("iss", "again", 9000, 700).await.unwrap());
        assert!(!memory.consume("iss", "again", 9000, 701).await.unwrap());
        assert_eq!(memory.sweep(800).await.unwrap(), 0);
        assert!(memory.is_used("iss", "again", 800).await.unwrap());
        assert_eq!(memory.sweep(10_000).await.unwrap(), 2);
        assert!(view.list("single-use/used/").await.unwrap().is_empty());
        // No bucket is left, only the mark of the last sweep.
        assert_eq!(view.list("single-use/expiry/").await.unwrap(), ["swept"]);
    }
}
