//! # authmount-jwt
//!
//! Vault's JWT auth method as an authmount backend: `config`, `role/<name>`, `role/`
//! (list) and `login`, with Vault's fields, defaults, checks and error strings
//! (`vault-jwt-reference.md` §2–§4, amended by DECISIONS.md); and the OIDC browser login
//! (`oidc/auth_url`, `oidc/callback`, OpenBao's `oidc/poll`: [`oidc_flow`]).
//!
//! Mount it with [`register`] on a [`Registry`] (types `jwt` and `oidc`), then
//! `POST /v1/sys/auth/<path> {"type":"jwt"}`.
//!
//! The parsed config (with its key verifiers and remote key caches, built once per config)
//! and the roles are cached in the backend instance. Each use reads the stored bytes and
//! reuses the cache while they are unchanged, so a write through another server node is
//! seen by the very next login here.

pub(crate) mod cel;
pub(crate) mod cel_role;
pub mod claims;
pub mod config;
pub(crate) mod explain;
pub(crate) mod fetch;
pub(crate) mod jwks;
pub mod keys;
pub(crate) mod lint;
pub(crate) mod login;
pub(crate) mod oidc;
pub mod oidc_flow;
pub(crate) mod oidc_state;
pub(crate) mod oidc_token;
pub mod role;
pub(crate) mod single_use;

pub use crate::fetch::MAX_DOCUMENT_BYTES;
pub use crate::jwks::COOL_DOWN;

use std::sync::Arc;

use async_trait::async_trait;
use authmount_framework::{
    AuthBackend, BackendContext, BackendRequest, Cached, Clock, Error, Field, FieldType, Path,
    Registry, RenewRequest, Response, Result, TokenParams, View,
};
use serde_json::{json, Map, Value};

use crate::config::{JwtConfig, ParsedConfig};
use crate::oidc_flow::{AuthUrlRequest, CallbackOutcome, CallbackRequest, Flow, HtmlPage};
use crate::role::Role;
use crate::single_use::SingleUse;
use std::sync::atomic::{AtomicU64, Ordering};

/// Registers the JWT backend under the types `jwt` and `oidc` (one plugin, two names, as
/// in Vault).
pub fn register(registry: &mut Registry) -> &mut Registry {
    registry
        .register("jwt", JwtBackend::factory)
        .register("oidc", JwtBackend::factory)
}

/// The role name pattern: Vault's `\w(([\w-.]+)?\w)?` in ASCII.
const ROLE_NAME: &str = r"role/(?P<name>[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)";

/// OpenBao's CEL role name pattern (`cel/role/<name>`): as [`ROLE_NAME`], not lower-cased.
const CEL_ROLE_NAME: &str = r"cel/role/(?P<name>[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)";

/// One mount of the JWT auth method.
pub struct JwtBackend {
    storage: View,
    clock: Clock,
    config: Cached<ParsedConfig>,
    roles: Cached<Role>,
    cel_roles: Cached<cel_role::CelRole>,
    /// The minute of this node's last single-use sweep.
    swept_minute: AtomicU64,
}

impl JwtBackend {
    /// A backend instance over the mount's storage (the [`authmount_framework::Factory`] shape).
    pub fn factory(ctx: BackendContext) -> Arc<dyn AuthBackend> {
        Arc::new(JwtBackend {
            storage: ctx.storage,
            clock: ctx.clock,
            config: Cached::new(),
            roles: Cached::new(),
            cel_roles: Cached::new(),
            swept_minute: AtomicU64::new(0),
        })
    }

