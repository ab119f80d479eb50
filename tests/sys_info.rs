//! What a server says about itself and its callers, over HTTP with real tokens:
//! `sys/capabilities*` (what a token may do on paths), `sys/mounts` and the built-in mounts
//! (`sys/`, `identity/`, the token store's `token/` in `sys/auth`), the UI mount listing
//! (`sys/internal/ui/mounts`, with and without a token), and `identity/lookup/entity`.

use authmount_testkit::{error_message, seed_claims, seed_mount, Key, TestServer};
use serde_json::{json, Value};

const READERS: &str = r#"
path "auth/jwt/role/*" { capabilities = ["read", "list"] }
path "auth/jwt/role/secret" { capabilities = ["deny"] }
path "sys/policies/acl/admin" { capabilities = ["deny"] }
path "sys/policies/acl/*" { capabilities = ["read"] }
path "secret/+/x" { capabilities = ["sudo", "create"] }
"#;

async fn write_policy(server: &TestServer, name: &str, text: &str) {
    let (status, body) = server
        .post(
            &format!("sys/policies/acl/{name}"),
            Some(&server.root),
            &json!({"policy": text}),
        )
        .await;
    assert_eq!(status, 204, "write policy {name}: {body}");
}

/// A token made by root: (token, accessor).
async fn create_token(server: &TestServer, body: Value) -> (String, String) {
    let (status, resp) = server
        .post("auth/token/create", Some(&server.root), &body)
        .await;
    assert_eq!(status, 200, "token create: {resp}");
    let text = |k: &str| resp["auth"][k].as_str().unwrap().to_string();
    (text("client_token"), text("accessor"))
}

fn data(body: &Value) -> &Value {
    &body["data"]
}

