//! Vault's HTTP layer, answered as a real OpenBao 2.7.2 answers it (each expectation here was
//! read from one; `tests/compat/differential.py` compares the two servers on every run):
//! form-encoded bodies, query strings as data, verbs (`HEAD`, `OPTIONS`, `PATCH`, unknown
//! ones), the request target (redirects to the clean path, relative and unprintable paths),
//! `X-Vault-Wrap-TTL`, and the legacy top-level copies of `data` on `sys/` answers.

use std::time::Duration;

use authmount_testkit::{seed_claims, seed_mount, Key, TestServer, SEED_AUDIENCE, SEED_SUBJECT};
use reqwest::{redirect, Method};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FORM: &str = "application/x-www-form-urlencoded";

/// An HTTP answer: status, `Location`, `Content-Type` and the body (JSON, or the raw text as
/// a JSON string, or `Null` when empty).
#[derive(Debug)]
struct Answer {
    status: u16,
    location: Option<String>,
    content_type: Option<String>,
    body: Value,
}

/// Sends a request without following redirects, with the given headers and raw body.
async fn send(
    server: &TestServer,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Answer {
    let client = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client.request(method, format!("{}{path_and_query}", server.base));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(body) = body {
        req = req.body(body.to_vec());
    }
    let resp = req.send().await.expect("answered");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().expect("ASCII header").to_string())
    };
    let (status, location, content_type) = (
        resp.status().as_u16(),
        header("location"),
        header("content-type"),
    );
    let text = resp.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Answer {
        status,
        location,
        content_type,
        body,
    }
}

