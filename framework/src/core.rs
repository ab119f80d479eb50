//! The core: authenticates, routes to the mount table or the built-in `sys/` and
//! `auth/token/` endpoints, and turns a backend's login into a token.
//!
//! Request flow (see ARCHITECTURE.md): authenticate the token unless the path is
//! unauthenticated → route by longest mount prefix → match the backend's path table and
//! parse fields → run the handler → if it returned an `Auth`, compute the TTLs from the
//! mount's tuning, upsert the identity, issue the token → wrap the answer in Vault's envelope.

mod docs;

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::backend::{BackendRequest, MountInfo, Registry, RenewRequest};
use crate::duration;
use crate::error::{Error, Result};
use crate::identity::IdentityStore;
use crate::mount::{
    normalize_path, Mount, MountConfig, MountEntry, MountTable, SYSTEM_MAX_LEASE_TTL,
};
use crate::path::{FieldData, FieldType};
use crate::request::{Operation, Request};
use crate::response::{Auth, Reply, Response, TokenType};
use crate::storage::{Storage, View};
use crate::token::{now_unix, TokenEntry, TokenStore};

/// Paths a token with only the `default` policy may use.
const SELF_PATHS: [&str; 3] = [
    "auth/token/lookup-self",
    "auth/token/renew-self",
    "auth/token/revoke-self",
];

/// The server's logic, independent of HTTP: hand it a [`Request`], get a [`Reply`].
pub struct Core {
    storage: Arc<dyn Storage>,
    mounts: MountTable,
    tokens: TokenStore,
    identity: IdentityStore,
    registry: Registry,
    core_view: View,
}

impl Core {
    /// A core over `storage`, mounting backends from `registry`; reloads the stored mount
    /// table. Errors: storage faults, or a stored mount of a type the registry lacks.
    pub async fn new(storage: Arc<dyn Storage>, registry: Registry) -> Result<Self> {
        let core_view = View::new(storage.clone(), "core/");
        let core = Core {
            tokens: TokenStore::open(core_view.sub("token/")).await?,
            identity: IdentityStore::new(core_view.sub("identity/")),
            mounts: MountTable::default(),
            storage,
            registry,
            core_view,
        };
        let stored: Vec<MountEntry> = core.core_view.get_json("mounts").await?.unwrap_or_default();
        for entry in stored {
            let mount = core.instantiate(entry)?;
            core.mounts.insert(mount)?;
        }
        Ok(core)
    }

    fn instantiate(&self, entry: MountEntry) -> Result<Mount> {
        let factory = self.registry.factory(&entry.kind)?;
        let view = View::new(self.storage.clone(), format!("auth/{}/", entry.uuid));
        Ok(Mount {
            backend: factory(view),
            entry,
        })
    }

    /// Creates a root token with the given id (dev mode), replacing any with that id.
    pub async fn create_root_token(&self, id: &str) -> Result<()> {
        let entry = TokenEntry {
            accessor: String::new(),
            policies: vec!["root".into()],
            token_policies: vec!["root".into()],
            meta: Default::default(),
            display_name: "root".into(),
            path: "auth/token/root".into(),
            mount_accessor: String::new(),
            entity_id: String::new(),
            creation_time: now_unix(),
            creation_ttl: 0,
            expire_time: None,
            max_ttl: 0,
            explicit_max_ttl: 0,
            period: 0,
            num_uses: 0,
            bound_cidrs: vec![],
            token_type: TokenType::Service,
            renewable: false,
            internal_data: Map::new(),
            params: Default::default(),
            last_renewal_time: None,
        };
        self.tokens.create_with_id(id, entry).await.map(|_| ())
    }

    /// Answers one request. Never panics on input; every failure is a Vault error reply.
    pub async fn handle(&self, req: Request) -> Reply {
        match self.dispatch(req).await {
            Ok(reply) => reply,
            Err(err) => {
                if err.status() >= 500 {
                    tracing::error!(target: "authmount::core", error = %err, "request failed");
                }
                Reply::error(&err)
            }
        }
    }

