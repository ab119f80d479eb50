//! OpenBao's CEL role API on the JWT method (`cel/role/<name>`, `cel/role` list, `cel/login`),
//! over HTTP against a real server with real signed tokens: role create/read/update/delete
//! and paged lists answer as OpenBao 2.7.2 does, bad writes are refused with its errors (or
//! ours where it answers 500), each kind of program result gives OpenBao's login answer, and
//! a CEL login gets an entity alias (named by `alias.name`, else `sub`) through which an
//! external group's policies apply; the README's CEL role example runs as written.

use authmount_testkit::{error_message, seed_claims, seed_mount, Key, TestServer, SEED_SUBJECT};
use serde_json::{json, Value};

/// Writes `cel/role/<name>` with the root token, asserting 200 and returning `data`.
async fn write_cel_role(server: &TestServer, mount: &str, name: &str, body: &Value) -> Value {
    let (st, resp) = server
        .post(
            &format!("auth/{mount}/cel/role/{name}"),
            Some(&server.root),
            body,
        )
        .await;
    assert_eq!(st, 200, "write cel role {name} {body}: {resp}");
    resp["data"].clone()
}

async fn cel_login(server: &TestServer, mount: &str, role: &str, jwt: &str) -> (u16, Value) {
    server
        .post(
            &format!("auth/{mount}/cel/login"),
            None,
            &json!({"role": role, "jwt": jwt}),
        )
        .await
}

#[tokio::test]
async fn cel_roles_are_written_read_listed_and_deleted_as_openbao_does() {
    let server = TestServer::start().await;
    let root = server.root.clone();
    let key = Key::rsa();
    let mount = "celapi-crud";
    seed_mount(&server, mount, &key).await;

    let data = write_cel_role(
        &server,
        mount,
        "r1",
        &json!({"cel_program": {"expression": "true", "ignored": 1}}),
    )
    .await;
    assert_eq!(
        data,
        json!({"bound_audiences": [], "cel_program": {"expression": "true"},
               "clock_skew_leeway": 60, "expiration_leeway": 150, "message": "",
               "name": "r1", "not_before_leeway": 150})
    );
    let program =
        json!({"expression": "x", "variables": [{"name": "x", "expression": "claims.sub == 'a'"}]});
    let data = write_cel_role(
        &server,
        mount,
        "V6",
        &json!({"cel_program": program, "bound_audiences": "a,b", "clock_skew_leeway": "2m",
                "message": "m"}),
    )
    .await;
    assert_eq!(data["bound_audiences"], json!(["a", "b"]));
    assert_eq!(data["clock_skew_leeway"], json!(120));
    assert_eq!(data["cel_program"], program);
    let (st, read) = server
        .get(&format!("auth/{mount}/cel/role/V6"), Some(&root))
        .await;
    assert_eq!(st, 200, "{read}");
    assert_eq!(read["data"], data);

    // An update replaces the whole role: fields not sent are back to their defaults.
    let data = write_cel_role(
        &server,
        mount,
        "V6",
        &json!({"cel_program": {"expression": "false"}}),
    )
    .await;
    assert_eq!(data["bound_audiences"], json!([]));
    assert_eq!(data["message"], json!(""));
    assert_eq!(data["clock_skew_leeway"], json!(60));

    // Lists: names as written (not lower-cased), paged by after and limit.
    write_cel_role(
        &server,
        mount,
        "r2",
        &json!({"cel_program": {"expression": "true"}}),
    )
    .await;
    let (st, list) = server
        .list(&format!("auth/{mount}/cel/role"), Some(&root))
        .await;
    assert_eq!(st, 200, "{list}");
    assert_eq!(list["data"]["keys"], json!(["V6", "r1", "r2"]));
    let (_, page) = server
        .list(
            &format!("auth/{mount}/cel/role?after=V6&limit=1"),
            Some(&root),
        )
        .await;
    assert_eq!(page["data"]["keys"], json!(["r1"]));
    let (st, _) = server
        .get(&format!("auth/{mount}/cel/role/"), Some(&root))
        .await;
    assert_eq!(st, 405);

    // CEL roles and ordinary roles are separate.
    let (st, body) = server
        .login(
            mount,
            "r1",
            &key.sign_claims("RS256", &seed_claims("alice")),
        )
        .await;
    assert_eq!(
        (st, error_message(&body)),
        (400, "role \"r1\" could not be found".into())
    );
    let (st, body) = cel_login(
        &server,
        mount,
        "demo",
        &key.sign_claims("RS256", &seed_claims("alice")),
    )
    .await;
    assert_eq!(
        (st, error_message(&body)),
        (400, "role \"demo\" could not be found".into())
    );

    // Delete: 204, then the read is a 404, and deleting again is still 204.
    for _ in 0..2 {
        let (st, _) = server
            .delete(&format!("auth/{mount}/cel/role/r1"), Some(&root))
            .await;
        assert_eq!(st, 204);
    }
    let (st, _) = server
        .get(&format!("auth/{mount}/cel/role/r1"), Some(&root))
        .await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn bad_cel_role_writes_are_refused_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let root = server.root.clone();
    let key = Key::rsa();
    let mount = "celapi-bad";
    seed_mount(&server, mount, &key).await;
    write_cel_role(
        &server,
        mount,
        "kept",
        &json!({"cel_program": {"expression": "true"}}),
    )
    .await;

    let cases = [
        (json!({}), "missing required field 'cel_program'"),
        (json!({"message": "m"}), "missing required field 'cel_program'"),
        (
            json!({"cel_program": "x"}),
            "Field validation failed: error converting input for field \"cel_program\": '' expected type 'map[string]interface {}', got unconvertible type 'string'",
        ),
        (
            json!({"cel_program": true}),
            "Field validation failed: error converting input for field \"cel_program\": '' expected type 'map[string]interface {}', got unconvertible type 'bool'",
        ),
        (json!({"cel_program": {}}), "cel_program.expression cannot be empty"),
        (
            json!({"cel_program": {"expression": "claims.a =="}}),
            "cel_program.expression: invalid CEL",
        ),
        (
            json!({"cel_program": {"expression": "nosuch == 1"}}),
            "cel_program.expression: undeclared reference to 'nosuch'",
        ),
        (
            json!({"cel_program": {"expression": "pb.Auth{ttl: 600}"}}),
            "cel_program.expression: undefined field 'ttl' of pb.Auth",
        ),
        (
            json!({"cel_program": {"expression": "true", "variables": [{"name": "x"}]}}),
            "cel_program.variables[0] (x): empty expression",
        ),
        (
            json!({"cel_program": {"expression": "claims.g.all(a, claims.g.all(b, claims.g.all(c, a == b)))"}}),
            "cel_program.expression: too expensive",
        ),
    ];
    for (body, want) in cases {
        let (st, resp) = server
            .post(&format!("auth/{mount}/cel/role/kept"), Some(&root), &body)
            .await;
        assert_eq!(st, 400, "{body}: {resp}");
        let got = error_message(&resp);
        assert!(got.starts_with(want), "{body}: {got}");
    }
    let (_, read) = server
        .get(&format!("auth/{mount}/cel/role/kept"), Some(&root))
        .await;
    assert_eq!(read["data"]["cel_program"], json!({"expression": "true"}));
    // A result type is not checked at write (OpenBao stores these too).
    for expr in ["1 + 2", "'not a bool'", "claims.groups.map(g, g)"] {
        write_cel_role(
            &server,
            mount,
            "loose",
            &json!({"cel_program": {"expression": expr}}),
        )
        .await;
    }
}

