//! The core: one router for every endpoint the server has, the request pipeline, and the
//! turning of a backend's login into a token.
//!
//! Request flow (see ARCHITECTURE.md):
//! 1. the path is cleaned (no leading `/`, no doubled slashes); unless it is a status path
//!    (`sys/health`, `sys/init`, `sys/seal-status`, `sys/unseal`, `sys/leader`), it passes
//!    the gate: 503 `Vault is sealed` while sealed or not initialised (`seal_paths.rs`);
//!    then it is routed through ONE set of path tables: the core's own (`sys/`,
//!    `auth/token/`, `identity/`) and each mount's (longest mounted prefix under `auth/`);
//! 2. the matched path gives the **canonical path**: the spelling the handler will act on
//!    (captures lower-cased where their field says so, no trailing `/`); everything after
//!    this judges that spelling only (DECISIONS D15);
//! 3. the token is authenticated unless the path is unauthenticated, the existence check
//!    picks `create` or `update`, and the ACL is checked on the canonical path (plus `sudo`
//!    on root-protected paths);
//! 4. fields are parsed and validated from the path's table (unknown ones give a warning);
//! 5. the handler runs; a login's `Auth` becomes a token (TTLs from the token parameters and
//!    the mount's tuning, identity entity and alias, group aliases);
//! 6. the answer is wrapped in Vault's envelope, and response-wrapped when the caller asked
//!    for it with `X-Vault-Wrap-TTL` (`wrapping_paths.rs`).

mod audit_paths;
mod capabilities_paths;
mod docs;
mod health_params;
mod identity_lookup_paths;
mod identity_paths;
mod login;
mod metrics_paths;
mod mounts_paths;
mod reply;
mod seal_paths;
mod snapshot_paths;
mod sys_paths;
mod token_paths;
mod wrapping_paths;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::Value;

use crate::audit::{CallerFacts, MountFacts, Trail};
use crate::backend::{AuthBackend, BackendContext, BackendRequest, MountInfo, Registry};
use crate::cache::Cached;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::identity::IdentityStore;
use crate::mount::{Mount, MountEntry, MountTable, SYSTEM_MAX_LEASE_TTL};
use crate::path::{FieldData, Matched, Router};
use crate::policy::{Acl, Capability, PolicyStore};
use crate::request::{Operation, Request};
use crate::response::{Reply, TokenParams};
use crate::seal::{Seal, SealKind};
use crate::storage::{Storage, View};
use crate::token::{StoredToken, TokenEntry, TokenStore};

use reply::envelope;

/// The server's logic, independent of HTTP: hand it a [`Request`], get a [`Reply`].
///
/// Cheap to clone (clones share one server). Every cache (the mount table, parsed policies,
/// a backend's parsed config and roles) is checked against storage on use, so several
/// server nodes sharing one store never serve stale state.
#[derive(Clone)]
pub struct Core {
    inner: Arc<CoreInner>,
}

/// The shared state of a [`Core`]; the core's own path handlers are its methods.
pub(crate) struct CoreInner {
    storage: Arc<dyn Storage>,
    core_view: View,
    mounts: MountTable,
    mount_table: Cached<Vec<MountEntry>>,
    tokens: TokenStore,
    identity: IdentityStore,
    policies: PolicyStore,
    registry: Registry,
    limits: LeaseLimits,
    clock: Clock,
    /// Whether a core without a seal is initialised (a sealed core asks its seal).
    initialized: AtomicBool,
    seal: Seal,
    tables: CoreTables,
    /// `telemetry { unauthenticated_metrics_access = true }`: `sys/metrics` without a token.
    unauthenticated_metrics: AtomicBool,
    /// The audit devices of the stored table, opened on this node.
    audit: crate::audit::Broker,
    /// The server config's audit rules (`audit_paths.rs`).
    audit_rules: std::sync::RwLock<Arc<crate::audit::AuditRules>>,
    /// Set once this node has brought the stored table in line with the declared devices;
    /// the mutex makes the first requests wait for one another.
    audit_declared: (AtomicBool, tokio::sync::Mutex<()>),
}