    async fn dispatch(&self, req: Request) -> Result<Reply> {
        let path = req.path.trim_start_matches('/').to_string();
        if req.help {
            return self.help(&path, &req).await; // core/docs.rs
        }
        if path == "sys/health" {
            return Ok(Reply::ok(health()));
        }
        if let Some(rest) = path.strip_prefix("auth/token/") {
            return self.token_endpoint(rest, &req).await;
        }
        if let Some(rest) = path.strip_prefix("auth/") {
            return self.backend_endpoint(rest, req).await;
        }
        if let Some(rest) = path.strip_prefix("sys/") {
            self.authorize(&req, &path).await?;
            return self.sys_endpoint(rest, &req).await;
        }
        self.authorize(&req, &path).await?;
        Err(Error::unsupported_path(&path))
    }

    /// Checks the request's token for `path`: root may do anything; other tokens only the
    /// self-service token paths (ACL policies come later). Counts one use.
    async fn authorize(&self, req: &Request, path: &str) -> Result<TokenEntry> {
        let token = req.client_token.as_deref().ok_or(Error::PermissionDenied)?;
        let entry = self.tokens.use_token(token, req.remote_addr).await?;
        if entry.policies.iter().any(|p| p == "root") || SELF_PATHS.contains(&path) {
            return Ok(entry);
        }
        Err(Error::PermissionDenied)
    }

    // ---------------------------------------------------------------- auth/<mount>/...

    async fn backend_endpoint(&self, rest: &str, req: Request) -> Result<Reply> {
        let full_path = format!("auth/{rest}");
        let Some((mount, sub_path)) = self.mounts.route(rest)? else {
            self.authorize(&req, &full_path).await?;
            return Err(Error::unsupported_path(&full_path));
        };
        let matched = match mount.backend.router().find(sub_path) {
            Ok(m) => m,
            Err(e) => {
                self.authorize(&req, &full_path).await?;
                return Err(e);
            }
        };
        if !matched.spec.unauthenticated {
            self.authorize(&req, &full_path).await?;
        }
        if !matched.spec.operations.contains(&req.operation) {
            return Err(Error::UnsupportedOperation);
        }
        let fields = FieldData::parse(matched.spec, &matched.captures, &req.data)?;
        let unknown_warning = fields.unknown_warning();
        let info = mount.entry.info();
        let mut response = mount
            .backend
            .handle(BackendRequest {
                operation: req.operation,
                spec: matched.spec,
                path: sub_path,
                fields,
                mount: &info,
                remote_addr: req.remote_addr,
            })
            .await?;
        // DECISIONS D10: unknown parameters always get a warning, even on a write.
        if let Some(w) = unknown_warning.filter(|_| response.auth.is_none()) {
            response.warnings.push(w);
        }
        let auth = match response.auth.take() {
            Some(auth) => Some(
                self.issue_token(&mount, &info, auth, &mut response.warnings)
                    .await?,
            ),
            None => None,
        };
        if response.is_empty() && auth.is_none() {
            return Ok(Reply::no_content());
        }
        Ok(Reply::ok(envelope(
            response.data,
            auth,
            &response.warnings,
            &info.kind,
        )))
    }

    /// Turns a backend's `Auth` into a token: policies, TTLs (reference §4.7), identity.
    async fn issue_token(
        &self,
        mount: &Mount,
        info: &MountInfo,
        auth: Auth,
        warnings: &mut Vec<String>,
    ) -> Result<Value> {
        let params = &auth.token;
        let mut token_policies = normalize_policies(&params.policies);
        if token_policies.iter().any(|p| p == "root") {
            return Err(Error::invalid("auth methods cannot create root tokens"));
        }
        if !params.no_default_policy && !token_policies.iter().any(|p| p == "default") {
            token_policies.push("default".into());
            token_policies.sort();
        }
        if auth.alias.name.is_empty() {
            return Err(Error::invalid("missing name in alias"));
        }
        let (_, entity) = self
            .identity
            .upsert_alias(&info.accessor, &auth.alias.name, &auth.alias.metadata)
            .await?;
        if entity.disabled {
            return Err(Error::PermissionDenied);
        }
        let (ttl, max_ttl) = login_ttl(info, params, warnings);
        let now = now_unix();
        let token_type = match params.token_type {
            TokenType::Batch => TokenType::Batch,
            _ if mount.entry.config.token_type == "batch" => TokenType::Batch,
            _ => TokenType::Service,
        };
        let entry = TokenEntry {
            accessor: String::new(),
            policies: token_policies.clone(),
            token_policies: token_policies.clone(),
            meta: auth.metadata.clone(),
            display_name: format!("{}{}", info.path.replace('/', "-"), auth.alias.name),
            path: format!("auth/{}login", info.path),
            mount_accessor: info.accessor.clone(),
            entity_id: entity.id.clone(),
            creation_time: now,
            creation_ttl: ttl,
            expire_time: Some(now.saturating_add(ttl)),
            max_ttl,
            explicit_max_ttl: params.explicit_max_ttl,
            period: params.period,
            num_uses: params.num_uses,
            bound_cidrs: params.bound_cidrs.clone(),
            token_type,
            renewable: token_type == TokenType::Service,
            internal_data: auth.internal_data.clone(),
            params: params.clone(),
            last_renewal_time: None,
        };
        let (token, entry) = self.tokens.create(entry).await?;
        Ok(auth_block(&token, &entry, ttl))
    }

