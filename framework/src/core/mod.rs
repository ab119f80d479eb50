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
mod sys;
mod token_api;

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::backend::{BackendRequest, MountInfo, Registry};
use crate::duration;
use crate::error::{Error, Result};
use crate::identity::IdentityStore;
use crate::mount::{Mount, MountEntry, MountTable};
use crate::path::{FieldData, FieldType};
use crate::policy::{Acl, Capability, PolicyStore};
use crate::request::{Operation, Request};
use crate::response::{Auth, Reply, TokenParams, TokenType};
use crate::storage::{Storage, View};
use crate::token::{now_unix, StoredToken, TokenEntry, TokenStore};

use reply::{auth_block, envelope, health};

/// The server's logic, independent of HTTP: hand it a [`Request`], get a [`Reply`].
pub struct Core {
    storage: Arc<dyn Storage>,
    mounts: MountTable,
    tokens: TokenStore,
    identity: IdentityStore,
    policies: PolicyStore,
    registry: Registry,
    core_view: View,
}

/// An authenticated request's token and the ACL of its policies.
struct Caller {
    token: String,
    stored: StoredToken,
    acl: Acl,
}

impl Core {
    /// A core over `storage`, mounting backends from `registry`; reloads the stored mount
    /// table. Errors: storage faults, or a stored mount of a type the registry lacks.
    pub async fn new(storage: Arc<dyn Storage>, registry: Registry) -> Result<Self> {
        let core_view = View::new(storage.clone(), "core/");
        let core = Core {
            tokens: TokenStore::open(core_view.sub("token/")).await?,
            identity: IdentityStore::new(core_view.sub("identity/")),
            policies: PolicyStore::new(core_view.sub("policy/")),
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
        let info = mount.entry.info();
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
        self.identity
            .sync_external_groups(&entity.id, &info.accessor, &auth.group_aliases)
            .await?;
        let identity_policies = self.identity.identity_policies(&entity.id).await?;
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
