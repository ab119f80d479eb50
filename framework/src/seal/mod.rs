//! The seal: what keeps a copy of storage useless.
//!
//! Every value goes through the [`Barrier`] (encrypted under the data [`Keyring`]). The
//! keyring is stored encrypted under a 32-byte ROOT KEY that never reaches storage; the root
//! key comes from one of two sources (DECISIONS D16):
//!
//! * **Shamir** (Vault's default): `sys/init` makes a random root key and splits it into
//!   `secret_shares` unseal keys, any `secret_threshold` of which rebuild it; the server
//!   starts sealed and `sys/unseal` takes the keys one by one.
//! * **Static**: the root key is a 32-byte key given to the server (OpenBao's
//!   `seal "static"`: a file or an environment variable); the server unseals itself at start.
//!
//! Physical layout: `seal/config` holds one JSON document (type, shares, threshold, the id of
//! the root key, the keyring sealed under the root key, the cluster id); everything else is
//! barrier ciphertext. A store written before the seal existed (values in the clear) is
//! encrypted in place, in the same transaction that writes `seal/config`.
//!
//! The [`Seal`] manager's operations (`init`, `unseal`, `seal`, `status`) are plain async
//! methods; the core maps the `sys/` endpoints onto them.

pub mod barrier;
pub mod shares;
mod snapshot;
pub use snapshot::{install_offline, Restored};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use barrier::{random_key, Barrier, KeyBytes, Keyring, SEALED, SEAL_PREFIX};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::storage::Storage;
use barrier::{aead_open, aead_seal, Unsealed};

/// The physical key of the seal's document.
pub const CONFIG_KEY: &str = "seal/config";

/// A static root key with its id (OpenBao: `current_key_id` / `current_key`).
#[derive(Clone)]
pub struct StaticKey {
    id: String,
    key: KeyBytes,
}

impl std::fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl StaticKey {
    /// A key from its 32 bytes.
    pub fn new(id: impl Into<String>, key: KeyBytes) -> StaticKey {
        StaticKey { id: id.into(), key }
    }

    /// Parses key material the way OpenBao's static seal takes it: exactly 32 raw bytes, or
    /// their hex (64 digits) or standard base64; surrounding whitespace (a trailing newline)
    /// is ignored in the text forms. Errors: a message saying which forms are accepted.
    pub fn parse(id: impl Into<String>, material: &[u8]) -> std::result::Result<StaticKey, String> {
        let mut key = Zeroizing::new([0u8; 32]);
        if material.len() == 32 {
            key.copy_from_slice(material);
            return Ok(StaticKey::new(id, key));
        }
        let text = std::str::from_utf8(material).unwrap_or("").trim();
        let decoded = Zeroizing::new(
            hex::decode(text)
                .or_else(|_| BASE64.decode(text))
                .unwrap_or_default(),
        );
        if decoded.len() != 32 {
            return Err(format!(
                "the key is not a 32-byte key: give 32 raw bytes, 64 hex digits or the base64 of \
                 32 bytes (e.g. `openssl rand -hex 32`); got {} bytes",
                material.len()
            ));
        }
        key.copy_from_slice(&decoded);
        Ok(StaticKey::new(id, key))
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as 64 hex digits (what [`StaticKey::parse`] reads back), for writing a key
    /// file.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.key.as_ref()))
    }
}

/// Where the root key comes from.
#[derive(Clone, Debug)]
pub enum SealKind {
    /// No barrier: values reach storage as written. Only for in-memory stores (tests,
    /// examples, [`crate::Core::new`]).
    Plain,
    /// Shamir unseal keys (`sys/init` makes them, `sys/unseal` takes them).
    Shamir,
    /// A static key; `previous` opens a keyring sealed under the key before a rotation (it
    /// is then sealed anew under `current`).
    Static {
        /// The key new seals use.
        current: StaticKey,
        /// The key before the last rotation, if any.
        previous: Option<StaticKey>,
    },
}

