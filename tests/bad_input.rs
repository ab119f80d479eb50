//! Malformed requests: each gets a 4xx with Vault's `{"errors":[...]}` body, never a 500,
//! a panic or a hang; and a rejected write leaves what was stored untouched.

use authmount_testkit::{error_message, seed_claims, seed_mount, Key, TestServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};

/// Asserts a Vault error: the status, an `errors` array, and a non-empty first message for
/// a 400. Returns that message ("" when the list is empty).
fn assert_error(context: &str, got: (u16, Value), status: u16) -> String {
    let (got_status, body) = got;
    assert_eq!(got_status, status, "{context}: {body}");
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{context}: not a Vault error body: {body}"));
    let message = errors
        .first()
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if status == 400 {
        assert!(
            !message.trim().is_empty(),
            "{context}: empty 400 message: {body}"
        );
    }
    message
}

/// The server still answers after whatever the test sent it.
async fn assert_alive(server: &TestServer) {
    let (status, body) = server.get("sys/health", None).await;
    assert_eq!(status, 200, "server after bad input: {body}");
}

async fn raw_post(
    server: &TestServer,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, Value) {
    server
        .send(Method::POST, path, token, &[], Some(body.to_vec()))
        .await
}

/// A server with the seed mount at `jwt` (role `demo`), and its key.
async fn seeded() -> (TestServer, Key) {
    let server = TestServer::start().await;
    let key = Key::rsa();
    seed_mount(&server, "jwt", &key).await;
    (server, key)
}

#[tokio::test]
async fn an_invalid_json_body_is_a_400() {
    let (server, _) = seeded().await;
    let root = Some(server.root.as_str());
    for (path, token) in [
        ("auth/jwt/role/new", root),
        ("auth/jwt/login", None),
        ("sys/auth/x", root),
    ] {
        for body in [
            &b"{\"user_claim\":"[..],
            b"{'a': 1}",
            b"not json",
            b"{\"a\":1}}",
            b"\xff\xfe",
        ] {
            let context = format!("{path} {}", String::from_utf8_lossy(body));
            let message = assert_error(&context, raw_post(&server, path, token, body).await, 400);
            assert!(
                message.contains("failed to parse JSON input"),
                "{context}: {message}"
            );
        }
    }
    let (status, _) = server.get("auth/jwt/role/new", root).await;
    assert_eq!(status, 404, "nothing was created");
    assert_alive(&server).await;
}

#[tokio::test]
async fn a_json_body_that_is_not_an_object_is_a_400() {
    let (server, _) = seeded().await;
    let root = Some(server.root.as_str());
    for body in [
        &b"[]"[..],
        b"[{\"user_claim\":\"sub\"}]",
        b"\"text\"",
        b"42",
        b"true",
    ] {
        let context = String::from_utf8_lossy(body).to_string();
        let message = assert_error(
            &context,
            raw_post(&server, "auth/jwt/role/new", root, body).await,
            400,
        );
        assert!(
            message.contains("must be a JSON object"),
            "{context}: {message}"
        );
        assert_error(
            &context,
            raw_post(&server, "auth/jwt/login", None, body).await,
            400,
        );
    }
    assert_alive(&server).await;
}

#[tokio::test]
async fn fields_of_the_wrong_type_fail_field_validation() {
    let (server, _) = seeded().await;
    let root = Some(server.root.as_str());
    let base = json!({"user_claim": "sub", "bound_subject": "s"});
    for (field, value) in [
        ("token_ttl", json!({"a": 1})),
        ("token_ttl", json!("1hr")),
        ("token_ttl", json!(-5)),
        ("bound_audiences", json!({"x": 1})),
        ("user_claim_json_pointer", json!("maybe")),
        ("token_num_uses", json!("many")),
        ("claim_mappings", json!(42)),
        ("bound_claims", json!("not a map")),
        ("user_claim", json!(["a", "b"])),
    ] {
        let mut body = base.clone();
        body[field] = value.clone();
        let context = format!("{field}: {value}");
        let message = assert_error(
            &context,
            server.post("auth/jwt/role/typed", root, &body).await,
            400,
        );
        assert!(
            message.starts_with("Field validation failed: error converting input"),
            "{context}: {message}"
        );
        assert!(
            message.contains(&format!("for field \"{field}\"")),
            "{context}: {message}"
        );
    }
    let (status, _) = server.get("auth/jwt/role/typed", root).await;
    assert_eq!(status, 404, "no refused write created the role");
    assert_alive(&server).await;
}

