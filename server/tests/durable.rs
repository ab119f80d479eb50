//! Durable storage with real server processes: SQLite survives restarts and `kill -9` right
//! after a write; a server without a config file initialises itself once; PostgreSQL nodes
//! share state at once; a server whose PostgreSQL is down starts, reports it, and recovers.
//!
//! The PostgreSQL tests run where `AUTHMOUNT_TEST_POSTGRES_URL` names a database whose role
//! may create databases (`.ci/run` sets it up); each test uses a fresh database.

use std::time::{Duration, Instant};

use authmount_testkit::node::{set_up_jwt, static_seal, Node};
use authmount_testkit::{free_port, Binary, Key, TempDir, TestDatabase, SEED_ISSUER};
use serde_json::{json, Value};

/// The `authmount` binary cargo built for these tests.
const BIN: Binary = Binary::at(env!("CARGO_BIN_EXE_authmount"));

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
    let node = Node::start(BIN, &[&config_arg], dir.path()).await;

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

    let signer = Key::rsa();
    set_up_jwt(&node, &root, &signer, json!({})).await;
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

    let node = Node::start(BIN, &[&config_arg], dir.path()).await;
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
    let node = Node::start(BIN, &[&data], dir.path()).await;
    let out = node.output();
    let root = out
        .split("Root Token: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no root token printed:\n{out}"))
        .to_string();
    assert_eq!(node.call("GET", "sys/auth", Some(&root), None).await.0, 200);
    drop(node);
    let node = Node::start(BIN, &[&data], dir.path()).await;
    assert!(
        !node.output().contains("Root Token"),
        "printed only once:\n{}",
        node.output()
    );
    assert_eq!(node.call("GET", "sys/auth", Some(&root), None).await.0, 200);
    assert!(dir.path().join("data/authmount.db").exists());
}

#[tokio::test]
async fn two_postgres_nodes_see_each_others_writes_at_once() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let dir = TempDir::new("durable-pg");
    let config = db.config(&dir, &db.url, &static_seal(&dir));
    let a = Node::start(BIN, &[&config], dir.path()).await;
    let b = Node::start(BIN, &[&config], dir.path()).await;
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
    let signer = Key::rsa();
    set_up_jwt(&a, &root, &signer, json!({})).await;
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
    let rotated = Key::rsa();
    a.ok(
        "POST",
        "auth/jwt/config",
        &root,
        json!({"jwt_validation_pubkeys": [rotated.public_pem()], "bound_issuer": SEED_ISSUER}),
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
    let node = Node::start(
        BIN,
        &[&db.config(&dir, through_gap.as_str(), &static_seal(&dir))],
        dir.path(),
    )
    .await;

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
    let node = Node::start(BIN, &[&format!("-config={}", config.display())], dir.path()).await;
    let init = |format: &str| {
        BIN.command()
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
