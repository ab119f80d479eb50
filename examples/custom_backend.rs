//! A custom auth method in one file: API keys, written only against authmount's public
//! `AuthBackend` API (see that trait's documentation for the tutorial).
//!
//! * An operator creates a key: `POST /v1/auth/<mount>/keys/<name>` with `policies` and
//!   `ttl`. The answer shows the new key once (`data.key`); the server keeps only its
//!   SHA-256. Writing again updates `policies` and `ttl`; `rotate=true` replaces the key.
//!   `GET` reads the settings (never the key), `DELETE` removes it, `LIST keys/` lists names.
//! * A client logs in: `POST /v1/auth/<mount>/login {"key": "..."}`, no token needed, and
//!   gets a Vault token with the key's policies and TTL. Renewal fails once the key was
//!   deleted or rotated.
//!
//! Plain SHA-256 is enough here because keys are 256 random bits: there is nothing to guess.
//! A method that takes passwords chosen by people needs a slow, salted hash instead.
//!
//! `cargo run --example custom_backend` mounts it at two paths next to the JWT method and
//! logs in at both through the core (no HTTP). `tests/custom_backend.rs` does the same over
//! HTTP, and `examples/embed.rs` serves it from a program of its own.

use std::sync::Arc;

use async_trait::async_trait;
use authmount::framework::tokenutil::{self, TokenSettings};
use authmount::framework::{
    Auth, AuthBackend, BackendContext, BackendRequest, Clock, Core, Error, Field, FieldType,
    InMemory, Operation, Path, Registry, RenewRequest, Request, Response, Result, TokenParams,
    View,
};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The type name to mount: `POST /v1/sys/auth/<path> {"type": "api-key"}`.
pub const TYPE: &str = "api-key";

/// Registers the API-key method under [`TYPE`].
pub fn register(registry: &mut Registry) -> &mut Registry {
    registry.register(TYPE, ApiKeys::factory)
}

/// One mount of the API-key method.
pub struct ApiKeys {
    storage: View,
    clock: Clock,
}

/// A key as stored at `key/<name>`: settings and the SHA-256 of the key, never the key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyEntry {
    /// Lower-case hex SHA-256 of the key.
    pub sha256: String,
    /// The standard token parameters (`token_policies`, `token_ttl`, ...; `policies` and
    /// `ttl` work too, as Vault's deprecated names).
    #[serde(flatten)]
    pub tokens: TokenSettings,
    /// Unix seconds of the key's creation or last rotation.
    pub creation_time: i64,
}

impl ApiKeys {
    /// A backend instance over the mount's storage (the `Factory` shape).
    pub fn factory(ctx: BackendContext) -> Arc<dyn AuthBackend> {
        Arc::new(ApiKeys {
            storage: ctx.storage,
            clock: ctx.clock,
        })
    }

    async fn entry(&self, name: &str) -> Result<Option<KeyEntry>> {
        self.storage.get_json(&format!("key/{name}")).await
    }

    /// Stores a fresh key for `name` (dropping the index of `previous`) and returns it.
    async fn new_key(
        &self,
        name: &str,
        entry: &mut KeyEntry,
        previous: Option<&str>,
    ) -> Result<String> {
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        let key = format!("ak_{}", hex::encode(secret));
        entry.sha256 = sha256_hex(&key);
        entry.creation_time = self.clock.unix();
        self.storage.put_json(&format!("key/{name}"), entry).await?;
        self.storage
            .put_json(&format!("sha256/{}", entry.sha256), &name)
            .await?;
        if let Some(old) = previous {
            self.storage.delete(&format!("sha256/{old}")).await?;
        }
        Ok(key)
    }

    async fn list_keys(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        let keys = self.storage.list("key/").await?;
        if keys.is_empty() {
            return Err(Error::NotFound);
        }
        let mut data = Map::new();
        data.insert("keys".into(), json!(keys));
        Ok(Response::data(data))
    }

    async fn read_key(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let name = req.fields.str("name").unwrap_or_default();
        let entry = self.entry(name).await?.ok_or(Error::NotFound)?;
        Ok(Response::data(read_data(name, &entry)))
    }

    async fn write_key(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let name = req.fields.str("name").unwrap_or_default();
        let stored = self.entry(name).await?;
        let mut entry = stored.clone().unwrap_or_default();
        entry.tokens.apply_write(&req.fields, &req.mount)?;
        let rotate = req.fields.bool("rotate").unwrap_or(false);
        if let (Some(_), false) = (&stored, rotate) {
            self.storage
                .put_json(&format!("key/{name}"), &entry)
                .await?;
            return Ok(Response::default());
        }
        let previous = stored.map(|s| s.sha256);
        let key = self.new_key(name, &mut entry, previous.as_deref()).await?;
        let mut data = read_data(name, &entry);
        data.insert("key".into(), Value::String(key));
        Ok(Response::data(data))
    }

    async fn delete_key(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let name = req.fields.str("name").unwrap_or_default();
        if let Some(entry) = self.entry(name).await? {
            self.storage
                .delete(&format!("sha256/{}", entry.sha256))
                .await?;
            self.storage.delete(&format!("key/{name}")).await?;
        }
        Ok(Response::default())
    }

