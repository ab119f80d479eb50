//! JWT login end to end over HTTP: the documented seed flow at several mount paths, the
//! token it yields, identity entities, every signing algorithm, and disabling a mount.

use authmount_testkit::{
    error_message, seed_claims, seed_mount, seed_role, Key, KeyKind, TestServer,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};

/// `auth_jwt_` followed by exactly 8 lower-case hex digits.
fn is_jwt_accessor(accessor: &str) -> bool {
    accessor.strip_prefix("auth_jwt_").is_some_and(|hex| {
        hex.len() == 8
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The docs' seed flow (enable, config, role, login) at `mount`, then the token's life:
/// lookup-self (X-Vault-Token and Bearer), renew-self, revoke-self.
async fn seed_flow(mount: &str) {
    let server = TestServer::start().await;
    let root = Some(server.root.as_str());
    let key = Key::rsa();

    let (status, body) = server
        .post(&format!("sys/auth/{mount}"), root, &json!({"type": "jwt"}))
        .await;
    assert_eq!(status, 204, "enable: {body}");

    let (status, body) = server.get("sys/auth", root).await;
    assert_eq!(status, 200, "{body}");
    let listed = format!("{mount}/");
    // The mounts appear under `data` and again at the top level for legacy clients.
    for entry in [&body["data"][&listed], &body[&listed]] {
        assert_eq!(entry["type"], "jwt", "{body}");
        let accessor = entry["accessor"].as_str().unwrap_or_default();
        assert!(is_jwt_accessor(accessor), "accessor {accessor:?}");
    }

    let (status, body) = server
        .post(
            &format!("auth/{mount}/config"),
            root,
            &json!({"jwt_validation_pubkeys": [key.public_pem()], "bound_issuer": "https://issuer.test/"}),
        )
        .await;
    assert_eq!(status, 204, "config: {body}");
    let (status, body) = server
        .post(&format!("auth/{mount}/role/demo"), root, &seed_role())
        .await;
    assert_eq!(status, 204, "role: {body}");

    let jwt = key.sign_claims("RS256", &seed_claims("alice"));
    let (status, body) = server.login(mount, "demo", &jwt).await;
    assert_eq!(status, 200, "login: {body}");
    let auth = &body["auth"];
    let token = auth["client_token"]
        .as_str()
        .expect("client_token")
        .to_string();
    assert!(token.starts_with("hvs."), "service token {token:?}");
    assert!(
        !auth["accessor"].as_str().unwrap_or_default().is_empty(),
        "{auth}"
    );
    assert_eq!(auth["policies"], json!(["default", "webapps"]));
    assert_eq!(auth["token_policies"], json!(["default", "webapps"]));
    assert_eq!(auth["metadata"], json!({"role": "demo"}));
    assert_eq!(auth["lease_duration"], 3600);
    assert_eq!(auth["renewable"], true);
    let entity_id = auth["entity_id"].as_str().unwrap_or_default().to_string();
    assert!(!entity_id.is_empty(), "{auth}");
    assert_eq!(auth["token_type"], "service");
    assert_eq!(auth["orphan"], true);
    assert_eq!(auth["num_uses"], 0);
    assert_eq!(body["data"], Value::Null);

    let expected_display_name = format!("{}-alice", mount.replace('/', "-"));
    let check_lookup = |body: &Value| {
        let data = &body["data"];
        assert_eq!(data["id"], token.as_str(), "{body}");
        assert_eq!(
            data["display_name"],
            expected_display_name.as_str(),
            "{body}"
        );
        assert_eq!(data["path"], format!("auth/{mount}/login"), "{body}");
        assert_eq!(data["meta"]["role"], "demo", "{body}");
        assert_eq!(data["entity_id"], entity_id.as_str(), "{body}");
        assert_eq!(data["policies"], json!(["default", "webapps"]), "{body}");
        let ttl = data["ttl"].as_i64().expect("ttl is a number");
        assert!((3590..=3600).contains(&ttl), "ttl {ttl}");
    };
    let (status, body) = server.get("auth/token/lookup-self", Some(&token)).await;
    assert_eq!(status, 200, "lookup-self: {body}");
    check_lookup(&body);

    let bearer = format!("Bearer {token}");
    let (status, body) = server
        .send(
            Method::GET,
            "auth/token/lookup-self",
            None,
            &[("Authorization", &bearer)],
            None,
        )
        .await;
    assert_eq!(status, 200, "lookup-self with Bearer: {body}");
    check_lookup(&body);

    let (status, body) = server
        .post("auth/token/renew-self", Some(&token), &json!({}))
        .await;
    assert_eq!(status, 200, "renew-self: {body}");
    assert_eq!(body["auth"]["lease_duration"], 3600, "{body}");
    assert_eq!(body["auth"]["client_token"], token.as_str(), "{body}");

    let (status, body) = server
        .post("auth/token/revoke-self", Some(&token), &json!({}))
        .await;
    assert_eq!(status, 204, "revoke-self: {body}");
    let (status, body) = server.get("auth/token/lookup-self", Some(&token)).await;
    assert_eq!(status, 403, "lookup-self after revoke: {body}");
    assert_eq!(body, json!({"errors": ["permission denied"]}));
}

#[tokio::test]
async fn seed_flow_works_at_the_default_path() {
    seed_flow("jwt").await;
}

#[tokio::test]
async fn seed_flow_works_at_a_custom_path() {
    seed_flow("my-path").await;
}

#[tokio::test]
async fn seed_flow_works_at_a_nested_path() {
    seed_flow("team/a/jwt").await;
}

fn entity_of(body: &Value) -> String {
    body["auth"]["entity_id"]
        .as_str()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| panic!("no entity_id in {body}"))
        .to_string()
}

#[tokio::test]
async fn the_same_user_logging_in_twice_keeps_one_entity() {
    let server = TestServer::start().await;
    let key = Key::rsa();
    seed_mount(&server, "jwt", &key).await;

    let (s1, first) = server
        .login(
            "jwt",
            "demo",
            &key.sign_claims("RS256", &seed_claims("alice")),
        )
        .await;
    let (s2, second) = server
        .login(
            "jwt",
            "demo",
            &key.sign_claims("RS256", &seed_claims("alice")),
        )
        .await;
    let (s3, other_user) = server
        .login(
            "jwt",
            "demo",
            &key.sign_claims("RS256", &seed_claims("bob")),
        )
        .await;
    assert_eq!(
        (s1, s2, s3),
        (200, 200, 200),
        "{first} {second} {other_user}"
    );

    assert_eq!(entity_of(&first), entity_of(&second));
    assert_ne!(
        first["auth"]["client_token"],
        second["auth"]["client_token"]
    );
    assert_ne!(entity_of(&first), entity_of(&other_user));
}

#[tokio::test]
async fn the_same_user_on_two_mounts_gets_two_entities() {
    let server = TestServer::start().await;
    let key = Key::rsa();
    seed_mount(&server, "jwt", &key).await;
    seed_mount(&server, "other", &key).await;

    let jwt = key.sign_claims("RS256", &seed_claims("alice"));
    let (s1, on_jwt) = server.login("jwt", "demo", &jwt).await;
    let (s2, on_other) = server.login("other", "demo", &jwt).await;
    assert_eq!((s1, s2), (200, 200), "{on_jwt} {on_other}");
    assert_ne!(entity_of(&on_jwt), entity_of(&on_other));
}

/// A mount whose config holds one public key of every kind, with the seed role.
async fn mount_with_every_key_kind(server: &TestServer) -> Vec<Key> {
    let keys: Vec<Key> = KeyKind::ALL.into_iter().map(Key::generate).collect();
    let pems: Vec<String> = keys.iter().map(Key::public_pem).collect();
    server.enable_jwt("jwt").await;
    server
        .write_ok(
            "auth/jwt/config",
            &json!({"jwt_validation_pubkeys": pems, "bound_issuer": authmount_testkit::SEED_ISSUER}),
        )
        .await;
    server.write_ok("auth/jwt/role/demo", &seed_role()).await;
    keys
}

#[tokio::test]
async fn every_algorithm_logs_in_with_its_own_key() {
    let server = TestServer::start().await;
    let keys = mount_with_every_key_kind(&server).await;

    let mut logged_in = Vec::new();
    for key in &keys {
        for alg in key.kind.algs() {
            let jwt = key.sign_claims(alg, &seed_claims(&format!("user-{alg}")));
            let header: Value = serde_json::from_slice(
                &URL_SAFE_NO_PAD
                    .decode(jwt.split('.').next().unwrap())
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(
                header["alg"], *alg,
                "the test signed with the wrong algorithm"
            );
            let (status, body) = server.login("jwt", "demo", &jwt).await;
            assert_eq!(status, 200, "{alg}: {body}");
            assert_eq!(body["auth"]["metadata"]["role"], "demo", "{alg}: {body}");
            logged_in.push(*alg);
        }
    }
    assert_eq!(
        logged_in,
        [
            "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
            "EdDSA"
        ]
    );
}

#[tokio::test]
async fn a_token_signed_by_an_unconfigured_key_of_the_same_type_is_refused() {
    let server = TestServer::start().await;
    mount_with_every_key_kind(&server).await;

    for kind in KeyKind::ALL {
        let stranger = Key::generate(kind);
        for alg in kind.algs() {
            let jwt = stranger.sign_claims(alg, &seed_claims("mallory"));
            let (status, body) = server.login("jwt", "demo", &jwt).await;
            assert_eq!(status, 400, "{alg}: {body}");
            let message = error_message(&body);
            assert!(
                message.contains("no known key successfully validated the token signature"),
                "{alg}: {message}"
            );
        }
    }
}

/// Replaces part `index` (0 header, 1 payload, 2 signature) of a compact JWS.
fn replace_part(jwt: &str, index: usize, part: &str) -> String {
    let mut parts: Vec<&str> = jwt.split('.').collect();
    parts[index] = part;
    parts.join(".")
}

#[tokio::test]
async fn a_token_altered_after_signing_is_refused() {
    let server = TestServer::start().await;
    let key = Key::rsa();
    seed_mount(&server, "jwt", &key).await;
    let jwt = key.sign_claims("RS256", &seed_claims("alice"));

    let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&seed_claims("admin")).unwrap());
    let forged_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS384","typ":"JWT"}"#);
    let signature = jwt.split('.').nth(2).unwrap();
    let mut flipped = URL_SAFE_NO_PAD.decode(signature).unwrap();
    flipped[0] ^= 1;
    let cases = [
        ("payload", replace_part(&jwt, 1, &forged_payload)),
        ("header", replace_part(&jwt, 0, &forged_header)),
        (
            "signature",
            replace_part(&jwt, 2, &URL_SAFE_NO_PAD.encode(flipped)),
        ),
    ];
    for (what, forged) in cases {
        let (status, body) = server.login("jwt", "demo", &forged).await;
        assert_eq!(status, 400, "altered {what}: {body}");
        let message = error_message(&body);
        assert!(
            message.contains("no known key successfully validated the token signature"),
            "altered {what}: {message}"
        );
    }
    // The untouched token still works, so the refusals above are about the alterations.
    let (status, body) = server.login("jwt", "demo", &jwt).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn jwt_supported_algs_refuses_other_algorithms() {
    let server = TestServer::start().await;
    let rsa = Key::rsa();
    let ec = Key::generate(KeyKind::P256);
    server.enable_jwt("jwt").await;
    server
        .write_ok(
            "auth/jwt/config",
            &json!({
                "jwt_validation_pubkeys": [rsa.public_pem(), ec.public_pem()],
                "jwt_supported_algs": ["RS256"],
                "bound_issuer": authmount_testkit::SEED_ISSUER,
            }),
        )
        .await;
    server.write_ok("auth/jwt/role/demo", &seed_role()).await;

    for (key, alg) in [(&ec, "ES256"), (&rsa, "RS384"), (&rsa, "PS256")] {
        let (status, body) = server
            .login("jwt", "demo", &key.sign_claims(alg, &seed_claims("alice")))
            .await;
        assert_eq!(status, 400, "{alg}: {body}");
        let message = error_message(&body);
        assert!(message.contains("unexpected algorithm"), "{alg}: {message}");
    }
    let (status, body) = server
        .login(
            "jwt",
            "demo",
            &rsa.sign_claims("RS256", &seed_claims("alice")),
        )
        .await;
    assert_eq!(status, 200, "RS256 is allowed: {body}");
}

#[tokio::test]
async fn disabling_a_mount_kills_its_tokens_and_re_enabling_starts_empty() {
    let server = TestServer::start().await;
    let root = Some(server.root.as_str());
    let key = Key::rsa();
    seed_mount(&server, "jwt", &key).await;
    let jwt = key.sign_claims("RS256", &seed_claims("alice"));
    let (status, body) = server.login("jwt", "demo", &jwt).await;
    assert_eq!(status, 200, "{body}");
    let token = body["auth"]["client_token"].as_str().unwrap().to_string();
    let (status, _) = server.get("auth/token/lookup-self", Some(&token)).await;
    assert_eq!(status, 200);

    let (status, body) = server.delete("sys/auth/jwt", root).await;
    assert_eq!(status, 204, "disable: {body}");
    let (status, body) = server.get("auth/token/lookup-self", Some(&token)).await;
    assert_eq!(status, 403, "token of a disabled mount: {body}");
    let (_, mounts) = server.get("sys/auth", root).await;
    assert!(mounts["data"].get("jwt/").is_none(), "{mounts}");

    server.enable_jwt("jwt").await;
    let (status, body) = server.get("auth/jwt/config", root).await;
    assert_eq!(
        (status, body),
        (404, json!({"errors": []})),
        "config after re-enable"
    );
    let (status, body) = server.list("auth/jwt/role", root).await;
    assert_eq!(
        (status, body),
        (404, json!({"errors": []})),
        "roles after re-enable"
    );
    let (status, body) = server.get("auth/jwt/role/demo", root).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = server.login("jwt", "demo", &jwt).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_message(&body), "could not load configuration");
    let (status, _) = server.get("auth/token/lookup-self", Some(&token)).await;
    assert_eq!(status, 403, "the old token stays dead after re-enabling");
}

/// Auth methods never issue tokens holding `root` or `response-wrapping` (the wrapping
/// tokens' own policy), whatever the role lists: OpenBao 2.7.2 answers these 400s.
#[tokio::test]
async fn a_login_never_gets_the_root_or_response_wrapping_policy() {
    let server = TestServer::start().await;
    let key = Key::rsa();
    seed_mount(&server, "reserved", &key).await;
    let jwt = key.sign_claims("RS256", &seed_claims("alice"));
    for (policy, want) in [
        ("root", "auth methods cannot create root tokens"),
        (
            "response-wrapping",
            "cannot assign policy \"response-wrapping\"",
        ),
    ] {
        let mut role = seed_role();
        role["token_policies"] = json!(["webapps", policy]);
        server.write_ok("auth/reserved/role/r", &role).await;
        let (status, body) = server.login("reserved", "r", &jwt).await;
        assert_eq!(status, 400, "{policy}: {body}");
        assert_eq!(error_message(&body), want);
    }
}

/// A mount tuned `token_type=default-batch` issues batch tokens to roles that leave the type
/// to the mount, and a role's own `token_type=service` still wins (Vault API:
/// `sys/auth/<path>/tune` `token_type`; role `token_type` `default`).
#[tokio::test]
async fn a_mount_tuned_default_batch_issues_batch_tokens_unless_the_role_says_otherwise() {
    let server = TestServer::start().await;
    let key = Key::rsa();
    seed_mount(&server, "jwt", &key).await;
    let mut service_role = seed_role();
    service_role["token_type"] = json!("service");
    server.write_ok("auth/jwt/role/svc", &service_role).await;
    server
        .write_ok("sys/auth/jwt/tune", &json!({"token_type": "default-batch"}))
        .await;
    let (status, tune) = server
        .get("sys/auth/jwt/tune", Some(server.root.as_str()))
        .await;
    assert_eq!(status, 200, "{tune}");
    assert_eq!(tune["data"]["token_type"], "default-batch", "{tune}");

    let jwt = key.sign_claims("RS256", &seed_claims("alice"));
    let (status, body) = server.login("jwt", "demo", &jwt).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["auth"]["token_type"], "batch", "{body}");
    let token = body["auth"]["client_token"].as_str().unwrap();
    assert!(token.starts_with("hvb."), "{token}");
    assert_eq!(body["auth"]["renewable"], false, "{body}");
    let (status, me) = server.get("auth/token/lookup-self", Some(token)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["data"]["type"], "batch", "{me}");

    let (status, body) = server.login("jwt", "svc", &jwt).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["auth"]["token_type"], "service", "{body}");
    let token = body["auth"]["client_token"].as_str().unwrap();
    assert!(token.starts_with("hvs."), "{token}");
}
