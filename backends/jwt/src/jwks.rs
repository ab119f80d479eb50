//! Remote key sets (JWKS, RFC 7517 §5) and their cache, DECISIONS D5:
//!
//! * keys are fetched once and reused; verifiers are built once per fetched key;
//! * an unknown `kid` or a failed verification refetches, at most once per key set per
//!   cool-down ([`COOL_DOWN`]); concurrent misses share one fetch, which runs detached so a
//!   client that disconnects does not cancel it;
//! * a set older than its refresh interval (`Cache-Control: max-age`, capped at one hour;
//!   one hour by default) is refreshed in the background while the old keys keep serving;
//! * a failed fetch never replaces the last good set, so logins with cached keys go on
//!   while the provider is down;
//! * entries we cannot use (unknown `kty` or curve, `use: enc`) are skipped and logged
//!   once (D6).
//!
//! A config change builds new key sets and drops the old ones, so no request goes to an
//! old URL afterwards.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use authmount_framework::metrics::url_label;
use authmount_framework::Clock;
use authmount_framework::Mark;

use async_trait::async_trait;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use serde_json::Value;

use crate::fetch::Fetcher;
use crate::keys::{Jws, KeyError, KeyMatch, KeySource, PublicKey};

/// The least time between two fetches of one key set caused by misses.
pub const COOL_DOWN: Duration = Duration::from_secs(5);
/// The longest a fetched key set is used before a background refresh.
pub const MAX_REFRESH: Duration = Duration::from_secs(3600);

/// Parses a JWKS document into usable keys, returning the skipped entries with the reason.
///
/// Errors: the document is not JSON, or has no `keys` array.
pub fn parse_jwks(body: &[u8]) -> Result<(Vec<PublicKey>, Vec<String>), String> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
    let entries = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| "the JWKS has no \"keys\" array".to_string())?;
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for entry in entries {
        let parsed = entry
            .as_object()
            .ok_or_else(|| "entry is not an object".to_string())
            .and_then(PublicKey::from_jwk);
        match parsed {
            Ok(key) => keys.push(key),
            Err(reason) => {
                let kid = entry.get("kid").and_then(Value::as_str).unwrap_or("");
                skipped.push(format!("kid {kid:?}: {reason}"));
            }
        }
    }
    Ok((keys, skipped))
}

/// The key of `keys` that verifies `jws`, as `(kid, position)`: among the keys with the
/// token's `kid`, or all of them when the token has none (DECISIONS D5).
fn verify_with(keys: &[PublicKey], jws: &Jws) -> Option<(Option<String>, usize)> {
    keys.iter()
        .enumerate()
        .filter(|(_, k)| jws.kid.is_none() || k.kid == jws.kid)
        .find(|(_, k)| k.verifies(jws))
        .map(|(i, k)| (k.kid.clone(), i))
}

type SharedFetch = Shared<BoxFuture<'static, Result<(), String>>>;

struct Cached {
    keys: Arc<Vec<PublicKey>>,
    fetched: Option<Mark>,
    last_attempt: Option<Mark>,
    refresh_after: Duration,
}

/// One remote key set at one URL, with its cache.
pub struct RemoteKeys {
    url: String,
    fetcher: Fetcher,
    /// Times the cool-down and the set's age (the mount's clock).
    clock: Clock,
    cached: RwLock<Cached>,
    inflight: Mutex<Option<SharedFetch>>,
    logged_skips: Mutex<HashSet<String>>,
}

impl RemoteKeys {
    /// A key set at `url`, empty until first fetched; `clock` times its cool-down and age.
    pub fn new(url: String, fetcher: Fetcher, clock: Clock) -> Arc<RemoteKeys> {
        Arc::new(RemoteKeys {
            url,
            fetcher,
            clock,
            cached: RwLock::new(Cached {
                keys: Arc::new(Vec::new()),
                fetched: None,
                last_attempt: None,
                refresh_after: MAX_REFRESH,
            }),
            inflight: Mutex::new(None),
            logged_skips: Mutex::new(HashSet::new()),
        })
    }

    /// The URL this set is fetched from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Fetches the set now (config writes check the URL this way) and caches it.
    /// Errors: the fetch or parse failure.
    pub async fn fetch_now(self: &Arc<Self>) -> Result<(), String> {
        self.shared_fetch().await
    }

