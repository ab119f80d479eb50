//! Operating a real `authmount server` process: `sys/health` and its query parameters in each
//! state (not initialised, sealed, active), the `telemetry` block that opens `sys/metrics`,
//! and `log_format = "json"` lines that carry each request's id and never a JWT or a token.

use authmount_testkit::node::{set_up_jwt, static_seal, Node};
use authmount_testkit::{Binary, Key, TempDir};
use serde_json::{json, Value};

/// The `authmount` binary cargo built for these tests.
const BIN: Binary = Binary::at(env!("CARGO_BIN_EXE_authmount"));

/// The status, body text and `Content-Type` of `method /v1/sys/health?<query>`.
async fn health(node: &Node, method: &str, query: &str) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let resp = node
        .client
        .request(method, format!("{}/v1/sys/health?{query}", node.base))
        .send()
        .await
        .expect("answered");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// Vault's code parameters of `sys/health`.
const CODES: [&str; 8] = [
    "activecode",
    "uninitcode",
    "sealedcode",
    "standbycode",
    "performancestandbycode",
    "drsecondarycode",
    "haunhealthycode",
    "removedcode",
];

/// What every state answers alike: each parameter checked (400 `{"errors":[]}` for a code
/// that is not an integer or a flag that is not a boolean), codes outside 200..=599 refused.
async fn parameters_are_checked(node: &Node) {
    for name in CODES {
        assert_eq!(
            health(node, "GET", &format!("{name}=abc")).await,
            (400, r#"{"errors":[]}"#.into()),
            "{name}"
        );
        let (status, body) = health(node, "GET", &format!("{name}=99")).await;
        assert_eq!(status, 400, "{name}: {body}");
        assert!(body.contains("200 to 599"), "{body}");
    }
    for name in ["standbyok", "perfstandbyok"] {
        assert_eq!(
            health(node, "GET", &format!("{name}=maybe")).await,
            (400, r#"{"errors":[]}"#.into()),
            "{name}"
        );
    }
}

#[tokio::test]
async fn health_answers_each_parameter_in_each_state() {
    let dir = TempDir::new("ops-health");
    let db = dir.path().join("data/authmount.db");
    let config = dir.file(
        "server.hcl",
        &format!("storage \"sqlite\" {{ path = \"{}\" }}\n", db.display()),
    );
    let node = Node::start(BIN, &[&format!("-config={}", config.display())], dir.path()).await;

    // Not initialised: uninitcode (501); the other codes do not apply.
    let (status, body) = health(&node, "GET", "").await;
    assert_eq!(status, 501, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&body["initialized"], &body["sealed"]),
        (&json!(false), &json!(true))
    );
    assert_eq!(health(&node, "GET", "uninitcode=299").await.0, 299);
    assert_eq!(
        health(&node, "GET", "sealedcode=298&activecode=297")
            .await
            .0,
        501
    );
    assert_eq!(health(&node, "GET", "standbyok=true").await.0, 501);
    parameters_are_checked(&node).await;

    // Initialised, sealed: sealedcode (503).
    let init = node
        .init_with(json!({"secret_shares": 1, "secret_threshold": 1}))
        .await;
    let key = init["keys"][0].as_str().unwrap().to_string();
    assert_eq!(health(&node, "GET", "").await.0, 503);
    assert_eq!(health(&node, "GET", "sealedcode=298").await.0, 298);
    assert_eq!(health(&node, "GET", "uninitcode=299").await.0, 503);
    assert_eq!(
        health(&node, "GET", "standbyok=true&sealedcode=299")
            .await
            .0,
        299
    );
    parameters_are_checked(&node).await;

    // Unsealed: activecode (200). Every node is active: the standby, replication and
    // removed codes never apply.
    node.unseal(&key).await;
    let (status, body) = health(&node, "GET", "").await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&body["initialized"], &body["sealed"], &body["standby"]),
        (&json!(true), &json!(false), &json!(false))
    );
    assert_eq!(health(&node, "GET", "activecode=299").await.0, 299);
    // 204: no body, as a load balancer expects of it.
    assert_eq!(
        health(&node, "GET", "activecode=204").await,
        (204, String::new())
    );
    for name in &CODES[1..] {
        assert_eq!(
            health(&node, "GET", &format!("{name}=250")).await.0,
            200,
            "{name}"
        );
    }
    assert_eq!(
        health(&node, "GET", "standbyok=true&perfstandbyok=1")
            .await
            .0,
        200
    );
    // A repeated parameter: its first value (Vault reads `[0]`); unknown ones ignored.
    assert_eq!(
        health(&node, "GET", "activecode=201&activecode=202&foo=bar")
            .await
            .0,
        201
    );
    parameters_are_checked(&node).await;

    // HEAD: the same status, no body.
    assert_eq!(
        health(&node, "HEAD", "activecode=299").await,
        (299, String::new())
    );
    assert_eq!(health(&node, "HEAD", "").await, (200, String::new()));
    assert_eq!(health(&node, "HEAD", "activecode=x").await.0, 400);
}

