//! The `AuthBackend` trait: the one page a backend author reads first.
//!
//! # Writing a backend
//!
//! A backend is a value that declares its paths as data (a [`Router`] built from
//! [`PathSpec`]s: pattern, typed fields, operations) and answers requests the router has
//! already matched, parsed and authenticated. It never speaks HTTP and never creates tokens:
//! a login handler returns a [`Response`] whose [`Auth`] says who logged in (alias name,
//! metadata, group aliases) and with which token parameters; the core then computes TTLs
//! from the mount's tuning, upserts the identity, creates the token and answers the client.
//!
//! Each mount gets its own backend instance (from a [`Factory`] registered under a type
//! name), holding its private storage [`View`]; caches of parsed config live in the
//! instance.
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use authmount_framework::{
//!     Auth, AuthBackend, BackendRequest, Error, Field, FieldType, Operation, PathSpec,
//!     Response, Result, Router, TokenParams, View,
//! };
//!
//! /// Logs in anyone who knows the shared word; a toy, but complete.
//! struct Password { router: Router, storage: View }
//!
//! impl Password {
//!     fn new(storage: View) -> Arc<dyn AuthBackend> {
//!         let router = Router::new(vec![PathSpec {
//!             name: "login",
//!             pattern: "login",
//!             fields: vec![
//!                 Field::new("user", FieldType::String, "who logs in"),
//!                 Field::new("word", FieldType::String, "the shared word"),
//!             ],
//!             operations: vec![Operation::Update],
//!             unauthenticated: true,
//!             help: "Log in with the shared word.",
//!         }]);
//!         Arc::new(Password { router, storage })
//!     }
//! }
//!
//! #[async_trait]
//! impl AuthBackend for Password {
//!     fn router(&self) -> &Router { &self.router }
//!
//!     async fn handle(&self, req: BackendRequest<'_>) -> Result<Response> {
//!         let user = req.fields.str("user").unwrap_or_default();
//!         if req.fields.str("word") != Some("swordfish") || user.is_empty() {
//!             return Err(Error::invalid("wrong word"));
//!         }
//!         let mut auth = Auth::default();
//!         auth.alias.name = user.to_string();
//!         auth.token = TokenParams { policies: vec!["reader".into()], ttl: 600, ..Default::default() };
//!         Ok(Response { auth: Some(auth), ..Default::default() })
//!     }
//! }
//! # let _ = Password::new;
//! ```
//!
//! Register the factory with [`Registry::register`] and `POST /v1/sys/auth/<path>
//! {"type":"<name>"}` mounts it at any path.

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

/// An auth method, mounted at one path. See the module documentation for a complete example.
#[async_trait]
pub trait AuthBackend: Send + Sync + 'static {
    /// The backend's path table.
    fn router(&self) -> &Router;

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
