//! Real `authmount server` processes on ephemeral ports, for the tests that restart, kill,
//! misconfigure or run several servers.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::clock::random_hex;
use crate::keys::Key;
use crate::process::Binary;
use crate::seed::{seed_claims, seed_role, SEED_ISSUER};
use crate::tempdir::TempDir;
use crate::vault_http::{call_at, free_port};

/// One `authmount server` process, killed when dropped.
pub struct Node {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The HTTP client of the test that started it (one per node: building one loads the
    /// system's root certificates; it belongs to the test's runtime).
    pub client: reqwest::Client,
    log: PathBuf,
}

impl Node {
    /// Starts `bin server ARGS -listen-address=127.0.0.1:<free port>` and waits until
    /// it answers `sys/health` (with any status). Panics with its output if it does not.
    pub async fn start(bin: Binary, args: &[&str], dir: &Path) -> Node {
        Node::try_start(bin, args, dir, &[])
            .await
            .unwrap_or_else(|out| panic!("server did not start:\n{out}"))
    }

    /// [`Node::start`] with extra environment variables; `Err(output)` when the process
    /// exits before it answers.
    pub async fn try_start(
        bin: Binary,
        args: &[&str],
        dir: &Path,
        env: &[(&str, &str)],
    ) -> Result<Node, String> {
        let port = free_port();
        let log = dir.join(format!("server-{port}.log"));
        let args = [args, &["-log-level=warn"]].concat();
        let child = spawn_server(bin, &args, port, env, &log);
        let mut node = Node {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = node.child.try_wait() {
                return Err(node.output());
            }
            if node
                .client
                .get(format!("{}/v1/sys/health", node.base))
                .send()
                .await
                .is_ok()
            {
                return Ok(node);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("no answer within 30 s:\n{}", node.output()))
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        let mut text = String::new();
        let _ = std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    /// SIGKILL, no shutdown of any kind.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    /// One request; `(status, JSON body or null)`.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        call_at(&self.client, &self.base, method, path, token, body).await
    }

    /// A request that must answer 200 or 204; its body.
    pub async fn ok(&self, method: &str, path: &str, token: &str, body: Value) -> Value {
        let (status, resp) = self
            .call(method, path, Some(token), Some(body.clone()))
            .await;
        assert!(
            status == 200 || status == 204,
            "{method} {path} {body}: {status} {resp}"
        );
        resp
    }

    /// `sys/init` with no options (under a static seal); the root token.
    pub async fn init(&self) -> String {
        let init = self.init_with(json!({})).await;
        init["root_token"].as_str().expect("root_token").to_string()
    }

    /// `sys/init` with these options, which must answer 200; its answer.
    pub async fn init_with(&self, options: Value) -> Value {
        let (status, body) = self.call("PUT", "sys/init", None, Some(options)).await;
        assert_eq!(status, 200, "init: {body}");
        body
    }

    /// One unseal key to `sys/unseal`, which must answer 200; the seal status.
    pub async fn unseal(&self, key: &str) -> Value {
        let (status, body) = self
            .call("PUT", "sys/unseal", None, Some(json!({ "key": key })))
            .await;
        assert_eq!(status, 200, "unseal: {body}");
        body
    }

    /// A login of `user` (the seed claims) on the role `demo` of `auth/jwt`.
    pub async fn login(&self, key: &Key, user: &str) -> (u16, Value) {
        let jwt = key.jwt(&seed_claims(user));
        self.call(
            "POST",
            "auth/jwt/login",
            None,
            Some(json!({"role": "demo", "jwt": jwt})),
        )
        .await
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Enables jwt at `jwt`, configures `key` with the seed issuer and writes the seed role
/// `demo` ([`seed_role`]) with the fields of `extra_role` added or replaced.
pub async fn set_up_jwt(node: &Node, root: &str, key: &Key, extra_role: Value) {
    node.ok("POST", "sys/auth/jwt", root, json!({"type": "jwt"}))
        .await;
    node.ok(
        "POST",
        "auth/jwt/config",
        root,
        json!({"jwt_validation_pubkeys": [key.public_pem()], "bound_issuer": SEED_ISSUER}),
    )
    .await;
    let mut role = seed_role();
    if let (Some(role), Some(extra)) = (role.as_object_mut(), extra_role.as_object()) {
        role.extend(extra.clone());
    }
    node.ok("POST", "auth/jwt/role/demo", root, role).await;
}

/// A `seal "static"` block with a fresh key file in `dir` (made once per directory), so
/// servers using it unseal themselves at every start.
pub fn static_seal(dir: &TempDir) -> String {
    let key = dir.path().join("seal-test.key");
    if !key.exists() {
        let hex: String = (0..4).map(|_| random_hex()).collect();
        std::fs::write(&key, hex).expect("key file");
    }
    format!(
        "seal \"static\" {{\n  current_key_id = \"test\"\n  current_key = \"file://{}\"\n}}\n",
        key.display()
    )
}

/// Runs `authmount server ARGS` expecting it to refuse to start: its exit status (`None`
/// when it was still running after 20 s and had to be killed) and output.
pub fn start_fails(
    bin: Binary,
    args: &[&str],
    env: &[(&str, &str)],
    dir: &Path,
) -> (Option<i32>, String) {
    let port = free_port();
    let log = dir.join(format!("refused-{port}.log"));
    let mut child = spawn_server(bin, args, port, env, &log);
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (code, std::fs::read_to_string(&log).unwrap_or_default())
}

/// Spawns `bin server ARGS -listen-address=127.0.0.1:<port>` with `env` added (and
/// `RUST_LOG` removed), its stdout and stderr going to the file `log`.
fn spawn_server(bin: Binary, args: &[&str], port: u16, env: &[(&str, &str)], log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("log file");
    bin.command()
        .arg("server")
        .args(args)
        .arg(format!("-listen-address=127.0.0.1:{port}"))
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .expect("start authmount")
}
