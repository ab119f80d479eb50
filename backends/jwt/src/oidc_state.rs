//! Pending browser logins ("OAuth state", RFC 6749 §10.12), kept in the mount's storage so
//! that every server node sharing the store can finish a login another node started.
//!
//! * A login is stored under `oidc/state/<SHA-256 of the state>` (the state itself, which the
//!   browser carries, is never stored), with an index entry
//!   `oidc/expiry/<minute of expiry>/<same hash>` so expired logins are swept without reading
//!   them all.
//! * It expires [`STATE_TTL`] after `auth_url` (Vault: 10 minutes) and is used once: [`StateStore::take`]
//!   replaces it by a tombstone with a compare-and-set, so of two concurrent callbacks (on any
//!   nodes) exactly one gets it.
//! * The client nonce is kept as its SHA-256 only.

use authmount_framework::storage::ExpiryIndex;
use authmount_framework::{Alias, Auth, Error, Result, TokenParams, View};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// How long a pending login lives, in seconds (Vault: `oidcRequestTimeout`, 10 minutes).
pub const STATE_TTL: u64 = 600;

const STATE_PREFIX: &str = "oidc/state/";

/// The expiry index of the pending OIDC login states: `oidc/expiry/<minute>/<hash>`.
fn expiry_index() -> ExpiryIndex {
    ExpiryIndex::new("oidc/expiry/")
}

/// How the login started by `auth_url` finishes: the role's `callback_mode` when it started.
pub use crate::role::CallbackMode as Mode;

/// One pending login. Durations and times in Unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PendingLogin {
    /// The role, lower-cased.
    pub role: String,
    /// The redirect URI sent to the provider (the token request must repeat it, RFC 6749 §4.1.3).
    pub redirect_uri: String,
    /// The OpenID Connect `nonce` the ID token must carry (none for the device flow).
    pub nonce: String,
    /// The PKCE code verifier (RFC 7636 §4.1), for the code flow.
    pub code_verifier: String,
    /// True when the implicit `id_token` response type was asked for.
    pub implicit: bool,
    /// SHA-256 (hex) of the client nonce given to `auth_url`, or empty.
    pub client_nonce_hash: String,
    /// The role's `max_age` when the login started (0 = none).
    pub max_age: i64,
    /// When `auth_url` was called.
    pub created: u64,
    /// When this login expires.
    pub expires: u64,
    /// The address that called `auth_url` (shown on the direct mode's confirmation page).
    pub requester: String,
    /// How the login finishes.
    pub mode: Mode,
    /// The device code (device mode).
    pub device_code: String,
    /// What a form_post delivered: the code ...
    pub code: String,
    /// ... or the ID token.
    pub id_token: String,
    /// The finished login of direct mode, waiting for the poll.
    pub auth: Option<StoredAuth>,
    /// Set on the tombstone left by [`StateStore::take`].
    pub spent: bool,
}

impl PendingLogin {
    /// True when `client_nonce` is the one given to `auth_url` (a login started without one
    /// takes any). Compares hashes, so in constant time with respect to the secret.
    pub fn client_nonce_matches(&self, client_nonce: &str) -> bool {
        self.client_nonce_hash.is_empty() || self.client_nonce_hash == sha256_hex(client_nonce)
    }
}

/// A finished login kept for the poll of direct mode: [`Auth`] in a storable shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoredAuth {
    /// `Auth.alias.name`.
    pub alias_name: String,
    /// `Auth.alias.metadata`.
    pub alias_metadata: std::collections::BTreeMap<String, String>,
    /// `Auth.group_aliases`.
    pub group_aliases: Vec<String>,
    /// `Auth.metadata`.
    pub metadata: std::collections::BTreeMap<String, String>,
    /// `Auth.internal_data`.
    pub internal_data: Map<String, Value>,
    /// `Auth.token`.
    pub token: TokenParams,
}

impl From<&Auth> for StoredAuth {
    fn from(a: &Auth) -> Self {
        StoredAuth {
            alias_name: a.alias.name.clone(),
            alias_metadata: a.alias.metadata.clone(),
            group_aliases: a.group_aliases.clone(),
            metadata: a.metadata.clone(),
            internal_data: a.internal_data.clone(),
            token: a.token.clone(),
        }
    }
}