/// The core's own path tables, each served under a prefix like a mount.
struct CoreTables {
    sys: Arc<Router>,
    token: Arc<Router>,
    identity: Arc<Router>,
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

/// The authenticated caller of a request: its token and the ACL of its policies (token
/// policies plus, resolved at this request, its entity's group policies).
pub struct Caller {
    pub(crate) token: String,
    pub(crate) stored: StoredToken,
    pub(crate) acl: Acl,
}

impl Caller {
    /// The caller's token entry.
    pub fn entry(&self) -> &TokenEntry {
        &self.stored.entry
    }

    /// True when the caller holds the `root` policy.
    pub fn is_root(&self) -> bool {
        self.acl.is_root()
    }

    /// True when the caller's policies grant `sudo` on `path` (or it is root).
    pub fn has_sudo(&self, path: &str) -> bool {
        self.acl.allows(path, Capability::Sudo, false)
    }
}

/// Where a request path leads: a path table, the prefix it is served under, and the
/// mount (a backend's, or the core's own pseudo-mount for `sys/`, `auth/token/`,
/// `identity/`).
struct Route {
    table: Arc<Router>,
    prefix: String,
    mount: Arc<MountInfo>,
    backend: Option<Arc<dyn AuthBackend>>,
    /// A backend mount's tuning (its audit non-HMAC keys); `None` for the core's tables.
    tuning: Option<crate::mount::MountConfig>,
}

impl Core {
    /// A core over `storage` with the default lease limits and the system clock, mounting
    /// backends from `registry`, with NO seal: values reach `storage` as written (for
    /// in-memory storage: tests, examples; a durable store wants a seal, see
    /// [`Core::build`]). Nothing is read yet: the stored mount table is loaded at the first
    /// request, so a core can start while its database is down.
    pub fn new(storage: Arc<dyn Storage>, registry: Registry) -> Self {
        Core::with_limits(storage, registry, LeaseLimits::default())
    }

    /// [`Core::new`] with system lease TTLs from the server config (no seal either).
    pub fn with_limits(storage: Arc<dyn Storage>, registry: Registry, limits: LeaseLimits) -> Self {
        Core::build(storage, registry, limits, Clock::system(), SealKind::Plain)
    }

    /// A core reading time from `clock` (tests move a manual clock instead of sleeping)
    /// whose every stored value goes through the barrier of `seal` (encrypted under a
    /// keyring that the seal's root key unlocks; see [`crate::seal`]). With a seal it starts
    /// sealed: call [`Core::start`] (a static seal unseals itself), then initialise or
    /// unseal.
    pub fn build(
        physical: Arc<dyn Storage>,
        registry: Registry,
        limits: LeaseLimits,
        clock: Clock,
        seal: SealKind,
    ) -> Self {
        let physical = crate::metrics::Metered::wrap(physical);
        let seal = Seal::new(physical, seal, clock.clone());
        let storage = seal.storage();
        let core_view = View::new(storage.clone(), "core/");
        let inner = Arc::new_cyclic(|weak: &Weak<CoreInner>| CoreInner {
            tokens: TokenStore::open(core_view.sub("token/"), clock.clone()),
            identity: IdentityStore::new(core_view.sub("identity/"), clock.clone()),
            policies: PolicyStore::new(core_view.sub("policy/")),
            mounts: MountTable::default(),
            mount_table: Cached::new(),
            tables: CoreTables {
                sys: Arc::new(Router::new(
                    [
                        seal_paths::paths(weak),
                        sys_paths::paths(weak),
                        wrapping_paths::paths(weak),
                        capabilities_paths::paths(weak),
                        mounts_paths::paths(weak),
                        metrics_paths::paths(weak),
                        snapshot_paths::paths(weak),
                        audit_paths::paths(weak),
                    ]
                    .concat(),
                )),
                token: Arc::new(Router::new(token_paths::paths(weak))),
                identity: Arc::new(Router::new(
                    [
                        identity_paths::paths(weak),
                        identity_lookup_paths::paths(weak),
                    ]
                    .concat(),
                )),
            },
            storage,
            core_view,
            registry,
            limits,
            clock,
            initialized: AtomicBool::new(false),
            seal,
            unauthenticated_metrics: AtomicBool::new(false),
            audit: crate::audit::Broker::default(),
            audit_rules: Default::default(),
            audit_declared: Default::default(),
        });
        Core { inner }
    }

