//! The barrier: a [`Storage`] over the physical store that encrypts every value.
//!
//! Each value is sealed with XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`) under the
//! active key of the data [`Keyring`], with a fresh random 192-bit nonce per write (random
//! nonces of that size never collide in practice, so a key needs no write counter), and with
//! the value's storage key as associated data, so a value copied to another key does not
//! decrypt. Stored layout:
//!
//! | bytes | what |
//! |---|---|
//! | 1 | format: `0x01` = XChaCha20-Poly1305 |
//! | 4 | key term, big-endian: which keyring key sealed it (the keyring can rotate) |
//! | 24 | nonce |
//! | rest | ciphertext and 16-byte tag; the associated data is the 5 header bytes then the key |
//!
//! Keys (paths) stay in the clear, as in Vault. While sealed (no keyring in memory) every
//! read, write, list and delete fails with 503 `Vault is sealed`; `ping` still reaches the
//! physical store. Keys under `seal/` belong to the seal manager and are refused here.
//!
//! Decrypted values are kept in a bounded `ExactCache` when the physical store has a change
//! feed ([`Storage::changes_since`]): [`Barrier::refresh`], called at the start of each
//! request, drops exactly the keys changed since (by any node), and every write through the
//! barrier drops its keys once committed. Sealing forgets the cache.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::storage::exact::{ExactCache, Lookup};
use crate::storage::{Changes, Storage};

/// The physical prefix the seal manager keeps its own records under (never through the
/// barrier).
pub const SEAL_PREFIX: &str = "seal/";

const FORMAT_XCHACHA20POLY1305: u8 = 1;
const HEADER_LEN: usize = 5;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The error text of a request refused while sealed (Vault's, verbatim).
pub const SEALED: &str = "Vault is sealed";

/// A 32-byte key that is wiped from memory when dropped.
pub type KeyBytes = Zeroizing<[u8; 32]>;

/// 32 random bytes from the OS.
pub fn random_key() -> KeyBytes {
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(key.as_mut());
    key
}

/// Seals `plain` under `key` with `aad`: returns nonce ‖ ciphertext ‖ tag.
pub(crate) fn aead_seal(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
    let cipher = XChaCha20Poly1305::new(key.into());
    seal_with(&cipher, aad, plain)
}

/// Opens what [`aead_seal`] made; `None` when it does not authenticate.
pub(crate) fn aead_open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let cipher = XChaCha20Poly1305::new(key.into());
    open_with(&cipher, aad, sealed)
}