    // ---------------------------------------------------------------- auth/token/...

    async fn token_endpoint(&self, rest: &str, req: &Request) -> Result<Reply> {
        let path = format!("auth/token/{rest}");
        let caller = self.authorize(req, &path).await?;
        let token = req.client_token.clone().unwrap_or_default();
        match (rest, req.operation) {
            ("lookup-self", Operation::Read | Operation::Update) => Ok(Reply::ok(envelope(
                Some(lookup_data(&token, &caller)),
                None,
                &[],
                "token",
            ))),
            ("lookup", Operation::Update) => {
                let target = body_token(req)?;
                let entry = self.tokens.lookup(&target).await?.ok_or_else(bad_token)?;
                Ok(Reply::ok(envelope(
                    Some(lookup_data(&target, &entry)),
                    None,
                    &[],
                    "token",
                )))
            }
            ("renew-self", Operation::Update) => self.renew(&token, caller, req).await,
            ("renew", Operation::Update) => {
                let target = body_token(req)?;
                let entry = self.tokens.lookup(&target).await?.ok_or_else(bad_token)?;
                self.renew(&target, entry, req).await
            }
            ("revoke-self", Operation::Update) => self.revoke(&token, &caller).await,
            ("revoke", Operation::Update) => {
                let target = body_token(req)?;
                match self.tokens.lookup(&target).await? {
                    Some(entry) => self.revoke(&target, &entry).await,
                    None => Ok(Reply::no_content()),
                }
            }
            ("lookup-self" | "lookup" | "renew-self" | "renew" | "revoke-self" | "revoke", _) => {
                Err(Error::UnsupportedOperation)
            }
            _ => Err(Error::unsupported_path(&path)),
        }
    }

    async fn revoke(&self, token: &str, entry: &TokenEntry) -> Result<Reply> {
        if entry.token_type == TokenType::Batch {
            return Err(Error::invalid("batch tokens cannot be revoked"));
        }
        self.tokens.revoke(token).await?;
        Ok(Reply::no_content())
    }

    /// Renewal (reference §1.4): the issuing backend re-checks (the JWT method re-reads its
    /// role) and its current TTLs apply, never past the token's max TTL from creation.
    async fn renew(&self, token: &str, mut entry: TokenEntry, req: &Request) -> Result<Reply> {
        if entry.token_type == TokenType::Batch {
            return Err(Error::invalid("batch tokens cannot be renewed"));
        }
        if !entry.renewable {
            return Err(Error::invalid("lease is not renewable"));
        }
        let increment = match req.data.get("increment") {
            Some(v) => crate::path::convert(FieldType::DurationSecond, v)
                .map_err(|e| Error::invalid(format!("invalid increment: {e}")))?
                .as_i64()
                .unwrap_or(0),
            None => 0,
        };
        let mount = self
            .mounts
            .by_accessor(&entry.mount_accessor)?
            .ok_or_else(|| Error::invalid("the mount that issued this token no longer exists"))?;
        let info = mount.entry.info();
        let params = mount
            .backend
            .renew(RenewRequest {
                internal_data: &entry.internal_data,
                token: &entry.params,
                mount: &info,
            })
            .await?;
        let mut warnings = Vec::new();
        let now = now_unix();
        let (mut ttl, max_ttl) = login_ttl(&info, &params, &mut warnings);
        if params.period == 0 && increment > 0 {
            ttl = increment.min(max_ttl);
        }
        let limit = entry
            .creation_time
            .saturating_add(max_ttl.min(entry.max_ttl.max(1)))
            .saturating_sub(now);
        if params.period == 0 && ttl > limit {
            ttl = limit.max(0);
        }
        entry.expire_time = Some(now.saturating_add(ttl));
        entry.last_renewal_time = Some(now);
        entry.params = params;
        self.tokens.update(token, &entry).await?;
        Ok(Reply::ok(envelope(
            None,
            Some(auth_block(token, &entry, ttl)),
            &warnings,
            "token",
        )))
    }