    /// The clock this core reads.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Removes expired tokens from storage (run periodically by the server); returns how
    /// many.
    pub async fn sweep_expired_tokens(&self) -> Result<usize> {
        self.inner.seal.refresh().await?;
        self.inner.tokens.sweep_expired().await
    }

    /// The early refusal of a request whose body is large (a snapshot to restore), before
    /// the body is read: `Ok` when the server is unsealed and `token` (from `remote_addr`)
    /// is alive and its policies grant `update` with `sudo` on `path`. No use is counted
    /// and nothing is audited; the request is checked again in full by [`Core::handle`].
    /// Errors: 503 while sealed or not initialised, 403 `permission denied` otherwise.
    pub async fn preflight_sudo(
        &self,
        token: Option<&str>,
        remote_addr: Option<std::net::IpAddr>,
        path: &str,
    ) -> Result<()> {
        let inner = &self.inner;
        let path = clean_path(path)?;
        let probe = Request::new(Operation::Update, path.clone());
        if inner.gate(&probe, &path).await?.is_some() {
            return Err(Error::PermissionDenied);
        }
        inner.seal.refresh().await?;
        let token = token.ok_or(Error::PermissionDenied)?;
        let stored = inner.tokens.peek(token, remote_addr).await?;
        let acl = inner.acl(&stored.entry).await?;
        match acl.allows(&path, Capability::Update, true) {
            true => Ok(()),
            false => Err(Error::AclDenied),
        }
    }

    /// Answers one request. Never panics on input; every failure is a Vault error reply.
    pub async fn handle(&self, req: Request) -> Reply {
        let inner = self.inner.clone();
        let request_id = req.request_id.clone();
        let mut reply = crate::metrics::scope(async move {
            let mut trail = Trail::default();
            let result = inner.dispatch(req, &mut trail).await;
            if let Err(err) = &result {
                if err.status() >= 500 {
                    tracing::error!(target: "authmount::core", error = %err, "request failed");
                }
            }
            // Audit devices record the outcome; no record, no answer (500).
            trail.finish(result).await
        })
        .await;
        reply.stamp_request_id(&request_id);
        reply
    }
}

impl CoreInner {
    async fn create_root_token(&self, id: &str) -> Result<()> {
        let entry = login::new_entry(
            &self.clock,
            vec!["root".into()],
            "root".into(),
            "auth/token/root".into(),
            0,
            0,
            &TokenParams::default(),
        );
        self.tokens.create_with_id(id, entry).await.map(|_| ())
    }

    /// Brings the in-memory mount table in line with storage when another node (or a
    /// restart) changed it; unchanged mounts keep their backend instances and caches.
    async fn sync_mounts(&self) -> Result<()> {
        let entries = self
            .mount_table
            .get(&self.core_view, "mounts", |bytes| async move {
                serde_json::from_slice::<Vec<MountEntry>>(&bytes)
                    .map_err(|e| Error::internal(format!("corrupt mount table: {e}")))
            })
            .await?
            .unwrap_or_default();
        if self.mounts.is_built_from(&entries)? {
            return Ok(());
        }
        let mut mounts = Vec::new();
        for entry in entries.iter() {
            let mount = match self.mounts.get(&entry.path)? {
                Some(m) if m.entry.uuid == entry.uuid => Mount {
                    entry: entry.clone(),
                    ..m
                },
                _ => self.instantiate(entry.clone())?,
            };
            mounts.push(mount);
        }
        self.mounts.replace_all(mounts, entries)
    }

