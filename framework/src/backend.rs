//! The `AuthBackend` trait, the one page a backend author reads first, and the
//! [`Registry`] of backend types that `sys/auth/<path> {"type": ...}` mounts.
//!
//! Start at [`AuthBackend`]: its documentation is the tutorial, with a complete backend that
//! runs as a test.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::path::{FieldData, PathSpec, Router};
use crate::request::Operation;
use crate::response::{Response, TokenParams};
use crate::storage::View;

/// What a backend knows of the mount it serves. Durations in seconds, already resolved:
/// the mount's tuned values, or the system defaults (768h) when untuned.
#[derive(Debug, Clone, PartialEq)]
pub struct MountInfo {
    /// The mount path with a trailing slash, e.g. `jwt/` or `team/a/jwt/`.
    pub path: String,
    /// The mount accessor, e.g. `auth_jwt_1a2b3c4d`.
    pub accessor: String,
    /// The backend type name, e.g. `jwt`.
    pub kind: String,
    /// Default lease TTL of tokens issued here (seconds).
    pub default_lease_ttl: i64,
    /// Max lease TTL of tokens issued here (seconds).
    pub max_lease_ttl: i64,
}

/// One request, matched to a path of the backend and parsed by its field table.
pub struct BackendRequest<'a> {
    /// The operation.
    pub operation: Operation,
    /// The matched path spec; handlers dispatch on `spec.name`.
    pub spec: &'a PathSpec,
    /// The path after the mount prefix, e.g. `role/demo`.
    pub path: &'a str,
    /// The parsed fields (captures of the pattern included).
    pub fields: FieldData,
    /// The mount being served.
    pub mount: &'a MountInfo,
    /// The client's address, when known.
    pub remote_addr: Option<IpAddr>,
}

/// A renewal of a token this backend issued.
pub struct RenewRequest<'a> {
    /// The `internal_data` the login put into [`crate::Auth`].
    pub internal_data: &'a Map<String, Value>,
    /// The token parameters the token was issued with.
    pub token: &'a TokenParams,
    /// The mount.
    pub mount: &'a MountInfo,
}