    // ---------------------------------------------------------------- sys/...

    async fn sys_endpoint(&self, rest: &str, req: &Request) -> Result<Reply> {
        let op = req.operation;
        if rest == "internal/specs/openapi" {
            return self.openapi_document(op); // core/docs.rs
        }
        if rest == "auth" {
            return match op {
                Operation::Read => Ok(self.list_mounts()?),
                _ => Err(Error::UnsupportedOperation),
            };
        }
        if let Some(mount_path) = rest
            .strip_prefix("mounts/auth/")
            .and_then(|p| p.strip_suffix("/tune"))
            .or_else(|| {
                rest.strip_prefix("auth/")
                    .and_then(|p| p.strip_suffix("/tune"))
            })
        {
            return self.tune(mount_path, req).await;
        }
        if let Some(mount_path) = rest.strip_prefix("auth/") {
            return match op {
                Operation::Update => self.enable(mount_path, &req.data).await,
                Operation::Read => {
                    let path = normalize_path(mount_path)?;
                    let mount = self.mounts.get(&path)?.ok_or(Error::NotFound)?;
                    Ok(Reply::ok(envelope(
                        Some(mount_json(&mount.entry)),
                        None,
                        &[],
                        "system",
                    )))
                }
                Operation::Delete => self.disable(mount_path).await,
                Operation::List => Err(Error::UnsupportedOperation),
            };
        }
        Err(Error::unsupported_path(&format!("sys/{rest}")))
    }

    fn list_mounts(&self) -> Result<Reply> {
        let data: Map<String, Value> = self
            .mounts
            .entries()?
            .into_iter()
            .map(|e| (e.path.clone(), mount_json(&e).into()))
            .collect();
        let mut body = envelope(Some(data.clone()), None, &[], "system");
        if let Value::Object(top) = &mut body {
            top.extend(data); // legacy clients read the mounts at the top level too
        }
        Ok(Reply::ok(body))
    }

    async fn enable(&self, raw_path: &str, data: &Map<String, Value>) -> Result<Reply> {
        let path = normalize_path(raw_path)?;
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::invalid("missing type"))?;
        self.registry.factory(kind)?;
        let description = match data.get("description") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(Error::invalid("description must be a string")),
        };
        let config = match data.get("config") {
            Some(Value::Object(c)) => tune_config(&MountConfig::default(), c)?,
            None | Some(Value::Null) => MountConfig::default(),
            Some(_) => return Err(Error::invalid("config must be an object")),
        };
        let mut entry = MountEntry::new(path, kind, description, config);
        entry.local = data.get("local").and_then(Value::as_bool).unwrap_or(false);
        entry.seal_wrap = data
            .get("seal_wrap")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mount = self.instantiate(entry)?;
        self.mounts.insert(mount)?;
        if let Err(e) = self.save_mounts().await {
            let _ = self.mounts.remove(&normalize_path(raw_path)?);
            return Err(e);
        }
        tracing::info!(target: "authmount::core", path = %raw_path, kind, "auth method enabled");
        Ok(Reply::no_content())
    }

    async fn disable(&self, raw_path: &str) -> Result<Reply> {
        let path = normalize_path(raw_path)?;
        let Some(mount) = self.mounts.remove(&path)? else {
            return Ok(Reply::no_content());
        };
        self.save_mounts().await?;
        self.tokens.revoke_mount(&mount.entry.accessor).await?;
        self.identity
            .remove_mount_aliases(&mount.entry.accessor)
            .await?;
        View::new(self.storage.clone(), format!("auth/{}/", mount.entry.uuid))
            .clear()
            .await?;
        tracing::info!(target: "authmount::core", path = %path, "auth method disabled");
        Ok(Reply::no_content())
    }

    async fn tune(&self, raw_path: &str, req: &Request) -> Result<Reply> {
        let path = normalize_path(raw_path)?;
        let mount = self
            .mounts
            .get(&path)?
            .ok_or_else(|| Error::invalid(format!("no mount at auth/{path}")))?;
        match req.operation {
            Operation::Read => {
                let info = mount.entry.info();
                let data = json!({
                    "default_lease_ttl": info.default_lease_ttl,
                    "max_lease_ttl": info.max_lease_ttl,
                    "force_no_cache": false,
                    "token_type": token_type_name(&mount.entry.config),
                    "description": mount.entry.description,
                });
                Ok(Reply::ok(envelope(
                    data.as_object().cloned(),
                    None,
                    &[],
                    "system",
                )))
            }
            Operation::Update => {
                let mut entry = mount.entry.clone();
                entry.config = tune_config(&entry.config, &req.data)?;
                if let Some(Value::String(d)) = req.data.get("description") {
                    entry.description = d.clone();
                }
                self.mounts.update_entry(entry)?;
                if let Err(e) = self.save_mounts().await {
                    self.mounts.update_entry(mount.entry)?;
                    return Err(e);
                }
                Ok(Reply::no_content())
            }
            _ => Err(Error::UnsupportedOperation),
        }
    }

    async fn save_mounts(&self) -> Result<()> {
        self.core_view
            .put_json("mounts", &self.mounts.entries()?)
            .await
    }
}

