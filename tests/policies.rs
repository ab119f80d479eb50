//! ACL policies over HTTP: an operator hands a colleague a non-root token whose policy lets
//! them manage roles but not the mount; each capability allowed and denied; bad policies
//! refused; a policy change applies to the next request.

use authmount_testkit::{error_message, seed_mount, Key, TestServer};
use serde_json::{json, Value};

const ROLE_ADMIN: &str = r#"
path "auth/jwt/role/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
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

/// A token holding exactly `policies` (plus `default`), made by root through auth/token/create.
async fn token_with(server: &TestServer, policies: &[&str]) -> String {
    let (status, body) = server
        .post(
            "auth/token/create",
            Some(&server.root),
            &json!({"policies": policies, "ttl": "1h"}),
        )
        .await;
    assert_eq!(status, 200, "token create: {body}");
    body["auth"]["client_token"].as_str().unwrap().to_string()
}

fn role() -> Value {
    json!({"user_claim": "sub", "bound_subject": "x"})
}

async fn status(server: &TestServer, method: &str, path: &str, token: &str) -> u16 {
    let t = Some(token);
    match method {
        "read" => server.get(path, t).await.0,
        "list" => server.list(path, t).await.0,
        "write" => server.post(path, t, &role()).await.0,
        "delete" => server.delete(path, t).await.0,
        other => panic!("unknown method {other}"),
    }
}

#[tokio::test]
async fn a_role_admin_manages_roles_but_not_the_mount() {
    let server = TestServer::start().await;
    seed_mount(&server, "jwt", &Key::rsa()).await;
    write_policy(&server, "role-admin", ROLE_ADMIN).await;
    let colleague = token_with(&server, &["role-admin"]).await;
    let c = colleague.as_str();
    // Allowed: create, read, update, list, delete roles.
    assert_eq!(status(&server, "write", "auth/jwt/role/new", c).await, 204);
    assert_eq!(status(&server, "read", "auth/jwt/role/new", c).await, 200);
    assert_eq!(status(&server, "write", "auth/jwt/role/new", c).await, 204);
    assert_eq!(status(&server, "list", "auth/jwt/role", c).await, 200);
    assert_eq!(status(&server, "delete", "auth/jwt/role/new", c).await, 204);
    // Denied: the config, the mount table, other mounts, tokens of others.
    assert_eq!(status(&server, "read", "auth/jwt/config", c).await, 403);
    let (st, body) = server.post("auth/jwt/config", Some(c), &json!({})).await;
    assert_eq!(st, 403, "{body}");
    // A live token refused by its policies gets Vault's multi-error shape; no token at all
    // gets the plain text.
    assert_eq!(
        error_message(&body),
        "1 error occurred:\n\t* permission denied\n\n"
    );
    let (st, body) = server.post("auth/jwt/config", None, &json!({})).await;
    assert_eq!(
        (st, error_message(&body).as_str()),
        (403, "permission denied")
    );
    assert_eq!(status(&server, "delete", "sys/auth/jwt", c).await, 403);
    let (st, _) = server
        .post("sys/auth/other", Some(c), &json!({"type": "jwt"}))
        .await;
    assert_eq!(st, 403);
    assert_eq!(status(&server, "read", "sys/auth", c).await, 403);
    assert_eq!(
        status(&server, "read", "sys/policies/acl/role-admin", c).await,
        403
    );
    // The mount is still there for root.
    let (st, body) = server.get("sys/auth", Some(&server.root)).await;
    assert_eq!(st, 200);
    assert!(body["data"]["jwt/"].is_object(), "{body}");
}

