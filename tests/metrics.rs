//! `GET /v1/sys/metrics?format=prometheus` over HTTP: who may scrape it, its format errors,
//! and that real logins (good and refused, each refusal under its class) move the login
//! counters and the latency histogram, with the labels `docs/metrics.md` promises.
//!
//! The metrics are the process's: every test here uses its own mount names and compares a
//! scrape after with a scrape before, so tests running side by side do not disturb each
//! other.

use authmount_testkit::idp::KeyServer;
use authmount_testkit::{
    error_message, seed_claims, seed_mount, seed_role, Key, TestServer, SEED_ISSUER,
};
use serde_json::json;

/// The sum of the samples of `name` whose labels include every `k="v"` of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            if metric != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

async fn scrape(server: &TestServer) -> String {
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/sys/metrics?format=prometheus", server.base))
        .header("X-Vault-Token", &server.root)
        .send()
        .await
        .expect("scrape");
    assert_eq!(resp.status().as_u16(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    resp.text().await.expect("metrics text")
}

#[tokio::test]
async fn logins_move_the_counters_and_the_histogram_by_mount_role_and_class() {
    let server = TestServer::start().await;
    let key = Key::rsa();
    let mount = "metrics-a";
    seed_mount(&server, mount, &key).await;
    let prefix = format!("auth/{mount}/");
    let before = scrape(&server).await;
    let count = |text: &str, outcome: &str, failure: &str, role: &str| {
        sample(
            text,
            "authmount_logins_total",
            &[
                ("mount", &prefix),
                ("role", role),
                ("outcome", outcome),
                ("failure", failure),
            ],
        )
    };
    assert_eq!(count(&before, "success", "", "demo"), 0.0);

    // Two good logins.
    for user in ["alice", "bob"] {
        let (status, body) = server
            .login(mount, "demo", &key.sign_claims("RS256", &seed_claims(user)))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    // Refusals, each with its class: a wrong audience, an expired token, another key's
    // signature, a role that does not exist (its name is never a label).
    let mut claims = seed_claims("carol");
    claims["aud"] = json!("https://someone-else.test");
    let (status, body) = server
        .login(mount, "demo", &key.sign_claims("RS256", &claims))
        .await;
    assert_eq!(status, 400, "{body}");
    let mut claims = seed_claims("carol");
    claims["exp"] = json!(authmount_testkit::now() - 3600);
    claims["iat"] = json!(authmount_testkit::now() - 7200);
    let (status, body) = server
        .login(mount, "demo", &key.sign_claims("RS256", &claims))
        .await;
    assert_eq!(status, 400, "{body}");
    let other = Key::rsa();
    let (status, body) = server
        .login(
            mount,
            "demo",
            &other.sign_claims("RS256", &seed_claims("mallory")),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let jwt = key.sign_claims("RS256", &seed_claims("dave"));
    let (status, body) = server.login(mount, "no-such-role-x1", &jwt).await;
    assert_eq!(status, 400, "{}", error_message(&body));

    let after = scrape(&server).await;
    assert_eq!(count(&after, "success", "", "demo"), 2.0, "{after}");
    assert_eq!(count(&after, "failure", "audience", "demo"), 1.0);
    assert_eq!(count(&after, "failure", "expired", "demo"), 1.0);
    assert_eq!(count(&after, "failure", "signature", "demo"), 1.0);
    assert_eq!(count(&after, "failure", "role_not_found", ""), 1.0);
    assert!(
        !after.contains("no-such-role-x1"),
        "a client's role name became a label"
    );
    assert!(!after.contains("alice") && !after.contains(&jwt));

    // The latency histogram counted every login, by outcome.
    let hist = |text: &str, outcome: &str| {
        sample(
            text,
            "authmount_login_duration_seconds_count",
            &[("mount", &prefix), ("outcome", outcome)],
        )
    };
    assert_eq!(hist(&after, "success") - hist(&before, "success"), 2.0);
    assert_eq!(hist(&after, "failure") - hist(&before, "failure"), 4.0);
    let inf = sample(
        &after,
        "authmount_login_duration_seconds_bucket",
        &[("mount", &prefix), ("outcome", "success"), ("le", "+Inf")],
    );
    assert_eq!(inf, 2.0);

    // Service tokens were issued and are live; the seal is open; the storage was timed.
    let issued = |t: &str| sample(t, "authmount_tokens_issued_total", &[("type", "service")]);
    assert!(issued(&after) - issued(&before) >= 2.0);
    assert!(sample(&after, "authmount_tokens_live", &[]) >= 3.0); // root + two logins
    assert_eq!(sample(&after, "authmount_sealed", &[]), 0.0);
    assert_eq!(sample(&after, "authmount_initialized", &[]), 1.0);
    assert!(
        sample(
            &after,
            "authmount_storage_operation_duration_seconds_count",
            &[("store", "inmem"), ("op", "get")]
        ) > 0.0
    );
    // The JWT backend's parsed config and roles come from the cache.
    assert!(
        sample(
            &after,
            "authmount_cache_lookups_total",
            &[("result", "hit")]
        ) > 0.0
    );
}

#[tokio::test]
async fn renewals_and_revocations_are_counted() {
    let server = TestServer::start().await;
    let key = Key::rsa();
    let mount = "metrics-b";
    seed_mount(&server, mount, &key).await;
    let (status, body) = server
        .login(
            mount,
            "demo",
            &key.sign_claims("RS256", &seed_claims("erin")),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["auth"]["client_token"].as_str().unwrap().to_string();
    let before = scrape(&server).await;
    let (status, body) = server
        .post("auth/token/renew-self", Some(&token), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .post("auth/token/revoke-self", Some(&token), &json!({}))
        .await;
    assert_eq!(status, 204, "{body}");
    let after = scrape(&server).await;
    for name in [
        "authmount_tokens_renewed_total",
        "authmount_tokens_revoked_total",
    ] {
        assert!(
            sample(&after, name, &[]) - sample(&before, name, &[]) >= 1.0,
            "{name}"
        );
    }
}

#[tokio::test]
async fn scraping_needs_read_on_sys_metrics_and_the_prometheus_format() {
    let server = TestServer::start().await;
    let root = Some(server.root.as_str());
    let (status, body) = server.get("sys/metrics?format=prometheus", None).await;
    assert_eq!(
        (status, error_message(&body)),
        (403, "permission denied".into())
    );
    let (status, _) = server
        .get("sys/metrics?format=prometheus", Some("not-a-token"))
        .await;
    assert_eq!(status, 403);

    // A token whose policy grants read on sys/metrics scrapes; one without it does not.
    server
        .write_ok(
            "sys/policies/acl/scraper",
            &json!({"policy": "path \"sys/metrics\" { capabilities = [\"read\"] }"}),
        )
        .await;
    let mut tokens = vec![];
    for policy in ["scraper", "default"] {
        let (status, body) = server
            .post(
                "auth/token/create",
                root,
                &json!({"policies": [policy], "no_default_policy": policy != "default"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        tokens.push(body["auth"]["client_token"].as_str().unwrap().to_string());
    }
    let (status, body) = server
        .get("sys/metrics?format=prometheus", Some(&tokens[0]))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body
        .as_str()
        .unwrap()
        .contains("# TYPE authmount_logins counter"));
    let (status, _) = server
        .get("sys/metrics?format=prometheus", Some(&tokens[1]))
        .await;
    assert_eq!(status, 403);

    // Formats: only prometheus (Vault's message for an unknown one).
    let (status, body) = server.get("sys/metrics?format=xml", root).await;
    assert_eq!(
        (status, error_message(&body)),
        (400, "metric response format \"xml\" unknown".into())
    );
    let (status, body) = server.get("sys/metrics", root).await;
    assert_eq!(status, 400);
    assert!(error_message(&body).contains("format=prometheus"), "{body}");
    // Only GET: a write is refused like any unsupported operation.
    let (status, _) = server.post("sys/metrics", root, &json!({})).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn the_unauthenticated_setting_opens_the_scrape() {
    let root = format!("root-{}", authmount_testkit::random_hex());
    let core = authmount_server::dev_core(&root).await.expect("dev core");
    core.set_unauthenticated_metrics(true);
    let server = TestServer::serve(core, root);
    let (status, body) = server.get("sys/metrics?format=prometheus", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.as_str().unwrap().contains("authmount_sealed 0"));
    let (status, _) = server.get("sys/metrics?format=json", None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn key_fetches_are_counted_by_url_and_result_with_the_age_of_each_set() {
    let server = TestServer::start().await;
    let key = Key::rsa();
    let idp = KeyServer::http();
    idp.serve_jwks("/keys", &[key.public_jwk(Some("k1"))]);
    idp.set(
        "/broken",
        authmount_testkit::idp::Reply::new(500, "text/plain", "down"),
    );
    idp.serve_discovery("/idp", &idp.url("/idp"), &idp.url("/idp/jwks"));
    idp.serve_jwks("/idp/jwks", &[key.public_jwk(Some("k1"))]);
    let (good, broken, issuer) = (idp.url("/keys"), idp.url("/broken"), idp.url("/idp"));

    let mount = "metrics-jwks";
    server.enable_jwt(mount).await;
    server
        .write_ok(
            &format!("auth/{mount}/config"),
            &json!({"jwks_url": good, "bound_issuer": SEED_ISSUER}),
        )
        .await;
    server
        .write_ok(&format!("auth/{mount}/role/demo"), &seed_role())
        .await;
    let jwt = key.sign("RS256", &json!({"kid": "k1"}), &seed_claims("frank"));
    let (status, body) = server.login(mount, "demo", &jwt).await;
    assert_eq!(status, 200, "{body}");
    // A key set that answers 500: the config write is refused, the fetch counted as an error.
    let (status, _) = server
        .post(
            &format!("auth/{mount}/config"),
            Some(&server.root),
            &json!({"jwks_url": broken}),
        )
        .await;
    assert_eq!(status, 400);
    // Discovery: the document, then its key set.
    let discovery_mount = "metrics-discovery";
    server.enable_jwt(discovery_mount).await;
    server
        .write_ok(
            &format!("auth/{discovery_mount}/config"),
            &json!({"oidc_discovery_url": issuer}),
        )
        .await;

    let text = scrape(&server).await;
    let fetches = |kind: &str, url: &str, result: &str| {
        sample(
            &text,
            "authmount_key_fetches_total",
            &[("kind", kind), ("url", url), ("result", result)],
        )
    };
    assert!(fetches("jwks", &good, "success") >= 1.0, "{text}");
    assert_eq!(fetches("jwks", &good, "error"), 0.0);
    assert!(fetches("jwks", &broken, "error") >= 1.0, "{text}");
    assert_eq!(fetches("jwks", &broken, "success"), 0.0);
    assert!(fetches("discovery", &issuer, "success") >= 1.0, "{text}");
    assert!(fetches("jwks", &idp.url("/idp/jwks"), "success") >= 1.0);
    // The age of each set fetched successfully; none for the broken one.
    let age_line = |url: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("authmount_key_set_age_seconds{")
                    && l.contains(&format!("url=\"{url}\""))
            })
            .map(str::to_string)
    };
    let age: f64 = age_line(&good)
        .and_then(|l| l.rsplit_once(' ').map(|(_, v)| v.to_string()))
        .expect("an age for the good set")
        .parse()
        .unwrap();
    assert!((0.0..3600.0).contains(&age), "{age}");
    assert!(age_line(&issuer).is_some());
    assert!(age_line(&broken).is_none());
}