fn bad_token() -> Error {
    Error::invalid("bad token")
}

fn body_token(req: &Request) -> Result<String> {
    req.data
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .ok_or_else(|| Error::invalid("missing token"))
}

/// Lower-cases, trims, deduplicates and sorts policy names (Vault `policyutil.ParsePolicies`).
pub fn normalize_policies(policies: &[String]) -> Vec<String> {
    let mut out: Vec<String> = policies
        .iter()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The TTL and effective max TTL of a new token (reference §4.7), adding Vault's capping
/// warning when the TTL was lowered.
fn login_ttl(
    info: &MountInfo,
    p: &crate::response::TokenParams,
    warnings: &mut Vec<String>,
) -> (i64, i64) {
    let mut max = info.max_lease_ttl;
    if p.max_ttl > 0 && p.max_ttl < max {
        max = p.max_ttl;
    }
    if p.explicit_max_ttl > 0 && p.explicit_max_ttl < max {
        max = p.explicit_max_ttl;
    }
    if p.period > 0 {
        return (p.period.min(max), max);
    }
    let wanted = if p.ttl > 0 {
        p.ttl
    } else {
        info.default_lease_ttl
    };
    if wanted > max {
        warnings.push(format!(
            "TTL of {:?} exceeded the effective max_ttl of {:?}; TTL value is capped accordingly",
            duration::format_go(wanted),
            duration::format_go(max)
        ));
        return (max, max);
    }
    (wanted, max)
}

fn tune_config(base: &MountConfig, data: &Map<String, Value>) -> Result<MountConfig> {
    let mut config = base.clone();
    let seconds = |name: &str, v: &Value| -> Result<i64> {
        if v.as_str() == Some("system") {
            return Ok(0);
        }
        crate::path::convert(FieldType::DurationSecond, v)
            .map(|v| v.as_i64().unwrap_or(0))
            .map_err(|e| Error::invalid(format!("invalid {name}: {e}")))
    };
    if let Some(v) = data.get("default_lease_ttl") {
        config.default_lease_ttl = seconds("default_lease_ttl", v)?;
    }
    if let Some(v) = data.get("max_lease_ttl") {
        config.max_lease_ttl = seconds("max_lease_ttl", v)?;
    }
    if let Some(v) = data.get("token_type") {
        let t = v.as_str().unwrap_or_default();
        if !["", "default-service", "default-batch", "service", "batch"].contains(&t) {
            return Err(Error::invalid(format!("invalid token_type {t:?}")));
        }
        config.token_type = t.to_string();
    }
    for (name, value) in [
        ("default_lease_ttl", config.default_lease_ttl),
        ("max_lease_ttl", config.max_lease_ttl),
    ] {
        if value > SYSTEM_MAX_LEASE_TTL {
            return Err(Error::invalid(format!(
                "{name} of {value}s cannot be greater than the system max lease TTL of {SYSTEM_MAX_LEASE_TTL}s"
            )));
        }
    }
    if config.max_lease_ttl > 0 && config.default_lease_ttl > config.max_lease_ttl {
        return Err(Error::invalid(
            "backend max lease TTL cannot be less than backend default lease TTL",
        ));
    }
    Ok(config)
}

fn token_type_name(config: &MountConfig) -> &str {
    if config.token_type.is_empty() {
        "default-service"
    } else {
        &config.token_type
    }
}

fn mount_json(e: &MountEntry) -> Map<String, Value> {
    let v = json!({
        "accessor": e.accessor,
        "config": {
            "default_lease_ttl": e.config.default_lease_ttl,
            "max_lease_ttl": e.config.max_lease_ttl,
            "force_no_cache": false,
            "token_type": token_type_name(&e.config),
        },
        "description": e.description,
        "external_entropy_access": false,
        "local": e.local,
        "options": null,
        "plugin_version": "",
        "running_plugin_version": format!("v{}+builtin.authmount", env!("CARGO_PKG_VERSION")),
        "running_sha256": "",
        "seal_wrap": e.seal_wrap,
        "type": e.kind,
        "uuid": e.uuid,
        "deprecation_status": "supported",
    });
    v.as_object().cloned().unwrap_or_default()
}

fn health() -> Value {
    json!({
        "initialized": true,
        "sealed": false,
        "standby": false,
        "performance_standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": now_unix(),
        "version": env!("CARGO_PKG_VERSION"),
        "cluster_name": "authmount",
    })
}

fn rfc3339(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `data` of `lookup-self` / `lookup` (reference §1.4).
fn lookup_data(token: &str, e: &TokenEntry) -> Map<String, Value> {
    let now = now_unix();
    let v = json!({
        "accessor": e.accessor,
        "creation_time": e.creation_time,
        "creation_ttl": e.creation_ttl,
        "display_name": e.display_name,
        "entity_id": e.entity_id,
        "expire_time": e.expire_time.map(rfc3339),
        "explicit_max_ttl": e.explicit_max_ttl,
        "id": token,
        "issue_time": rfc3339(e.creation_time),
        "last_renewal_time": e.last_renewal_time,
        "meta": if e.meta.is_empty() { Value::Null } else { json!(e.meta) },
        "num_uses": e.num_uses.max(0),
        "orphan": true,
        "path": e.path,
        "period": if e.period > 0 { json!(e.period) } else { Value::Null },
        "policies": e.policies,
        "renewable": e.renewable,
        "ttl": e.ttl(now),
        "type": if e.token_type == TokenType::Batch { "batch" } else { "service" },
        "bound_cidrs": if e.bound_cidrs.is_empty() { Value::Null } else {
            json!(e.bound_cidrs.iter().map(ToString::to_string).collect::<Vec<_>>())
        },
    });
    v.as_object().cloned().unwrap_or_default()
}

/// The `auth` block of a login or renewal answer (reference §4.7).
fn auth_block(token: &str, e: &TokenEntry, ttl: i64) -> Value {
    json!({
        "client_token": token,
        "accessor": e.accessor,
        "policies": e.policies,
        "token_policies": e.token_policies,
        "metadata": e.meta,
        "lease_duration": ttl,
        "renewable": e.renewable,
        "entity_id": e.entity_id,
        "token_type": if e.token_type == TokenType::Batch { "batch" } else { "service" },
        "orphan": true,
        "mfa_requirement": null,
        "num_uses": e.num_uses.max(0),
    })
}

/// Vault's success envelope.
fn envelope(
    data: Option<Map<String, Value>>,
    auth: Option<Value>,
    warnings: &[String],
    mount_type: &str,
) -> Value {
    json!({
        "request_id": uuid::Uuid::new_v4().to_string(),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": if warnings.is_empty() { Value::Null } else { json!(warnings) },
        "auth": auth,
        "mount_type": mount_type,
    })
}

impl From<Map<String, Value>> for Response {
    fn from(data: Map<String, Value>) -> Self {
        Response::data(data)
    }
}
