//! The token store: issues, looks up, renews and revokes Vault tokens.
//!
//! * Service tokens (`hvs.` + 32 base62 characters, about 190 bits from the OS CSPRNG) are
//!   stored only under a keyed hash (HMAC-SHA256 with a per-storage secret), so a read of
//!   storage never yields a usable token. Each has an accessor (24 base62 characters).
//! * Batch tokens (`hvb.` + base64url) are not stored: they carry their own entry, sealed
//!   with ChaCha20-Poly1305 under a per-storage key. They cannot be renewed or revoked and
//!   have no accessor.
//!
//! Source: Vault token semantics (reference §1.4, §4.7).

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
use crate::storage::View;

/// A token's stored state. Times are Unix seconds; durations seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// The accessor (empty for batch tokens).
    pub accessor: String,
    /// Final policies, sorted and deduplicated (`default` included unless refused).
    pub policies: Vec<String>,
    /// Policies that came from the role (`token_policies` in the login answer).
    pub token_policies: Vec<String>,
    /// Login metadata (`meta` on lookup).
    pub meta: BTreeMap<String, String>,
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
    /// Uses left (0 = unlimited).
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
    keys: tokio::sync::OnceCell<Keys>,
    uses_lock: tokio::sync::Mutex<()>,
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
            keys: tokio::sync::OnceCell::new(),
            uses_lock: tokio::sync::Mutex::new(()),
        }
    }

    async fn keys(&self) -> Result<&Keys> {
        self.keys
            .get_or_try_init(|| async {
                let fresh = Keyring {
                    hmac_key: hex::encode(random_key()),
                    batch_key: hex::encode(random_key()),
                };
                let bytes = serde_json::to_vec(&fresh).map_err(Error::internal)?;
                self.storage.put_if_absent("keyring", &bytes).await?;
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
            return Ok((token, entry));
        }
        let token = format!("hvs.{}", Alphanumeric.sample_string(&mut OsRng, 32));
        entry.accessor = Alphanumeric.sample_string(&mut OsRng, 24);
        self.store(&token, &entry).await?;
        Ok((token, entry))
    }

    /// Stores a token under a chosen id (dev mode's `-dev-root-token-id`).
    pub async fn create_with_id(&self, token: &str, mut entry: TokenEntry) -> Result<TokenEntry> {
        entry.accessor = Alphanumeric.sample_string(&mut OsRng, 24);
        self.store(token, &entry).await?;
        Ok(entry)
    }

    /// Writes the entry, its accessor index and its parent link in one batch.
    async fn store(&self, token: &str, entry: &TokenEntry) -> Result<()> {
        let hash = self.keys().await?.hash(token);
        let mut batch = vec![
            (
                format!("id/{hash}"),
                serde_json::to_vec(entry).map_err(Error::internal)?,
            ),
            (format!("accessor/{}", entry.accessor), hash.into_bytes()),
        ];
        if !entry.parent_accessor.is_empty() {
            let link = format!("parent/{}/{}", entry.parent_accessor, entry.accessor);
            batch.push((link, Vec::new()));
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
            let Some(entry) = Self::open_batch(keys, token).filter(|e| !e.expired(now)) else {
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
        let Some(entry) = self
            .storage
            .get_json::<TokenEntry>(&format!("id/{hash}"))
            .await?
        else {
            return Ok(None);
        };
        let found = StoredToken {
            key: Some(hash.to_string()),
            entry,
        };
        if found.entry.expired(self.clock.unix()) {
            Box::pin(self.revoke(&found)).await?;
            return Ok(None);
        }
        Ok(Some(found))
    }

    /// Checks `token` for one use from `addr` and counts the use: unknown, dead, or
    /// out-of-CIDR tokens give 403; a token on its last use is revoked after it.
    pub async fn use_token(&self, token: &str, addr: Option<IpAddr>) -> Result<StoredToken> {
        let found = self.lookup(token).await?.ok_or(Error::PermissionDenied)?;
        if !found.entry.allows(addr) {
            return Err(Error::PermissionDenied);
        }
        if found.entry.num_uses == 0 || found.key.is_none() {
            return Ok(found);
        }
        let _guard = self.uses_lock.lock().await;
        let mut found = self.lookup(token).await?.ok_or(Error::PermissionDenied)?;
        found.entry.num_uses -= 1;
        if found.entry.num_uses <= 0 {
            self.revoke(&found).await?;
            found.entry.num_uses = -1;
        } else {
            self.save(&found).await?;
        }
        Ok(found)
    }

    /// Stores a changed entry (renewal). Batch tokens cannot change.
    pub async fn save(&self, token: &StoredToken) -> Result<()> {
        match &token.key {
            Some(hash) => {
                self.storage
                    .put_json(&format!("id/{hash}"), &token.entry)
                    .await
            }
            None => Err(Error::invalid("batch tokens cannot be changed")),
        }
    }

    /// Revokes a stored token and, recursively, its children.
    pub async fn revoke(&self, token: &StoredToken) -> Result<()> {
        let Some(hash) = &token.key else {
            return Err(Error::invalid("batch tokens cannot be revoked"));
        };
        let accessor = &token.entry.accessor;
        for child in self.storage.list(&format!("parent/{accessor}/")).await? {
            if let Some(found) = self.lookup_accessor(&child).await? {
                Box::pin(self.revoke(&found)).await?;
            }
            self.storage
                .delete(&format!("parent/{accessor}/{child}"))
                .await?;
        }
        if !token.entry.parent_accessor.is_empty() {
            self.storage
                .delete(&format!(
                    "parent/{}/{accessor}",
                    token.entry.parent_accessor
                ))
                .await?;
        }
        self.storage.delete(&format!("id/{hash}")).await?;
        self.storage.delete(&format!("accessor/{accessor}")).await
    }

    /// Removes every expired stored token (the background sweep); returns how many.
    pub async fn sweep_expired(&self) -> Result<usize> {
        let now = self.clock.unix();
        let mut removed = 0;
        for hash in self.storage.list("id/").await? {
            let Some(entry) = self
                .storage
                .get_json::<TokenEntry>(&format!("id/{hash}"))
                .await?
            else {
                continue;
            };
            if entry.expired(now) {
                let found = StoredToken {
                    key: Some(hash),
                    entry,
                };
                self.revoke(&found).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Revokes a stored token but not its children, which become orphans (Vault
    /// `auth/token/revoke-orphan`).
    pub async fn revoke_orphan(&self, token: &StoredToken) -> Result<()> {
        let Some(hash) = &token.key else {
            return Err(Error::invalid("batch tokens cannot be revoked"));
        };
        let accessor = &token.entry.accessor;
        for child in self.storage.list(&format!("parent/{accessor}/")).await? {
            if let Some(mut found) = self.lookup_accessor(&child).await? {
                found.entry.parent_accessor.clear();
                self.save(&found).await?;
            }
            self.storage
                .delete(&format!("parent/{accessor}/{child}"))
                .await?;
        }
        if !token.entry.parent_accessor.is_empty() {
            self.storage
                .delete(&format!(
                    "parent/{}/{accessor}",
                    token.entry.parent_accessor
                ))
                .await?;
        }
        self.storage.delete(&format!("id/{hash}")).await?;
        self.storage.delete(&format!("accessor/{accessor}")).await
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
    use crate::storage::InMemory;
    use std::sync::Arc;

    fn entry(kind: TokenType, ttl: i64, uses: i64) -> TokenEntry {
        let now = Clock::system().unix();
        TokenEntry {
            accessor: String::new(),
            policies: vec!["default".into()],
            token_policies: vec!["default".into()],
            meta: BTreeMap::new(),
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
        }
    }

    async fn store() -> (View, TokenStore) {
        let view = View::new(Arc::new(InMemory::new()), "core/token/");
        (view.clone(), TokenStore::open(view, Clock::system()))
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

    #[tokio::test]
    async fn revoking_a_parent_revokes_its_children() {
        let (_, tokens) = store().await;
        let (parent, p) = tokens
            .create(entry(TokenType::Service, 60, 0))
            .await
            .unwrap();
        let mut child = entry(TokenType::Service, 60, 0);
        child.parent_accessor = p.accessor.clone();
        let (child, c) = tokens.create(child).await.unwrap();
        let mut grandchild = entry(TokenType::Service, 60, 0);
        grandchild.parent_accessor = c.accessor.clone();
        let (grandchild, _) = tokens.create(grandchild).await.unwrap();
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
            .create(entry(TokenType::Service, 60, 0))
            .await
            .unwrap();
        assert_eq!(view.list("id/").await.unwrap().len(), 2);
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