fn sorted_keys(map: &Value) -> Vec<String> {
    let mut keys: Vec<String> = map
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

#[tokio::test]
async fn capabilities_answer_per_path_as_vault_does() {
    let server = TestServer::start().await;
    server.enable_jwt("jwt").await;
    write_policy(&server, "readers", READERS).await;
    let (token, accessor) = create_token(&server, json!({"policies": ["readers"]})).await;
    let root = Some(server.root.as_str());

    // By token: one key per path; sorted names; deny when nothing or a deny applies.
    let (status, body) = server
        .post(
            "sys/capabilities",
            root,
            &json!({"token": token, "paths": ["auth/jwt/role/demo", "auth/jwt/role/secret", "sys/auth", "secret/a/x"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        data(&body),
        &json!({
            "auth/jwt/role/demo": ["list", "read"],
            "auth/jwt/role/secret": ["deny"],
            "sys/auth": ["deny"],
            "secret/a/x": ["create", "sudo"],
        })
    );
    // The legacy top-level copies, as Vault sends them.
    assert_eq!(body["sys/auth"], json!(["deny"]));

    // One path also answers `capabilities`; `path` is the old spelling of `paths`.
    let (_, body) = server
        .post(
            "sys/capabilities",
            root,
            &json!({"token": token, "path": "auth/jwt/role/demo"}),
        )
        .await;
    assert_eq!(
        data(&body),
        &json!({"auth/jwt/role/demo": ["list", "read"], "capabilities": ["list", "read"]})
    );

    // By accessor: the same token's answer.
    let (status, body) = server
        .post(
            "sys/capabilities-accessor",
            root,
            &json!({"accessor": accessor, "paths": ["auth/jwt/role/demo"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(data(&body)["capabilities"], json!(["list", "read"]));

    // Self: the default policy allows it; the body's token is ignored.
    let (status, body) = server
        .post(
            "sys/capabilities-self",
            Some(&token),
            &json!({"token": server.root, "paths": "auth/jwt/role/x,sys/auth"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        data(&body),
        &json!({"auth/jwt/role/x": ["list", "read"], "sys/auth": ["deny"]})
    );
    // Root is root.
    let (_, body) = server
        .post(
            "sys/capabilities-self",
            root,
            &json!({"paths": ["anything/at/all"]}),
        )
        .await;
    assert_eq!(data(&body)["capabilities"], json!(["root"]));
    // A token with the default policy alone may ask about itself.
    let (plain, _) = create_token(&server, json!({"policies": ["default"]})).await;
    let (status, body) = server
        .post(
            "sys/capabilities-self",
            Some(&plain),
            &json!({"paths": ["sys/capabilities-self", "auth/token/lookup-self"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        data(&body),
        &json!({"sys/capabilities-self": ["update"], "auth/token/lookup-self": ["read"]})
    );
    // But not about another token.
    let (status, _) = server
        .post(
            "sys/capabilities",
            Some(&plain),
            &json!({"token": token, "paths": ["sys/auth"]}),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn capabilities_judge_the_spelling_a_request_is_judged_in() {
    let server = TestServer::start().await;
    server.enable_jwt("jwt").await;
    write_policy(&server, "readers", READERS).await;
    let (token, _) = create_token(&server, json!({"policies": ["readers"]})).await;
    let (status, body) = server
        .post(
            "sys/capabilities",
            Some(&server.root),
            &json!({"token": token, "paths": [
                "/auth/jwt/role/demo",
                "auth/jwt/role/",
                "auth/jwt/role",
                "sys/policies/acl/ADMIN",
                "sys/policies/acl/Readers",
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Keys as sent; a leading `/` dropped; a policy name lower-cased as its handler does
    // (DECISIONS D15), so the deny on `admin` answers for `ADMIN` too.
    assert_eq!(
        data(&body),
        &json!({
            "/auth/jwt/role/demo": ["list", "read"],
            "auth/jwt/role/": ["list", "read"],
            "auth/jwt/role": ["deny"],
            "sys/policies/acl/ADMIN": ["deny"],
            "sys/policies/acl/Readers": ["read"],
        })
    );
    // The request flow agrees: reading ADMIN is refused, Readers allowed.
    let (status, _) = server.get("sys/policies/acl/ADMIN", Some(&token)).await;
    assert_eq!(status, 403);
    let (status, _) = server.get("sys/policies/acl/Readers", Some(&token)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn capabilities_refuse_bad_input_with_vaults_texts() {
    let server = TestServer::start().await;
    let root = Some(server.root.as_str());
    let cases = [
        (
            "sys/capabilities",
            json!({"paths": ["a"]}),
            "1 error occurred:\n\t* no token found\n\n",
        ),
        (
            "sys/capabilities",
            json!({"token": "hvs.nope"}),
            "paths must be supplied",
        ),
        (
            "sys/capabilities",
            json!({"token": "hvs.nope", "paths": ["a"]}),
            "1 error occurred:\n\t* invalid token\n\n",
        ),
        ("sys/capabilities-self", json!({}), "paths must be supplied"),
        (
            "sys/capabilities-self",
            json!({"paths": []}),
            "paths must be supplied",
        ),
        (
            "sys/capabilities-self",
            json!({"paths": [""]}),
            "1 error occurred:\n\t* missing path\n\n",
        ),
        (
            "sys/capabilities-accessor",
            json!({"paths": ["a"]}),
            "missing accessor",
        ),
        (
            "sys/capabilities-accessor",
            json!({"accessor": "nope"}),
            "1 error occurred:\n\t* invalid accessor\n\n",
        ),
    ];
    for (path, body, message) in cases {
        let (status, resp) = server.post(path, root, &body).await;
        assert_eq!(status, 400, "{path} {body}: {resp}");
        assert_eq!(error_message(&resp), message, "{path} {body}");
    }
    let (status, resp) = server
        .post("sys/capabilities-self", root, &json!({"paths": {"a": 1}}))
        .await;
    assert_eq!(status, 400, "{resp}");
    let (status, _) = server.get("sys/capabilities-self", root).await;
    assert_eq!(status, 405);
    let (status, _) = server
        .post("sys/capabilities-self", None, &json!({"paths": ["a"]}))
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_mount_table_shows_the_builtin_mounts() {
    let server = TestServer::start().await;
    server.enable_jwt("team/a/jwt").await;
    let root = Some(server.root.as_str());

    let (status, list) = server.get("sys/mounts", root).await;
    assert_eq!(status, 200, "{list}");
    let mounts = data(&list).as_object().unwrap();
    assert_eq!(sorted_keys(data(&list)), ["identity/", "sys/"], "{list}");
    let sys = &mounts["sys/"];
    assert_eq!(sys["type"], "system");
    assert!(sys["accessor"].as_str().unwrap().starts_with("system_"));
    assert_eq!(sys["options"], Value::Null);
    assert_eq!(sys["seal_wrap"], true);
    assert_eq!(
        sys["config"]["passthrough_request_headers"],
        json!(["Accept"])
    );
    assert_eq!(mounts["identity/"]["type"], "identity");

    // The same entries every time (made once per store).
    let (_, again) = server.get("sys/mounts", root).await;
    assert_eq!(data(&again), data(&list));
    let (_, read) = server.get("sys/mounts/sys", root).await;
    assert_eq!(data(&read), sys);
    let (_, under) = server.get("sys/mounts/sys/policy/x", root).await;
    assert_eq!(data(&under), sys);
    let (status, tune) = server.get("sys/mounts/identity/tune", root).await;
    assert_eq!(status, 200, "{tune}");
    assert_eq!(data(&tune)["description"], "identity store");
    assert_eq!(data(&tune)["max_lease_ttl"], 768 * 3600);

    // Auth methods by their full path, the longest mount serving it.
    let (status, jwt) = server.get("sys/mounts/auth/team/a/jwt/role/x", root).await;
    assert_eq!(status, 200, "{jwt}");
    assert_eq!(data(&jwt)["type"], "jwt");
    let (_, token) = server.get("sys/mounts/auth/token", root).await;
    assert_eq!(data(&token)["type"], "token");

    let refusals = [
        (
            "GET",
            "sys/mounts/nope",
            json!(null),
            "No secret engine mount at nope/",
        ),
        (
            "GET",
            "sys/mounts/auth",
            json!(null),
            "No secret engine mount at auth/",
        ),
        (
            "GET",
            "sys/mounts/nope/tune",
            json!(null),
            "cannot fetch sysview for path \"nope/\"",
        ),
        (
            "POST",
            "sys/mounts/kv",
            json!({"type": "kv"}),
            "plugin not found in the catalog: kv",
        ),
        (
            "POST",
            "sys/mounts/kv",
            json!({}),
            "backend type must be specified as a string",
        ),
        (
            "POST",
            "sys/mounts/sys",
            json!({"type": "kv"}),
            "cannot mount \"sys/\"",
        ),
        (
            "POST",
            "sys/mounts/auth/x",
            json!({"type": "jwt"}),
            "cannot mount \"auth/x/\"",
        ),
        (
            "DELETE",
            "sys/mounts/identity",
            json!(null),
            "cannot unmount \"identity/\"",
        ),
        (
            "DELETE",
            "sys/mounts/auth/team/a/jwt",
            json!(null),
            "cannot unmount \"auth/team/a/jwt/\"",
        ),
    ];
    for (method, path, body, message) in refusals {
        let (status, resp) = match method {
            "GET" => server.get(path, root).await,
            "POST" => server.post(path, root, &body).await,
            _ => server.delete(path, root).await,
        };
        assert_eq!(status, 400, "{method} {path}: {resp}");
        assert_eq!(error_message(&resp), message);
    }
    let (status, _) = server.delete("sys/mounts/nothing-here", root).await;
    assert_eq!(status, 204);
    // Still mounted.
    let (status, _) = server.get("sys/auth/team/a/jwt", root).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn sys_auth_lists_and_reads_the_token_store() {
    let server = TestServer::start().await;
    let root = Some(server.root.as_str());
    let (status, list) = server.get("sys/auth", root).await;
    assert_eq!(status, 200, "{list}");
    let token = &data(&list)["token/"];
    assert_eq!(token["type"], "token");
    assert_eq!(token["description"], "token based credentials");
    assert!(token["accessor"]
        .as_str()
        .unwrap()
        .starts_with("auth_token_"));
    assert_eq!(token["options"], Value::Null);
    assert_eq!(token["config"]["token_type"], "default-service");
    assert!(token.get("deprecation_status").is_none());

    let (status, read) = server.get("sys/auth/token", root).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(data(&read), token);
    for path in ["sys/auth/token/tune", "sys/mounts/auth/token/tune"] {
        let (status, tune) = server.get(path, root).await;
        assert_eq!(status, 200, "{path}: {tune}");
        assert_eq!(
            data(&tune),
            &json!({
                "default_lease_ttl": 768 * 3600,
                "max_lease_ttl": 768 * 3600,
                "force_no_cache": false,
                "token_type": "default-service",
                "description": "token based credentials",
            })
        );
    }
    // Tuned like any auth mount (but its token type): its TTLs apply to auth/token/create.
    let (status, resp) = server
        .post("sys/auth/token/tune", root, &json!({"token_type": "batch"}))
        .await;
    assert_eq!(status, 400, "{resp}");
    assert_eq!(
        error_message(&resp),
        "'token_type' cannot be set for 'token' or 'ns_token' auth mounts"
    );
    let (status, resp) = server
        .post(
            "sys/auth/token/tune",
            root,
            &json!({"default_lease_ttl": "1h", "max_lease_ttl": "2h", "description": "mine"}),
        )
        .await;
    assert_eq!(status, 204, "{resp}");
    let (_, tune) = server.get("sys/auth/token/tune", root).await;
    assert_eq!(data(&tune)["default_lease_ttl"], 3600);
    assert_eq!(data(&tune)["max_lease_ttl"], 7200);
    assert_eq!(data(&tune)["description"], "mine");
    let (_, read) = server.get("sys/auth/token", root).await;
    assert_eq!(data(&read)["config"]["default_lease_ttl"], 3600);
    let (status, created) = server
        .post("auth/token/create", root, &json!({"policies": ["default"]}))
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["auth"]["lease_duration"], 3600);
    let (_, created) = server
        .post(
            "auth/token/create",
            root,
            &json!({"policies": ["default"], "ttl": "5h"}),
        )
        .await;
    assert_eq!(created["auth"]["lease_duration"], 7200, "{created}");
    assert!(created["warnings"][0].as_str().unwrap().contains("capped"));

    // Still neither enabled again nor disabled.
    let (status, _) = server
        .post("sys/auth/token", root, &json!({"type": "jwt"}))
        .await;
    assert_eq!(status, 400);
    let (status, _) = server.delete("sys/auth/token", root).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_ui_listing_shows_what_the_caller_may_see() {
    let server = TestServer::start().await;
    let root = Some(server.root.as_str());
    server.enable_jwt("public").await;
    server.enable_jwt("hidden").await;
    server.enable_jwt("team/jwt").await;
    let (status, body) = server
        .post(
            "sys/auth/public/tune",
            root,
            &json!({"listing_visibility": "unauth", "description": "log in here"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    write_policy(
        &server,
        "team",
        r#"path "auth/team/+/role/*" { capabilities = ["read"] }"#,
    )
    .await;

    // No token: the unauth mounts only, in short.
    let (status, body) = server.get("sys/internal/ui/mounts", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        data(&body),
        &json!({
            "auth": {"public/": {"type": "jwt", "description": "log in here", "options": {}}},
            "secret": {},
        })
    );

    // A token of the team policy, with a single use it will still have afterwards.
    let (team, _) = create_token(&server, json!({"policies": ["team"], "num_uses": 1})).await;
    let (status, body) = server.get("sys/internal/ui/mounts", Some(&team)).await;
    assert_eq!(status, 200, "{body}");
    let auth = &data(&body)["auth"];
    assert_eq!(
        sorted_keys(auth),
        ["public/", "team/jwt/", "token/"],
        "{body}"
    );
    assert_eq!(auth["team/jwt/"]["type"], "jwt");
    assert!(
        auth["public/"]["accessor"].is_string(),
        "in full with a token"
    );
    assert_eq!(sorted_keys(&data(&body)["secret"]), ["sys/"], "{body}");

    // One mount: needs a token whose policies reach it.
    let (status, one) = server
        .get("sys/internal/ui/mounts/auth/team/jwt/role/x", Some(&team))
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(data(&one)["path"], "team/jwt/");
    assert_eq!(data(&one)["type"], "jwt");
    let (status, one) = server.get("sys/internal/ui/mounts/sys", Some(&team)).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(data(&one)["path"], "sys/");
    let (status, denied) = server
        .get("sys/internal/ui/mounts/auth/hidden", Some(&team))
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        error_message(&denied),
        "preflight capability check returned 403, please ensure client's policies grant access to path \"auth/hidden/\""
    );
    let (status, denied) = server.get("sys/internal/ui/mounts/auth/public", None).await;
    assert_eq!(status, 403);
    assert_eq!(error_message(&denied), "permission denied");
    let (status, _) = server
        .get("sys/internal/ui/mounts", Some("hvs.not-a-token"))
        .await;
    assert_eq!(status, 403);

    // Looking was free: the single use is still there.
    let (status, body) = server.get("auth/token/lookup-self", Some(&team)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.get("auth/token/lookup-self", Some(&team)).await;
    assert_eq!(status, 403);

    // Root sees everything.
    let (_, body) = server.get("sys/internal/ui/mounts", root).await;
    let auth = data(&body)["auth"].as_object().unwrap();
    assert_eq!(auth.len(), 4, "{body}");
    let (status, _) = server.get("sys/internal/ui/mounts/auth/hidden", root).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_entity_is_looked_up_by_any_of_its_names() {
    let server = TestServer::start().await;
    let key = Key::rsa();
    seed_mount(&server, "jwt", &key).await;
    let jwt = key.sign_claims(key.alg(), &seed_claims("alice"));
    let (status, login) = server.login("jwt", "demo", &jwt).await;
    assert_eq!(status, 200, "{login}");
    let entity_id = login["auth"]["entity_id"].as_str().unwrap().to_string();
    let root = Some(server.root.as_str());
    let (status, entity) = server
        .get(&format!("identity/entity/id/{entity_id}"), root)
        .await;
    assert_eq!(status, 200, "{entity}");
    let name = data(&entity)["name"].as_str().unwrap().to_string();
    let alias_id = data(&entity)["aliases"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, auth) = server.get("sys/auth", root).await;
    let accessor = data(&auth)["jwt/"]["accessor"]
        .as_str()
        .unwrap()
        .to_string();

    for body in [
        json!({"id": entity_id}),
        json!({"name": name}),
        json!({"name": name.to_uppercase()}),
        json!({"alias_id": alias_id}),
        json!({"alias_name": "alice", "alias_mount_accessor": accessor}),
    ] {
        let (status, found) = server.post("identity/lookup/entity", root, &body).await;
        assert_eq!(status, 200, "{body}: {found}");
        assert_eq!(data(&found), data(&entity), "{body}");
    }
    for body in [
        json!({"id": "00000000-0000-0000-0000-000000000000"}),
        json!({"id": ""}),
        json!({"name": "nobody"}),
        json!({"alias_id": entity_id}),
        json!({"alias_name": "bob", "alias_mount_accessor": accessor}),
        json!({"alias_name": "alice", "alias_mount_accessor": "auth_jwt_00000000"}),
    ] {
        let (status, found) = server.post("identity/lookup/entity", root, &body).await;
        assert_eq!(status, 204, "{body}: {found}");
    }
    for (body, message) in [
        (json!({}), "query parameter not supplied"),
        (
            json!({"id": entity_id, "name": name}),
            "query parameter conflict; please supply distinct set of query parameters",
        ),
        (
            json!({"alias_name": "", "alias_mount_accessor": ""}),
            "query parameter conflict; please supply distinct set of query parameters",
        ),
        (
            json!({"alias_name": "alice"}),
            "both 'alias_name' and 'alias_mount_accessor' needs to be set",
        ),
    ] {
        let (status, resp) = server.post("identity/lookup/entity", root, &body).await;
        assert_eq!(status, 400, "{body}: {resp}");
        assert_eq!(error_message(&resp), message, "{body}");
    }
    // A token without a policy for it may not look.
    let (plain, _) = create_token(&server, json!({"policies": ["default"]})).await;
    let (status, _) = server
        .post(
            "identity/lookup/entity",
            Some(&plain),
            &json!({"id": entity_id}),
        )
        .await;
    assert_eq!(status, 403);
}