#[tokio::test]
async fn a_jwt_that_is_not_a_string_is_refused() {
    let (server, _) = seeded().await;
    // A number is taken as its text (Vault's weak string conversion), which is no JWS.
    let (status, body) = server
        .post("auth/jwt/login", None, &json!({"role": "demo", "jwt": 12}))
        .await;
    let message = assert_error("jwt: 12", (status, body), 400);
    assert!(message.starts_with("error validating token: "), "{message}");
    // Objects and arrays cannot be a string at all.
    for jwt in [json!({"a": 1}), json!(["a.b.c"])] {
        let got = server
            .post("auth/jwt/login", None, &json!({"role": "demo", "jwt": jwt}))
            .await;
        let message = assert_error(&format!("jwt: {jwt}"), got, 400);
        assert!(
            message.starts_with("Field validation failed"),
            "{jwt}: {message}"
        );
    }
}

#[tokio::test]
async fn login_against_an_unknown_role_is_a_400() {
    let (server, key) = seeded().await;
    let jwt = key.sign_claims("RS256", &seed_claims("alice"));
    let message = assert_error("unknown role", server.login("jwt", "nope", &jwt).await, 400);
    assert_eq!(message, "role \"nope\" could not be found");
}

#[tokio::test]
async fn malformed_jwts_are_refused_with_a_400() {
    let (server, key) = seeded().await;
    let signed = key.sign_claims("RS256", &seed_claims("alice"));
    let parts: Vec<&str> = signed.split('.').collect();
    let cases = [
        "abc.def".to_string(),
        "a.b.c.d".to_string(),
        "!!!.@@@.###".to_string(),
        format!("{}.{}.", parts[0], parts[1]),
        format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], parts[2]),
        format!("{}.%%%.{}", parts[0], parts[2]),
        format!("bm90IGpzb24.{}.{}", parts[1], parts[2]), // header "not json"
        format!(
            r#"{{"payload":"{}","signatures":[{{"protected":"{}","signature":"{}"}}]}}"#,
            parts[1], parts[0], parts[2]
        ),
        ".".repeat(10_000),
    ];
    for jwt in &cases {
        let message = assert_error(jwt, server.login("jwt", "demo", jwt).await, 400);
        assert!(
            message.starts_with("error validating token: "),
            "{jwt}: {message}"
        );
    }
    let message = assert_error("empty jwt", server.login("jwt", "demo", "").await, 400);
    assert_eq!(message, "missing token");
    let message = assert_error("blank jwt", server.login("jwt", "demo", "   ").await, 400);
    assert!(message.starts_with("error validating token: "), "{message}");
    let message = assert_error(
        "no jwt",
        server
            .post("auth/jwt/login", None, &json!({"role": "demo"}))
            .await,
        400,
    );
    assert_eq!(message, "missing token");
    assert_alive(&server).await;
}

