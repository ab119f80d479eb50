//! The OIDC browser login of Vault's JWT/OIDC method (`oidc/auth_url`, `oidc/callback`) and
//! OpenBao's headless modes (`callback_mode` `direct` and `device`, `oidc/poll`), as library
//! functions the path handlers call: [`Flow::auth_url`], [`Flow::callback`],
//! [`Flow::form_post`], [`Flow::poll`].
//!
//! Rules (reference §4.10, checked against OpenBao 2.7.2; `tests/compat/oidc_openbao_notes.md`):
//! * `auth_url` stores a pending login (module `oidc_state`, in the mount's storage, 10
//!   minutes, single use) and answers the provider's authorization endpoint with
//!   `client_id`, `redirect_uri`, `response_type`, `scope` (`openid` plus the role's
//!   `oidc_scopes`), `state` (`st_` + 20 alphanumerics), `nonce` (`n_` + 20), PKCE S256 for the
//!   code flow (RFC 7636), `max_age` when the role has one, and `response_mode=form_post`
//!   whenever the config says `form_post`, for `code` too (OpenBao asks for it only with
//!   `id_token`: a deliberate improvement).
//! * The redirect URI must be one of the role's `allowed_redirect_uris`, exactly (case
//!   included); for loopback hosts (`localhost`, `127.0.0.1`, `[::1]`) any port (RFC 8252 §7.3).
//!   Any other is refused with 400 `unauthorized redirect_uri` (OpenBao: 200 with an empty
//!   `auth_url`: a deliberate difference).
//! * The callback spends its state whatever happens next, then checks the provider's
//!   `error`, the client nonce, the role's CIDRs, exchanges the code (PKCE verifier, client
//!   secret) or takes the form-posted ID token, validates the ID token
//!   (`oidc_token::verify_id_token`), merges the userinfo claims, and produces the
//!   same `Auth` as the JWT login (module `login`).
//! * Errors are 400 `Vault login failed. <reason>` (OpenBao says `OpenBao login failed.`),
//!   403 for a CIDR mismatch; never a token or secret in them.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use authmount_framework::{Auth, Clock, Error, Result, View};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::distributions::Alphanumeric;
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::claims::Leeways;
use crate::config::ParsedConfig;
use crate::keys::Alg;
use crate::login::{self, LoginError};
use crate::oidc::{DiscoverySource, Endpoints};
use crate::oidc_state::{sha256_hex, Mode, PendingLogin, StateStore, StoredAuth, STATE_TTL};
use crate::oidc_token::{self, Client, IdTokenRules, TokenError};
use crate::role::Role;

/// The prefix of the browser login's failures (Vault's `errLoginFailed`).
pub const LOGIN_FAILED: &str = "Vault login failed.";
/// The prefix of a failed implicit-flow ID token (Vault's `errTokenVerification`).
pub const TOKEN_VERIFICATION_FAILED: &str = "Token verification failed.";
/// The `code` value of the GET that follows a form_post (the code or ID token is in the
/// pending login already).
pub const NO_CODE: &str = "no_code";
/// The default poll interval of the direct and device modes, in seconds (OpenBao).
pub const DEFAULT_POLL_INTERVAL: i64 = 5;

/// The error values of an authorization error response that are shown as they are
/// (RFC 6749 §4.1.2.1); any other becomes a generic message.
const KNOWN_PROVIDER_ERRORS: [&str; 7] = [
    "invalid_request",
    "unauthorized_client",
    "access_denied",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
];

/// Where the flow reads roles: the backend's role cache.
#[async_trait]
pub trait Roles: Send + Sync {
    /// The role `name` (lower-cased), or `None`.
    async fn role(&self, name: &str) -> Result<Option<Arc<Role>>>;
}

#[async_trait]
impl Roles for crate::JwtBackend {
    async fn role(&self, name: &str) -> Result<Option<Arc<Role>>> {
        crate::JwtBackend::role(self, name).await
    }
}

/// The body of `oidc/auth_url` (Vault API: `role`, `redirect_uri`, `client_nonce`).
#[derive(Debug, Clone, Default)]
pub struct AuthUrlRequest {
    /// `role`, lower-cased; empty for the config's `default_role`.
    pub role: String,
    /// `redirect_uri` (not needed in device mode).
    pub redirect_uri: String,
    /// `client_nonce`: optional, required in the direct and device modes.
    pub client_nonce: String,
}

/// The answer of `oidc/auth_url`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthUrl {
    /// `auth_url`: where the browser goes.
    pub auth_url: String,
    /// `state` (direct and device modes only: the client polls with it).
    pub state: Option<String>,
    /// `poll_interval` in seconds (direct and device modes), a string as OpenBao sends it.
    pub poll_interval: Option<String>,
    /// `user_code` (device mode, when the provider gives no complete verification URI).
    pub user_code: Option<String>,
}

