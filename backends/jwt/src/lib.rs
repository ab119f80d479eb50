//! # authmount-jwt
//!
//! Vault's JWT auth method as an authmount backend: `config`, `role/<name>`, `role/`
//! (list) and `login`, with Vault's fields, defaults, checks and error strings
//! (`vault-jwt-reference.md` §2–§4, amended by DECISIONS.md).
//!
//! Mount it with [`register`] on a [`Registry`] (types `jwt` and `oidc`), then
//! `POST /v1/sys/auth/<path> {"type":"jwt"}`.
//!
//! The parsed config (with its key verifiers and remote key caches, built once per config)
//! and the roles are cached in the backend instance. Each use reads the stored bytes and
//! reuses the cache while they are unchanged, so a write through another server node is
//! seen by the very next login here.

pub mod claims;
pub mod config;
pub mod fetch;
pub mod jwks;
pub mod keys;
pub mod login;
pub mod oidc;
pub mod oidc_flow;
pub mod oidc_state;
pub mod oidc_token;
pub mod role;

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use authmount_framework::{
    AuthBackend, BackendRequest, Error, Field, FieldType, Operation, PathSpec, Registry,
    RenewRequest, Response, Result, Router, TokenParams, View,
};
use serde_json::{json, Map, Value};

use crate::config::{JwtConfig, ParsedConfig};
use crate::login::LoginError;
use crate::role::Role;

/// Registers the JWT backend under the types `jwt` and `oidc` (one plugin, two names, as
/// in Vault).
pub fn register(registry: &mut Registry) -> &mut Registry {
    registry
        .register("jwt", JwtBackend::factory)
        .register("oidc", JwtBackend::factory)
}

/// One mount of the JWT auth method.
pub struct JwtBackend {
    router: Router,
    storage: View,
    config: RwLock<Option<(Vec<u8>, Arc<ParsedConfig>)>>,
    roles: dashmap::DashMap<String, (Vec<u8>, Arc<Role>)>,
}

fn paths() -> Vec<PathSpec> {
    vec![
        PathSpec {
            name: "config",
            pattern: "config",
            fields: config::fields(),
            operations: vec![Operation::Read, Operation::Update],
            unauthenticated: false,
            help: "Configure the JWT authentication backend: keys, issuer, algorithms, default role.",
        },
        PathSpec {
            name: "role_list",
            pattern: "role/?",
            fields: vec![],
            operations: vec![Operation::List],
            unauthenticated: false,
            help: "List the roles.",
        },
        PathSpec {
            name: "role",
            pattern: r"role/(?P<name>[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)",
            fields: role::fields(),
            operations: vec![Operation::Read, Operation::Update, Operation::Delete],
            unauthenticated: false,
            help: "Create, read, update or delete a role: the bound claims a JWT must meet and the token it gets.",
        },
        PathSpec {
            name: "login",
            pattern: "login",
            fields: vec![
                Field::new("role", FieldType::LowerCaseString, "The role to log in against; the default role when omitted."),
                Field::new("jwt", FieldType::String, "The signed JWT (compact serialisation)."),
                Field::new("distributed_claim_access_token", FieldType::String, "Accepted for compatibility; unused."),
            ],
            operations: vec![Operation::Update],
            unauthenticated: true,
            help: "Authenticate with a signed JWT and get a Vault token.",
        },
    ]
}

impl JwtBackend {
    /// A backend instance over the mount's storage (the [`authmount_framework::Factory`] shape).
    pub fn factory(storage: View) -> Arc<dyn AuthBackend> {
        Arc::new(JwtBackend {
            router: Router::new(paths()),
            storage,
            config: RwLock::new(None),
            roles: dashmap::DashMap::new(),
        })
    }

    async fn config(&self) -> Result<Option<Arc<ParsedConfig>>> {
        let Some(bytes) = self.storage.get("config").await? else {
            return Ok(None);
        };
        if let Some((seen, parsed)) = &*self.config.read().map_err(poisoned)? {
            if *seen == bytes {
                return Ok(Some(parsed.clone()));
            }
        }
        let stored: JwtConfig = serde_json::from_slice(&bytes)
            .map_err(|e| Error::internal(format!("corrupt config: {e}")))?;
        let parsed = Arc::new(stored.build(false).await?);
        *self.config.write().map_err(poisoned)? = Some((bytes, parsed.clone()));
        Ok(Some(parsed))
    }

    async fn role(&self, name: &str) -> Result<Option<Arc<Role>>> {
        let key = format!("role/{name}");
        let Some(bytes) = self.storage.get(&key).await? else {
            self.roles.remove(name);
            return Ok(None);
        };
        let cached = self
            .roles
            .get(name)
            .filter(|entry| entry.0 == bytes)
            .map(|entry| entry.1.clone()); // the map guard is dropped here, before any await
        if cached.is_some() {
            return Ok(cached);
        }
        let role: Role = serde_json::from_slice(&bytes)
            .map_err(|e| Error::internal(format!("corrupt role {name:?}: {e}")))?;
        let role = Arc::new(role);
        self.roles.insert(name.to_string(), (bytes, role.clone()));
        Ok(Some(role))
    }