fn seal_with(cipher: &XChaCha20Poly1305, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
        .map_err(|_| Error::internal("encryption failed"))?;
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn open_with(cipher: &XChaCha20Poly1305, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
        .ok()
        .map(Zeroizing::new)
}

/// The data keys, by term. New values are sealed under the active (highest) term; older
/// terms stay to read what they sealed.
pub struct Keyring {
    active: u32,
    keys: BTreeMap<u32, DataKey>,
}

struct DataKey {
    key: KeyBytes,
    created: i64,
    cipher: XChaCha20Poly1305,
}

impl DataKey {
    fn new(key: KeyBytes, created: i64) -> DataKey {
        let cipher = XChaCha20Poly1305::new(key.as_ref().into());
        DataKey {
            key,
            created,
            cipher,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct KeyringJson {
    active_term: u32,
    keys: Vec<KeyJson>,
}

#[derive(Serialize, Deserialize)]
struct KeyJson {
    term: u32,
    key: String,
    created: i64,
}

/// Why a stored value did not decrypt.
#[derive(Debug, PartialEq)]
pub(crate) enum OpenError {
    NotSealed,
    Truncated,
    UnknownTerm(u32),
    Authentication,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::NotSealed => {
                write!(
                    f,
                    "it is not in the barrier's format (a value in the clear, or corrupted)"
                )
            }
            OpenError::Truncated => write!(f, "it is truncated"),
            OpenError::UnknownTerm(t) => write!(f, "its key term {t} is not in the keyring"),
            OpenError::Authentication => write!(
                f,
                "it fails authentication (corrupted, tampered with, or moved from another key)"
            ),
        }
    }
}

impl Keyring {
    /// A new keyring with one random key, term 1, created at `now` (Unix seconds).
    pub fn generate(now: i64) -> Keyring {
        let mut keys = BTreeMap::new();
        keys.insert(1, DataKey::new(random_key(), now));
        Keyring { active: 1, keys }
    }

    /// This keyring plus a new random key, created at `now` (Unix seconds), that becomes
    /// the active one.
    pub fn rotated(&self, now: i64) -> Keyring {
        let mut keys: BTreeMap<u32, DataKey> = self
            .keys
            .iter()
            .map(|(t, k)| (*t, DataKey::new(k.key.clone(), k.created)))
            .collect();
        let term = self.active.saturating_add(1);
        keys.insert(term, DataKey::new(random_key(), now));
        Keyring { active: term, keys }
    }

    /// The term new values are sealed under.
    pub fn active_term(&self) -> u32 {
        self.active
    }

    /// The keyring as JSON (key material: wiped when dropped).
    pub fn to_json(&self) -> Result<Zeroizing<Vec<u8>>> {
        use base64::Engine;
        let doc = KeyringJson {
            active_term: self.active,
            keys: self
                .keys
                .iter()
                .map(|(term, k)| KeyJson {
                    term: *term,
                    key: base64::engine::general_purpose::STANDARD.encode(k.key.as_ref()),
                    created: k.created,
                })
                .collect(),
        };
        let json = serde_json::to_vec(&doc).map_err(Error::internal);
        // The encoded keys live in `doc`: wipe them.
        for mut k in doc.keys {
            zeroize::Zeroize::zeroize(&mut k.key);
        }
        json.map(Zeroizing::new)
    }

    /// Parses [`Keyring::to_json`]. Errors: 500 for anything malformed.
    pub fn from_json(bytes: &[u8]) -> Result<Keyring> {
        use base64::Engine;
        let bad = || Error::internal("the seal's keyring is malformed");
        let mut doc: KeyringJson = serde_json::from_slice(bytes).map_err(|_| bad())?;
        let mut keys = BTreeMap::new();
        for k in &mut doc.keys {
            let raw = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(&k.key)
                    .map_err(|_| bad())?,
            );
            zeroize::Zeroize::zeroize(&mut k.key);
            let mut key = Zeroizing::new([0u8; 32]);
            if raw.len() != 32 {
                return Err(bad());
            }
            key.copy_from_slice(&raw);
            keys.insert(k.term, DataKey::new(key, k.created));
        }
        if !keys.contains_key(&doc.active_term) {
            return Err(bad());
        }
        Ok(Keyring {
            active: doc.active_term,
            keys,
        })
    }

    /// Seals `plain` for storage at `path` under the active term.
    pub fn encrypt(&self, path: &str, plain: &[u8]) -> Result<Vec<u8>> {
        let key = self
            .keys
            .get(&self.active)
            .ok_or_else(|| Error::internal("the keyring has no active key"))?;
        let header = header(self.active);
        let aad = associated_data(&header, path);
        let sealed = seal_with(&key.cipher, &aad, plain)?;
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a value stored at `path`.
    pub(crate) fn decrypt(
        &self,
        path: &str,
        stored: &[u8],
    ) -> std::result::Result<Vec<u8>, OpenError> {
        if stored.first() != Some(&FORMAT_XCHACHA20POLY1305) {
            return Err(OpenError::NotSealed);
        }
        if stored.len() < HEADER_LEN + NONCE_LEN + TAG_LEN {
            return Err(OpenError::Truncated);
        }
        let (head, sealed) = stored.split_at(HEADER_LEN);
        let term = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        let key = self.keys.get(&term).ok_or(OpenError::UnknownTerm(term))?;
        let aad = associated_data(head, path);
        open_with(&key.cipher, &aad, sealed)
            .map(|plain| plain.to_vec())
            .ok_or(OpenError::Authentication)
    }
}

fn header(term: u32) -> [u8; HEADER_LEN] {
    let t = term.to_be_bytes();
    [FORMAT_XCHACHA20POLY1305, t[0], t[1], t[2], t[3]]
}

fn associated_data(header: &[u8], path: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + path.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(path.as_bytes());
    aad
}

/// What an unsealed barrier holds: the keyring, and how to fetch a newer one (another node
/// rotated it) with the root key.
pub(crate) struct Unsealed {
    pub keyring: Keyring,
    pub root_key: KeyBytes,
}

/// The encrypting [`Storage`] over a physical store. See the module documentation.
pub struct Barrier {
    physical: Arc<dyn Storage>,
    state: RwLock<Option<Arc<Unsealed>>>,
    cache: ExactCache,
}

impl Barrier {
    /// A sealed barrier over `physical`.
    pub fn new(physical: Arc<dyn Storage>) -> Barrier {
        Barrier {
            physical,
            state: RwLock::new(None),
            cache: ExactCache::default(),
        }
    }

    /// Brings the cache of decrypted values up to date with the physical store's change feed
    /// (call at the start of each request, and before background work that reads): keys
    /// changed since the last refresh, by this node or another, are read again. A no-op
    /// while sealed. Errors: the store's (503 when it cannot be reached).
    pub async fn refresh(&self) -> Result<()> {
        if self.is_sealed() {
            return Ok(());
        }
        let since = self.cache.point().unwrap_or(0);
        let changes = self.physical.changes_since(since).await?;
        if self.is_sealed() {
            return Ok(());
        }
        self.cache.apply(changes);
        Ok(())
    }

    /// The store under the barrier.
    pub fn physical(&self) -> &Arc<dyn Storage> {
        &self.physical
    }

    /// True while no keyring is in memory.
    pub fn is_sealed(&self) -> bool {
        self.state.read().map(|s| s.is_none()).unwrap_or(true)
    }

    pub(crate) fn install(&self, unsealed: Unsealed) -> Result<()> {
        let mut state = self.state.write().map_err(poisoned)?;
        if state.is_none() {
            self.cache.reset(); // unsealing: nothing from before is trusted
        }
        *state = Some(Arc::new(unsealed));
        Ok(())
    }

    /// The root key while unsealed.
    pub(crate) fn root_key(&self) -> Option<KeyBytes> {
        self.state.read().ok()?.as_ref().map(|s| s.root_key.clone())
    }

    /// Forgets the keyring and the root key: sealed.
    pub(crate) fn clear(&self) {
        if let Ok(mut state) = self.state.write() {
            *state = None;
        }
        self.cache.reset();
    }

    fn unsealed(&self) -> Result<Arc<Unsealed>> {
        self.state
            .read()
            .map_err(poisoned)?
            .clone()
            .ok_or_else(|| Error::Unavailable(SEALED.into()))
    }

    fn check_key(key: &str) -> Result<()> {
        if key.starts_with(SEAL_PREFIX) {
            return Err(Error::internal(format!(
                "storage key {key:?} is reserved for the seal"
            )));
        }
        Ok(())
    }

    fn encrypt(&self, key: &str, value: &[u8]) -> Result<Vec<u8>> {
        Self::check_key(key)?;
        self.unsealed()?.keyring.encrypt(key, value)
    }

    async fn decrypt(&self, key: &str, stored: &[u8]) -> Result<Vec<u8>> {
        let state = self.unsealed()?;
        match state.keyring.decrypt(key, stored) {
            Ok(plain) => Ok(plain),
            Err(OpenError::UnknownTerm(term)) if term > state.keyring.active_term() => {
                // Another node rotated the keyring: read the newer one once.
                let newer = super::load_keyring(&self.physical, &state.root_key).await?;
                let plain = newer.decrypt(key, stored).map_err(|e| corrupt(key, e));
                if newer.active_term() > state.keyring.active_term() {
                    self.install(Unsealed {
                        keyring: newer,
                        root_key: state.root_key.clone(),
                    })?;
                }
                plain
            }
            Err(e) => Err(corrupt(key, e)),
        }
    }
}

impl Barrier {
    /// [`Storage::compare_and_put`] of an already sealed value: compares the decrypted
    /// current value with `expected`, swaps against the current ciphertext.
    async fn swap(&self, key: &str, expected: Option<&[u8]>, sealed: &[u8]) -> Result<bool> {
        let Some(expected) = expected else {
            return self.physical.put_if_absent(key, sealed).await;
        };
        let Some(current) = self.physical.get(key).await? else {
            return Ok(false);
        };
        if self.decrypt(key, &current).await? != expected {
            return Ok(false);
        }
        self.physical
            .compare_and_put(key, Some(&current), sealed)
            .await
    }
}

fn corrupt(key: &str, e: OpenError) -> Error {
    Error::internal(format!(
        "the stored value at {key:?} cannot be decrypted: {e}"
    ))
}

fn poisoned<T>(_: T) -> Error {
    Error::internal("barrier lock poisoned")
}

#[async_trait]
impl Storage for Barrier {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Self::check_key(key)?;
        self.unsealed()?;
        let ticket = match self.cache.lookup(key) {
            Lookup::Hit(value) => return Ok(value),
            Lookup::Miss(ticket) => ticket,
        };
        let plain = match self.physical.get(key).await? {
            None => None,
            Some(stored) => Some(self.decrypt(key, &stored).await?),
        };
        self.cache.fill(key, ticket, plain.as_deref());
        Ok(plain)
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        let sealed = self.encrypt(key, value)?;
        let out = self.physical.put(key, &sealed).await;
        self.cache.invalidate([key]);
        out
    }

    async fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<bool> {
        let sealed = self.encrypt(key, value)?;
        let out = self.physical.put_if_absent(key, &sealed).await;
        self.cache.invalidate([key]);
        out
    }

    /// Compares the decrypted current value with `expected`, then swaps on the physical
    /// store with the current ciphertext as the expected value (every ciphertext is unique,
    /// so a value rewritten meanwhile, even with the same plaintext, makes the swap fail).
    async fn compare_and_put(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool> {
        let sealed = self.encrypt(key, value)?;
        // Whatever the outcome, the cached value may be stale (a lost race): drop it.
        let out = self.swap(key, expected, &sealed).await;
        self.cache.invalidate([key]);
        out
    }

    async fn put_batch(&self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        let sealed = entries
            .iter()
            .map(|(k, v)| Ok((k.clone(), self.encrypt(k, v)?)))
            .collect::<Result<Vec<_>>>()?;
        let out = self.physical.put_batch(&sealed).await;
        self.cache
            .invalidate(entries.iter().map(|(k, _)| k.as_str()));
        out
    }

    async fn put_batch_if_absent(
        &self,
        guard: &str,
        guard_value: &[u8],
        entries: &[(String, Vec<u8>)],
    ) -> Result<bool> {
        let guard_sealed = self.encrypt(guard, guard_value)?;
        let sealed = entries
            .iter()
            .map(|(k, v)| Ok((k.clone(), self.encrypt(k, v)?)))
            .collect::<Result<Vec<_>>>()?;
        let out = self
            .physical
            .put_batch_if_absent(guard, &guard_sealed, &sealed)
            .await;
        self.cache
            .invalidate(std::iter::once(guard).chain(entries.iter().map(|(k, _)| k.as_str())));
        out
    }

    async fn delete(&self, key: &str) -> Result<()> {
        Self::check_key(key)?;
        self.unsealed()?;
        let out = self.physical.delete(key).await;
        self.cache.invalidate([key]);
        out
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Self::check_key(prefix)?;
        self.unsealed()?;
        let mut children = self.physical.list(prefix).await?;
        if prefix.is_empty() {
            children.retain(|c| c != SEAL_PREFIX);
        }
        Ok(children)
    }

    async fn ping(&self) -> Result<()> {
        self.physical.ping().await
    }

    fn type_name(&self) -> &'static str {
        self.physical.type_name()
    }

    async fn changes_since(&self, since: u64) -> Result<Changes> {
        self.physical.changes_since(since).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::InMemory;

    fn unsealed_barrier() -> (Arc<InMemory>, Barrier) {
        let physical = Arc::new(InMemory::new());
        let barrier = Barrier::new(physical.clone());
        barrier
            .install(Unsealed {
                keyring: Keyring::generate(0),
                root_key: random_key(),
            })
            .unwrap();
        (physical, barrier)
    }

    #[tokio::test]
    async fn values_are_encrypted_bound_to_their_key_and_fresh_per_write() {
        let (physical, barrier) = unsealed_barrier();
        barrier.put("core/a", b"secret-value").await.unwrap();
        let stored = physical.get("core/a").await.unwrap().unwrap();
        assert!(!stored.windows(6).any(|w| w == b"secret"));
        assert_eq!(stored[0], FORMAT_XCHACHA20POLY1305);
        assert_eq!(
            barrier.get("core/a").await.unwrap().as_deref(),
            Some(&b"secret-value"[..])
        );
        // Same plaintext, new ciphertext.
        barrier.put("core/a", b"secret-value").await.unwrap();
        assert_ne!(physical.get("core/a").await.unwrap().unwrap(), stored);
        // A value moved to another key does not open.
        physical.put("core/b", &stored).await.unwrap();
        let err = barrier.get("core/b").await.unwrap_err();
        assert_eq!(err.status(), 500);
        assert!(err.to_string().contains("fails authentication"), "{err}");
        // A flipped bit, a truncated value, a value in the clear: clear errors, no panic.
        let mut flipped = stored.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        physical.put("core/c", &flipped).await.unwrap();
        assert!(barrier
            .get("core/c")
            .await
            .unwrap_err()
            .to_string()
            .contains("authentication"));
        for cut in [0, 1, 5, 20, HEADER_LEN + NONCE_LEN + TAG_LEN - 1] {
            physical.put("core/d", &stored[..cut]).await.unwrap();
            let err = barrier.get("core/d").await.unwrap_err().to_string();
            assert!(
                err.contains("truncated") || err.contains("format"),
                "{cut}: {err}"
            );
        }
        physical.put("core/e", b"{\"plain\":1}").await.unwrap();
        assert!(barrier
            .get("core/e")
            .await
            .unwrap_err()
            .to_string()
            .contains("in the clear"));
        let mut other_term = stored.clone();
        other_term[4] = 9;
        physical.put("core/a", &other_term).await.unwrap();
        assert_eq!(barrier.get("core/a").await.unwrap_err().status(), 500);
    }

    #[tokio::test]
    async fn compare_and_put_compares_plaintext_and_swaps_ciphertext() {
        let (physical, barrier) = unsealed_barrier();
        assert!(barrier.compare_and_put("k", None, b"1").await.unwrap());
        assert!(!barrier.compare_and_put("k", None, b"2").await.unwrap());
        assert!(!barrier
            .compare_and_put("k", Some(b"0"), b"2")
            .await
            .unwrap());
        assert!(barrier
            .compare_and_put("k", Some(b"1"), b"2")
            .await
            .unwrap());
        assert_eq!(barrier.get("k").await.unwrap().as_deref(), Some(&b"2"[..]));
        assert!(!barrier
            .compare_and_put("gone", Some(b"1"), b"2")
            .await
            .unwrap());
        // The swap is on the ciphertext: a rewrite with the same plaintext in between wins.
        let before = physical.get("k").await.unwrap().unwrap();
        barrier.put("k", b"2").await.unwrap();
        assert!(!physical
            .compare_and_put("k", Some(&before), b"x")
            .await
            .unwrap());
        assert!(barrier.put_if_absent("p", b"a").await.unwrap());
        assert!(!barrier.put_if_absent("p", b"b").await.unwrap());
        barrier
            .put_batch(&[("b/1".into(), b"x".to_vec()), ("b/2".into(), b"y".to_vec())])
            .await
            .unwrap();
        assert_eq!(barrier.list("b/").await.unwrap(), ["1", "2"]);
        barrier.delete("b/1").await.unwrap();
        assert_eq!(barrier.list("b/").await.unwrap(), ["2"]);
    }

    #[tokio::test]
    async fn a_sealed_barrier_refuses_everything_but_ping() {
        let (physical, barrier) = unsealed_barrier();
        barrier.put("k", b"v").await.unwrap();
        physical.put("seal/config", b"{}").await.unwrap();
        assert_eq!(barrier.list("").await.unwrap(), ["k"]);
        assert_eq!(barrier.get("seal/config").await.unwrap_err().status(), 500);
        barrier.clear();
        assert!(barrier.is_sealed());
        for err in [
            barrier.get("k").await.unwrap_err(),
            barrier.put("k", b"v").await.unwrap_err(),
            barrier.delete("k").await.unwrap_err(),
            barrier.list("").await.unwrap_err(),
            barrier.compare_and_put("k", None, b"v").await.unwrap_err(),
        ] {
            assert_eq!(err, Error::Unavailable(SEALED.into()));
        }
        barrier.ping().await.unwrap();
    }

    #[test]
    fn keyring_round_trips_and_rotates() {
        let ring = Keyring::generate(0);
        let sealed = ring.encrypt("a", b"x").unwrap();
        let again = Keyring::from_json(&ring.to_json().unwrap()).unwrap();
        assert_eq!(again.decrypt("a", &sealed).unwrap(), b"x");
        let rotated = again.rotated(0);
        assert_eq!(rotated.active_term(), 2);
        assert_eq!(rotated.decrypt("a", &sealed).unwrap(), b"x");
        let newer = rotated.encrypt("a", b"y").unwrap();
        assert_eq!(&newer[1..5], &2u32.to_be_bytes());
        assert_eq!(
            ring.decrypt("a", &newer).unwrap_err(),
            OpenError::UnknownTerm(2)
        );
        assert!(Keyring::from_json(b"{\"active_term\":1,\"keys\":[]}").is_err());
        assert!(Keyring::from_json(b"garbage").is_err());
    }
}