#[tokio::test]
async fn each_program_result_gives_openbao_s_login_answer() {
    let server = TestServer::start().await;
    let key = Key::rsa();
    let mount = "celapi-login";
    seed_mount(&server, mount, &key).await;
    let mut claims = seed_claims("alice");
    claims["groups"] = json!(["dev", "ops"]);
    let jwt = key.sign_claims("RS256", &claims);

    let refused = [
        ("false", "CEL role 'r' blocked authorization with boolean false return"),
        ("'go away'", "CEL role 'r' blocked authorization with message: go away"),
        ("true", "CEL program 'r' returned unexpected type: types.Bool"),
        ("1", "CEL program 'r' returned unexpected type: types.Int"),
        ("claims.groups", "CEL program 'r' returned unexpected type: *types.baseList"),
        ("claims", "CEL program 'r' returned unexpected type: *types.baseMap"),
        (
            "claims.nosuch",
            "CEL auth program failed: failed to evaluate expression: failed to evaluate expression \"claims.nosuch\": no such key: nosuch",
        ),
    ];
    for (expr, want) in refused {
        write_cel_role(
            &server,
            mount,
            "r",
            &json!({"cel_program": {"expression": expr}}),
        )
        .await;
        let (st, body) = cel_login(&server, mount, "r", &jwt).await;
        assert_eq!(st, 400, "{expr}: {body}");
        assert_eq!(
            error_message(&body),
            format!("error executing cel program: {want}")
        );
    }

    // Missing role, missing token, unknown role; the token's own checks come first.
    let (st, body) = cel_login(&server, mount, "", &jwt).await;
    assert_eq!((st, error_message(&body)), (400, "missing role".into()));
    let (st, body) = cel_login(&server, mount, "r", "").await;
    assert_eq!((st, error_message(&body)), (400, "missing token".into()));
    let (st, body) = cel_login(&server, mount, "nosuch", &jwt).await;
    assert_eq!(
        (st, error_message(&body)),
        (400, "role \"nosuch\" could not be found".into())
    );
    let other = Key::rsa().sign_claims("RS256", &claims);
    let (st, body) = cel_login(&server, mount, "r", &other).await;
    assert_eq!(st, 400);
    assert!(
        error_message(&body).starts_with("error validating token: "),
        "{body}"
    );
    write_cel_role(
        &server,
        mount,
        "aud",
        &json!({"cel_program": {"expression": "pb.Auth{}"}, "bound_audiences": "someone-else"}),
    )
    .await;
    let (st, body) = cel_login(&server, mount, "aud", &jwt).await;
    assert_eq!(st, 400, "{body}");
    assert!(error_message(&body).contains("aud"), "{body}");
    let mut expired = claims.clone();
    expired["exp"] = json!(authmount_testkit::now() - 3600);
    expired["iat"] = json!(authmount_testkit::now() - 7200);
    let (st, _) = cel_login(&server, mount, "r", &key.sign_claims("RS256", &expired)).await;
    assert_eq!(st, 400);

    // A pb.Auth logs in with its policies and metadata; variables feed the expression.
    write_cel_role(
        &server,
        mount,
        "ok",
        &json!({"cel_program": {
            "variables": [{"name": "team", "expression": "claims.groups[0]"},
                          {"name": "pols", "expression": "[team + '-reader', 'p1']"}],
            "expression": "claims.sub == '' ? 'no subject' : pb.Auth{display_name: claims.sub, policies: pols, metadata: {'team': team}, num_uses: 3}"}}),
    )
    .await;
    let (st, body) = cel_login(&server, mount, "ok", &jwt).await;
    assert_eq!(st, 200, "{body}");
    let auth = &body["auth"];
    assert_eq!(auth["policies"], json!(["default", "dev-reader", "p1"]));
    assert_eq!(
        auth["token_policies"],
        json!(["default", "dev-reader", "p1"])
    );
    assert_eq!(auth["metadata"], json!({"team": "dev"}));
    assert_eq!(auth["num_uses"], json!(3));
    assert_eq!(auth["lease_duration"], json!(2764800));
    assert_eq!(auth["orphan"], json!(true));
    let token = auth["client_token"].as_str().unwrap();
    let (st, lookup) = server.get("auth/token/lookup-self", Some(token)).await;
    assert_eq!(st, 200, "{lookup}");
    assert_eq!(
        lookup["data"]["path"],
        json!(format!("auth/{mount}/cel/login"))
    );
    assert_eq!(lookup["data"]["meta"], json!({"team": "dev"}));

    // no_default_policy, and a wrong type in a pb.Auth field is refused at login.
    write_cel_role(
        &server,
        mount,
        "nodef",
        &json!({"cel_program": {"expression": "pb.Auth{policies: claims.groups, no_default_policy: true}"}}),
    )
    .await;
    let (st, body) = cel_login(&server, mount, "nodef", &jwt).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["auth"]["policies"], json!(["dev", "ops"]));
    write_cel_role(
        &server,
        mount,
        "badtype",
        &json!({"cel_program": {"expression": "pb.Auth{display_name: 5}"}}),
    )
    .await;
    let (st, body) = cel_login(&server, mount, "badtype", &jwt).await;
    assert_eq!(st, 400, "{body}");
    assert_eq!(
        error_message(&body),
        "error executing cel program: error converting proto auth: display_name is types.Int, not a string"
    );
}