#[tokio::test]
async fn a_deeply_nested_or_duplicated_token_header_is_refused_before_any_key_is_tried() {
    let (server, key) = seeded().await;
    let signed = key.sign_claims("RS256", &seed_claims("alice"));
    let parts: Vec<&str> = signed.split('.').collect();
    let nested = |depth: usize| {
        format!(
            r#"{{"alg":"RS256","x":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    for header in [
        nested(200),
        nested(100_000),
        r#"{"alg":"RS256","alg":"RS256"}"#.to_string(),
    ] {
        let jwt = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(&header),
            parts[1],
            parts[2]
        );
        let message = assert_error("bad header", server.login("jwt", "demo", &jwt).await, 400);
        assert!(
            message.starts_with("error validating token: malformed jwt: header: invalid JSON"),
            "{message}"
        );
    }
    assert_alive(&server).await;
}

#[tokio::test]
async fn a_body_over_the_size_limit_is_a_413() {
    let (server, _) = seeded().await;
    let mut body = br#"{"role":"demo","jwt":""#.to_vec();
    body.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
    body.extend(br#""}"#);
    let got = raw_post(&server, "auth/jwt/login", None, &body).await;
    let message = assert_error("10 MB body", got, 413);
    assert!(message.contains("too large"), "{message}");
    assert_alive(&server).await;
}

#[tokio::test]
async fn deeply_nested_json_is_a_400() {
    let (server, _) = seeded().await;
    let depth = 100_000;
    let mut body = br#"{"role":"demo","jwt":"#.to_vec();
    body.extend(std::iter::repeat_n(b'[', depth));
    body.extend(std::iter::repeat_n(b']', depth));
    body.push(b'}');
    let message = assert_error(
        "nested",
        raw_post(&server, "auth/jwt/login", None, &body).await,
        400,
    );
    assert!(message.contains("failed to parse JSON input"), "{message}");
    let objects = "{\"a\":".repeat(depth) + &"}".repeat(depth);
    let got = raw_post(
        &server,
        "auth/jwt/role/deep",
        Some(&server.root),
        objects.as_bytes(),
    )
    .await;
    assert_error("nested objects", got, 400);
    assert_alive(&server).await;
}

/// Vault takes `PATCH` only as a JSON merge patch (else 415), and the JWT method patches
/// nothing (405); either way the role is untouched.
#[tokio::test]
async fn patch_on_a_role_changes_nothing() {
    let (server, _) = seeded().await;
    let got = server
        .send(
            Method::PATCH,
            "auth/jwt/role/demo",
            Some(&server.root),
            &[],
            Some(br#"{"bound_subject":"x"}"#.to_vec()),
        )
        .await;
    let message = assert_error("PATCH role as JSON", got, 415);
    assert_eq!(
        message,
        "PATCH requires Content-Type of application/merge-patch+json, provided application/json"
    );
    let got = server
        .send(
            Method::PATCH,
            "auth/jwt/role/demo",
            Some(&server.root),
            &[("Content-Type", "application/merge-patch+json")],
            None,
        )
        .await;
    let message = assert_error("PATCH role as a merge patch", got, 405);
    assert!(message.contains("unsupported operation"), "{message}");
    let (_, role) = server.get("auth/jwt/role/demo", Some(&server.root)).await;
    assert_eq!(
        role["data"]["bound_subject"],
        authmount_testkit::SEED_SUBJECT,
        "PATCH changed nothing"
    );
}

#[tokio::test]
async fn get_on_login_is_a_405() {
    let (server, _) = seeded().await;
    let message = assert_error("GET login", server.get("auth/jwt/login", None).await, 405);
    assert!(message.contains("unsupported operation"), "{message}");
    let got = server.delete("auth/jwt/config", Some(&server.root)).await;
    assert_error("DELETE config", got, 405);
}

#[tokio::test]
async fn an_unknown_path_under_a_mount_is_a_404() {
    let (server, _) = seeded().await;
    let root = Some(server.root.as_str());
    for path in [
        "auth/jwt/nope",
        "auth/jwt/role/-bad-",
        "auth/jwt/config/extra",
        "auth/jwt/login/x",
    ] {
        let message = assert_error(path, server.get(path, root).await, 404);
        assert!(message.contains("unsupported path"), "{path}: {message}");
    }
}

#[tokio::test]
async fn config_without_a_token_is_a_403() {
    let (server, key) = seeded().await;
    let pem = key.public_pem();
    assert_error("GET config", server.get("auth/jwt/config", None).await, 403);
    let write = json!({"jwt_validation_pubkeys": [pem]});
    let got = server.post("auth/jwt/config", None, &write).await;
    assert_eq!(got.1, json!({"errors": ["permission denied"]}));
    assert_error("POST config", got, 403);
    let got = server
        .send(
            Method::GET,
            "auth/jwt/config",
            None,
            &[("X-Vault-Token", "")],
            None,
        )
        .await;
    assert_error("empty token header", got, 403);
}

#[tokio::test]
async fn config_with_an_unknown_token_is_a_403() {
    let (server, _) = seeded().await;
    let forged = format!("hvs.{}", authmount_testkit::random_hex());
    for token in [forged.as_str(), "not-a-token", &format!("{}x", server.root)] {
        let got = server.get("auth/jwt/config", Some(token)).await;
        assert_eq!(got.1, json!({"errors": ["permission denied"]}), "{token}");
        assert_error(token, got, 403);
    }
    let bearer = format!("Bearer {forged}");
    let got = server
        .send(
            Method::GET,
            "auth/jwt/config",
            None,
            &[("Authorization", &bearer)],
            None,
        )
        .await;
    assert_error("bad Bearer token", got, 403);
}

#[tokio::test]
async fn a_login_token_cannot_read_the_config() {
    let (server, key) = seeded().await;
    let (status, body) = server
        .login(
            "jwt",
            "demo",
            &key.sign_claims("RS256", &seed_claims("alice")),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["auth"]["client_token"].as_str().unwrap();
    assert_error(
        "login token on config",
        server.get("auth/jwt/config", Some(token)).await,
        403,
    );
}

#[tokio::test]
async fn a_rejected_role_write_leaves_the_role_untouched() {
    let (server, _) = seeded().await;
    let root = Some(server.root.as_str());
    let (status, before) = server.get("auth/jwt/role/demo", root).await;
    assert_eq!(status, 200, "{before}");

    let refused = [
        (
            json!({"bound_subject": "changed", "token_ttl": "2h", "token_max_ttl": "1h"}),
            "'token_ttl' cannot be greater than 'token_max_ttl'",
        ),
        (
            json!({"bound_subject": "changed", "token_policies": "other", "bound_claims_type": "nope"}),
            "invalid 'bound_claims_type': nope",
        ),
        (
            json!({"user_claim": "", "bound_audiences": "elsewhere"}),
            "a user claim must be defined on the role",
        ),
        (
            json!({"bound_subject": "", "bound_audiences": ""}),
            "must have at least one bound constraint when creating/updating a role",
        ),
        (
            json!({"bound_subject": "changed", "token_bound_cidrs": "10.0.0.0/8,not-an-ip"}),
            "error parsing address \"not-an-ip\"",
        ),
    ];
    for (write, expected) in refused {
        let message = assert_error(
            &write.to_string(),
            server.post("auth/jwt/role/demo", root, &write).await,
            400,
        );
        assert!(message.contains(expected), "{write}: {message}");
        let (status, after) = server.get("auth/jwt/role/demo", root).await;
        assert_eq!(status, 200);
        assert_eq!(after["data"], before["data"], "after refused {write}");
    }
}

#[tokio::test]
async fn a_rejected_config_write_leaves_the_config_and_logins_untouched() {
    let (server, key) = seeded().await;
    let root = Some(server.root.as_str());
    let (status, before) = server.get("auth/jwt/config", root).await;
    assert_eq!(status, 200, "{before}");
    let other = Key::rsa();

    let bad_pem = "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----";
    let refused = [
        (
            json!({"jwt_validation_pubkeys": [other.public_pem(), bad_pem], "bound_issuer": "https://other.test/"}),
            "error parsing public key",
        ),
        (
            json!({"jwt_validation_pubkeys": ["not a pem"], "bound_issuer": "https://other.test/"}),
            "error parsing public key",
        ),
        (
            json!({"jwt_validation_pubkeys": [other.public_pem()], "jwt_supported_algs": ["HS256"]}),
            "invalid jwt_supported_algs: unsupported signing algorithm \"HS256\"",
        ),
        (
            json!({"bound_issuer": "https://other.test/"}),
            "exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs' or 'oidc_discovery_url' must be set",
        ),
    ];
    for (write, expected) in refused {
        let message = assert_error(
            &write.to_string(),
            server.post("auth/jwt/config", root, &write).await,
            400,
        );
        assert!(message.contains(expected), "{write}: {message}");
        let (status, after) = server.get("auth/jwt/config", root).await;
        assert_eq!(status, 200);
        assert_eq!(after["data"], before["data"], "after refused {write}");
        let (status, body) = server
            .login(
                "jwt",
                "demo",
                &key.sign_claims("RS256", &seed_claims("alice")),
            )
            .await;
        assert_eq!(
            status, 200,
            "login with the old key after refused {write}: {body}"
        );
        let (status, body) = server
            .login(
                "jwt",
                "demo",
                &other.sign_claims("RS256", &seed_claims("alice")),
            )
            .await;
        assert_eq!(status, 400, "the refused key must not verify: {body}");
    }
}

#[tokio::test]
async fn error_messages_never_echo_the_jwt() {
    let (server, key) = seeded().await;
    let mut claims = seed_claims("alice");
    claims["sub"] = json!("someone-else");
    let jwt = key.sign_claims("RS256", &claims);
    let (status, body) = server.login("jwt", "demo", &jwt).await;
    assert_eq!(status, 400, "{body}");
    let message = error_message(&body);
    assert!(message.contains("invalid subject (sub) claim"), "{message}");
    let signature = jwt.split('.').nth(2).unwrap();
    assert!(!body.to_string().contains(signature), "{body}");
}

#[tokio::test]
async fn a_mount_under_the_reserved_token_path_is_refused() {
    let server = TestServer::start().await;
    let root = Some(server.root.as_str());
    let message = assert_error(
        "enable token/x",
        server
            .post("sys/auth/token/x", root, &json!({"type": "jwt"}))
            .await,
        400,
    );
    assert!(
        message.contains("path is already in use at token/"),
        "{message}"
    );
}

#[tokio::test]
async fn huge_durations_are_refused_or_capped_never_overflowed() {
    let (server, key) = seeded().await;
    let root = Some(server.root.as_str());
    let huge = json!({"default_lease_ttl": i64::MAX, "max_lease_ttl": i64::MAX});
    let message = assert_error(
        "tune",
        server.post("sys/auth/jwt/tune", root, &huge).await,
        400,
    );
    assert!(
        message.contains("cannot be greater than the system max lease TTL"),
        "{message}"
    );
    // Role durations near i64::MAX are capped by the mount's max lease TTL (768h).
    let role = json!({
        "user_claim": "https://vault/user",
        "bound_audiences": authmount_testkit::SEED_AUDIENCE,
        "token_ttl": i64::MAX,
        "token_explicit_max_ttl": i64::MAX,
    });
    server.write_ok("auth/jwt/role/huge", &role).await;
    let (status, body) = server
        .login(
            "jwt",
            "huge",
            &key.sign_claims("RS256", &seed_claims("alice")),
        )
        .await;
    assert_eq!(status, 200, "login: {body}");
    assert_eq!(body["auth"]["lease_duration"], json!(768 * 3600), "{body}");
    let token = body["auth"]["client_token"].as_str().unwrap();
    let (status, body) = server.get("auth/token/lookup-self", Some(token)).await;
    assert_eq!(status, 200, "the new token is alive: {body}");
    let (status, body) = server
        .post(
            "auth/token/renew-self",
            Some(token),
            &json!({"increment": i64::MAX}),
        )
        .await;
    assert_eq!(status, 200, "renew: {body}");
    assert!(
        body["auth"]["lease_duration"].as_i64().unwrap() <= 768 * 3600,
        "{body}"
    );
}

#[tokio::test]
async fn paths_are_percent_decoded_and_null_means_empty() {
    let server = TestServer::start().await;
    let root = Some(server.root.as_str());
    let (st, body) = server
        .post("sys/auth/a%2Eb%2Dc", root, &json!({"type": "jwt"}))
        .await;
    assert_eq!(st, 204, "{body}");
    let (_, mounts) = server.get("sys/auth", root).await;
    assert!(mounts["data"]["a.b-c/"].is_object(), "{mounts}");
    let (st, body) = server
        .post("sys/auth/%ff", root, &json!({"type": "jwt"}))
        .await;
    assert_eq!(st, 400, "{body}");
    // A JSON null body is an empty body; null durations and counts are zero.
    let (st, body) = server
        .send(
            reqwest::Method::POST,
            "auth/a%2Eb-c/role/r",
            root,
            &[],
            Some(b"null".to_vec()),
        )
        .await;
    assert_eq!(st, 400, "{body}");
    assert!(
        error_message(&body).contains("a user claim must be defined"),
        "{body}"
    );
    let role = json!({"user_claim": "sub", "bound_subject": "x", "token_ttl": null, "token_num_uses": null});
    let (st, body) = server.post("auth/a%2Eb-c/role/r", root, &role).await;
    assert_eq!(st, 204, "{body}");
    // A number where a string is expected is read as its decimal text, as
    // OpenBao 2.7.2 does (`plugin not found in the catalog: 5`).
    let (st, body) = server
        .post("sys/auth/other", root, &json!({"type": 5}))
        .await;
    assert_eq!(st, 400, "{body}");
    assert_eq!(error_message(&body), "plugin not found in the catalog: 5");
    let (st, _) = server
        .post("sys/auth/a%20b/tune", root, &json!({"description": 123}))
        .await;
    assert_eq!(st, 400);
    // Health only reads.
    assert_eq!(server.delete("sys/health", root).await.0, 405);
}

/// Durations that broke the parser used before (found by the duration property in
/// `framework/src/duration.rs`): a unit that is not ASCII (Go's micro sign and Greek mu read
/// as microseconds, any other letter is a 400) and a fraction of more than 18 digits (read,
/// its excess ignored) are answered; never a panic, a hang or a dropped connection.
#[tokio::test]
async fn odd_durations_are_read_or_refused_never_a_crash_or_a_hang() {
    let (server, _) = seeded().await;
    let root = Some(server.root.as_str());
    let base = json!({"user_claim": "sub", "bound_subject": "s"});
    for (value, ttl) in [
        ("0µs", Some(0)),
        ("5000000000μs", Some(5000)),
        ("1h5000000µs", Some(3605)),
        ("1é", None),
        ("5ms€", None),
        ("1µ", None),
        ("1.000000000000000000000000000001s", Some(1)),
        ("2.5000000000000000000000000000000000000000m", Some(150)),
    ] {
        let mut body = base.clone();
        body["token_ttl"] = json!(value);
        let (status, answer) = server.post("auth/jwt/role/units", root, &body).await;
        match ttl {
            Some(ttl) => {
                assert!(status < 300, "{value}: {status} {answer}");
                let (_, role) = server.get("auth/jwt/role/units", root).await;
                assert_eq!(role["data"]["token_ttl"], json!(ttl), "{value}");
            }
            None => {
                let message = assert_error(value, (status, answer), 400);
                assert!(message.contains("token_ttl"), "{value}: {message}");
            }
        }
    }
    assert_alive(&server).await;
}