impl AuthUrl {
    /// The response's `data` object.
    pub fn data(&self) -> Map<String, Value> {
        let mut data = Map::new();
        data.insert("auth_url".into(), json!(self.auth_url));
        for (key, value) in [
            ("state", &self.state),
            ("poll_interval", &self.poll_interval),
            ("user_code", &self.user_code),
        ] {
            if let Some(v) = value {
                data.insert(key.into(), json!(v));
            }
        }
        data
    }
}

/// The parameters of the callback: the query of the provider's redirect (GET), or the
/// form the provider posts (POST, form_post mode), plus the client's `client_nonce`.
#[derive(Debug, Clone, Default)]
pub struct CallbackRequest {
    /// `state` (possibly with `,ns=<namespace>` appended, which is ignored).
    pub state: String,
    /// `code`; [`NO_CODE`] after a form_post.
    pub code: String,
    /// `id_token` (form_post with the implicit response type).
    pub id_token: String,
    /// `client_nonce`.
    pub client_nonce: String,
    /// `error` of an authorization error response (RFC 6749 §4.1.2.1).
    pub error: String,
    /// `error_description`.
    pub error_description: String,
    /// `confirmation` (direct mode's confirmation page).
    pub confirmation: String,
}

/// An HTML answer (form_post, and the browser pages of direct mode).
#[derive(Debug, Clone, PartialEq)]
pub struct HtmlPage {
    /// HTTP status.
    pub status: u16,
    /// The page (`text/html; charset=utf-8`).
    pub body: String,
}

/// What a callback GET ends with.
#[derive(Debug, Clone)]
pub enum CallbackOutcome {
    /// A login: the core turns it into a token, as for `login`.
    Login(Box<Auth>),
    /// A page for the browser (direct mode).
    Page(HtmlPage),
}

/// One request to the browser login of one mount.
pub struct Flow<'a> {
    /// The mount's storage (pending logins live under `oidc/`).
    pub storage: &'a View,
    /// The mount's config, if written.
    pub config: Option<&'a ParsedConfig>,
    /// The mount's roles.
    pub roles: &'a dyn Roles,
    /// The mount path without slashes at the ends (`team/oidc`), for the form_post page.
    pub mount: &'a str,
    /// The client's address (CIDR checks, the confirmation page).
    pub remote_addr: Option<IpAddr>,
    /// The clock of every time rule: state expiry, ID token times, `max_age`.
    pub clock: &'a Clock,
}

/// The OIDC-flow parts of a config: discovery source and client credentials.
struct Provider<'a> {
    config: &'a ParsedConfig,
    discovery: &'a DiscoverySource,
    client: Client<'a>,
}

impl<'a> Provider<'a> {
    fn of(config: &'a ParsedConfig) -> Option<Provider<'a>> {
        let c = &config.stored;
        if c.oidc_client_id.is_empty() || c.oidc_client_secret.is_empty() {
            return None;
        }
        Some(Provider {
            config,
            discovery: config.discovery.as_deref()?,
            client: Client {
                id: &c.oidc_client_id,
                secret: &c.oidc_client_secret,
            },
        })
    }

    /// The algorithms an ID token may use: the config's, RS256 when it lists none (Vault).
    fn algs(&self) -> Vec<Alg> {
        if self.config.stored.jwt_supported_algs.is_empty() {
            vec![Alg::RS256]
        } else {
            self.config.algs.clone()
        }
    }

    fn implicit(&self) -> bool {
        self.config
            .stored
            .oidc_response_types
            .iter()
            .any(|t| t == "id_token")
    }

    fn form_post(&self) -> bool {
        self.config.stored.oidc_response_mode == "form_post"
    }

    async fn endpoints(&self) -> Result<&'a Endpoints> {
        self.discovery.endpoints().await.map_err(|cause| {
            tracing::warn!(target: "authmount::jwt::oidc", %cause, "OIDC discovery failed");
            Error::invalid(format!(
                "error getting provider for login operation: {cause}"
            ))
        })
    }
}

fn login_failed(reason: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{LOGIN_FAILED} {reason}"))
}

fn expired_state() -> Error {
    login_failed("Expired or missing OAuth state.")
}

/// `prefix` followed by `n` random ASCII letters and digits, from the OS generator
/// (Vault's state `st_` and nonce `n_` values: 20 characters).
pub fn random_id(prefix: &str, n: usize) -> String {
    let tail: String = OsRng
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect();
    format!("{prefix}{tail}")
}

