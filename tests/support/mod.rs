//! Shared test support: a real authmount HTTP server on an ephemeral port, a small Vault
//! client over reqwest, and freshly generated keys that mint compact JWS tokens.
//!
//! Nothing here is hard-coded: every key and the root token are generated per server or
//! per test.

#![allow(dead_code)] // each test binary uses a different part of this module

mod clock;
pub use clock::{now, random_hex};

pub mod idp;
pub mod oidc;

use std::net::TcpListener;
use std::time::Duration;

use josekit::jwk::KeyPair;
use josekit::jws::{self, JwsHeader, JwsSigner};
use reqwest::Method;
use serde_json::{json, Map, Value};

/// An authmount server (dev core, in-memory storage) serving HTTP on `127.0.0.1:<port>`.
///
/// It runs on its own thread with its own actix system and lives until the test binary
/// exits.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub base: String,
    /// The root token of the dev core.
    pub root: String,
    /// The clock the core reads (the system's unless started with [`TestServer::start_on`]).
    pub clock: authmount::framework::Clock,
    client: reqwest::Client,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(authmount_server::default_registry()).await
    }

    /// A server whose dev core reads `clock` (a manual clock: the test moves time on with
    /// `clock.advance(...)` instead of sleeping).
    pub async fn start_on(clock: authmount::framework::Clock) -> TestServer {
        let root = format!("root-{}", random_hex());
        let (core, _) =
            authmount_server::dev_core_on(authmount_server::default_registry(), &root, clock)
                .await
                .expect("dev core");
        TestServer::serve(core, root)
    }

    /// A server whose dev core mounts the backend types of `registry`.
    pub async fn start_with(registry: authmount::framework::Registry) -> TestServer {
        let root = format!("root-{}", random_hex());
        let core = authmount_server::dev_core_with(registry, &root)
            .await
            .expect("dev core");
        TestServer::serve(core, root)
    }

    /// Serves an already built `core` (whose root token is `root`), e.g. one over storage
    /// the test keeps a handle to.
    pub fn serve(core: std::sync::Arc<authmount::framework::Core>, root: String) -> TestServer {
        let clock = core.clock().clone();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local address").port();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                authmount_server::http::server(core, listener)
                    .expect("http server")
                    .await
                    .expect("server run");
            })
        });
        // The listener is bound already: connections wait in its backlog until the
        // server accepts them, so no readiness polling is needed.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("reqwest client");
        TestServer {
            base: format!("http://127.0.0.1:{port}"),
            root,
            clock,
            client,
        }
    }

    /// Sends `method /v1/<path>` with optional `X-Vault-Token`, extra headers and a raw
    /// body. Returns the status and the body as JSON (`Null` when empty, a JSON string
    /// holding the raw text when the body is not JSON, so assertions show it).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}/v1/{}", self.base, path));
        if let Some(token) = token {
            req = req.header("X-Vault-Token", token);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.header("Content-Type", "application/json").body(body);
        }
        let resp = req.send().await.expect("request sent and answered");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("response body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.send(Method::GET, path, token, &[], None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).expect("serialise body");
        self.send(Method::POST, path, token, &[], Some(bytes)).await
    }

    pub async fn list(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let list = Method::from_bytes(b"LIST").expect("LIST is a valid method");
        self.send(list, path, token, &[], None).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.send(Method::DELETE, path, token, &[], None).await
    }

    /// `POST /v1/sys/auth/<path> {"type":"jwt"}`, asserting 204.
    pub async fn enable_jwt(&self, path: &str) {
        let (status, body) = self
            .post(
                &format!("sys/auth/{path}"),
                Some(&self.root),
                &json!({"type": "jwt"}),
            )
            .await;
        assert_eq!(status, 204, "enable jwt at {path}: {body}");
    }

    /// Writes `auth/<mount>/<sub>` with the root token, asserting 204.
    pub async fn write_ok(&self, path: &str, body: &Value) {
        let (status, resp) = self.post(path, Some(&self.root), body).await;
        assert_eq!(status, 204, "write {path} {body}: {resp}");
    }

    /// `POST auth/<mount>/login {"role", "jwt"}`, no token.
    pub async fn login(&self, mount: &str, role: &str, jwt: &str) -> (u16, Value) {
        self.post(
            &format!("auth/{mount}/login"),
            None,
            &json!({"role": role, "jwt": jwt}),
        )
        .await
    }
}