impl SealKind {
    fn name(&self) -> &'static str {
        match self {
            SealKind::Plain => "none",
            SealKind::Shamir => "shamir",
            SealKind::Static { .. } => "static",
        }
    }
}

/// The stored seal document (`seal/config`, in the clear: nothing in it is secret).
#[derive(Serialize, Deserialize, Clone)]
struct SealDoc {
    version: u32,
    #[serde(rename = "type")]
    kind: String,
    secret_shares: u8,
    secret_threshold: u8,
    root_key_id: String,
    /// base64 of nonce ‖ ciphertext: the keyring JSON sealed under the root key.
    keyring: String,
    cluster_id: String,
    created: i64,
}

fn keyring_aad(kind: &str, root_key_id: &str) -> Vec<u8> {
    format!("authmount seal keyring v1|{kind}|{root_key_id}").into_bytes()
}

impl SealDoc {
    fn open_keyring(&self, root: &KeyBytes) -> Result<Option<Keyring>> {
        let sealed = BASE64
            .decode(&self.keyring)
            .map_err(|_| Error::internal("the seal's stored keyring is malformed"))?;
        match aead_open(root, &keyring_aad(&self.kind, &self.root_key_id), &sealed) {
            None => Ok(None),
            Some(json) => Keyring::from_json(&json).map(Some),
        }
    }

    fn wrap(kind: &str, root_key_id: &str, root: &KeyBytes, keyring: &Keyring) -> Result<String> {
        let json = keyring.to_json()?;
        let sealed = aead_seal(root, &keyring_aad(kind, root_key_id), &json)?;
        Ok(BASE64.encode(sealed))
    }
}

async fn read_doc(physical: &Arc<dyn Storage>) -> Result<Option<SealDoc>> {
    match physical.get(CONFIG_KEY).await? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::internal(format!("the seal document {CONFIG_KEY} is corrupt: {e}"))
        }),
    }
}

/// The stored keyring opened with `root` (the barrier calls this when another node rotated
/// the keyring). Errors: 500 when the root key no longer opens it.
pub(crate) async fn load_keyring(physical: &Arc<dyn Storage>, root: &KeyBytes) -> Result<Keyring> {
    let doc = read_doc(physical)
        .await?
        .ok_or_else(|| Error::internal("the seal document vanished"))?;
    doc.open_keyring(root)?
        .ok_or_else(|| Error::internal("the root key no longer opens the stored keyring"))
}

/// What `sys/seal-status` reports. Source: Vault API `sys/seal-status`.
#[derive(Debug, Clone, PartialEq)]
pub struct SealStatus {
    /// `shamir`, `static`, or `none` (no barrier).
    pub kind: &'static str,
    /// Whether the seal is initialized.
    pub initialized: bool,
    /// Whether the server is sealed.
    pub sealed: bool,
    /// The threshold of unseal keys (0 for a static seal).
    pub threshold: u8,
    /// The number of unseal keys (0 for a static seal).
    pub shares: u8,
    /// Unseal keys given so far.
    pub progress: usize,
    /// The id of the unseal attempt in progress (empty when none).
    pub nonce: String,
    /// The cluster id, once initialized.
    pub cluster_id: Option<String>,
    /// The physical store's kind.
    pub storage_type: &'static str,
}

/// `sys/init`'s parameters.
#[derive(Debug, Clone, Default)]
pub struct InitParams {
    /// `secret_shares`.
    pub secret_shares: i64,
    /// `secret_threshold`.
    pub secret_threshold: i64,
}

/// What `init` made.
pub struct InitOutcome {
    /// The unseal keys (empty for a static seal).
    pub keys: Vec<Zeroizing<Vec<u8>>>,
    /// How many values written in the clear by an earlier version were encrypted in place.
    pub migrated: usize,
}

impl std::fmt::Debug for InitOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitOutcome")
            .field("keys", &format_args!("[{} redacted]", self.keys.len()))
            .field("migrated", &self.migrated)
            .finish()
    }
}

#[derive(Default)]
struct Progress {
    nonce: String,
    keys: Vec<Zeroizing<Vec<u8>>>,
}