/// A PKCE pair (RFC 7636 §4.1–4.2): a verifier of 43 base64url characters (32 random bytes)
/// and its S256 challenge, `BASE64URL(SHA256(verifier))`.
pub fn pkce_pair() -> (String, String) {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = pkce_challenge(&verifier);
    (verifier, challenge)
}

/// The S256 code challenge of `verifier` (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The URI without the port when its host is a loopback literal (`localhost`, `127.0.0.1`,
/// `[::1]`, as written: case counts), else `None`. The URI must be absolute.
fn without_loopback_port(uri: &str) -> Option<String> {
    reqwest::Url::parse(uri).ok()?;
    let (scheme, rest) = uri.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let host = if hostport.starts_with('[') {
        &hostport[..=hostport.find(']')?]
    } else {
        hostport.split(':').next()?
    };
    if !["localhost", "127.0.0.1", "[::1]"].contains(&host) {
        return None;
    }
    let userinfo = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
    Some(format!("{scheme}://{userinfo}{host}{tail}"))
}

/// True when `uri` may receive the authorization response: it equals an entry of
/// `allowed` exactly, or, for a loopback host, equals one once both ports are ignored
/// (RFC 8252 §7.3). Source: Vault's `validRedirect`.
pub fn redirect_allowed(uri: &str, allowed: &[String]) -> bool {
    match without_loopback_port(uri) {
        None => allowed.iter().any(|a| a == uri),
        Some(bare) => allowed
            .iter()
            .any(|a| without_loopback_port(a).as_deref() == Some(bare.as_str())),
    }
}

/// Splits a `namespace` query parameter off `uri` (Vault's `namespace_in_state`): the URI
/// without it, and its value (empty when absent). A URI that does not parse is returned as is.
fn split_namespace(uri: &str) -> (String, String) {
    let Ok(mut url) = reqwest::Url::parse(uri) else {
        return (uri.to_string(), String::new());
    };
    let mut namespace = String::new();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, v)| {
            if k == "namespace" {
                namespace = v.to_string();
                false
            } else {
                true
            }
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if namespace.is_empty() {
        return (uri.to_string(), namespace);
    }
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    (url.to_string(), namespace)
}

/// The state as stored: without a `,ns=<namespace>` suffix.
fn bare_state(state: &str) -> &str {
    state.split(",ns=").next().unwrap_or(state)
}

