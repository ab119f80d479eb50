//! The seal with real server processes on SQLite: Shamir unseal keys across restarts, sealing
//! with sudo, static keys (files, environment, bad ones), the embedded key file, a store
//! written in the clear by the previous version, and what a copy of the database yields
//! (nothing: no token, no key, no secret, no forged batch token).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use authmount_framework::seal::{Seal, SealKind, StaticKey};
use authmount_framework::{Clock, Core, LeaseLimits, Operation, Request, SqlStore, Storage};
use authmount_testkit::idp::KeyServer;
use authmount_testkit::node::{set_up_jwt, start_fails, Node};
use authmount_testkit::{
    seed_claims, Binary, Key, TempDir, SEED_AUDIENCE, SEED_ISSUER, SEED_SUBJECT,
};
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use serde_json::{json, Value};

/// The `authmount` binary cargo built for these tests.
const BIN: Binary = Binary::at(env!("CARGO_BIN_EXE_authmount"));

/// The fields of OpenBao 2.7.2's `sys/seal-status`; unsealed it
/// adds `cluster_name` and `cluster_id`, a static seal `recovery_seal_type`.
const STATUS_FIELDS: [&str; 12] = [
    "type",
    "initialized",
    "sealed",
    "t",
    "n",
    "progress",
    "nonce",
    "recovery_seal",
    "version",
    "commit_date",
    "migration",
    "storage_type",
];

fn sqlite_config(dir: &TempDir, seal: &str) -> PathBuf {
    let db = dir.path().join("data/authmount.db");
    dir.file(
        &format!("server-{}.hcl", authmount_testkit::random_hex()),
        &format!(
            "storage \"sqlite\" {{ path = \"{}\" }}\n{seal}",
            db.display()
        ),
    )
}

fn static_block(id: &str, source: &str) -> String {
    format!("seal \"static\" {{\n  current_key_id = \"{id}\"\n  current_key = \"{source}\"\n}}\n")
}

/// 64 hex digits of fresh randomness from the OS.
fn random_key_hex() -> String {
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
    hex::encode(key)
}

fn errors(body: &Value) -> String {
    body["errors"].to_string()
}