/// The seal manager: owns the barrier's keyring slot, unseal progress and the root key
/// source. One per core.
pub struct Seal {
    kind: SealKind,
    barrier: Arc<Barrier>,
    progress: Mutex<Progress>,
    /// A static seal unseals itself until an operator seals it (then it stays sealed until
    /// the server restarts, as OpenBao's does).
    may_auto_unseal: AtomicBool,
    unseal_lock: tokio::sync::Mutex<()>,
    initialized: AtomicBool,
    clock: Clock,
}

fn poisoned<T>(_: T) -> Error {
    Error::internal("seal lock poisoned")
}

impl Seal {
    /// A sealed seal of `kind` over `physical`, dating what it creates by `clock`.
    pub fn new(physical: Arc<dyn Storage>, kind: SealKind, clock: Clock) -> Seal {
        Seal {
            kind,
            barrier: Arc::new(Barrier::new(physical)),
            progress: Mutex::new(Progress::default()),
            may_auto_unseal: AtomicBool::new(true),
            unseal_lock: tokio::sync::Mutex::new(()),
            initialized: AtomicBool::new(false),
            clock,
        }
    }

    /// The kind of seal.
    pub fn kind(&self) -> &SealKind {
        &self.kind
    }

    /// True for [`SealKind::Plain`].
    pub fn is_plain(&self) -> bool {
        matches!(self.kind, SealKind::Plain)
    }

    /// The store the core works on: the barrier, or the physical store for a plain seal.
    pub fn storage(&self) -> Arc<dyn Storage> {
        match self.kind {
            SealKind::Plain => self.barrier.physical().clone(),
            _ => self.barrier.clone(),
        }
    }

    fn physical(&self) -> &Arc<dyn Storage> {
        self.barrier.physical()
    }

    /// Brings the barrier's cache of decrypted values up to date with the store's change
    /// feed ([`Barrier::refresh`]); a plain seal caches nothing. Errors: 503 when the store
    /// cannot be reached.
    pub async fn refresh(&self) -> Result<()> {
        match self.kind {
            SealKind::Plain => Ok(()),
            _ => self.barrier.refresh().await,
        }
    }

    /// True while the keyring is not in memory (never for a plain seal).
    pub fn is_sealed(&self) -> bool {
        !self.is_plain() && self.barrier.is_sealed()
    }

    /// Whether `seal/config` exists (cached once true). Not for plain seals (the core
    /// tracks those).
    pub async fn is_initialized(&self) -> Result<bool> {
        if self.initialized.load(Ordering::Acquire) {
            return Ok(true);
        }
        let done = self.physical().get(CONFIG_KEY).await?.is_some();
        if done {
            self.initialized.store(true, Ordering::Release);
        }
        Ok(done)
    }

    /// The status for `sys/seal-status`. Errors: 503 when storage does not answer.
    pub async fn status(&self) -> Result<SealStatus> {
        let doc = if self.is_plain() {
            None
        } else {
            read_doc(self.physical()).await?
        };
        let (progress, nonce) = {
            let p = self.progress.lock().map_err(poisoned)?;
            (p.keys.len(), p.nonce.clone())
        };
        Ok(SealStatus {
            kind: self.kind.name(),
            initialized: doc.is_some(),
            sealed: self.is_sealed(),
            threshold: doc.as_ref().map(|d| d.secret_threshold).unwrap_or(0),
            shares: doc.as_ref().map(|d| d.secret_shares).unwrap_or(0),
            progress,
            nonce,
            cluster_id: doc.map(|d| d.cluster_id),
            storage_type: self.physical().type_name(),
        })
    }

