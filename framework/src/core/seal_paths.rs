//! The status and seal endpoints of the `sys/` path table: `sys/health`, `sys/init`,
//! `sys/seal-status`, `sys/unseal`, `sys/leader` (unauthenticated, answered before
//! initialisation and while sealed) and `sys/seal` (root-protected); the gate every other
//! request passes (initialised and unsealed); and the core's start-up. The work is done by
//! [`crate::seal::Seal`]; this file maps requests onto it and answers in Vault's shapes
//! (checked field by field against OpenBao 2.7.2).
//!
//! Source: Vault API `sys/health`, `sys/init`, `sys/seal-status`, `sys/unseal`, `sys/seal`,
//! `sys/leader`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::reply::health;
use super::{random_id, Core, CoreInner};
use crate::backend::BackendRequest;
use crate::error::{Error, Result};
use crate::path::{Field, FieldType, Path};
use crate::request::{Operation, Request};
use crate::response::{Reply, Response};
use crate::seal::{InitParams, SealKind, SealStatus, SEALED};

/// Paths answered before initialisation and while sealed (unauthenticated: no token can be
/// checked while sealed).
pub(super) fn is_status_path(path: &str) -> bool {
    matches!(
        path,
        "sys/health" | "sys/init" | "sys/seal-status" | "sys/unseal" | "sys/leader"
    )
}

/// The endpoints Vault serves in its HTTP layer rather than its router: a verb they do not
/// take is a 405 with an empty error list ([`Error::MethodNotAllowed`]), before any token is
/// looked at.
pub(super) fn is_http_endpoint(path: &str) -> bool {
    is_status_path(path) || path == "sys/seal"
}

/// The date of the commit the binary was built from, RFC 3339 UTC (see `framework/build.rs`),
/// or empty.
const COMMIT_DATE: &str = env!("AUTHMOUNT_COMMIT_DATE");

/// The status and seal entries of the `sys/` path table, their handlers bound to the core.
pub(super) fn paths(core: &Weak<CoreInner>) -> Vec<Path> {
    use FieldType::*;
    vec![
        Path::new("health")
            .help("Health of the server: 200 when initialised, unsealed and the storage answers; 501 before initialisation; 503 while sealed or when the storage does not answer. Each code can be changed with a query parameter (activecode, uninitcode, sealedcode, ...).")
            .fields(super::health_params::fields())
            .unauthenticated()
            .read(core, CoreInner::read_health),
        Path::new("init")
            .help("Whether the server is initialised; a write initialises it once and answers the first root token and, for a Shamir seal, the unseal keys.")
            .fields([
                Field::new("secret_shares", Int, "The number of unseal keys to make (Shamir seal; 1 to 255)."),
                Field::new("secret_threshold", Int, "How many unseal keys rebuild the root key (Shamir seal; 1 to secret_shares)."),
            ])
            .unauthenticated()
            .read(core, CoreInner::read_init)
            .update(core, CoreInner::write_init),
        Path::new("seal-status")
            .help("The seal's status: its type, whether it is initialised and sealed, the threshold, the number of keys and the unseal progress.")
            .unauthenticated()
            .read(core, CoreInner::read_seal_status),
        Path::new("unseal")
            .help("Give one unseal key (hex or base64); the threshold of keys unseals the server. `reset` forgets the keys given so far.")
            .fields([
                Field::new("key", String, "One unseal key, hex or base64.").sensitive(),
                Field::new("reset", Bool, "Forget the unseal keys given so far."),
            ])
            .unauthenticated()
            .update(core, CoreInner::write_unseal),
        Path::new("seal")
            .help("Seal the server: the keyring leaves memory and every request but the status endpoints answers 503 until it is unsealed.")
            .sudo()
            .update(core, CoreInner::write_seal),
        Path::new("leader")
            .help("High availability status: this server has no leader election (every node serves).")
            .unauthenticated()
            .read(core, CoreInner::read_leader),
    ]
}

/// What `sys/init` made: the first root token and, for a Shamir seal, the unseal keys.
struct InitAnswer {
    /// The root token (shown once; stored only as a hash).
    root_token: String,
    /// The unseal keys (raw bytes; empty unless the seal is Shamir).
    keys: Vec<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for InitAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InitAnswer { .. }")
    }
}