    fn instantiate(&self, entry: MountEntry) -> Result<Mount> {
        let factory = self.registry.factory(&entry.kind)?;
        let backend = factory(BackendContext {
            storage: View::new(self.storage.clone(), format!("auth/{}/", entry.uuid)),
            clock: self.clock.clone(),
        });
        let router = Arc::new(Router::new(backend.clone().paths()));
        Ok(Mount {
            backend,
            router,
            entry,
        })
    }

    /// The pseudo-mount of one of the core's own tables.
    fn core_mount(&self, path: &str, kind: &str) -> Arc<MountInfo> {
        Arc::new(MountInfo {
            path: path.into(),
            accessor: String::new(),
            kind: kind.into(),
            default_lease_ttl: self.limits.default_lease_ttl,
            max_lease_ttl: self.limits.max_lease_ttl,
        })
    }

    /// Finds the table serving `path`; the path relative to it follows the prefix.
    fn route(&self, path: &str) -> Result<Option<Route>> {
        let core = |table: &Arc<Router>, prefix: &str, kind: &str| Route {
            table: table.clone(),
            prefix: prefix.to_string(),
            mount: self.core_mount(prefix, kind),
            backend: None,
            tuning: None,
        };
        if path.starts_with("sys/") {
            return Ok(Some(core(&self.tables.sys, "sys/", "system")));
        }
        if path.starts_with("identity/") {
            return Ok(Some(core(&self.tables.identity, "identity/", "identity")));
        }
        if path.starts_with("auth/token/") {
            return Ok(Some(core(&self.tables.token, "auth/token/", "token")));
        }
        let Some(rest) = path.strip_prefix("auth/") else {
            return Ok(None);
        };
        Ok(self.mounts.route(rest)?.map(|(mount, _)| Route {
            prefix: format!("auth/{}", mount.entry.path),
            mount: Arc::new(mount.entry.info(&self.limits)),
            table: mount.router.clone(),
            backend: Some(mount.backend.clone()),
            tuning: Some(mount.entry.config),
        }))
    }

