//! Claim rules in CEL on the ordinary JWT role (`claim_rules`, `policies_expression`), over
//! HTTP against a real server with real signed tokens: rules allow and refuse with their
//! message, the policies expression adds policies, identity (entity, alias, group aliases,
//! metadata) is kept, bad and too expensive expressions are refused at write naming the rule,
//! an expensive evaluation is cut off at login, the role read shows the fields, and a refusal
//! is counted under the failure class `claim_rule`.

use authmount_testkit::{error_message, seed_claims, seed_mount, seed_role, Key, TestServer};
use serde_json::{json, Value};

/// The seed role with `extra` fields merged in.
fn role_with(extra: Value) -> Value {
    let mut role = seed_role();
    for (k, v) in extra.as_object().unwrap() {
        role[k] = v.clone();
    }
    role
}

/// Seed claims for `user` with `extra` claims merged in.
fn claims_with(user: &str, extra: Value) -> Value {
    let mut claims = seed_claims(user);
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

fn ci_rules() -> Value {
    json!({
        "claim_rules": [
            {"expression": "claims.ref == 'refs/heads/main'", "message": "only the main branch may log in"},
            {"expression": "claims.repository_id in ['42', '43']", "message": "unknown repository"},
            {"expression": "claims.groups_of_user.exists(g, g.startsWith('team-'))"}
        ],
        "policies_expression": "claims.groups_of_user.filter(g, g.startsWith('team-')).map(g, 'ci-' + g)"
    })
}

fn ci_claims(user: &str) -> Value {
    claims_with(
        user,
        json!({"ref": "refs/heads/main", "repository_id": "42", "groups_of_user": ["team-red", "ops"]}),
    )
}

#[tokio::test]
async fn rules_allow_refuse_with_their_message_and_add_policies_keeping_identity() {
    let server = TestServer::start().await;
    let root = server.root.clone();
    let key = Key::rsa();
    let mount = "cel-a";
    seed_mount(&server, mount, &key).await;
    server
        .write_ok(&format!("auth/{mount}/role/ci"), &role_with(ci_rules()))
        .await;

    // An external group reached through the role's groups claim: identity is kept.
    let (group_id, accessor) = server
        .external_group(mount, "eng-cel", "engineering", &["eng-reader"])
        .await;

    let (st, body) = server
        .login(mount, "ci", &key.sign_claims("RS256", &ci_claims("alice")))
        .await;
    assert_eq!(st, 200, "{body}");
    let auth = &body["auth"];
    assert_eq!(
        auth["token_policies"],
        json!(["ci-team-red", "default", "webapps"])
    );
    assert_eq!(
        auth["policies"],
        json!(["ci-team-red", "default", "eng-reader", "webapps"])
    );
    assert_eq!(auth["identity_policies"], json!(["eng-reader"]));
    assert_eq!(auth["metadata"], json!({"role": "ci"}));
    let entity_id = auth["entity_id"].as_str().expect("an entity").to_string();
    let (st, entity) = server
        .get(&format!("identity/entity/id/{entity_id}"), Some(&root))
        .await;
    assert_eq!(st, 200, "{entity}");
    assert_eq!(entity["data"]["group_ids"], json!([group_id]));
    let alias = &entity["data"]["aliases"][0];
    assert_eq!(alias["name"], json!("alice"));
    assert_eq!(alias["mount_accessor"], json!(accessor));
    assert_eq!(alias["metadata"]["role"], json!("ci"));

    // Each rule refuses with its message; a rule without one is named.
    let refused = [
        (
            json!({"ref": "refs/heads/dev"}),
            "only the main branch may log in",
        ),
        (json!({"repository_id": "7"}), "unknown repository"),
        (
            json!({"groups_of_user": ["ops"]}),
            "the token's claims do not satisfy claim_rules[2]",
        ),
        (
            json!({"ref": null}),
            "only the main branch may log in (claim_rules[0]: ",
        ),
    ];
    for (change, want) in refused {
        let mut claims = ci_claims("alice");
        for (k, v) in change.as_object().unwrap() {
            match v {
                Value::Null => claims.as_object_mut().unwrap().remove(k),
                other => claims
                    .as_object_mut()
                    .unwrap()
                    .insert(k.clone(), other.clone()),
            };
        }
        let (st, body) = server
            .login(mount, "ci", &key.sign_claims("RS256", &claims))
            .await;
        assert_eq!(st, 400, "{change}: {body}");
        let message = error_message(&body);
        assert!(message.starts_with(want), "{change}: {message}");
    }

    // Login explain shows each rule in order and the policies the expression gave; a refused
    // token names the failing rule with its message, and nothing after it runs.
    let explain = |claims: Value| {
        let server = &server;
        let root = root.clone();
        let jwt = key.sign_claims("RS256", &claims);
        async move {
            let (st, body) = server
                .post(
                    &format!("auth/{mount}/login/explain"),
                    Some(&root),
                    &json!({"role": "ci", "jwt": jwt}),
                )
                .await;
            assert_eq!(st, 200, "{body}");
            body["data"].clone()
        }
    };
    let data = explain(ci_claims("alice")).await;
    assert_eq!(data["allowed"], json!(true), "{data:#}");
    let checks = data["checks"].as_array().unwrap();
    let rules: Vec<&Value> = checks.iter().filter(|c| c["check"] == "cel_rule").collect();
    assert_eq!(rules.len(), 3, "{data:#}");
    for (i, rule) in rules.iter().enumerate() {
        assert_eq!(rule["index"], json!(i));
        assert_eq!(rule["passed"], json!(true));
        assert_eq!(
            rule["expression"],
            ci_rules()["claim_rules"][i]["expression"]
        );
    }
    let policies = checks
        .iter()
        .find(|c| c["check"] == "policies_expression")
        .unwrap_or_else(|| panic!("no policies_expression check: {data:#}"));
    assert_eq!(policies["policies"], json!(["ci-team-red"]));
    let data = explain(claims_with(
        "alice",
        json!({"ref": "refs/heads/dev", "repository_id": "42", "groups_of_user": ["team-red"]}),
    ))
    .await;
    assert_eq!(data["allowed"], json!(false));
    assert_eq!(data["failed_check"], json!("cel_rule"));
    let last = data["checks"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["index"], json!(0), "{data:#}");
    assert_eq!(last["error"], json!("only the main branch may log in"));
    assert_eq!(data["error"], json!("only the main branch may log in"));

    // A refusal is counted under its own failure class.
    let metrics = reqwest::Client::new()
        .get(format!("{}/v1/sys/metrics?format=prometheus", server.base))
        .header("X-Vault-Token", &root)
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics text");
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("authmount_logins_total")
                && l.contains(&format!("mount=\"auth/{mount}/\""))
                && l.contains("failure=\"claim_rule\"")
        })
        .unwrap_or_else(|| panic!("no claim_rule failures counted:\n{metrics}"));
    assert!(line.ends_with(" 4"), "{line}");
}

