//! One real `authmount server` process on an ephemeral port, for tests that restart,
//! kill or misconfigure servers.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::BIN;

/// One `authmount server` process.
pub struct Node {
    child: Child,
    pub base: String,
    log: PathBuf,
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Node {
    /// Starts `authmount server ARGS -listen-address=127.0.0.1:<free port>` and waits until
    /// it answers `sys/health` (with any status). Panics with its output if it does not.
    pub async fn start(args: &[&str], dir: &Path) -> Node {
        Node::try_start(args, dir, &[])
            .await
            .unwrap_or_else(|out| panic!("server did not start:\n{out}"))
    }

    /// [`Node::start`] with extra environment variables; `Err(output)` when the process
    /// exits before it answers.
    pub async fn try_start(
        args: &[&str],
        dir: &Path,
        env: &[(&str, &str)],
    ) -> Result<Node, String> {
        let port = free_port();
        let log = dir.join(format!("server-{port}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(BIN)
            .arg("server")
            .args(args)
            .arg(format!("-listen-address=127.0.0.1:{port}"))
            .arg("-log-level=warn")
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("start authmount");
        let mut node = Node {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = node.child.try_wait() {
                return Err(node.output());
            }
            if reqwest::get(format!("{}/v1/sys/health", node.base))
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
        let client = reqwest::Client::new();
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = client
            .request(method, format!("{}/v1/{path}", self.base))
            .timeout(Duration::from_secs(20));
        if let Some(t) = token {
            req = req.header("X-Vault-Token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("answered");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
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
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `authmount server ARGS` expecting it to refuse to start: its exit status (`None`
/// when it was still running after 20 s and had to be killed) and output.
pub fn start_fails(args: &[&str], env: &[(&str, &str)], dir: &Path) -> (Option<i32>, String) {
    let port = free_port();
    let log = dir.join(format!("refused-{port}.log"));
    let out = std::fs::File::create(&log).expect("log file");
    let mut child = Command::new(BIN)
        .arg("server")
        .args(args)
        .arg(format!("-listen-address=127.0.0.1:{port}"))
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .expect("run authmount");
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