#[tokio::test]
async fn a_cel_login_gets_an_entity_alias_and_external_groups_apply() {
    let server = TestServer::start().await;
    let root = server.root.clone();
    let key = Key::rsa();
    let mount = "celapi-identity";
    seed_mount(&server, mount, &key).await;
    let (group_id, accessor) = server
        .external_group(mount, "ops-cel", "ops", &["ops-reader"])
        .await;
    let mut claims = seed_claims("alice");
    claims["groups"] = json!(["dev", "ops"]);
    claims["email"] = json!("alice@example.com");
    let jwt = key.sign_claims("RS256", &claims);

    // Named by alias.name; group aliases from the claims reach the external group.
    write_cel_role(
        &server,
        mount,
        "named",
        &json!({"cel_program": {"expression":
            "pb.Auth{policies: ['p1'], alias: logical.Alias{name: claims.email, metadata: {'via': 'cel'}}, group_aliases: claims.groups.map(g, logical.Alias{name: g})}"}}),
    )
    .await;
    let (st, body) = cel_login(&server, mount, "named", &jwt).await;
    assert_eq!(st, 200, "{body}");
    let auth = &body["auth"];
    assert_eq!(auth["identity_policies"], json!(["ops-reader"]));
    assert_eq!(auth["policies"], json!(["default", "ops-reader", "p1"]));
    let entity_id = auth["entity_id"].as_str().expect("an entity").to_string();
    assert!(!entity_id.is_empty());
    let (st, entity) = server
        .get(&format!("identity/entity/id/{entity_id}"), Some(&root))
        .await;
    assert_eq!(st, 200, "{entity}");
    assert_eq!(entity["data"]["group_ids"], json!([group_id]));
    let alias = &entity["data"]["aliases"][0];
    assert_eq!(alias["name"], json!("alice@example.com"));
    assert_eq!(alias["mount_accessor"], json!(accessor));
    assert_eq!(alias["metadata"], json!({"via": "cel"}));

    // Without alias: named by sub; the same login again finds the same entity.
    write_cel_role(
        &server,
        mount,
        "bysub",
        &json!({"cel_program": {"expression": "pb.Auth{}"}}),
    )
    .await;
    let mut ids = vec![];
    for _ in 0..2 {
        let (st, body) = cel_login(&server, mount, "bysub", &jwt).await;
        assert_eq!(st, 200, "{body}");
        ids.push(body["auth"]["entity_id"].as_str().unwrap().to_string());
        assert_eq!(body["auth"]["identity_policies"], Value::Null);
    }
    assert_eq!(ids[0], ids[1]);
    let (_, entity) = server
        .get(&format!("identity/entity/id/{}", ids[0]), Some(&root))
        .await;
    assert_eq!(entity["data"]["aliases"][0]["name"], json!(SEED_SUBJECT));

    // A token from a CEL login renews while its role exists.
    let (_, body) = cel_login(&server, mount, "bysub", &jwt).await;
    let token = body["auth"]["client_token"].as_str().unwrap().to_string();
    let (st, renewed) = server
        .post("auth/token/renew-self", Some(&token), &json!({}))
        .await;
    assert_eq!(st, 200, "{renewed}");
    server
        .delete(&format!("auth/{mount}/cel/role/bysub"), Some(&root))
        .await;
    let (st, renewed) = server
        .post("auth/token/renew-self", Some(&token), &json!({}))
        .await;
    assert_eq!(st, 500, "{renewed}");
    assert_eq!(
        error_message(&renewed),
        "cel role bysub does not exist during renewal"
    );
}

