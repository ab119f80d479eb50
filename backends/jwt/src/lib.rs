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
pub mod role;

use std::sync::Arc;

use async_trait::async_trait;
use authmount_framework::cache::Cached;
use authmount_framework::{
    AuthBackend, BackendContext, BackendRequest, Clock, Error, Field, FieldType, Path, Registry,
    RenewRequest, Response, Result, TokenParams, View,
};
use serde_json::{json, Map, Value};

use crate::config::{JwtConfig, ParsedConfig};
use crate::login::LoginError;
use crate::role::{Role, RoleType};

/// Registers the JWT backend under the types `jwt` and `oidc` (one plugin, two names, as
/// in Vault).
pub fn register(registry: &mut Registry) -> &mut Registry {
    registry
        .register("jwt", JwtBackend::factory)
        .register("oidc", JwtBackend::factory)
}

/// The role name pattern: Vault's `\w(([\w-.]+)?\w)?` in ASCII.
const ROLE_NAME: &str = r"role/(?P<name>[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)";

/// One mount of the JWT auth method.
pub struct JwtBackend {
    storage: View,
    clock: Clock,
    config: Cached<ParsedConfig>,
    roles: Cached<Role>,
}

impl JwtBackend {
    /// A backend instance over the mount's storage (the [`authmount_framework::Factory`] shape).
    pub fn factory(ctx: BackendContext) -> Arc<dyn AuthBackend> {
        Arc::new(JwtBackend {
            storage: ctx.storage,
            clock: ctx.clock,
            config: Cached::new(),
            roles: Cached::new(),
        })
    }

    async fn config(&self) -> Result<Option<Arc<ParsedConfig>>> {
        self.config
            .get(&self.storage, "config", |bytes| async move {
                let stored: JwtConfig = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::internal(format!("corrupt config: {e}")))?;
                stored.build(false).await
            })
            .await
    }

    async fn role(&self, name: &str) -> Result<Option<Arc<Role>>> {
        self.roles
            .get(&self.storage, &format!("role/{name}"), |bytes| async move {
                serde_json::from_slice::<Role>(&bytes)
                    .map_err(|e| Error::internal(format!("corrupt role {name:?}: {e}")))
            })
            .await
    }

    async fn read_config(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        let config = self.config().await?.ok_or(Error::NotFound)?;
        Ok(Response::data(config.stored.read_data()))
    }

    async fn write_config(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let previous = self.config().await?;
        let parsed =
            JwtConfig::from_write(&req.fields, previous.as_ref().map(|p| &p.stored)).await?;
        let bytes = serde_json::to_vec(&parsed.stored).map_err(Error::internal)?;
        self.storage.put("config", &bytes).await?;
        // Keep the key sets fetched by the write-time check.
        self.config.insert("config", bytes, Arc::new(parsed));
        Ok(Response::default())
    }

    async fn list_roles(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        let keys = self.storage.list("role/").await?;
        if keys.is_empty() {
            return Err(Error::NotFound);
        }
        let mut data = Map::new();
        data.insert("keys".into(), json!(keys));
        Ok(Response::data(data))
    }

    async fn read_role(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let name = req.fields.str("name").unwrap_or_default();
        let role = self.role(name).await?.ok_or(Error::NotFound)?;
        Ok(Response::data(role.read_data()))
    }

    async fn write_role(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let name = req.fields.str("name").unwrap_or_default();
        let key = format!("role/{name}");
        let stored = self.role(name).await?;
        let write = Role::apply_write(stored.as_deref(), &req.fields, &req.mount)?;
        let bytes = serde_json::to_vec(&write.role).map_err(Error::internal)?;
        self.storage.put(&key, &bytes).await?;
        self.roles.insert(&key, bytes, Arc::new(write.role));
        Ok(Response::warnings(write.warnings))
    }

    async fn delete_role(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let key = format!("role/{}", req.fields.str("name").unwrap_or_default());
        self.storage.delete(&key).await?;
        self.roles.remove(&key);
        Ok(Response::default())
    }

    /// Roles have an existence check: creating one needs `create`, changing one `update`.
    async fn role_exists(self: Arc<Self>, req: BackendRequest) -> Result<bool> {
        let name = req.fields.str("name").unwrap_or_default();
        Ok(self.role(name).await?.is_some())
    }

    async fn login(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
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
        if role.role_type == RoleType::Oidc {
            return Err(LoginError::OidcRole.into());
        }
        let token = req
            .fields
            .str("jwt")
            .filter(|t| !t.is_empty())
            .ok_or(LoginError::MissingToken)?;
        login::check_cidrs(&role, req.remote_addr)?;
        let now = self.clock.unix_f64();
        let auth = login::verify(&config, &role_name, &role, token, now).await?;
        Ok(Response::login(auth))
    }
}

#[async_trait]
impl AuthBackend for JwtBackend {
    fn paths(self: Arc<Self>) -> Vec<Path> {
        vec![
            Path::new("config")
                .help("Configure the JWT authentication backend: keys, issuer, algorithms, default role.")
                .fields(config::fields())
                .read(&self, Self::read_config)
                .update(&self, Self::write_config),
            Path::new("role/?")
                .help("List the roles.")
                .list(&self, Self::list_roles),
            Path::new(ROLE_NAME)
                .help("Create, read, update or delete a role: the bound claims a JWT must meet and the token it gets.")
                .fields(role::fields())
                .existence_check(&self, Self::role_exists)
                .read(&self, Self::read_role)
                .update(&self, Self::write_role)
                .delete(&self, Self::delete_role),
            Path::new("login")
                .help("Authenticate with a signed JWT and get a Vault token.")
                .unauthenticated()
                .fields([
                    Field::new("role", FieldType::LowerCaseString, "The role to log in against; the default role when omitted."),
                    Field::new("jwt", FieldType::String, "The signed JWT (compact serialisation).").sensitive(),
                    Field::new("distributed_claim_access_token", FieldType::String, "Accepted for compatibility; unused.").sensitive(),
                ])
                .update(&self, Self::login),
        ]
    }

    fn help(&self) -> &str {
        "The JWT auth method: log in with a JWT signed by a trusted issuer (static keys, a JWKS URL or OIDC discovery), checked against a named role's bound claims, and get a Vault token with the role's policies."
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
        let mut params = role.tokens.token.clone();
        params.policies = req.token.policies.clone();
        Ok(params)
    }
}
