//! Response wrapping, over HTTP on a real server: `X-Vault-Wrap-TTL` on a JWT login and on
//! token creation, and `sys/wrapping/{wrap,lookup,unwrap,rewrap}`, with the answers a real
//! OpenBao 2.7.2 gives (`tests/compat/differential.py` compares the two on every CI run).

use authmount_testkit::{error_message, seed_claims, seed_mount, Key, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

const NOT_VALID: &str = "wrapping token is not valid or does not exist";

/// Sends `POST /v1/<path>` with `X-Vault-Wrap-TTL: <ttl>`.
async fn post_wrapped(
    server: &TestServer,
    path: &str,
    token: Option<&str>,
    ttl: &str,
    body: &Value,
) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).expect("serialise body");
    server
        .send(
            Method::POST,
            path,
            token,
            &[("X-Vault-Wrap-TTL", ttl)],
            Some(bytes),
        )
        .await
}

/// The wrapping token of a wrapped answer, after checking the answer's shape.
fn wrapping_token(status: u16, body: &Value, creation_path: &str, ttl: i64) -> String {
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!(body["auth"], Value::Null, "{body}");
    let info = &body["wrap_info"];
    assert_eq!(info["creation_path"], creation_path, "{body}");
    assert_eq!(info["ttl"], ttl, "{body}");
    assert_eq!(info["accessor"].as_str().map(str::len), Some(24), "{body}");
    let created = info["creation_time"].as_str().expect("creation_time");
    humantime::parse_rfc3339(created).expect("creation_time is RFC 3339");
    info["token"].as_str().expect("wrap_info.token").to_string()
}

async fn unwrap_by_header(server: &TestServer, token: &str) -> (u16, Value) {
    server
        .post("sys/wrapping/unwrap", Some(token), &json!({}))
        .await
}

#[tokio::test]
async fn a_wrapped_login_hands_its_token_over_exactly_once() {
    let server = TestServer::start().await;
    let key = Key::rsa();
    seed_mount(&server, "team/jwt", &key).await;
    let jwt = key.sign_claims("RS256", &seed_claims("alice"));
    let (status, body) = post_wrapped(
        &server,
        "auth/team/jwt/login",
        None,
        "2m",
        &json!({"role": "demo", "jwt": jwt}),
    )
    .await;
    let wrapping = wrapping_token(status, &body, "auth/team/jwt/login", 120);
    let wrapped_accessor = body["wrap_info"]["wrapped_accessor"]
        .as_str()
        .expect("wrapped_accessor")
        .to_string();

    // Looking up is free, by body, query or header, and needs no other token.
    for (status, found) in [
        server
            .post("sys/wrapping/lookup", None, &json!({"token": wrapping}))
            .await,
        server
            .get(&format!("sys/wrapping/lookup?token={wrapping}"), None)
            .await,
        server
            .post("sys/wrapping/lookup", Some(&wrapping), &json!({}))
            .await,
    ] {
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["data"]["creation_path"], "auth/team/jwt/login");
        assert_eq!(found["data"]["creation_ttl"], 120);
    }

    let (status, unwrapped) = unwrap_by_header(&server, &wrapping).await;
    assert_eq!(status, 200, "{unwrapped}");
    assert_eq!(unwrapped["wrap_info"], Value::Null);
    let auth = &unwrapped["auth"];
    assert_eq!(auth["accessor"], wrapped_accessor.as_str());
    assert_eq!(auth["metadata"]["role"], "demo");
    let client_token = auth["client_token"].as_str().expect("client_token");
    let (status, me) = server
        .get("auth/token/lookup-self", Some(client_token))
        .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["data"]["path"], "auth/team/jwt/login");

    // Spent: a second unwrap, a lookup, and the token itself as a client token all fail.
    let (status, again) = server
        .post(
            "sys/wrapping/unwrap",
            Some(&server.root),
            &json!({"token": wrapping}),
        )
        .await;
    assert_eq!((status, error_message(&again).as_str()), (400, NOT_VALID));
    let (status, gone) = server
        .post("sys/wrapping/lookup", None, &json!({"token": wrapping}))
        .await;
    assert_eq!((status, error_message(&gone).as_str()), (400, NOT_VALID));
    let (status, _) = server.get("auth/token/lookup-self", Some(&wrapping)).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_wrapping_token_used_anywhere_but_unwrap_is_spent() {
    let server = TestServer::start().await;
    let (status, body) = post_wrapped(
        &server,
        "sys/wrapping/wrap",
        Some(&server.root),
        "60",
        &json!({"secret": "s3cr3t"}),
    )
    .await;
    let wrapping = wrapping_token(status, &body, "sys/wrapping/wrap", 60);
    let (status, denied) = server.get("auth/token/lookup-self", Some(&wrapping)).await;
    assert_eq!(status, 403, "{denied}");
    let (status, gone) = server
        .post(
            "sys/wrapping/unwrap",
            Some(&server.root),
            &json!({"token": wrapping}),
        )
        .await;
    assert_eq!((status, error_message(&gone).as_str()), (400, NOT_VALID));

    // A GET on unwrap, or a rewrap by the token itself, is no unwrap: refused (as OpenBao
    // refuses them), and the token is spent by it.
    for (method, path) in [
        (Method::GET, "sys/wrapping/unwrap"),
        (Method::POST, "sys/wrapping/rewrap"),
    ] {
        let (_, body) = post_wrapped(
            &server,
            "sys/wrapping/wrap",
            Some(&server.root),
            "60",
            &json!({"a": 1}),
        )
        .await;
        let wrapping = wrapping_token(200, &body, "sys/wrapping/wrap", 60);
        let (status, _) = server.send(method, path, Some(&wrapping), &[], None).await;
        assert_eq!(status, 403, "{path}");
        let (status, gone) = server
            .post("sys/wrapping/lookup", None, &json!({"token": wrapping}))
            .await;
        assert_eq!((status, error_message(&gone).as_str()), (400, NOT_VALID));
    }
}

