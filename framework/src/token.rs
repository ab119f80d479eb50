//! The token store: issues, looks up, renews and revokes Vault tokens.
//!
//! * Service tokens (`hvs.` + 32 base62 characters, about 190 bits from the OS CSPRNG) are
//!   stored only under a keyed hash (HMAC-SHA256 with a per-storage secret), so a read of
//!   storage never yields a usable token. Each has an accessor (24 base62 characters).
//! * Batch tokens (`hvb.` + base64url) are not stored: they carry their own entry, sealed
//!   with ChaCha20-Poly1305 under a per-storage key. They cannot be renewed or revoked and
//!   have no accessor.
//!
//! Every change of a stored entry (a use counted, a renewal, an orphaning, the start of a
//! revocation) is a compare-and-set on the entry, so several server nodes sharing one store
//! count uses exactly and never bring a revoked token back. A revocation first marks the
//! entry "revocation pending" (dead for every lookup, and no child can be added to it from
//! then on), then revokes the children (revoke-orphan, marked with its own value, makes them
//! orphans instead), then deletes the entry; the periodic sweep finishes a revocation that a
//! crashed node left half done, as its mark says.
//!
//! Every stored token that expires is filed in an [`ExpiryIndex`] (`expiry/<minute>/<hash>`)
//! in the batch that stores it, and a revocation files a note there before it marks the
//! entry: the sweep reads only what is due, however many tokens are stored.
//!
//! Source: Vault token semantics (reference §1.4, §4.7); `tokenRevocationPending` in
//! Vault's token store.

use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::response::TokenType;
use crate::storage::{ExpiryIndex, View};

/// `num_uses` of an entry whose revocation has started (its last use was taken, or a revoke
/// began): dead for every lookup, finished by the revoker or by the sweep.
/// Source: Vault `tokenRevocationPending` (-1).
pub const REVOCATION_PENDING: i64 = -1;

/// `num_uses` of an entry whose revoke-orphan has started (authmount's own mark; Vault
/// has only -1): dead like
/// [`REVOCATION_PENDING`], but whoever finishes it (the revoker, or the sweep after a node
/// stopped half way) orphans its children instead of revoking them.
pub const ORPHAN_REVOCATION_PENDING: i64 = -2;

/// What a revocation does with the children of the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Children {
    Revoke,
    Orphan,
}

impl Children {
    /// The `num_uses` mark of a revocation of this kind.
    fn mark(self) -> i64 {
        match self {
            Children::Revoke => REVOCATION_PENDING,
            Children::Orphan => ORPHAN_REVOCATION_PENDING,
        }
    }
}

/// A token's stored state. Times are Unix seconds; durations seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// The accessor (empty for batch tokens).
    pub accessor: String,
    /// Final policies, sorted and deduplicated (`default` included unless refused).
    pub policies: Vec<String>,
    /// Policies that came from the role (`token_policies` in the login answer).
    pub token_policies: Vec<String>,
    /// Metadata (`meta` on lookup): a login's, or what `auth/token/create` was given;
    /// `None` for a token created without any (answered as `null`, as Vault does).
    #[serde(default)]
    pub meta: Option<BTreeMap<String, String>>,
    /// `<mount path with - for />-<alias name>`, or `root`.
    pub display_name: String,
    /// The login path, e.g. `auth/jwt/login` (empty for root tokens).
    pub path: String,
    /// Accessor of the mount that issued it (empty for root tokens).
    pub mount_accessor: String,
    /// The identity entity (empty for root tokens).
    pub entity_id: String,
    /// When it was created.
    pub creation_time: i64,
    /// The TTL it was created with (0 = never expires).
    pub creation_ttl: i64,
    /// When it expires, `None` for never.
    pub expire_time: Option<i64>,
    /// The effective max TTL from creation (0 = none); renewals never pass it.
    pub max_ttl: i64,
    /// `token_explicit_max_ttl` it was issued with.
    pub explicit_max_ttl: i64,
    /// `token_period` (0 = not periodic).
    pub period: i64,
    /// Uses left (0 = unlimited; [`REVOCATION_PENDING`] once the last one was taken).
    pub num_uses: i64,
    /// Addresses the token may be used from (empty = anywhere).
    pub bound_cidrs: Vec<IpNet>,
    /// `service` or `batch`.
    pub token_type: TokenType,
    /// Whether renew-self may extend it.
    pub renewable: bool,
    /// The backend's data for renewal (e.g. the role).
    pub internal_data: Map<String, Value>,
    /// The token parameters it was issued with (what renewal re-checks).
    pub params: crate::response::TokenParams,
    /// The last renewal time, if any.
    pub last_renewal_time: Option<i64>,
    /// Policies from identity groups at issue time (shown on lookup; the ACL resolves them
    /// anew on every request).
    #[serde(default)]
    pub identity_policies: Vec<String>,
    /// Accessor of the parent token; empty for orphans (login tokens). Revoking a token
    /// revokes its children.
    #[serde(default)]
    pub parent_accessor: String,
    /// A response-wrapping token: it holds one wrapped answer (kept beside it in the store)
    /// and serves one request. Source: Vault "Response Wrapping" (its wrapping tokens carry
    /// the `response-wrapping` policy and one use).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub response_wrapping: bool,
}

impl TokenEntry {
    /// Seconds left before expiry (0 for tokens that never expire).
    pub fn ttl(&self, now: i64) -> i64 {
        self.expire_time
            .map(|t| t.saturating_sub(now).max(0))
            .unwrap_or(0)
    }

    fn expired(&self, now: i64) -> bool {
        self.expire_time.is_some_and(|t| t <= now)
    }

    /// Its revocation has started (either mark).
    fn revoking(&self) -> bool {
        self.num_uses < 0
    }

    /// Expired, or its revocation has started.
    fn dead(&self, now: i64) -> bool {
        self.expired(now) || self.revoking()
    }

    fn allows(&self, addr: Option<IpAddr>) -> bool {
        self.bound_cidrs.is_empty()
            || addr.is_some_and(|a| self.bound_cidrs.iter().any(|c| c.contains(&a)))
    }
}

#[derive(Serialize, Deserialize)]
struct Keyring {
    hmac_key: String,
    batch_key: String,
}

/// The token store, over the core's storage view.
pub struct TokenStore {
    storage: View,
    clock: Clock,
    /// The keys once read; forgotten by [`TokenStore::forget_cached`] (a restore).
    keys: crate::cache::Loaded<Keys>,
    /// `expiry/`: when each stored token expires, and the revocations under way.
    expiry: ExpiryIndex,
    /// Set when the whole store was replaced (a restore): the next sweep indexes every
    /// token again, whatever mark the store holds.
    reindex: std::sync::atomic::AtomicBool,
}

