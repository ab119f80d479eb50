//! The core: authenticates, checks ACL policies, routes to the mount table or the built-in
//! `sys/`, `auth/token/` and `identity/` endpoints, and turns a backend's login into a token.
//!
//! Request flow (see ARCHITECTURE.md): authenticate the token unless the path is
//! unauthenticated → check the token's policies for (path, capability) → route by longest
//! mount prefix → match the backend's path table and parse fields → run the handler → if it
//! returned an `Auth`, compute the TTLs from the mount's tuning, upsert the identity and its
//! groups, issue the token → wrap the answer in Vault's envelope.

mod docs;
mod identity_api;
mod reply;
mod seal_api;
mod sys;
mod token_api;

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::backend::{BackendRequest, MountInfo, Registry};
use crate::duration;
use crate::error::{Error, Result};
use crate::identity::IdentityStore;
use crate::mount::{Mount, MountEntry, MountTable, SYSTEM_MAX_LEASE_TTL};
use crate::path::{FieldData, FieldType};
use crate::policy::{Acl, Capability, PolicyStore};
use crate::request::{Operation, Request};
use crate::response::{Auth, Reply, TokenParams, TokenType};
use crate::seal::{Seal, SealKind};
use crate::storage::{Storage, View};
use crate::token::{now_unix, StoredToken, TokenEntry, TokenStore};

use reply::{auth_block, envelope};

/// The server's logic, independent of HTTP: hand it a [`Request`], get a [`Reply`].
///
/// Every cache (the mount table, parsed policies, a backend's parsed config and roles) is
/// checked against storage on use, so several server nodes sharing one store never serve
/// stale state.
pub struct Core {
    storage: Arc<dyn Storage>,
    mounts: MountTable,
    mounts_seen: std::sync::Mutex<Option<Vec<u8>>>,
    tokens: TokenStore,
    identity: IdentityStore,
    policies: PolicyStore,
    registry: Registry,
    core_view: View,
    limits: LeaseLimits,
    initialized: std::sync::atomic::AtomicBool,
    seal: Seal,
}

/// The system-wide lease TTLs (seconds) that untuned mounts and the token store use.
/// Source: Vault server config `default_lease_ttl` and `max_lease_ttl` (both 768h by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseLimits {
    /// `default_lease_ttl`.
    pub default_lease_ttl: i64,
    /// `max_lease_ttl`.
    pub max_lease_ttl: i64,
}

impl Default for LeaseLimits {
    fn default() -> Self {
        LeaseLimits {
            default_lease_ttl: SYSTEM_MAX_LEASE_TTL,
            max_lease_ttl: SYSTEM_MAX_LEASE_TTL,
        }
    }
}

/// An authenticated request's token and the ACL of its policies.
struct Caller {
    token: String,
    stored: StoredToken,
    acl: Acl,
}

impl Core {
    /// A core over `storage` with the default lease limits, mounting backends from
    /// `registry`, with NO seal: values reach `storage` as written. For in-memory storage
    /// (tests, examples); a durable store wants [`Core::with_seal`]. Nothing is read yet:
    /// the stored mount table is loaded at the first request, so a core can start while its
    /// database is down.
    pub fn new(storage: Arc<dyn Storage>, registry: Registry) -> Self {
        Core::with_limits(storage, registry, LeaseLimits::default())
    }

    /// [`Core::new`] with system lease TTLs from the server config (no seal either).
    pub fn with_limits(storage: Arc<dyn Storage>, registry: Registry, limits: LeaseLimits) -> Self {
        Core::with_seal(storage, registry, limits, SealKind::Plain)
    }