impl Flow<'_> {
    /// Unix seconds by the mount's clock.
    fn now(&self) -> u64 {
        self.clock.unix().max(0) as u64
    }

    fn provider(&self) -> Result<Provider<'_>> {
        let config = self
            .config
            .ok_or_else(|| Error::invalid("could not load configuration"))?;
        Provider::of(config)
            .ok_or_else(|| Error::invalid("OIDC login is not configured for this mount"))
    }

    fn states(&self) -> StateStore<'_> {
        StateStore::new(self.storage)
    }

    /// `POST auth/<mount>/oidc/auth_url`: starts a login and answers where the browser goes.
    ///
    /// Errors (400, in this order): `could not load configuration`, `OIDC login is not
    /// configured for this mount`, `missing role`, `role "<name>" could not be found`,
    /// `missing client_nonce` (direct and device modes), `missing redirect_uri`,
    /// `unauthorized redirect_uri`, `error getting provider for login operation: <cause>`
    /// (discovery), device authorization failures; storage failures (500/503).
    pub async fn auth_url(&self, req: &AuthUrlRequest) -> Result<AuthUrl> {
        let provider = self.provider()?;
        let role_name = match req.role.as_str() {
            "" => provider.config.stored.default_role.clone(),
            name => name.to_string(),
        };
        if role_name.is_empty() {
            return Err(Error::invalid("missing role"));
        }
        let role = self
            .roles
            .role(&role_name)
            .await?
            .ok_or_else(|| Error::from(LoginError::RoleNotFound(role_name.clone())))?;
        let mode = role.callback_mode;
        if req.client_nonce.is_empty() && mode != Mode::Client {
            return Err(Error::invalid("missing client_nonce"));
        }
        let poll_interval = (role.poll_interval > 0).then_some(role.poll_interval);
        let now = self.now();
        let mut login = PendingLogin {
            role: role_name.clone(),
            client_nonce_hash: if req.client_nonce.is_empty() {
                String::new()
            } else {
                sha256_hex(&req.client_nonce)
            },
            max_age: role.max_age,
            created: now,
            expires: now + STATE_TTL,
            requester: self.remote_addr.map(|a| a.to_string()).unwrap_or_default(),
            mode,
            ..PendingLogin::default()
        };
        let state = random_id("st_", 20);
        let scope = scopes(&role);
        self.sweep(now).await;

        if mode == Mode::Device {
            let endpoints = provider.endpoints().await?;
            let endpoint = endpoints.device_authorization.as_deref().ok_or_else(|| {
                Error::invalid("error authorizing device: no device auth endpoint url discovered")
            })?;
            let device = oidc_token::device_authorize(
                provider.discovery.fetcher(),
                endpoint,
                provider.client,
                &scope,
            )
            .await
            .map_err(|e| Error::invalid(format!("error authorizing device: {e}")))?;
            login.device_code = device.device_code.clone();
            self.states().insert(&state, &login).await?;
            let complete = !device.verification_uri_complete.is_empty();
            let interval = poll_interval
                .or((device.interval > 0).then_some(device.interval))
                .unwrap_or(DEFAULT_POLL_INTERVAL);
            return Ok(AuthUrl {
                auth_url: if complete {
                    device.verification_uri_complete
                } else {
                    device.verification_uri
                },
                state: Some(state),
                poll_interval: Some(interval.to_string()),
                user_code: (!complete).then_some(device.user_code),
            });
        }

        if req.redirect_uri.is_empty() {
            return Err(Error::invalid("missing redirect_uri"));
        }
        let (mut redirect_uri, namespace) = if provider.config.stored.namespace_in_state {
            split_namespace(&req.redirect_uri)
        } else {
            (req.redirect_uri.clone(), String::new())
        };
        let allowed = role.allowed_redirect_uris.as_deref().unwrap_or_default();
        if !redirect_allowed(&redirect_uri, allowed) {
            tracing::warn!(target: "authmount::jwt::oidc", redirect_uri = %redirect_uri, "unauthorized redirect_uri");
            return Err(Error::invalid("unauthorized redirect_uri"));
        }
        if provider.form_post() {
            // A UI address becomes the API's, which receives the post (Vault).
            redirect_uri = redirect_uri.replacen("ui/vault", "v1", 1);
        }
        let endpoints = provider.endpoints().await?;
        login.redirect_uri = redirect_uri.clone();
        login.nonce = random_id("n_", 20);
        login.implicit = provider.implicit();
        let mut url = reqwest::Url::parse(&endpoints.authorization).map_err(|e| {
            Error::invalid(format!(
                "error getting provider for login operation: invalid authorization_endpoint: {e}"
            ))
        })?;
        let state_param = if namespace.is_empty() {
            state.clone()
        } else {
            format!("{state},ns={namespace}")
        };
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", provider.client.id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair(
                    "response_type",
                    if login.implicit { "id_token" } else { "code" },
                )
                .append_pair("scope", &scope)
                .append_pair("state", &state_param)
                .append_pair("nonce", &login.nonce);
            if !login.implicit {
                let (verifier, challenge) = pkce_pair();
                login.code_verifier = verifier;
                q.append_pair("code_challenge", &challenge)
                    .append_pair("code_challenge_method", "S256");
            }
            if provider.form_post() {
                q.append_pair("response_mode", "form_post");
            }
            if role.max_age > 0 {
                q.append_pair("max_age", &role.max_age.to_string());
            }
        }
        self.states().insert(&state, &login).await?;
        Ok(AuthUrl {
            auth_url: url.to_string(),
            state: (mode == Mode::Direct).then_some(state),
            poll_interval: (mode == Mode::Direct)
                .then(|| poll_interval.unwrap_or(DEFAULT_POLL_INTERVAL).to_string()),
            user_code: None,
        })
    }

    /// Removes expired pending logins of this mount (cheap: only expired minutes are read).
    /// A failure is logged and does not fail the request.
    async fn sweep(&self, now: u64) {
        if let Err(e) = self.states().sweep(now).await {
            tracing::warn!(target: "authmount::jwt::oidc", error = %e, "sweeping expired OAuth states failed");
        }
    }

    /// `GET auth/<mount>/oidc/callback`: finishes a login (the provider's redirect, or the
    /// GET after a form_post with `code=no_code`).
    ///
    /// Errors: 400 `Vault login failed. Could not load configuration`, `... Expired or missing
    /// OAuth state.` (unknown, used, expired, or another mount's), `... Role could not be
    /// found`, `... <provider error>`, `invalid client_nonce`, 403 (CIDR), `... No code or
    /// id_token received.`, `... Error exchanging oidc code: "<cause>".`, `Token verification
    /// failed. <cause>` (form-posted ID token), `... sub claim does not match bound subject`,
    /// `... <identity or bound claims error>`. In direct mode these become HTML pages.
    pub async fn callback(&self, req: &CallbackRequest) -> Result<CallbackOutcome> {
        let config = self
            .config
            .ok_or_else(|| login_failed("Could not load configuration"))?;
        let state = bare_state(&req.state);
        let now = self.now();
        let states = self.states();
        let Some((pending, _)) = states.get(state, now).await? else {
            return Err(expired_state());
        };
        if pending.auth.is_some() || pending.mode == Mode::Device {
            return Err(expired_state());
        }
        let role = self.roles.role(&pending.role).await?;
        let direct = pending.mode == Mode::Direct;
        if let Some(role) = &role {
            if direct && !role.oidc_disable_confirmation && req.confirmation.is_empty() {
                return Ok(CallbackOutcome::Page(pages::confirm(
                    &pending.requester,
                    &pending.role,
                )));
            }
        }
        let Some(taken) = states.take(state, now).await? else {
            return Err(expired_state());
        };
        let result = self.finish(config, role, &taken.login, req).await;
        if !direct {
            forget(&states, &taken).await;
            return result.map(|auth| CallbackOutcome::Login(Box::new(auth)));
        }
        match result {
            Ok(auth) => {
                let mut done = taken.login.clone();
                done.auth = Some(StoredAuth::from(&auth));
                if !states.put_back(&taken, &done).await? {
                    return Err(expired_state());
                }
                Ok(CallbackOutcome::Page(pages::success()))
            }
            Err(e) => {
                forget(&states, &taken).await;
                Ok(CallbackOutcome::Page(pages::error(
                    e.status(),
                    &error_text(&e),
                )))
            }
        }
    }

    /// The rest of a callback once the state is taken: provider error, client nonce, CIDRs,
    /// code or ID token, claims, identity.
    async fn finish(
        &self,
        config: &ParsedConfig,
        role: Option<Arc<Role>>,
        pending: &PendingLogin,
        req: &CallbackRequest,
    ) -> Result<Auth> {
        let role = role.ok_or_else(|| login_failed("Role could not be found"))?;
        authmount_framework::metrics::login_role(&pending.role);
        let error = req.error.trim().to_lowercase();
        if !error.is_empty() {
            tracing::warn!(target: "authmount::jwt::oidc", error = ?error, error_description = ?req.error_description, "OIDC callback received an error from the provider");
            return Err(if KNOWN_PROVIDER_ERRORS.contains(&error.as_str()) {
                login_failed(error)
            } else {
                login_failed("An unknown error occurred during OIDC authentication. Check server logs for details")
            });
        }
        if pending.mode != Mode::Direct && !pending.client_nonce_matches(&req.client_nonce) {
            return Err(Error::invalid("invalid client_nonce"));
        }
        login::check_cidrs(&role, self.remote_addr)?;
        let provider = Provider::of(config)
            .ok_or_else(|| login_failed("OIDC login is not configured for this mount"))?;
        let code = match req.code.as_str() {
            NO_CODE => pending.code.as_str(),
            code => code,
        };
        let (claims, access_token) = if code.is_empty() {
            if pending.id_token.is_empty() {
                return Err(login_failed("No code or id_token received."));
            }
            let r = RulesOwned::new(&provider, &role, pending, None, None);
            let claims = oidc_token::verify_id_token(
                provider.config.keys.as_ref(),
                &pending.id_token,
                &r.rules(),
                self.clock.unix_f64(),
            )
            .await
            .map_err(|e| Error::invalid(format!("{TOKEN_VERIFICATION_FAILED} {e}")))?;
            (claims, None)
        } else {
            let exchange_failed = |e: &dyn std::fmt::Display| {
                login_failed(format!("Error exchanging oidc code: {:?}.", e.to_string()))
            };
            let endpoints = provider.endpoints().await?;
            let token_endpoint = endpoints
                .token
                .as_deref()
                .ok_or_else(|| exchange_failed(&"the provider has no token_endpoint"))?;
            let tokens = oidc_token::exchange_code(
                provider.discovery.fetcher(),
                token_endpoint,
                provider.client,
                code,
                &pending.redirect_uri,
                &pending.code_verifier,
            )
            .await
            .map_err(|e| exchange_failed(&e))?;
            let access = (!tokens.access_token.is_empty()).then_some(tokens.access_token.as_str());
            let r = RulesOwned::new(&provider, &role, pending, access, Some(code));
            let claims = oidc_token::verify_id_token(
                provider.config.keys.as_ref(),
                &tokens.id_token,
                &r.rules(),
                self.clock.unix_f64(),
            )
            .await
            .map_err(|e| exchange_failed(&format!("id_token failed verification: {e}")))?;
            (claims, access.map(str::to_string))
        };
        self.identity(&provider, &role, pending, claims, access_token.as_deref())
            .await
    }

    /// Bound subject, userinfo, then the JWT login's identity and bound claims.
    async fn identity(
        &self,
        provider: &Provider<'_>,
        role: &Role,
        pending: &PendingLogin,
        mut claims: Map<String, Value>,
        access_token: Option<&str>,
    ) -> Result<Auth> {
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !role.bound_subject.is_empty() && role.bound_subject != subject {
            return Err(login_failed("sub claim does not match bound subject"));
        }
        if let Some(token) = access_token {
            let endpoints = provider.endpoints().await?;
            if let Some(endpoint) = &endpoints.userinfo {
                match oidc_token::userinfo(
                    provider.discovery.fetcher(),
                    endpoint,
                    token,
                    &subject,
                    &endpoints.issuer,
                )
                .await
                {
                    Ok(extra) => claims.extend(extra),
                    Err(e) => {
                        tracing::warn!(target: "authmount::jwt::oidc", error = %e, "error reading the userinfo endpoint")
                    }
                }
            }
        }
        if role.verbose_oidc_logging {
            let names: Vec<&String> = claims.keys().collect();
            tracing::debug!(target: "authmount::jwt::oidc", role = %pending.role, claims = ?names, "OIDC provider response");
        }
        login::identity(&claims, &pending.role, role).map_err(|e| match e {
            LoginError::CidrDenied => Error::PermissionDenied,
            other => login_failed(other),
        })
    }

    /// `POST auth/<mount>/oidc/callback` (form_post mode): keeps the posted `code` or
    /// `id_token` in the pending login and answers a page that hands the state to the
    /// client, which then calls the GET with `code=no_code`.
    ///
    /// Errors: 405 when the config's mode is not form_post (Vault); 400 `Vault login failed.
    /// Could not load configuration.`. An unknown state is a 400 HTML page.
    pub async fn form_post(&self, req: &CallbackRequest) -> Result<HtmlPage> {
        let config = self
            .config
            .ok_or_else(|| login_failed("Could not load configuration."))?;
        if config.stored.oidc_response_mode != "form_post" {
            return Err(Error::UnsupportedOperation);
        }
        let state = bare_state(&req.state);
        let states = self.states();
        for _ in 0..3 {
            let Some((mut pending, seen)) = states.get(state, self.now()).await? else {
                break;
            };
            if pending.auth.is_some() || pending.mode == Mode::Device {
                break;
            }
            pending.code = req.code.clone();
            pending.id_token = req.id_token.clone();
            if states.update(state, &seen, &pending).await? {
                return Ok(pages::form_post(self.mount, state));
            }
        }
        Ok(pages::error(
            400,
            &format!("{LOGIN_FAILED} Expired or missing OAuth state."),
        ))
    }

    /// `POST auth/<mount>/oidc/poll` (OpenBao's direct and device modes): the login once the
    /// user finished, else 400 `authorization_pending` (or `slow_down`).
    ///
    /// Errors: 400 `Vault login failed. Expired or missing OAuth state.`, `invalid
    /// client_nonce` (the state is then spent), `Vault login failed. Role could not be found`,
    /// `authorization failed: <error>` (device), the callback's errors for the ID token.
    pub async fn poll(&self, state: &str, client_nonce: &str) -> Result<Auth> {
        let state = bare_state(state);
        let now = self.now();
        let states = self.states();
        let Some((pending, _)) = states.get(state, now).await? else {
            return Err(expired_state());
        };
        if !pending.client_nonce_matches(client_nonce) {
            if let Some(taken) = states.take(state, now).await? {
                forget(&states, &taken).await;
            }
            return Err(Error::invalid("invalid client_nonce"));
        }
        match pending.mode {
            Mode::Client => Err(expired_state()),
            Mode::Direct => {
                if pending.auth.is_none() {
                    return Err(Error::invalid("authorization_pending"));
                }
                let taken = states.take(state, now).await?.ok_or_else(expired_state)?;
                forget(&states, &taken).await;
                let auth = taken.login.auth.clone().ok_or_else(expired_state)?;
                Ok(Auth::from(auth))
            }
            Mode::Device => self.poll_device(state, pending).await,
        }
    }

    async fn poll_device(&self, state: &str, pending: PendingLogin) -> Result<Auth> {
        let config = self
            .config
            .ok_or_else(|| login_failed("Could not load configuration"))?;
        let provider = Provider::of(config)
            .ok_or_else(|| Error::invalid("OIDC login is not configured for this mount"))?;
        let role = self
            .roles
            .role(&pending.role)
            .await?
            .ok_or_else(|| login_failed("Role could not be found"))?;
        authmount_framework::metrics::login_role(&pending.role);
        let endpoints = provider.endpoints().await?;
        let token_endpoint = endpoints
            .token
            .as_deref()
            .ok_or_else(|| Error::invalid("the provider has no token_endpoint"))?;
        let result = oidc_token::device_token(
            provider.discovery.fetcher(),
            token_endpoint,
            provider.client,
            &pending.device_code,
        )
        .await;
        let tokens = match result {
            Err(TokenError::OAuth { error, .. })
                if error == "authorization_pending" || error == "slow_down" =>
            {
                return Err(Error::invalid(error));
            }
            other => other,
        };
        // Anything but "pending" ends this login.
        let states = self.states();
        let taken = states
            .take(state, self.now())
            .await?
            .ok_or_else(expired_state)?;
        forget(&states, &taken).await;
        let tokens = tokens.map_err(|e| match e {
            TokenError::OAuth { error, .. } => {
                Error::invalid(format!("authorization failed: {error}"))
            }
            TokenError::Other(cause) => {
                Error::invalid(format!("{TOKEN_VERIFICATION_FAILED} {cause}"))
            }
        })?;
        login::check_cidrs(&role, self.remote_addr)?;
        let access = (!tokens.access_token.is_empty()).then_some(tokens.access_token.as_str());
        let owned = RulesOwned::new(&provider, &role, &pending, access, None);
        let claims = oidc_token::verify_id_token(
            provider.config.keys.as_ref(),
            &tokens.id_token,
            &owned.rules(),
            self.clock.unix_f64(),
        )
        .await
        .map_err(|e| Error::invalid(format!("{TOKEN_VERIFICATION_FAILED} {e}")))?;
        self.identity(&provider, &role, &pending, claims, access)
            .await
    }
}