/// An auth method, mounted at one path: the trait a backend author implements.
///
/// # Writing a backend
///
/// A backend **declares its paths as data** and **answers requests that the core has
/// already matched, parsed and authenticated**. It never speaks HTTP and never creates
/// tokens. The example at the end is complete: a "shared word" method whose operator sets
/// the word at `config` and whose users log in at `login`, mounted at two paths and driven
/// through the [`Core`](crate::Core).
///
/// 1. **Declare the paths.** [`AuthBackend::router`] returns a [`Router`] built from
///    [`PathSpec`]s: a regular expression matched against the whole path after the mount
///    (named captures such as `(?P<name>\w+)` become fields), a table of typed [`Field`](crate::Field)s
///    ([`FieldType`](crate::FieldType): strings, bools, ints, durations in seconds, comma-separated lists,
///    key-value pairs), the [`Operation`]s the path supports (any other gets 405) and
///    whether it needs a token (`unauthenticated: true` for a login). The router converts
///    input by this table (a bad value gets Vault's `Field validation failed` 400, an
///    undeclared parameter a warning), and help (`GET <path>?help=1`) and the OpenAPI
///    document (`GET /v1/sys/internal/specs/openapi`) are generated from it
///    ([`crate::openapi`]): nothing else describes your API.
/// 2. **Handle requests.** [`AuthBackend::handle`] dispatches on `req.spec.name` and
///    `req.operation` and reads typed values from `req.fields` ([`FieldData::str`],
///    [`FieldData::int`] (seconds for durations), [`FieldData::strings`],
///    [`FieldData::bool`]; `None` when the client did not send the field). It returns
///    [`Response::data`] for a read, [`Response::default()`] for a write (204), or an
///    [`Error`]: [`Error::invalid`] for bad input (400; the message is shown to the client,
///    so never put a secret in it), [`Error::NotFound`] (404), [`Error::internal`] for
///    faults (500).
/// 3. **Keep state in storage.** Each mount gets its own [`View`]: keys private to the
///    mount, removed when the mount is disabled (`get_json`, `put_json`, `list`,
///    `delete`). The instance lives as long as the mount, so it may cache parsed values.
/// 4. **Log in by returning an [`Auth`](crate::Auth)** in the [`Response`]: the alias name
///    (who logged in, unique per mount), metadata, and [`TokenParams`] (policies; TTLs in
///    seconds, 0 meaning the mount's default). The core caps the TTLs by the mount's
///    tuning, adds the `default` policy, links the identity entity, creates the token and
///    answers `auth.client_token`, `accessor`, `policies`, `lease_duration`. Put what
///    renewal needs into `internal_data` (never shown to clients).
/// 5. **Re-check at renewal** (optional): [`AuthBackend::renew`] returns the parameters to
///    renew with, or an error to refuse (say, the user was deleted).
/// 6. **Register and mount.** [`Registry::register`] a [`Factory`] (a function from the
///    mount's [`View`] to a new instance) under a type name; then
///    `POST /v1/sys/auth/<path> {"type":"<name>"}` mounts it at any path, as often as you
///    like, each mount with its own storage. Serve the [`Core`](crate::Core) over HTTP with
///    the `authmount-server` crate (`authmount_server::http::server`), or drive it yourself:
///    [`Core::handle`](crate::Core::handle) takes a [`Request`](crate::Request) and
///    returns a [`Reply`](crate::Reply) (status and JSON body), which is all another web
///    stack needs.
///
/// ```
/// use std::sync::Arc;
///
/// use async_trait::async_trait;
/// use authmount_framework::{
///     Auth, AuthBackend, BackendRequest, Core, Error, Field, FieldType, InMemory, Operation,
///     PathSpec, Registry, Request, Response, Result, Router, TokenParams, View,
/// };
/// use serde::{Deserialize, Serialize};
/// use serde_json::json;
///
/// /// Logs in anyone who knows the word the operator set: small, but complete.
/// struct SharedWord {
///     router: Router,
///     storage: View,
/// }
///
/// /// What `config` stores in the mount's view.
/// #[derive(Serialize, Deserialize)]
/// struct Config {
///     word: String,
///     policies: Vec<String>,
///     ttl: i64,
/// }
///
/// impl SharedWord {
///     /// The factory: one instance per mount, over the mount's own storage.
///     fn new(storage: View) -> Arc<dyn AuthBackend> {
///         let router = Router::new(vec![
///             PathSpec {
///                 name: "config",
///                 pattern: "config",
///                 fields: vec![
///                     Field::new("word", FieldType::String, "The shared word."),
///                     Field::new("policies", FieldType::CommaStringSlice, "Policies of issued tokens."),
///                     Field::new("ttl", FieldType::DurationSecond, "TTL of issued tokens."),
///                 ],
///                 operations: vec![Operation::Update],
///                 unauthenticated: false,
///                 help: "Set the shared word and the tokens it gives.",
///             },
///             PathSpec {
///                 name: "login",
///                 pattern: "login",
///                 fields: vec![
///                     Field::new("user", FieldType::String, "Who logs in."),
///                     Field::new("word", FieldType::String, "The shared word."),
///                 ],
///                 operations: vec![Operation::Update],
///                 unauthenticated: true,
///                 help: "Log in with the shared word.",
///             },
///         ]);
///         Arc::new(SharedWord { router, storage })
///     }
/// }
///
/// #[async_trait]
/// impl AuthBackend for SharedWord {
///     fn router(&self) -> &Router {
///         &self.router
///     }
///
///     fn help(&self) -> &str {
///         "Log in with a word that everyone shares."
///     }
///
///     async fn handle(&self, req: BackendRequest<'_>) -> Result<Response> {
///         match (req.spec.name, req.operation) {
///             ("config", Operation::Update) => {
///                 let word = req.fields.str("word").unwrap_or_default().to_string();
///                 if word.is_empty() {
///                     return Err(Error::invalid("missing word"));
///                 }
///                 let config = Config {
///                     word,
///                     policies: req.fields.strings("policies").unwrap_or_default(),
///                     ttl: req.fields.int("ttl").unwrap_or(0),
///                 };
///                 self.storage.put_json("config", &config).await?;
///                 Ok(Response::default())
///             }
///             ("login", Operation::Update) => {
///                 let Some(config) = self.storage.get_json::<Config>("config").await? else {
///                     return Err(Error::invalid("the shared word is not configured"));
///                 };
///                 let user = req.fields.str("user").unwrap_or_default();
///                 if user.is_empty() || req.fields.str("word") != Some(config.word.as_str()) {
///                     return Err(Error::invalid("wrong user or word"));
///                 }
///                 let mut auth = Auth::default();
///                 auth.alias.name = user.to_string();
///                 auth.metadata.insert("user".into(), user.to_string());
///                 auth.token = TokenParams {
///                     policies: config.policies,
///                     ttl: config.ttl,
///                     ..TokenParams::default()
///                 };
///                 Ok(Response { auth: Some(auth), ..Response::default() })
///             }
///             _ => Err(Error::UnsupportedOperation),
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<()> {
/// // Register the type, build a core over storage of your choice, mount at two paths.
/// let mut registry = Registry::new();
/// registry.register("shared-word", SharedWord::new);
/// let core = Core::new(Arc::new(InMemory::new()), registry);
/// core.dev_root_token("root").await?;
/// for path in ["word", "team/word"] {
///     let enable = Request::new(Operation::Update, format!("sys/auth/{path}"))
///         .with_token("root")
///         .with_data(json!({"type": "shared-word"}));
///     assert_eq!(core.handle(enable).await.status, 204);
/// }
/// let config = Request::new(Operation::Update, "auth/word/config")
///     .with_token("root")
///     .with_data(json!({"word": "swordfish", "policies": "reader", "ttl": "10m"}));
/// assert_eq!(core.handle(config).await.status, 204);
///
/// // Log in: no token needed; the core issues one.
/// let login = Request::new(Operation::Update, "auth/word/login")
///     .with_data(json!({"user": "alice", "word": "swordfish"}));
/// let reply = core.handle(login).await;
/// assert_eq!(reply.status, 200);
/// let auth = &reply.body.as_ref().unwrap()["auth"];
/// assert_eq!(auth["policies"], json!(["default", "reader"]));
/// assert_eq!(auth["lease_duration"], 600);
/// assert!(auth["client_token"].as_str().unwrap().starts_with("hvs."));
///
/// // The other mount has its own storage, so it is not configured yet.
/// let login = Request::new(Operation::Update, "auth/team/word/login")
///     .with_data(json!({"user": "alice", "word": "swordfish"}));
/// assert_eq!(core.handle(login).await.status, 400);
///
/// // Help is generated from the path table.
/// let help = Request::new(Operation::Read, "auth/word/login").with_token("root").with_help();
/// let reply = core.handle(help).await;
/// let text = reply.body.as_ref().unwrap()["help"].as_str().unwrap().to_string();
/// assert!(text.contains("word (string)\n    The shared word."), "{text}");
/// # Ok(())
/// # }
/// ```
///
/// A larger example, an API-key method that keeps only hashes of its keys, is
/// `examples/custom_backend.rs` in the repository; `examples/embed.rs` serves it next to the
/// JWT method from a program of your own.
#[async_trait]
pub trait AuthBackend: Send + Sync + 'static {
    /// The backend's path table.
    fn router(&self) -> &Router;

    /// A paragraph describing the method, shown by help on the mount itself
    /// (`GET /v1/auth/<mount>?help=1`). Defaults to none.
    fn help(&self) -> &str {
        ""
    }

    /// Answers one matched request. Return [`Error::InvalidRequest`] for bad input (400),
    /// [`Error::NotFound`] for a missing object (404), [`Error::Internal`] for faults (500).
    async fn handle(&self, req: BackendRequest<'_>) -> Result<Response>;

    /// Vault's existence check, for ACLs: `Some(false)` when a write would create the
    /// object (the caller then needs the `create` capability), `Some(true)` when it would
    /// update it (`update`), `None` when the path has no existence check (`update`). The
    /// default has none.
    async fn exists(&self, req: &BackendRequest<'_>) -> Result<Option<bool>> {
        let _ = req;
        Ok(None)
    }

    /// Re-checks a token at renewal and returns the parameters to renew it with. The default
    /// keeps the parameters it was issued with. An error fails the renewal.
    async fn renew(&self, req: RenewRequest<'_>) -> Result<TokenParams> {
        Ok(req.token.clone())
    }
}

/// Builds a backend instance for one mount, given the mount's private storage.
pub type Factory = Arc<dyn Fn(View) -> Arc<dyn AuthBackend> + Send + Sync>;

/// The backend types that `sys/auth/<path> {"type": ...}` can mount.
#[derive(Clone, Default)]
pub struct Registry {
    factories: BTreeMap<String, Factory>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `factory` under the type name `kind` (replacing an earlier one).
    pub fn register(
        &mut self,
        kind: &str,
        factory: impl Fn(View) -> Arc<dyn AuthBackend> + Send + Sync + 'static,
    ) -> &mut Self {
        self.factories.insert(kind.to_string(), Arc::new(factory));
        self
    }

    /// The factory for `kind`. Errors: 400 naming the known types.
    pub fn factory(&self, kind: &str) -> Result<&Factory> {
        self.factories.get(kind).ok_or_else(|| {
            let known: Vec<&str> = self.factories.keys().map(String::as_str).collect();
            Error::invalid(format!(
                "unknown auth method type {kind:?}; known types: {}",
                known.join(", ")
            ))
        })
    }
}
