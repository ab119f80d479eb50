//! Durable storage with real server processes: SQLite survives restarts and `kill -9` right
//! after a write; a server without a config file initialises itself once; PostgreSQL nodes
//! share state at once; a server whose PostgreSQL is down starts, reports it, and recovers.
//!
//! The PostgreSQL tests run where `AUTHMOUNT_TEST_POSTGRES_URL` names a database whose role
//! may create databases (`.ci/run` sets it up); each test uses a fresh database.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{seed_claims, Signer, TempDir, BIN, SEED_AUDIENCE, SEED_ISSUER, SEED_SUBJECT};

/// One `authmount server` process.
struct Node {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Node {
    /// Starts `authmount server ARGS -listen-address=127.0.0.1:<free port>` and waits until
    /// it answers `sys/health` (with any status).
    async fn start(args: &[&str], dir: &Path) -> Node {
        let port = free_port();
        let log = dir.join(format!("server-{port}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(BIN)
            .arg("server")
            .args(args)
            .arg(format!("-listen-address=127.0.0.1:{port}"))
            .arg("-log-level=warn")
            .env_remove("RUST_LOG")
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("start authmount");
        let node = Node {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if reqwest::get(format!("{}/v1/sys/health", node.base))
                .await
                .is_ok()
            {
                return node;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("server did not answer: {}", node.output());
    }

    fn output(&self) -> String {
        let mut text = String::new();
        let _ = std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    /// SIGKILL, no shutdown of any kind.
    fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    async fn call(
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

    async fn ok(&self, method: &str, path: &str, token: &str, body: Value) -> Value {
        let (status, resp) = self
            .call(method, path, Some(token), Some(body.clone()))
            .await;
        assert!(
            status == 200 || status == 204,
            "{method} {path} {body}: {status} {resp}"
        );
        resp
    }

    async fn init(&self) -> String {
        let (status, body) = self.call("PUT", "sys/init", None, Some(json!({}))).await;
        assert_eq!(status, 200, "init: {body}");
        body["root_token"].as_str().expect("root_token").to_string()
    }

    async fn login(&self, signer: &Signer, user: &str) -> (u16, Value) {
        let jwt = signer.sign(&seed_claims(user));
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

/// Enables jwt at `jwt`, configures the signer's key and writes the seed role `demo`.
async fn set_up_jwt(node: &Node, root: &str, signer: &Signer) {
    node.ok("POST", "sys/auth/jwt", root, json!({"type": "jwt"}))
        .await;
    node.ok(
        "POST",
        "auth/jwt/config",
        root,
        json!({"jwt_validation_pubkeys": [signer.public_pem], "bound_issuer": SEED_ISSUER}),
    )
    .await;
    node.ok(
        "POST",
        "auth/jwt/role/demo",
        root,
        json!({"bound_subject": SEED_SUBJECT, "bound_audiences": SEED_AUDIENCE,
               "user_claim": "https://vault/user", "policies": "webapps", "ttl": "1h"}),
    )
    .await;
}

/// A `seal "static"` block with a fresh key file in `dir` (made once per directory), so
/// these tests' servers unseal themselves at every start.
fn static_seal(dir: &TempDir) -> String {
    let key = dir.path().join("seal-test.key");
    if !key.exists() {
        let hex: String = (0..4).map(|_| support::random_hex()).collect();
        std::fs::write(&key, hex).expect("key file");
    }
    format!(
        "seal \"static\" {{\n  current_key_id = \"test\"\n  current_key = \"file://{}\"\n}}\n",
        key.display()
    )
}

fn sqlite_config(dir: &TempDir) -> std::path::PathBuf {
    let db = dir.path().join("data/authmount.db");
    dir.file(
        "server.hcl",
        &format!(
            "storage \"sqlite\" {{ path = \"{}\" }}\n{}",
            db.display(),
            static_seal(dir)
        ),
    )
}

#[tokio::test]
async fn sqlite_keeps_what_was_answered_across_restarts_and_kill_9() {
    let dir = TempDir::new("durable-sqlite");
    let config = sqlite_config(&dir);
    let config_arg = format!("-config={}", config.display());
    let node = Node::start(&[&config_arg], dir.path()).await;

    // Before init everything but health and init is a 503.
    assert_eq!(node.call("GET", "sys/health", None, None).await.0, 501);
    let (status, body) = node.call("GET", "sys/auth", Some("x"), None).await;
    assert_eq!(status, 503, "{body}");
    let root = node.init().await;
    assert_eq!(
        node.call("PUT", "sys/init", None, Some(json!({}))).await.0,
        400,
        "init happens once"
    );

    let signer = Signer::rsa();
    set_up_jwt(&node, &root, &signer).await;
    let (status, login) = node.login(&signer, "alice").await;
    assert_eq!(status, 200, "{login}");
    let token = login["auth"]["client_token"].as_str().unwrap().to_string();
    // A write that was answered, then kill -9 at once.
    node.ok(
        "POST",
        "auth/jwt/role/demo",
        &root,
        json!({"token_ttl": "2h"}),
    )
    .await;
    node.kill9();

    let node = Node::start(&[&config_arg], dir.path()).await;
    assert_eq!(node.call("GET", "sys/health", None, None).await.0, 200);
    let (status, role) = node
        .call("GET", "auth/jwt/role/demo", Some(&root), None)
        .await;
    assert_eq!(status, 200, "{role}");
    assert_eq!(role["data"]["token_ttl"], json!(7200), "{role}");
    let (status, me) = node
        .call("GET", "auth/token/lookup-self", Some(&token), None)
        .await;
    assert_eq!(
        status, 200,
        "a token issued before the crash is valid: {me}"
    );
    let (status, login) = node.login(&signer, "alice").await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["auth"]["lease_duration"], json!(7200));
    assert_eq!(
        login["auth"]["entity_id"], me["data"]["entity_id"],
        "same entity after restart"
    );
}

#[tokio::test]
async fn a_server_without_a_config_file_initialises_itself_once() {
    let dir = TempDir::new("durable-default");
    let data = format!("-data-dir={}", dir.path().join("data").display());
    let node = Node::start(&[&data], dir.path()).await;
    let out = node.output();
    let root = out
        .split("Root Token: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no root token printed:\n{out}"))
        .to_string();
    assert_eq!(node.call("GET", "sys/auth", Some(&root), None).await.0, 200);
    drop(node);
    let node = Node::start(&[&data], dir.path()).await;
    assert!(
        !node.output().contains("Root Token"),
        "printed only once:\n{}",
        node.output()
    );
    assert_eq!(node.call("GET", "sys/auth", Some(&root), None).await.0, 200);
    assert!(dir.path().join("data/authmount.db").exists());
}

/// A fresh database for one test, dropped at the end; `None` without PostgreSQL.
struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    async fn create() -> Option<TestDatabase> {
        let Ok(admin_url) = std::env::var("AUTHMOUNT_TEST_POSTGRES_URL") else {
            eprintln!("AUTHMOUNT_TEST_POSTGRES_URL is not set: PostgreSQL test skipped");
            return None;
        };
        use sqlx::Connection;
        let name = format!("authmount_t_{}", support::random_hex());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        let mut url = reqwest::Url::parse(&admin_url).expect("URL");
        url.set_path(&format!("/{name}"));
        Some(TestDatabase {
            admin_url,
            name,
            url: url.to_string(),
        })
    }

    fn config(&self, dir: &TempDir, url: &str) -> String {
        let file = dir.file(
            &format!("pg-{}.hcl", support::random_hex()),
            &format!(
                "storage \"postgresql\" {{ connection_url = \"{url}\" }}\n{}",
                static_seal(dir)
            ),
        );
        format!("-config={}", file.display())
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
    }
}

#[tokio::test]
async fn two_postgres_nodes_see_each_others_writes_at_once() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let dir = TempDir::new("durable-pg");
    let config = db.config(&dir, &db.url);
    let a = Node::start(&[&config], dir.path()).await;
    let b = Node::start(&[&config], dir.path()).await;
    let root = a.init().await;
    assert_eq!(
        b.call("GET", "sys/init", None, None).await.1["initialized"],
        json!(true)
    );
    assert_eq!(
        b.call("PUT", "sys/init", None, Some(json!({}))).await.0,
        400
    );

    // Mount, config and role written through A: B's very next login uses them.
    let signer = Signer::rsa();
    set_up_jwt(&a, &root, &signer).await;
    let (status, login) = b.login(&signer, "alice").await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["auth"]["lease_duration"], json!(3600));
    a.ok(
        "POST",
        "auth/jwt/role/demo",
        &root,
        json!({"token_ttl": "30m"}),
    )
    .await;
    let (_, login) = b.login(&signer, "alice").await;
    assert_eq!(
        login["auth"]["lease_duration"],
        json!(1800),
        "B saw A's role change at once"
    );
    let rotated = Signer::rsa();
    a.ok(
        "POST",
        "auth/jwt/config",
        &root,
        json!({"jwt_validation_pubkeys": [rotated.public_pem], "bound_issuer": SEED_ISSUER}),
    )
    .await;
    assert_eq!(
        b.login(&signer, "alice").await.0,
        400,
        "B dropped the old key at once"
    );
    assert_eq!(b.login(&rotated, "alice").await.0, 200);

    // A token issued by A is valid on B; revoked on B, it is dead on A at once.
    let (_, login) = a.login(&rotated, "bob").await;
    let token = login["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(
        b.call("GET", "auth/token/lookup-self", Some(&token), None)
            .await
            .0,
        200
    );
    b.ok("POST", "auth/token/revoke-self", &token, json!({}))
        .await;
    assert_eq!(
        a.call("GET", "auth/token/lookup-self", Some(&token), None)
            .await
            .0,
        403
    );

    // A policy written on B applies to A's next request.
    let (_, created) = a
        .call(
            "POST",
            "auth/token/create",
            Some(&root),
            Some(json!({"policies": ["ops"]})),
        )
        .await;
    let ops = created["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        a.call("GET", "auth/jwt/role/demo", Some(&ops), None)
            .await
            .0,
        403
    );
    b.ok(
        "POST",
        "sys/policies/acl/ops",
        &root,
        json!({"policy": "path \"auth/jwt/role/*\" { capabilities = [\"read\"] }"}),
    )
    .await;
    assert_eq!(
        a.call("GET", "auth/jwt/role/demo", Some(&ops), None)
            .await
            .0,
        200
    );
    // A mount disabled on B is gone on A: its login path is no longer served (a path
    // without a mount needs a token, as in Vault).
    b.ok("DELETE", "sys/auth/jwt", &root, json!({})).await;
    assert_eq!(a.login(&rotated, "alice").await.0, 403);
    let (_, mounts) = a.call("GET", "sys/auth", Some(&root), None).await;
    assert!(mounts["data"].get("jwt/").is_none(), "{mounts}");
}

/// Forwards TCP connections from a local port to PostgreSQL while it runs.
async fn forward(listener: tokio::net::TcpListener, target: String) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        let target = target.clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[tokio::test]
async fn a_server_starts_while_postgres_is_down_and_recovers_by_itself() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let dir = TempDir::new("durable-pg-down");
    let real = reqwest::Url::parse(&db.url).expect("URL");
    let target = format!(
        "{}:{}",
        real.host_str().unwrap_or("127.0.0.1"),
        real.port().unwrap_or(5432)
    );
    let port = free_port();
    let mut through_gap = real.clone();
    through_gap.set_host(Some("127.0.0.1")).expect("host");
    through_gap.set_port(Some(port)).expect("port");
    let node = Node::start(&[&db.config(&dir, through_gap.as_str())], dir.path()).await;

    // Nothing listens on the port: unhealthy, and requests fail with a clear 503.
    let (status, health) = node.call("GET", "sys/health", None, None).await;
    assert_eq!(status, 503, "{health}");
    assert!(
        health["storage_error"]
            .as_str()
            .unwrap_or("")
            .contains("storage unavailable"),
        "{health}"
    );
    let (status, body) = node.call("PUT", "sys/init", None, Some(json!({}))).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap_or("")
            .contains("storage unavailable"),
        "{body}"
    );

    // The database comes back (through the forwarder): the server recovers by itself.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the gap");
    let forwarder = tokio::spawn(forward(listener, target));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = node.call("GET", "sys/health", None, None).await;
        if status == 501 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: health {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let root = node.init().await;
    assert_eq!(node.call("GET", "sys/auth", Some(&root), None).await.0, 200);
    forwarder.abort();
}

#[tokio::test]
async fn operator_init_initialises_new_storage_once() {
    let dir = TempDir::new("durable-operator-init");
    let config = sqlite_config(&dir);
    let node = Node::start(&[&format!("-config={}", config.display())], dir.path()).await;
    let init = |format: &str| {
        Command::new(BIN)
            .args([
                "operator",
                "init",
                format,
                &format!("-address={}", node.base),
            ])
            .env_clear()
            .env("HOME", dir.path())
            .output()
            .expect("run operator init")
    };
    let first = init("-format=json");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let answer: Value = serde_json::from_slice(&first.stdout).expect("JSON");
    let root = answer["root_token"].as_str().expect("root_token");
    assert!(root.starts_with("hvs."), "{answer}");
    assert_eq!(node.call("GET", "sys/auth", Some(root), None).await.0, 200);
    let second = init("-format=table");
    assert_eq!(second.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("already initialized"), "{stderr}");
}