    /// A core whose every stored value goes through the seal's barrier (encrypted under a
    /// keyring that the root key of `seal` unlocks; see [`crate::seal`]). It starts sealed:
    /// call [`Core::start`] (a static seal unseals itself), then initialize or unseal.
    pub fn with_seal(
        physical: Arc<dyn Storage>,
        registry: Registry,
        limits: LeaseLimits,
        seal: SealKind,
    ) -> Self {
        let seal = Seal::new(physical, seal);
        let storage = seal.storage();
        let core_view = View::new(storage.clone(), "core/");
        Core {
            tokens: TokenStore::open(core_view.sub("token/")),
            identity: IdentityStore::new(core_view.sub("identity/")),
            policies: PolicyStore::new(core_view.sub("policy/")),
            mounts: MountTable::default(),
            mounts_seen: std::sync::Mutex::new(None),
            storage,
            registry,
            core_view,
            limits,
            initialized: std::sync::atomic::AtomicBool::new(false),
            seal,
        }
    }

    /// Brings the in-memory mount table in line with storage when another node (or a
    /// restart) changed it; unchanged mounts keep their backend instances and caches.
    pub(super) async fn sync_mounts(&self) -> Result<()> {
        let bytes = self.core_view.get("mounts").await?.unwrap_or_default();
        if self.mounts_seen.lock().map_err(poisoned)?.as_deref() == Some(&bytes[..]) {
            return Ok(());
        }
        let entries: Vec<MountEntry> = if bytes.is_empty() {
            vec![]
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| Error::internal(format!("corrupt mount table: {e}")))?
        };
        let mut mounts = Vec::new();
        for entry in entries {
            let mount = match self.mounts.get(&entry.path)? {
                Some(m) if m.entry.uuid == entry.uuid => Mount { entry, ..m },
                _ => self.instantiate(entry)?,
            };
            mounts.push(mount);
        }
        self.mounts.replace_all(mounts)?;
        *self.mounts_seen.lock().map_err(poisoned)? = Some(bytes);
        Ok(())
    }

    /// Removes expired tokens from storage (run periodically by the server); returns how
    /// many.
    pub async fn sweep_expired_tokens(&self) -> Result<usize> {
        self.tokens.sweep_expired().await
    }

    fn instantiate(&self, entry: MountEntry) -> Result<Mount> {
        let factory = self.registry.factory(&entry.kind)?;
        let view = View::new(self.storage.clone(), format!("auth/{}/", entry.uuid));
        Ok(Mount {
            backend: factory(view),
            entry,
        })
    }

    async fn create_root_token(&self, id: &str) -> Result<()> {
        let entry = new_entry(
            vec!["root".into()],
            "root".into(),
            "auth/token/root".into(),
            0,
            0,
            &TokenParams::default(),
        );
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
        if let Some(answer) = self.seal_endpoint(&path, &req).await {
            return answer; // core/seal_api.rs: sys/init, seal-status, unseal, seal, health
        }
        if !self.is_initialized().await? {
            return Err(Error::Unavailable(
                "authmount is not initialized: PUT /v1/sys/init (or `authmount operator init`) first"
                    .into(),
            ));
        }
        self.require_unsealed().await?;
        self.sync_mounts().await?;
        if req.help {
            return self.help(&path, &req).await; // core/docs.rs
        }
        if let Some(rest) = path.strip_prefix("auth/token/") {
            return self.token_endpoint(rest, &req).await;
        }
        if let Some(rest) = path.strip_prefix("auth/") {
            return self.backend_endpoint(rest, req).await;
        }
        if let Some(rest) = path.strip_prefix("sys/") {
            return self.sys_endpoint(rest, &req).await;
        }
        if let Some(rest) = path.strip_prefix("identity/") {
            return self.identity_endpoint(rest, &req).await;
        }
        self.authorize(&req, &path, false).await?;
        Err(Error::unsupported_path(&path))
    }

    /// Authenticates the request's token (counting one use) and checks that its policies
    /// grant the operation's capability on `path` (and `sudo` on root-protected paths).
    /// Errors: 403 `permission denied`.
    async fn authorize(&self, req: &Request, path: &str, sudo: bool) -> Result<Caller> {
        let capability = match req.operation {
            Operation::Read => Capability::Read,
            Operation::List => Capability::List,
            Operation::Update => Capability::Update,
            Operation::Delete => Capability::Delete,
        };
        self.authorize_capability(req, path, capability, sudo).await
    }

    async fn authorize_capability(
        &self,
        req: &Request,
        path: &str,
        capability: Capability,
        sudo: bool,
    ) -> Result<Caller> {
        let token = req.client_token.as_deref().ok_or(Error::PermissionDenied)?;
        let stored = self.tokens.use_token(token, req.remote_addr).await?;
        let acl = self.acl(&stored.entry).await?;
        // Vault checks list requests against the path with a trailing slash.
        let acl_path = match req.operation {
            Operation::List if !path.ends_with('/') => format!("{path}/"),
            _ => path.to_string(),
        };
        if !acl.allows(&acl_path, capability, sudo) {
            return Err(Error::PermissionDenied);
        }
        Ok(Caller {
            token: token.to_string(),
            stored,
            acl,
        })
    }

    /// The ACL of a token: its own policies plus, resolved now, its entity's group policies,
    /// so a policy or group change applies to the next request.
    async fn acl(&self, entry: &TokenEntry) -> Result<Acl> {
        let mut names = entry.policies.clone();
        names.extend(self.identity.identity_policies(&entry.entity_id).await?);
        let mut policies = Vec::new();
        for name in names {
            if let Some(p) = self.policies.get(&name).await? {
                policies.push(p);
            }
        }
        Ok(Acl::new(policies.iter().map(|p| p.as_ref())))
    }

    // ---------------------------------------------------------------- auth/<mount>/...

    async fn backend_endpoint(&self, rest: &str, req: Request) -> Result<Reply> {
        let full_path = format!("auth/{rest}");
        let Some((mount, sub_path)) = self.mounts.route(rest)? else {
            self.authorize(&req, &full_path, false).await?;
            return Err(Error::unsupported_path(&full_path));
        };
        let matched = match mount.backend.router().find(sub_path) {
            Ok(m) => m,
            Err(e) => {
                self.authorize(&req, &full_path, false).await?;
                return Err(e);
            }
        };
        if !matched.spec.operations.contains(&req.operation) {
            if !matched.spec.unauthenticated {
                self.authorize(&req, &full_path, false).await?;
            }
            return Err(Error::UnsupportedOperation);
        }
        let fields = FieldData::parse(matched.spec, &matched.captures, &req.data)?;
        let unknown_warning = fields.unknown_warning();
        let info = mount.entry.info(&self.limits);
        let backend_req = BackendRequest {
            operation: req.operation,
            spec: matched.spec,
            path: sub_path,
            fields,
            mount: &info,
            remote_addr: req.remote_addr,
        };
        if !matched.spec.unauthenticated {
            // Vault's existence check: a write to a missing object needs `create`.
            let capability = match (req.operation, mount.backend.exists(&backend_req).await?) {
                (Operation::Update, Some(false)) => Capability::Create,
                (Operation::Update, _) => Capability::Update,
                (Operation::Read, _) => Capability::Read,
                (Operation::List, _) => Capability::List,
                (Operation::Delete, _) => Capability::Delete,
            };
            self.authorize_capability(&req, &full_path, capability, false)
                .await?;
        }
        let mut response = mount.backend.handle(backend_req).await?;
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

    /// Turns a backend's `Auth` into a token: policies, identity and groups, TTLs
    /// (reference §4.7).
    async fn issue_token(
        &self,
        mount: &Mount,
        info: &MountInfo,
        auth: Auth,
        warnings: &mut Vec<String>,
    ) -> Result<Value> {
        let params = &auth.token;
        let policies = token_policies(params)?;
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
        let groups = self
            .identity
            .sync_external_groups(&entity.id, &info.accessor, &auth.group_aliases)
            .await?;
        let identity_policies = crate::identity::group_policies(&groups);
        if identity_policies.iter().any(|p| p == "root") {
            return Err(Error::invalid("auth methods cannot create root tokens"));
        }
        let (ttl, max_ttl) = token_ttl(info, params, warnings);
        let mut entry = new_entry(
            policies,
            format!("{}{}", info.path.replace('/', "-"), auth.alias.name),
            format!("auth/{}login", info.path),
            ttl,
            max_ttl,
            params,
        );
        if params.token_type == TokenType::Default && mount.entry.config.token_type == "batch" {
            entry.token_type = TokenType::Batch;
            entry.renewable = false;
        }
        entry.meta = auth.metadata.clone();
        entry.mount_accessor = info.accessor.clone();
        entry.entity_id = entity.id.clone();
        entry.internal_data = auth.internal_data.clone();
        entry.identity_policies = identity_policies;
        let (token, entry) = self.tokens.create(entry).await?;
        Ok(auth_block(&token, &entry, ttl))
    }
}

