//! The browser login's library functions ([`authmount_jwt::oidc_flow::Flow`]) against the real
//! OpenID provider of `tests/oidc_provider/` (node-oidc-provider), its login and consent forms
//! driven by `tests/compat/oidc_driver.py` (a cookie jar, no browser). No mock of the provider.
//!
//! Needs `node` (with `npm`, for `npm ci` the first time) and `python3`. Without them the tests
//! print a loud SKIPPED line and pass, unless `AUTHMOUNT_REQUIRE_NODE=1` (set by `.ci/run`),
//! which makes them fail.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use authmount_framework::{Auth, Clock, InMemory, Result, View};
use authmount_jwt::config::{JwtConfig, ParsedConfig};
use authmount_jwt::oidc_flow::{
    AuthUrl, AuthUrlRequest, CallbackOutcome, CallbackRequest, Flow, Roles,
};
use authmount_jwt::role::{CallbackMode, Role, RoleType};
use authmount_testkit::oidc::{driver, shared_idp, tools_present, Idp, CLIENT, DEVICE_CLIENT};

const MOUNT: &str = "team/oidc";
const CLI_REDIRECT: &str = "http://localhost:8250/oidc/callback";
/// Registered at the provider (a loopback URI: any port); nothing listens there, the driver
/// stops before it.
const SERVER_REDIRECT: &str = "http://127.0.0.1:1/v1/auth/team/oidc/oidc/callback";

struct TestRoles(HashMap<String, Arc<Role>>);

#[async_trait]
impl Roles for TestRoles {
    async fn role(&self, name: &str) -> Result<Option<Arc<Role>>> {
        Ok(self.0.get(name).cloned())
    }
}

fn role(extra: impl FnOnce(&mut Role)) -> Role {
    let mut r = Role {
        role_type: RoleType::Oidc,
        user_claim: "sub".into(),
        groups_claim: "groups".into(),
        oidc_scopes: Some(vec!["groups".into(), "email".into()]),
        claim_mappings: Some([("email".to_string(), "email".to_string())].into()),
        allowed_redirect_uris: Some(vec![CLI_REDIRECT.into(), SERVER_REDIRECT.into()]),
        ..Role::default()
    };
    r.tokens.token.ttl = 3600;
    r.tokens.token.policies = vec!["p1".into()];
    extra(&mut r);
    r
}

