//! The seal's endpoints and the core's start-up: `sys/init`, `sys/seal-status`,
//! `sys/unseal`, `sys/seal`, `sys/leader` and `sys/health`, which all answer while sealed.
//! The work is done by [`crate::seal::Seal`]; this file maps requests onto it and answers in
//! Vault's shapes (checked field by field against OpenBao 2.7.2).
//!
//! Source: Vault API `sys/init`, `sys/seal-status`, `sys/unseal`, `sys/seal`, `sys/health`,
//! `sys/leader`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::reply::health;
use super::{body_field, random_id, Core};
use crate::error::{Error, Result};
use crate::path::FieldType;
use crate::request::{Operation, Request};
use crate::response::Reply;
use crate::seal::{InitParams, SealKind, SealStatus, SEALED};
use crate::token::now_unix;

/// What `sys/init` made: the first root token and, for a Shamir seal, the unseal keys.
pub struct InitAnswer {
    /// The root token (shown once; stored only as a hash).
    pub root_token: String,
    /// The unseal keys (raw bytes; empty unless the seal is Shamir).
    pub keys: Vec<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for InitAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InitAnswer { .. }")
    }
}

/// 405 with Vault's empty error list (what OpenBao answers for a wrong verb on these paths).
fn method_not_allowed() -> Result<Reply> {
    Ok(Reply {
        status: 405,
        body: Some(json!({ "errors": [] })),
    })
}

/// The build date the binary was given (`AUTHMOUNT_BUILD_DATE` at build time), or empty.
const BUILD_DATE: &str = match option_env!("AUTHMOUNT_BUILD_DATE") {
    Some(d) => d,
    None => "",
};

impl Core {
    /// Answers the endpoints that work while sealed; `None` for any other path.
    pub(super) async fn seal_endpoint(&self, path: &str, req: &Request) -> Option<Result<Reply>> {
        let op = req.operation;
        Some(match path {
            "sys/health" => match op {
                Operation::Read => Ok(self.health().await),
                _ => Err(Error::UnsupportedOperation),
            },
            "sys/init" => self.init_endpoint(req).await,
            "sys/seal-status" => match op {
                Operation::Read => self.seal_status_reply().await,
                _ => method_not_allowed(),
            },
            "sys/unseal" => match op {
                Operation::Update => self.unseal_endpoint(req).await,
                _ => method_not_allowed(),
            },
            "sys/seal" => match op {
                Operation::Update => self.seal_now(req).await,
                _ => method_not_allowed(),
            },
            "sys/leader" => match op {
                // One kind of node only: no leader election (Vault's answer without HA).
                Operation::Read => Ok(Reply::ok(json!({ "ha_enabled": false }))),
                _ => method_not_allowed(),
            },
            _ => return None,
        })
    }