async fn forget(states: &StateStore<'_>, taken: &crate::oidc_state::Taken) {
    if let Err(e) = states.forget(taken).await {
        tracing::warn!(target: "authmount::jwt::oidc", error = %e, "removing a used OAuth state failed; the sweep will");
    }
}

/// The message of an error, for an HTML page.
fn error_text(e: &Error) -> String {
    match e.body().get("errors").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("; "),
        None => e.to_string(),
    }
}

/// `openid` followed by the role's scopes (without a second `openid`), space-separated.
fn scopes(role: &Role) -> String {
    let mut scopes = vec!["openid"];
    for s in role.oidc_scopes.iter().flatten() {
        if !s.is_empty() && s != "openid" {
            scopes.push(s);
        }
    }
    scopes.join(" ")
}

/// The owned parts of [`IdTokenRules`] for one login.
struct RulesOwned<'a> {
    issuer: &'a str,
    client_id: &'a str,
    audiences: &'a [String],
    algs: Vec<Alg>,
    nonce: Option<&'a str>,
    max_age: i64,
    requested_at: f64,
    leeways: Leeways,
    access_token: Option<&'a str>,
    code: Option<&'a str>,
}

impl<'a> RulesOwned<'a> {
    fn new(
        provider: &'a Provider<'a>,
        role: &'a Role,
        pending: &'a PendingLogin,
        access_token: Option<&'a str>,
        code: Option<&'a str>,
    ) -> Self {
        RulesOwned {
            issuer: &provider.config.stored.oidc_discovery_url,
            client_id: provider.client.id,
            audiences: role.bound_audiences.as_deref().unwrap_or_default(),
            algs: provider.algs(),
            nonce: (!pending.nonce.is_empty()).then_some(pending.nonce.as_str()),
            max_age: pending.max_age,
            requested_at: pending.created as f64,
            leeways: role.leeways(),
            access_token,
            code,
        }
    }