fn roles() -> TestRoles {
    let mut m = HashMap::new();
    m.insert("r".to_string(), Arc::new(role(|_| {})));
    m.insert("maxage".to_string(), Arc::new(role(|r| r.max_age = 120)));
    m.insert(
        "direct".to_string(),
        Arc::new(role(|r| r.callback_mode = CallbackMode::Direct)),
    );
    m.insert(
        "device".to_string(),
        Arc::new(role(|r| {
            r.callback_mode = CallbackMode::Device;
            r.poll_interval = 1;
        })),
    );
    m.insert(
        "subject".to_string(),
        Arc::new(role(|r| r.bound_subject = "bob".into())),
    );
    m.insert(
        "bound".to_string(),
        Arc::new(role(|r| {
            r.bound_claims = Some(
                serde_json::json!({"email": "bob@example.test"})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
        })),
    );
    m.insert(
        "cidr".to_string(),
        Arc::new(role(|r| {
            r.tokens.token.bound_cidrs = vec!["10.0.0.0/8".parse().unwrap()]
        })),
    );
    TestRoles(m)
}

async fn config(idp: &Idp, change: impl FnOnce(&mut JwtConfig)) -> ParsedConfig {
    let mut c = JwtConfig {
        oidc_discovery_url: idp.issuer.clone(),
        oidc_client_id: CLIENT.0.into(),
        oidc_client_secret: CLIENT.1.into(),
        default_role: "r".into(),
        namespace_in_state: true,
        ..JwtConfig::default()
    };
    change(&mut c);
    c.build(true, &Clock::system())
        .await
        .expect("config with the real discovery document")
}

fn storage() -> View {
    View::new(Arc::new(InMemory::new()), "auth/test/")
}

fn query(url: &str) -> HashMap<String, String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

struct Mount {
    storage: View,
    config: ParsedConfig,
    roles: TestRoles,
    clock: Clock,
}

impl Mount {
    async fn new(idp: &Idp) -> Mount {
        Mount {
            storage: storage(),
            config: config(idp, |_| {}).await,
            roles: roles(),
            clock: Clock::system(),
        }
    }

    fn flow(&self) -> Flow<'_> {
        self.flow_from(None)
    }

    fn flow_from(&self, addr: Option<IpAddr>) -> Flow<'_> {
        Flow {
            storage: &self.storage,
            config: Some(&self.config),
            roles: &self.roles,
            mount: MOUNT,
            remote_addr: addr,
            clock: &self.clock,
        }
    }

    async fn start(&self, role: &str, redirect: &str, client_nonce: &str) -> AuthUrl {
        self.flow()
            .auth_url(&AuthUrlRequest {
                role: role.into(),
                redirect_uri: redirect.into(),
                client_nonce: client_nonce.into(),
            })
            .await
            .expect("auth_url")
    }

    /// auth_url, then the provider's forms as `login`; the redirect's query.
    async fn redirect(
        &self,
        role: &str,
        login: &str,
        client_nonce: &str,
    ) -> HashMap<String, String> {
        let url = self.start(role, CLI_REDIRECT, client_nonce).await.auth_url;
        let end = driver(&[&url, "--login", login]);
        assert_eq!(end["kind"], "redirect", "{end}");
        serde_json::from_value(end["params"].clone()).unwrap()
    }

    async fn login(&self, role: &str, login: &str) -> std::result::Result<Auth, String> {
        let params = self.redirect(role, login, "cn").await;
        self.callback(&params, "cn").await
    }

    async fn callback(
        &self,
        params: &HashMap<String, String>,
        client_nonce: &str,
    ) -> std::result::Result<Auth, String> {
        let get = |k: &str| params.get(k).cloned().unwrap_or_default();
        let outcome = self
            .flow()
            .callback(&CallbackRequest {
                state: get("state"),
                code: get("code"),
                error: get("error"),
                error_description: get("error_description"),
                client_nonce: client_nonce.into(),
                ..CallbackRequest::default()
            })
            .await;
        match outcome {
            Ok(CallbackOutcome::Login(auth)) => Ok(*auth),
            Ok(CallbackOutcome::Page(p)) => Err(format!("page {}", p.status)),
            Err(e) => Err(message(&e)),
        }
    }

    async fn pending_states(&self) -> usize {
        self.storage.list("oidc/state/").await.unwrap().len()
    }
}

