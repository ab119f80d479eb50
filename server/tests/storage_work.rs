//! The storage work a login does, counted by the server's own storage metrics
//! (`authmount_storage_operation_duration_seconds_count`, one count per operation on the
//! physical store, below the seal's cache): with warm caches a batch-token login reads and
//! writes nothing, and a service-token login makes one write (token and accessor together,
//! group-committed). Also: one SQLite database serves one server process.

use std::collections::BTreeMap;

use authmount_testkit::node::{set_up_jwt, start_fails, static_seal, Node};
use authmount_testkit::{Binary, Key, TempDir};
use serde_json::json;

/// The `authmount` binary cargo built for these tests.
const BIN: Binary = Binary::at(env!("CARGO_BIN_EXE_authmount"));

/// Operation counts on the SQLite store, by operation, from `sys/metrics`.
async fn storage_counts(node: &Node) -> BTreeMap<String, u64> {
    let text = node
        .client
        .get(format!("{}/v1/sys/metrics?format=prometheus", node.base))
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("body");
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("authmount_storage_operation_duration_seconds_count{")
        else {
            continue;
        };
        if !rest.contains("store=\"sqlite\"") {
            continue;
        }
        let op = rest
            .split("op=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("op label");
        let count: f64 = rest
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("count");
        counts.insert(op.to_string(), count as u64);
    }
    counts
}

/// What changed between two scrapes, without the change-feed reads (an in-memory lookup
/// on SQLite, made once per request); operations not made are left out.
fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter(|(op, _)| op.as_str() != "changes_since")
        .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::test]
async fn a_warm_batch_login_touches_no_storage_and_a_service_login_writes_once() {
    let dir = TempDir::new("storage-work");
    let config = dir.file(
        "server.hcl",
        &format!(
            "storage \"sqlite\" {{ path = \"{}\" }}\n{}telemetry {{\n  unauthenticated_metrics_access = true\n}}\n",
            dir.path().join("authmount.db").display(),
            static_seal(&dir)
        ),
    );
    let node = Node::start(BIN, &[&format!("-config={}", config.display())], dir.path()).await;
    let root = node.init().await;
    let signer = Key::rsa();
    set_up_jwt(&node, &root, &signer, json!({"token_type": "batch"})).await;

    // Warm: the first logins read the config, the role, the alias and the entity.
    for _ in 0..3 {
        let (status, body) = node.login(&signer, "alice").await;
        assert_eq!(status, 200, "{body}");
    }
    // A scrape itself lists the token store (its gauges): measured alone first.
    let scrape = storage_counts(&node).await;
    let before = storage_counts(&node).await;
    let scrape_alone = delta(&scrape, &before);
    for _ in 0..10 {
        let (status, body) = node.login(&signer, "alice").await;
        assert_eq!(status, 200, "{body}");
        assert!(body["auth"]["client_token"]
            .as_str()
            .unwrap()
            .starts_with("hvb."));
    }
    let after = storage_counts(&node).await;
    assert_eq!(
        delta(&before, &after),
        scrape_alone,
        "10 warm batch-token logins touched storage"
    );

    node.ok(
        "POST",
        "auth/jwt/role/demo",
        &root,
        json!({"token_type": "service"}),
    )
    .await;
    let (status, body) = node.login(&signer, "alice").await; // reads the changed role
    assert_eq!(status, 200, "{body}");
    let before = storage_counts(&node).await;
    for _ in 0..10 {
        let (status, body) = node.login(&signer, "alice").await;
        assert_eq!(status, 200, "{body}");
        assert!(body["auth"]["client_token"]
            .as_str()
            .unwrap()
            .starts_with("hvs."));
    }
    let after = storage_counts(&node).await;
    let mut expected = scrape_alone;
    expected.insert("put_batch".to_string(), 10);
    assert_eq!(
        delta(&before, &after),
        expected,
        "10 warm service-token logins: one write each and nothing else"
    );
}

#[tokio::test]
async fn a_second_server_on_the_same_sqlite_database_refuses_to_start() {
    let dir = TempDir::new("sqlite-lock");
    let data = dir.path().join("data");
    let data_arg = format!("-data-dir={}", data.display());
    let first = Node::start(BIN, &[&data_arg], dir.path()).await;
    let (code, output) = start_fails(BIN, &[&data_arg], &[], dir.path());
    assert_ne!(code, Some(0), "{output}");
    assert!(code.is_some(), "the second server kept running: {output}");
    assert!(
        output.contains("is in use by another authmount server process"),
        "{output}"
    );
    assert!(output.contains("authmount.db.lock"), "{output}");
    // The first one still serves; once it is gone the database opens again.
    let (status, _) = first.call("GET", "sys/health", None, None).await;
    assert_eq!(status, 200);
    first.kill9();
    let again = Node::start(BIN, &[&data_arg], dir.path()).await;
    let (status, _) = again.call("GET", "sys/health", None, None).await;
    assert_eq!(status, 200);
}