fn poisoned<T>(_: T) -> Error {
    Error::internal("core lock poisoned")
}

/// `n` random base62 characters from the OS CSPRNG.
fn random_id(n: usize) -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, n)
}

/// A token entry with the given policies, names and TTLs; the rest from `params`.
fn new_entry(
    policies: Vec<String>,
    display_name: String,
    path: String,
    ttl: i64,
    max_ttl: i64,
    params: &TokenParams,
) -> TokenEntry {
    let now = now_unix();
    let batch = params.token_type == TokenType::Batch;
    TokenEntry {
        accessor: String::new(),
        token_policies: policies.clone(),
        policies,
        meta: Default::default(),
        display_name,
        path,
        mount_accessor: String::new(),
        entity_id: String::new(),
        creation_time: now,
        creation_ttl: ttl,
        expire_time: (ttl > 0).then(|| now.saturating_add(ttl)),
        max_ttl,
        explicit_max_ttl: params.explicit_max_ttl,
        period: params.period,
        num_uses: params.num_uses,
        bound_cidrs: params.bound_cidrs.clone(),
        token_type: if batch {
            TokenType::Batch
        } else {
            TokenType::Service
        },
        renewable: !batch && ttl > 0,
        internal_data: Map::new(),
        params: params.clone(),
        last_renewal_time: None,
        identity_policies: vec![],
        parent_accessor: String::new(),
    }
}