/// The first message of a Vault error body `{"errors":[...]}`; panics on any other shape.
pub fn error_message(body: &Value) -> String {
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("not a Vault error body: {body}"));
    errors
        .first()
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no error message in {body}"))
        .to_string()
}

/// The kinds of signing key the JWT method accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa2048,
    P256,
    P384,
    P521,
    Ed25519,
}

impl KeyKind {
    pub const ALL: [KeyKind; 5] = [
        KeyKind::Rsa2048,
        KeyKind::P256,
        KeyKind::P384,
        KeyKind::P521,
        KeyKind::Ed25519,
    ];

    /// The JWS algorithms a key of this kind signs with.
    pub fn algs(self) -> &'static [&'static str] {
        match self {
            KeyKind::Rsa2048 => &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
            KeyKind::P256 => &["ES256"],
            KeyKind::P384 => &["ES384"],
            KeyKind::P521 => &["ES512"],
            KeyKind::Ed25519 => &["EdDSA"],
        }
    }
}

/// A freshly generated private key (PKCS#8 DER) and its public key (SPKI PEM).
pub struct Key {
    pub kind: KeyKind,
    private_der: Vec<u8>,
    public_pem: String,
    /// The public key as JWK members: `kty` and the key material only.
    public_jwk: Map<String, Value>,
}

impl Key {
    pub fn generate(kind: KeyKind) -> Key {
        let pair: Box<dyn KeyPair> = match kind {
            KeyKind::Rsa2048 => Box::new(jws::RS256.generate_key_pair(2048).expect("RSA key")),
            KeyKind::P256 => Box::new(jws::ES256.generate_key_pair().expect("P-256 key")),
            KeyKind::P384 => Box::new(jws::ES384.generate_key_pair().expect("P-384 key")),
            KeyKind::P521 => Box::new(jws::ES512.generate_key_pair().expect("P-521 key")),
            KeyKind::Ed25519 => Box::new(
                jws::EdDSA
                    .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
                    .expect("Ed25519 key"),
            ),
        };
        let mut public_jwk: Map<String, Value> = pair.to_jwk_public_key().into();
        public_jwk.retain(|name, _| ["kty", "n", "e", "crv", "x", "y"].contains(&name.as_str()));
        Key {
            kind,
            private_der: pair.to_der_private_key(),
            public_pem: String::from_utf8(pair.to_pem_public_key()).expect("PEM is ASCII"),
            public_jwk,
        }
    }

    pub fn rsa() -> Key {
        Key::generate(KeyKind::Rsa2048)
    }

    /// The public key as a JWK (RFC 7517): RSA `n`/`e`, EC `crv`/`x`/`y` or OKP `crv`/`x`,
    /// plus `kid` when given. No `alg` and no `use`.
    pub fn public_jwk(&self, kid: Option<&str>) -> Value {
        let mut jwk = self.public_jwk.clone();
        if let Some(kid) = kid {
            jwk.insert("kid".into(), Value::String(kid.into()));
        }
        Value::Object(jwk)
    }

    /// The first JWS algorithm of this key's kind (RS256, ES256, ES384, ES512, EdDSA).
    pub fn alg(&self) -> &'static str {
        self.kind.algs()[0]
    }

    /// The public key as a `-----BEGIN PUBLIC KEY-----` PEM.
    pub fn public_pem(&self) -> String {
        self.public_pem.clone()
    }

    /// A compact JWS over `claims` with header `{"alg":alg,"typ":"JWT"}` plus the members
    /// of `header_extra` (a JSON object), signed by josekit.
    pub fn sign(&self, alg: &str, header_extra: &Value, claims: &Value) -> String {
        let der = &self.private_der;
        let signer: Box<dyn JwsSigner> = match alg {
            "RS256" => Box::new(jws::RS256.signer_from_der(der).expect("RS256 signer")),
            "RS384" => Box::new(jws::RS384.signer_from_der(der).expect("RS384 signer")),
            "RS512" => Box::new(jws::RS512.signer_from_der(der).expect("RS512 signer")),
            "PS256" => Box::new(jws::PS256.signer_from_der(der).expect("PS256 signer")),
            "PS384" => Box::new(jws::PS384.signer_from_der(der).expect("PS384 signer")),
            "PS512" => Box::new(jws::PS512.signer_from_der(der).expect("PS512 signer")),
            "ES256" => Box::new(jws::ES256.signer_from_der(der).expect("ES256 signer")),
            "ES384" => Box::new(jws::ES384.signer_from_der(der).expect("ES384 signer")),
            "ES512" => Box::new(jws::ES512.signer_from_der(der).expect("ES512 signer")),
            "EdDSA" => Box::new(jws::EdDSA.signer_from_der(der).expect("EdDSA signer")),
            other => panic!("no signer for {other}"),
        };
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        if let Some(extra) = header_extra.as_object() {
            for (name, value) in extra {
                header
                    .set_claim(name, Some(value.clone()))
                    .expect("header member");
            }
        }
        let payload = serde_json::to_vec(claims).expect("serialise claims");
        jws::serialize_compact(&payload, &header, &*signer).expect("sign")
    }

    /// [`Key::sign`] with no extra header members.
    pub fn sign_claims(&self, alg: &str, claims: &Value) -> String {
        self.sign(alg, &json!({}), claims)
    }
}