impl From<StoredAuth> for Auth {
    fn from(s: StoredAuth) -> Self {
        Auth {
            alias: Alias {
                name: s.alias_name,
                metadata: s.alias_metadata,
            },
            group_aliases: s.group_aliases,
            metadata: s.metadata,
            internal_data: s.internal_data,
            token: s.token,
        }
    }
}

/// The SHA-256 of `text`, in lower-case hex.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A login taken out of storage by [`StateStore::take`], with the tombstone now in its place.
pub struct Taken {
    /// The login as it was.
    pub login: PendingLogin,
    key: String,
    tombstone: Vec<u8>,
}

/// The pending logins of one mount.
pub struct StateStore<'a> {
    storage: &'a View,
}

impl<'a> StateStore<'a> {
    /// The store inside a mount's storage view.
    pub fn new(storage: &'a View) -> Self {
        StateStore { storage }
    }

    fn key(state: &str) -> String {
        format!("{STATE_PREFIX}{}", sha256_hex(state))
    }

    fn expiry_key(expires: u64, state: &str) -> String {
        expiry_index().key(expires, &sha256_hex(state))
    }

    /// Stores a new login under `state` (a fresh random value: an existing entry is an
    /// internal error, never overwritten). Errors: storage failures.
    pub async fn insert(&self, state: &str, login: &PendingLogin) -> Result<()> {
        let bytes = serde_json::to_vec(login).map_err(Error::internal)?;
        self.storage
            .put(&Self::expiry_key(login.expires, state), b"")
            .await?;
        if !self
            .storage
            .put_if_absent(&Self::key(state), &bytes)
            .await?
        {
            return Err(Error::internal("OAuth state collision"));
        }
        Ok(())
    }

    /// The live login under `state` with its stored bytes, or `None` when it is unknown,
    /// spent or expired at `now`.
    pub async fn get(&self, state: &str, now: u64) -> Result<Option<(PendingLogin, Vec<u8>)>> {
        if state.is_empty() {
            return Ok(None);
        }
        let Some(bytes) = self.storage.get(&Self::key(state)).await? else {
            return Ok(None);
        };
        let login: PendingLogin = serde_json::from_slice(&bytes)
            .map_err(|e| Error::internal(format!("corrupt OAuth state: {e}")))?;
        if login.spent || login.expires <= now {
            return Ok(None);
        }
        Ok(Some((login, bytes)))
    }

    /// Replaces the login read as `seen` by `login` (compare-and-set). False when it changed
    /// meanwhile (another request used or updated it).
    pub async fn update(&self, state: &str, seen: &[u8], login: &PendingLogin) -> Result<bool> {
        let bytes = serde_json::to_vec(login).map_err(Error::internal)?;
        self.storage
            .compare_and_put(&Self::key(state), Some(seen), &bytes)
            .await
    }

    /// Takes the live login under `state` out, once: a compare-and-set replaces it by a
    /// tombstone, so of concurrent takers exactly one gets it. `None` when it is unknown,
    /// spent, expired, or taken by another request first.
    pub async fn take(&self, state: &str, now: u64) -> Result<Option<Taken>> {
        let Some((login, bytes)) = self.get(state, now).await? else {
            return Ok(None);
        };
        let tombstone = serde_json::to_vec(&PendingLogin {
            spent: true,
            expires: login.expires,
            ..PendingLogin::default()
        })
        .map_err(Error::internal)?;
        let key = Self::key(state);
        if !self
            .storage
            .compare_and_put(&key, Some(&bytes), &tombstone)
            .await?
        {
            return Ok(None);
        }
        Ok(Some(Taken {
            login,
            key,
            tombstone,
        }))
    }

    /// Removes the tombstone of a taken login (the sweep removes it otherwise).
    pub async fn forget(&self, taken: &Taken) -> Result<()> {
        self.storage.delete(&taken.key).await
    }