#[tokio::test]
async fn the_role_read_shows_the_fields_and_a_rewrite_applies_at_the_next_login() {
    let server = TestServer::start().await;
    let key = Key::rsa();
    let mount = "cel-b";
    seed_mount(&server, mount, &key).await;
    let (st, body) = server
        .get(&format!("auth/{mount}/role/demo"), Some(&server.root))
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["data"]["claim_rules"], json!([]));
    assert_eq!(body["data"]["policies_expression"], json!(""));

    let path = format!("auth/{mount}/role/ci");
    server.write_ok(&path, &role_with(ci_rules())).await;
    let (st, body) = server.get(&path, Some(&server.root)).await;
    assert_eq!(st, 200, "{body}");
    let rules = ci_rules();
    assert_eq!(body["data"]["claim_rules"][0], rules["claim_rules"][0]);
    assert_eq!(
        body["data"]["claim_rules"][2],
        json!({"expression": "claims.groups_of_user.exists(g, g.startsWith('team-'))", "message": ""})
    );
    assert_eq!(
        body["data"]["policies_expression"],
        rules["policies_expression"]
    );

    let jwt = key.sign_claims("RS256", &ci_claims("bob"));
    assert_eq!(server.login(mount, "ci", &jwt).await.0, 200);
    // A merge write changing only the rules (given as a JSON string, as the CLI sends
    // `claim_rules=@file`): the same token is refused at once.
    let stricter = json!([{"expression": "claims.repository_id == '43'", "message": "only 43"}]);
    server
        .write_ok(&path, &json!({"claim_rules": stricter.to_string()}))
        .await;
    let (st, body) = server.login(mount, "ci", &jwt).await;
    assert_eq!((st, error_message(&body)), (400, "only 43".to_string()));
    let (_, body) = server.get(&path, Some(&server.root)).await;
    assert_eq!(body["data"]["claim_rules"], stricter);
    assert_eq!(
        body["data"]["policies_expression"],
        rules["policies_expression"]
    );
    // Clearing the fields.
    server
        .write_ok(
            &path,
            &json!({"claim_rules": [], "policies_expression": ""}),
        )
        .await;
    let (st, body) = server.login(mount, "ci", &jwt).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body["auth"]["token_policies"],
        json!(["default", "webapps"])
    );
}