#[tokio::test]
async fn shamir_keys_unseal_after_every_start_and_sudo_seals() {
    let dir = TempDir::new("seal-shamir");
    let config = format!("-config={}", sqlite_config(&dir, "").display());
    let node = Node::start(BIN, &[&config], dir.path()).await;

    let (status, s) = node.call("GET", "sys/seal-status", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            &s["type"],
            &s["initialized"],
            &s["sealed"],
            &s["storage_type"]
        ),
        (
            &json!("shamir"),
            &json!(false),
            &json!(true),
            &json!("sqlite")
        ),
        "{s}"
    );
    let mut fields: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort();
    let mut want = STATUS_FIELDS.to_vec();
    want.sort();
    assert_eq!(fields, want, "{s}");
    assert_eq!(node.call("GET", "sys/health", None, None).await.0, 501);
    // Not initialized is sealed, as in OpenBao; unseal checks its key before that.
    let (status, body) = node.call("GET", "sys/auth", Some("x"), None).await;
    assert_eq!(
        (status, errors(&body)),
        (503, r#"["Vault is sealed"]"#.into())
    );
    let (status, body) = node.call("PUT", "sys/unseal", None, Some(json!({}))).await;
    assert_eq!(
        (status, errors(&body)),
        (
            400,
            r#"["'key' must be specified in request body as JSON, or 'reset' set to true"]"#.into()
        )
    );
    let (status, body) = node
        .call("PUT", "sys/unseal", None, Some(json!({"reset": true})))
        .await;
    assert_eq!((status, &body["progress"]), (200, &json!(0)), "{body}");
    let (status, body) = node.call("PUT", "sys/init", None, Some(json!({}))).await;
    assert_eq!(status, 400);
    assert!(
        errors(&body).contains("shares must be at least one"),
        "{body}"
    );
    let (status, body) = node
        .call("PUT", "sys/unseal", None, Some(json!({"key": "00"})))
        .await;
    assert_eq!(
        (status, errors(&body)),
        (400, r#"["Vault is not initialized"]"#.into())
    );

    let init = node
        .init_with(json!({"secret_shares": 5, "secret_threshold": 3}))
        .await;
    let hex_keys: Vec<String> = serde_json::from_value(init["keys"].clone()).unwrap();
    let b64_keys: Vec<String> = serde_json::from_value(init["keys_base64"].clone()).unwrap();
    assert_eq!((hex_keys.len(), b64_keys.len()), (5, 5));
    for (h, b) in hex_keys.iter().zip(&b64_keys) {
        assert_eq!(h.len(), 66, "a share is 33 bytes");
        assert_eq!(hex::decode(h).unwrap(), B64.decode(b).unwrap());
    }
    let root = init["root_token"].as_str().unwrap().to_string();
    let (_, again) = node
        .call(
            "PUT",
            "sys/init",
            None,
            Some(json!({"secret_shares": 1, "secret_threshold": 1})),
        )
        .await;
    assert_eq!(errors(&again), r#"["Vault is already initialized"]"#);

    // Sealed after init, as in Vault: everything else answers 503 with Vault's text.
    let (_, s) = node.call("GET", "sys/seal-status", None, None).await;
    assert_eq!(
        (&s["sealed"], &s["t"], &s["n"]),
        (&json!(true), &json!(3), &json!(5))
    );
    let (status, body) = node.call("GET", "sys/auth", Some(&root), None).await;
    assert_eq!(
        (status, errors(&body)),
        (503, r#"["Vault is sealed"]"#.into())
    );
    let (status, health) = node.call("GET", "sys/health", None, None).await;
    assert_eq!(status, 503);
    assert_eq!(
        (&health["sealed"], &health["initialized"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(
        node.call("GET", "sys/init", None, None).await.1["initialized"],
        json!(true)
    );
    // What OpenBao 2.7.2 answers while sealed: sys/leader; help is sealed too; sealing a
    // sealed server is done already (no token needed); a wrong verb on the endpoints of
    // Vault's HTTP layer is a 405 with an empty error list.
    assert_eq!(
        node.call("GET", "sys/leader", None, None).await,
        (200, json!({"ha_enabled": false}))
    );
    for path in ["sys/health?help=1", "sys/auth?help=1", "sys/nonexistent"] {
        let (status, body) = node.call("GET", path, Some(&root), None).await;
        assert_eq!(
            (status, errors(&body)),
            (503, r#"["Vault is sealed"]"#.into()),
            "{path}"
        );
    }
    assert_eq!(node.call("PUT", "sys/seal", None, None).await.0, 204);
    for (method, path) in [
        ("GET", "sys/unseal"),
        ("GET", "sys/seal"),
        ("DELETE", "sys/seal-status"),
        ("POST", "sys/leader"),
        ("POST", "sys/health"),
        ("DELETE", "sys/init"),
        ("LIST", "sys/leader"),
    ] {
        assert_eq!(
            node.call(method, path, None, None).await,
            (405, json!({"errors": []})),
            "{method} {path}"
        );
    }

    // Three of five keys, hex and base64 mixed.
    assert_eq!(node.unseal(&hex_keys[0]).await["progress"], json!(1));
    assert_eq!(node.unseal(&b64_keys[3]).await["progress"], json!(2));
    let s = node.unseal(&hex_keys[4]).await;
    assert_eq!(
        (&s["sealed"], &s["progress"]),
        (&json!(false), &json!(0)),
        "{s}"
    );
    assert!(
        s["cluster_id"].as_str().is_some_and(|c| !c.is_empty()),
        "{s}"
    );

    let signer = Key::rsa();
    set_up_jwt(&node, &root, &signer, json!({})).await;
    let (status, first) = node.login(&signer, "alice").await;
    assert_eq!(status, 200, "{first}");
    let token = first["auth"]["client_token"].as_str().unwrap().to_string();

    // A restart is sealed again; progress, reset and a wrong key on the way.
    node.kill9();
    let node = Node::start(BIN, &[&config], dir.path()).await;
    assert_eq!(node.call("GET", "sys/health", None, None).await.0, 503);
    assert_eq!(node.login(&signer, "alice").await.0, 503);
    let first_try = node.unseal(&hex_keys[1]).await;
    assert_eq!(first_try["progress"], json!(1));
    assert!(!first_try["nonce"].as_str().unwrap().is_empty());
    let (status, s) = node
        .call("PUT", "sys/unseal", None, Some(json!({"reset": true})))
        .await;
    assert_eq!(
        (status, &s["progress"], &s["nonce"]),
        (200, &json!(0), &json!(""))
    );
    let mut wrong = hex::decode(&hex_keys[2]).unwrap();
    wrong[10] ^= 0xff;
    node.unseal(&hex_keys[1]).await;
    node.unseal(&hex_keys[0]).await;
    let (status, body) = node
        .call(
            "PUT",
            "sys/unseal",
            None,
            Some(json!({"key": hex::encode(wrong)})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        errors(&body).contains("do not open this storage's keyring"),
        "{body}"
    );
    let (_, s) = node.call("GET", "sys/seal-status", None, None).await;
    assert_eq!(
        (&s["sealed"], &s["progress"]),
        (&json!(true), &json!(0)),
        "{s}"
    );
    for (key, want) in [
        ("not a key", "valid hex or base64"),
        ("abcd", "shorter than minimum 16 bytes"),
    ] {
        let (status, body) = node
            .call("PUT", "sys/unseal", None, Some(json!({ "key": key })))
            .await;
        assert_eq!(status, 400);
        assert!(errors(&body).contains(want), "{key}: {body}");
    }
    let (status, body) = node.call("PUT", "sys/unseal", None, Some(json!({}))).await;
    assert_eq!(status, 400);
    assert!(errors(&body).contains("'key' must be specified"), "{body}");
    for key in [&hex_keys[2], &hex_keys[3], &b64_keys[1]] {
        node.unseal(key).await;
    }
    let (status, me) = node
        .call("GET", "auth/token/lookup-self", Some(&token), None)
        .await;
    assert_eq!(status, 200, "a token from before the restart: {me}");
    assert_eq!(node.login(&signer, "alice").await.0, 200);

    // sys/seal needs sudo: update alone is refused.
    node.ok(
        "PUT",
        "sys/policies/acl/sealer",
        &root,
        json!({"policy": "path \"sys/seal\" { capabilities = [\"update\"] }"}),
    )
    .await;
    let (_, created) = node
        .call(
            "POST",
            "auth/token/create",
            Some(&root),
            Some(json!({"policies": ["sealer"]})),
        )
        .await;
    let sealer = created["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        node.call("PUT", "sys/seal", Some(&sealer), None).await.0,
        403
    );
    assert_eq!(node.call("PUT", "sys/seal", None, None).await.0, 403);
    assert_eq!(
        node.call("GET", "sys/seal", Some(&root), None).await,
        (405, json!({"errors": []}))
    );
    assert_eq!(
        node.call("DELETE", "sys/health", Some(&root), None).await,
        (405, json!({"errors": []}))
    );
    assert_eq!(node.call("PUT", "sys/seal", Some(&root), None).await.0, 204);
    assert_eq!(
        node.call("GET", "auth/token/lookup-self", Some(&root), None)
            .await
            .0,
        503
    );
    assert_eq!(node.login(&signer, "alice").await.0, 503);
    assert_eq!(
        node.call("PUT", "sys/seal", Some(&root), None).await.0,
        204,
        "sealed twice"
    );
    assert_eq!(node.call("GET", "sys/health", None, None).await.0, 503);
    for key in [&hex_keys[0], &hex_keys[1], &hex_keys[2]] {
        node.unseal(key).await;
    }
    assert_eq!(node.call("GET", "sys/health", None, None).await.0, 200);
    assert_eq!(node.login(&signer, "alice").await.0, 200);
}

#[tokio::test]
async fn a_key_from_another_initialization_never_unseals() {
    let dir = TempDir::new("seal-other");
    let config_a = format!("-config={}", sqlite_config(&dir, "").display());
    let other = TempDir::new("seal-other-b");
    let config_b = format!("-config={}", sqlite_config(&other, "").display());
    let (a, b) = (
        Node::start(BIN, &[&config_a], dir.path()).await,
        Node::start(BIN, &[&config_b], other.path()).await,
    );
    let init = json!({"secret_shares": 3, "secret_threshold": 2});
    let keys_a = a.init_with(init.clone()).await["keys"].clone();
    let keys_b = b.init_with(init).await["keys"].clone();
    let key = |keys: &Value, i: usize| keys[i].as_str().unwrap().to_string();
    a.unseal(&key(&keys_a, 0)).await;
    // B's share number 2 next to A's share number 1: some key, not A's root key.
    let (status, body) = a
        .call(
            "PUT",
            "sys/unseal",
            None,
            Some(json!({"key": key(&keys_b, 1)})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(errors(&body).contains("do not open"), "{body}");
    // B's share number 1 next to A's share number 1.
    a.unseal(&key(&keys_a, 0)).await;
    let (status, body) = a
        .call(
            "PUT",
            "sys/unseal",
            None,
            Some(json!({"key": key(&keys_b, 0)})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(errors(&body).contains("same share number"), "{body}");
    let (_, s) = a.call("GET", "sys/seal-status", None, None).await;
    assert_eq!((&s["sealed"], &s["progress"]), (&json!(true), &json!(0)));
    a.unseal(&key(&keys_a, 2)).await;
    assert_eq!(a.unseal(&key(&keys_a, 1)).await["sealed"], json!(false));
}

#[tokio::test]
async fn a_static_key_unseals_at_every_start_and_bad_keys_stop_the_server() {
    let dir = TempDir::new("seal-static");
    let key_file = dir.file("unseal.key", &random_key_hex());
    let config = sqlite_config(
        &dir,
        &static_block("k1", &format!("file://{}", key_file.display())),
    );
    let config = format!("-config={}", config.display());
    let node = Node::start(BIN, &[&config], dir.path()).await;
    let (_, s) = node.call("GET", "sys/seal-status", None, None).await;
    assert_eq!(
        (
            &s["type"],
            &s["initialized"],
            &s["t"],
            &s["n"],
            &s["recovery_seal"]
        ),
        (
            &json!("static"),
            &json!(false),
            &json!(0),
            &json!(0),
            &json!(true)
        ),
        "{s}"
    );
    let (status, body) = node
        .call(
            "PUT",
            "sys/init",
            None,
            Some(json!({"secret_shares": 3, "secret_threshold": 2})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        errors(&body).contains("not applicable to seal type static"),
        "{body}"
    );
    let init = node.init_with(json!({})).await;
    assert_eq!(
        (&init["keys"], &init["keys_base64"]),
        (&json!([]), &json!([]))
    );
    let root = init["root_token"].as_str().unwrap().to_string();
    let signer = Key::rsa();
    set_up_jwt(&node, &root, &signer, json!({})).await;
    node.kill9();

    // Restarted: unsealed by itself.
    let node = Node::start(BIN, &[&config], dir.path()).await;
    assert_eq!(node.call("GET", "sys/health", None, None).await.0, 200);
    assert_eq!(node.login(&signer, "bob").await.0, 200);
    // Sealed by hand: it stays sealed (unseal refused with a reason) until a restart.
    assert_eq!(node.call("PUT", "sys/seal", Some(&root), None).await.0, 204);
    assert_eq!(node.login(&signer, "bob").await.0, 503);
    let (status, body) = node
        .call(
            "PUT",
            "sys/unseal",
            None,
            Some(json!({"key": random_key_hex()})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(errors(&body).contains("restart it"), "{body}");
    drop(node);
    let node = Node::start(BIN, &[&config], dir.path()).await;
    assert_eq!(node.login(&signer, "bob").await.0, 200);
    drop(node);

    // The same key from the environment, base64 this time.
    let raw = hex::decode(std::fs::read_to_string(&key_file).unwrap()).unwrap();
    let env_config = sqlite_config(&dir, &static_block("k1", "env://AUTHMOUNT_TEST_SEAL_KEY"));
    let env_config = format!("-config={}", env_config.display());
    let node = Node::try_start(
        BIN,
        &[&env_config],
        dir.path(),
        &[("AUTHMOUNT_TEST_SEAL_KEY", &B64.encode(&raw))],
    )
    .await
    .unwrap();
    assert_eq!(node.login(&signer, "bob").await.0, 200);
    drop(node);

    // Bad keys: the server refuses to start, says what is wrong, and changes nothing.
    let db = dir.path().join("data/authmount.db");
    let before = dump(&db).await;
    let wrong = dir.file("wrong.key", &random_key_hex());
    let short = dir.file("short.key", "0123456789abcdef");
    let missing = dir.path().join("missing.key");
    for (source, env, want) in [
        (
            format!("file://{}", missing.display()),
            None,
            "cannot read the key file",
        ),
        (
            format!("file://{}", wrong.display()),
            None,
            "does not open this storage's keyring",
        ),
        (
            format!("file://{}", short.display()),
            None,
            "not a 32-byte key",
        ),
        (
            "env://AUTHMOUNT_TEST_UNSET_KEY".to_string(),
            None,
            "environment variable AUTHMOUNT_TEST_UNSET_KEY unset",
        ),
        (
            "env://AUTHMOUNT_TEST_SEAL_KEY".to_string(),
            Some("tooshort"),
            "not a 32-byte key",
        ),
    ] {
        let config = sqlite_config(&dir, &static_block("k1", &source));
        let env: Vec<(&str, &str)> = env
            .map(|v| ("AUTHMOUNT_TEST_SEAL_KEY", v))
            .into_iter()
            .collect();
        let (code, out) = start_fails(
            BIN,
            &[&format!("-config={}", config.display())],
            &env,
            dir.path(),
        );
        assert_eq!(code, Some(1), "{source}: {out}");
        assert!(out.contains(want), "{source}: {out}");
        assert!(!out.contains("panicked"), "{out}");
    }
    // A Shamir config on a store sealed with a static key says so.
    let shamir = format!("-config={}", sqlite_config(&dir, "").display());
    let node = Node::start(BIN, &[&shamir], dir.path()).await;
    let (status, body) = node
        .call(
            "PUT",
            "sys/unseal",
            None,
            Some(json!({"key": random_key_hex()})),
        )
        .await;
    assert_eq!(status, 503);
    assert!(
        errors(&body).contains("initialized with a static key"),
        "{body}"
    );
    drop(node);
    assert_eq!(dump(&db).await, before, "refused starts wrote nothing");
}

#[tokio::test]
async fn the_embedded_server_makes_its_key_file_and_needs_it() {
    let dir = TempDir::new("seal-embedded");
    let data = dir.path().join("data");
    let arg = format!("-data-dir={}", data.display());
    let node = Node::start(BIN, &[&arg], dir.path()).await;
    let root = root_token_printed(&node.output());
    let key_file = data.join("seal.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    }
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(key.len(), 64, "hex of 32 bytes, as OpenBao reads it");
    let (_, s) = node.call("GET", "sys/seal-status", None, None).await;
    assert_eq!(
        (&s["type"], &s["sealed"]),
        (&json!("static"), &json!(false)),
        "{s}"
    );
    node.kill9();
    let node = Node::start(BIN, &[&arg], dir.path()).await;
    assert_eq!(node.call("GET", "sys/auth", Some(&root), None).await.0, 200);
    drop(node);

    // Without its key file the store is unreadable: the server says so and makes no new key.
    std::fs::rename(&key_file, dir.path().join("kept-apart.key")).unwrap();
    let (code, out) = start_fails(BIN, &[&arg], &[], dir.path());
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("seal.key is missing"), "{out}");
    assert!(!key_file.exists(), "no new key over an existing store");
    // Another key in its place does not open it.
    std::fs::write(&key_file, random_key_hex()).unwrap();
    let (code, out) = start_fails(BIN, &[&arg], &[], dir.path());
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("does not open this storage's keyring"),
        "{out}"
    );
    std::fs::rename(dir.path().join("kept-apart.key"), &key_file).unwrap();
    let node = Node::start(BIN, &[&arg], dir.path()).await;
    assert_eq!(node.call("GET", "sys/auth", Some(&root), None).await.0, 200);
}

fn root_token_printed(out: &str) -> String {
    out.split("Root Token: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no root token printed:\n{out}"))
        .to_string()
}

/// Every key and raw value of the SQLite store at `db`.
async fn dump(db: &Path) -> Vec<(String, Vec<u8>)> {
    let store = SqlStore::sqlite(db).await.expect("open the store");
    let mut out = Vec::new();
    let mut pending = vec![String::new()];
    while let Some(dir) = pending.pop() {
        for child in store.list(&dir).await.expect("list") {
            let key = format!("{dir}{child}");
            if child.ends_with('/') {
                pending.push(key);
            } else {
                out.push((
                    key.clone(),
                    store.get(&key).await.expect("get").unwrap_or_default(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Writes a store the way the previous version did (values in the clear): its core, driven
/// without a seal, initialized, with a jwt mount, config and role and one login.
async fn write_plaintext_store(db: &Path, signer: &Key) -> (String, String) {
    let store: Arc<dyn Storage> = Arc::new(SqlStore::sqlite(db).await.unwrap());
    let core = Core::with_limits(
        store,
        authmount_server::default_registry(),
        LeaseLimits::default(),
    );
    let root = core.initialize().await.unwrap().expect("root token");
    let call = |op: Operation, path: &str, body: Value| {
        Request::new(op, path)
            .with_data(body)
            .with_token(root.clone())
    };
    for (path, body) in [
        ("sys/auth/jwt", json!({"type": "jwt"})),
        (
            "auth/jwt/config",
            json!({"jwt_validation_pubkeys": [signer.public_pem()], "bound_issuer": SEED_ISSUER}),
        ),
        (
            "auth/jwt/role/demo",
            json!({"bound_subject": SEED_SUBJECT, "bound_audiences": SEED_AUDIENCE,
            "user_claim": "https://vault/user", "policies": "webapps", "ttl": "1h"}),
        ),
    ] {
        let reply = core.handle(call(Operation::Update, path, body)).await;
        assert!(reply.status < 300, "{path}: {:?}", reply.body);
    }
    let reply = core
        .handle(
            Request::new(Operation::Update, "auth/jwt/login")
                .with_data(json!({"role": "demo", "jwt": signer.jwt(&seed_claims("carol"))})),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let token = reply.body.unwrap()["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    (root, token)
}

#[tokio::test]
async fn a_store_in_the_clear_from_the_previous_version_is_encrypted_in_place() {
    let signer = Key::rsa();

    // The embedded server (static key file): encrypted at its first start.
    let dir = TempDir::new("seal-migrate");
    let data = dir.path().join("data");
    let db = data.join("authmount.db");
    let (root, token) = write_plaintext_store(&db, &signer).await;
    let plain = dump(&db).await;
    assert!(plain
        .iter()
        .any(|(k, v)| k == "core/token/keyring" && v.starts_with(b"{")));
    let node = Node::start(BIN, &[&format!("-data-dir={}", data.display())], dir.path()).await;
    let out = node.output();
    assert!(
        out.contains(&format!("Encrypted in place {} values", plain.len())),
        "{out}"
    );
    assert!(
        !out.contains("Root Token"),
        "the old root token stands:\n{out}"
    );
    assert_eq!(
        node.call("GET", "auth/token/lookup-self", Some(&token), None)
            .await
            .0,
        200
    );
    assert_eq!(node.call("GET", "sys/auth", Some(&root), None).await.0, 200);
    let (status, body) = node
        .call(
            "POST",
            "auth/jwt/login",
            None,
            Some(json!({"role": "demo", "jwt": signer.jwt(&seed_claims("carol"))})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    drop(node);
    for (key, value) in dump(&db).await {
        if key.starts_with("seal/") {
            continue;
        }
        assert_eq!(value.first(), Some(&1u8), "{key} is barrier ciphertext");
    }

    // A Shamir config: refused until `sys/init`, which encrypts it and makes the keys.
    let dir = TempDir::new("seal-migrate-shamir");
    let db = dir.path().join("data/authmount.db");
    let (root, token) = write_plaintext_store(&db, &signer).await;
    let config = format!("-config={}", sqlite_config(&dir, "").display());
    let node = Node::start(BIN, &[&config], dir.path()).await;
    let (status, body) = node.call("GET", "sys/auth", Some(&root), None).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        node.output().contains("encrypts it in place"),
        "{}",
        node.output()
    );
    let (status, init) = node
        .call(
            "PUT",
            "sys/init",
            None,
            Some(json!({"secret_shares": 1, "secret_threshold": 1})),
        )
        .await;
    assert_eq!(status, 200, "{init}");
    node.unseal(init["keys"][0].as_str().unwrap()).await;
    assert_eq!(
        node.call("GET", "auth/token/lookup-self", Some(&token), None)
            .await
            .0,
        200
    );
    assert_eq!(node.call("GET", "sys/auth", Some(&root), None).await.0, 200);
    drop(node);
    assert!(dump(&db)
        .await
        .iter()
        .all(|(k, v)| k.starts_with("seal/") || v.first() == Some(&1)));
}

/// A minimal OpenID provider on 127.0.0.1 (discovery document and key set), for a jwt config
/// with an `oidc_client_secret`.
fn discovery_server() -> KeyServer {
    let idp = KeyServer::http();
    idp.serve_jwks("/jwks", &[Key::rsa().public_jwk(Some("k1"))]);
    idp.serve_discovery("", &idp.base, &idp.url("/jwks"));
    idp
}

/// Every file of the SQLite database (the main file, its WAL and shared memory), as a
/// thief with read access would copy them.
fn copy_database(data: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["authmount.db", "authmount.db-wal", "authmount.db-shm"] {
        if let Ok(b) = std::fs::read(data.join(name)) {
            bytes.extend(b);
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A batch token as the token store makes one: `hvb.` + base64url(nonce ‖ ChaCha20-Poly1305
/// of the entry JSON under `batch_key`), here with policy `root`.
fn forge_batch_token(batch_key: &[u8]) -> String {
    let now = authmount_testkit::now();
    let entry = json!({
        "accessor": "", "policies": ["root"], "token_policies": ["root"], "meta": {},
        "display_name": "forged", "path": "auth/token/create", "mount_accessor": "",
        "entity_id": "", "creation_time": now, "creation_ttl": 3600,
        "expire_time": now + 3600, "max_ttl": 0, "explicit_max_ttl": 0, "period": 0,
        "num_uses": 0, "bound_cidrs": [], "token_type": "batch", "renewable": false,
        "internal_data": {}, "params": serde_json::to_value(authmount_framework::TokenParams::default()).unwrap(),
        "last_renewal_time": null, "identity_policies": [], "parent_accessor": "",
    });
    let cipher = ChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(batch_key));
    let nonce = [7u8; 12];
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), entry.to_string().as_bytes())
        .unwrap();
    let mut bytes = nonce.to_vec();
    bytes.extend(sealed);
    format!("hvb.{}", URL_SAFE_NO_PAD.encode(bytes))
}

#[tokio::test]
async fn a_copy_of_the_database_yields_no_token_no_key_and_no_secret() {
    let dir = TempDir::new("seal-copy");
    let data = dir.path().join("data");
    let node = Node::start(BIN, &[&format!("-data-dir={}", data.display())], dir.path()).await;
    let root = root_token_printed(&node.output());
    let signer = Key::rsa();
    set_up_jwt(&node, &root, &signer, json!({})).await;
    // A second role issuing batch tokens, an OIDC config with a client secret, groups.
    node.ok(
        "POST",
        "auth/jwt/role/batch",
        &root,
        json!({"bound_subject": SEED_SUBJECT, "bound_audiences": SEED_AUDIENCE,
               "user_claim": "https://vault/user", "policies": "webapps", "token_type": "batch"}),
    )
    .await;
    let client_secret = format!("oidc-client-secret-{}", authmount_testkit::random_hex());
    let idp = discovery_server();
    node.ok("POST", "sys/auth/oidc", &root, json!({"type": "oidc"}))
        .await;
    node.ok(
        "POST",
        "auth/oidc/config",
        &root,
        json!({"oidc_discovery_url": idp.base, "oidc_client_id": "authmount",
               "oidc_client_secret": client_secret, "default_role": "web"}),
    )
    .await;
    let (_, mounts) = node.call("GET", "sys/auth", Some(&root), None).await;
    let accessor = mounts["data"]["jwt/"]["accessor"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, group) = node
        .call(
            "POST",
            "identity/group",
            Some(&root),
            Some(json!({"name": "developers", "type": "external", "policies": ["dev-policy"]})),
        )
        .await;
    let group_id = group["data"]["id"].as_str().unwrap().to_string();
    node.ok(
        "POST",
        "identity/group-alias",
        &root,
        json!({"name": "engineering", "mount_accessor": accessor, "canonical_id": group_id}),
    )
    .await;
    node.ok(
        "POST",
        "identity/group",
        &root,
        json!({"name": "internal-admins", "policies": ["admin"]}),
    )
    .await;

    let (status, service) = node.login(&signer, "alice").await;
    assert_eq!(status, 200, "{service}");
    assert_eq!(service["auth"]["identity_policies"], json!(["dev-policy"]));
    let service_token = service["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let accessor_of_service = service["auth"]["accessor"].as_str().unwrap().to_string();
    let mut claims = seed_claims("bob");
    claims["https://vault/groups"] = json!(["dev"]);
    let (status, batch) = node
        .call(
            "POST",
            "auth/jwt/login",
            None,
            Some(json!({"role": "batch", "jwt": signer.jwt(&claims)})),
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    let batch_token = batch["auth"]["client_token"].as_str().unwrap().to_string();
    assert!(batch_token.starts_with("hvb."));
    let (_, created) = node
        .call(
            "POST",
            "auth/token/create",
            Some(&root),
            Some(json!({"policies": ["webapps"]})),
        )
        .await;
    let child_token = created["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();

    // The thief's copy, taken while the server runs.
    let copy = copy_database(&data);
    assert!(copy.len() > 4096, "the copy has the data");
    let key_hex = std::fs::read_to_string(data.join("seal.key")).unwrap();

    // What the owner of the key file can read: the real keyring, to grep for.
    let physical: Arc<dyn Storage> =
        Arc::new(SqlStore::sqlite(&data.join("authmount.db")).await.unwrap());
    let owner = Seal::new(
        physical.clone(),
        SealKind::Static {
            current: StaticKey::parse("embedded", key_hex.as_bytes()).unwrap(),
            previous: None,
        },
        Clock::system(),
    );
    assert!(owner.auto_unseal().await.unwrap());
    let keyring: Value = serde_json::from_slice(
        &owner
            .storage()
            .get("core/token/keyring")
            .await
            .unwrap()
            .expect("token keyring"),
    )
    .unwrap();
    let hmac_key = keyring["hmac_key"].as_str().unwrap().to_string();
    let batch_key_hex = keyring["batch_key"].as_str().unwrap().to_string();
    let batch_key = hex::decode(&batch_key_hex).unwrap();

    let batch_body = URL_SAFE_NO_PAD
        .decode(batch_token.trim_start_matches("hvb."))
        .unwrap();
    for (what, needle) in [
        ("root token", root.as_bytes().to_vec()),
        ("service token", service_token.as_bytes().to_vec()),
        (
            "service token body",
            service_token.trim_start_matches("hvs.").as_bytes().to_vec(),
        ),
        ("child token", child_token.as_bytes().to_vec()),
        ("batch token", batch_token.as_bytes().to_vec()),
        ("batch token bytes", batch_body[..32].to_vec()),
        ("oidc_client_secret", client_secret.as_bytes().to_vec()),
        ("hmac key (hex)", hmac_key.as_bytes().to_vec()),
        ("hmac key (bytes)", hex::decode(&hmac_key).unwrap()),
        ("batch key (hex)", batch_key_hex.as_bytes().to_vec()),
        ("batch key (bytes)", batch_key.clone()),
        ("seal key (hex)", key_hex.as_bytes().to_vec()),
        ("seal key (bytes)", hex::decode(key_hex.trim()).unwrap()),
        ("field names of the keyring", b"hmac_key".to_vec()),
        ("policy names", b"dev-policy".to_vec()),
        ("JWT config", b"jwt_validation_pubkeys".to_vec()),
        ("public key", b"BEGIN PUBLIC KEY".to_vec()),
    ] {
        assert!(
            !contains(&copy, &needle),
            "the {what} is in the copy of the database"
        );
    }
    // Keys stay in the clear, as in Vault (the accessor is a path); every value but the
    // seal's own document is barrier ciphertext.
    assert!(contains(&copy, accessor_of_service.as_bytes()));
    let stored = dump(&data.join("authmount.db")).await;
    for (key, value) in &stored {
        if key != "seal/config" {
            assert_eq!(value.first(), Some(&1u8), "{key} is barrier ciphertext");
        }
    }

    // Forging a root batch token from the copy: the stored keyring is ciphertext, so the
    // old attack (read batch_key, seal an entry) has no key. Every 32-byte window of the
    // stored value tried as the key: all refused.
    let raw = &stored
        .iter()
        .find(|(k, _)| k == "core/token/keyring")
        .unwrap()
        .1;
    assert!(
        serde_json::from_slice::<Value>(raw).is_err(),
        "the stored keyring is not JSON"
    );
    let mut tried = 0;
    for window in raw.windows(32).step_by(4) {
        let forged = forge_batch_token(window);
        let (status, _) = node.call("GET", "sys/auth", Some(&forged), None).await;
        assert_eq!(status, 403, "a token forged from stored bytes was accepted");
        tried += 1;
    }
    assert!(tried > 10);
    // With the key file as well, the same forgery works: the key file is what protects.
    let forged = forge_batch_token(&batch_key);
    let (status, body) = node.call("GET", "sys/auth", Some(&forged), None).await;
    assert_eq!(status, 200, "the forging code is right (control): {body}");
}