    async fn write_config(&self, req: &BackendRequest<'_>) -> Result<Response> {
        let previous = self.config().await?;
        let parsed =
            JwtConfig::from_write(&req.fields, previous.as_ref().map(|p| &p.stored)).await?;
        let bytes = serde_json::to_vec(&parsed.stored).map_err(Error::internal)?;
        self.storage.put("config", &bytes).await?;
        // Keep the key sets fetched by the write-time check.
        *self.config.write().map_err(poisoned)? = Some((bytes, Arc::new(parsed)));
        Ok(Response::default())
    }

    async fn write_role(&self, name: &str, req: &BackendRequest<'_>) -> Result<Response> {
        let stored = self.role(name).await?;
        let write = Role::apply_write(stored.as_deref(), &req.fields, req.mount)?;
        let bytes = serde_json::to_vec(&write.role).map_err(Error::internal)?;
        self.storage.put(&format!("role/{name}"), &bytes).await?;
        self.roles
            .insert(name.to_string(), (bytes, Arc::new(write.role)));
        Ok(Response::warnings(write.warnings))
    }

    async fn login(&self, req: &BackendRequest<'_>) -> Result<Response> {
        let config = self.config().await?.ok_or(LoginError::NotConfigured)?;
        let role_name = match req.fields.str("role").filter(|r| !r.is_empty()) {
            Some(r) => r.to_string(),
            None if !config.stored.default_role.is_empty() => config.stored.default_role.clone(),
            None => return Err(LoginError::MissingRole.into()),
        };
        let role = self
            .role(&role_name)
            .await?
            .ok_or_else(|| LoginError::RoleNotFound(role_name.clone()))?;
        if role.role_type == "oidc" {
            return Err(LoginError::OidcRole.into());
        }
        let token = req
            .fields
            .str("jwt")
            .filter(|t| !t.is_empty())
            .ok_or(LoginError::MissingToken)?;
        login::check_cidrs(&role, req.remote_addr)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let auth = login::verify(&config, &role_name, &role, token, now).await?;
        Ok(Response {
            auth: Some(auth),
            ..Response::default()
        })
    }
}

fn poisoned<T>(_: T) -> Error {
    Error::internal("jwt backend cache lock poisoned")
}

#[async_trait]
impl AuthBackend for JwtBackend {
    fn router(&self) -> &Router {
        &self.router
    }

    fn help(&self) -> &str {
        "The JWT auth method: log in with a JWT signed by a trusted issuer (static keys, a JWKS URL or OIDC discovery), checked against a named role's bound claims, and get a Vault token with the role's policies."
    }

    async fn handle(&self, req: BackendRequest<'_>) -> Result<Response> {
        let name = req.fields.str("name").unwrap_or_default().to_string();
        match (req.spec.name, req.operation) {
            ("config", Operation::Read) => {
                let config = self.config().await?.ok_or(Error::NotFound)?;
                Ok(Response::data(config.stored.read_data()))
            }
            ("config", Operation::Update) => self.write_config(&req).await,
            ("role_list", Operation::List) => {
                let keys = self.storage.list("role/").await?;
                if keys.is_empty() {
                    return Err(Error::NotFound);
                }
                let mut data = Map::new();
                data.insert("keys".into(), json!(keys));
                Ok(Response::data(data))
            }
            ("role", Operation::Read) => {
                let role = self.role(&name).await?.ok_or(Error::NotFound)?;
                Ok(Response::data(role.read_data()))
            }
            ("role", Operation::Update) => self.write_role(&name, &req).await,
            ("role", Operation::Delete) => {
                self.storage.delete(&format!("role/{name}")).await?;
                self.roles.remove(&name);
                Ok(Response::default())
            }
            ("login", Operation::Update) => self.login(&req).await,
            _ => Err(Error::UnsupportedOperation),
        }
    }

    /// Roles have an existence check: creating one needs `create`, changing one `update`.
    async fn exists(&self, req: &BackendRequest<'_>) -> Result<Option<bool>> {
        if req.spec.name != "role" || req.operation != Operation::Update {
            return Ok(None);
        }
        let name = req.fields.str("name").unwrap_or_default();
        Ok(Some(self.role(name).await?.is_some()))
    }

    /// Renewal re-reads the role (reference §1.4): a deleted role fails the renewal with a
    /// 500 `role <name> does not exist during renewal`; otherwise the role's current token
    /// parameters apply.
    async fn renew(&self, req: RenewRequest<'_>) -> Result<TokenParams> {
        let name = req
            .internal_data
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let role = self
            .role(name)
            .await?
            .ok_or_else(|| Error::internal(format!("role {name} does not exist during renewal")))?;
        let mut params = role.token.clone();
        params.policies = req.token.policies.clone();
        Ok(params)
    }
}
