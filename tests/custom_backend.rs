//! A backend written outside the framework (`examples/custom_backend.rs`, API keys) mounted
//! next to the JWT method at two paths of a real HTTP server: creating keys, logging in at
//! both paths, hashes-only storage, rotation and deletion, and the registry's refusal of an
//! unknown type.

#[path = "../examples/custom_backend.rs"]
#[allow(dead_code)] // the example's own `main` is not used here
mod custom_backend;

use std::sync::Arc;

use authmount::framework::{InMemory, Registry, Storage};
use authmount_testkit::{error_message, seed_claims, seed_mount, Key, TestServer};
use serde_json::{json, Value};

/// The server's registry plus the API-key type.
fn registry() -> Registry {
    let mut registry = authmount_server::default_registry();
    custom_backend::register(&mut registry);
    registry
}

async fn enable_api_keys(server: &TestServer, mount: &str) {
    let (status, body) = server
        .post(
            &format!("sys/auth/{mount}"),
            Some(&server.root),
            &json!({"type": "api-key"}),
        )
        .await;
    assert_eq!(status, 204, "enable api-key at {mount}: {body}");
}

/// Creates key `name` at `mount` and returns the key, shown once in `data.key`.
async fn create_key(server: &TestServer, mount: &str, name: &str, body: Value) -> String {
    let (status, resp) = server
        .post(
            &format!("auth/{mount}/keys/{name}"),
            Some(&server.root),
            &body,
        )
        .await;
    assert_eq!(status, 200, "create key {name} at {mount}: {resp}");
    let key = resp["data"]["key"].as_str().expect("data.key").to_string();
    assert!(key.starts_with("ak_") && key.len() == 3 + 64, "key {key:?}");
    key
}

async fn login(server: &TestServer, mount: &str, key: &str) -> (u16, Value) {
    server
        .post(&format!("auth/{mount}/login"), None, &json!({"key": key}))
        .await
}

#[tokio::test]
async fn api_keys_log_in_over_http_at_two_mount_paths_next_to_jwt() {
    let server = TestServer::start_with(registry()).await;
    let root = Some(server.root.as_str());

    // The JWT method works beside it.
    let jwt_key = Key::rsa();
    seed_mount(&server, "jwt", &jwt_key).await;
    let jwt = jwt_key.sign_claims("RS256", &seed_claims("alice"));
    let (status, body) = server.login("jwt", "demo", &jwt).await;
    assert_eq!(status, 200, "jwt login: {body}");

    let mounts = ["keys", "team/keys"];
    for mount in mounts {
        enable_api_keys(&server, mount).await;
    }
    let (status, body) = server.get("sys/auth", root).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["jwt/"]["type"], "jwt", "{body}");
    assert_eq!(body["data"]["keys/"]["type"], "api-key", "{body}");
    assert_eq!(body["data"]["team/keys/"]["type"], "api-key", "{body}");

    let mut keys = Vec::new();
    let mut entities = Vec::new();
    for mount in mounts {
        let key = create_key(
            &server,
            mount,
            "CI",
            json!({"policies": "deploy, reports", "ttl": "15m"}),
        )
        .await;
        // The name is lower-cased by its field type; reading never shows the key.
        let (status, body) = server.get(&format!("auth/{mount}/keys/ci"), root).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["policies"], json!(["deploy", "reports"]));
        assert_eq!(body["data"]["ttl"], 900);
        assert!(body["data"].get("key").is_none(), "{body}");
        assert!(!body.to_string().contains(&key), "{body}");

        let (status, body) = login(&server, mount, &key).await;
        assert_eq!(status, 200, "login at {mount}: {body}");
        let auth = &body["auth"];
        assert_eq!(auth["policies"], json!(["default", "deploy", "reports"]));
        assert_eq!(auth["lease_duration"], 900);
        assert_eq!(auth["renewable"], true);
        assert_eq!(auth["metadata"], json!({"key_name": "ci"}));
        let token = auth["client_token"].as_str().expect("client_token");
        assert!(token.starts_with("hvs."), "{token}");
        entities.push(auth["entity_id"].as_str().unwrap_or_default().to_string());

        let (status, body) = server.get("auth/token/lookup-self", Some(token)).await;
        assert_eq!(status, 200, "{body}");
        let display = format!("{}-ci", mount.replace('/', "-"));
        assert_eq!(body["data"]["display_name"], display.as_str(), "{body}");
        assert_eq!(body["data"]["path"], format!("auth/{mount}/login"));
        let (status, body) = server
            .post("auth/token/renew-self", Some(token), &json!({}))
            .await;
        assert_eq!(status, 200, "renew-self: {body}");
        assert_eq!(body["auth"]["lease_duration"], 900, "{body}");
        keys.push(key);
    }
    // Each mount is its own method: separate keys, separate identities.
    assert_ne!(keys[0], keys[1]);
    assert_ne!(entities[0], entities[1]);
    let (status, body) = login(&server, "team/keys", &keys[0]).await;
    assert_eq!(status, 400, "{body}");
    let message = error_message(&body);
    assert_eq!(message, "invalid API key");
    assert!(!message.contains(&keys[0]));

    let (status, body) = server.list("auth/keys/keys", root).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["keys"], json!(["ci"]));
}