/// Sends `request_line` (e.g. `GET /v1/sys/./auth HTTP/1.1`) byte for byte over TCP, since
/// HTTP clients tidy `.` segments away before sending. Returns the status and the raw answer.
async fn send_raw_target(server: &TestServer, request_line: &str, token: &str) -> (u16, String) {
    let addr = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{request_line}\r\nHost: {addr}\r\nX-Vault-Token: {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {raw}"));
    (status, raw)
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

#[tokio::test]
async fn form_encoded_bodies_work_from_enable_to_login() {
    let server = TestServer::start().await;
    let root = server.root.as_str();
    let key = Key::rsa();
    let auth = [("X-Vault-Token", root), ("Content-Type", FORM)];

    let enabled = send(
        &server,
        "POST",
        "/v1/sys/auth/form-jwt",
        &auth,
        Some(&form(&[("type", "jwt"), ("description", "from a form")])),
    )
    .await;
    assert_eq!(enabled.status, 204, "{enabled:?}");
    let config = send(
        &server,
        "POST",
        "/v1/auth/form-jwt/config",
        &auth,
        Some(&form(&[
            ("jwt_validation_pubkeys", &key.public_pem()),
            ("bound_issuer", "https://issuer.test/"),
        ])),
    )
    .await;
    assert_eq!(config.status, 204, "{config:?}");
    // A repeated key is one comma-separated value, which list fields take.
    let role = send(
        &server,
        "POST",
        "/v1/auth/form-jwt/role/demo",
        &auth,
        Some(&form(&[
            ("role_type", "jwt"),
            ("user_claim", "https://vault/user"),
            ("bound_subject", SEED_SUBJECT),
            ("bound_audiences", SEED_AUDIENCE),
            ("token_policies", "a"),
            ("token_policies", "b"),
            ("token_ttl", "10m"),
        ])),
    )
    .await;
    assert_eq!(role.status, 204, "{role:?}");
    let (_, read) = server.get("auth/form-jwt/role/demo", Some(root)).await;
    assert_eq!(read["data"]["token_policies"], json!(["a", "b"]), "{read}");
    assert_eq!(read["data"]["token_ttl"], 600, "{read}");
    let (_, mount) = server.get("sys/auth/form-jwt", Some(root)).await;
    assert_eq!(mount["data"]["description"], "from a form", "{mount}");

    // `curl --data "role=demo&jwt=$JWT"`: a login needs no token.
    let jwt = key.sign_claims("RS256", &seed_claims("alice"));
    let login = send(
        &server,
        "POST",
        "/v1/auth/form-jwt/login",
        &[("Content-Type", FORM)],
        Some(&form(&[("role", "demo"), ("jwt", &jwt)])),
    )
    .await;
    assert_eq!(login.status, 200, "{login:?}");
    assert_eq!(
        login.body["auth"]["policies"],
        json!(["a", "b", "default"]),
        "{login:?}"
    );

    // `curl --data '{"role":...}'` sends the form type with a JSON body: that is JSON.
    let body = json!({"role": "demo", "jwt": jwt}).to_string();
    let login = send(
        &server,
        "POST",
        "/v1/auth/form-jwt/login",
        &[("Content-Type", FORM)],
        Some(format!("\n  {body}").as_bytes()),
    )
    .await;
    assert_eq!(login.status, 200, "{login:?}");
}

#[tokio::test]
async fn a_malformed_form_is_refused_and_stores_nothing() {
    let server = TestServer::start().await;
    let root = server.root.as_str();
    for body in [
        &b"type=jwt&description=%zz"[..],
        b"type=jwt;description=x",
        b"type=jwt&x=%4",
    ] {
        let refused = send(
            &server,
            "POST",
            "/v1/sys/auth/bad-form",
            &[("X-Vault-Token", root), ("Content-Type", FORM)],
            Some(body),
        )
        .await;
        assert_eq!(refused.status, 400, "{refused:?}");
        assert_eq!(refused.body, json!({"errors": ["error parsing form data"]}));
    }
    let (status, body) = server.get("sys/auth/bad-form", Some(root)).await;
    assert_ne!(status, 200, "a refused form enabled a mount: {body}");
}

#[tokio::test]
async fn reads_take_their_data_from_the_query_string_not_a_body() {
    let (server, _key) = seeded().await;
    let root = server.root.as_str();
    let token = [("X-Vault-Token", root)];
    // `list` is Go's ParseBool: `t`, `1`, `TRUE`... list; anything else it refuses is a 400.
    let listed = send(&server, "GET", "/v1/auth/jwt/role?list=t", &token, None).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    assert_eq!(listed.body["data"]["keys"], json!(["demo"]));
    let read = send(
        &server,
        "GET",
        "/v1/auth/jwt/role/demo?list=0",
        &token,
        None,
    )
    .await;
    assert_eq!(read.status, 200, "{read:?}");
    let refused = send(&server, "GET", "/v1/auth/jwt/role?list=maybe", &token, None).await;
    assert_eq!((refused.status, refused.body), (400, json!({"errors": []})));
    let refused = send(
        &server,
        "GET",
        "/v1/auth/jwt/role?list=true&scan=true",
        &token,
        None,
    )
    .await;
    assert_eq!(refused.status, 400);
    // A DELETE body is not read (Vault reads only its query): a broken one is no error, and
    // the query's parameters are the data (an unknown one is named in a warning, D10).
    let deleted = send(
        &server,
        "DELETE",
        "/v1/auth/jwt/role/demo?unused=1",
        &[
            ("X-Vault-Token", root),
            ("Content-Type", "application/json"),
        ],
        Some(b"not json"),
    )
    .await;
    assert_eq!(deleted.status, 200, "{deleted:?}");
    assert_eq!(
        deleted.body["warnings"],
        json!(["Endpoint ignored these unrecognized parameters: [unused]"])
    );
    assert_eq!(server.get("auth/jwt/role/demo", Some(root)).await.0, 404);
}

#[tokio::test]
async fn verbs_vault_does_not_route() {
    let server = TestServer::start().await;
    let root = server.root.as_str();
    let token = [("X-Vault-Token", root)];
    // HEAD: 405 everywhere but sys/health.
    assert_eq!(
        send(&server, "HEAD", "/v1/sys/auth", &token, None)
            .await
            .status,
        405
    );
    assert_eq!(
        send(&server, "HEAD", "/v1/auth/token/lookup-self", &token, None)
            .await
            .status,
        405
    );
    let health = send(&server, "HEAD", "/v1/sys/health", &[], None).await;
    assert_eq!((health.status, health.body), (200, Value::Null));
    // OPTIONS: a 400 that needs no token.
    let options = send(&server, "OPTIONS", "/v1/sys/auth", &[], None).await;
    assert_eq!(options.status, 400);
    assert_eq!(
        options.body,
        json!({"errors": ["cannot handle internal-only request operation"]})
    );
    // PATCH: only as a JSON merge patch, which no auth endpoint takes.
    let patch = send(&server, "PATCH", "/v1/sys/auth", &token, Some(b"{}")).await;
    assert_eq!(
        (patch.status, patch.body),
        (400, json!({"errors": ["mime: no media type"]}))
    );
    let patch = send(
        &server,
        "PATCH",
        "/v1/sys/auth",
        &[
            ("X-Vault-Token", root),
            ("Content-Type", "application/json"),
        ],
        Some(b"{}"),
    )
    .await;
    assert_eq!(patch.status, 415);
    assert_eq!(
        patch.body,
        json!({"errors": ["PATCH requires Content-Type of application/merge-patch+json, provided application/json"]})
    );
    let patch = send(
        &server,
        "PATCH",
        "/v1/sys/auth",
        &[
            ("X-Vault-Token", root),
            ("Content-Type", "application/merge-patch+json"),
        ],
        Some(b"{}"),
    )
    .await;
    assert_eq!(patch.status, 405);
    // A verb Vault does not know: 405 with an empty error list.
    let unknown = send(&server, "FOO", "/v1/sys/auth", &token, None).await;
    assert_eq!((unknown.status, unknown.body), (405, json!({"errors": []})));
    // The endpoints Vault's HTTP layer serves itself take only their own verbs.
    for (method, path) in [
        ("OPTIONS", "/v1/sys/health"),
        ("POST", "/v1/sys/health"),
        ("POST", "/v1/sys/seal-status"),
        ("GET", "/v1/sys/unseal"),
        ("DELETE", "/v1/sys/init"),
    ] {
        let answer = send(&server, method, path, &[], Some(b"{}")).await;
        assert_eq!(
            (answer.status, &answer.body),
            (405, &json!({"errors": []})),
            "{method} {path}"
        );
    }
    // Every answer of the core is JSON, a 204 included.
    let enabled = send(
        &server,
        "POST",
        "/v1/sys/auth/x",
        &token,
        Some(br#"{"type":"jwt"}"#),
    )
    .await;
    assert_eq!(enabled.status, 204);
    assert_eq!(enabled.content_type.as_deref(), Some("application/json"));
}

#[tokio::test]
async fn unclean_paths_redirect_to_the_clean_path() {
    let server = TestServer::start().await;
    let root = server.root.as_str();
    let token = [("X-Vault-Token", root)];
    let answer = send(&server, "GET", "/v1/sys//auth", &token, None).await;
    assert_eq!(answer.status, 307, "{answer:?}");
    assert_eq!(answer.location.as_deref(), Some("/v1/sys/auth"));
    assert_eq!(
        answer.content_type.as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        answer.body,
        json!("<a href=\"/v1/sys/auth\">Temporary Redirect</a>.\n\n")
    );
    let answer = send(&server, "GET", "/v1/sys//auth?a=b&c=%2F", &token, None).await;
    assert_eq!(answer.location.as_deref(), Some("/v1/sys/auth?a=b&c=%2F"));
    let answer = send(&server, "GET", "/v1/sys/policy//", &token, None).await;
    assert_eq!(answer.location.as_deref(), Some("/v1/sys/policy/"));
    // Other verbs are redirected too, without a body; nothing is written.
    let answer = send(
        &server,
        "POST",
        "/v1/sys//auth/x",
        &token,
        Some(br#"{"type":"jwt"}"#),
    )
    .await;
    assert_eq!(
        (answer.status, answer.location.as_deref(), answer.body),
        (307, Some("/v1/sys/auth/x"), Value::Null)
    );
    assert_ne!(server.get("sys/auth/x", Some(root)).await.0, 200);
    // `.` and `..` segments, which clients tidy away, so sent byte for byte.
    for (target, location) in [
        ("/v1/sys/./auth", "/v1/sys/auth"),
        ("/v1/sys/x/../auth", "/v1/sys/auth"),
        ("/v1/a/../../x", "/x"),
    ] {
        let (status, raw) = send_raw_target(&server, &format!("GET {target} HTTP/1.1"), root).await;
        assert_eq!(status, 307, "{raw}");
        assert!(
            raw.to_ascii_lowercase()
                .contains(&format!("location: {location}\r\n")),
            "{raw}"
        );
    }
    // Encoded dots are not cleaned but refused before any handler (sent byte for byte too:
    // URL libraries decode them into segments).
    for target in [
        "/v1/sys/%2E/auth",
        "/v1/sys/x/%2e%2e/auth",
        "/v1/auth/token/lookup-self/%2E",
    ] {
        let (status, raw) = send_raw_target(&server, &format!("GET {target} HTTP/1.1"), root).await;
        assert_eq!(status, 400, "{target}: {raw}");
        assert!(
            raw.ends_with(r#"{"errors":["relative paths not supported"]}"#),
            "{target}: {raw}"
        );
    }
}

#[tokio::test]
async fn malformed_targets_are_refused_first() {
    let server = TestServer::start().await;
    // Not printable (Go's unicode.IsPrint): 400 with no body, token or not.
    for target in [
        "/v1/sys/a%01b",
        "/v1/sys/a%7F",
        "/v1/sys/a%C2%A0b",
        "/v1/sys/a%E2%80%8Bb",
    ] {
        let answer = send(&server, "GET", target, &[], None).await;
        assert_eq!(
            (answer.status, &answer.body),
            (400, &Value::Null),
            "{target}"
        );
    }
    let answer = send(&server, "GET", "/v1/sys/a%zzb", &[], None).await;
    assert_eq!(
        (answer.status, answer.body),
        (400, json!("400 Bad Request"))
    );
    // Outside /v1/: 404 with an empty error list.
    for target in ["/v2/sys/auth", "/v1", "/"] {
        let answer = send(&server, "GET", target, &[], None).await;
        assert_eq!(
            (answer.status, &answer.body),
            (404, &json!({"errors": []})),
            "{target}"
        );
    }
}

#[tokio::test]
async fn wrap_ttl_is_checked_as_vault_checks_it() {
    let server = TestServer::start().await;
    let root = server.root.as_str();
    for (value, message) in [
        ("abc", r#"time: invalid duration "abc""#),
        ("1x", r#"time: unknown unit "x" in duration "1x""#),
        ("1.5", r#"time: missing unit in duration "1.5""#),
        ("xd", r#"strconv.ParseInt: parsing "x": invalid syntax"#),
        ("-5", "requested wrap ttl cannot be negative"),
        ("-5s", "requested wrap ttl cannot be negative"),
    ] {
        for token in [Some(root), None] {
            let mut headers = vec![("X-Vault-Wrap-TTL", value)];
            headers.extend(token.map(|t| ("X-Vault-Token", t)));
            // Before the token check: a bad header is a 400 with or without a token.
            let answer = send(&server, "GET", "/v1/auth/token/lookup-self", &headers, None).await;
            assert_eq!(answer.status, 400, "{value}: {answer:?}");
            assert_eq!(
                answer.body,
                json!({"errors": [format!("error parsing X-Vault-Wrap-TTL header: {message}")]})
            );
        }
    }
    for value in ["300", "5m", "1h30m", "2d", "0", " 30 "] {
        let answer = send(
            &server,
            "GET",
            "/v1/auth/token/lookup-self",
            &[("X-Vault-Token", root), ("X-Vault-Wrap-TTL", value)],
            None,
        )
        .await;
        assert_eq!(answer.status, 200, "{value}: {answer:?}");
    }
    // sys/health is served outside the logical router and ignores the header.
    let answer = send(
        &server,
        "GET",
        "/v1/sys/health",
        &[("X-Vault-Wrap-TTL", "abc")],
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test]
async fn legacy_sys_answers_copy_data_to_the_top_level() {
    let (server, _key) = seeded().await;
    let root = server.root.as_str();
    let (_, mount) = server.get("sys/auth/jwt", Some(root)).await;
    assert_eq!(mount["type"], "jwt", "{mount}");
    assert_eq!(mount["type"], mount["data"]["type"]);
    let (_, tune) = server.get("sys/mounts/auth/jwt/tune", Some(root)).await;
    assert_eq!(
        tune["default_lease_ttl"], tune["data"]["default_lease_ttl"],
        "{tune}"
    );
    let (_, list) = server.get("sys/auth", Some(root)).await;
    assert_eq!(list["jwt/"], list["data"]["jwt/"], "{list}");
    let (status, _) = server
        .post(
            "sys/policy/legacy",
            Some(root),
            &json!({"rules": "path \"x\" { capabilities = [\"read\"] }"}),
        )
        .await;
    assert!(status == 200 || status == 204);
    let (_, policy) = server.get("sys/policy/legacy", Some(root)).await;
    assert_eq!(policy["name"], "legacy", "{policy}");
    assert_eq!(policy["rules"], policy["data"]["rules"], "{policy}");
    // The envelope's own members win, and newer paths have no copies.
    assert!(policy["request_id"].is_string());
    let (_, acl) = server.get("sys/policies/acl/legacy", Some(root)).await;
    assert!(
        acl.get("policy").is_none() && acl["data"]["policy"].is_string(),
        "{acl}"
    );
    // Errors are left alone.
    let missing = send(
        &server,
        "GET",
        "/v1/sys/policy/nope",
        &[("X-Vault-Token", root)],
        None,
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, json!({"errors": []}));
}

/// A server with the seed mount at `jwt` (role `demo`), and its key.
async fn seeded() -> (TestServer, Key) {
    let server = TestServer::start().await;
    let key = Key::rsa();
    seed_mount(&server, "jwt", &key).await;
    (server, key)
}

/// `sys/health` and `sys/seal-status` name the cluster once the server is initialized and
/// unsealed, with one id that stays the same (a dev server has no seal, so its id is made at
/// first use and kept in storage).
#[tokio::test]
async fn health_and_seal_status_name_one_cluster() {
    let server = TestServer::start().await;
    let mut ids = Vec::new();
    for path in ["sys/health", "sys/seal-status", "sys/health"] {
        let (status, body) = server.get(path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        let id = body["cluster_id"].as_str().expect("cluster_id").to_string();
        assert!(uuid_like(&id), "{path}: {id}");
        ids.push(id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
}

/// 8-4-4-4-12 hexadecimal digits.
fn uuid_like(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}