#[tokio::test]
async fn the_readme_cel_role_example_runs_as_written_and_again() {
    let server = TestServer::start().await;
    let script = authmount_testkit::readme_block("sh cel-role");
    for round in ["first", "second"] {
        let stdout = server.run_script(&script, round).await;
        let mut answers = stdout.lines().filter(|l| l.starts_with('{'));
        let login: Value = serde_json::from_str(answers.next().expect("login answer")).unwrap();
        let auth = &login["auth"];
        assert_eq!(
            auth["token_policies"],
            json!(["default", "deploy-team-web"]),
            "{round}: {login}"
        );
        let entity_id = auth["entity_id"].as_str().unwrap_or_default();
        assert!(!entity_id.is_empty(), "{round}: {login}");
        let (_, entity) = server
            .get(
                &format!("identity/entity/id/{entity_id}"),
                Some(&server.root),
            )
            .await;
        assert_eq!(entity["data"]["aliases"][0]["name"], json!("repo:acme/app"));
        let refused: Value = serde_json::from_str(answers.next().expect("refusal")).unwrap();
        assert_eq!(
            refused,
            json!({"errors": ["error executing cel program: CEL role 'deploy' blocked authorization with message: deploys run from main only"]}),
            "{round}"
        );
    }
}

#[tokio::test]
async fn cel_role_writes_need_update_as_in_openbao() {
    let server = TestServer::start().await;
    let root = server.root.clone();
    let key = Key::rsa();
    let mount = "celapi-acl";
    seed_mount(&server, mount, &key).await;
    let body = json!({"cel_program": {"expression": "pb.Auth{}"}});
    for (policy, capabilities, want) in [
        ("cel-create", "[\"create\"]", 403),
        ("cel-update", "[\"update\"]", 200),
    ] {
        let rules = format!("path \"auth/{mount}/cel/role/*\" {{ capabilities = {capabilities} }}");
        let (st, resp) = server
            .post(
                &format!("sys/policies/acl/{policy}"),
                Some(&root),
                &json!({"policy": rules}),
            )
            .await;
        assert!(st == 204 || st == 200, "{resp}");
        let (st, token) = server
            .post(
                "auth/token/create",
                Some(&root),
                &json!({"policies": [policy]}),
            )
            .await;
        assert_eq!(st, 200, "{token}");
        let token = token["auth"]["client_token"].as_str().unwrap().to_string();
        let (st, resp) = server
            .post(
                &format!("auth/{mount}/cel/role/{policy}"),
                Some(&token),
                &body,
            )
            .await;
        assert_eq!(st, want, "{policy}: {resp}");
    }
}