    /// Fetches once if the set was never fetched.
    async fn ensure_loaded(self: &Arc<Self>) -> Result<(), String> {
        if self.read().fetched.is_some() {
            return Ok(());
        }
        self.shared_fetch().await
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cached> {
        self.cached.read().unwrap_or_else(|p| p.into_inner())
    }

    /// True when a cached key has this `kid`.
    fn knows_kid(&self, kid: &str) -> bool {
        self.read()
            .keys
            .iter()
            .any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Tries the cached keys (those with the token's `kid`, or all when it has none);
    /// starts a background refresh when the set is stale. The key that verified: its `kid`
    /// and position in the set.
    fn verify_cached(self: &Arc<Self>, jws: &Jws) -> Option<(Option<String>, usize)> {
        let (keys, stale) = {
            let c = self.read();
            let stale = c
                .fetched
                .is_some_and(|t| self.clock.since(t) >= c.refresh_after);
            (c.keys.clone(), stale)
        };
        if stale {
            // Detached already; dropping the handle does not cancel it.
            let _ = self.start_fetch(true);
        }
        verify_with(&keys, jws)
    }

    fn may_refetch(&self) -> bool {
        self.read()
            .last_attempt
            .is_none_or(|t| self.clock.since(t) >= COOL_DOWN)
    }

    /// Refetches after a miss unless the set is in its cool-down (joining a fetch already
    /// in flight either way). `None` when skipped.
    async fn refetch(self: &Arc<Self>) -> Option<Result<(), String>> {
        Some(self.start_fetch(true)?.await)
    }

    /// Joins the fetch in flight, or starts one, detached from the caller.
    fn shared_fetch(self: &Arc<Self>) -> SharedFetch {
        self.start_fetch(false)
            .expect("a fetch that ignores the cool-down always starts")
    }

    /// Joins the fetch in flight, or starts one unless `respect_cool_down` and the set was
    /// fetched within [`COOL_DOWN`]. The check and the start happen under one lock, so
    /// concurrent misses never start two fetches.
    fn start_fetch(self: &Arc<Self>, respect_cool_down: bool) -> Option<SharedFetch> {
        let mut slot = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(fetch) = slot.as_ref() {
            return Some(fetch.clone());
        }
        if respect_cool_down && !self.may_refetch() {
            return None;
        }
        self.cached
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .last_attempt = Some(self.clock.mark());
        let me = self.clone();
        let task = tokio::spawn(async move {
            let result = me.fetch_and_store().await;
            *me.inflight.lock().unwrap_or_else(|p| p.into_inner()) = None;
            result
        });
        let fetch = async move {
            task.await
                .unwrap_or_else(|e| Err(format!("key fetch task failed: {e}")))
        }
        .boxed()
        .shared();
        *slot = Some(fetch.clone());
        Some(fetch)
    }

    /// Fetches and stores the set, counted in `authmount_key_fetches_total{kind="jwks"}`.
    async fn fetch_and_store(&self) -> Result<(), String> {
        let result = self.fetch_and_store_once().await;
        authmount_framework::metrics::metrics().key_fetch("jwks", &self.url, result.is_ok());
        result
    }

    async fn fetch_and_store_once(&self) -> Result<(), String> {
        let doc = self.fetcher.get(&self.url).await?;
        let (keys, skipped) = parse_jwks(&doc.body)?;
        {
            let mut logged = self.logged_skips.lock().unwrap_or_else(|p| p.into_inner());
            for reason in skipped {
                if logged.insert(reason.clone()) {
                    tracing::warn!(target: "authmount::jwt::jwks", url = %url_label(&self.url), %reason, "skipped an unusable JWKS entry");
                }
            }
        }
        tracing::debug!(target: "authmount::jwt::jwks", url = %url_label(&self.url), keys = keys.len(), "fetched key set");
        let mut cached = self.cached.write().unwrap_or_else(|p| p.into_inner());
        cached.keys = Arc::new(keys);
        cached.fetched = Some(self.clock.mark());
        cached.refresh_after = doc
            .max_age
            .unwrap_or(MAX_REFRESH)
            .clamp(COOL_DOWN, MAX_REFRESH);
        Ok(())
    }
}

/// Verification against one JWKS URL, or against several (`jwks_pairs`, DECISIONS D11:
/// with a `kid`, the set that has it; without one, every key of every set).
pub struct JwksSource {
    sets: Vec<Arc<RemoteKeys>>,
    field: &'static str,
}

impl JwksSource {
    /// A source over these key sets, reported as `jwks_url` ([`JwksSource::labelled`]).
    pub fn new(sets: Vec<Arc<RemoteKeys>>) -> JwksSource {
        JwksSource {
            sets,
            field: "jwks_url",
        }
    }

    /// The same source, reported (in [`KeyMatch::source`]) as coming from the config field
    /// `field`: `jwks_url`, `jwks_pairs` or `oidc_discovery_url`.
    pub fn labelled(mut self, field: &'static str) -> JwksSource {
        self.field = field;
        self
    }

    /// The match of `set`'s key `(kid, index)`.
    fn matched(&self, set: &RemoteKeys, (kid, index): (Option<String>, usize)) -> KeyMatch {
        KeyMatch {
            source: self.field,
            url: Some(set.url.clone()),
            kid,
            index,
        }
    }

    /// The first of `sets` with a cached key that verifies `jws`.
    fn verify_any(&self, sets: &[&Arc<RemoteKeys>], jws: &Jws) -> Option<KeyMatch> {
        sets.iter()
            .find_map(|s| s.verify_cached(jws).map(|found| self.matched(s, found)))
    }

    /// Fetches every set now, in parallel. Errors: `error checking jwks URL <url>: <cause>`
    /// for the first set that fails (DECISIONS D13).
    pub async fn check(&self) -> Result<(), String> {
        let results = futures_util::future::join_all(self.sets.iter().map(|s| s.fetch_now())).await;
        for (set, result) in self.sets.iter().zip(results) {
            result.map_err(|cause| format!("error checking jwks URL {}: {cause}", set.url()))?;
        }
        Ok(())
    }

    fn candidates(&self, jws: &Jws) -> Vec<&Arc<RemoteKeys>> {
        match (&jws.kid, self.sets.len()) {
            (Some(kid), n) if n > 1 => self.sets.iter().filter(|s| s.knows_kid(kid)).collect(),
            _ => self.sets.iter().collect(),
        }
    }
}

#[async_trait]
impl KeySource for JwksSource {
    async fn verify(&self, jws: &Jws) -> Result<KeyMatch, KeyError> {
        let loaded =
            futures_util::future::join_all(self.sets.iter().map(|s| s.ensure_loaded())).await;
        if let [Err(e)] = loaded.as_slice() {
            return Err(KeyError::Invalid(format!(
                "error verifying token signature: fetching keys oidc: {e}"
            )));
        }
        if let Some(found) = self.verify_any(&self.candidates(jws), jws) {
            return Ok(found);
        }
        // A miss: refetch (within the cool-down rules) the sets that could hold the key.
        let multi_kid = self.sets.len() > 1 && jws.kid.is_some();
        let refetch: Vec<&Arc<RemoteKeys>> = if multi_kid && self.candidates(jws).is_empty() {
            self.sets.iter().collect()
        } else {
            self.candidates(jws)
        };
        let results = futures_util::future::join_all(refetch.iter().map(|s| s.refetch())).await;
        let candidates = self.candidates(jws);
        if candidates.is_empty() {
            let kid = jws.kid.as_deref().unwrap_or_default();
            return Err(KeyError::Invalid(format!(
                "error searching for key set with kid {kid}: no key found with kid {kid} in any JWKS endpoint"
            )));
        }
        if let Some(found) = self.verify_any(&candidates, jws) {
            return Ok(found);
        }
        if let [Some(Err(e))] = results.as_slice() {
            return Err(KeyError::Invalid(format!(
                "error verifying token signature: fetching keys oidc: {e}"
            )));
        }
        Err(KeyError::Invalid(
            "error verifying token signature: failed to verify id token signature".into(),
        ))
    }
}

/// A key set written into the config (`jwks_inline`): a JWKS document (RFC 7517 §5) held
/// inline, for issuers the server cannot or should not reach (air-gapped clusters,
/// Kubernetes service-account keys). Parsed with the rules of a fetched set ([`parse_jwks`]);
/// never fetched, never refreshed: a new document is a config write.
pub struct InlineKeys {
    keys: Vec<PublicKey>,
}

impl InlineKeys {
    /// Parses the document: a JSON object, or a string holding one. Entries we cannot use
    /// are skipped (DECISIONS D6) and returned with the reason. Errors (the detail after
    /// `invalid jwks_inline: `): not JSON, no `keys` array, or no usable key at all.
    pub fn parse(document: &Value) -> Result<(InlineKeys, Vec<String>), String> {
        let bytes = match document {
            Value::String(text) => text.as_bytes().to_vec(),
            Value::Object(_) => serde_json::to_vec(document).map_err(|e| e.to_string())?,
            _ => return Err("the JWKS must be a JSON object or a string holding one".into()),
        };
        let (keys, skipped) = parse_jwks(&bytes)?;
        if keys.is_empty() {
            let why = skipped
                .first()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            return Err(format!("the JWKS has no usable key{why}"));
        }
        Ok((InlineKeys { keys }, skipped))
    }
}

#[async_trait]
impl KeySource for InlineKeys {
    async fn verify(&self, jws: &Jws) -> Result<KeyMatch, KeyError> {
        match verify_with(&self.keys, jws) {
            Some((kid, index)) => Ok(KeyMatch {
                source: "jwks_inline",
                url: None,
                kid,
                index,
            }),
            None => Err(KeyError::Invalid(format!(
                "error verifying token signature: {}",
                crate::keys::NO_KEY_VALIDATED
            ))),
        }
    }
}