    fn rules(&self) -> IdTokenRules<'_> {
        IdTokenRules {
            issuer: self.issuer,
            client_id: self.client_id,
            audiences: self.audiences,
            algs: &self.algs,
            nonce: self.nonce,
            max_age: self.max_age,
            requested_at: self.requested_at,
            leeways: self.leeways,
            access_token: self.access_token,
            code: self.code,
        }
    }
}

/// The HTML pages of the browser login. Values are escaped; scripts get JSON literals with
/// `<`, `>` and `&` escaped.
pub mod pages {
    use super::HtmlPage;

    fn escape(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
    }

    fn js_string(text: &str) -> String {
        serde_json::to_string(text)
            .unwrap_or_else(|_| "\"\"".into())
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
    }

    fn page(status: u16, title: &str, body: &str) -> HtmlPage {
        HtmlPage {
            status,
            body: format!(
                "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{body}\n</body>\n</html>\n",
                escape(title)
            ),
        }
    }

    /// The answer to a form_post: hands `state` and the whole mount path (nested mounts
    /// included, unlike OpenBao's first segment) to the window that opened the login, as
    /// Vault's web UI expects (`{source: "oidc-callback", path, code: "no_code", state}`).
    pub fn form_post(mount: &str, state: &str) -> HtmlPage {
        page(
            200,
            "Complete sign-in process",
            &format!(
                "<p>Completing the sign-in. You can close this window if it stays open.</p>\n<script>\nif (window.opener) {{ window.opener.postMessage({{ source: 'oidc-callback', path: {}, code: {}, state: {} }}, window.origin); }}\n</script>",
                js_string(mount),
                js_string(super::NO_CODE),
                js_string(state)
            ),
        )
    }