/// The seed role of the docs (sent as strings, no `role_type`).
pub fn seed_role() -> Value {
    json!({
        "bound_subject": SEED_SUBJECT,
        "bound_audiences": SEED_AUDIENCE,
        "user_claim": "https://vault/user",
        "groups_claim": "https://vault/groups",
        "policies": "webapps",
        "ttl": "1h",
    })
}

pub const SEED_ISSUER: &str = "https://issuer.test/";
pub const SEED_SUBJECT: &str = "r3qX9DljwFIWhsiqwFiu38209F10atW6@clients";
pub const SEED_AUDIENCE: &str = "https://vault.plugin.auth.jwt.test";

/// Claims the seed role accepts, for `user`, valid for five minutes.
pub fn seed_claims(user: &str) -> Value {
    let now = now();
    json!({
        "iss": SEED_ISSUER,
        "sub": SEED_SUBJECT,
        "aud": SEED_AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "https://vault/user": user,
        "https://vault/groups": ["engineering"],
    })
}

/// Enables `jwt` at `mount`, configures `key` as its only key with the seed issuer, and
/// writes the seed role as `demo`.
pub async fn seed_mount(server: &TestServer, mount: &str, key: &Key) {
    server.enable_jwt(mount).await;
    server
        .write_ok(
            &format!("auth/{mount}/config"),
            &json!({"jwt_validation_pubkeys": [key.public_pem()], "bound_issuer": SEED_ISSUER}),
        )
        .await;
    server
        .write_ok(&format!("auth/{mount}/role/demo"), &seed_role())
        .await;
}

/// The body of the README's first fenced block whose info string is `info` (e.g.
/// `sh audit`): the blocks the README tests run as written.
pub fn readme_block(info: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("read README.md");
    let mut lines = readme
        .lines()
        .skip_while(|l| l.trim() != format!("```{info}"));
    lines
        .next()
        .unwrap_or_else(|| panic!("README has a ```{info} block"));
    lines
        .take_while(|l| l.trim() != "```")
        .collect::<Vec<_>>()
        .join("\n")
}

impl TestServer {
    /// Runs `script` with bash against this server (`VAULT_ADDR`, `VAULT_TOKEN` = its root
    /// token) off the async workers; its stdout. Panics with both outputs, naming `round`,
    /// when the script fails.
    pub async fn run_script(&self, script: &str, round: &str) -> String {
        let mut command = std::process::Command::new("bash");
        command
            .args(["-c", script])
            .env("VAULT_ADDR", &self.base)
            .env("VAULT_TOKEN", &self.root);
        let output = tokio::task::spawn_blocking(move || command.output().expect("run bash"))
            .await
            .expect("join");
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "the script failed on its {round} run\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        stdout
    }
}

impl TestServer {
    /// Creates an external identity group `group` with `policies` and its alias `alias` on
    /// the auth mount `mount` (as root); the group's id and the mount's accessor. Logins
    /// whose groups claim holds `alias` then get the group's policies.
    pub async fn external_group(
        &self,
        mount: &str,
        group: &str,
        alias: &str,
        policies: &[&str],
    ) -> (String, String) {
        let root = Some(self.root.as_str());
        let (_, mounts) = self.get("sys/auth", root).await;
        let accessor = mounts["data"][format!("{mount}/")]["accessor"]
            .as_str()
            .expect("the mount's accessor")
            .to_string();
        let (status, body) = self
            .post(
                "identity/group",
                root,
                &json!({"name": group, "type": "external", "policies": policies}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let group_id = body["data"]["id"].as_str().unwrap().to_string();
        let (status, body) = self
            .post(
                "identity/group-alias",
                root,
                &json!({"name": alias, "mount_accessor": accessor, "canonical_id": group_id}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        (group_id, accessor)
    }
}