    /// Initializes the seal once: a root key (random for Shamir, the static key otherwise),
    /// a new keyring sealed under it, and every value already in storage (written in the
    /// clear by an earlier version) encrypted in place, all in one transaction. Leaves the
    /// barrier unsealed so the caller can write the root token; the caller seals a Shamir
    /// seal afterwards. Errors: 400 for bad parameters (Vault's messages) or when already
    /// initialized (`Vault is already initialized`); 503 when storage does not answer.
    pub async fn init(&self, params: &InitParams) -> Result<InitOutcome> {
        if self.is_initialized().await? {
            return Err(Error::invalid("Vault is already initialized"));
        }
        let (shares, threshold, root, root_key_id) = match &self.kind {
            SealKind::Plain => {
                return Err(Error::internal("a plain seal has nothing to initialize"))
            }
            SealKind::Shamir => {
                let (n, t) = shares::check_params(params.secret_shares, params.secret_threshold)?;
                (n, t, random_key(), String::new())
            }
            SealKind::Static { current, .. } => {
                if params.secret_shares != 0 || params.secret_threshold != 0 {
                    return Err(Error::invalid(
                        "parameters secret_shares,secret_threshold not applicable to seal type static",
                    ));
                }
                (0, 0, current.key.clone(), current.id.clone())
            }
        };
        let keyring = Keyring::generate(self.clock.unix());
        let kind = self.kind.name();
        let doc = SealDoc {
            version: 1,
            kind: kind.to_string(),
            secret_shares: shares,
            secret_threshold: threshold,
            root_key_id: root_key_id.clone(),
            keyring: SealDoc::wrap(kind, &root_key_id, &root, &keyring)?,
            cluster_id: uuid::Uuid::new_v4().to_string(),
            created: self.clock.unix(),
        };
        let entries = self.encrypt_in_place_entries(&keyring).await?;
        let doc_bytes = serde_json::to_vec(&doc).map_err(Error::internal)?;
        if !self
            .physical()
            .put_batch_if_absent(CONFIG_KEY, &doc_bytes, &entries)
            .await?
        {
            return Err(Error::invalid("Vault is already initialized"));
        }
        self.initialized.store(true, Ordering::Release);
        if !entries.is_empty() {
            tracing::warn!(
                target: "authmount::seal",
                values = entries.len(),
                "storage written in the clear by an earlier version: encrypted in place"
            );
        }
        let keys = match self.kind {
            SealKind::Shamir => shares::split(&root, shares, threshold)?,
            _ => Vec::new(),
        };
        self.barrier.install(Unsealed {
            keyring,
            root_key: root,
        })?;
        Ok(InitOutcome {
            keys,
            migrated: entries.len(),
        })
    }

    /// Every physical value outside `seal/`, encrypted under `keyring` (for a store written
    /// in the clear before the seal existed).
    async fn encrypt_in_place_entries(&self, keyring: &Keyring) -> Result<Vec<(String, Vec<u8>)>> {
        let physical = self.physical();
        let mut out = Vec::new();
        let mut pending = vec![String::new()];
        while let Some(dir) = pending.pop() {
            for child in physical.list(&dir).await? {
                let key = format!("{dir}{child}");
                if key.starts_with(SEAL_PREFIX) {
                    continue;
                }
                if child.ends_with('/') {
                    pending.push(key);
                } else if let Some(value) = physical.get(&key).await? {
                    out.push((key.clone(), keyring.encrypt(&key, &value)?));
                }
            }
        }
        Ok(out)
    }

    /// True when storage holds values but no seal: a store written in the clear by an
    /// earlier version (it has `core/init`).
    pub async fn holds_plain_store(&self) -> Result<bool> {
        Ok(!self.is_plain()
            && !self.is_initialized().await?
            && self.physical().get("core/init").await?.is_some())
    }