    /// Direct mode's confirmation page (RFC 8628 §5.4): who asked, for which role; the
    /// button repeats the request with `confirmation=1`.
    pub fn confirm(requester: &str, role: &str) -> HtmlPage {
        page(
            200,
            "Authentication Confirmation",
            &format!(
                "<h1>Confirm the sign-in</h1>\n<p>A login to role <strong>{}</strong> was requested from <strong>{}</strong>. Continue only if you started it.</p>\n<button id=\"confirm-button\">Confirm</button>\n<script>\ndocument.getElementById('confirm-button').addEventListener('click', () => {{ const url = new URL(window.location.href); url.searchParams.set('confirmation', '1'); window.location.href = url; }});\n</script>",
                escape(role),
                escape(if requester.is_empty() { "an unknown address" } else { requester })
            ),
        )
    }

    /// Direct mode's success page.
    pub fn success() -> HtmlPage {
        page(
            200,
            "Authentication Succeeded",
            "<h1>Signed in</h1>\n<p>You can close this window and return to your client.</p>",
        )
    }

    /// An error page with `status`.
    pub fn error(status: u16, message: &str) -> HtmlPage {
        page(
            status,
            "Sign-in failed",
            &format!("<h1>Sign-in failed</h1>\n<p>{}</p>", escape(message)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn redirect_matching_is_exact_except_loopback_ports() {
        // The cases recorded against OpenBao 2.7.2 (tests/compat/oidc_openbao_notes.md).
        let allowed = list(&[
            "http://localhost:8250/oidc/callback",
            "http://127.0.0.1:8250/oidc/callback",
            "http://[::1]:8250/oidc/callback",
            "https://app.example/cb",
        ]);
        for ok in [
            "http://localhost:9999/oidc/callback",
            "http://localhost/oidc/callback",
            "http://127.0.0.1:34567/oidc/callback",
            "http://[::1]:1/oidc/callback",
            "https://app.example/cb",
        ] {
            assert!(redirect_allowed(ok, &allowed), "{ok}");
        }
        for refused in [
            "http://127.0.0.1:8250/other/callback",
            "http://LOCALHOST:8250/oidc/callback",
            "https://app.example:8443/cb",
            "https://APP.example/cb",
            "http://localhost:8250/oidc/callback2",
            "http://localhost:8250/oidc/callback?x=1",
            "https://localhost:8250/oidc/callback",
            "http://evil.example/cb",
            "http://evil.example@localhost:8250/oidc/callback",
            "http://localhost.evil.example:8250/oidc/callback",
            "http://127.0.0.2:8250/oidc/callback",
            "localhost:8250/oidc/callback",
            "",
            "not a uri",
        ] {
            assert!(!redirect_allowed(refused, &allowed), "{refused}");
        }
        assert!(!redirect_allowed("https://app.example/cb", &[]));
    }

    #[test]
    fn pkce_challenge_is_s256() {
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let (v, c) = pkce_pair();
        assert_eq!(v.len(), 43);
        assert_eq!(pkce_challenge(&v), c);
        assert_ne!(pkce_pair().0, v);
    }

    #[test]
    fn random_ids_look_like_vaults() {
        let s = random_id("st_", 20);
        assert!(s.starts_with("st_") && s.len() == 23);
        assert!(s[3..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(random_id("st_", 20), s);
    }

    #[test]
    fn namespace_leaves_the_redirect_uri_for_the_state() {
        assert_eq!(
            split_namespace("https://app.example/cb?namespace=org/dev"),
            ("https://app.example/cb".to_string(), "org/dev".to_string())
        );
        assert_eq!(
            split_namespace("https://app.example/cb?a=1&namespace=x&b=2"),
            (
                "https://app.example/cb?a=1&b=2".to_string(),
                "x".to_string()
            )
        );
        assert_eq!(
            split_namespace("https://app.example/cb?a=1"),
            ("https://app.example/cb?a=1".to_string(), String::new())
        );
        assert_eq!(bare_state("st_abc,ns=org/dev"), "st_abc");
        assert_eq!(bare_state("st_abc"), "st_abc");
    }

    #[test]
    fn pages_escape_what_they_show() {
        let p = pages::form_post("team/oidc", "st_</script><b>");
        assert!(p.body.contains(r#"path: "team/oidc""#));
        assert!(!p.body.contains("</script><b>"));
        let p = pages::confirm("10.0.0.1", "<role>");
        assert!(p.body.contains("&lt;role&gt;"));
        assert_eq!(pages::error(400, "a & b").status, 400);
    }
}
