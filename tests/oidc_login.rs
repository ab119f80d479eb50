//! The OIDC browser login over HTTP: `oidc/auth_url`, `oidc/callback` (GET with the provider's
//! query, POST for form_post) and OpenBao's `oidc/poll`, on a real authmount server on
//! 127.0.0.1 with the real OpenID provider of `tests/oidc_provider/` and the browser stand-in
//! `tests/compat/oidc_driver.py` (see `authmount_testkit::oidc`). Expected answers are OpenBao 2.7.2's
//! (`tests/compat/oidc_openbao_notes.md`) with the documented differences (Vault's
//! `Vault login failed.` prefix).

use authmount_testkit::oidc::{authorize, driver, shared_idp, Idp, CLIENT, DEVICE_CLIENT};
use authmount_testkit::{error_message, Key, TestServer};
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};

const CLI_REDIRECT: &str = "http://localhost:8250/oidc/callback";
const EXPIRED: &str = "Vault login failed. Expired or missing OAuth state.";

/// `<server>/v1/auth/<mount>/oidc/callback`: the redirect URI of the server-side modes.
fn server_callback(server: &TestServer, mount: &str) -> String {
    format!("{}/v1/auth/{mount}/oidc/callback", server.base)
}

/// Enables `oidc` at `mount`, configures it for the provider (plus `config_extra`) with
/// `default_role: r1`, and writes the role `r1` (plus `role_extra`).
async fn oidc_mount(
    server: &TestServer,
    idp: &Idp,
    mount: &str,
    config_extra: Value,
    role_extra: Value,
) {
    let (status, body) = server
        .post(
            &format!("sys/auth/{mount}"),
            Some(&server.root),
            &json!({"type": "oidc"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let mut config = json!({
        "oidc_discovery_url": idp.issuer,
        "oidc_client_id": CLIENT.0,
        "oidc_client_secret": CLIENT.1,
        "default_role": "r1",
    });
    merge(&mut config, config_extra);
    server
        .write_ok(&format!("auth/{mount}/config"), &config)
        .await;
    let mut role = json!({
        "role_type": "oidc",
        "user_claim": "sub",
        "groups_claim": "groups",
        "oidc_scopes": "groups,email,profile",
        "claim_mappings": {"email": "email"},
        "allowed_redirect_uris": [CLI_REDIRECT, server_callback(server, mount)],
        "token_policies": "p1",
        "token_ttl": "1h",
    });
    merge(&mut role, role_extra);
    let (status, body) = server
        .post(&format!("auth/{mount}/role/r1"), Some(&server.root), &role)
        .await;
    assert!(status == 204 || status == 200, "role: {status} {body}");
}

fn merge(into: &mut Value, extra: Value) {
    if let (Some(into), Value::Object(extra)) = (into.as_object_mut(), extra) {
        into.extend(extra);
    }
}

/// A raw HTTP answer: status, `Content-Type`, `X-Content-Type-Options` and the body text.
struct Raw {
    status: u16,
    content_type: String,
    nosniff: bool,
    text: String,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text))
    }
}

async fn raw(request: reqwest::RequestBuilder) -> Raw {
    let resp = request.send().await.expect("answered");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let content_type = header(CONTENT_TYPE.as_str());
    let nosniff = header("x-content-type-options") == "nosniff";
    Raw {
        status: resp.status().as_u16(),
        content_type,
        nosniff,
        text: resp.text().await.expect("body"),
    }
}

/// `GET /v1/auth/<mount>/oidc/callback` with `params` as the query, no token.
async fn callback(server: &TestServer, mount: &str, params: &[(&str, &str)]) -> Raw {
    let url = reqwest::Url::parse_with_params(&server_callback(server, mount), params)
        .expect("callback URL");
    raw(reqwest::Client::new().get(url)).await
}

/// `POST /v1/auth/<mount>/<path>` with a JSON body, no token.
async fn post(server: &TestServer, mount: &str, path: &str, body: &Value) -> (u16, Value) {
    server
        .post(&format!("auth/{mount}/{path}"), None, body)
        .await
}