/// `GET sys/metrics?format=prometheus` without a token.
async fn scrape_without_token(node: &Node) -> (u16, String) {
    let resp = node
        .client
        .get(format!("{}/v1/sys/metrics?format=prometheus", node.base))
        .send()
        .await
        .expect("answered");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

#[tokio::test]
async fn the_telemetry_block_opens_sys_metrics_and_refuses_unknown_settings() {
    let dir = TempDir::new("ops-telemetry");
    let seal = static_seal(&dir);
    let write = |name: &str, telemetry: &str| {
        let db = dir.path().join(format!("{name}.db"));
        dir.file(
            &format!("{name}.hcl"),
            &format!(
                "storage \"sqlite\" {{ path = \"{}\" }}\n{seal}{telemetry}",
                db.display()
            ),
        )
    };
    let open = write(
        "open",
        "telemetry {\n  unauthenticated_metrics_access = true\n  disable_hostname = true\n}\n",
    );
    let closed = write("closed", "");

    let node = Node::start(BIN, &[&format!("-config={}", open.display())], dir.path()).await;
    // Sealed until initialised: 503, like every sys/ path but the status ones.
    assert_eq!(scrape_without_token(&node).await.0, 503);
    node.init().await;
    let (status, text) = scrape_without_token(&node).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("authmount_initialized 1"), "{text}");
    assert!(text.contains("store=\"sqlite\""), "{text}");
    drop(node);

    let node = Node::start(BIN, &[&format!("-config={}", closed.display())], dir.path()).await;
    let root = node.init().await;
    assert_eq!(scrape_without_token(&node).await.0, 403);
    let resp = node
        .client
        .get(format!("{}/v1/sys/metrics?format=prometheus", node.base))
        .header("X-Vault-Token", &root)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    drop(node);

    // A sink setting we do not have is refused by name, before the server starts.
    let bad = write(
        "bad",
        "telemetry {\n  statsd_address = \"127.0.0.1:8125\"\n}\n",
    );
    let out = Node::try_start(
        BIN,
        &[&format!("-config={}", bad.display())],
        dir.path(),
        &[],
    )
    .await
    .err()
    .expect("the server refuses the config");
    assert!(out.contains("statsd_address"), "{out}");
}

/// The JSON log lines of `out` (other lines, such as the start banner, skipped).
fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The `request_id`s of the log lines about requests.
fn logged_ids(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l["span"]["request_id"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn json_logs_carry_the_request_id_and_never_a_jwt_or_token() {
    let dir = TempDir::new("ops-logs");
    let db = dir.path().join("logs.db");
    let config = dir.file(
        "logs.hcl",
        &format!(
            "storage \"sqlite\" {{ path = \"{}\" }}\n{}log_format = \"json\"\n",
            db.display(),
            static_seal(&dir)
        ),
    );
    let node = Node::try_start(
        BIN,
        &[&format!("-config={}", config.display())],
        dir.path(),
        &[("RUST_LOG", "debug")],
    )
    .await
    .expect("server starts");
    let root = node.init().await;
    let signer = Key::rsa();
    set_up_jwt(&node, &root, &signer, json!({})).await;

    let jwt = signer.jwt(&authmount_testkit::seed_claims("alice"));
    let (status, good) = node
        .call(
            "POST",
            "auth/jwt/login",
            None,
            Some(json!({"role": "demo", "jwt": jwt})),
        )
        .await;
    assert_eq!(status, 200, "{good}");
    let token = good["auth"]["client_token"].as_str().unwrap().to_string();
    let good_id = good["request_id"].as_str().unwrap().to_string();
    let (status, _) = node
        .call("GET", "auth/token/lookup-self", Some(&token), None)
        .await;
    assert_eq!(status, 200);
    // A refused login (another key's signature).
    let forged = Key::rsa().jwt(&authmount_testkit::seed_claims("mallory"));
    let (status, bad) = node
        .call(
            "POST",
            "auth/jwt/login",
            None,
            Some(json!({"role": "demo", "jwt": forged})),
        )
        .await;
    assert_eq!(status, 400, "{bad}");

    let out = node.output();
    let lines = json_lines(&out);
    assert!(!lines.is_empty(), "no JSON log lines:\n{out}");
    // The line about the good login carries the id its answer gave.
    let ids = logged_ids(&lines);
    assert!(ids.contains(&good_id), "{good_id} not in the logs:\n{out}");
    let login_lines: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"]["path"] == "/v1/auth/jwt/login")
        .collect();
    assert!(login_lines.len() >= 2, "{out}");
    for line in &login_lines {
        let id = line["span"]["request_id"].as_str().unwrap_or_default();
        assert_eq!(id.len(), 36, "{line}");
    }
    // Secrets never: the JWTs, the issued token, the root token.
    for secret in [&jwt, &forged, &token, &root] {
        assert!(
            !out.contains(secret.as_str()),
            "a secret is in the logs:\n{out}"
        );
    }
    // Nor their signatures alone.
    for secret in [&jwt, &forged] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!out.contains(signature));
    }
}
