//! authmount's additions to the JWT method over HTTP (docs/beyond-vault.md): single-use
//! tokens, login explain (which runs login's own checks), role lint warnings and the inline
//! JWKS key source; and, driven without HTTP on a manual clock, the sweep of the single-use
//! memory.

use std::sync::Arc;
use std::time::Duration;

use authmount::framework::seal::SealKind;
use authmount::framework::{
    Clock, Core, InMemory, LeaseLimits, Operation, Registry, Request, Storage,
};
use authmount_testkit::{error_message, now, random_hex, Key, KeyKind, TestServer};
use serde_json::{json, Value};

const ISS: &str = "https://issuer.test/";
const AUD: &str = "vault-test";

/// Claims the role `r` of [`mount`] accepts.
fn claims(user: &str) -> Value {
    let now = now();
    json!({"iss": ISS, "sub": "s-1", "aud": AUD, "user": user, "team": "blue",
           "groups": ["g1"], "iat": now, "exp": now + 300, "jti": random_hex()})
}

/// Enables `jwt` at `name` with `key` and the role `r` (plus `role_extra`).
async fn mount(server: &TestServer, name: &str, key: &Key, role_extra: Value) {
    server.enable_jwt(name).await;
    server
        .write_ok(
            &format!("auth/{name}/config"),
            &json!({"jwt_validation_pubkeys": [key.public_pem()], "bound_issuer": ISS}),
        )
        .await;
    let mut role = json!({"role_type": "jwt", "user_claim": "user", "bound_audiences": [AUD],
        "bound_claims": {"team": "blue"}, "groups_claim": "groups", "token_policies": ["p1"]});
    role.as_object_mut()
        .unwrap()
        .extend(role_extra.as_object().cloned().unwrap_or_default());
    let (status, body) = server
        .post(&format!("auth/{name}/role/r"), Some(&server.root), &role)
        .await;
    assert!(status == 204 || status == 200, "role: {status} {body}");
}

async fn explain(
    server: &TestServer,
    mount: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    server
        .post(&format!("auth/{mount}/login/explain"), token, &body)
        .await
}

