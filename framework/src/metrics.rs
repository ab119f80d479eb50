//! The server's metrics, served by `GET /v1/sys/metrics?format=prometheus` in the
//! OpenMetrics text format (which Prometheus scrapes). Every metric is described in
//! `docs/metrics.md`.
//!
//! One registry per process ([`metrics`]): counters and histograms are recorded where things
//! happen (the core's request flow, the token store, the storage under the barrier, the
//! [`crate::cache::Cached`] helper, a backend's key fetches), gauges that describe a state
//! (seal, live tokens, key set ages) are set when a scrape reads them.
//!
//! Labels have bounded cardinality: a mount path and a role name are chosen by the operator
//! (a role name is recorded only once the backend found the role, see [`login_role`]), a
//! failure class is one of [`LoginFailure`], a key source is a configured URL. A token, a
//! subject or a claim value is never a label.
//!
//! Logins: the core opens a scope around each request (`scope`); a backend tells it the
//! role ([`login_role`]) and, when the login fails, why ([`login_failure`]); the core counts
//! the login when a token was issued or a failure was reported.
//!
//! Source: Vault's telemetry (`sys/metrics`, `vault.core.handle_login_request`,
//! `vault.token.*`, `vault.barrier.*`), in our names (`authmount_*`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use async_trait::async_trait;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::error::Result;
use crate::storage::Storage;

/// The `Content-Type` of [`Metrics::encode`]'s text (OpenMetrics 1.0).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why a login failed: the `failure` label of `authmount_logins_total`. A backend reports it
/// with [`login_failure`] at the check that refused the login (the JWT backend's classes follow
/// the order of its login pipeline, `backends/jwt/src/login.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LoginFailure {
    /// The mount has no configuration.
    NotConfigured,
    /// The request named no role and the mount has no default role.
    MissingRole,
    /// The named role does not exist.
    RoleNotFound,
    /// The role cannot be used for this kind of login (an `oidc` role on the JWT login).
    RoleType,
    /// The request carried no token / credential.
    MissingToken,
    /// The client address is outside the role's bound CIDRs.
    Cidr,
    /// The token is not a well-formed JWS / JWT.
    Malformed,
    /// The token's algorithm is not allowed.
    Algorithm,
    /// The key source could not be set up or reached (JWKS, discovery).
    KeySource,
    /// No key verified the signature.
    Signature,
    /// `iss` does not match `bound_issuer`.
    Issuer,
    /// `sub` does not match the role's `bound_subject`.
    BoundSubject,
    /// `aud` does not match the role's `bound_audiences` (or is missing where required).
    Audience,
    /// `exp` has passed (beyond the leeways).
    Expired,
    /// `nbf` / `iat` lies in the future (beyond the leeways).
    NotYetValid,
    /// A claim the role needs is missing or malformed: the user claim, the groups claim, or
    /// the `jti` of a single-use role.
    Claims,
    /// A `bound_claims` rule did not match.
    BoundClaim,
    /// The JWT was already used to log in to a single-use role (authmount's role field
    /// `single_use`): a replay.
    Replayed,
    /// A CEL claim rule (`claim_rules`, `policies_expression`) refused the login, failed to
    /// evaluate, or was over its evaluation budget.
    ClaimRule,
    /// Any other refusal (a backend that reports nothing, an internal fault after the
    /// backend accepted the login).
    Other,
}