fn message(e: &authmount_framework::Error) -> String {
    e.body()["errors"][0]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn code_flow_logs_in_with_pkce_userinfo_and_groups() {
    let Some(idp) = shared_idp() else { return };
    let m = Mount::new(idp).await;
    let started = m.start("r", CLI_REDIRECT, "cn").await;
    let q = query(&started.auth_url);
    assert!(started
        .auth_url
        .starts_with(&format!("{}/auth?", idp.issuer)));
    assert_eq!(q["client_id"], CLIENT.0);
    assert_eq!(q["redirect_uri"], CLI_REDIRECT);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], "openid groups email");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(q["state"].starts_with("st_") && q["state"].len() == 23);
    assert!(q["nonce"].starts_with("n_") && q["nonce"].len() == 22);
    assert!(!q.contains_key("response_mode") && !q.contains_key("max_age"));
    assert!(!started.auth_url.contains(CLIENT.1));
    assert_eq!(started.state, None);
    assert_eq!(m.pending_states().await, 1);

    let end = driver(&[&started.auth_url, "--login", "alice"]);
    let params: HashMap<String, String> = serde_json::from_value(end["params"].clone()).unwrap();
    let before = idp.stats().await;
    let auth = m.callback(&params, "cn").await.expect("login");
    let after = idp.stats().await;
    assert_eq!(
        after["token"].as_i64().unwrap() - before["token"].as_i64().unwrap(),
        1
    );
    assert_eq!(
        after["userinfo"].as_i64().unwrap() - before["userinfo"].as_i64().unwrap(),
        1
    );
    assert_eq!(auth.alias.name, "alice");
    // groups and email come from the userinfo endpoint in the code flow
    assert_eq!(auth.group_aliases, ["dev", "login-alice", "admins"]);
    assert_eq!(auth.metadata["role"], "r");
    assert_eq!(auth.metadata["email"], "alice@example.test");
    assert_eq!(auth.internal_data["role"], "r");
    assert_eq!(auth.token.ttl, 3600);
    assert_eq!(auth.token.policies, ["p1"]);
    // used once; nothing left in storage
    assert_eq!(m.pending_states().await, 0);
    let again = m.callback(&params, "cn").await.unwrap_err();
    assert_eq!(again, "Vault login failed. Expired or missing OAuth state.");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_nonce_state_and_provider_errors() {
    let Some(idp) = shared_idp() else { return };
    let m = Mount::new(idp).await;
    // a wrong client nonce spends the state
    let params = m.redirect("r", "alice", "right").await;
    assert_eq!(
        m.callback(&params, "wrong").await.unwrap_err(),
        "invalid client_nonce"
    );
    assert_eq!(
        m.callback(&params, "right").await.unwrap_err(),
        "Vault login failed. Expired or missing OAuth state."
    );
    let params = m.redirect("r", "alice", "right").await;
    assert_eq!(
        m.callback(&params, "").await.unwrap_err(),
        "invalid client_nonce"
    );
    // none given to auth_url: any accepted
    let params = m.redirect("r", "alice", "").await;
    assert!(m.callback(&params, "whatever").await.is_ok());
    // a state of another mount (another storage)
    let other = Mount::new(idp).await;
    let params = other.redirect("r", "alice", "cn").await;
    assert_eq!(
        m.callback(&params, "cn").await.unwrap_err(),
        "Vault login failed. Expired or missing OAuth state."
    );
    assert!(other.callback(&params, "cn").await.is_ok());
    // the user aborts at the provider
    let url = m.start("r", CLI_REDIRECT, "cn").await.auth_url;
    let end = driver(&[&url, "--abort"]);
    let params: HashMap<String, String> = serde_json::from_value(end["params"].clone()).unwrap();
    assert_eq!(params["error"], "access_denied");
    assert_eq!(
        m.callback(&params, "cn").await.unwrap_err(),
        "Vault login failed. access_denied"
    );
    // no code; a garbage code; a code used twice at the provider
    let state = query(&m.start("r", CLI_REDIRECT, "").await.auth_url)["state"].clone();
    let p = HashMap::from([("state".to_string(), state)]);
    assert_eq!(
        m.callback(&p, "").await.unwrap_err(),
        "Vault login failed. No code or id_token received."
    );
    let state = query(&m.start("r", CLI_REDIRECT, "").await.auth_url)["state"].clone();
    let p = HashMap::from([
        ("state".to_string(), state),
        ("code".to_string(), "garbage".to_string()),
    ]);
    let e = m.callback(&p, "").await.unwrap_err();
    assert!(
        e.starts_with("Vault login failed. Error exchanging oidc code: \"")
            && e.contains("invalid_grant"),
        "{e}"
    );
    let used = m.redirect("r", "alice", "").await;
    assert!(m.callback(&used, "").await.is_ok());
    let state = query(&m.start("r", CLI_REDIRECT, "").await.auth_url)["state"].clone();
    let p = HashMap::from([
        ("state".to_string(), state),
        ("code".to_string(), used["code"].clone()),
    ]);
    let e = m.callback(&p, "").await.unwrap_err();
    assert!(e.contains("invalid_grant"), "{e}");
    assert_eq!(m.pending_states().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn role_rules_apply_to_the_claims() {
    let Some(idp) = shared_idp() else { return };
    let m = Mount::new(idp).await;
    assert_eq!(
        m.login("r", "nogroups").await.unwrap_err(),
        "Vault login failed. failed to fetch groups: \"groups\" claim not found in token"
    );
    assert_eq!(
        m.login("subject", "alice").await.unwrap_err(),
        "Vault login failed. sub claim does not match bound subject"
    );
    assert!(m.login("subject", "bob").await.is_ok());
    assert_eq!(
        m.login("bound", "alice").await.unwrap_err(),
        "Vault login failed. error validating claims: claim \"email\" does not match any associated bound claim values"
    );
    assert!(
        m.login("bound", "bob").await.is_ok(),
        "a userinfo claim meets bound_claims"
    );
    // max_age: asked for, and auth_time checked
    let url = m.start("maxage", CLI_REDIRECT, "").await.auth_url;
    assert_eq!(query(&url)["max_age"], "120");
    let end = driver(&[&url]);
    let params: HashMap<String, String> = serde_json::from_value(end["params"].clone()).unwrap();
    assert!(m.callback(&params, "").await.is_ok());
    // CIDRs: 403
    let params = m.redirect("cidr", "alice", "").await;
    let outcome = m
        .flow_from(Some("127.0.0.1".parse().unwrap()))
        .callback(&CallbackRequest {
            state: params["state"].clone(),
            code: params["code"].clone(),
            ..CallbackRequest::default()
        })
        .await;
    assert_eq!(outcome.unwrap_err().status(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_url_errors_and_options() {
    let Some(idp) = shared_idp() else { return };
    let m = Mount::new(idp).await;
    let flow = m.flow();
    let ask = |role: &str, redirect: &str| AuthUrlRequest {
        role: role.into(),
        redirect_uri: redirect.into(),
        client_nonce: String::new(),
    };
    let err = |r: Result<AuthUrl>| message(&r.unwrap_err());
    assert_eq!(
        err(flow.auth_url(&ask("nope", CLI_REDIRECT)).await),
        "role \"nope\" could not be found"
    );
    assert_eq!(
        err(flow.auth_url(&ask("r", "")).await),
        "missing redirect_uri"
    );
    assert_eq!(
        err(flow.auth_url(&ask("r", "http://evil.example/cb")).await),
        "unauthorized redirect_uri"
    );
    assert_eq!(
        err(flow
            .auth_url(&ask("r", "http://127.0.0.1:8250/oidc/callback"))
            .await),
        "unauthorized redirect_uri"
    );
    assert!(flow
        .auth_url(&ask("r", "http://localhost:1234/oidc/callback"))
        .await
        .is_ok());
    assert!(
        flow.auth_url(&ask("", CLI_REDIRECT)).await.is_ok(),
        "default_role"
    );
    assert_eq!(
        err(flow.auth_url(&ask("direct", SERVER_REDIRECT)).await),
        "missing client_nonce"
    );
    let none = Flow {
        config: None,
        ..m.flow()
    };
    assert_eq!(
        err(none.auth_url(&ask("r", CLI_REDIRECT)).await),
        "could not load configuration"
    );
    let keys_only = config(idp, |c| {
        c.oidc_client_id.clear();
        c.oidc_client_secret.clear();
    })
    .await;
    let keys_flow = Flow {
        config: Some(&keys_only),
        ..m.flow()
    };
    assert_eq!(
        err(keys_flow.auth_url(&ask("r", CLI_REDIRECT)).await),
        "OIDC login is not configured for this mount"
    );
    let no_default = config(idp, |c| c.default_role.clear()).await;
    let nd = Flow {
        config: Some(&no_default),
        ..m.flow()
    };
    assert_eq!(
        err(nd.auth_url(&ask("", CLI_REDIRECT)).await),
        "missing role"
    );
    // namespace_in_state
    let url = flow
        .auth_url(&ask(
            "r",
            "http://localhost:8250/oidc/callback?namespace=org/dev",
        ))
        .await
        .unwrap()
        .auth_url;
    let q = query(&url);
    assert_eq!(q["redirect_uri"], CLI_REDIRECT);
    assert!(q["state"].ends_with(",ns=org/dev"));
    // and the callback takes such a state
    let end = driver(&[&url]);
    let params: HashMap<String, String> = serde_json::from_value(end["params"].clone()).unwrap();
    assert!(params["state"].ends_with(",ns=org/dev"));
    assert!(m.callback(&params, "").await.is_ok());
}

/// form_post: the provider posts the code or the ID token to the server; the page hands the
/// state back; the GET with `code=no_code` finishes.
#[tokio::test(flavor = "multi_thread")]
async fn form_post_with_id_token_and_with_code() {
    let Some(idp) = shared_idp() else { return };
    for types in ["id_token", "code"] {
        let m = Mount {
            storage: storage(),
            config: config(idp, |c| {
                c.oidc_response_mode = "form_post".into();
                c.oidc_response_types = vec![types.into()];
            })
            .await,
            roles: roles(),
            clock: Clock::system(),
        };
        let url = m.start("r", SERVER_REDIRECT, "").await.auth_url;
        let q = query(&url);
        assert_eq!(q["response_mode"], "form_post", "asked for {types} too");
        assert_eq!(q["response_type"], types);
        assert_eq!(q.contains_key("code_challenge"), types == "code");
        let end = driver(&[&url]);
        assert_eq!(end["kind"], "form_post", "{end}");
        assert_eq!(end["url"], SERVER_REDIRECT);
        let field = |k: &str| end["params"][k].as_str().unwrap_or_default().to_string();
        let post = CallbackRequest {
            state: field("state"),
            code: field("code"),
            id_token: field("id_token"),
            ..CallbackRequest::default()
        };
        let page = m.flow().form_post(&post).await.unwrap();
        assert_eq!(page.status, 200);
        assert!(page.body.contains("path: \"team/oidc\""), "{}", page.body);
        let auth = match m
            .flow()
            .callback(&CallbackRequest {
                state: field("state"),
                code: "no_code".into(),
                ..CallbackRequest::default()
            })
            .await
            .unwrap()
        {
            CallbackOutcome::Login(a) => a,
            CallbackOutcome::Page(p) => panic!("{p:?}"),
        };
        assert_eq!(auth.alias.name, "alice");
        assert_eq!(
            auth.group_aliases,
            ["dev", "login-alice", "admins"],
            "{types}"
        );
        let again = m.flow().form_post(&post).await.unwrap();
        assert_eq!(again.status, 400);
    }
    // form_post POST on a query-mode mount: 405
    let m = Mount::new(idp).await;
    let e = m
        .flow()
        .form_post(&CallbackRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.status(), 405);
}

/// Two server nodes sharing one store: the login starts on one and ends on the other.
#[tokio::test(flavor = "multi_thread")]
async fn a_login_started_on_one_node_ends_on_another() {
    let Some(idp) = shared_idp() else { return };
    let shared = storage();
    let a = Mount {
        storage: shared.clone(),
        config: config(idp, |_| {}).await,
        roles: roles(),
        clock: Clock::system(),
    };
    let b = Mount {
        storage: shared,
        config: config(idp, |_| {}).await,
        roles: roles(),
        clock: Clock::system(),
    };
    let params = a.redirect("r", "alice", "cn").await;
    assert!(b.callback(&params, "cn").await.is_ok());
    assert!(a.callback(&params, "cn").await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn direct_mode_confirms_then_polls() {
    let Some(idp) = shared_idp() else { return };
    let m = Mount::new(idp).await;
    let started = m.start("direct", SERVER_REDIRECT, "cn-d").await;
    let state = started.state.clone().expect("state");
    assert_eq!(started.poll_interval.as_deref(), Some("5"));
    let poll = |nonce: &'static str| {
        let state = state.clone();
        let m = &m;
        async move { m.flow().poll(&state, nonce).await.map_err(|e| message(&e)) }
    };
    assert_eq!(poll("cn-d").await.unwrap_err(), "authorization_pending");
    let end = driver(&[&started.auth_url]);
    let params: HashMap<String, String> = serde_json::from_value(end["params"].clone()).unwrap();
    let mut req = CallbackRequest {
        state: params["state"].clone(),
        code: params["code"].clone(),
        ..CallbackRequest::default()
    };
    let page = |o: Result<CallbackOutcome>| match o.unwrap() {
        CallbackOutcome::Page(p) => p,
        CallbackOutcome::Login(_) => panic!("a login where a page was expected"),
    };
    let confirm = page(
        m.flow_from(Some("192.0.2.7".parse().unwrap()))
            .callback(&req)
            .await,
    );
    assert!(confirm.body.contains("192.0.2.7") || confirm.body.contains("unknown address"));
    assert!(confirm.body.contains("confirm-button"));
    assert_eq!(poll("cn-d").await.unwrap_err(), "authorization_pending");
    req.confirmation = "1".into();
    let done = page(m.flow().callback(&req).await);
    assert_eq!(done.status, 200);
    assert!(done.body.contains("Signed in"));
    let auth = poll("cn-d").await.expect("the login");
    assert_eq!(auth.alias.name, "alice");
    assert_eq!(auth.group_aliases, ["dev", "login-alice", "admins"]);
    assert_eq!(
        poll("cn-d").await.unwrap_err(),
        "Vault login failed. Expired or missing OAuth state."
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn device_mode_polls_the_provider() {
    let Some(idp) = shared_idp() else { return };
    let m = Mount {
        storage: storage(),
        config: config(idp, |c| {
            c.oidc_client_id = DEVICE_CLIENT.0.into();
            c.oidc_client_secret = DEVICE_CLIENT.1.into();
        })
        .await,
        roles: roles(),
        clock: Clock::system(),
    };
    let started = m
        .flow()
        .auth_url(&AuthUrlRequest {
            role: "device".into(),
            redirect_uri: String::new(),
            client_nonce: "cn-dev".into(),
        })
        .await
        .unwrap();
    let state = started.state.clone().unwrap();
    assert_eq!(started.poll_interval.as_deref(), Some("1"));
    assert!(
        started
            .auth_url
            .starts_with(&format!("{}/device", idp.issuer)),
        "{}",
        started.auth_url
    );
    assert_eq!(
        message(&m.flow().poll(&state, "cn-dev").await.unwrap_err()),
        "authorization_pending"
    );
    let end = driver(&["--device", &started.auth_url]);
    assert_eq!(end["success"], true, "{end}");
    let auth = m.flow().poll(&state, "cn-dev").await.expect("the login");
    assert_eq!(auth.alias.name, "alice");
    assert_eq!(auth.metadata["email"], "alice@example.test");
    assert!(m.flow().poll(&state, "cn-dev").await.is_err());
    // a wrong client nonce spends the state
    let started = m
        .flow()
        .auth_url(&AuthUrlRequest {
            role: "device".into(),
            redirect_uri: String::new(),
            client_nonce: "cn-dev".into(),
        })
        .await
        .unwrap();
    let state = started.state.unwrap();
    assert_eq!(
        message(&m.flow().poll(&state, "nope").await.unwrap_err()),
        "invalid client_nonce"
    );
    assert_eq!(
        message(&m.flow().poll(&state, "cn-dev").await.unwrap_err()),
        "Vault login failed. Expired or missing OAuth state."
    );
}

/// The provider spoils its token endpoint answers (its own provider: faults are global).
#[tokio::test(flavor = "multi_thread")]
async fn bad_token_endpoint_answers_fail_cleanly() {
    if !tools_present() {
        return;
    }
    let idp = Idp::start(&["http://127.0.0.1/v1/auth/team/fp/oidc/callback"]);
    let m = Mount::new(&idp).await;
    let cases = [
        (
            serde_json::json!({"id_token": "wrong_nonce"}),
            "id_token failed verification: invalid id_token nonce",
        ),
        (
            serde_json::json!({"id_token": "foreign_key"}),
            "failed to verify id token signature",
        ),
        (
            serde_json::json!({"id_token": "expired"}),
            "token is expired",
        ),
        (
            serde_json::json!({"id_token": "huge"}),
            "response is larger than 1048576 bytes",
        ),
        (
            serde_json::json!({"id_token": "missing"}),
            "id_token is missing from auth code exchange",
        ),
        (
            serde_json::json!({"token_status": 500}),
            "oauth2: \\\"server_error\\\" \\\"injected fault\\\"",
        ),
        (
            serde_json::json!({"token_drop": true}),
            "unable to exchange auth code with provider: request failed",
        ),
    ];
    for (fault, want) in cases {
        let params = m.redirect("r", "alice", "cn").await;
        idp.faults(fault.clone()).await;
        let e = m.callback(&params, "cn").await.unwrap_err();
        idp.faults(serde_json::json!({})).await;
        assert!(
            e.starts_with("Vault login failed. Error exchanging oidc code: \"") && e.contains(want),
            "{fault}: {e}"
        );
        assert!(!e.contains(CLIENT.1));
        assert_eq!(m.pending_states().await, 0, "{fault}: nothing left behind");
    }
    // still fine afterwards
    assert!(m.login("r", "alice").await.is_ok());
    // the provider goes away between the redirect and the callback
    let params = m.redirect("r", "alice", "cn").await;
    drop(idp);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let e = m.callback(&params, "cn").await.unwrap_err();
    assert!(e.starts_with("Vault login failed. Error exchanging oidc code: \"unable to exchange auth code with provider: request failed"), "{e}");
}

/// A pending login lives 10 minutes by the mount's clock (a manual clock here: no sleeping).
#[tokio::test(flavor = "multi_thread")]
async fn a_pending_login_expires_after_ten_minutes_by_the_clock() {
    let Some(idp) = shared_idp() else { return };
    let mut m = Mount::new(idp).await;
    m.clock = Clock::manual();
    let params = m.redirect("r", "alice", "cn").await;
    m.clock.advance(Duration::from_secs(600));
    assert_eq!(
        m.callback(&params, "cn").await.unwrap_err(),
        "Vault login failed. Expired or missing OAuth state."
    );
    let params = m.redirect("r", "alice", "cn").await;
    m.clock.advance(Duration::from_secs(590));
    let auth = m.callback(&params, "cn").await.expect("still live");
    assert_eq!(auth.alias.name, "alice");
    // expired logins are swept by the next auth_url
    let _ = m.redirect("r", "alice", "cn").await;
    m.clock.advance(Duration::from_secs(3600));
    let _ = m.start("r", CLI_REDIRECT, "cn").await;
    assert_eq!(m.pending_states().await, 1, "only the new one is left");
}