#[tokio::test]
async fn an_api_key_is_stored_only_as_its_sha256() {
    let storage = Arc::new(InMemory::new());
    let root = format!("root-{}", authmount_testkit::random_hex());
    let core = authmount::framework::Core::new(storage.clone(), registry());
    core.dev_init(&root).await.expect("root token");
    let server = TestServer::serve(Arc::new(core), root);
    enable_api_keys(&server, "keys").await;
    let key = create_key(&server, "keys", "ci", json!({"policies": "deploy"})).await;
    let (status, body) = login(&server, "keys", &key).await;
    assert_eq!(status, 200, "{body}");

    let stored = dump(storage.as_ref()).await;
    assert!(!stored.is_empty());
    let hash = custom_backend::sha256_hex(&key);
    let secret = key.trim_start_matches("ak_");
    let mut hash_seen = false;
    for (k, v) in &stored {
        let v = String::from_utf8_lossy(v);
        assert!(!k.contains(secret) && !v.contains(secret), "{k} = {v}");
        hash_seen |= k.contains(&hash) || v.contains(&hash);
    }
    assert!(hash_seen, "the SHA-256 of the key is what is stored");
}

/// Every key and value in `storage`.
async fn dump(storage: &dyn Storage) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![String::new()];
    while let Some(dir) = pending.pop() {
        for child in storage.list(&dir).await.expect("list") {
            let key = format!("{dir}{child}");
            if child.ends_with('/') {
                pending.push(key);
            } else if let Some(value) = storage.get(&key).await.expect("get") {
                out.push((key, value));
            }
        }
    }
    out
}

#[tokio::test]
async fn rotating_or_deleting_a_key_ends_its_logins_and_renewals() {
    let server = TestServer::start_with(registry()).await;
    let root = Some(server.root.as_str());
    enable_api_keys(&server, "keys").await;
    let old = create_key(&server, "keys", "ci", json!({"ttl": 600})).await;
    let (status, body) = login(&server, "keys", &old).await;
    assert_eq!(status, 200, "{body}");
    let old_token = body["auth"]["client_token"].as_str().unwrap().to_string();

    // An update without `rotate` keeps the key and answers 204.
    let (status, body) = server
        .post("auth/keys/keys/ci", root, &json!({"ttl": "20m"}))
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = login(&server, "keys", &old).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["auth"]["lease_duration"], 1200);

    let new = create_key(&server, "keys", "ci", json!({"rotate": true})).await;
    assert_ne!(old, new);
    let (status, body) = login(&server, "keys", &old).await;
    assert_eq!(status, 400, "the rotated-out key: {body}");
    let (status, body) = server
        .post("auth/token/renew-self", Some(&old_token), &json!({}))
        .await;
    assert_eq!(status, 400, "renewal after rotation: {body}");
    assert!(
        error_message(&body).contains("deleted or rotated"),
        "{body}"
    );
    let (status, body) = login(&server, "keys", &new).await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = server.delete("auth/keys/keys/ci", root).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = login(&server, "keys", &new).await;
    assert_eq!(status, 400, "a deleted key: {body}");
    let (status, body) = server.get("auth/keys/keys/ci", root).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = server.list("auth/keys/keys", root).await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn the_path_table_guards_the_custom_backend() {
    let server = TestServer::start_with(registry()).await;
    enable_api_keys(&server, "keys").await;
    // Writing keys needs a token; login does not.
    let (status, body) = server
        .post("auth/keys/keys/ci", None, &json!({"policies": "x"}))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = login(&server, "keys", "").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_message(&body), "missing key");
    // Field types are checked before the handler runs.
    let (status, body) = server
        .post(
            "auth/keys/keys/ci",
            Some(&server.root),
            &json!({"ttl": "1hr"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        error_message(&body).starts_with("Field validation failed"),
        "{body}"
    );
    let (status, body) = server.get("auth/keys/keys/ci", Some(&server.root)).await;
    assert_eq!(status, 404, "nothing was written: {body}");
    let (status, body) = server.get("auth/keys/login", None).await;
    assert_eq!(status, 405, "{body}");
    let (status, body) = server.get("auth/keys/nope", Some(&server.root)).await;
    assert_eq!(status, 404, "{body}");
    assert!(error_message(&body).contains("unsupported path"), "{body}");
}

#[tokio::test]
async fn an_unknown_type_gets_vaults_400() {
    let server = TestServer::start_with(registry()).await;
    let root = Some(server.root.as_str());
    let (status, body) = server
        .post("sys/auth/x", root, &json!({"type": "api-keys"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        error_message(&body),
        "plugin not found in the catalog: api-keys"
    );
    let (status, body) = server.get("sys/auth/x", root).await;
    assert_eq!(status, 400, "nothing was mounted: {body}");
    assert_eq!(error_message(&body), "No auth engine at x/");

    // The stock server does not know the example's type.
    let stock = TestServer::start().await;
    let (status, body) = stock
        .post("sys/auth/x", Some(&stock.root), &json!({"type": "api-key"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        error_message(&body),
        "plugin not found in the catalog: api-key"
    );
}