/// The `failure="<class>"` login count of `mount` in the metrics.
async fn failures(server: &TestServer, mount: &str, class: &str) -> u64 {
    let (_, body) = server
        .get("sys/metrics?format=prometheus", Some(&server.root))
        .await;
    let text = body.as_str().unwrap_or_default().to_string();
    text.lines()
        .filter(|l| l.starts_with("authmount_logins_total{"))
        .filter(|l| l.contains(&format!("mount=\"auth/{mount}/\"")))
        .filter(|l| l.contains(&format!("failure=\"{class}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn a_single_use_role_logs_a_jwt_in_once() {
    let server = TestServer::start().await;
    let key = Key::generate(KeyKind::P256);
    mount(&server, "once", &key, json!({"single_use": true})).await;
    let (status, role) = server.get("auth/once/role/r", Some(&server.root)).await;
    assert_eq!(status, 200);
    assert_eq!(role["data"]["single_use"], true, "{role}");

    let jwt = key.sign_claims("ES256", &claims("alice"));
    let (status, body) = server.login("once", "r", &jwt).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.login("once", "r", &jwt).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        error_message(&body),
        "token already used: this role accepts each JWT (known by its iss and jti) only once"
    );
    assert_eq!(failures(&server, "once", "replayed").await, 1);
    // Another token of the same user is another jti.
    let (status, body) = server
        .login("once", "r", &key.sign_claims("ES256", &claims("alice")))
        .await;
    assert_eq!(status, 200, "{body}");

    let mut no_jti = claims("bob");
    no_jti.as_object_mut().unwrap().remove("jti");
    let (status, body) = server
        .login("once", "r", &key.sign_claims("ES256", &no_jti))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        error_message(&body),
        "error validating token: the role is single-use and the token has no \"jti\" claim"
    );

    // The same role without single_use takes a token again and again, and reads as Vault's.
    mount(&server, "many", &key, json!({})).await;
    for _ in 0..2 {
        let (status, body) = server.login("many", "r", &jwt).await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, role) = server.get("auth/many/role/r", Some(&server.root)).await;
    assert!(role["data"].get("single_use").is_none(), "{role}");
}

/// One explain case: what makes login refuse, and the check explain must name.
struct Case {
    name: &'static str,
    role: &'static str,
    jwt: Option<String>,
    failed: Option<&'static str>,
    extra: Value,
}

#[tokio::test]
async fn explain_runs_the_checks_of_login_and_names_the_first_that_fails() {
    let server = TestServer::start().await;
    let key = Key::generate(KeyKind::P256);
    let other = Key::generate(KeyKind::P256);
    let rsa = Key::rsa();
    let root = Some(server.root.as_str());
    // An explain before any config names the config.
    server.enable_jwt("bare").await;
    let (status, body) = explain(&server, "bare", root, json!({"role": "r", "jwt": "a.b.c"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["failed_check"], "config", "{body}");

    mount(&server, "x", &key, json!({"single_use": true})).await;
    server
        .write_ok(
            "auth/x/role/web",
            &json!({"role_type": "oidc", "user_claim": "sub",
                    "allowed_redirect_uris": "http://localhost:8250/oidc/callback"}),
        )
        .await;
    server
        .write_ok(
            "auth/x/role/net",
            &json!({"role_type": "jwt", "user_claim": "user", "bound_audiences": [AUD],
                    "token_bound_cidrs": "10.0.0.0/8"}),
        )
        .await;
    server
        .write_ok(
            "auth/x/role/sub",
            &json!({"role_type": "jwt", "user_claim": "user", "bound_audiences": [AUD],
                    "bound_subject": "s-2", "groups_claim": "groups"}),
        )
        .await;
    let sign = |changes: Value| {
        let mut c = claims("alice");
        for (k, v) in changes.as_object().unwrap() {
            match v {
                Value::Null => c.as_object_mut().unwrap().remove(k),
                v => c.as_object_mut().unwrap().insert(k.clone(), v.clone()),
            };
        }
        key.sign_claims("ES256", &c)
    };
    let case = |name, role, jwt: Option<String>, failed| Case {
        name,
        role,
        jwt,
        failed,
        extra: json!({}),
    };
    let used = sign(json!({}));
    let (status, body) = server.login("x", "r", &used).await;
    assert_eq!(status, 200, "{body}");
    let cases = [
        case("ok", "r", Some(sign(json!({}))), None),
        case("role", "nope", Some(sign(json!({}))), Some("role")),
        case("role_type", "web", Some(sign(json!({}))), Some("role_type")),
        case("token", "r", None, Some("token")),
        case("cidr", "net", Some(sign(json!({}))), Some("cidr")),
        case(
            "token_format",
            "r",
            Some("not-a-jwt".into()),
            Some("token_format"),
        ),
        case(
            "signature",
            "r",
            Some(other.sign_claims("ES256", &claims("a"))),
            Some("signature"),
        ),
        case(
            "claims_format",
            "r",
            Some(sign(json!({"sub": 5}))),
            Some("claims_format"),
        ),
        case(
            "issuer",
            "r",
            Some(sign(json!({"iss": "https://evil.test/"}))),
            Some("issuer"),
        ),
        case("subject", "sub", Some(sign(json!({}))), Some("subject")),
        case(
            "audience",
            "r",
            Some(sign(json!({"aud": "other"}))),
            Some("audience"),
        ),
        case(
            "time_window",
            "r",
            Some(sign(json!({"iat": now() - 900, "exp": now() - 600}))),
            Some("time_window"),
        ),
        case(
            "user_claim",
            "r",
            Some(sign(json!({"user": null}))),
            Some("user_claim"),
        ),
        case(
            "groups_claim",
            "sub",
            Some(sign(json!({"sub": "s-2", "groups": {"a": 1}}))),
            Some("groups_claim"),
        ),
        case(
            "bound_claim",
            "r",
            Some(sign(json!({"team": "red"}))),
            Some("bound_claim"),
        ),
        case("single_use", "r", Some(used.clone()), Some("single_use")),
        case(
            "no_jti",
            "r",
            Some(sign(json!({"jti": null}))),
            Some("single_use"),
        ),
    ];
    for c in cases {
        let mut body = json!({"role": c.role});
        if let Some(jwt) = &c.jwt {
            body["jwt"] = json!(jwt);
        }
        body.as_object_mut()
            .unwrap()
            .extend(c.extra.as_object().cloned().unwrap_or_default());
        let (status, answer) = explain(&server, "x", root, body.clone()).await;
        assert_eq!(status, 200, "{}: {answer}", c.name);
        let data = &answer["data"];
        assert_eq!(
            data["failed_check"],
            json!(c.failed),
            "{}: {data:#}",
            c.name
        );
        if let Some(jwt) = &c.jwt {
            let text = answer.to_string();
            let signature = jwt.rsplit('.').next().unwrap();
            assert!(
                !text.contains(jwt.as_str()) && (signature.len() < 8 || !text.contains(signature)),
                "{}: the JWT or its signature is in the answer",
                c.name
            );
        }
        // Login agrees, in outcome and in message; explain consumed nothing.
        let (login_status, login) = server.post("auth/x/login", None, &body).await;
        match c.failed {
            None => {
                assert_eq!(login_status, 200, "{}: {login}", c.name);
                assert_eq!(data["allowed"], true);
                assert_eq!(data["error"], Value::Null);
            }
            Some(_) => {
                assert_eq!(data["allowed"], false, "{}", c.name);
                assert_eq!(
                    data["error"].as_str(),
                    Some(error_message(&login).as_str()),
                    "{}: explain and login disagree",
                    c.name
                );
            }
        }
        let checks = data["checks"].as_array().unwrap();
        let last = checks.last().unwrap();
        match c.failed {
            Some(name) => {
                assert_eq!(last["check"], name, "{}", c.name);
                assert_eq!(last["passed"], false);
                assert!(checks[..checks.len() - 1]
                    .iter()
                    .all(|k| k["passed"] == true));
            }
            None => assert!(checks.iter().all(|k| k["passed"] == true), "{data:#}"),
        }
    }

    // What the checks compared: the key and its source, the leeways, each bound claim.
    let (_, answer) = explain(
        &server,
        "x",
        root,
        json!({"role": "r", "jwt": sign(json!({"team": "red"}))}),
    )
    .await;
    let checks = answer["data"]["checks"].as_array().unwrap().clone();
    let find = |name: &str| {
        checks
            .iter()
            .find(|c| c["check"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} check in {checks:#?}"))
    };
    let names: Vec<&str> = checks
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "config",
            "role",
            "role_type",
            "token",
            "cidr",
            "token_format",
            "algorithm",
            "signature",
            "claims_format",
            "issuer",
            "subject",
            "audience",
            "time_window",
            "user_claim",
            "groups_claim",
            "bound_claim"
        ]
    );
    let signature = find("signature");
    assert_eq!(signature["key_source"], "jwt_validation_pubkeys");
    assert_eq!(signature["key_index"], 0);
    assert_eq!(find("issuer")["expected"], ISS);
    assert_eq!(find("audience")["token"], json!([AUD]));
    let window = find("time_window");
    assert_eq!(window["clock_skew_leeway"], 60);
    assert_eq!(window["expiration_leeway"], 150);
    assert!(window["valid_until"].as_i64().unwrap() > now());
    let bound = find("bound_claim");
    assert_eq!(bound["claim"], "team");
    assert_eq!(bound["token"], "red");
    assert_eq!(bound["expected"], "blue");
    assert_eq!(
        bound["error"],
        "error validating claims: claim \"team\" does not match any associated bound claim values"
    );

    // The CIDR check judges the caller's address, or client_address.
    let (_, answer) = explain(
        &server,
        "x",
        root,
        json!({"role": "net", "jwt": sign(json!({})), "client_address": "10.1.2.3"}),
    )
    .await;
    assert_eq!(answer["data"]["allowed"], true, "{answer}");
    let (status, answer) = explain(
        &server,
        "x",
        root,
        json!({"role": "net", "jwt": "x", "client_address": "nope"}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");

    // An algorithm the config does not allow.
    server.enable_jwt("rs").await;
    server
        .write_ok(
            "auth/rs/config",
            &json!({"jwt_validation_pubkeys": [rsa.public_pem()], "jwt_supported_algs": ["ES256"]}),
        )
        .await;
    server
        .write_ok(
            "auth/rs/role/r",
            &json!({"role_type": "jwt", "user_claim": "user", "bound_audiences": [AUD]}),
        )
        .await;
    let (_, answer) = explain(
        &server,
        "rs",
        root,
        json!({"role": "r", "jwt": rsa.sign_claims("RS256", &claims("a"))}),
    )
    .await;
    assert_eq!(answer["data"]["failed_check"], "algorithm", "{answer}");
    // Explains are not logins: only the real logins above were counted.
    assert_eq!(failures(&server, "rs", "algorithm").await, 0);
}

#[tokio::test]
async fn explain_needs_sudo_on_the_role_and_does_not_consume_a_single_use_token() {
    let server = TestServer::start().await;
    let key = Key::generate(KeyKind::P256);
    mount(&server, "ci", &key, json!({"single_use": true})).await;
    let policy = |name: &str, text: &str| {
        let server = &server;
        let (name, text) = (name.to_string(), text.to_string());
        async move {
            let (status, body) = server
                .post(
                    &format!("sys/policies/acl/{name}"),
                    Some(&server.root),
                    &json!({"policy": text}),
                )
                .await;
            assert_eq!(status, 204, "{body}");
        }
    };
    policy(
        "reader",
        r#"path "auth/ci/role/*" { capabilities = ["read", "update", "list"] }
path "auth/ci/login/explain" { capabilities = ["update"] }"#,
    )
    .await;
    policy(
        "debugger",
        r#"path "auth/ci/role/r" { capabilities = ["sudo"] }"#,
    )
    .await;
    let token = |policy: &'static str| {
        let server = &server;
        async move {
            let (status, body) = server
                .post(
                    "auth/token/create",
                    Some(&server.root),
                    &json!({"policies": [policy], "ttl": "1h"}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            body["auth"]["client_token"].as_str().unwrap().to_string()
        }
    };
    let reader = token("reader").await;
    let debugger = token("debugger").await;
    let jwt = key.sign_claims("ES256", &claims("alice"));
    let body = json!({"role": "r", "jwt": jwt});
    for who in [None, Some(reader.as_str()), Some("hvs.not-a-token")] {
        let (status, answer) = explain(&server, "ci", who, body.clone()).await;
        assert_eq!(status, 403, "{who:?}: {answer}");
    }
    // Sudo on one role is not sudo on another.
    let (status, _) = explain(
        &server,
        "ci",
        Some(&debugger),
        json!({"role": "other", "jwt": jwt}),
    )
    .await;
    assert_eq!(status, 403);
    for _ in 0..2 {
        let (status, answer) = explain(&server, "ci", Some(&debugger), body.clone()).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["data"]["allowed"], true, "{answer}");
        let last = answer["data"]["checks"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["check"], "single_use");
        assert_eq!(last["passed"], true);
    }
    let (status, answer) = server.login("ci", "r", &jwt).await;
    assert_eq!(status, 200, "explain consumed the token: {answer}");
    let (_, answer) = explain(&server, "ci", Some(&debugger), body.clone()).await;
    assert_eq!(answer["data"]["failed_check"], "single_use", "{answer}");
}

/// Writes `role` at `auth/<mount>/role/<name>`; the warnings (none for a 204).
async fn warnings(server: &TestServer, mount: &str, name: &str, role: Value) -> Vec<String> {
    let (status, body) = server
        .post(
            &format!("auth/{mount}/role/{name}"),
            Some(&server.root),
            &role,
        )
        .await;
    match status {
        204 => vec![],
        200 => serde_json::from_value(body["warnings"].clone()).expect("warnings"),
        _ => panic!("role {name}: {status} {body}"),
    }
}

#[tokio::test]
async fn role_writes_warn_about_weak_bindings() {
    let server = TestServer::start().await;
    let key = Key::generate(KeyKind::P256);
    let config = |issuer: &str| json!({"jwt_validation_pubkeys": [key.public_pem()], "bound_issuer": issuer});
    for (mount, issuer) in [
        ("gh", "https://token.actions.githubusercontent.com"),
        ("gl", "https://gitlab.com"),
        ("plain", ISS),
    ] {
        server.enable_jwt(mount).await;
        server
            .write_ok(&format!("auth/{mount}/config"), &config(issuer))
            .await;
    }
    let base = |extra: Value| {
        let mut role = json!({"role_type": "jwt", "user_claim": "sub", "token_policies": ["ci"]});
        role.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap());
        role
    };
    let one = |w: Vec<String>, needle: &str| {
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains(needle), "{w:?} lacks {needle}");
    };
    // Nothing but CIDRs binds the token.
    one(
        warnings(
            &server,
            "plain",
            "cidr",
            base(json!({"token_bound_cidrs": "10.0.0.0/8"})),
        )
        .await,
        "no bound_audiences, bound_subject or bound_claims",
    );
    // Globs that match everything.
    one(
        warnings(
            &server,
            "plain",
            "star",
            base(json!({"bound_audiences": AUD,
        "bound_claims_type": "glob", "bound_claims": {"email": ["*@corp.test", "**"]}})),
        )
        .await,
        "glob for bound claim \"email\" matches every value",
    );
    // GitHub Actions by names only.
    let gh_aud = json!({"bound_audiences": "https://github.com/octo-org"});
    for names in [
        json!({"repository": "octo-org/app"}),
        json!({"repository_owner": "octo-org"}),
    ] {
        let mut role = base(gh_aud.clone());
        role["bound_claims"] = names;
        one(
            warnings(&server, "gh", "names", role).await,
            "repository_id",
        );
    }
    one(
        warnings(
            &server,
            "gh",
            "sub",
            base(json!({"bound_audiences": "https://github.com/octo-org",
        "bound_subject": "repo:octo-org/app:ref:refs/heads/main"})),
        )
        .await,
        "repository_id",
    );
    // GitLab by path only.
    one(
        warnings(
            &server,
            "gl",
            "path",
            base(json!({"bound_audiences": "https://vault.example",
        "bound_claims": {"project_path": "group/app"}})),
        )
        .await,
        "project_id",
    );

    // The recommended roles (README) and the seed role have no warnings: 204.
    let github = json!({"role_type": "jwt", "user_claim": "actor", "bound_audiences": "https://github.com/octo-org",
        "bound_claims": {"repository_id": "123456789", "repository_owner_id": "987654", "ref": "refs/heads/main"},
        "token_policies": ["ci"], "token_ttl": "10m", "single_use": true});
    assert_eq!(
        warnings(&server, "gh", "deploy", github).await,
        Vec::<String>::new()
    );
    let gitlab = json!({"role_type": "jwt", "user_claim": "user_login", "bound_audiences": "https://vault.example",
        "bound_claims": {"project_id": "42", "ref_protected": "true", "ref": "main"},
        "token_policies": ["ci"], "token_ttl": "10m", "single_use": true});
    assert_eq!(
        warnings(&server, "gl", "deploy", gitlab).await,
        Vec::<String>::new()
    );
    assert_eq!(
        warnings(&server, "plain", "seed", authmount_testkit::seed_role()).await,
        Vec::<String>::new()
    );
    // A browser-login role is bound to the client id: no warning.
    let oidc = json!({"role_type": "oidc", "user_claim": "sub", "allowed_redirect_uris": "http://localhost:8250/oidc/callback"});
    assert_eq!(
        warnings(&server, "plain", "web", oidc).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn an_inline_jwks_verifies_logins_and_a_bad_one_is_refused_at_write() {
    let server = TestServer::start().await;
    let ec = Key::generate(KeyKind::P256);
    let ed = Key::generate(KeyKind::Ed25519);
    let root = Some(server.root.as_str());
    server.enable_jwt("k8s").await;
    let jwks = json!({"keys": [ec.public_jwk(Some("ec-1")), ed.public_jwk(Some("ed-1"))]});
    let config = json!({"jwks_inline": jwks, "bound_issuer": ISS});
    server.write_ok("auth/k8s/config", &config).await;
    let (_, read) = server.get("auth/k8s/config", root).await;
    assert_eq!(read["data"]["jwks_inline"], jwks, "{read}");
    server
        .write_ok(
            "auth/k8s/role/r",
            &json!({"role_type": "jwt", "user_claim": "user", "bound_audiences": [AUD]}),
        )
        .await;
    for (key, alg, kid) in [(&ec, "ES256", "ec-1"), (&ed, "EdDSA", "ed-1")] {
        let jwt = key.sign(alg, &json!({"kid": kid}), &claims("alice"));
        let (status, body) = server.login("k8s", "r", &jwt).await;
        assert_eq!(status, 200, "{kid}: {body}");
        let (_, answer) = explain(&server, "k8s", root, json!({"role": "r", "jwt": jwt})).await;
        let signature = answer["data"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "signature")
            .cloned()
            .unwrap();
        assert_eq!(signature["key_source"], "jwks_inline");
        assert_eq!(signature["key_id"], kid);
    }
    // A kid the set does not have, and a key outside the set.
    let wrong_kid = ec.sign("ES256", &json!({"kid": "ed-1"}), &claims("alice"));
    let stranger =
        Key::generate(KeyKind::P256).sign("ES256", &json!({"kid": "ec-1"}), &claims("a"));
    for jwt in [wrong_kid, stranger] {
        let (status, body) = server.login("k8s", "r", &jwt).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            error_message(&body),
            "error validating token: error verifying token signature: no known key successfully validated the token signature"
        );
    }
    // The document as a string (a file read by the CLI with @file) works the same.
    server
        .write_ok(
            "auth/k8s/config",
            &json!({"jwks_inline": jwks.to_string(), "bound_issuer": ISS}),
        )
        .await;
    let jwt = ec.sign("ES256", &json!({"kid": "ec-1"}), &claims("bob"));
    assert_eq!(server.login("k8s", "r", &jwt).await.0, 200);

    // Refused at write, and the config in place is kept.
    let bad = [
        (
            json!("{not json"),
            "invalid jwks_inline: the JWKS is not JSON",
        ),
        (
            json!({"kids": []}),
            "invalid jwks_inline: the JWKS has no \"keys\" array",
        ),
        (
            json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
            "invalid jwks_inline: the JWKS has no usable key",
        ),
        (
            json!(42),
            "invalid jwks_inline: the JWKS must be a JSON object",
        ),
    ];
    for (doc, want) in bad {
        let (status, body) = server
            .post("auth/k8s/config", root, &json!({"jwks_inline": doc}))
            .await;
        assert_eq!(status, 400, "{doc}: {body}");
        assert!(error_message(&body).starts_with(want), "{doc}: {body}");
    }
    let (status, body) = server
        .post(
            "auth/k8s/config",
            root,
            &json!({"jwks_inline": jwks, "jwt_validation_pubkeys": [ec.public_pem()]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        error_message(&body).contains("'jwks_inline' cannot be combined"),
        "{body}"
    );
    // An unusable entry beside usable ones is skipped with a warning.
    let (status, body) = server
        .post("auth/k8s/config", root, &json!({"jwks_inline": {"keys": [ec.public_jwk(Some("ec-1")), {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}]}}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["warnings"][0]
            .as_str()
            .unwrap()
            .contains("kid \"hmac\""),
        "{body}"
    );
    assert_eq!(server.login("k8s", "r", &jwt).await.0, 200);
}

/// Every storage key under `prefix`, recursively.
async fn all_keys(storage: &Arc<dyn Storage>, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![prefix.to_string()];
    while let Some(dir) = pending.pop() {
        for child in storage.list(&dir).await.expect("list") {
            let full = format!("{dir}{child}");
            if child.ends_with('/') {
                pending.push(full);
            } else {
                out.push(full);
            }
        }
    }
    out
}

#[tokio::test]
async fn the_single_use_memory_is_swept_once_its_tokens_expire() {
    let storage: Arc<dyn Storage> = Arc::new(InMemory::new());
    let clock = Clock::manual();
    let mut registry = Registry::new();
    authmount::jwt::register(&mut registry);
    let core = Core::build(
        storage.clone(),
        registry,
        LeaseLimits::default(),
        clock.clone(),
        SealKind::Shamir,
    );
    core.dev_init("root").await.expect("dev init");
    let key = Key::generate(KeyKind::P256);
    for (path, body) in [
        ("sys/auth/jwt", json!({"type": "jwt"})),
        (
            "auth/jwt/config",
            json!({"jwt_validation_pubkeys": [key.public_pem()]}),
        ),
        (
            "auth/jwt/role/r",
            json!({"role_type": "jwt", "user_claim": "user", "bound_audiences": [AUD], "single_use": true}),
        ),
    ] {
        let reply = core
            .handle(
                Request::new(Operation::Update, path)
                    .with_token("root")
                    .with_data(body),
            )
            .await;
        assert!(reply.status < 300, "{path}: {:?}", reply.body);
    }
    // A second single-use role on the mount with the largest clock skew allowed; a larger
    // one is refused at write.
    let role_r2 = |skew: i64| {
        json!({"role_type": "jwt", "user_claim": "user", "bound_audiences": [AUD],
               "single_use": true, "clock_skew_leeway": skew})
    };
    let write_r2 = |body: Value| {
        let core = &core;
        async move {
            core.handle(
                Request::new(Operation::Update, "auth/jwt/role/r2")
                    .with_token("root")
                    .with_data(body),
            )
            .await
        }
    };
    let refused = write_r2(role_r2(3601)).await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert!(format!("{:?}", refused.body).contains("at most 3600 seconds"));
    assert!(write_r2(role_r2(3600)).await.status < 300);
    let login = |role: &'static str, jwt: String| {
        let core = &core;
        async move {
            let reply = core
                .handle(
                    Request::new(Operation::Update, "auth/jwt/login")
                        .with_data(json!({"role": role, "jwt": jwt})),
                )
                .await;
            reply.status
        }
    };
    let token_at = |t: i64| {
        key.sign_claims(
            "ES256",
            &json!({"aud": AUD, "user": "u", "iat": t, "exp": t + 120, "jti": random_hex()}),
        )
    };
    let used = |keys: &Vec<String>| {
        keys.iter()
            .filter(|k| k.contains("single-use/used/"))
            .count()
    };
    // A single-use role refuses a token that never expires: it could never be forgotten.
    let t = clock.unix();
    let no_exp = key.sign_claims(
        "ES256",
        &json!({"aud": AUD, "user": "u", "iat": t, "jti": random_hex()}),
    );
    assert_eq!(login("r", no_exp).await, 400);
    let first = token_at(clock.unix());
    assert_eq!(login("r", first.clone()).await, 200);
    assert_eq!(login("r", first.clone()).await, 400);
    assert_eq!(used(&all_keys(&storage, "").await), 1);
    // Long after r (60 s of skew) would take it, r2 (3600 s) still would: the memory
    // outlives every role's leeway, so it is a replay there too.
    clock.advance(Duration::from_secs(1800));
    assert_eq!(login("r", first.clone()).await, 400, "expired for r");
    assert_eq!(login("r2", first.clone()).await, 400, "a replay on r2");
    assert_eq!(login("r", token_at(clock.unix())).await, 200);
    assert_eq!(used(&all_keys(&storage, "").await), 2);
    // Past exp + 3600 s (and in a later minute), the next single-use login sweeps it.
    clock.advance(Duration::from_secs(120 + 3600 - 1800 + 61));
    assert_eq!(login("r", token_at(clock.unix())).await, 200);
    assert_eq!(
        used(&all_keys(&storage, "").await),
        2,
        "the first entry was swept"
    );
    assert_eq!(login("r2", first).await, 400, "expired anyway");
}