#[tokio::test]
async fn a_bad_expression_is_refused_at_write_naming_the_rule_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let key = Key::rsa();
    let mount = "cel-c";
    seed_mount(&server, mount, &key).await;
    let path = format!("auth/{mount}/role/ci");
    server.write_ok(&path, &role_with(ci_rules())).await;
    let (_, before) = server.get(&path, Some(&server.root)).await;

    let good = json!({"expression": "true", "message": "ok"});
    let cases = [
        (
            json!({"claim_rules": [good, {"expression": "claims.ref ==", "message": "x"}]}),
            "claim_rules[1]: invalid CEL: ",
        ),
        (
            json!({"claim_rules": [{"expression": "ref == 'main'"}]}),
            "claim_rules[0]: undeclared reference to 'ref' (expressions see only 'claims')",
        ),
        (
            json!({"claim_rules": [{"expression": "size(claims.groups)"}]}),
            "claim_rules[0]: yields a number, not a bool",
        ),
        (
            json!({"claim_rules": [{"expression": "claims.x.frobnicate()"}]}),
            "claim_rules[0]: undeclared function 'frobnicate'",
        ),
        (
            json!({"claim_rules": [{"expression": "true", "colour": "red"}]}),
            "claim_rules: expected a list of {\"expression\", \"message\"} objects: unknown field `colour`",
        ),
        (
            json!({"claim_rules": "not json"}),
            "claim_rules: not a JSON list: ",
        ),
        (
            json!({"policies_expression": "claims.sub == 'x'"}),
            "policies_expression: yields a bool, not a list of strings",
        ),
        (
            json!({"claim_rules": [{"expression": format!("claims.sub == '{}'", "a".repeat(2100))}]}),
            "claim_rules[0]: expression of 2116 characters, the limit is 2048",
        ),
        (
            json!({"claim_rules": [{"expression": format!("{}true{}", "(".repeat(20), ")".repeat(20))}]}),
            "claim_rules[0]: brackets nested 20 deep, the limit is 16",
        ),
        (
            json!({"claim_rules": [{"expression": "claims.g.all(a, claims.g.all(b, claims.g.all(c, a == b || b == c)))"}]}),
            "claim_rules[0]: too expensive: about ",
        ),
    ];
    for (write, want) in cases {
        let (st, body) = server.post(&path, Some(&server.root), &write).await;
        assert_eq!(st, 400, "{want}: {body}");
        let message = error_message(&body);
        assert!(message.starts_with(want), "{want}: {message}");
    }
    let (_, after) = server.get(&path, Some(&server.root)).await;
    assert_eq!(after["data"], before["data"]);
}

#[tokio::test]
async fn an_expensive_evaluation_is_cut_off_at_login_with_a_clear_error() {
    let server = TestServer::start().await;
    let key = Key::rsa();
    let mount = "cel-d";
    seed_mount(&server, mount, &key).await;
    // Quadratic in the size of the list: fine for a typical token, over the budget for a
    // token carrying thousands of items.
    server
        .write_ok(
            &format!("auth/{mount}/role/pairs"),
            &role_with(json!({"claim_rules": [{
                "expression": "claims.items.all(a, claims.items.exists(b, a == b))",
                "message": "no pairs"
            }]})),
        )
        .await;
    let small = claims_with("carol", json!({"items": (0..20).collect::<Vec<_>>()}));
    let (st, body) = server
        .login(mount, "pairs", &key.sign_claims("RS256", &small))
        .await;
    assert_eq!(st, 200, "{body}");

    let big = claims_with("carol", json!({"items": (0..4000).collect::<Vec<_>>()}));
    let started = std::time::Instant::now();
    let (st, body) = server
        .login(mount, "pairs", &key.sign_claims("RS256", &big))
        .await;
    assert_eq!(st, 400, "{body}");
    let message = error_message(&body);
    assert!(
        message.starts_with("claim_rules[0] exceeds the evaluation budget for this token: about ")
            && message.ends_with("steps, the limit is 250000"),
        "{message}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[tokio::test]
async fn the_readme_cel_example_runs_as_written_and_again() {
    let server = TestServer::start().await;
    let script = authmount_testkit::readme_block("sh cel");
    for round in ["first", "second"] {
        let stdout = server.run_script(&script, round).await;
        let mut answers = stdout.lines().filter(|l| l.starts_with('{'));
        let login: Value = serde_json::from_str(answers.next().expect("login answer")).unwrap();
        assert_eq!(
            login["auth"]["token_policies"],
            json!(["ci", "default", "deploy-team-web"]),
            "{round}: {login}"
        );
        assert!(login["auth"]["entity_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()));
        let refused: Value = serde_json::from_str(answers.next().expect("refusal")).unwrap();
        assert_eq!(
            refused,
            json!({"errors": ["deploys run from main only"]}),
            "{round}"
        );
    }
}