#[tokio::test]
async fn wrap_and_unwrap_any_data_with_an_ordinary_token() {
    let server = TestServer::start().await;
    let (status, refused) = server
        .post("sys/wrapping/wrap", Some(&server.root), &json!({"a": "b"}))
        .await;
    assert_eq!(
        (status, error_message(&refused).as_str()),
        (400, "endpoint requires response wrapping to be used")
    );
    // A default-policy token may wrap, look up and unwrap.
    let (_, created) = server
        .post(
            "auth/token/create",
            Some(&server.root),
            &json!({"policies": ["default"]}),
        )
        .await;
    let user = created["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let data = json!({"password": "hunter2", "n": 7, "nested": {"list": [1, 2]}});
    let (status, body) =
        post_wrapped(&server, "sys/wrapping/wrap", Some(&user), "1h30m", &data).await;
    let wrapping = wrapping_token(status, &body, "sys/wrapping/wrap", 5400);
    assert!(
        body["wrap_info"].get("wrapped_accessor").is_none(),
        "{body}"
    );
    assert!(
        body["warnings"].is_null(),
        "arbitrary input is not unknown: {body}"
    );
    let (status, unwrapped) = server
        .post(
            "sys/wrapping/unwrap",
            Some(&user),
            &json!({"token": wrapping}),
        )
        .await;
    assert_eq!(status, 200, "{unwrapped}");
    assert_eq!(unwrapped["data"], data);

    // Without a token, unwrap is refused and the wrapping token stays good.
    let (_, body) = post_wrapped(&server, "sys/wrapping/wrap", Some(&user), "60", &json!({})).await;
    let wrapping = wrapping_token(200, &body, "sys/wrapping/wrap", 60);
    let (status, _) = server
        .post("sys/wrapping/unwrap", None, &json!({"token": wrapping}))
        .await;
    assert_eq!(status, 403);
    // Root with no token named has nothing to unwrap.
    let (status, none) = unwrap_by_header(&server, &server.root).await;
    assert_eq!((status, error_message(&none).as_str()), (400, NOT_VALID));
    // The token to unwrap is checked before the caller: a bogus one is a 400 even without
    // a client token; no token at all is a 403, for lookup and unwrap alike.
    let (status, bogus) = server
        .post("sys/wrapping/unwrap", None, &json!({"token": "hvs.bogus"}))
        .await;
    assert_eq!((status, error_message(&bogus).as_str()), (400, NOT_VALID));
    for path in ["sys/wrapping/lookup", "sys/wrapping/unwrap"] {
        let (status, empty) = server.post(path, None, &json!({})).await;
        assert_eq!(
            (status, error_message(&empty).as_str()),
            (403, "error validating wrapping token: token is empty"),
            "{path}"
        );
    }
    // A token without `update` on sys/wrapping/unwrap may not unwrap what it names.
    let (_, created) = server
        .post(
            "auth/token/create",
            Some(&server.root),
            &json!({"policies": ["nothing"], "no_default_policy": true}),
        )
        .await;
    let powerless = created["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = server
        .post(
            "sys/wrapping/unwrap",
            Some(&powerless),
            &json!({"token": wrapping}),
        )
        .await;
    assert_eq!(status, 403);
    // Unwrapping asked to be wrapped again: a new token, created by the unwrap.
    let (status, rewrapped) = post_wrapped(
        &server,
        "sys/wrapping/unwrap",
        Some(&user),
        "30",
        &json!({"token": wrapping}),
    )
    .await;
    let second = wrapping_token(status, &rewrapped, "sys/wrapping/unwrap", 30);
    let (status, unwrapped) = unwrap_by_header(&server, &second).await;
    assert_eq!(
        (status, &unwrapped["data"]),
        (200, &json!({})),
        "{unwrapped}"
    );
}

#[tokio::test]
async fn rewrap_moves_the_answer_to_a_new_token() {
    let server = TestServer::start().await;
    let (status, body) = post_wrapped(
        &server,
        "auth/token/create",
        Some(&server.root),
        "120",
        &json!({"policies": ["default"]}),
    )
    .await;
    let first = wrapping_token(status, &body, "auth/token/create", 120);
    let wrapped_accessor = body["wrap_info"]["wrapped_accessor"].clone();

    let (status, body) = server
        .post(
            "sys/wrapping/rewrap",
            Some(&server.root),
            &json!({"token": first}),
        )
        .await;
    let second = wrapping_token(status, &body, "auth/token/create", 120);
    let (status, body) = post_wrapped(
        &server,
        "sys/wrapping/rewrap",
        Some(&server.root),
        "45",
        &json!({"token": second}),
    )
    .await;
    let third = wrapping_token(status, &body, "auth/token/create", 45);
    for old in [&first, &second] {
        let (status, gone) = server
            .post("sys/wrapping/lookup", None, &json!({"token": old}))
            .await;
        assert_eq!((status, error_message(&gone).as_str()), (400, NOT_VALID));
    }
    let (status, unwrapped) = unwrap_by_header(&server, &third).await;
    assert_eq!(status, 200, "{unwrapped}");
    assert_eq!(unwrapped["auth"]["accessor"], wrapped_accessor);
    assert_eq!(unwrapped["auth"]["policies"], json!(["default"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_unwraps_hand_the_answer_to_exactly_one() {
    let server = std::sync::Arc::new(TestServer::start().await);
    for _ in 0..3 {
        let (_, body) = post_wrapped(
            &server,
            "sys/wrapping/wrap",
            Some(&server.root),
            "60",
            &json!({"k": "v"}),
        )
        .await;
        let wrapping = wrapping_token(200, &body, "sys/wrapping/wrap", 60);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..24 {
            let (server, wrapping) = (server.clone(), wrapping.clone());
            tasks.spawn(async move {
                match i % 2 {
                    0 => unwrap_by_header(&server, &wrapping).await,
                    _ => {
                        server
                            .post(
                                "sys/wrapping/unwrap",
                                Some(&server.root),
                                &json!({"token": wrapping}),
                            )
                            .await
                    }
                }
            });
        }
        let mut winners = 0;
        while let Some(done) = tasks.join_next().await {
            let (status, body) = done.unwrap();
            match status {
                200 => {
                    assert_eq!(body["data"], json!({"k": "v"}));
                    winners += 1;
                }
                400 => assert_eq!(error_message(&body), NOT_VALID),
                // A header use that lost the race finds the token already gone.
                403 => {}
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert_eq!(winners, 1);
    }
}

#[tokio::test]
async fn the_response_wrapping_policy_is_built_in_and_fixed() {
    let server = TestServer::start().await;
    let root = Some(server.root.as_str());
    let (status, read) = server.get("sys/policy/response-wrapping", root).await;
    assert_eq!(status, 200, "{read}");
    assert!(read["data"]["rules"]
        .as_str()
        .unwrap()
        .contains("sys/wrapping/unwrap"));
    let (status, refused) = server
        .post(
            "sys/policy/response-wrapping",
            root,
            &json!({"policy": "path \"*\" { capabilities = [\"sudo\"] }"}),
        )
        .await;
    assert_eq!(
        (status, error_message(&refused).as_str()),
        (400, "cannot update \"response-wrapping\" policy")
    );
    let (status, _) = server.delete("sys/policy/response-wrapping", root).await;
    assert_eq!(status, 400);
    let (_, listed) = server.list("sys/policies/acl", root).await;
    assert_eq!(listed["data"]["keys"], json!(["default", "root"]));
    let (status, refused) = server
        .post(
            "auth/token/create",
            root,
            &json!({"policies": ["response-wrapping"]}),
        )
        .await;
    assert_eq!(
        (status, error_message(&refused).as_str()),
        (400, "cannot assign policy \"response-wrapping\"")
    );
}