#[tokio::test]
async fn each_capability_is_needed_for_its_operation() {
    let server = TestServer::start().await;
    seed_mount(&server, "jwt", &Key::rsa()).await;
    server.write_ok("auth/jwt/role/existing", &role()).await;
    let cases: [(&str, &[&str]); 5] = [
        ("create", &["write-new"]),
        ("read", &["read"]),
        ("update", &["write-existing"]),
        ("delete", &["delete"]),
        ("list", &["list"]),
    ];
    for (cap, allowed) in cases {
        let name = format!("only-{cap}");
        write_policy(
            &server,
            &name,
            &format!(r#"path "auth/jwt/role/*" {{ capabilities = ["{cap}"] }}"#),
        )
        .await;
        let token = token_with(&server, &[name.as_str()]).await;
        for op in ["write-new", "read", "write-existing", "delete", "list"] {
            let new_role = format!("auth/jwt/role/new-{cap}");
            let got = match op {
                "write-new" => status(&server, "write", &new_role, &token).await,
                "read" => status(&server, "read", "auth/jwt/role/existing", &token).await,
                "write-existing" => {
                    status(&server, "write", "auth/jwt/role/existing", &token).await
                }
                "delete" => status(&server, "delete", "auth/jwt/role/gone", &token).await,
                _ => status(&server, "list", "auth/jwt/role", &token).await,
            };
            let want = if allowed.contains(&op) {
                [200, 204]
            } else {
                [403, 403]
            };
            assert!(
                want.contains(&got),
                "policy {cap}: {op} gave {got}, want {want:?}"
            );
        }
    }
}

#[tokio::test]
async fn deny_wins_and_sudo_guards_the_mount_table() {
    let server = TestServer::start().await;
    seed_mount(&server, "jwt", &Key::rsa()).await;
    write_policy(
        &server,
        "mixed",
        r#"
        path "auth/jwt/*" { capabilities = ["read", "update", "list"] }
        path "auth/jwt/role/demo" { capabilities = ["deny"] }
        path "sys/auth/*" { capabilities = ["create", "update", "delete"] }
        path "sys/auth/sudo/*" { capabilities = ["create", "update", "delete", "sudo"] }
        "#,
    )
    .await;
    let t = token_with(&server, &["mixed"]).await;
    assert_eq!(status(&server, "read", "auth/jwt/config", &t).await, 200);
    assert_eq!(status(&server, "read", "auth/jwt/role/demo", &t).await, 403);
    let (st, _) = server
        .post("sys/auth/plain/jwt", Some(&t), &json!({"type": "jwt"}))
        .await;
    assert_eq!(st, 403, "enabling needs sudo");
    let (st, body) = server
        .post("sys/auth/sudo/jwt", Some(&t), &json!({"type": "jwt"}))
        .await;
    assert_eq!(st, 204, "{body}");
}

#[tokio::test]
async fn a_policy_change_applies_to_the_next_request() {
    let server = TestServer::start().await;
    seed_mount(&server, "jwt", &Key::rsa()).await;
    write_policy(
        &server,
        "reader",
        r#"path "auth/jwt/role/*" { capabilities = ["read"] }"#,
    )
    .await;
    let t = token_with(&server, &["reader"]).await;
    assert_eq!(status(&server, "read", "auth/jwt/role/demo", &t).await, 200);
    write_policy(
        &server,
        "reader",
        r#"path "auth/jwt/role/*" { capabilities = ["list"] }"#,
    )
    .await;
    assert_eq!(status(&server, "read", "auth/jwt/role/demo", &t).await, 403);
    let (st, _) = server
        .delete("sys/policies/acl/reader", Some(&server.root))
        .await;
    assert_eq!(st, 204);
    assert_eq!(status(&server, "list", "auth/jwt/role", &t).await, 403);
}

#[tokio::test]
async fn bad_policies_are_refused_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let root = Some(server.root.as_str());
    write_policy(&server, "good", r#"path "a/*" { capabilities = ["read"] }"#).await;
    for bad in [
        r#"path "a/*" { capabilities = ["read" "#,
        r#"path "a/*" { capabilities = ["reed"] }"#,
        r#"path "a/*" { capabilities = "read" }"#,
        r#"secret "a/*" { capabilities = ["read"] }"#,
        "",
    ] {
        let (st, body) = server
            .post("sys/policies/acl/good", root, &json!({"policy": bad}))
            .await;
        assert_eq!(st, 400, "{bad:?}: {body}");
        assert!(!error_message(&body).is_empty());
    }
    let (st, body) = server.get("sys/policies/acl/good", root).await;
    assert_eq!(st, 200);
    assert_eq!(
        body["data"]["policy"],
        json!(r#"path "a/*" { capabilities = ["read"] }"#)
    );
    // Legacy path, list, and the built-ins.
    let (st, body) = server.get("sys/policy/good", root).await;
    assert_eq!(
        (st, body["data"]["rules"].is_string()),
        (200, true),
        "{body}"
    );
    // The legacy path takes `rules`, with Vault's deprecation warning.
    let (st, body) = server
        .post(
            "sys/policy/zeta",
            root,
            &json!({"rules": r#"path "z" { capabilities = ["read"] }"#}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body["warnings"],
        json!(["'rules' is deprecated, please use 'policy' instead"])
    );
    // Listed sorted, with root last as Vault lists it.
    let (st, body) = server.get("sys/policy", root).await;
    assert_eq!(st, 200);
    let names = json!(["default", "good", "zeta", "root"]);
    assert_eq!(body["data"]["policies"], names);
    let (st, body) = server.list("sys/policies/acl", root).await;
    assert_eq!((st, body["data"]["keys"].clone()), (200, names));
    let valid = json!({"policy": r#"path "a" { capabilities = ["read"] }"#});
    let (st, body) = server.post("sys/policies/acl/root", root, &valid).await;
    assert_eq!(st, 400);
    assert!(error_message(&body).contains("root"), "{body}");
    let (st, _) = server.delete("sys/policies/acl/default", root).await;
    assert_eq!(st, 400);
    let (st, _) = server.get("sys/policies/acl/missing", root).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn a_login_token_without_policies_may_only_serve_itself() {
    let server = TestServer::start().await;
    let key = Key::rsa();
    seed_mount(&server, "jwt", &key).await;
    let (st, body) = server
        .login(
            "jwt",
            "demo",
            &key.sign_claims("RS256", &authmount_testkit::seed_claims("alice")),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let t = body["auth"]["client_token"].as_str().unwrap();
    assert_eq!(server.get("auth/token/lookup-self", Some(t)).await.0, 200);
    assert_eq!(server.get("auth/jwt/role/demo", Some(t)).await.0, 403);
    assert_eq!(
        server
            .post("auth/token/create", Some(t), &json!({}))
            .await
            .0,
        403
    );
    assert_eq!(server.get("sys/auth", Some(t)).await.0, 403);
}