/// The policies of a new token: normalised, `default` added unless refused; `root` is
/// refused (auth methods never issue root tokens).
fn token_policies(params: &TokenParams) -> Result<Vec<String>> {
    let mut policies = normalize_policies(&params.policies);
    if policies.iter().any(|p| p == "root") {
        return Err(Error::invalid("auth methods cannot create root tokens"));
    }
    if !params.no_default_policy && !policies.iter().any(|p| p == "default") {
        policies.push("default".into());
        policies.sort();
    }
    Ok(policies)
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

/// The TTL and effective max TTL of a new or renewed token (reference §4.7): the max is the
/// mount's max lowered by `max_ttl` and `explicit_max_ttl`; a period gives the TTL, else
/// `ttl` or the mount default; a TTL above the max is capped with Vault's warning.
fn token_ttl(info: &MountInfo, p: &TokenParams, warnings: &mut Vec<String>) -> (i64, i64) {
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

/// A body field converted as `kind`, or `None` when absent. Errors: 400 naming the field.
fn body_field(req: &Request, name: &str, kind: FieldType) -> Result<Option<Value>> {
    match req.data.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(raw) => crate::path::convert(kind, raw).map(Some).map_err(|reason| {
            Error::invalid(format!(
                "Field validation failed: error converting input for field {name:?}: {reason}"
            ))
        }),
    }
}

/// A non-empty string body field. Errors: 400 `missing <name>`.
fn required_str(req: &Request, name: &str) -> Result<String> {
    body_field(req, name, FieldType::String)?
        .and_then(|v| v.as_str().map(str::to_string))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::invalid(format!("missing {name}")))
}