impl Core {
    /// Brings the seal up when the server starts. A static seal unseals itself; storage
    /// written in the clear by an earlier version is encrypted in place first (one
    /// transaction). With Shamir keys such a store waits for `sys/init`, which encrypts it.
    /// Returns how many values were encrypted in place. Errors: a static key that does not
    /// open the storage, or storage initialized with another kind of seal (fix the config);
    /// 503 when storage does not answer (the seal retries on the next request).
    pub async fn start(&self) -> Result<usize> {
        let inner = &self.inner;
        if inner.seal.is_plain() {
            return Ok(0);
        }
        if let Err(e) = inner.storage.ping().await {
            tracing::warn!(
                target: "authmount::seal",
                error = %e,
                "storage does not answer: the seal opens at the first request after it is back"
            );
            return Ok(0);
        }
        match inner.seal.kind() {
            SealKind::Plain => Ok(0),
            SealKind::Static { .. } => {
                if inner.seal.holds_plain_store().await? {
                    let outcome = inner.seal.init(&InitParams::default()).await?;
                    return Ok(outcome.migrated);
                }
                inner.seal.auto_unseal().await?;
                Ok(0)
            }
            SealKind::Shamir => {
                if inner.seal.holds_plain_store().await? {
                    tracing::warn!(
                        target: "authmount::seal",
                        "this storage was written in the clear by an earlier authmount: \
                         `authmount operator init` (PUT sys/init) encrypts it in place under \
                         new unseal keys; until then requests answer 503"
                    );
                }
                Ok(0)
            }
        }
    }

    /// True when the store is initialized: its seal exists (or, without a seal, `sys/init`
    /// or dev mode created the first root token).
    pub async fn is_initialized(&self) -> Result<bool> {
        self.inner.is_initialized().await
    }

    /// True while the seal holds no keyring in memory.
    pub fn is_sealed(&self) -> bool {
        self.inner.seal.is_sealed()
    }

    /// The seal's status (`sys/seal-status`). Errors: 503 when storage does not answer.
    pub async fn seal_status(&self) -> Result<SealStatus> {
        self.inner.seal.status().await
    }

    /// Initializes the store once with the default parameters: a seal that needs none (a
    /// static seal, or no seal) and the first root token, which is returned (it is stored
    /// only as a hash). `None` when the store was already initialized, by this node or
    /// another. Errors: 400 for a Shamir seal (it needs `secret_shares`); 503 when storage
    /// does not answer.
    pub async fn initialize(&self) -> Result<Option<String>> {
        Ok(self
            .inner
            .initialize(&InitParams::default())
            .await?
            .map(|a| a.root_token))
    }

    /// Dev mode: initializes the store if needed (a Shamir seal with one unseal key, kept
    /// unsealed), creates a root token with the given id (replacing any with that id), and
    /// returns the unseal key in base64 (`None` without a seal, or when already
    /// initialized). Vault makes a dev root token of a given id with `auth/token/create`,
    /// so its lookup shows `display_name: token` and `path: auth/token/create`.
    pub async fn dev_init(&self, root_token: &str) -> Result<Option<String>> {
        let inner = &self.inner;
        if inner.seal.is_plain() {
            inner.write_dev_root_token(root_token).await?;
            inner.initialized.store(true, Ordering::Release);
            return Ok(None);
        }
        let mut unseal_key = None;
        if !inner.seal.is_initialized().await? {
            let params = match inner.seal.kind() {
                SealKind::Shamir => InitParams {
                    secret_shares: 1,
                    secret_threshold: 1,
                },
                _ => InitParams::default(),
            };
            let outcome = inner.seal.init(&params).await?;
            unseal_key = outcome.keys.first().map(|k| BASE64.encode(k.as_slice()));
        }
        inner.require_unsealed().await?;
        inner.write_dev_root_token(root_token).await?;
        Ok(unseal_key)
    }
}

impl CoreInner {
    pub(super) async fn is_initialized(&self) -> Result<bool> {
        if !self.seal.is_plain() {
            return self.seal.is_initialized().await;
        }
        if self.initialized.load(Ordering::Acquire) {
            return Ok(true);
        }
        let done = self.core_view.get("init").await?.is_some();
        self.initialized.store(done, Ordering::Release);
        Ok(done)
    }