    /// Brings the seal up when the server starts. A static seal unseals itself; storage
    /// written in the clear by an earlier version is encrypted in place first (one
    /// transaction). With Shamir keys such a store waits for `sys/init`, which encrypts it.
    /// Returns how many values were encrypted in place. Errors: a static key that does not
    /// open the storage, or storage initialized with another kind of seal (fix the config);
    /// 503 when storage does not answer (the seal retries on the next request).
    pub async fn start(&self) -> Result<usize> {
        if self.seal.is_plain() {
            return Ok(0);
        }
        if let Err(e) = self.storage.ping().await {
            tracing::warn!(
                target: "authmount::seal",
                error = %e,
                "storage does not answer: the seal opens at the first request after it is back"
            );
            return Ok(0);
        }
        match self.seal.kind() {
            SealKind::Plain => Ok(0),
            SealKind::Static { .. } => {
                if self.seal.holds_plain_store().await? {
                    let outcome = self.seal.init(&InitParams::default()).await?;
                    return Ok(outcome.migrated);
                }
                self.seal.auto_unseal().await?;
                Ok(0)
            }
            SealKind::Shamir => {
                if self.seal.holds_plain_store().await? {
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
        use std::sync::atomic::Ordering;
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

    /// True while the seal holds no keyring in memory.
    pub fn is_sealed(&self) -> bool {
        self.seal.is_sealed()
    }

    /// The seal's status (`sys/seal-status`). Errors: 503 when storage does not answer.
    pub async fn seal_status(&self) -> Result<SealStatus> {
        self.seal.status().await
    }

    /// Initializes the store once with the default parameters: a seal that needs none (a
    /// static seal, or no seal) and the first root token, which is returned (it is stored
    /// only as a hash). `None` when the store was already initialized, by this node or
    /// another. Errors: 400 for a Shamir seal (it needs `secret_shares`); 503 when storage
    /// does not answer.
    pub async fn initialize(&self) -> Result<Option<String>> {
        Ok(self
            .initialize_with(&InitParams::default())
            .await?
            .map(|a| a.root_token))
    }

    /// `sys/init`: initializes the seal (see [`crate::seal::Seal::init`]: shares for a
    /// Shamir seal, values written in the clear encrypted in place) and creates the first
    /// root token. A Shamir seal is sealed again afterwards, as in Vault; a static seal
    /// stays unsealed. `None` when already initialized. Errors: 400 for bad parameters.
    pub async fn initialize_with(&self, params: &InitParams) -> Result<Option<InitAnswer>> {
        if self.is_initialized().await? {
            return Ok(None);
        }
        if self.seal.is_plain() {
            let token = format!("hvs.{}", random_id(24));
            self.create_root_token(&token).await?;
            if !self
                .core_view
                .put_if_absent("init", &init_marker()?)
                .await?
            {
                // Another node won the race: its root token stands, ours goes.
                if let Some(found) = self.tokens.lookup(&token).await? {
                    self.tokens.revoke(&found).await?;
                }
                return Ok(None);
            }
            self.initialized
                .store(true, std::sync::atomic::Ordering::Release);
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
        let token = format!("hvs.{}", random_id(24));
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

    async fn write_root_token(&self, token: &str) -> Result<()> {
        self.create_root_token(token).await?;
        self.core_view
            .put_if_absent("init", &init_marker()?)
            .await?;
        Ok(())
    }

    /// Dev mode: initializes the store if needed (a Shamir seal with one unseal key, kept
    /// unsealed), creates a root token with the given id (replacing any with that id), and
    /// returns the unseal key in base64 (`None` without a seal, or when already
    /// initialized).
    pub async fn dev_initialize(&self, root_token_id: &str) -> Result<Option<String>> {
        let mut unseal_key = None;
        if self.seal.is_plain() {
            self.create_root_token(root_token_id).await?;
            self.core_view.put_if_absent("init", b"{}").await?;
            self.initialized
                .store(true, std::sync::atomic::Ordering::Release);
            return Ok(None);
        }
        if !self.seal.is_initialized().await? {
            let params = match self.seal.kind() {
                SealKind::Shamir => InitParams {
                    secret_shares: 1,
                    secret_threshold: 1,
                },
                _ => InitParams::default(),
            };
            let outcome = self.seal.init(&params).await?;
            unseal_key = outcome.keys.first().map(|k| BASE64.encode(k.as_slice()));
        }
        self.require_unsealed().await?;
        self.write_root_token(root_token_id).await?;
        Ok(unseal_key)
    }

    /// Creates a root token with the given id (dev mode), replacing any with that id, and
    /// marks the store initialized; see [`Core::dev_initialize`].
    pub async fn dev_root_token(&self, id: &str) -> Result<()> {
        self.dev_initialize(id).await.map(|_| ())
    }

    /// Fails with 503 `Vault is sealed` unless unsealed; a static seal that could not
    /// unseal at start (storage was down) tries again here.
    pub(super) async fn require_unsealed(&self) -> Result<()> {
        if !self.seal.is_sealed() {
            return Ok(());
        }
        if self.seal.may_auto_unseal() && self.seal.auto_unseal().await? {
            return Ok(());
        }
        Err(Error::Unavailable(SEALED.into()))
    }

    /// `sys/health`: 200 when initialized, unsealed and the storage answers; 501 when not
    /// initialized; 503 when sealed or the storage does not answer (Vault's codes).
    async fn health(&self) -> Reply {
        let storage = self.storage.ping().await;
        let initialized = match &storage {
            Ok(()) => self.is_initialized().await.unwrap_or(false),
            Err(_) => false,
        };
        let sealed = self.seal.is_sealed()
            && !(initialized
                && self.seal.may_auto_unseal()
                && self.seal.auto_unseal().await.unwrap_or(false));
        let mut body = health();
        body["initialized"] = json!(initialized);
        body["sealed"] = json!(sealed);
        body["standby"] = json!(sealed);
        let status = match &storage {
            Err(e) => {
                body["storage_error"] = json!(e.to_string());
                503
            }
            Ok(()) if !initialized => 501,
            Ok(()) if sealed => 503,
            Ok(()) => 200,
        };
        Reply {
            status,
            body: Some(body),
        }
    }

    /// `GET sys/init` → `{"initialized": bool}`; `PUT sys/init` → the root token and the
    /// unseal keys once, then 400. Unauthenticated, as in Vault.
    async fn init_endpoint(&self, req: &Request) -> Result<Reply> {
        match req.operation {
            Operation::Read => Ok(Reply::ok(
                json!({ "initialized": self.is_initialized().await? }),
            )),
            Operation::Update => {
                let int = |name: &str| -> Result<i64> {
                    Ok(body_field(req, name, FieldType::Int)?
                        .and_then(|v| v.as_i64())
                        .unwrap_or(0))
                };
                let params = InitParams {
                    secret_shares: int("secret_shares")?,
                    secret_threshold: int("secret_threshold")?,
                };
                let answer = self
                    .initialize_with(&params)
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
                Ok(Reply::ok(json!({
                    "keys": hex_keys,
                    "keys_base64": b64_keys,
                    "root_token": answer.root_token,
                })))
            }
            _ => Err(Error::UnsupportedOperation),
        }
    }

    async fn seal_status_reply(&self) -> Result<Reply> {
        Ok(Reply::ok(status_json(&self.seal.status().await?)))
    }

    /// `PUT sys/unseal {"key": "<hex or base64>"}` or `{"reset": true}`.
    async fn unseal_endpoint(&self, req: &Request) -> Result<Reply> {
        let key = body_field(req, "key", FieldType::String)?;
        let reset = body_field(req, "reset", FieldType::Bool)?
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let status = self
            .seal
            .unseal(key.as_ref().and_then(Value::as_str), reset)
            .await?;
        Ok(Reply::ok(status_json(&status)))
    }

    /// `PUT sys/seal`: needs `sudo` on `sys/seal` (a root token has it). A sealed (or not
    /// yet initialized) server answers 204 at once, as Vault does.
    async fn seal_now(&self, req: &Request) -> Result<Reply> {
        if self.seal.is_plain() {
            self.authorize(req, "sys/seal", true).await?;
            return Err(Error::invalid(
                "this server has no seal (its storage is not encrypted): it cannot be sealed",
            ));
        }
        if self.seal.is_sealed() || !self.is_initialized().await? {
            return Ok(Reply::no_content());
        }
        self.authorize(req, "sys/seal", true).await?;
        self.seal.seal()?;
        Ok(Reply::no_content())
    }
}

fn init_marker() -> Result<Vec<u8>> {
    serde_json::to_vec(&json!({ "time": now_unix() })).map_err(Error::internal)
}

/// Vault's `sys/seal-status` body (OpenBao 2.7.2's fields; `build_date` as Vault names it,
/// `commit_date` as OpenBao does).
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
        "build_date": BUILD_DATE,
        "commit_date": BUILD_DATE,
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