/// `POST oidc/auth_url`; the `data` of a 200.
async fn auth_url(server: &TestServer, mount: &str, body: Value) -> Value {
    let (status, answer) = post(server, mount, "oidc/auth_url", &body).await;
    assert_eq!(status, 200, "auth_url {body}: {answer}");
    answer["data"].clone()
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(url)
        .expect("a URL")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Before a mount is configured for the browser login, every endpoint answers a clear 400 (the
/// texts OpenBao 2.7.2 answers, with Vault's prefix), without a token. No provider needed.
#[tokio::test]
async fn unconfigured_and_static_key_mounts_answer_clear_errors() {
    let server = TestServer::start().await;
    for (mount, kind) in [("unconf", "oidc"), ("static", "jwt")] {
        let (status, body) = server
            .post(
                &format!("sys/auth/{mount}"),
                Some(&server.root),
                &json!({"type": kind}),
            )
            .await;
        assert_eq!(status, 204, "{body}");
    }
    let start = json!({"role": "r", "redirect_uri": CLI_REDIRECT});
    let (status, body) = post(&server, "unconf", "oidc/auth_url", &start).await;
    assert_eq!(
        (status, error_message(&body)),
        (400, "could not load configuration".into())
    );
    let r = callback(&server, "unconf", &[("state", "st_x"), ("code", "y")]).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        error_message(&r.json()),
        "Vault login failed. Could not load configuration"
    );
    assert!(
        r.content_type.starts_with("application/json"),
        "{}",
        r.content_type
    );
    let (status, body) = post(&server, "unconf", "oidc/callback", &json!({"state": "x"})).await;
    assert_eq!(
        (status, error_message(&body)),
        (
            400,
            "Vault login failed. Could not load configuration.".into()
        )
    );
    let poll = json!({"state": "x", "client_nonce": "y"});
    let (status, body) = post(&server, "unconf", "oidc/poll", &poll).await;
    assert_eq!((status, error_message(&body)), (400, EXPIRED.into()));
    for path in ["oidc/poll", "oidc/auth_url"] {
        let (status, _) = server.get(&format!("auth/unconf/{path}"), None).await;
        assert_eq!(status, 405, "GET {path}");
    }

    // a mount with static keys: configured, but not for the browser login
    let key = Key::rsa();
    server
        .write_ok(
            "auth/static/config",
            &json!({"jwt_validation_pubkeys": [key.public_pem()]}),
        )
        .await;
    let (status, body) = post(&server, "static", "oidc/auth_url", &start).await;
    assert_eq!(
        (status, error_message(&body)),
        (400, "OIDC login is not configured for this mount".into())
    );
    let r = callback(&server, "static", &[("state", "st_x"), ("code", "y")]).await;
    assert_eq!((r.status, error_message(&r.json())), (400, EXPIRED.into()));
    let (status, _) = post(&server, "static", "oidc/callback", &json!({"state": "x"})).await;
    assert_eq!(status, 405, "POST callback is form_post only");
    let (status, body) = post(&server, "static", "oidc/poll", &poll).await;
    assert_eq!((status, error_message(&body)), (400, EXPIRED.into()));

    // the role fields of the modes
    let role =
        json!({"role_type": "oidc", "user_claim": "sub", "allowed_redirect_uris": CLI_REDIRECT});
    server.write_ok("auth/unconf/role/r", &role).await;
    let (_, read) = server.get("auth/unconf/role/r", Some(&server.root)).await;
    assert_eq!(read["data"]["callback_mode"], "client");
    assert_eq!(read["data"]["oidc_disable_confirmation"], false);
    assert!(read["data"].get("poll_interval").is_none(), "{read}");
    let mut bad = role.clone();
    merge(&mut bad, json!({"callback_mode": "bogus"}));
    let (status, body) = server
        .post("auth/unconf/role/r", Some(&server.root), &bad)
        .await;
    assert_eq!(
        (status, error_message(&body)),
        (400, "invalid 'callback_mode': bogus".into())
    );
    server
        .write_ok(
            "auth/unconf/role/r",
            &json!({"callback_mode": "direct", "poll_interval": 3}),
        )
        .await;
    server
        .write_ok("auth/unconf/role/r", &json!({"token_ttl": "1h"}))
        .await;
    let (_, read) = server.get("auth/unconf/role/r", Some(&server.root)).await;
    assert_eq!(read["data"]["callback_mode"], "direct", "kept when omitted");
    assert_eq!(read["data"]["poll_interval"], 3);

    // help is generated from the path table
    let (status, help) = server
        .get("auth/unconf/oidc/callback?help=1", Some(&server.root))
        .await;
    assert_eq!(status, 200, "{help}");
    let text = help["help"].as_str().unwrap_or_default();
    for field in [
        "state",
        "code",
        "id_token",
        "client_nonce",
        "error",
        "confirmation",
    ] {
        assert!(
            text.contains(&format!("{field} (string)")),
            "{field}: {text}"
        );
    }
}

/// The code flow: auth_url, the provider's forms, then the provider's redirect (its query as
/// the callback's fields) logs in exactly as `login` does; the token's path is the callback's.
#[tokio::test(flavor = "multi_thread")]
async fn code_flow_over_http_logs_in_like_login() {
    let Some(idp) = shared_idp() else { return };
    let server = TestServer::start().await;
    let mount = "team/oidc";
    oidc_mount(&server, idp, mount, json!({}), json!({})).await;
    let started = auth_url(
        &server,
        mount,
        json!({"role": "r1", "redirect_uri": CLI_REDIRECT, "client_nonce": "cn-1"}),
    )
    .await;
    let url = started["auth_url"].as_str().expect("auth_url").to_string();
    assert!(url.starts_with(&format!("{}/auth?", idp.issuer)), "{url}");
    assert!(
        started.get("state").is_none(),
        "client mode: no state for polling"
    );
    let q = query_of(&url);
    assert_eq!(q["client_id"], CLIENT.0);
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(!url.contains(CLIENT.1), "no client secret in the URL");

    let end = authorize(&url, "alice", &[]);
    assert_eq!(end.kind, "redirect", "{}", end.raw);
    let (state, code) = (end.params["state"].clone(), end.params["code"].clone());
    let r = callback(
        &server,
        mount,
        &[("state", &state), ("code", &code), ("client_nonce", "cn-1")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.content_type.starts_with("application/json"));
    let body = r.json();
    let auth = &body["auth"];
    assert_eq!(auth["policies"], json!(["default", "p1"]), "{body}");
    assert_eq!(auth["token_policies"], json!(["default", "p1"]));
    assert_eq!(
        auth["metadata"],
        json!({"role": "r1", "email": "alice@example.test"})
    );
    assert_eq!(auth["lease_duration"], 3600);
    assert_eq!(body["mount_type"], "oidc");
    let token = auth["client_token"].as_str().expect("a token");
    let (status, lookup) = server.get("auth/token/lookup-self", Some(token)).await;
    assert_eq!(status, 200, "{lookup}");
    assert_eq!(lookup["data"]["path"], "auth/team/oidc/oidc/callback");
    assert_eq!(lookup["data"]["meta"]["role"], "r1");
    // the entity has the alias "alice" on this mount
    let entity = auth["entity_id"].as_str().unwrap();
    let (_, e) = server
        .get(&format!("identity/entity/id/{entity}"), Some(&server.root))
        .await;
    assert_eq!(e["data"]["aliases"][0]["name"], "alice", "{e}");

    // used once
    let r = callback(
        &server,
        mount,
        &[("state", &state), ("code", &code), ("client_nonce", "cn-1")],
    )
    .await;
    assert_eq!((r.status, error_message(&r.json())), (400, EXPIRED.into()));
    // the client secret is never shown
    let (_, config) = server
        .get(&format!("auth/{mount}/config"), Some(&server.root))
        .await;
    assert!(
        config["data"].get("oidc_client_secret").is_none(),
        "{config}"
    );
    assert!(!config.to_string().contains(CLIENT.1));

    // a wrong client nonce; the user aborting at the provider; no code
    let url = auth_url(
        &server,
        mount,
        json!({"role": "r1", "redirect_uri": CLI_REDIRECT, "client_nonce": "right"}),
    )
    .await["auth_url"]
        .as_str()
        .unwrap()
        .to_string();
    let end = authorize(&url, "alice", &[]);
    let r = callback(
        &server,
        mount,
        &[
            ("state", &end.params["state"]),
            ("code", &end.params["code"]),
            ("client_nonce", "wrong"),
        ],
    )
    .await;
    assert_eq!(
        (r.status, error_message(&r.json())),
        (400, "invalid client_nonce".into())
    );
    let url = auth_url(&server, mount, json!({"redirect_uri": CLI_REDIRECT})).await["auth_url"]
        .as_str()
        .unwrap()
        .to_string();
    let end = authorize(&url, "alice", &["--abort"]);
    assert_eq!(
        end.params.get("error").map(String::as_str),
        Some("access_denied")
    );
    let params: Vec<(&str, &str)> = end
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = callback(&server, mount, &params).await;
    assert_eq!(
        (r.status, error_message(&r.json())),
        (400, "Vault login failed. access_denied".into())
    );
    let url = auth_url(&server, mount, json!({"redirect_uri": CLI_REDIRECT})).await["auth_url"]
        .as_str()
        .unwrap()
        .to_string();
    let state = query_of(&url)["state"].clone();
    let r = callback(&server, mount, &[("state", &state)]).await;
    assert_eq!(
        (r.status, error_message(&r.json())),
        (
            400,
            "Vault login failed. No code or id_token received.".into()
        )
    );
    // auth_url refusals
    let (status, body) = post(
        &server,
        mount,
        "oidc/auth_url",
        &json!({"role": "r1", "redirect_uri": "http://evil.example/cb"}),
    )
    .await;
    assert_eq!(
        (status, error_message(&body)),
        (400, "unauthorized redirect_uri".into())
    );
    let (status, body) = post(
        &server,
        mount,
        "oidc/auth_url",
        &json!({"role": "nope", "redirect_uri": CLI_REDIRECT}),
    )
    .await;
    assert_eq!(
        (status, error_message(&body)),
        (400, "role \"nope\" could not be found".into())
    );
    // POST to the callback of a mount not in form_post mode
    let (status, _) = post(
        &server,
        mount,
        "oidc/callback",
        &json!({"state": "x", "code": "y"}),
    )
    .await;
    assert_eq!(status, 405);
}

/// form_post: the provider posts the ID token to the server's callback, which answers an HTML
/// page (outside Vault's envelope) handing the state to the client; the GET with
/// `code=no_code` logs in. (The provider posts a form; this test posts the same fields as
/// JSON, which the edge parses today.)
#[tokio::test(flavor = "multi_thread")]
async fn form_post_answers_a_page_and_the_get_logs_in() {
    let Some(idp) = shared_idp() else { return };
    let server = TestServer::start().await;
    let mount = "team/fp";
    oidc_mount(
        &server,
        idp,
        mount,
        json!({"oidc_response_mode": "form_post", "oidc_response_types": ["id_token"]}),
        json!({}),
    )
    .await;
    let cb = server_callback(&server, mount);
    let url = auth_url(&server, mount, json!({"role": "r1", "redirect_uri": cb})).await["auth_url"]
        .as_str()
        .unwrap()
        .to_string();
    let q = query_of(&url);
    assert_eq!(q["response_type"], "id_token");
    assert_eq!(q["response_mode"], "form_post");
    let end = authorize(&url, "alice", &[]);
    assert_eq!(end.kind, "form_post", "{}", end.raw);
    assert_eq!(end.url, cb);
    let state = end.params["state"].clone();
    let form = json!({"state": state, "id_token": end.params["id_token"]});
    let client = reqwest::Client::new();
    let page = raw(client.post(&cb).json(&form)).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert!(page.nosniff);
    assert!(page.text.contains(r#"path: "team/fp""#), "{}", page.text);
    assert!(
        page.text.contains(&format!(r#"state: "{state}""#)),
        "{}",
        page.text
    );
    assert!(
        !page.text.contains(&end.params["id_token"]),
        "the ID token is not echoed"
    );
    let r = callback(&server, mount, &[("state", &state), ("code", "no_code")]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = r.json();
    assert_eq!(
        body["auth"]["metadata"]["email"], "alice@example.test",
        "{body}"
    );
    let token = body["auth"]["client_token"].as_str().unwrap();
    let (_, lookup) = server.get("auth/token/lookup-self", Some(token)).await;
    assert_eq!(lookup["data"]["path"], "auth/team/fp/oidc/callback");
    // the state is spent: a second post gets an HTML error page
    let again = raw(client.post(&cb).json(&form)).await;
    assert_eq!(again.status, 400);
    assert!(again.content_type.starts_with("text/html"));
    assert!(
        again.text.contains("Expired or missing OAuth state."),
        "{}",
        again.text
    );
}

/// OpenBao's direct mode: the provider sends the browser to the server's callback, which
/// answers HTML pages (confirmation, then success); the client polls `oidc/poll`.
#[tokio::test(flavor = "multi_thread")]
async fn direct_mode_pages_then_poll() {
    let Some(idp) = shared_idp() else { return };
    let server = TestServer::start().await;
    let mount = "team/direct";
    oidc_mount(
        &server,
        idp,
        mount,
        json!({}),
        json!({"callback_mode": "direct"}),
    )
    .await;
    let cb = server_callback(&server, mount);
    let (status, body) = post(
        &server,
        mount,
        "oidc/auth_url",
        &json!({"redirect_uri": cb}),
    )
    .await;
    assert_eq!(
        (status, error_message(&body)),
        (400, "missing client_nonce".into())
    );
    let started = auth_url(
        &server,
        mount,
        json!({"redirect_uri": cb, "client_nonce": "cn-d"}),
    )
    .await;
    assert_eq!(started["poll_interval"], "5");
    let state = started["state"].as_str().expect("state").to_string();
    let poll = json!({"state": state, "client_nonce": "cn-d"});
    let (status, body) = post(&server, mount, "oidc/poll", &poll).await;
    assert_eq!(
        (status, error_message(&body)),
        (400, "authorization_pending".into())
    );

    let end = authorize(started["auth_url"].as_str().unwrap(), "alice", &[]);
    assert_eq!(end.kind, "redirect", "{}", end.raw);
    assert!(end.url.starts_with(&cb), "{}", end.url);
    let client = reqwest::Client::new();
    let confirm = raw(client.get(&end.url)).await;
    assert_eq!(confirm.status, 200, "{}", confirm.text);
    assert_eq!(confirm.content_type, "text/html; charset=utf-8");
    assert!(confirm.text.contains("confirm-button"), "{}", confirm.text);
    assert!(
        confirm.text.contains("127.0.0.1"),
        "the requester: {}",
        confirm.text
    );
    let (status, body) = post(&server, mount, "oidc/poll", &poll).await;
    assert_eq!(
        (status, error_message(&body)),
        (400, "authorization_pending".into())
    );
    let done = raw(client.get(format!("{}&confirmation=1", end.url))).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.text.contains("Signed in"), "{}", done.text);

    let (status, body) = post(&server, mount, "oidc/poll", &poll).await;
    assert_eq!(status, 200, "{body}");
    let token = body["auth"]["client_token"].as_str().expect("a token");
    assert_eq!(body["auth"]["metadata"]["email"], "alice@example.test");
    let (_, lookup) = server.get("auth/token/lookup-self", Some(token)).await;
    assert_eq!(lookup["data"]["path"], "auth/team/direct/oidc/poll");
    let (status, body) = post(&server, mount, "oidc/poll", &poll).await;
    assert_eq!((status, error_message(&body)), (400, EXPIRED.into()));
}

/// OpenBao's device mode (RFC 8628): auth_url answers the verification URI; the client polls
/// while the user confirms the code at the provider.
#[tokio::test(flavor = "multi_thread")]
async fn device_mode_polls_until_the_user_confirms() {
    let Some(idp) = shared_idp() else { return };
    let server = TestServer::start().await;
    let mount = "team/device";
    oidc_mount(
        &server,
        idp,
        mount,
        json!({"oidc_client_id": DEVICE_CLIENT.0, "oidc_client_secret": DEVICE_CLIENT.1}),
        json!({"callback_mode": "device", "poll_interval": 1}),
    )
    .await;
    let started = auth_url(
        &server,
        mount,
        json!({"role": "r1", "client_nonce": "cn-dev"}),
    )
    .await;
    assert_eq!(started["poll_interval"], "1");
    let verification = started["auth_url"].as_str().unwrap().to_string();
    assert!(
        verification.starts_with(&format!("{}/device", idp.issuer)),
        "{verification}"
    );
    let poll = json!({"state": started["state"], "client_nonce": "cn-dev"});
    let (status, body) = post(&server, mount, "oidc/poll", &poll).await;
    assert_eq!(
        (status, error_message(&body)),
        (400, "authorization_pending".into())
    );
    let end = driver(&["--device", &verification]);
    assert_eq!(end["success"], true, "{end}");
    let (status, body) = post(&server, mount, "oidc/poll", &poll).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["auth"]["metadata"]["role"], "r1");
    let (status, _) = post(&server, mount, "oidc/poll", &poll).await;
    assert_eq!(status, 400);
}