/// The secrets of a store: the HMAC key tokens are hashed with, the batch token cipher.
struct Keys {
    hmac_key: [u8; 32],
    batch_cipher: ChaCha20Poly1305,
}

impl Keys {
    fn hash(&self, token: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.hmac_key)
            .expect("HMAC takes keys of any length");
        mac.update(token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    key
}

fn not_found() -> Error {
    Error::invalid("token not found")
}

fn id_key(hash: &str) -> String {
    format!("id/{hash}")
}

fn wrapped_key(hash: &str) -> String {
    format!("wrapped/{hash}")
}

/// The one answer Vault gives for a wrapping token that is unknown, expired, already
/// unwrapped, or not a wrapping token at all (400).
pub fn invalid_wrapping_token() -> Error {
    Error::invalid("wrapping token is not valid or does not exist")
}

fn decode_key(hex_key: &str) -> Result<[u8; 32]> {
    hex::decode(hex_key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| Error::internal("corrupt token keyring"))
}

impl TokenStore {
    /// The store in `storage`. Its keyring is read (or created, once, even with several
    /// server nodes starting together) at first use, so a store whose database is down can
    /// be opened.
    pub fn open(storage: View, clock: Clock) -> Self {
        TokenStore {
            storage,
            clock,
            keys: crate::cache::Loaded::new(),
            expiry: ExpiryIndex::new("expiry/"),
            reindex: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Forgets the keys read from storage, so that the next use reads them again: after the
    /// whole store was replaced (a snapshot restore).
    pub fn forget_cached(&self) {
        self.keys.forget();
        self.reindex
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    async fn keys(&self) -> Result<std::sync::Arc<Keys>> {
        self.keys
            .get_or_load(|| async {
                let fresh = Keyring {
                    hmac_key: hex::encode(random_key()),
                    batch_key: hex::encode(random_key()),
                };
                let bytes = serde_json::to_vec(&fresh).map_err(Error::internal)?;
                if self.storage.put_if_absent("keyring", &bytes).await? {
                    // A new store: no token to index, so its first sweep needs no full pass.
                    let now = u64::try_from(self.clock.unix()).unwrap_or(0);
                    self.expiry.swept(&self.storage, now).await?;
                }
                let keyring: Keyring = self
                    .storage
                    .get_json("keyring")
                    .await?
                    .ok_or_else(|| Error::internal("token keyring vanished"))?;
                let batch_key = decode_key(&keyring.batch_key)?;
                Ok(Keys {
                    hmac_key: decode_key(&keyring.hmac_key)?,
                    batch_cipher: ChaCha20Poly1305::new(Key::from_slice(&batch_key)),
                })
            })
            .await
    }

    /// Issues a token for `entry`; fills in its accessor. Returns the token and the entry.
    pub async fn create(&self, mut entry: TokenEntry) -> Result<(String, TokenEntry)> {
        if entry.token_type == TokenType::Batch {
            entry.accessor = String::new();
            let token = self.seal_batch(&entry).await?;
            crate::metrics::metrics().token_issued(true);
            return Ok((token, entry));
        }
        let token = format!("hvs.{}", Alphanumeric.sample_string(&mut OsRng, 32));
        entry.accessor = Alphanumeric.sample_string(&mut OsRng, 24);
        self.store(&token, &entry, None).await?;
        // A revocation of the parent marks it dead before it lists the children: a child
        // written before that mark is found and revoked with it; one that sees the parent
        // dead here revokes itself.
        if !entry.parent_accessor.is_empty()
            && self
                .lookup_accessor(&entry.parent_accessor)
                .await?
                .is_none()
        {
            let hash = self.keys().await?.hash(&token);
            self.revoke_entry(&hash, &entry, Children::Revoke).await?;
            return Err(Error::PermissionDenied);
        }
        crate::metrics::metrics().token_issued(false);
        Ok((token, entry))
    }

    /// Stores a token under a chosen id (dev mode's `-dev-root-token-id`).
    pub async fn create_with_id(&self, token: &str, mut entry: TokenEntry) -> Result<TokenEntry> {
        entry.accessor = Alphanumeric.sample_string(&mut OsRng, 24);
        self.store(token, &entry, None).await?;
        Ok(entry)
    }

    /// Issues a response-wrapping token holding `wrapped` (the wrapped answer's bytes): an
    /// orphan service token marked [`TokenEntry::response_wrapping`], stored with its answer
    /// in one batch. The answer is deleted with the token, whether it is unwrapped, revoked
    /// or swept when expired.
    pub async fn create_wrapping(
        &self,
        mut entry: TokenEntry,
        wrapped: Vec<u8>,
    ) -> Result<(String, TokenEntry)> {
        entry.response_wrapping = true;
        entry.parent_accessor.clear();
        let token = format!("hvs.{}", Alphanumeric.sample_string(&mut OsRng, 32));
        entry.accessor = Alphanumeric.sample_string(&mut OsRng, 24);
        self.store(&token, &entry, Some(wrapped)).await?;
        crate::metrics::metrics().token_issued(false);
        Ok((token, entry))
    }

    /// The live wrapping token `token` (for `sys/wrapping/lookup`: nothing is consumed).
    /// Errors: 400 [`invalid_wrapping_token`] when it is unknown, dead or not a wrapping
    /// token.
    pub async fn lookup_wrapping(&self, token: &str) -> Result<TokenEntry> {
        match self.lookup(token).await? {
            Some(found) if found.entry.response_wrapping => Ok(found.entry),
            _ => Err(invalid_wrapping_token()),
        }
    }

    /// Unwraps `token`: claims it with a compare-and-set (exactly one of any number of
    /// concurrent unwraps, on any node, wins), takes its answer and revokes it. Returns the
    /// token's entry and the answer's bytes. Errors: 400 [`invalid_wrapping_token`] for every
    /// other caller, and for a token that is unknown, expired or not a wrapping token.
    pub async fn unwrap(&self, token: &str) -> Result<(TokenEntry, Vec<u8>)> {
        let hash = self.keys().await?.hash(token);
        let now = self.clock.unix();
        let (_, claimed) = self
            .storage
            .update_json::<TokenEntry, _>(&id_key(&hash), |current| match current {
                Some(mut entry) if entry.response_wrapping && !entry.dead(now) => {
                    entry.num_uses = REVOCATION_PENDING;
                    Ok(Some(entry))
                }
                _ => Err(invalid_wrapping_token()),
            })
            .await?;
        let entry = claimed.ok_or_else(invalid_wrapping_token)?;
        let wrapped = self.storage.get(&wrapped_key(&hash)).await?;
        self.finish_revocation(&hash, &entry, Children::Revoke, None)
            .await?;
        let wrapped = wrapped.ok_or_else(|| Error::internal("wrapped answer vanished"))?;
        Ok((entry, wrapped))
    }

    /// Writes the entry, its accessor index, its parent link and (for a wrapping token) the
    /// wrapped answer in one batch.
    async fn store(&self, token: &str, entry: &TokenEntry, wrapped: Option<Vec<u8>>) -> Result<()> {
        let hash = self.keys().await?.hash(token);
        let mut batch = vec![
            (
                id_key(&hash),
                serde_json::to_vec(entry).map_err(Error::internal)?,
            ),
            (
                format!("accessor/{}", entry.accessor),
                hash.clone().into_bytes(),
            ),
        ];
        if !entry.parent_accessor.is_empty() {
            let link = format!("parent/{}/{}", entry.parent_accessor, entry.accessor);
            batch.push((link, Vec::new()));
        }
        if let Some(wrapped) = wrapped {
            batch.push((wrapped_key(&hash), wrapped));
        }
        if let Some(expires) = entry.expire_time {
            batch.push((self.expiry_key(expires, &hash), Vec::new()));
        }
        self.storage.put_batch(batch).await
    }

    async fn seal_batch(&self, entry: &TokenEntry) -> Result<String> {
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let plain = serde_json::to_vec(entry).map_err(Error::internal)?;
        let sealed = self
            .keys()
            .await?
            .batch_cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_slice())
            .map_err(|_| Error::internal("cannot seal batch token"))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("hvb.{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    fn open_batch(keys: &Keys, token: &str) -> Option<TokenEntry> {
        let bytes = URL_SAFE_NO_PAD.decode(token.strip_prefix("hvb.")?).ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(12);
        let plain = keys
            .batch_cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .ok()?;
        serde_json::from_slice(&plain).ok()
    }

    /// The live entry of `token`, or `None` when unknown, revoked or expired.
    pub async fn lookup(&self, token: &str) -> Result<Option<StoredToken>> {
        let keys = self.keys().await?;
        if token.starts_with("hvb.") {
            let now = self.clock.unix();
            let Some(entry) = Self::open_batch(&keys, token).filter(|e| !e.expired(now)) else {
                return Ok(None);
            };
            // A batch token is not stored, so it dies with its parent by this check.
            if !entry.parent_accessor.is_empty()
                && self
                    .lookup_accessor(&entry.parent_accessor)
                    .await?
                    .is_none()
            {
                return Ok(None);
            }
            return Ok(Some(StoredToken { key: None, entry }));
        }
        self.by_hash(&keys.hash(token)).await
    }

    /// The live entry with this accessor.
    pub async fn lookup_accessor(&self, accessor: &str) -> Result<Option<StoredToken>> {
        if accessor.is_empty() {
            return Ok(None);
        }
        match self.storage.get(&format!("accessor/{accessor}")).await? {
            Some(hash) => self.by_hash(&String::from_utf8_lossy(&hash)).await,
            None => Ok(None),
        }
    }

    async fn by_hash(&self, hash: &str) -> Result<Option<StoredToken>> {
        let Some(entry) = self.storage.get_json::<TokenEntry>(&id_key(hash)).await? else {
            return Ok(None);
        };
        if entry.revoking() {
            return Ok(None);
        }
        let now = self.clock.unix();
        if entry.expired(now) {
            self.finish_revocation(hash, &entry, Children::Revoke, Some(now))
                .await?;
            return Ok(None);
        }
        Ok(Some(StoredToken {
            key: Some(hash.to_string()),
            entry,
        }))
    }

    /// Checks `token` as [`TokenStore::use_token`] does (unknown, dead or out-of-CIDR tokens
    /// give 403) without counting a use: for endpoints that only look at who asks
    /// (`sys/internal/ui/mounts`, as Vault does there).
    pub async fn peek(&self, token: &str, addr: Option<IpAddr>) -> Result<StoredToken> {
        let found = self.lookup(token).await?.ok_or(Error::PermissionDenied)?;
        if !found.entry.allows(addr) {
            return Err(Error::PermissionDenied);
        }
        Ok(found)
    }

    /// Checks `token` for one use from `addr` and counts the use: unknown, dead, or
    /// out-of-CIDR tokens give 403. Counting is a compare-and-set on the entry, so a token
    /// with `num_uses = N` serves exactly N requests however many nodes share the store; the
    /// last use marks it [`REVOCATION_PENDING`] (the returned entry shows that) and revokes it.
    pub async fn use_token(&self, token: &str, addr: Option<IpAddr>) -> Result<StoredToken> {
        let found = self.lookup(token).await?.ok_or(Error::PermissionDenied)?;
        if !found.entry.allows(addr) {
            return Err(Error::PermissionDenied);
        }
        let Some(hash) = found.key.as_deref() else {
            return Ok(found);
        };
        if found.entry.num_uses == 0 {
            return Ok(found);
        }
        let now = self.clock.unix();
        if found.entry.num_uses == 1 {
            self.note_revocation(hash, now).await?;
        }
        let (_, after) = self
            .storage
            .update_json::<TokenEntry, _>(&id_key(hash), |current| match current {
                Some(mut entry) if entry.num_uses > 0 && !entry.dead(now) => {
                    entry.num_uses = match entry.num_uses {
                        1 => REVOCATION_PENDING,
                        n => n - 1,
                    };
                    Ok(Some(entry))
                }
                _ => Err(Error::PermissionDenied),
            })
            .await?;
        let entry = after.ok_or(Error::PermissionDenied)?;
        if entry.num_uses == REVOCATION_PENDING && found.entry.num_uses != 1 {
            // A concurrent use left this request the last one: no note was written for it.
            self.revoke_entry(hash, &entry, Children::Revoke).await?;
        } else if entry.num_uses == REVOCATION_PENDING {
            self.finish_revocation(hash, &entry, Children::Revoke, None)
                .await?;
        }
        Ok(StoredToken {
            key: found.key,
            entry,
        })
    }

    /// Changes a stored token's entry (a renewal) with a compare-and-set: `change` is applied
    /// to the entry as stored now, so a use counted or a revocation started meanwhile (on any
    /// node) is kept, never undone. Returns the token as stored.
    /// Errors: 400 `token not found` when the token is gone, expired or being revoked (also
    /// when this very request took its last use: Vault answers a renew-self so); 400 for a
    /// batch token.
    pub async fn update(
        &self,
        token: &StoredToken,
        mut change: impl FnMut(&mut TokenEntry),
    ) -> Result<StoredToken> {
        let Some(hash) = token.key.as_deref() else {
            return Err(Error::invalid("batch tokens cannot be changed"));
        };
        let now = self.clock.unix();
        let (before, after) = self
            .storage
            .update_json::<TokenEntry, _>(&id_key(hash), |current| match current {
                Some(mut entry) if !entry.dead(now) => {
                    change(&mut entry);
                    Ok(Some(entry))
                }
                _ => Err(not_found()),
            })
            .await?;
        let entry = after.ok_or_else(not_found)?;
        let filed = before.and_then(|b| b.expire_time);
        if filed.map(|t| t / 60) != entry.expire_time.map(|t| t / 60) {
            if let Some(expires) = entry.expire_time {
                let key = self.expiry_key(expires, hash);
                self.storage.put(&key, b"").await?;
            }
            if let Some(old) = filed {
                self.storage.delete(&self.expiry_key(old, hash)).await?;
            }
        }
        crate::metrics::metrics().token_renewed();
        Ok(StoredToken {
            key: token.key.clone(),
            entry,
        })
    }

    /// Revokes a stored token and, recursively, its children.
    pub async fn revoke(&self, token: &StoredToken) -> Result<()> {
        self.revoke_stored(token, Children::Revoke).await
    }

    /// Revokes a stored token but not its children, which become orphans (Vault
    /// `auth/token/revoke-orphan`).
    pub async fn revoke_orphan(&self, token: &StoredToken) -> Result<()> {
        self.revoke_stored(token, Children::Orphan).await
    }

    async fn revoke_stored(&self, token: &StoredToken, children: Children) -> Result<()> {
        let Some(hash) = &token.key else {
            return Err(Error::invalid("batch tokens cannot be revoked"));
        };
        self.revoke_entry(hash, &token.entry, children).await?;
        crate::metrics::metrics().token_revoked();
        Ok(())
    }

    /// Revokes the entry at `id/<hash>` (`known` is what the caller read of it): marks it
    /// revoking (with the mark of `children`) so that no lookup finds it and no child can
    /// join it, revokes or orphans its children, then deletes it with its accessor and parent
    /// link. A revocation already started keeps its own mark, and the mark as stored decides
    /// what happens to the children. Every step may run again (on another node, or by the
    /// sweep) without harm. Orphaning a child is a compare-and-set on the child's entry, so a
    /// use counted or a revocation started there meanwhile is kept.
    async fn revoke_entry(&self, hash: &str, known: &TokenEntry, children: Children) -> Result<()> {
        self.note_revocation(hash, self.clock.unix()).await?;
        self.finish_revocation(hash, known, children, None).await
    }

    /// [`TokenStore::revoke_entry`] without the note, for a caller that has one already: the
    /// sweep (the index key it works from stays until the revocation is done), a use that
    /// took the last one (noted before), an expired entry (filed under its expiry), the
    /// children of a revocation (their parent's note brings the sweep back to them).
    ///
    /// `expired_at`: the revocation is only because the entry was seen expired at this time
    /// (the sweep, a lookup); an entry renewed meanwhile, no longer expired as stored, is
    /// left alone rather than revoked after its renewal was answered.
    async fn finish_revocation(
        &self,
        hash: &str,
        known: &TokenEntry,
        children: Children,
        expired_at: Option<i64>,
    ) -> Result<()> {
        let (_, stored) = self
            .storage
            .update_json::<TokenEntry, _>(&id_key(hash), |current| {
                let due = |e: &TokenEntry| expired_at.is_none_or(|now| e.expired(now));
                Ok(current.filter(|e| !e.revoking() && due(e)).map(|mut e| {
                    e.num_uses = children.mark();
                    e
                }))
            })
            .await?;
        if let (Some(now), Some(current)) = (expired_at, &stored) {
            if !current.dead(now) {
                return Ok(()); // renewed since it was seen expired
            }
        }
        let entry = stored.as_ref().unwrap_or(known);
        let children = match entry.num_uses {
            ORPHAN_REVOCATION_PENDING => Children::Orphan,
            REVOCATION_PENDING => Children::Revoke,
            _ => children,
        };
        let accessor = &entry.accessor;
        for child in self.storage.list(&format!("parent/{accessor}/")).await? {
            if let Some(hash) = self.storage.get(&format!("accessor/{child}")).await? {
                let hash = String::from_utf8_lossy(&hash).to_string();
                match children {
                    Children::Revoke => {
                        let found = self.storage.get_json::<TokenEntry>(&id_key(&hash)).await?;
                        if let Some(found) = found {
                            Box::pin(self.finish_revocation(&hash, &found, Children::Revoke, None))
                                .await?;
                        }
                    }
                    Children::Orphan => {
                        self.storage
                            .update_json::<TokenEntry, _>(&id_key(&hash), |current| {
                                Ok(current.filter(|e| e.parent_accessor == *accessor).map(
                                    |mut e| {
                                        e.parent_accessor.clear();
                                        e
                                    },
                                ))
                            })
                            .await?;
                    }
                }
            }
            self.storage
                .delete(&format!("parent/{accessor}/{child}"))
                .await?;
        }
        if !entry.parent_accessor.is_empty() {
            self.storage
                .delete(&format!("parent/{}/{accessor}", entry.parent_accessor))
                .await?;
        }
        if entry.response_wrapping {
            self.storage.delete(&wrapped_key(hash)).await?;
        }
        self.storage.delete(&id_key(hash)).await?;
        if !accessor.is_empty() {
            self.storage.delete(&format!("accessor/{accessor}")).await?;
        }
        if let Some(expires) = entry.expire_time {
            self.storage.delete(&self.expiry_key(expires, hash)).await?;
        }
        Ok(())
    }

    /// Removes every expired stored token, and finishes revocations left half done (a node
    /// that stopped between marking and deleting); returns how many it removed. It reads only
    /// the index buckets that are due (see [`ExpiryIndex`]), so its cost follows what expires,
    /// not how many tokens are stored. A store without the index's mark (written by an older
    /// version) is indexed once, by one full pass, and so is a store just restored from a
    /// snapshot (whatever mark it holds: a sweep running during the restore may have written
    /// one). Tokens written by nodes of an older version running beside this one are not
    /// indexed: upgrade every node of a cluster together.
    pub async fn sweep_expired(&self) -> Result<usize> {
        let now = self.clock.unix();
        let due_at = u64::try_from(now).unwrap_or(0);
        let mut removed = 0;
        let restored = self
            .reindex
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        if restored || self.expiry.last_swept(&self.storage).await?.is_none() {
            let pass = self.index_every_token(now).await;
            if pass.is_err() && restored {
                self.reindex
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
            removed += pass?;
        }
        for (index_key, hash) in self.expiry.due(&self.storage, due_at).await? {
            match self.storage.get_json::<TokenEntry>(&id_key(&hash)).await? {
                Some(entry) if entry.dead(now) => {
                    self.finish_revocation(&hash, &entry, Children::Revoke, Some(now))
                        .await?;
                    removed += 1;
                }
                // Renewed since it was filed, or a revocation note that came to nothing:
                // filed again under its expiry (if it has one).
                Some(entry) => {
                    if let Some(expires) = entry.expire_time {
                        let key = self.expiry_key(expires, &hash);
                        self.storage.put(&key, b"").await?;
                    }
                }
                None => {}
            }
            self.storage.delete(&index_key).await?;
        }
        self.expiry.swept(&self.storage, due_at).await?;
        Ok(removed)
    }

    /// The one full pass over a store without an expiry index: removes the dead entries and
    /// files the others that expire. Returns how many it removed.
    async fn index_every_token(&self, now: i64) -> Result<usize> {
        let mut removed = 0;
        for hash in self.storage.list("id/").await? {
            let Some(entry) = self.storage.get_json::<TokenEntry>(&id_key(&hash)).await? else {
                continue;
            };
            if entry.dead(now) {
                self.finish_revocation(&hash, &entry, Children::Revoke, Some(now))
                    .await?;
                removed += 1;
            } else if let Some(expires) = entry.expire_time {
                let key = self.expiry_key(expires, &hash);
                if self.storage.get(&key).await?.is_none() {
                    self.storage.put(&key, b"").await?;
                }
            }
        }
        Ok(removed)
    }

    /// The index key of the stored token `hash` expiring at `expires` (Unix seconds).
    fn expiry_key(&self, expires: i64, hash: &str) -> String {
        self.expiry.key(u64::try_from(expires).unwrap_or(0), hash)
    }

    /// Files the token `hash` as due now, before its entry is marked revoking: if this node
    /// stops before the revocation is done, the next sweep finishes it (and a note for a
    /// revocation that never started is dropped by the sweep).
    async fn note_revocation(&self, hash: &str, now: i64) -> Result<()> {
        self.storage.put(&self.expiry_key(now, hash), b"").await
    }

    /// The accessors of every stored token, sorted (Vault `LIST auth/token/accessors`).
    pub async fn accessors(&self) -> Result<Vec<String>> {
        self.storage.list("accessor/").await
    }

    /// Revokes every stored token issued by the mount with this accessor.
    pub async fn revoke_mount(&self, mount_accessor: &str) -> Result<usize> {
        let mut revoked = 0;
        for hash in self.storage.list("id/").await? {
            if let Some(found) = self.by_hash(&hash).await? {
                if found.entry.mount_accessor == mount_accessor {
                    self.revoke(&found).await?;
                    revoked += 1;
                }
            }
        }
        Ok(revoked)
    }
}

/// A live token as found in the store: its entry and where it is kept (none for batch
/// tokens, which carry their entry themselves).
#[derive(Debug, Clone)]
pub struct StoredToken {
    key: Option<String>,
    /// The token's state.
    pub entry: TokenEntry,
}

impl StoredToken {
    /// True for a batch token.
    pub fn is_batch(&self) -> bool {
        self.key.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::recording::Recording;
    use crate::storage::InMemory;
    use std::sync::Arc;

    fn entry(kind: TokenType, ttl: i64, uses: i64) -> TokenEntry {
        let now = Clock::system().unix();
        TokenEntry {
            accessor: String::new(),
            policies: vec!["default".into()],
            token_policies: vec!["default".into()],
            meta: None,
            display_name: "jwt-alice".into(),
            path: "auth/jwt/login".into(),
            mount_accessor: "auth_jwt_00000000".into(),
            entity_id: "e".into(),
            creation_time: now,
            creation_ttl: ttl,
            expire_time: Some(now.saturating_add(ttl)),
            max_ttl: ttl,
            explicit_max_ttl: 0,
            period: 0,
            num_uses: uses,
            bound_cidrs: vec![],
            token_type: kind,
            renewable: kind == TokenType::Service,
            internal_data: Map::new(),
            params: Default::default(),
            last_renewal_time: None,
            identity_policies: vec![],
            parent_accessor: String::new(),
            response_wrapping: false,
        }
    }

    /// A token store on a manual clock (`tokens.clock`), standing at the system's time.
    async fn store() -> (View, TokenStore) {
        let view = View::new(Arc::new(InMemory::new()), "core/token/");
        (view.clone(), TokenStore::open(view, Clock::manual()))
    }

    /// Moves the store's clock on a minute: what was due is due for the sweep.
    fn a_minute_later(tokens: &TokenStore) {
        tokens.clock.advance(std::time::Duration::from_secs(60));
    }

    #[tokio::test]
    async fn service_tokens_are_stored_only_as_hashes() {
        let (view, tokens) = store().await;
        let (token, e) = tokens
            .create(entry(TokenType::Service, 60, 0))
            .await
            .unwrap();
        assert!(token.starts_with("hvs.") && token.len() == 36);
        assert_eq!(e.accessor.len(), 24);
        let ids = view.list("id/").await.unwrap();
        assert_eq!(ids.len(), 1);
        assert!(!ids[0].contains(&token[4..]));
        let found = tokens.lookup(&token).await.unwrap().unwrap();
        assert_eq!(found.entry.display_name, "jwt-alice");
        let by_accessor = tokens.lookup_accessor(&e.accessor).await.unwrap().unwrap();
        assert_eq!(by_accessor.entry, found.entry);
        tokens.revoke(&found).await.unwrap();
        assert!(tokens.lookup(&token).await.unwrap().is_none());
        assert!(view.list("accessor/").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn batch_tokens_are_sealed_and_tamper_evident() {
        let (view, tokens) = store().await;
        let (token, e) = tokens.create(entry(TokenType::Batch, 60, 0)).await.unwrap();
        assert!(token.starts_with("hvb.") && e.accessor.is_empty());
        assert!(view.list("id/").await.unwrap().is_empty());
        assert!(tokens.lookup(&token).await.unwrap().is_some());
        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(tokens.lookup(&forged).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn uses_are_counted_and_the_last_use_revokes() {
        let (_, tokens) = store().await;
        let (token, _) = tokens
            .create(entry(TokenType::Service, 60, 2))
            .await
            .unwrap();
        assert!(tokens.use_token(&token, None).await.is_ok());
        assert!(tokens.use_token(&token, None).await.is_ok());
        assert_eq!(
            tokens.use_token(&token, None).await.unwrap_err(),
            Error::PermissionDenied
        );
    }

    #[tokio::test]
    async fn bound_cidrs_restrict_use() {
        let (_, tokens) = store().await;
        let mut e = entry(TokenType::Service, 60, 0);
        e.bound_cidrs = vec!["10.0.0.0/8".parse().unwrap()];
        let (token, _) = tokens.create(e).await.unwrap();
        assert!(tokens
            .use_token(&token, Some("10.1.2.3".parse().unwrap()))
            .await
            .is_ok());
        assert!(tokens
            .use_token(&token, Some("127.0.0.1".parse().unwrap()))
            .await
            .is_err());
        assert!(tokens.use_token(&token, None).await.is_err());
    }

    /// A parent, its child (with `child_uses` uses) and the child's child: each token with
    /// its entry.
    async fn family(tokens: &TokenStore, child_uses: i64) -> [(String, TokenEntry); 3] {
        let parent = tokens
            .create(entry(TokenType::Service, 3600, 0))
            .await
            .unwrap();
        let mut child = entry(TokenType::Service, 3600, child_uses);
        child.parent_accessor = parent.1.accessor.clone();
        let child = tokens.create(child).await.unwrap();
        let mut grandchild = entry(TokenType::Service, 3600, 0);
        grandchild.parent_accessor = child.1.accessor.clone();
        let grandchild = tokens.create(grandchild).await.unwrap();
        [parent, child, grandchild]
    }

    #[tokio::test]
    async fn revoking_a_parent_revokes_its_children() {
        let (_, tokens) = store().await;
        let [(parent, _), (child, _), (grandchild, _)] = family(&tokens, 0).await;
        let found = tokens.lookup(&parent).await.unwrap().unwrap();
        tokens.revoke(&found).await.unwrap();
        for t in [parent, child, grandchild] {
            assert!(tokens.lookup(&t).await.unwrap().is_none());
        }
    }

    #[tokio::test]
    async fn the_sweep_removes_expired_tokens_from_storage() {
        let (view, tokens) = store().await;
        let (_, dead) = tokens
            .create(entry(TokenType::Service, -1, 0))
            .await
            .unwrap();
        let (live, _) = tokens
            .create(entry(TokenType::Service, 3600, 0))
            .await
            .unwrap();
        assert_eq!(view.list("id/").await.unwrap().len(), 2);
        a_minute_later(&tokens);
        assert_eq!(tokens.sweep_expired().await.unwrap(), 1);
        assert_eq!(view.list("id/").await.unwrap().len(), 1);
        assert!(view
            .get(&format!("accessor/{}", dead.accessor))
            .await
            .unwrap()
            .is_none());
        assert!(tokens.lookup(&live).await.unwrap().is_some());
        assert_eq!(tokens.sweep_expired().await.unwrap(), 0);
    }

    /// Several token stores over one store, as several server nodes share a database.
    fn nodes(store: Arc<dyn crate::storage::Storage>) -> Vec<Arc<TokenStore>> {
        (0..2)
            .map(|_| {
                Arc::new(TokenStore::open(
                    View::new(store.clone(), "core/token/"),
                    Clock::system(),
                ))
            })
            .collect()
    }

    /// 40 concurrent uses over two nodes of a token with `uses` uses: exactly `uses` succeed.
    async fn uses_are_exact(store: Arc<dyn crate::storage::Storage>) {
        let nodes = nodes(store);
        for uses in [1, 3] {
            let (token, _) = nodes[0]
                .create(entry(TokenType::Service, 60, uses))
                .await
                .unwrap();
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..40 {
                let (node, token) = (nodes[i % 2].clone(), token.clone());
                tasks.spawn(async move { node.use_token(&token, None).await });
            }
            let mut served = 0;
            while let Some(done) = tasks.join_next().await {
                match done.unwrap() {
                    Ok(_) => served += 1,
                    Err(e) => assert_eq!(e, Error::PermissionDenied),
                }
            }
            assert_eq!(served, uses, "num_uses={uses}");
            for node in &nodes {
                assert!(node.lookup(&token).await.unwrap().is_none());
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn uses_are_exact_across_nodes_in_memory() {
        uses_are_exact(Arc::new(InMemory::new())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn uses_are_exact_across_nodes_on_sqlite() {
        let dir = std::env::temp_dir().join(format!("authmount-uses-{}", uuid::Uuid::new_v4()));
        let store = crate::storage::SqlStore::sqlite(&dir.join("t.db"))
            .await
            .unwrap();
        uses_are_exact(Arc::new(store)).await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_renewal_never_gives_back_uses_or_life() {
        let (_, tokens) = store().await;
        let (token, _) = tokens
            .create(entry(TokenType::Service, 60, 3))
            .await
            .unwrap();
        // Read before two uses: a renewal from this copy keeps the uses counted since.
        let stale = tokens.lookup(&token).await.unwrap().unwrap();
        tokens.use_token(&token, None).await.unwrap();
        tokens.use_token(&token, None).await.unwrap();
        let renewed = tokens
            .update(&stale, |e| e.last_renewal_time = Some(1))
            .await
            .unwrap();
        assert_eq!(renewed.entry.num_uses, 1);
        assert_eq!(renewed.entry.last_renewal_time, Some(1));
        tokens.use_token(&token, None).await.unwrap();
        // Used up (and so revoked): the renewal is refused and brings nothing back.
        assert_eq!(
            tokens.update(&stale, |_| {}).await.unwrap_err(),
            Error::invalid("token not found")
        );
        assert!(tokens.lookup(&token).await.unwrap().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_child_outlives_a_parent_revoked_while_children_are_created() {
        let (_, tokens) = store().await;
        let tokens = Arc::new(tokens);
        let (parent, p) = tokens
            .create(entry(TokenType::Service, 60, 0))
            .await
            .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (tokens, accessor) = (tokens.clone(), p.accessor.clone());
            tasks.spawn(async move {
                let mut child = entry(TokenType::Service, 60, 0);
                child.parent_accessor = accessor;
                tokens.create(child).await.map(|(t, _)| t)
            });
        }
        let found = tokens.lookup(&parent).await.unwrap().unwrap();
        tokens.revoke(&found).await.unwrap();
        while let Some(done) = tasks.join_next().await {
            match done.unwrap() {
                Ok(child) => assert!(tokens.lookup(&child).await.unwrap().is_none()),
                Err(e) => assert_eq!(e, Error::PermissionDenied),
            }
        }
        // A child of a dead parent is refused outright.
        let mut late = entry(TokenType::Service, 60, 0);
        late.parent_accessor = p.accessor.clone();
        assert_eq!(
            tokens.create(late).await.unwrap_err(),
            Error::PermissionDenied
        );
    }

    /// A token store on a manual clock over a store that records its reads.
    async fn recorded_store() -> (Arc<Recording>, View, TokenStore, Clock) {
        let recording = Arc::new(Recording::default());
        let view = View::new(recording.clone(), "core/token/");
        let clock = Clock::manual();
        let tokens = TokenStore::open(view.clone(), clock.clone());
        (recording, view, tokens, clock)
    }

    /// `entry` with times from `clock`.
    fn entry_on(clock: &Clock, ttl: i64) -> TokenEntry {
        let now = clock.unix();
        TokenEntry {
            creation_time: now,
            expire_time: Some(now + ttl),
            ..entry(TokenType::Service, ttl, 0)
        }
    }

    #[tokio::test]
    async fn the_sweep_reads_only_the_tokens_that_are_due() {
        let (recording, _, tokens, clock) = recorded_store().await;
        tokens.sweep_expired().await.unwrap();
        for _ in 0..200 {
            tokens.create(entry_on(&clock, 6 * 3600)).await.unwrap();
        }
        let (short, _) = tokens.create(entry_on(&clock, 30)).await.unwrap();
        clock.advance(std::time::Duration::from_secs(120));
        recording.take_reads();
        assert_eq!(tokens.sweep_expired().await.unwrap(), 1);
        let reads = recording.take_reads();
        assert!(
            !reads.iter().any(|r| r.starts_with("list core/token/id/")),
            "{reads:?}"
        );
        let entries_read = reads.iter().filter(|r| r.starts_with("get core/token/id/"));
        assert!(entries_read.count() <= 2, "{reads:?}");
        assert!(tokens.lookup(&short).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_renewed_token_is_swept_at_its_new_expiry_and_not_before() {
        let (_, _, tokens, clock) = recorded_store().await;
        tokens.sweep_expired().await.unwrap();
        let (token, _) = tokens.create(entry_on(&clock, 60)).await.unwrap();
        let found = tokens.lookup(&token).await.unwrap().unwrap();
        let until = clock.unix() + 600;
        tokens
            .update(&found, |e| e.expire_time = Some(until))
            .await
            .unwrap();
        clock.advance(std::time::Duration::from_secs(180));
        assert_eq!(tokens.sweep_expired().await.unwrap(), 0);
        assert!(tokens.lookup(&token).await.unwrap().is_some());
        clock.advance(std::time::Duration::from_secs(600));
        assert_eq!(tokens.sweep_expired().await.unwrap(), 1);
        assert!(tokens.lookup(&token).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_revocation_left_half_done_is_finished_by_the_next_minutes_sweep() {
        let (_, view, tokens, clock) = recorded_store().await;
        tokens.sweep_expired().await.unwrap();
        let (parent, p) = tokens.create(entry_on(&clock, 6 * 3600)).await.unwrap();
        let mut child = entry_on(&clock, 6 * 3600);
        child.parent_accessor = p.accessor.clone();
        let (child, _) = tokens.create(child).await.unwrap();
        // A node noted the revocation, marked the parent, and stopped there.
        let hash = tokens.keys().await.unwrap().hash(&parent);
        tokens.note_revocation(&hash, clock.unix()).await.unwrap();
        let mut marked = p.clone();
        marked.num_uses = REVOCATION_PENDING;
        view.put_json(&id_key(&hash), &marked).await.unwrap();
        assert!(tokens.lookup(&child).await.unwrap().is_some());
        clock.advance(std::time::Duration::from_secs(60));
        assert_eq!(tokens.sweep_expired().await.unwrap(), 1);
        assert!(tokens.lookup(&child).await.unwrap().is_none());
    }

    /// The index keys of the store, as `<bucket>/<hash>`.
    async fn index_keys(view: &View) -> Vec<String> {
        let mut keys = Vec::new();
        for bucket in view.list("expiry/").await.unwrap() {
            if !bucket.ends_with('/') {
                continue; // the mark
            }
            for name in view.list(&format!("expiry/{bucket}")).await.unwrap() {
                keys.push(format!("{bucket}{name}"));
            }
        }
        keys
    }

    #[tokio::test]
    async fn revoked_unwrapped_and_renewed_tokens_leave_no_index_keys_behind() {
        let (_, view, tokens, clock) = recorded_store().await;
        let far = 100 * 365 * 86_400;
        let (wrapping, _) = tokens
            .create_wrapping(entry_on(&clock, far), b"{}".to_vec())
            .await
            .unwrap();
        tokens.unwrap(&wrapping).await.unwrap();
        let (revoked, _) = tokens.create(entry_on(&clock, far)).await.unwrap();
        let found = tokens.lookup(&revoked).await.unwrap().unwrap();
        tokens.revoke(&found).await.unwrap();
        // Only the revocation's note (due next minute) is left.
        let left = index_keys(&view).await;
        let next_minute = format!("{:012}/", clock.unix() / 60 + 1);
        assert!(left.iter().all(|k| k.starts_with(&next_minute)), "{left:?}");
        clock.advance(std::time::Duration::from_secs(61));
        tokens.sweep_expired().await.unwrap();
        assert_eq!(index_keys(&view).await, Vec::<String>::new());

        let (renewed, _) = tokens.create(entry_on(&clock, 60)).await.unwrap();
        for k in 1..=20 {
            let found = tokens.lookup(&renewed).await.unwrap().unwrap();
            let until = clock.unix() + 120 * k;
            tokens
                .update(&found, |e| e.expire_time = Some(until))
                .await
                .unwrap();
        }
        assert_eq!(index_keys(&view).await.len(), 1);
    }

    #[tokio::test]
    async fn a_token_renewed_after_it_was_seen_expired_is_not_revoked() {
        let (_, _, tokens, clock) = recorded_store().await;
        let (token, _) = tokens.create(entry_on(&clock, 60)).await.unwrap();
        let seen = tokens.lookup(&token).await.unwrap().unwrap();
        let until = clock.unix() + 600;
        tokens
            .update(&seen, |e| e.expire_time = Some(until))
            .await
            .unwrap();
        // A sweep (or lookup) that read the entry before the renewal, at its expiry.
        let hash = tokens.keys().await.unwrap().hash(&token);
        let expired_at = seen.entry.expire_time.unwrap();
        tokens
            .finish_revocation(&hash, &seen.entry, Children::Revoke, Some(expired_at))
            .await
            .unwrap();
        assert!(tokens.lookup(&token).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn after_a_restore_the_next_sweep_indexes_every_token() {
        let (_, view, tokens, clock) = recorded_store().await;
        tokens.sweep_expired().await.unwrap();
        let (token, _) = tokens.create(entry_on(&clock, 90)).await.unwrap();
        // A restored store holding a mark but no index for this token.
        for key in index_keys(&view).await {
            view.delete(&format!("expiry/{key}")).await.unwrap();
        }
        tokens.forget_cached();
        assert_eq!(tokens.sweep_expired().await.unwrap(), 0);
        assert_eq!(index_keys(&view).await.len(), 1);
        clock.advance(std::time::Duration::from_secs(180));
        assert_eq!(tokens.sweep_expired().await.unwrap(), 1);
        assert!(tokens.lookup(&token).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_new_stores_first_sweep_reads_no_token() {
        let (recording, _, tokens, clock) = recorded_store().await;
        for _ in 0..3 {
            tokens.create(entry_on(&clock, 6 * 3600)).await.unwrap();
        }
        recording.take_reads();
        assert_eq!(tokens.sweep_expired().await.unwrap(), 0);
        let reads = recording.take_reads();
        assert!(!reads.iter().any(|r| r.contains("/id/")), "{reads:?}");
    }

    #[tokio::test]
    async fn a_store_without_the_index_is_indexed_by_its_first_sweep() {
        let (_, view, tokens, clock) = recorded_store().await;
        let (token, _) = tokens.create(entry_on(&clock, 90)).await.unwrap();
        let (_, gone) = tokens.create(entry_on(&clock, -1)).await.unwrap();
        // As an older version stored them: no index, no mark.
        view.delete("expiry/swept").await.unwrap();
        for bucket in view.list("expiry/").await.unwrap() {
            for name in view.list(&format!("expiry/{bucket}")).await.unwrap() {
                view.delete(&format!("expiry/{bucket}{name}"))
                    .await
                    .unwrap();
            }
        }
        assert_eq!(tokens.sweep_expired().await.unwrap(), 1);
        let accessor = format!("accessor/{}", gone.accessor);
        assert!(view.get(&accessor).await.unwrap().is_none());
        assert!(tokens.lookup(&token).await.unwrap().is_some());
        clock.advance(std::time::Duration::from_secs(180));
        assert_eq!(tokens.sweep_expired().await.unwrap(), 1);
        assert!(view.list("id/").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn revoke_orphan_keeps_the_children_as_orphans_also_when_the_sweep_finishes_it() {
        let (view, tokens) = store().await;
        for half_done in [false, true] {
            let [(parent, p), (child, _), (grandchild, _)] = family(&tokens, 2).await;
            // Orphaning changes the child as stored: the use counted here stays counted.
            tokens.use_token(&child, None).await.unwrap();
            let found = tokens.lookup(&parent).await.unwrap().unwrap();
            if half_done {
                // A node noted the revoke-orphan, marked the parent and stopped there.
                let hash = tokens.keys().await.unwrap().hash(&parent);
                tokens
                    .note_revocation(&hash, tokens.clock.unix())
                    .await
                    .unwrap();
                let mut marked = found.entry.clone();
                marked.num_uses = ORPHAN_REVOCATION_PENDING;
                view.put_json(&id_key(&hash), &marked).await.unwrap();
                assert!(tokens.lookup(&parent).await.unwrap().is_none());
                a_minute_later(&tokens);
                assert_eq!(tokens.sweep_expired().await.unwrap(), 1);
            } else {
                tokens.revoke_orphan(&found).await.unwrap();
            }
            assert!(tokens.lookup(&parent).await.unwrap().is_none());
            let orphan = tokens.lookup(&child).await.unwrap().unwrap();
            assert_eq!(orphan.entry.parent_accessor, "");
            assert_eq!(orphan.entry.num_uses, 1);
            assert!(tokens.lookup(&grandchild).await.unwrap().is_some());
            assert!(view
                .list(&format!("parent/{}/", p.accessor))
                .await
                .unwrap()
                .is_empty());
            // The orphan's own children still go with it.
            tokens.revoke(&orphan).await.unwrap();
            assert!(tokens.lookup(&grandchild).await.unwrap().is_none());
        }
    }

    #[tokio::test]
    async fn a_wrapped_answer_lives_and_dies_with_its_wrapping_token() {
        let (view, tokens) = store().await;
        let (live, _) = tokens
            .create_wrapping(entry(TokenType::Service, 3600, 0), b"{\"a\":1}".to_vec())
            .await
            .unwrap();
        let (expired, _) = tokens
            .create_wrapping(entry(TokenType::Service, -1, 0), b"{}".to_vec())
            .await
            .unwrap();
        assert_eq!(view.list("wrapped/").await.unwrap().len(), 2);
        assert_eq!(
            tokens.unwrap(&expired).await.unwrap_err(),
            invalid_wrapping_token()
        );
        a_minute_later(&tokens);
        assert_eq!(tokens.sweep_expired().await.unwrap(), 1);
        assert_eq!(view.list("wrapped/").await.unwrap().len(), 1);
        // An ordinary token is no wrapping token.
        let (plain, _) = tokens
            .create(entry(TokenType::Service, 3600, 0))
            .await
            .unwrap();
        assert_eq!(
            tokens.unwrap(&plain).await.unwrap_err(),
            invalid_wrapping_token()
        );
        assert!(tokens.lookup(&plain).await.unwrap().is_some());
        let (e, answer) = tokens.unwrap(&live).await.unwrap();
        assert!(e.response_wrapping);
        assert_eq!(answer, b"{\"a\":1}");
        assert_eq!(
            tokens.unwrap(&live).await.unwrap_err(),
            invalid_wrapping_token()
        );
        assert!(view.list("wrapped/").await.unwrap().is_empty());
        assert!(tokens.lookup(&live).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn expired_tokens_are_gone() {
        let (_, tokens) = store().await;
        let (token, _) = tokens
            .create(entry(TokenType::Service, -1, 0))
            .await
            .unwrap();
        assert!(tokens.lookup(&token).await.unwrap().is_none());
    }
}