    /// The request flow (module documentation). `trail` is the request's audit record: it
    /// is started once the server is unsealed, filled in as the request is routed and
    /// authenticated, and its request line is written before the handler runs.
    async fn dispatch(self: Arc<Self>, req: Request, trail: &mut Trail) -> Result<Reply> {
        let path = clean_path(&req.path)?;
        // The status paths answer before initialisation and while sealed; help on them does
        // not (OpenBao answers it `Vault is sealed` too). They are not audited either.
        if req.help || !seal_paths::is_status_path(&path) {
            if let Some(done) = self.gate(&req, &path).await? {
                return Ok(done); // `PUT sys/seal` on a sealed server
            }
            // Cached values changed by any node since the last request are dropped first.
            self.seal.refresh().await?;
            self.sync_mounts().await?;
            self.apply_declared_audit().await?;
            trail.start(self.audit.devices(&self.core_view).await?, &req, &path);
        }
        if req.operation == Operation::Update && path.ends_with('/') && !req.help {
            return Err(Error::invalid("cannot write to a path ending in '/'"));
        }
        let Some(route) = self.route(&path)? else {
            self.authenticate_for(&req, &path, capability_of(req.operation), false)
                .await?;
            return Err(Error::no_route(&path));
        };
        if route.backend.is_some() {
            crate::metrics::note_mount(&route.prefix);
        }
        if trail.is_on() {
            trail.set_mount(mount_facts(&route));
        }
        let rel = &path[route.prefix.len().min(path.len())..];
        let Some(matched) = route.table.find(rel, req.operation) else {
            if req.help && rel.is_empty() {
                return self.help(&req, &route, None).await; // help on the mount itself
            }
            self.authenticate_for(&req, &path, capability_of(req.operation), false)
                .await?;
            return Err(Error::unsupported_path());
        };
        let canonical = CoreInner::acl_spelling(&route, &matched);
        if req.help {
            return self.help(&req, &route, Some((&matched, &canonical))).await;
        }
        let spec = matched.path;
        let Some(handler) = spec.handler(req.operation).cloned() else {
            if seal_paths::is_http_endpoint(canonical.trim_end_matches('/')) {
                return Err(Error::MethodNotAllowed);
            }
            if !spec.unauthenticated {
                self.authenticate_for(&req, &canonical, capability_of(req.operation), false)
                    .await?;
            }
            return Err(Error::UnsupportedOperation);
        };
        let caller = match spec.unauthenticated {
            true if spec.token_optional => self.peek_caller(&req).await?.map(Arc::new),
            true => None,
            false => {
                let capability = self.capability(&req, &route, &matched).await?;
                if capability == Capability::Create {
                    trail.creates();
                }
                Some(Arc::new(
                    self.authenticate_for(&req, &canonical, capability, spec.sudo)
                        .await?,
                ))
            }
        };
        if trail.is_on() {
            if let Some(caller) = &caller {
                trail.set_caller(caller_facts(caller));
            }
            let sensitive = spec.fields.iter().filter(|f| f.sensitive);
            trail.set_sensitive(sensitive.map(|f| f.name).collect());
        }
        let fields = FieldData::parse(spec, &matched.captures, &req.data, req.operation)?;
        let unknown_warning = fields.unknown_warning();
        let core_unauthenticated = spec.unauthenticated && route.backend.is_none();
        let backend_req = BackendRequest {
            operation: req.operation,
            path: matched.canonical.clone(),
            fields,
            mount: route.mount.clone(),
            remote_addr: req.remote_addr,
            caller,
            wrap_ttl: req.wrap_ttl,
            presented_token: req.client_token.clone().filter(|_| core_unauthenticated),
            body: req.body.clone().filter(|_| route.backend.is_none()),
        };
        // No record, no service: the request line is written before the handler runs.
        trail.log_request().await?;
        let mut response = handler(backend_req).await?;
        if let Some(raw) = response.raw.take() {
            return Ok(raw);
        }
        if let Some(mut body) = response.envelope.take() {
            body["request_id"] = Value::String(uuid::Uuid::new_v4().to_string());
            return self.answer(body, &canonical, req.wrap_ttl, None).await;
        }
        // DECISIONS D10: unknown parameters always get a warning, even on a write.
        if let Some(w) = unknown_warning.filter(|_| response.auth.is_none()) {
            response.warnings.push(w);
        }
        let auth = match response.auth.take() {
            Some(auth) => {
                let issued = self
                    .issue_token(&route, &canonical, auth, &mut response.warnings)
                    .await?;
                crate::metrics::note_issued();
                Some(issued)
            }
            None => response.issued.take(),
        };
        if response.data.is_none() && auth.is_none() && response.warnings.is_empty() {
            return Ok(Reply::no_content());
        }
        let accessor = auth.as_ref().and_then(|a| a["accessor"].as_str());
        let accessor = accessor.filter(|a| !a.is_empty()).map(str::to_string);
        let body = envelope(response.data, auth, &response.warnings, &route.mount.kind);
        self.answer(body, &canonical, req.wrap_ttl, accessor.as_deref())
            .await
    }

    /// A 200 answer with `body`, response-wrapped when the caller asked for it (Vault
    /// wraps any answer with content; errors and 204s are never wrapped). `issued` is the
    /// accessor of the token the answer carries, if any.
    async fn answer(
        &self,
        body: Value,
        path: &str,
        wrap_ttl: Option<Duration>,
        issued: Option<&str>,
    ) -> Result<Reply> {
        match wrap_ttl {
            Some(ttl) => self.wrap(body, path, ttl, issued).await,
            None => Ok(Reply::ok(body)),
        }
    }

    /// The path the ACL judges for a request that `matched` in `route`'s table: the route's
    /// prefix and the matched path's canonical spelling (DECISIONS D15). The one place this
    /// spelling is made: the request flow and `sys/capabilities*` both use it.
    fn acl_spelling(route: &Route, matched: &Matched<'_>) -> String {
        format!("{}{}", route.prefix, matched.canonical)
    }

