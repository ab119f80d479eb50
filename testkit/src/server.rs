//! An authmount server in this process: a dev core (in-memory storage) served over HTTP on
//! `127.0.0.1:<ephemeral port>`, and a small Vault client over reqwest.

use std::net::TcpListener;
use std::sync::Arc;

use authmount_framework::{Clock, Core, Registry};
use reqwest::Method;
use serde_json::{json, Value};

use crate::clock::random_hex;
use crate::keys::Key;
use crate::seed::{seed_role, SEED_ISSUER};
use crate::vault_http::send;

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
    pub clock: Clock,
    client: reqwest::Client,
}

impl TestServer {
    /// A server on a dev core with the default registry (`jwt`, `oidc`) and a fresh root
    /// token.
    pub async fn start() -> TestServer {
        TestServer::start_with(authmount_server::default_registry()).await
    }

    /// A server whose dev core reads `clock` (a manual clock: the test moves time on with
    /// `clock.advance(...)` instead of sleeping).
    pub async fn start_on(clock: Clock) -> TestServer {
        let root = format!("root-{}", random_hex());
        let (core, _) =
            authmount_server::dev_core_on(authmount_server::default_registry(), &root, clock)
                .await
                .expect("dev core");
        TestServer::serve(core, root)
    }

    /// A server whose dev core mounts the backend types of `registry`.
    pub async fn start_with(registry: Registry) -> TestServer {
        let root = format!("root-{}", random_hex());
        let core = authmount_server::dev_core_with(registry, &root)
            .await
            .expect("dev core");
        TestServer::serve(core, root)
    }

    /// Serves an already built `core` (whose root token is `root`), e.g. one over storage
    /// the test keeps a handle to.
    pub fn serve(core: Arc<Core>, root: String) -> TestServer {
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
        TestServer::at(port, root, clock)
    }

    /// [`TestServer::start`] from a test without an async runtime (the command-line tests):
    /// the dev core is built on the server's own thread.
    pub fn start_blocking() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local address").port();
        let root = format!("root-{}", random_hex());
        let root_for_server = root.clone();
        let (clock_tx, clock_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let core = authmount_server::dev_core(&root_for_server)
                    .await
                    .expect("dev core");
                let _ = clock_tx.send(core.clock().clone());
                authmount_server::http::server(core, listener)
                    .expect("http server")
                    .await
                    .expect("server run");
            })
        });
        let clock = clock_rx.recv().expect("the dev core is built");
        TestServer::at(port, root, clock)
    }

    fn at(port: u16, root: String, clock: Clock) -> TestServer {
        let client = reqwest::Client::builder().build().expect("reqwest client");
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
        send(&self.client, &self.base, method, path, token, headers, body).await
    }

    /// `GET /v1/<path>`.
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.send(Method::GET, path, token, &[], None).await
    }

    /// `POST /v1/<path>` with `body` as JSON.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).expect("serialise body");
        self.send(Method::POST, path, token, &[], Some(bytes)).await
    }

    /// `LIST /v1/<path>`.
    pub async fn list(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let list = Method::from_bytes(b"LIST").expect("LIST is a valid method");
        self.send(list, path, token, &[], None).await
    }

    /// `DELETE /v1/<path>`.
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
