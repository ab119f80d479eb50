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

use crate::clock::Clock;
use crate::core::Caller;
use crate::error::{Error, Result};
use crate::path::{FieldData, Path};
use crate::request::Operation;
use crate::response::TokenParams;
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

/// What a backend instance is built with: the mount's private storage and the clock.
#[derive(Clone)]
pub struct BackendContext {
    /// The mount's own storage: keys private to the mount, removed when it is disabled.
    pub storage: View,
    /// The clock every time rule of the backend should read.
    pub clock: Clock,
}

/// One request, matched to a path, made canonical, authorised and parsed by the path's field
/// table. Owned, so handlers are plain `async fn`s.
#[derive(Clone)]
pub struct BackendRequest {
    /// The operation.
    pub operation: Operation,
    /// The canonical path relative to the table's prefix (the mount for a backend), e.g.
    /// `role/demo` for a request to `auth/jwt/role/DEMO`.
    pub path: String,
    /// The parsed fields (captures of the pattern included).
    pub fields: FieldData,
    /// The mount being served (the core's own tables get a mount of their own).
    pub mount: Arc<MountInfo>,
    /// The client's address, when known.
    pub remote_addr: Option<IpAddr>,
    /// The authenticated caller; `None` on unauthenticated paths.
    pub caller: Option<Arc<Caller>>,
    /// How long the caller asked the answer to be response-wrapped for (`X-Vault-Wrap-TTL`).
    /// The core wraps answers itself; only `sys/wrapping/wrap` needs to see it.
    pub(crate) wrap_ttl: Option<std::time::Duration>,
    /// The token sent with a request to one of the core's unauthenticated paths, unchecked
    /// (`sys/wrapping/lookup` takes the wrapping token from `X-Vault-Token`). Never set for a
    /// backend's paths.
    pub(crate) presented_token: Option<String>,
    /// The raw body of a request to one of the core's file-taking endpoints
    /// ([`crate::Request::body`]); never set for a backend's paths.
    pub(crate) body: Option<Arc<[u8]>>,
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
/// already matched, made canonical, authorised and parsed**. It never speaks HTTP and never
/// creates tokens. The example at the end is complete: a "shared word" method whose operator
/// sets the word at `config` and whose users log in at `login`, mounted at two paths and
/// driven through the [`Core`](crate::Core).
///
/// 1. **Declare the paths.** [`AuthBackend::paths`] returns [`Path`]s: a regular
///    expression matched against the whole path after the mount (named captures such as
///    `(?P<name>\w+)` become fields), a table of typed [`Field`](crate::Field)s
///    ([`FieldType`](crate::FieldType): strings, bools, ints, durations in seconds,
///    comma-separated lists, key-value pairs; with defaults, `required`, `sensitive`), the
///    handler of each [`Operation`] (`read`, `list`, `update`, `delete`; any other gets 405),
///    an optional existence check (Vault's create-versus-update for ACLs) and whether it
///    needs a token (`unauthenticated()` for a login). Handlers are `async fn`s of the
///    backend taking `self: Arc<Self>` and a [`BackendRequest`]. The router converts input
///    by the table (a bad value gets Vault's `Field validation failed` 400, an undeclared
///    parameter a warning), lower-cases captures declared
///    [`LowerCaseString`](crate::FieldType::LowerCaseString) before the ACL check, and
///    help (`GET <path>?help=1`) and the OpenAPI document
///    (`GET /v1/sys/internal/specs/openapi`) are generated from it (the crate's `openapi` module):
///    nothing else describes your API.
/// 2. **Handle requests.** A handler reads typed values from `req.fields`
///    ([`FieldData::str`](crate::FieldData::str), [`FieldData::int`](crate::FieldData::int)
///    (seconds for durations), [`FieldData::strings`](crate::FieldData::strings),
///    [`FieldData::bool`](crate::FieldData::bool); `None` when the client did not send the
///    field and it has no default). It returns [`Response::data`](crate::Response::data) for a read,
///    [`Response::default()`](crate::Response) for a write (204), or an [`Error`]: [`Error::invalid`] for bad
///    input (400; the message is shown to the client, so never put a secret in it),
///    [`Error::NotFound`] (404), [`Error::internal`] for faults (500).
/// 3. **Keep state in storage.** Each mount gets its own [`View`] in its
///    [`BackendContext`]: keys private to the mount, encrypted by the core's storage
///    barrier, removed when the mount is disabled (`get_json`, `put_json`, `list`, `delete`,
///    and `compare_and_put`/`put_if_absent` for read-modify-write: several server nodes may
///    share the store, so never guard shared state with an in-process lock). The instance
///    lives as long as the mount; [`Cached`](crate::cache::Cached) keeps parsed objects
///    exact across nodes.
/// 4. **Log in by returning an [`Auth`](crate::Auth)** in the [`Response`](crate::Response): the alias name
///    (who logged in, unique per mount), metadata, and [`TokenParams`] (policies; TTLs in
///    seconds, 0 meaning the mount's default). Declare the standard `token_*` fields with
///    one line, `.fields(tokenutil::fields())`, and read them with
///    [`TokenSettings::apply_write`](crate::tokenutil::TokenSettings::apply_write). The core
///    caps the TTLs by the mount's tuning, adds the `default` policy, links the identity
///    entity, creates the token and answers `auth.client_token`, `accessor`, `policies`,
///    `lease_duration`. Put what renewal needs into `internal_data` (never shown to clients).
/// 5. **Re-check at renewal** (optional): [`AuthBackend::renew`] returns the parameters to
///    renew with, or an error to refuse (say, the user was deleted).
/// 6. **Register and mount.** [`Registry::register`] a [`Factory`] (a function from the
///    mount's [`BackendContext`] to a new instance) under a type name; then
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
///     tokenutil, Auth, AuthBackend, BackendContext, BackendRequest, Core, Error, Field,
///     FieldType, InMemory, Operation, Path, Registry, Request, Response, Result, View,
/// };
/// use serde::{Deserialize, Serialize};
/// use serde_json::json;
///
/// /// Logs in anyone who knows the word the operator set: small, but complete.
/// struct SharedWord {
///     storage: View,
/// }
///
/// /// What `config` stores in the mount's view: the word and the standard token fields.
/// #[derive(Default, Serialize, Deserialize)]
/// struct Config {
///     word: String,
///     #[serde(flatten)]
///     tokens: tokenutil::TokenSettings,
/// }
///
/// impl SharedWord {
///     /// The factory: one instance per mount, over the mount's own storage.
///     fn new(ctx: BackendContext) -> Arc<dyn AuthBackend> {
///         Arc::new(SharedWord { storage: ctx.storage })
///     }
///
///     async fn write_config(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
///         let mut config = Config::default();
///         config.word = req.fields.str("word").unwrap_or_default().to_string();
///         config.tokens.apply_write(&req.fields, &req.mount)?;
///         self.storage.put_json("config", &config).await?;
///         Ok(Response::default())
///     }
///
///     async fn login(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
///         let Some(config) = self.storage.get_json::<Config>("config").await? else {
///             return Err(Error::invalid("the shared word is not configured"));
///         };
///         let user = req.fields.str("user").unwrap_or_default();
///         if user.is_empty() || req.fields.str("word") != Some(config.word.as_str()) {
///             return Err(Error::invalid("wrong user or word"));
///         }
///         let mut auth = Auth::default();
///         auth.alias.name = user.to_string();
///         auth.metadata.insert("user".into(), user.to_string());
///         auth.token = config.tokens.token;
///         Ok(Response::login(auth))
///     }
/// }
///
/// #[async_trait]
/// impl AuthBackend for SharedWord {
///     fn paths(self: Arc<Self>) -> Vec<Path> {
///         vec![
///             Path::new("config")
///                 .help("Set the shared word and the tokens it gives.")
///                 .field(Field::new("word", FieldType::String, "The shared word.").required())
///                 .fields(tokenutil::fields())
///                 .update(&self, Self::write_config),
///             Path::new("login")
///                 .help("Log in with the shared word.")
///                 .unauthenticated()
///                 .fields([
///                     Field::new("user", FieldType::String, "Who logs in."),
///                     Field::new("word", FieldType::String, "The shared word.").sensitive(),
///                 ])
///                 .update(&self, Self::login),
///         ]
///     }
///
///     fn help(&self) -> &str {
///         "Log in with a word that everyone shares."
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<()> {
/// // Register the type, build a core over storage of your choice, mount at two paths.
/// let mut registry = Registry::new();
/// registry.register("shared-word", SharedWord::new);
/// let core = Core::new(Arc::new(InMemory::new()), registry);
/// core.dev_init("root").await?;
/// for path in ["word", "team/word"] {
///     let enable = Request::new(Operation::Update, format!("sys/auth/{path}"))
///         .with_token("root")
///         .with_data(json!({"type": "shared-word"}));
///     assert_eq!(core.handle(enable).await.status, 204);
/// }
/// let config = Request::new(Operation::Update, "auth/word/config")
///     .with_token("root")
///     .with_data(json!({"word": "swordfish", "token_policies": "reader", "token_ttl": "10m"}));
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
    /// The backend's path table, built once per mount. Handlers are bound to `self`
    /// (`.read(&self, Self::read_thing)`); the table holds them weakly.
    fn paths(self: Arc<Self>) -> Vec<Path>;

    /// A paragraph describing the method, shown by help on the mount itself
    /// (`GET /v1/auth/<mount>?help=1`). Defaults to none.
    fn help(&self) -> &str {
        ""
    }

    /// Re-checks a token at renewal and returns the parameters to renew it with. The default
    /// keeps the parameters it was issued with. An error fails the renewal.
    async fn renew(&self, req: RenewRequest<'_>) -> Result<TokenParams> {
        Ok(req.token.clone())
    }
}

/// Builds a backend instance for one mount, given the mount's storage and the clock.
pub type Factory = Arc<dyn Fn(BackendContext) -> Arc<dyn AuthBackend> + Send + Sync>;

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
        factory: impl Fn(BackendContext) -> Arc<dyn AuthBackend> + Send + Sync + 'static,
    ) -> &mut Self {
        self.factories.insert(kind.to_string(), Arc::new(factory));
        self
    }

    /// The factory for `kind`. Errors: 400 `plugin not found in the catalog: <kind>`
    /// (Vault's words).
    pub fn factory(&self, kind: &str) -> Result<&Factory> {
        self.factories
            .get(kind)
            .ok_or_else(|| Error::invalid(format!("plugin not found in the catalog: {kind}")))
    }
}