    /// The capability a request needs: its operation's, except that a write to a path with
    /// an existence check needs `create` when the object does not exist yet.
    async fn capability(
        &self,
        req: &Request,
        route: &Route,
        matched: &Matched<'_>,
    ) -> Result<Capability> {
        let Some(check) = matched
            .path
            .existence()
            .filter(|_| req.operation == Operation::Update)
        else {
            return Ok(capability_of(req.operation));
        };
        let captures = matched
            .path
            .fields
            .iter()
            .filter_map(|f| {
                matched
                    .captures
                    .get(f.name)
                    .map(|v| (f.name, Value::String(v.clone())))
            })
            .collect::<Vec<_>>();
        let probe = BackendRequest {
            operation: req.operation,
            path: matched.canonical.clone(),
            fields: FieldData::from_values(captures),
            mount: route.mount.clone(),
            remote_addr: req.remote_addr,
            caller: None,
            wrap_ttl: None,
            presented_token: None,
            body: None,
        };
        Ok(match check(probe).await? {
            true => Capability::Update,
            false => Capability::Create,
        })
    }

    /// Authenticates the request's token (counting one use) and checks that its policies
    /// grant `capability` on the canonical `path` (and `sudo` where the path is
    /// root-protected). Errors: 403 `permission denied`.
    async fn authenticate_for(
        &self,
        req: &Request,
        path: &str,
        capability: Capability,
        sudo: bool,
    ) -> Result<Caller> {
        let token = req.client_token.as_deref().ok_or(Error::PermissionDenied)?;
        let stored = self.tokens.use_token(token, req.remote_addr).await?;
        if stored.entry.response_wrapping && !wrapping_paths::unwraps_with(path, capability) {
            // A wrapping token serves one request (Vault gives it one use): spent here.
            self.tokens.revoke(&stored).await?;
        }
        let acl = self.acl(&stored.entry).await?;
        // Vault checks list requests against the path with a trailing slash.
        let acl_path = match req.operation {
            Operation::List if !path.ends_with('/') => format!("{path}/"),
            _ => path.to_string(),
        };
        if !acl.allows(&acl_path, capability, sudo) {
            return Err(Error::AclDenied);
        }
        Ok(Caller {
            token: token.to_string(),
            stored,
            acl,
        })
    }

    /// The caller of a [`Path::token_optional`](crate::path::Path::token_optional) path:
    /// `None` without a token; else the token's entry and ACL, checked as
    /// [`CoreInner::authenticate_for`] checks it but with no use counted. Errors: 403 for an
    /// unknown, dead or out-of-CIDR token.
    async fn peek_caller(&self, req: &Request) -> Result<Option<Caller>> {
        let Some(token) = req.client_token.as_deref() else {
            return Ok(None);
        };
        let stored = self.tokens.peek(token, req.remote_addr).await?;
        let acl = self.acl(&stored.entry).await?;
        Ok(Some(Caller {
            token: token.to_string(),
            stored,
            acl,
        }))
    }