    /// Takes one unseal key (hex or base64), or forgets the keys given so far (`reset`).
    /// At the threshold the keys rebuild the root key, which must open the stored keyring;
    /// whatever happens then, the keys given are forgotten. Errors (400): not initialized,
    /// no key, a malformed key, keys that do not fit together or do not open the keyring,
    /// `reset` while unsealed, a static seal. Source: Vault API `sys/unseal`.
    pub async fn unseal(&self, key: Option<&str>, reset: bool) -> Result<SealStatus> {
        if self.is_plain() {
            return Err(Error::invalid(
                "this server has no seal: it is never sealed",
            ));
        }
        // OpenBao's order: `reset`, then a missing key, then initialization.
        if reset {
            if !self.is_sealed() {
                return Err(Error::invalid("vault is unsealed"));
            }
            *self.progress.lock().map_err(poisoned)? = Progress::default();
            return self.status().await;
        }
        let text = key
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                Error::invalid(
                    "'key' must be specified in request body as JSON, or 'reset' set to true",
                )
            })?;
        let Some(doc) = read_doc(self.physical()).await? else {
            return Err(Error::invalid("Vault is not initialized"));
        };
        if !self.is_sealed() {
            return self.status().await;
        }
        if doc.kind != self.kind.name() {
            return Err(mismatch(&self.kind, &doc));
        }
        if let SealKind::Static { .. } = self.kind {
            return Err(Error::invalid(
                "this server has a static seal: it unseals itself with its key when it starts; \
                 restart it to unseal it",
            ));
        }
        let key = shares::parse_key_text(text)?;
        let threshold = doc.secret_threshold.max(1);
        let taken = {
            let mut progress = self.progress.lock().map_err(poisoned)?;
            if progress.keys.iter().any(|k| **k == *key) {
                None // the same key twice counts once, as in Vault
            } else {
                if progress.nonce.is_empty() {
                    progress.nonce = uuid::Uuid::new_v4().to_string();
                }
                progress.keys.push(key);
                (progress.keys.len() >= threshold as usize)
                    .then(|| std::mem::take(&mut *progress).keys)
            }
        };
        let Some(keys) = taken else {
            return self.status().await;
        };
        let root = shares::combine(&keys, threshold)
            .map_err(|why| Error::invalid(format!("invalid key: {why}")))?;
        let keyring = doc.open_keyring(&root)?.ok_or_else(|| {
            Error::invalid(
                "unable to unseal: the unseal keys do not open this storage's keyring \
                 (a wrong key, or keys from another initialization)",
            )
        })?;
        let _guard = self.unseal_lock.lock().await;
        self.barrier.install(Unsealed {
            keyring,
            root_key: root,
        })?;
        tracing::info!(target: "authmount::seal", "unsealed");
        self.status().await
    }

    /// Seals: the keyring and the root key leave memory, unseal progress is forgotten, and
    /// a static seal stays sealed until the server restarts. Source: Vault API `sys/seal`.
    pub fn seal(&self) -> Result<()> {
        self.may_auto_unseal.store(false, Ordering::Release);
        self.barrier.clear();
        *self.progress.lock().map_err(poisoned)? = Progress::default();
        if !self.is_plain() {
            tracing::info!(target: "authmount::seal", "sealed");
        }
        Ok(())
    }

    /// Unseals a static seal with its key (done at start, and again on a request if storage
    /// was down then). `Ok(false)` when storage holds no seal yet. A keyring sealed under the
    /// previous key (or another id) is sealed anew under the current key. Errors: 503 naming
    /// the problem when the key does not open the keyring, or the storage was initialized
    /// with another kind of seal; 503 when storage does not answer.
    pub async fn auto_unseal(&self) -> Result<bool> {
        let SealKind::Static { current, previous } = &self.kind else {
            return Ok(!self.is_sealed());
        };
        let _guard = self.unseal_lock.lock().await;
        if !self.barrier.is_sealed() {
            return Ok(true);
        }
        let Some(doc) = read_doc(self.physical()).await? else {
            return Ok(false);
        };
        if doc.kind != "static" {
            return Err(mismatch(&self.kind, &doc));
        }
        let mut candidates: Vec<&StaticKey> = std::iter::once(current).chain(previous).collect();
        candidates.sort_by_key(|k| k.id != doc.root_key_id);
        for key in candidates {
            let Some(keyring) = doc.open_keyring(&key.key)? else {
                continue;
            };
            if key.id != current.id || doc.root_key_id != current.id || key.key != current.key {
                self.rewrap(&doc, &keyring, current).await?;
            }
            self.barrier.install(Unsealed {
                keyring,
                root_key: current.key.clone(),
            })?;
            tracing::info!(target: "authmount::seal", key_id = %current.id, "unsealed with the static key");
            return Ok(true);
        }
        let ids = match previous {
            Some(p) => format!("{:?} and previous_key_id {:?}", current.id, p.id),
            None => format!("{:?}", current.id),
        };
        Err(Error::Unavailable(format!(
            "the static seal key (current_key_id {ids}) does not open this storage's keyring, \
             which was sealed with key id {:?}: a wrong or replaced key file? The key that \
             initialized this storage is needed",
            doc.root_key_id
        )))
    }

    /// Seals the stored keyring anew under `current` (after a static key rotation), unless
    /// another node changed the document meanwhile.
    async fn rewrap(&self, doc: &SealDoc, keyring: &Keyring, current: &StaticKey) -> Result<()> {
        let mut next = doc.clone();
        next.root_key_id = current.id.clone();
        next.keyring = SealDoc::wrap("static", &current.id, &current.key, keyring)?;
        let Some(stored) = self.physical().get(CONFIG_KEY).await? else {
            return Ok(());
        };
        let unchanged = serde_json::from_slice::<SealDoc>(&stored)
            .is_ok_and(|d| d.keyring == doc.keyring && d.root_key_id == doc.root_key_id);
        if unchanged {
            let new = serde_json::to_vec(&next).map_err(Error::internal)?;
            self.physical()
                .compare_and_put(CONFIG_KEY, Some(&stored), &new)
                .await?;
            tracing::info!(target: "authmount::seal", key_id = %current.id,
                "keyring sealed anew under the current static key");
        }
        Ok(())
    }

    /// Whether a request may still unseal a static seal by itself.
    pub fn may_auto_unseal(&self) -> bool {
        matches!(self.kind, SealKind::Static { .. }) && self.may_auto_unseal.load(Ordering::Acquire)
    }

    /// Rotates the data keyring: a new key becomes active for new writes, older values stay
    /// readable; other nodes pick the new keyring up when they first meet its term.
    /// Errors: 503 while sealed.
    pub async fn rotate_keyring(&self) -> Result<u32> {
        let _guard = self.unseal_lock.lock().await;
        for _ in 0..16 {
            let bytes = self
                .physical()
                .get(CONFIG_KEY)
                .await?
                .ok_or_else(|| Error::invalid("Vault is not initialized"))?;
            let doc: SealDoc = serde_json::from_slice(&bytes).map_err(Error::internal)?;
            let root = self.current_root()?;
            let keyring = doc
                .open_keyring(&root)?
                .ok_or_else(|| Error::internal("the root key no longer opens the stored keyring"))?
                .rotated(self.clock.unix());
            let mut next = doc.clone();
            next.keyring = SealDoc::wrap(&doc.kind, &doc.root_key_id, &root, &keyring)?;
            let next_bytes = serde_json::to_vec(&next).map_err(Error::internal)?;
            if self
                .physical()
                .compare_and_put(CONFIG_KEY, Some(&bytes), &next_bytes)
                .await?
            {
                let term = keyring.active_term();
                self.barrier.install(Unsealed {
                    keyring,
                    root_key: root,
                })?;
                return Ok(term);
            }
        }
        Err(Error::Unavailable(
            "the seal document kept changing; try again".into(),
        ))
    }

    fn current_root(&self) -> Result<KeyBytes> {
        self.barrier
            .root_key()
            .ok_or_else(|| Error::Unavailable(SEALED.into()))
    }
}

fn mismatch(kind: &SealKind, doc: &SealDoc) -> Error {
    let how = match doc.kind.as_str() {
        "shamir" => "with Shamir unseal keys (sys/unseal)".to_string(),
        other => format!("with a {other} key (key id {:?})", doc.root_key_id),
    };
    Error::Unavailable(format!(
        "this storage was initialized {how}, but the server is configured with a {} seal: \
         configure the seal the storage was initialized with (changing a store's seal is not \
         supported)",
        kind.name()
    ))
}

#[cfg(test)]
mod tests;