    /// Puts a taken login back with changes (direct mode: the finished login for the poll),
    /// unless something replaced the tombstone meanwhile. True when stored.
    pub async fn put_back(&self, taken: &Taken, login: &PendingLogin) -> Result<bool> {
        let bytes = serde_json::to_vec(login).map_err(Error::internal)?;
        self.storage
            .compare_and_put(&taken.key, Some(&taken.tombstone), &bytes)
            .await
    }

    /// Deletes the logins (and tombstones) that expired before `now`, a minute at a time by
    /// their index; returns how many index entries went. Safe to run on several nodes at once.
    pub async fn sweep(&self, now: u64) -> Result<usize> {
        let mut removed = 0;
        for (index, hash) in expiry_index().due(self.storage, now).await? {
            self.storage
                .delete(&format!("{STATE_PREFIX}{hash}"))
                .await?;
            self.storage.delete(&index).await?;
            removed += 1;
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

    fn login(expires: u64) -> PendingLogin {
        PendingLogin {
            role: "r".into(),
            nonce: "n_1".into(),
            created: expires - STATE_TTL,
            expires,
            client_nonce_hash: sha256_hex("cn"),
            ..PendingLogin::default()
        }
    }

    #[tokio::test]
    async fn a_login_is_taken_once_and_the_state_is_not_stored() {
        let view = store();
        let states = StateStore::new(&view);
        states.insert("st_abc", &login(1000)).await.unwrap();
        assert!(view.list("oidc/state/").await.unwrap()[0] != "st_abc");
        let taken = states.take("st_abc", 500).await.unwrap().unwrap();
        assert_eq!(taken.login.role, "r");
        assert!(taken.login.client_nonce_matches("cn"));
        assert!(!taken.login.client_nonce_matches("cn2"));
        assert!(states.take("st_abc", 500).await.unwrap().is_none());
        assert!(states.get("st_abc", 500).await.unwrap().is_none());
        states.forget(&taken).await.unwrap();
        assert!(states.take("st_abc", 500).await.unwrap().is_none());
        assert!(states.take("st_other", 500).await.unwrap().is_none());
        assert!(states.take("", 500).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn concurrent_takers_get_it_once() {
        let view = store();
        let states = StateStore::new(&view);
        states.insert("st_race", &login(1000)).await.unwrap();
        let results = futures_util::future::join_all((0..16).map(|_| async {
            let states = StateStore::new(&view);
            states.take("st_race", 10).await.unwrap().is_some()
        }))
        .await;
        assert_eq!(results.iter().filter(|t| **t).count(), 1);
    }

    #[tokio::test]
    async fn expired_logins_are_refused_and_swept() {
        let view = store();
        let states = StateStore::new(&view);
        states.insert("st_old", &login(600)).await.unwrap();
        states.insert("st_new", &login(6000)).await.unwrap();
        assert!(states.get("st_old", 600).await.unwrap().is_none());
        assert!(states.get("st_old", 599).await.unwrap().is_some());
        assert_eq!(states.sweep(700).await.unwrap(), 1);
        assert_eq!(view.list("oidc/state/").await.unwrap().len(), 1);
        assert!(states.get("st_new", 700).await.unwrap().is_some());
        assert_eq!(states.sweep(700).await.unwrap(), 0);
        assert_eq!(states.sweep(7000).await.unwrap(), 1);
        assert!(view
            .list("oidc/")
            .await
            .unwrap()
            .iter()
            .all(|k| k != "state/"));
    }

    #[tokio::test]
    async fn a_taken_login_can_be_put_back_changed() {
        let view = store();
        let states = StateStore::new(&view);
        states.insert("st_d", &login(1000)).await.unwrap();
        let taken = states.take("st_d", 1).await.unwrap().unwrap();
        let mut done = taken.login.clone();
        done.auth = Some(StoredAuth {
            alias_name: "alice".into(),
            ..StoredAuth::default()
        });
        assert!(states.put_back(&taken, &done).await.unwrap());
        let (again, seen) = states.get("st_d", 1).await.unwrap().unwrap();
        assert_eq!(again.auth.unwrap().alias_name, "alice");
        let mut changed = done.clone();
        changed.code = "c".into();
        assert!(states.update("st_d", &seen, &changed).await.unwrap());
        assert!(!states.update("st_d", &seen, &changed).await.unwrap());
    }
}