impl LoginFailure {
    /// The label value: `signature`, `audience`, `expired`, `not_yet_valid`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            LoginFailure::NotConfigured => "not_configured",
            LoginFailure::MissingRole => "missing_role",
            LoginFailure::RoleNotFound => "role_not_found",
            LoginFailure::RoleType => "role_type",
            LoginFailure::MissingToken => "missing_token",
            LoginFailure::Cidr => "cidr",
            LoginFailure::Malformed => "malformed",
            LoginFailure::Algorithm => "algorithm",
            LoginFailure::KeySource => "key_source",
            LoginFailure::Signature => "signature",
            LoginFailure::Issuer => "issuer",
            LoginFailure::BoundSubject => "bound_subject",
            LoginFailure::Audience => "audience",
            LoginFailure::Expired => "expired",
            LoginFailure::NotYetValid => "not_yet_valid",
            LoginFailure::Claims => "claims",
            LoginFailure::BoundClaim => "bound_claim",
            LoginFailure::Replayed => "replayed",
            LoginFailure::ClaimRule => "claim_rule",
            LoginFailure::Other => "other",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    mount: String,
    role: String,
    outcome: &'static str,
    failure: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MountOutcome {
    mount: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchLabels {
    kind: &'static str,
    url: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    kind: &'static str,
    url: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    object: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StorageLabels {
    store: &'static str,
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    r#type: &'static str,
}

/// The process's metrics (see the module documentation and `docs/metrics.md`).
pub struct Metrics {
    registry: Registry,
    logins: Family<LoginLabels, Counter>,
    login_seconds: Family<MountOutcome, Histogram>,
    key_fetches: Family<FetchLabels, Counter>,
    key_set_age: Family<SourceLabels, Gauge<f64, AtomicU64>>,
    key_set_fetched: Mutex<HashMap<SourceLabels, Instant>>,
    cache: Family<CacheLabels, Counter>,
    storage_seconds: Family<StorageLabels, Histogram>,
    storage_errors: Family<StorageLabels, Counter>,
    tokens_issued: Family<TokenLabels, Counter>,
    tokens_renewed: Counter,
    tokens_revoked: Counter,
    tokens_live: Gauge,
    sealed: Gauge,
    initialized: Gauge,
}

fn seconds_histogram() -> Histogram {
    // 100 µs .. ~3.3 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("authmount");
        let m = Metrics {
            logins: Family::default(),
            login_seconds: Family::new_with_constructor(seconds_histogram),
            key_fetches: Family::default(),
            key_set_age: Family::default(),
            key_set_fetched: Mutex::new(HashMap::new()),
            cache: Family::default(),
            storage_seconds: Family::new_with_constructor(seconds_histogram),
            storage_errors: Family::default(),
            tokens_issued: Family::default(),
            tokens_renewed: Counter::default(),
            tokens_revoked: Counter::default(),
            tokens_live: Gauge::default(),
            sealed: Gauge::default(),
            initialized: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "logins",
            "Logins by mount, role, outcome (success, failure) and failure class",
            m.logins.clone(),
        );
        registry.register(
            "login_duration_seconds",
            "Time to answer a login (verification and token issuance), by mount and outcome",
            m.login_seconds.clone(),
        );
        registry.register(
            "key_fetches",
            "Fetches of JWKS key sets and OIDC discovery documents, by kind, URL and result",
            m.key_fetches.clone(),
        );
        registry.register(
            "key_set_age_seconds",
            "Seconds since each key set (or discovery document) was last fetched successfully",
            m.key_set_age.clone(),
        );
        registry.register(
            "cache_lookups",
            "Lookups in the parsed-object caches, by object type and result (hit, miss)",
            m.cache.clone(),
        );
        registry.register(
            "storage_operation_duration_seconds",
            "Latency of physical storage operations, by store and operation",
            m.storage_seconds.clone(),
        );
        registry.register(
            "storage_errors",
            "Failed physical storage operations, by store and operation",
            m.storage_errors.clone(),
        );
        registry.register(
            "tokens_issued",
            "Tokens issued, by type (service, batch)",
            m.tokens_issued.clone(),
        );
        registry.register("tokens_renewed", "Token renewals", m.tokens_renewed.clone());
        registry.register(
            "tokens_revoked",
            "Tokens revoked on request (children included are not counted separately)",
            m.tokens_revoked.clone(),
        );
        registry.register(
            "tokens_live",
            "Service tokens in storage at the last scrape (batch tokens are not stored)",
            m.tokens_live.clone(),
        );
        registry.register(
            "sealed",
            "1 while the server is sealed (or not initialised), else 0",
            m.sealed.clone(),
        );
        registry.register(
            "initialized",
            "1 once the server is initialised, else 0",
            m.initialized.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The metrics in the OpenMetrics text format ([`CONTENT_TYPE`]), after refreshing the
    /// key set ages.
    pub fn encode(&self) -> String {
        {
            let fetched = self
                .key_set_fetched
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for (labels, at) in fetched.iter() {
                self.key_set_age
                    .get_or_create(labels)
                    .set(at.elapsed().as_secs_f64());
            }
        }
        let mut out = String::new();
        // Writing into a String does not fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Sets the state gauges a scrape reports: sealed, initialised, live service tokens.
    pub fn set_state(&self, sealed: bool, initialized: bool, live_tokens: Option<usize>) {
        self.sealed.set(i64::from(sealed));
        self.initialized.set(i64::from(initialized));
        if let Some(n) = live_tokens {
            self.tokens_live.set(n as i64);
        }
    }

    /// Counts one fetch of a key source. `kind`: `jwks` or `discovery`; `url`: the configured
    /// URL, labelled as [`url_label`] gives it; a success also restarts the source's age.
    pub fn key_fetch(&self, kind: &'static str, url: &str, ok: bool) {
        let url = &url_label(url);
        self.key_fetches
            .get_or_create(&FetchLabels {
                kind,
                url: url.to_string(),
                result: if ok { "success" } else { "error" },
            })
            .inc();
        if ok {
            let labels = SourceLabels {
                kind,
                url: url.to_string(),
            };
            self.key_set_fetched
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(labels, Instant::now());
        }
    }

    /// Counts one lookup in a [`crate::cache::Cached`] of objects of type `T`.
    pub fn cache_lookup<T>(&self, hit: bool) {
        let name = std::any::type_name::<T>();
        // `alloc::vec::Vec<authmount_framework::mount::MountEntry>` -> `MountEntry`
        let trimmed = name.trim_end_matches('>');
        let object = trimmed.rsplit("::").next().unwrap_or(trimmed);
        self.cache
            .get_or_create(&CacheLabels {
                object,
                result: if hit { "hit" } else { "miss" },
            })
            .inc();
    }

    /// Counts a token issued (`batch` or a stored service token).
    pub fn token_issued(&self, batch: bool) {
        let r#type = if batch { "batch" } else { "service" };
        self.tokens_issued
            .get_or_create(&TokenLabels { r#type })
            .inc();
    }

    /// Counts a renewal.
    pub fn token_renewed(&self) {
        self.tokens_renewed.inc();
    }

    /// Counts a revocation asked for (of one token and its tree).
    pub fn token_revoked(&self) {
        self.tokens_revoked.inc();
    }

    fn login(&self, mount: &str, role: &str, failure: Option<LoginFailure>, seconds: f64) {
        let outcome = if failure.is_some() {
            "failure"
        } else {
            "success"
        };
        self.logins
            .get_or_create(&LoginLabels {
                mount: mount.to_string(),
                role: role.to_string(),
                outcome,
                failure: failure.map(LoginFailure::as_str).unwrap_or(""),
            })
            .inc();
        self.login_seconds
            .get_or_create(&MountOutcome {
                mount: mount.to_string(),
                outcome,
            })
            .observe(seconds);
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// What one request told about a login.
#[derive(Default)]
struct LoginNote {
    mount: Option<String>,
    role: Option<String>,
    failure: Option<LoginFailure>,
    issued: bool,
}

tokio::task_local! {
    static NOTE: RefCell<LoginNote>;
}

fn note(f: impl FnOnce(&mut LoginNote)) {
    let _ = NOTE.try_with(|n| f(&mut n.borrow_mut()));
}

/// Runs one request of the core, then counts it as a login when a token was issued or a
/// backend reported a failure ([`login_failure`]), with its latency.
pub(crate) async fn scope<F: std::future::Future>(request: F) -> F::Output {
    let started = Instant::now();
    NOTE.scope(RefCell::new(LoginNote::default()), async move {
        let out = request.await;
        let seconds = started.elapsed().as_secs_f64();
        note(|n| {
            let Some(mount) = n.mount.as_deref() else {
                return;
            };
            let role = n.role.as_deref().unwrap_or("");
            match (n.issued, n.failure) {
                (true, _) => metrics().login(mount, role, None, seconds),
                (false, Some(class)) => metrics().login(mount, role, Some(class), seconds),
                (false, None) => {}
            }
        });
        out
    })
    .await
}

/// The core: this request is served by the backend mounted at `mount` (e.g. `auth/jwt/`).
pub(crate) fn note_mount(mount: &str) {
    note(|n| n.mount = Some(mount.to_string()));
}

/// The core: a backend's login was answered with a token.
pub(crate) fn note_issued() {
    note(|n| n.issued = true);
}

/// For a backend: the login of this request uses the role `name`, which exists (call it
/// only once the role was found, so that names sent by clients never become labels).
pub fn login_role(name: &str) {
    note(|n| n.role = Some(name.to_string()));
}

/// For a backend: the login of this request fails for `class`. The first class reported
/// wins, so report at the check that refused and let generic conversions report after.
pub fn login_failure(class: LoginFailure) {
    note(|n| {
        n.failure.get_or_insert(class);
    });
}

/// The failure class a backend reported for the login of the current request, if any (the
/// audit record of a failed login names it).
pub(crate) fn login_failure_of_request() -> Option<LoginFailure> {
    NOTE.try_with(|n| n.borrow().failure).ok().flatten()
}

/// A [`Storage`] that times each operation of the store beneath it and counts its errors.
pub struct Metered {
    inner: Arc<dyn Storage>,
    store: &'static str,
}

impl Metered {
    /// `inner`, measured.
    pub fn wrap(inner: Arc<dyn Storage>) -> Arc<dyn Storage> {
        let store = inner.type_name();
        Arc::new(Metered { inner, store })
    }

    async fn timed<T>(
        &self,
        op: &'static str,
        f: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        let out = f.await;
        let labels = StorageLabels {
            store: self.store,
            op,
        };
        let m = metrics();
        m.storage_seconds
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        if out.is_err() {
            m.storage_errors.get_or_create(&labels).inc();
        }
        out
    }
}

#[async_trait]
impl Storage for Metered {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.timed("get", self.inner.get(key)).await
    }
    async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.timed("put", self.inner.put(key, value)).await
    }
    async fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<bool> {
        self.timed("put_if_absent", self.inner.put_if_absent(key, value))
            .await
    }
    async fn compare_and_put(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool> {
        self.timed(
            "compare_and_put",
            self.inner.compare_and_put(key, expected, value),
        )
        .await
    }
    async fn put_batch(&self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        self.timed("put_batch", self.inner.put_batch(entries)).await
    }
    async fn put_batch_if_absent(
        &self,
        guard: &str,
        guard_value: &[u8],
        entries: &[(String, Vec<u8>)],
    ) -> Result<bool> {
        self.timed(
            "put_batch_if_absent",
            self.inner.put_batch_if_absent(guard, guard_value, entries),
        )
        .await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.timed("delete", self.inner.delete(key)).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.timed("list", self.inner.list(prefix)).await
    }
    async fn ping(&self) -> Result<()> {
        self.timed("ping", self.inner.ping()).await
    }
    fn type_name(&self) -> &'static str {
        self.store
    }
    async fn changes_since(&self, since: u64) -> Result<crate::storage::Changes> {
        self.timed("changes_since", self.inner.changes_since(since))
            .await
    }
    async fn export(&self) -> Result<Vec<(String, Vec<u8>)>> {
        self.timed("export", self.inner.export()).await
    }
    async fn import(&self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        self.timed("import", self.inner.import(entries)).await
    }
}

/// A URL as it may appear in a metric label or a log line: scheme, host, port and path;
/// the user name, password, query and fragment (where credentials travel) are dropped.
/// Not a URL: `invalid-url`.
pub fn url_label(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "invalid-url".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::url_label;

    #[test]
    fn url_labels_drop_the_credentials_a_url_can_carry() {
        assert_eq!(
            url_label("https://user:SECRET@keys.example:8443/a/jwks?access_token=SECRET#frag"),
            "https://keys.example:8443/a/jwks"
        );
        assert_eq!(url_label("http://127.0.0.1/keys"), "http://127.0.0.1/keys");
        assert_eq!(url_label("not a url SECRET"), "invalid-url");
    }
}