    async fn config(&self) -> Result<Option<Arc<ParsedConfig>>> {
        let clock = &self.clock;
        self.config
            .get(&self.storage, "config", |bytes| async move {
                let stored: JwtConfig = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::internal(format!("corrupt config: {e}")))?;
                stored.build(false, clock).await
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

    async fn cel_role(&self, name: &str) -> Result<Option<Arc<cel_role::CelRole>>> {
        let key = format!("{}{name}", cel_role::PREFIX);
        self.cel_roles
            .get(&self.storage, &key, |bytes| async move {
                serde_json::from_slice::<cel_role::CelRole>(&bytes)
                    .map_err(|e| Error::internal(format!("corrupt CEL role {name:?}: {e}")))
            })
            .await
    }

    /// `LIST cel/role`: the CEL role names, paged by `after` and `limit` (OpenBao).
    async fn list_cel_roles(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let keys = self.storage.list(cel_role::PREFIX).await?;
        let after = req.fields.str("after").unwrap_or_default();
        let keys = cel_role::page(keys, after, req.fields.int("limit").unwrap_or(0));
        if keys.is_empty() {
            return Err(Error::NotFound);
        }
        Ok(Response::data(Map::from_iter([(
            "keys".into(),
            json!(keys),
        )])))
    }

    async fn read_cel_role(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let name = req.fields.str("name").unwrap_or_default();
        let role = self.cel_role(name).await?.ok_or(Error::NotFound)?;
        Ok(Response::data(role.read_data(name)))
    }

    /// `cel/role/<name>` create/update: the whole role as sent (OpenBao merges nothing),
    /// answered with the role as `data`.
    async fn write_cel_role(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let name = req.fields.str("name").unwrap_or_default();
        let role = cel_role::CelRole::from_write(&req.fields)?;
        let key = format!("{}{name}", cel_role::PREFIX);
        let bytes = serde_json::to_vec(&role).map_err(Error::internal)?;
        self.storage.put(&key, &bytes).await?;
        let data = role.read_data(name);
        self.cel_roles.insert(&key, bytes, Arc::new(role));
        Ok(Response::data(data))
    }

    async fn delete_cel_role(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let key = format!(
            "{}{}",
            cel_role::PREFIX,
            req.fields.str("name").unwrap_or_default()
        );
        self.storage.delete(&key).await?;
        self.cel_roles.remove(&key);
        Ok(Response::default())
    }

    /// `cel/login`: the token checks every JWT login shares ([`login::verify`]) against the
    /// CEL role's audiences and leeways, then its program ([`cel_role::evaluate`]).
    async fn cel_login(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let config = self.config().await?;
        let roles = cel_role::CelRoles {
            backend: &self,
            found: std::sync::Mutex::new(None),
        };
        let attempt = login::Attempt {
            config: config.as_deref(),
            roles: &roles,
            role: req.fields.str("role"),
            jwt: req.fields.str("jwt"),
            remote_addr: req.remote_addr,
            now: self.clock.unix_f64(),
            single_use: SingleUse::new(&self.storage),
            consume: false,
            any_audience_when_unbound: true,
        };
        let mut found = None;
        let verified = login::verify(&attempt, &mut login::Trace::off(), &mut found).await?;
        let verified = verified?;
        let cel_role = roles
            .found
            .lock()
            .ok()
            .and_then(|mut f| f.take())
            .ok_or_else(|| Error::internal("the CEL role checked is gone"))?;
        authmount_framework::metrics::login_role(&verified.role_name);
        let auth = cel_role::evaluate(&cel_role, &verified.role_name, &verified.claims)?;
        Ok(Response::login(auth))
    }

    async fn read_config(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        let config = self.config().await?.ok_or(Error::NotFound)?;
        Ok(Response::data(config.stored.read_data()))
    }

    async fn write_config(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let previous = self.config().await?;
        let parsed = JwtConfig::from_write(
            &req.fields,
            previous.as_ref().map(|p| &p.stored),
            &self.clock,
        )
        .await?;
        let bytes = serde_json::to_vec(&parsed.stored).map_err(Error::internal)?;
        self.storage.put("config", &bytes).await?;
        // Keep the key sets fetched by the write-time check.
        let warnings = parsed.warnings.clone();
        self.config.insert("config", bytes, Arc::new(parsed));
        Ok(Response::warnings(warnings))
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
        let mut warnings = write.warnings;
        if let Some(config) = self.config().await? {
            warnings.extend(lint::weak_bindings(&write.role, &config.stored));
        }
        let bytes = serde_json::to_vec(&write.role).map_err(Error::internal)?;
        self.storage.put(&key, &bytes).await?;
        self.roles.insert(&key, bytes, Arc::new(write.role));
        Ok(Response::warnings(warnings))
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

    /// The login checks ([`login::run`]) for `req`'s `role` and `jwt` from `remote_addr`;
    /// `consume`: remember a single-use token (a login) or only look (explain).
    async fn run_checks(
        &self,
        req: &BackendRequest,
        remote_addr: Option<std::net::IpAddr>,
        consume: bool,
        trace: &mut login::Trace,
    ) -> Result<login::Verdict> {
        let config = self.config().await?;
        let attempt = login::Attempt {
            config: config.as_deref(),
            roles: self,
            role: req.fields.str("role"),
            jwt: req.fields.str("jwt"),
            remote_addr,
            now: self.clock.unix_f64(),
            single_use: SingleUse::new(&self.storage),
            consume,
            any_audience_when_unbound: false,
        };
        login::run(&attempt, trace).await
    }

    async fn login(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let verdict = self
            .run_checks(&req, req.remote_addr, true, &mut login::Trace::off())
            .await?;
        if let Some((name, role)) = &verdict.role {
            authmount_framework::metrics::login_role(name);
            if role.single_use {
                self.sweep_single_use().await;
            }
        }
        Ok(Response::login(verdict.outcome?))
    }

    /// Sweeps the expired single-use entries, at most once a minute on this node (any
    /// node's sweep serves all: the memory is in storage). A failure is logged only.
    async fn sweep_single_use(&self) {
        let now = self.clock.unix().max(0) as u64;
        let minute = now / 60;
        if self.swept_minute.swap(minute, Ordering::Relaxed) == minute {
            return;
        }
        if let Err(e) = SingleUse::new(&self.storage).sweep(now).await {
            tracing::warn!(target: "authmount::jwt::single_use", error = %e, "sweeping expired single-use entries failed");
        }
    }

    /// `POST login/explain`: the login checks of `login`, each with what it compared and
    /// its outcome, without issuing a token or writing anything ([`explain`]).
    async fn login_explain(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let config = self.config().await?;
        explain::authorize(&req, config.as_deref())?;
        let remote_addr = explain::client_address(&req)?;
        let mut trace = login::Trace::on();
        let verdict = self
            .run_checks(&req, remote_addr, false, &mut trace)
            .await?;
        Ok(Response::data(explain::answer(&verdict, &trace)))
    }

    /// The browser login of this mount for one request (`config`: the mount's, if written).
    fn flow<'a>(&'a self, config: Option<&'a ParsedConfig>, req: &'a BackendRequest) -> Flow<'a> {
        Flow {
            storage: &self.storage,
            config,
            roles: self,
            mount: req.mount.path.trim_matches('/'),
            remote_addr: req.remote_addr,
            clock: &self.clock,
        }
    }

    /// `POST oidc/auth_url`: starts a browser login ([`Flow::auth_url`]).
    async fn oidc_auth_url(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let config = self.config().await?;
        let field = |name: &str| req.fields.str(name).unwrap_or_default().to_string();
        let started = self
            .flow(config.as_deref(), &req)
            .auth_url(&AuthUrlRequest {
                role: field("role"),
                redirect_uri: field("redirect_uri"),
                client_nonce: field("client_nonce"),
            })
            .await?;
        Ok(Response::data(started.data()))
    }

    /// The callback's parameters: the query of the provider's redirect (`GET`) or the form it
    /// posts (`POST`, form_post), as the edge hands them over as fields.
    fn callback_request(req: &BackendRequest) -> CallbackRequest {
        let field = |name: &str| req.fields.str(name).unwrap_or_default().to_string();
        CallbackRequest {
            state: field("state"),
            code: field("code"),
            id_token: field("id_token"),
            client_nonce: field("client_nonce"),
            error: field("error"),
            error_description: field("error_description"),
            confirmation: field("confirmation"),
        }
    }

    /// `GET oidc/callback`: finishes a browser login ([`Flow::callback`]): a login answered
    /// as `login` answers it (the token's path is `auth/<mount>/oidc/callback`), or, in
    /// direct mode, a page for the browser.
    async fn oidc_callback(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let config = self.config().await?;
        let outcome = self
            .flow(config.as_deref(), &req)
            .callback(&Self::callback_request(&req))
            .await?;
        Ok(match outcome {
            CallbackOutcome::Login(auth) => Response::login(*auth),
            CallbackOutcome::Page(page) => html(page),
        })
    }

    /// `POST oidc/callback` (form_post mode): keeps what the provider posted and answers the
    /// page that hands the state to the client ([`Flow::form_post`]).
    async fn oidc_form_post(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let config = self.config().await?;
        let page = self
            .flow(config.as_deref(), &req)
            .form_post(&Self::callback_request(&req))
            .await?;
        Ok(html(page))
    }

    /// `POST oidc/poll` (OpenBao's direct and device modes): the login once the user is done
    /// ([`Flow::poll`]).
    async fn oidc_poll(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let config = self.config().await?;
        let field = |name: &str| req.fields.str(name).unwrap_or_default();
        let auth = self
            .flow(config.as_deref(), &req)
            .poll(field("state"), field("client_nonce"))
            .await?;
        Ok(Response::login(auth))
    }
}

/// A page of the browser login, sent as HTML outside Vault's envelope.
fn html(page: HtmlPage) -> Response {
    Response::raw_body(page.status, "text/html; charset=utf-8", page.body)
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
            Path::new("cel/role/?")
                .help("List the CEL roles (OpenBao): 'after' and 'limit' page the names.")
                .fields(cel_role::list_fields())
                .list(&self, Self::list_cel_roles),
            Path::new(CEL_ROLE_NAME)
                .help("Create, read, update or delete a CEL role (OpenBao): a CEL program over the token's claims decides the login.")
                .fields(cel_role::fields())
                // No existence check, as in OpenBao: every write needs `update`.
                .read(&self, Self::read_cel_role)
                .update(&self, Self::write_cel_role)
                .delete(&self, Self::delete_cel_role),
            Path::new("cel/login")
                .help("Authenticate with a signed JWT against a CEL role (OpenBao) and get a Vault token.")
                .unauthenticated()
                .fields(cel_role::login_fields())
                .update(&self, Self::cel_login),
            Path::new("login")
                .help("Authenticate with a signed JWT and get a Vault token.")
                .unauthenticated()
                .fields([
                    Field::new("role", FieldType::LowerCaseString, "The role to log in against; the default role when omitted."),
                    Field::new("jwt", FieldType::String, "The signed JWT (compact serialisation).").sensitive(),
                    Field::new("distributed_claim_access_token", FieldType::String, "Accepted for compatibility; unused.").sensitive(),
                ])
                .update(&self, Self::login),
            Path::new("login/explain")
                .help("Explain a login without logging in: each check of login in order, what it compared and which failed first. Needs sudo on the role's path (auth/<mount>/role/<name>). authmount only.")
                .token_optional()
                .fields([
                    Field::new("role", FieldType::LowerCaseString, "The role to explain the login against; the default role when omitted."),
                    Field::new("jwt", FieldType::String, "The signed JWT (compact serialisation); it never appears in the answer.").sensitive(),
                    Field::new("client_address", FieldType::String, "Judge token_bound_cidrs for this client address instead of the caller's own."),
                    Field::new("distributed_claim_access_token", FieldType::String, "Accepted for compatibility; unused.").sensitive(),
                ])
                .update(&self, Self::login_explain),
            Path::new("oidc/auth_url")
                .help("Start an OIDC browser login: the provider's authorization URL for a role.")
                .unauthenticated()
                .fields([
                    Field::new("role", FieldType::LowerCaseString, "The role to issue an OIDC authorization URL against; the default role when omitted."),
                    Field::new("redirect_uri", FieldType::String, "The OAuth redirect_uri to use in the authorization URL. Not needed with device flow."),
                    Field::new("client_nonce", FieldType::String, "Client-provided nonce that must match during callback, if present. Required only in the direct and device callback modes.").sensitive(),
                ])
                .update(&self, Self::oidc_auth_url),
            Path::new("oidc/callback")
                .help("Finish an OIDC browser login: the provider's redirect (GET, with query parameters) or, in form_post mode, its form (POST).")
                .unauthenticated()
                .fields([
                    Field::new("state", FieldType::String, "The state of the login, as auth_url gave it to the provider."),
                    Field::new("code", FieldType::String, "The authorization code ('no_code' after a form_post).").sensitive(),
                    Field::new("id_token", FieldType::String, "The ID token (form_post with the id_token response type).").sensitive(),
                    Field::new("client_nonce", FieldType::String, "The nonce given to auth_url, if one was.").sensitive(),
                    Field::new("error", FieldType::String, "The provider's error code (RFC 6749 §4.1.2.1)."),
                    Field::new("error_description", FieldType::String, "The provider's error description."),
                    Field::new("error_uri", FieldType::String, "The provider's error page (ignored)."),
                    Field::new("confirmation", FieldType::String, "Set by the confirmation page of the direct callback mode."),
                ])
                .read(&self, Self::oidc_callback)
                .update(&self, Self::oidc_form_post),
            Path::new("oidc/poll")
                .help("Poll for the login of an OIDC browser login in the direct or device callback mode (OpenBao).")
                .unauthenticated()
                .fields([
                    Field::new("state", FieldType::String, "The state auth_url answered."),
                    Field::new("client_nonce", FieldType::String, "The nonce given to auth_url.").sensitive(),
                ])
                .update(&self, Self::oidc_poll),
        ]
    }

    fn help(&self) -> &str {
        "The JWT auth method: log in with a JWT signed by a trusted issuer (static keys, a JWKS URL or OIDC discovery), checked against a named role's bound claims, and get a Vault token with the role's policies."
    }

    /// Renewal re-reads the role (reference §1.4): a deleted role fails the renewal with a
    /// 500 `role <name> does not exist during renewal`; otherwise the role's current token
    /// parameters apply.
    async fn renew(&self, req: RenewRequest<'_>) -> Result<TokenParams> {
        if let Some(name) = req.internal_data.get("cel_role").and_then(Value::as_str) {
            // A CEL login: renewed while its role exists, with the parameters it got.
            self.cel_role(name).await?.ok_or_else(|| {
                Error::internal(format!("cel role {name} does not exist during renewal"))
            })?;
            return Ok(req.token.clone());
        }
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