    async fn login(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let key = req.fields.str("key").unwrap_or_default();
        if key.is_empty() {
            return Err(Error::invalid("missing key"));
        }
        // The index is keyed by the hash, so the key itself is never compared or stored.
        let sha256 = sha256_hex(key);
        let name: Option<String> = self.storage.get_json(&format!("sha256/{sha256}")).await?;
        let entry = match &name {
            Some(name) => self.entry(name).await?,
            None => None,
        };
        let (Some(name), Some(entry)) = (name, entry.filter(|e| e.sha256 == sha256)) else {
            return Err(Error::invalid("invalid API key"));
        };
        let mut auth = Auth::default();
        auth.alias.name = name.clone();
        auth.metadata.insert("key_name".into(), name.clone());
        auth.internal_data.insert("name".into(), json!(name));
        auth.internal_data.insert("sha256".into(), json!(sha256));
        auth.token = entry.tokens.token;
        Ok(Response::login(auth))
    }
}

#[async_trait]
impl AuthBackend for ApiKeys {
    fn paths(self: Arc<Self>) -> Vec<Path> {
        vec![
            Path::new("keys/?")
                .help("List the names of the API keys.")
                .list(&self, Self::list_keys),
            Path::new(r"keys/(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)")
                .help("Create, update, read or delete an API key. Creating (or rotating) answers the new key once; only its SHA-256 is stored.")
                .fields([
                    Field::new("name", FieldType::LowerCaseString, "Name of the key (also the alias name of who logs in with it)."),
                    Field::new("rotate", FieldType::Bool, "Replace the key of an existing entry with a new one (shown once)."),
                ])
                .fields(tokenutil::fields())
                .read(&self, Self::read_key)
                .update(&self, Self::write_key)
                .delete(&self, Self::delete_key),
            Path::new("login")
                .help("Log in with an API key and get a Vault token with the key's policies and TTL.")
                .unauthenticated()
                .field(Field::new("key", FieldType::String, "The API key.").sensitive())
                .update(&self, Self::login),
        ]
    }

    fn help(&self) -> &str {
        "API keys: an operator creates named keys with policies and a TTL; clients log in with a key. Only SHA-256 hashes of the keys are stored."
    }

    /// A token renews only while the key it logged in with still exists unrotated; it
    /// keeps its policies and gets the key's current TTL.
    async fn renew(&self, req: RenewRequest<'_>) -> Result<TokenParams> {
        let field = |k: &str| {
            req.internal_data
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let name = field("name");
        match self.entry(name).await? {
            Some(entry) if entry.sha256 == field("sha256") => Ok(TokenParams {
                ttl: entry.tokens.token.ttl,
                ..req.token.clone()
            }),
            _ => Err(Error::invalid(format!(
                "API key {name:?} was deleted or rotated"
            ))),
        }
    }
}

fn read_data(name: &str, entry: &KeyEntry) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("name".into(), json!(name));
    data.insert("creation_time".into(), json!(entry.creation_time));
    entry.tokens.read_into(&mut data);
    data
}

/// Lower-case hex SHA-256 of `key`.
pub fn sha256_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Mounts the method at `keys` and `team/keys` next to `jwt`, creates a key at each and
/// logs in with it, all through [`Core::handle`] (no HTTP).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut registry = Registry::new();
    authmount::jwt::register(&mut registry);
    register(&mut registry);
    let core = Core::new(Arc::new(InMemory::new()), registry);
    core.dev_init("root").await?;
    let call = |op, path: &str, body: Value| {
        let req = Request::new(op, path).with_token("root").with_data(body);
        core.handle(req)
    };
    call(Operation::Update, "sys/auth/jwt", json!({"type": "jwt"})).await;
    for mount in ["keys", "team/keys"] {
        let reply = call(
            Operation::Update,
            &format!("sys/auth/{mount}"),
            json!({"type": TYPE}),
        )
        .await;
        println!("enable {TYPE} at {mount}: {}", reply.status);
        let reply = call(
            Operation::Update,
            &format!("auth/{mount}/keys/ci"),
            json!({"policies": "deploy", "ttl": "15m"}),
        )
        .await;
        let body = reply.body.unwrap_or_default();
        let key = body["data"]["key"].as_str().unwrap_or_default().to_string();
        println!(
            "create key ci at {mount}: {} (the key is shown once)",
            reply.status
        );
        let login = Request::new(Operation::Update, format!("auth/{mount}/login"))
            .with_data(json!({"key": key}));
        let reply = core.handle(login).await;
        let auth = &reply.body.unwrap_or_default()["auth"];
        println!(
            "login at {mount}: {} policies={} lease_duration={}s metadata={}",
            reply.status, auth["policies"], auth["lease_duration"], auth["metadata"]
        );
    }
    let reply = core
        .handle(Request::new(Operation::Read, "sys/auth").with_token("root"))
        .await;
    let mounts: Vec<String> = reply.body.unwrap_or_default()["data"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    println!("mounted: {}", mounts.join(" "));
    Ok(())
}
