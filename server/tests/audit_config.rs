//! Audit devices and the server config, against a real `authmount server -config=FILE`
//! process: an `audit` block is enabled once the server is unsealed and cannot be disabled
//! over the API; `PUT sys/audit/<path>` is refused without `unsafe_allow_api_audit_creation`
//! (OpenBao 2.7.2's answer) and, with it, refused for the server's own files (the seal key
//! file, the database, the config file); an `audit` block naming the key file stops the start
//! and leaves the key intact; `server -dev -config=FILE` reads the same settings.

use authmount_testkit::node::{static_seal, Node};
use authmount_testkit::{Binary, TempDir};
use serde_json::json;

/// The `authmount` binary cargo built for these tests.
const BIN: Binary = Binary::at(env!("CARGO_BIN_EXE_authmount"));

const REFUSED: &str =
    "cannot enable audit device via API; use declarative, config-based audit device management instead";

/// The config of a SQLite server in `dir` with a static seal, plus `extra`.
fn config(dir: &TempDir, name: &str, extra: &str) -> std::path::PathBuf {
    let db = dir.path().join("authmount.db");
    let text = format!(
        "storage \"sqlite\" {{ path = \"{}\" }}\n{}{extra}",
        db.display(),
        static_seal(dir)
    );
    dir.file(name, &text)
}

fn file_device(path: &std::path::Path) -> serde_json::Value {
    json!({"type": "file", "options": {"file_path": path.to_str().unwrap()}})
}

#[tokio::test]
async fn config_blocks_make_devices_and_the_servers_own_files_are_refused() {
    let dir = TempDir::new("audit-config");
    let declared_log = dir.path().join("logs/declared.log");
    let allowing = config(
        &dir,
        "allowing.hcl",
        &format!(
            "unsafe_allow_api_audit_creation = true\naudit \"file\" \"declared\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
            declared_log.display()
        ),
    );
    let node = Node::start(
        BIN,
        &[&format!("-config={}", allowing.display())],
        dir.path(),
    )
    .await;
    let root = node.init().await;
    let (status, list) = node.call("GET", "sys/audit", Some(&root), None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["data"]["declared/"]["type"], "file", "{list}");
    let log = std::fs::read_to_string(&declared_log).expect("the declared device's file");
    assert!(log.contains("\"path\":\"sys/audit\""), "{log}");
    let (status, body) = node
        .call("DELETE", "sys/audit/declared", Some(&root), None)
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"errors": ["cannot disable configuration-managed audit device"]})
        )
    );

    // The server's own files, even with API creation allowed.
    let key = dir.path().join("seal-test.key");
    let key_before = std::fs::read(&key).unwrap();
    for own in [
        key.clone(),
        dir.path().join("authmount.db"),
        dir.path().join("authmount.db-wal"),
        allowing.clone(),
    ] {
        let (status, body) = node
            .call("PUT", "sys/audit/own", Some(&root), Some(file_device(&own)))
            .await;
        assert_eq!(status, 400, "{}: {body}", own.display());
        assert!(
            body.to_string().contains("inside the server's own files"),
            "{}: {body}",
            own.display()
        );
    }
    assert_eq!(std::fs::read(&key).unwrap(), key_before);
    let beside = dir.path().join("logs/api.log");
    node.ok("PUT", "sys/audit/api", &root, file_device(&beside))
        .await;
    drop(node);

    // Without the setting: OpenBao's refusal; the block removed: its device goes.
    let default = config(&dir, "default.hcl", "");
    let node = Node::start(
        BIN,
        &[&format!("-config={}", default.display())],
        dir.path(),
    )
    .await;
    let (status, body) = node
        .call(
            "PUT",
            "sys/audit/other",
            Some(&root),
            Some(file_device(&beside)),
        )
        .await;
    assert_eq!((status, body), (400, json!({"errors": [REFUSED]})));
    let (_, list) = node.call("GET", "sys/audit", Some(&root), None).await;
    assert!(list["data"].get("declared/").is_none(), "{list}");
    assert!(list["data"].get("api/").is_some(), "{list}");
    drop(node);

    // A block naming the seal key file stops the start, and the key is untouched.
    let bad = config(
        &dir,
        "bad.hcl",
        &format!(
            "audit \"file\" \"brick\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
            key.display()
        ),
    );
    let output = Node::try_start(
        BIN,
        &[&format!("-config={}", bad.display())],
        dir.path(),
        &[],
    )
    .await
    .err()
    .expect("the server refuses to start");
    assert!(
        output.contains("audit \"file\" \"brick\" of the server config")
            && output.contains("inside the server's own files"),
        "{output}"
    );
    assert_eq!(std::fs::read(&key).unwrap(), key_before);
}

#[tokio::test]
async fn the_dev_server_reads_the_audit_settings_from_its_config_file() {
    let dir = TempDir::new("audit-dev");
    let port = authmount_testkit::free_port();
    let log = dir.path().join("dev.log");
    let file = dir.file(
        "dev.hcl",
        &format!(
            "audit \"file\" \"dev\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
            log.display()
        ),
    );
    let mut child = BIN
        .command()
        .args([
            "server",
            "-dev",
            "-dev-root-token-id=root",
            &format!("-dev-listen-address=127.0.0.1:{port}"),
            &format!("-config={}", file.display()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start authmount");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut list = None;
    for _ in 0..100 {
        if let Ok(resp) = client
            .get(format!("{base}/v1/sys/audit"))
            .header("X-Vault-Token", "root")
            .send()
            .await
        {
            list = Some(resp.json::<serde_json::Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let resp = client
        .put(format!("{base}/v1/sys/audit/more"))
        .header("X-Vault-Token", "root")
        .json(&file_device(&dir.path().join("more.log")))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let list = list.expect("the dev server answered");
    assert_eq!(list["data"]["dev/"]["type"], "file", "{list}");
    assert!(log.exists());
    assert_eq!((status, body), (400, json!({"errors": [REFUSED]})));
}