    /// What every request but those on the status paths passes: 503 `Vault is sealed`
    /// while sealed or not initialised (a core without a seal names `sys/init` instead). `sys/seal` on a sealed (or not initialised)
    /// server answers here, as in OpenBao: 204 for a write (there is nothing to seal, and no
    /// token can be checked while sealed), 405 for another verb.
    pub(super) async fn gate(&self, req: &Request, path: &str) -> Result<Option<Reply>> {
        let ready = match self.is_initialized().await? {
            true => self.require_unsealed().await,
            // With a seal, a server not initialised yet is sealed (OpenBao's answer).
            false if !self.seal.is_plain() => Err(Error::Unavailable(SEALED.into())),
            false => Err(Error::Unavailable(
                "authmount is not initialized: PUT /v1/sys/init (or `authmount operator init`) first"
                    .into(),
            )),
        };
        match ready {
            Ok(()) => Ok(None),
            Err(_) if path == "sys/seal" && !req.help && self.seal.is_sealed() => {
                match req.operation {
                    Operation::Update => Ok(Some(Reply::no_content())),
                    _ => Err(Error::MethodNotAllowed),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Fails with 503 `Vault is sealed` unless unsealed; a static seal that could not
    /// unseal at start (storage was down) tries again here.
    async fn require_unsealed(&self) -> Result<()> {
        if !self.seal.is_sealed() {
            return Ok(());
        }
        if self.seal.may_auto_unseal() && self.seal.auto_unseal().await? {
            return Ok(());
        }
        Err(Error::Unavailable(SEALED.into()))
    }

    /// Initializes the seal (see [`crate::seal::Seal::init`]: shares for a Shamir seal,
    /// values written in the clear encrypted in place) and creates the first root token.
    /// A Shamir seal is sealed again afterwards, as in Vault; a static seal stays unsealed.
    /// `None` when already initialized. Errors: 400 for bad parameters.
    async fn initialize(&self, params: &InitParams) -> Result<Option<InitAnswer>> {
        if self.is_initialized().await? {
            return Ok(None);
        }
        let token = format!("hvs.{}", random_id(24));
        if self.seal.is_plain() {
            self.create_root_token(&token).await?;
            if !self
                .core_view
                .put_if_absent("init", &self.init_marker()?)
                .await?
            {
                // Another node won the race: its root token stands, ours goes.
                if let Some(found) = self.tokens.lookup(&token).await? {
                    self.tokens.revoke(&found).await?;
                }
                return Ok(None);
            }
            self.initialized.store(true, Ordering::Release);
            return Ok(Some(InitAnswer {
                root_token: token,
                keys: vec![],
            }));
        }
        let outcome = match self.seal.init(params).await {
            Ok(outcome) => outcome,
            // Another node initialized meanwhile.
            Err(_) if self.seal.is_initialized().await.unwrap_or(false) => return Ok(None),
            Err(e) => return Err(e),
        };
        let written = self.write_root_token(&token).await;
        if matches!(self.seal.kind(), SealKind::Shamir) {
            self.seal.seal()?;
        }
        written?;
        tracing::info!(target: "authmount::seal", migrated = outcome.migrated, "initialized");
        Ok(Some(InitAnswer {
            root_token: token,
            keys: outcome.keys,
        }))
    }

    /// Dev mode's root token with the given id (see [`Core::dev_init`]), and the store
    /// marked initialized.
    async fn write_dev_root_token(&self, token: &str) -> Result<()> {
        let entry = super::login::new_entry(
            &self.clock,
            vec!["root".into()],
            "token".into(),
            "auth/token/create".into(),
            0,
            0,
            &crate::response::TokenParams::default(),
        );
        self.tokens.create_with_id(token, entry).await?;
        self.core_view
            .put_if_absent("init", &self.init_marker()?)
            .await?;
        Ok(())
    }

    /// Creates a root token with the given id (replacing any with that id) and marks the
    /// store initialized.
    async fn write_root_token(&self, token: &str) -> Result<()> {
        self.create_root_token(token).await?;
        self.core_view
            .put_if_absent("init", &self.init_marker()?)
            .await?;
        Ok(())
    }

    fn init_marker(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(&json!({ "time": self.clock.unix() })).map_err(Error::internal)
    }

    /// `sys/health`: 200 when initialized, unsealed and the storage answers; 501 when not
    /// initialized; 503 when sealed or the storage does not answer (Vault's codes).
    async fn read_health(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let codes = match super::health_params::parse(&req.fields) {
            Ok(codes) => codes,
            Err(refusal) => return Ok(Response::raw(refusal)),
        };
        let storage = self.storage.ping().await;
        // Known from before when the storage does not answer now.
        let initialized = self.is_initialized().await.unwrap_or(false);
        let sealed = self.seal.is_sealed()
            && !(initialized
                && self.seal.may_auto_unseal()
                && self.seal.auto_unseal().await.unwrap_or(false));
        let mut body = health(&self.clock);
        body["initialized"] = json!(initialized);
        body["sealed"] = json!(sealed);
        body["standby"] = json!(sealed);
        if sealed {
            // OpenBao's sealed answer: no cluster yet, replication unknown.
            body["replication_performance_mode"] = json!("unknown");
            body["replication_dr_mode"] = json!("unknown");
            if let Some(b) = body.as_object_mut() {
                b.remove("cluster_name");
            }
        }
        if storage.is_ok() && initialized && !sealed {
            let from_seal = self.seal.status().await.ok().and_then(|s| s.cluster_id);
            if let Ok(Some(id)) = self.cluster_id(from_seal).await {
                body["cluster_id"] = json!(id);
            }
        }
        let status = match &storage {
            Err(e) => {
                body["storage_error"] = json!(e.to_string());
                503
            }
            Ok(()) if !initialized => codes.uninit,
            Ok(()) if sealed => codes.sealed,
            Ok(()) => codes.active,
        };
        Ok(Response::raw(Reply {
            status,
            body: Some(body),
        }))
    }

    /// `GET sys/init` → `{"initialized": bool}`.
    async fn read_init(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        let initialized = self.is_initialized().await?;
        Ok(Response::raw(Reply::ok(
            json!({ "initialized": initialized }),
        )))
    }

    /// `PUT sys/init` → the root token and the unseal keys once, then 400.
    async fn write_init(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let params = InitParams {
            secret_shares: req.fields.int("secret_shares").unwrap_or(0),
            secret_threshold: req.fields.int("secret_threshold").unwrap_or(0),
        };
        let answer = self
            .initialize(&params)
            .await?
            .ok_or_else(|| Error::invalid("Vault is already initialized"))?;
        let hex_keys: Vec<String> = answer
            .keys
            .iter()
            .map(|k| hex::encode(k.as_slice()))
            .collect();
        let b64_keys: Vec<String> = answer
            .keys
            .iter()
            .map(|k| BASE64.encode(k.as_slice()))
            .collect();
        Ok(Response::raw(Reply::ok(json!({
            "keys": hex_keys,
            "keys_base64": b64_keys,
            "root_token": answer.root_token,
        }))))
    }

    async fn read_seal_status(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        let mut status = self.seal.status().await?;
        status.cluster_id = self.cluster_id(status.cluster_id.take()).await?;
        Ok(Response::raw(Reply::ok(status_json(&status))))
    }

    /// The cluster id that `sys/health` and `sys/seal-status` show once initialized and
    /// unsealed: the seal's (made at init), or, for a core without a seal, one made at its
    /// first use and kept in storage (the same on every node). `None` while sealed or
    /// before initialization.
    async fn cluster_id(&self, from_seal: Option<String>) -> Result<Option<String>> {
        if from_seal.is_some() || self.seal.is_sealed() || !self.is_initialized().await? {
            return Ok(from_seal);
        }
        let fresh = uuid::Uuid::new_v4().to_string();
        self.core_view
            .put_if_absent("cluster_id", fresh.as_bytes())
            .await?;
        let stored = self.core_view.get("cluster_id").await?;
        Ok(stored.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// `PUT sys/unseal {"key": "<hex or base64>"}` or `{"reset": true}`.
    async fn write_unseal(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let status = self
            .seal
            .unseal(
                req.fields.str("key"),
                req.fields.bool("reset").unwrap_or(false),
            )
            .await?;
        Ok(Response::raw(Reply::ok(status_json(&status))))
    }

    /// `PUT sys/seal` (the pipeline checked `sudo` on `sys/seal`; a sealed server answered
    /// 204 at the gate).
    async fn write_seal(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        if self.seal.is_plain() {
            return Err(Error::invalid(
                "this server has no seal (its storage is not encrypted): it cannot be sealed",
            ));
        }
        self.seal.seal()?;
        Ok(Response::raw(Reply::no_content()))
    }

    /// `GET sys/leader`: one kind of node only, no leader election (Vault's answer without
    /// HA).
    async fn read_leader(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        Ok(Response::raw(Reply::ok(json!({ "ha_enabled": false }))))
    }
}

/// Vault's `sys/seal-status` body (OpenBao 2.7.2's fields).
fn status_json(s: &SealStatus) -> Value {
    let mut body = json!({
        "type": s.kind,
        "initialized": s.initialized,
        "sealed": s.sealed,
        "t": s.threshold,
        "n": s.shares,
        "progress": s.progress,
        "nonce": s.nonce,
        "recovery_seal": s.kind == "static",
        "version": env!("CARGO_PKG_VERSION"),
        "commit_date": COMMIT_DATE,
        "migration": false,
        "storage_type": s.storage_type,
    });
    if s.kind == "static" {
        body["recovery_seal_type"] = json!("shamir");
    }
    if !s.sealed {
        if let Some(id) = &s.cluster_id {
            body["cluster_name"] = json!("authmount");
            body["cluster_id"] = json!(id);
        }
    }
    body
}