    /// The ACL of a token: its own policies plus, resolved now, its entity's policies and
    /// its groups', so a policy, entity or group change applies to the next request. `root`
    /// is never taken from identity (Vault: identity policies cannot grant root). Errors:
    /// 403 when the token's entity is disabled.
    async fn acl(&self, entry: &TokenEntry) -> Result<Acl> {
        let mut names = entry.policies.clone();
        names.extend(
            self.identity
                .request_policies(&entry.entity_id)
                .await?
                .into_iter()
                .filter(|p| p != "root"),
        );
        let mut policies = Vec::new();
        for name in names {
            if let Some(p) = self.policies.get(&name).await? {
                policies.push(p);
            }
        }
        Ok(Acl::new(policies.iter().map(|p| p.as_ref())))
    }
}

/// What the audit record says about the mount a request was routed to.
fn mount_facts(route: &Route) -> MountFacts {
    let auth = route.backend.is_some() || route.prefix == "auth/token/";
    let (non_hmac_request, non_hmac_response) = match &route.tuning {
        Some(t) => (
            t.audit_non_hmac_request_keys.clone(),
            t.audit_non_hmac_response_keys.clone(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    MountFacts {
        point: route.prefix.clone(),
        kind: route.mount.kind.clone(),
        accessor: route.mount.accessor.clone(),
        class: if auth { "auth" } else { "secret" },
        non_hmac_request,
        non_hmac_response,
    }
}

/// What the audit record says about the caller of a request.
fn caller_facts(caller: &Caller) -> CallerFacts {
    let e = caller.entry();
    CallerFacts {
        token: caller.token.clone(),
        accessor: e.accessor.clone(),
        display_name: e.display_name.clone(),
        policies: e.policies.clone(),
        token_policies: e.token_policies.clone(),
        identity_policies: e.identity_policies.clone(),
        metadata: e.meta.clone(),
        entity_id: e.entity_id.clone(),
        token_type: match e.token_type {
            crate::response::TokenType::Batch => "batch",
            _ => "service",
        },
        token_ttl: e.creation_ttl,
        issue_time: e.creation_time,
    }
}

/// The capability an operation needs (`update` for writes; existence checks may ask for
/// `create` instead).
fn capability_of(operation: Operation) -> Capability {
    match operation {
        Operation::Read => Capability::Read,
        Operation::List => Capability::List,
        Operation::Update => Capability::Update,
        Operation::Delete => Capability::Delete,
    }
}

/// The request path without its leading `/` and with doubled slashes collapsed. Errors:
/// 400 for a `.` or `..` segment (the edge never forwards them; an embedder might).
fn clean_path(raw: &str) -> Result<String> {
    let segments: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return Err(Error::invalid("relative paths not supported"));
    }
    let mut path = segments.join("/");
    if raw.ends_with('/') && !path.is_empty() {
        path.push('/');
    }
    Ok(path)
}

/// `n` random base62 characters from the OS CSPRNG.
fn random_id(n: usize) -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_before_routing() {
        assert_eq!(clean_path("/sys//policy///x").unwrap(), "sys/policy/x");
        assert_eq!(clean_path("auth/jwt/role/").unwrap(), "auth/jwt/role/");
        assert_eq!(clean_path("auth/jwt/role//").unwrap(), "auth/jwt/role/");
        assert!(clean_path("auth/jwt/../token/create").is_err());
        assert!(clean_path("auth/./jwt").is_err());
    }

    /// Properties of the canonical path: [`clean_path`] and the canonical spelling
    /// [`Router::find`] gives on the core's own tables (`sys/`, `identity/`, `auth/token/`).
    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        /// Paths built from the names and separators the tables care about, with case,
        /// dots, doubled and trailing slashes, spaces and non-ASCII letters.
        fn raw_path() -> impl Strategy<Value = String> {
            let segment = prop_oneof![
                Just("sys".to_string()),
                Just("policy".to_string()),
                Just("policies".to_string()),
                Just("acl".to_string()),
                Just("auth".to_string()),
                Just("mounts".to_string()),
                Just("tune".to_string()),
                Just("identity".to_string()),
                Just("group".to_string()),
                Just("name".to_string()),
                Just("id".to_string()),
                Just("token".to_string()),
                Just("Admin".to_string()),
                Just("ADMİN".to_string()),
                Just("\u{212A}ey".to_string()),
                Just("a b".to_string()),
                Just(".".to_string()),
                Just("..".to_string()),
                Just("".to_string()),
                "[a-zA-Z0-9_.-]{1,6}",
            ];
            (
                proptest::bool::ANY,
                proptest::collection::vec(segment, 0..7),
            )
                .prop_map(|(lead, segs)| {
                    let path = segs.join("/");
                    if lead {
                        format!("/{path}")
                    } else {
                        path
                    }
                })
        }

        /// The tables, compiled once for all cases.
        fn tables() -> &'static [(&'static str, Router)] {
            static TABLES: std::sync::OnceLock<Vec<(&'static str, Router)>> =
                std::sync::OnceLock::new();
            TABLES.get_or_init(|| {
                let core: Weak<CoreInner> = Weak::new();
                vec![
                    (
                        "sys/",
                        Router::new(
                            [
                                seal_paths::paths(&core),
                                sys_paths::paths(&core),
                                wrapping_paths::paths(&core),
                            ]
                            .concat(),
                        ),
                    ),
                    ("identity/", Router::new(identity_paths::paths(&core))),
                    ("auth/token/", Router::new(token_paths::paths(&core))),
                ]
            })
        }

        fn no_bad_segments(path: &str) -> bool {
            !path.contains("//")
                && !path.starts_with('/')
                && !path.split('/').any(|s| s == "." || s == "..")
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// A clean path has no doubled slash, no leading slash and no `.` or `..`
            /// segment; cleaning it again changes nothing; it keeps the segments and a
            /// trailing slash. A path with a `.` or `..` segment is refused with a 400.
            #[test]
            fn clean_path_is_canonical_and_idempotent(raw in raw_path()) {
                let relative = raw.split('/').any(|s| s == "." || s == "..");
                match clean_path(&raw) {
                    Err(e) => {
                        prop_assert!(relative, "{} refused: {}", raw, e);
                        prop_assert_eq!(e.status(), 400);
                    }
                    Ok(clean) => {
                        prop_assert!(!relative, "{} accepted as {}", raw, clean);
                        prop_assert!(no_bad_segments(&clean), "{} -> {}", raw, clean);
                        prop_assert_eq!(clean_path(&clean).unwrap(), clean.clone());
                        let segments: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
                        prop_assert_eq!(clean.trim_end_matches('/'), segments.join("/"));
                        prop_assert_eq!(clean.ends_with('/'), raw.ends_with('/') && !segments.is_empty());
                    }
                }
            }

            /// The canonical spelling of a routed path has no doubled slash and no `.` or
            /// `..` segment, names no trailing `/` (except a list, which always ends in one),
            /// is its own canonical spelling, and gives the handler the captures it shows.
            #[test]
            fn canonical_paths_are_fixed_points(
                raw in raw_path(),
                operation in proptest::sample::select(vec![
                    Operation::Read, Operation::List, Operation::Update, Operation::Delete,
                ]),
            ) {
                let Ok(clean) = clean_path(&raw) else { return Ok(()) };
                for (prefix, router) in tables() {
                    let Some(rel) = clean.strip_prefix(prefix) else { continue };
                    let Some(matched) = router.find(rel, operation) else { continue };
                    // An operation the path does not serve is refused (405) before any
                    // handler sees a name: its spelling is never acted on.
                    if !matched.path.supports(operation) { continue }
                    let canonical = matched.canonical.clone();
                    let full = format!("{prefix}{canonical}");
                    prop_assert!(no_bad_segments(&full), "{} -> {}", raw, full);
                    match operation {
                        Operation::List => prop_assert!(canonical.is_empty() || canonical.ends_with('/')),
                        _ => prop_assert!(!canonical.ends_with('/'), "{} -> {}", raw, canonical),
                    }
                    for value in matched.captures.values() {
                        prop_assert!(canonical.contains(value.trim_end_matches('/')), "{} -> {} lacks {}", raw, canonical, value);
                    }
                    let again = router.find(&canonical, operation);
                    prop_assert!(again.is_some(), "{} -> {} no longer routes", raw, canonical);
                    let again = again.unwrap();
                    prop_assert_eq!(&again.canonical, &canonical);
                    if again.path.pattern == matched.path.pattern {
                        // A list hands its last capture over as sent (`x` or `x/`, one
                        // canonical `x/`); every other operation exactly.
                        let trim = |c: &BTreeMap<String, String>| -> Vec<String> {
                            c.values()
                                .map(|v| match operation {
                                    Operation::List => v.trim_end_matches('/').to_string(),
                                    _ => v.clone(),
                                })
                                .collect()
                        };
                        prop_assert_eq!(trim(&again.captures), trim(&matched.captures));
                    }
                }
            }
        }
    }
}
