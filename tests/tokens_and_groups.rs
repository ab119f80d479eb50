//! Tokens and identity over HTTP: the token endpoints by token and by accessor, child
//! tokens revoked with their parent, use counts, bad token parameters; external groups whose
//! policies reach the token through the groups claim; entity and alias reads.

use authmount_testkit::{error_message, seed_claims, seed_mount, Key, TestServer};
use serde_json::{json, Value};

async fn create(server: &TestServer, token: &str, body: Value) -> (u16, Value) {
    server.post("auth/token/create", Some(token), &body).await
}

fn client_token(body: &Value) -> String {
    body["auth"]["client_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {body}"))
        .to_string()
}

#[tokio::test]
async fn tokens_can_be_looked_up_renewed_and_revoked_by_accessor() {
    let server = TestServer::start().await;
    let root = server.root.clone();
    let (st, body) = create(
        &server,
        &root,
        json!({"policies": ["p1"], "ttl": "10m", "meta": {"team": "a"}}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["auth"]["policies"], json!(["default", "p1"]));
    assert_eq!(body["auth"]["lease_duration"], json!(600));
    assert_eq!(body["auth"]["orphan"], json!(false));
    let accessor = body["auth"]["accessor"].as_str().unwrap().to_string();
    let (st, body) = server
        .post(
            "auth/token/lookup-accessor",
            Some(&root),
            &json!({"accessor": accessor}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body["data"]["id"],
        json!(""),
        "the token itself is never shown by accessor"
    );
    assert_eq!(body["data"]["meta"]["team"], json!("a"));
    assert_eq!(body["data"]["display_name"], json!("token"));
    let (st, body) = server
        .post(
            "auth/token/renew-accessor",
            Some(&root),
            &json!({"accessor": accessor, "increment": "5m"}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["auth"]["lease_duration"], json!(300));
    assert_eq!(body["auth"]["client_token"], json!(""));
    let (st, _) = server
        .post(
            "auth/token/revoke-accessor",
            Some(&root),
            &json!({"accessor": accessor}),
        )
        .await;
    assert_eq!(st, 204);
    let (st, body) = server
        .post(
            "auth/token/lookup-accessor",
            Some(&root),
            &json!({"accessor": accessor}),
        )
        .await;
    assert_eq!(st, 400, "{body}");
}

#[tokio::test]
async fn revoking_a_parent_revokes_its_children_but_not_orphans() {
    let server = TestServer::start().await;
    let root = server.root.clone();
    let parent = client_token(
        &create(&server, &root, json!({"policies": ["p1", "p2"]}))
            .await
            .1,
    );
    let (st, body) = create(&server, &parent, json!({"policies": ["p1"]})).await;
    assert_eq!(
        st, 403,
        "a token without a policy on auth/token/create cannot create: {body}"
    );
    // Give the parent a policy that allows creating tokens.
    let creator = r#"path "auth/token/create" { capabilities = ["update"] }"#;
    let (st, _) = server
        .post(
            "sys/policies/acl/p1",
            Some(&root),
            &json!({"policy": creator}),
        )
        .await;
    assert_eq!(st, 204);
    let (st, body) = create(&server, &parent, json!({"policies": ["p1", "admin"]})).await;
    assert_eq!(st, 400, "{body}");
    assert!(error_message(&body).contains("subset"), "{body}");
    let child = client_token(
        &create(&server, &parent, json!({"policies": ["p1"]}))
            .await
            .1,
    );
    let orphan = client_token(&create(&server, &root, json!({"policies": ["p1"]})).await.1);
    assert_eq!(
        server.get("auth/token/lookup-self", Some(&child)).await.0,
        200
    );
    let (st, _) = server
        .post("auth/token/revoke-self", Some(&parent), &json!({}))
        .await;
    assert_eq!(st, 204);
    assert_eq!(
        server.get("auth/token/lookup-self", Some(&child)).await.0,
        403
    );
    assert_eq!(
        server.get("auth/token/lookup-self", Some(&orphan)).await.0,
        200
    );
}

#[tokio::test]
async fn revoke_orphan_keeps_the_children_alive_as_orphans() {
    let server = TestServer::start().await;
    let root = server.root.clone();
    let creator = r#"path "auth/token/create" { capabilities = ["update"] }"#;
    let (st, _) = server
        .post(
            "sys/policies/acl/creator",
            Some(&root),
            &json!({"policy": creator}),
        )
        .await;
    assert_eq!(st, 204);
    let token = |body: (u16, Value)| client_token(&body.1);
    let parent = token(create(&server, &root, json!({"policies": ["creator"]})).await);
    let child = token(create(&server, &parent, json!({"policies": ["creator"]})).await);
    let grandchild = token(create(&server, &child, json!({"policies": ["creator"]})).await);
    let (st, body) = server
        .post(
            "auth/token/revoke-orphan",
            Some(&root),
            &json!({"token": parent}),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    assert_eq!(
        server.get("auth/token/lookup-self", Some(&parent)).await.0,
        403
    );
    let (st, body) = server.get("auth/token/lookup-self", Some(&child)).await;
    assert_eq!(
        (st, body["data"]["orphan"].clone()),
        (200, json!(true)),
        "{body}"
    );
    // The orphan's own children still go with it.
    let (st, _) = server
        .post("auth/token/revoke-self", Some(&child), &json!({}))
        .await;
    assert_eq!(st, 204);
    assert_eq!(
        server
            .get("auth/token/lookup-self", Some(&grandchild))
            .await
            .0,
        403
    );
}

#[tokio::test]
async fn a_token_dies_after_its_last_use() {
    let server = TestServer::start().await;
    let (st, body) = create(&server, &server.root, json!({"num_uses": 2})).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["auth"]["num_uses"], json!(2));
    let t = client_token(&body);
    let (st, body) = server.get("auth/token/lookup-self", Some(&t)).await;
    assert_eq!((st, body["data"]["num_uses"].clone()), (200, json!(1)));
    assert_eq!(server.get("auth/token/lookup-self", Some(&t)).await.0, 200);
    assert_eq!(server.get("auth/token/lookup-self", Some(&t)).await.0, 403);
    // A renewal that takes the last use renews nothing and brings nothing back (Vault
    // answers it 400 `token not found`).
    let (_, body) = create(&server, &server.root, json!({"num_uses": 1, "ttl": "1h"})).await;
    let t = client_token(&body);
    let (st, body) = server
        .post("auth/token/renew-self", Some(&t), &json!({}))
        .await;
    assert_eq!(
        (st, error_message(&body)),
        (400, "token not found".into()),
        "{body}"
    );
    assert_eq!(server.get("auth/token/lookup-self", Some(&t)).await.0, 403);
}

#[tokio::test]
async fn bad_token_parameters_are_refused() {
    let server = TestServer::start().await;
    let (st, resp) = create(&server, &server.root, json!({"policies": {"a": 1}})).await;
    assert_eq!(st, 400, "{resp}");
    // OpenBao 2.7.2's answers, text for text (Go's duration messages, no field prefix).
    for (body, message) in [
        (json!({"num_uses": -1}), "number of uses cannot be negative"),
        (
            json!({"ttl": "tomorrow"}),
            r#"time: invalid duration "tomorrow""#,
        ),
        (
            json!({"ttl": "1hr"}),
            r#"time: unknown unit "hr" in duration "1hr""#,
        ),
        (
            json!({"explicit_max_ttl": "x", "period": "y"}),
            r#"time: invalid duration "x""#,
        ),
        (json!({"ttl": -5}), "ttl must be positive"),
        (json!({"ttl": "-5s"}), "ttl must be positive"),
        (json!({"lease": "-5"}), "lease must be positive"),
        (
            json!({"type": "weird", "ttl": "x"}),
            "invalid 'token_type' value",
        ),
        (json!({"type": "default"}), "invalid 'token_type' value"),
        (
            json!({"type": "batch", "num_uses": 2, "period": "1h"}),
            r#"batch tokens cannot have "num_uses" set"#,
        ),
        (
            json!({"type": "batch", "period": "1h"}),
            r#"batch tokens cannot have "period" set"#,
        ),
        (
            json!({"type": "batch", "explicit_max_ttl": "1h"}),
            r#"batch tokens cannot have "explicit_max_ttl" set"#,
        ),
        (
            json!({"type": "batch"}),
            "batch tokens cannot be root tokens",
        ),
    ] {
        let (st, resp) = create(&server, &server.root, body.clone()).await;
        assert_eq!(
            (st, error_message(&resp)),
            (400, message.to_string()),
            "{body}"
        );
    }
    // Seconds as a number or a string, days, and Go durations are taken.
    for ttl in [json!(600), json!("600"), json!("1.5h"), json!("2d")] {
        let (st, resp) = create(&server, &server.root, json!({"ttl": ttl})).await;
        assert_eq!(st, 200, "{ttl}: {resp}");
    }
}

/// Lookups, renewals and revocations answer as OpenBao 2.7.2 does: fields left out when
/// unset, `auth/token/lookup` as a read and without a token, Vault's error texts.
#[tokio::test]
async fn token_lookups_answer_as_openbao() {
    let server = TestServer::start().await;
    let root = server.root.clone();
    // A dev root token given by id is made as by auth/token/create, as in Vault.
    let (_, own) = server.get("auth/token/lookup-self", Some(&root)).await;
    assert_eq!(
        (&own["data"]["display_name"], &own["data"]["path"]),
        (&json!("token"), &json!("auth/token/create")),
        "{own}"
    );
    // No meta given: metadata null, meta null; an empty meta stays empty.
    let (st, body) = create(&server, &root, json!({"ttl": "1h"})).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["auth"]["metadata"], Value::Null, "{body}");
    let plain = client_token(&body);
    let (_, body) = create(&server, &root, json!({"ttl": "1h", "meta": {}})).await;
    assert_eq!(body["auth"]["metadata"], json!({}), "{body}");
    let with_empty_meta = client_token(&body);
    let (st, lookup) = server
        .get(&format!("auth/token/lookup?token={plain}"), Some(&root))
        .await;
    assert_eq!(st, 200, "a read with ?token=: {lookup}");
    let data = &lookup["data"];
    assert_eq!(data["id"], json!(plain));
    assert_eq!(data["meta"], Value::Null);
    for unset in [
        "bound_cidrs",
        "period",
        "last_renewal_time",
        "last_renewal",
        "identity_policies",
    ] {
        assert!(data.get(unset).is_none(), "{unset} is left out: {lookup}");
    }
    let (_, lookup) = server
        .post(
            "auth/token/lookup",
            Some(&root),
            &json!({"token": with_empty_meta}),
        )
        .await;
    assert_eq!(lookup["data"]["meta"], json!({}));
    // Without a token, the caller's own.
    for (st, lookup) in [
        server
            .post("auth/token/lookup", Some(&plain), &json!({}))
            .await,
        server.get("auth/token/lookup", Some(&plain)).await,
    ] {
        assert_eq!(
            (st, lookup["data"]["id"].clone()),
            (200, json!(plain)),
            "{lookup}"
        );
    }
    // A renewal shows; a period shows.
    let (st, _) = server
        .post(
            "auth/token/renew-self",
            Some(&plain),
            &json!({"increment": "30m"}),
        )
        .await;
    assert_eq!(st, 200);
    let (_, lookup) = server.get("auth/token/lookup-self", Some(&plain)).await;
    assert!(lookup["data"]["last_renewal_time"].is_i64(), "{lookup}");
    assert!(lookup["data"]["last_renewal"].is_string(), "{lookup}");
    let (_, body) = create(&server, &root, json!({"period": "24h"})).await;
    let periodic = client_token(&body);
    let (_, lookup) = server.get("auth/token/lookup-self", Some(&periodic)).await;
    assert_eq!(lookup["data"]["period"], json!(86400), "{lookup}");

    // Vault's answers for what is unknown or missing.
    let unknown = json!({"token": "hvs.doesnotexist0000000000"});
    let (st, body) = server
        .post("auth/token/lookup", Some(&root), &unknown)
        .await;
    assert_eq!((st, error_message(&body)), (403, "bad token".to_string()));
    let no_accessor = json!({"accessor": "doesnotexist00000000000"});
    for path in ["auth/token/lookup-accessor", "auth/token/renew-accessor"] {
        let (st, body) = server.post(path, Some(&root), &no_accessor).await;
        assert_eq!(
            (st, error_message(&body)),
            (
                400,
                "1 error occurred:\n\t* invalid accessor\n\n".to_string()
            ),
            "{path}"
        );
        let (st, body) = server.post(path, Some(&root), &json!({})).await;
        assert_eq!(
            (st, error_message(&body)),
            (
                400,
                "1 error occurred:\n\t* missing accessor\n\n".to_string()
            ),
            "{path}"
        );
    }
    let (st, body) = server
        .post("auth/token/revoke-accessor", Some(&root), &no_accessor)
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body["warnings"],
        json!(["No token found with this accessor"])
    );
    for path in [
        "auth/token/renew",
        "auth/token/revoke",
        "auth/token/revoke-orphan",
    ] {
        let (st, body) = server.post(path, Some(&root), &json!({})).await;
        assert_eq!(
            (st, error_message(&body)),
            (400, "missing token ID".to_string()),
            "{path}"
        );
    }
    assert_eq!(
        server
            .post("auth/token/revoke", Some(&root), &unknown)
            .await
            .0,
        204
    );
    let (st, body) = server
        .post("auth/token/revoke-orphan", Some(&root), &unknown)
        .await;
    assert_eq!(
        (st, error_message(&body)),
        (400, "token to revoke not found".to_string())
    );
    let (st, body) = server.post("auth/token/renew", Some(&root), &unknown).await;
    assert_eq!(
        (st, error_message(&body)),
        (400, "token not found".to_string())
    );
}

#[tokio::test]
async fn external_group_policies_reach_the_token_through_the_groups_claim() {
    let server = TestServer::start().await;
    let root = server.root.clone();
    let key = Key::rsa();
    seed_mount(&server, "jwt", &key).await;
    let (group_id, accessor) = server
        .external_group("jwt", "eng", "engineering", &["eng-reader"])
        .await;
    let reader = r#"path "auth/jwt/role/*" { capabilities = ["read"] }"#;
    server
        .write_ok("sys/policies/acl/eng-reader", &json!({"policy": reader}))
        .await;

    // seed_claims carries "https://vault/groups": ["engineering"].
    let (st, body) = server
        .login(
            "jwt",
            "demo",
            &key.sign_claims("RS256", &seed_claims("alice")),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["auth"]["identity_policies"], json!(["eng-reader"]));
    assert_eq!(
        body["auth"]["policies"],
        json!(["default", "eng-reader", "webapps"])
    );
    assert_eq!(
        body["auth"]["token_policies"],
        json!(["default", "webapps"])
    );
    let token = client_token(&body);
    let entity_id = body["auth"]["entity_id"].as_str().unwrap().to_string();
    assert_eq!(server.get("auth/jwt/role/demo", Some(&token)).await.0, 200);

    // Entity and alias reads.
    let (st, entity) = server
        .get(&format!("identity/entity/id/{entity_id}"), Some(&root))
        .await;
    assert_eq!(st, 200, "{entity}");
    assert_eq!(entity["data"]["group_ids"], json!([group_id]));
    // The external group lists the entity that joined it through its group alias.
    let (st, group) = server
        .get(&format!("identity/group/id/{group_id}"), Some(&root))
        .await;
    assert_eq!(st, 200, "{group}");
    assert_eq!(
        group["data"]["member_entity_ids"],
        json!([entity_id]),
        "{group}"
    );
    let alias = &entity["data"]["aliases"][0];
    assert_eq!(alias["name"], json!("alice"));
    assert_eq!(alias["mount_accessor"], json!(accessor));
    assert_eq!(alias["metadata"]["role"], json!("demo"));
    let alias_id = alias["id"].as_str().unwrap();
    let (st, body) = server
        .get(&format!("identity/entity-alias/id/{alias_id}"), Some(&root))
        .await;
    assert_eq!(
        (st, body["data"]["canonical_id"].clone()),
        (200, json!(entity_id))
    );

    // A change of the group's policies applies to the next request of the token.
    let (st, _) = server
        .post(
            &format!("identity/group/id/{group_id}"),
            Some(&root),
            &json!({"policies": []}),
        )
        .await;
    assert_eq!(st, 204, "an update answers 204, as OpenBao does");
    assert_eq!(server.get("auth/jwt/role/demo", Some(&token)).await.0, 403);

    // A login whose groups claim no longer names the group loses the membership.
    let mut claims = seed_claims("alice");
    claims["https://vault/groups"] = json!(["other"]);
    let (st, _) = server
        .post(
            &format!("identity/group/id/{group_id}"),
            Some(&root),
            &json!({"policies": ["eng-reader"]}),
        )
        .await;
    assert_eq!(st, 204);
    let (st, body) = server
        .login("jwt", "demo", &key.sign_claims("RS256", &claims))
        .await;
    assert_eq!(st, 200, "{body}");
    assert!(body["auth"].get("identity_policies").is_none(), "{body}");
    let (_, group) = server
        .get(&format!("identity/group/id/{group_id}"), Some(&root))
        .await;
    assert_eq!(group["data"]["member_entity_ids"], json!([]), "{group}");
}

/// RFC 3339 with nanoseconds, as OpenBao writes identity times (`2026-01-02T03:04:05.1Z`).
fn assert_rfc3339(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    assert!(
        text.len() >= 20 && text.ends_with('Z') && &text[10..11] == "T",
        "not RFC 3339: {text}"
    );
}

#[tokio::test]
async fn identity_reads_have_openbao_shapes() {
    let server = TestServer::start().await;
    let root = server.root.clone();
    let key = Key::rsa();
    seed_mount(&server, "jwt", &key).await;
    let (_, mounts) = server.get("sys/auth", Some(&root)).await;
    let accessor = mounts["data"]["jwt/"]["accessor"]
        .as_str()
        .unwrap()
        .to_string();
    // A group written with nothing but a name: its unset fields are null.
    let (st, body) = server
        .post("identity/group", Some(&root), &json!({"name": "empty"}))
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, group) = server.get("identity/group/name/empty", Some(&root)).await;
    assert_eq!(st, 200, "{group}");
    let data = &group["data"];
    for null in [
        "member_entity_ids",
        "member_group_ids",
        "metadata",
        "parent_group_ids",
        "policies",
    ] {
        assert_eq!(data[null], Value::Null, "{null}: {group}");
    }
    assert_eq!(data["alias"], json!({}));
    assert_eq!(data["modify_index"], json!(1));
    assert_eq!(data["namespace_id"], json!("root"));
    assert_rfc3339(&data["creation_time"]);
    assert_eq!(data["creation_time"], data["last_update_time"]);
    // Written again through identity/group with its name: an update, 204.
    let (st, _) = server
        .post(
            "identity/group",
            Some(&root),
            &json!({"name": "empty", "policies": []}),
        )
        .await;
    assert_eq!(st, 204);
    let (_, group) = server.get("identity/group/name/empty", Some(&root)).await;
    assert_eq!(group["data"]["policies"], json!([]));
    assert_eq!(group["data"]["modify_index"], json!(2));

    // An external group with an alias; a login through it joins.
    let (_, body) = server
        .post(
            "identity/group",
            Some(&root),
            &json!({"name": "eng", "type": "external", "policies": ["eng-reader"]}),
        )
        .await;
    let group_id = body["data"]["id"].as_str().unwrap().to_string();
    let (_, body) = server
        .post(
            "identity/group-alias",
            Some(&root),
            &json!({"name": "engineering", "mount_accessor": accessor, "canonical_id": group_id}),
        )
        .await;
    let group_alias_id = body["data"]["id"].as_str().unwrap().to_string();
    let (_, group) = server
        .get(&format!("identity/group/id/{group_id}"), Some(&root))
        .await;
    assert_eq!(group["data"]["member_entity_ids"], Value::Null, "{group}");
    assert_eq!(
        group["data"]["modify_index"],
        json!(2),
        "the alias counts: {group}"
    );
    let alias = &group["data"]["alias"];
    assert_eq!(alias["mount_path"], json!("auth/jwt/"));
    assert_eq!(alias["merged_from_canonical_ids"], Value::Null);
    assert!(alias.get("namespace_id").is_none(), "{alias}");
    let (st, body) = server
        .login(
            "jwt",
            "demo",
            &key.sign_claims("RS256", &seed_claims("alice")),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let entity_id = body["auth"]["entity_id"].as_str().unwrap().to_string();
    let token = client_token(&body);
    let (_, group) = server
        .get(&format!("identity/group/id/{group_id}"), Some(&root))
        .await;
    assert_eq!(
        group["data"]["member_entity_ids"],
        json!([entity_id]),
        "{group}"
    );
    assert_eq!(group["data"]["modify_index"], json!(3), "{group}");
    let (_, alias) = server
        .get(
            &format!("identity/group-alias/id/{group_alias_id}"),
            Some(&root),
        )
        .await;
    assert_eq!(
        (
            &alias["data"]["custom_metadata"],
            &alias["data"]["local"],
            &alias["data"]["namespace_id"]
        ),
        (&Value::Null, &json!(false), &json!("root")),
        "{alias}"
    );
    assert_rfc3339(&alias["data"]["last_update_time"]);

    // The entity made by the login.
    let (st, entity) = server
        .get(&format!("identity/entity/id/{entity_id}"), Some(&root))
        .await;
    assert_eq!(st, 200, "{entity}");
    let data = &entity["data"];
    assert_eq!(data["direct_group_ids"], json!([group_id]));
    assert_eq!(data["group_ids"], json!([group_id]));
    assert_eq!(data["inherited_group_ids"], json!([]));
    assert_eq!(data["merged_entity_ids"], Value::Null);
    assert_eq!(data["metadata"], Value::Null);
    assert_eq!(data["policies"], json!([]));
    assert_eq!(data["namespace_id"], json!("root"));
    assert!(data.get("identity_policies").is_none(), "{entity}");
    assert_rfc3339(&data["creation_time"]);
    assert_rfc3339(&data["last_update_time"]);
    let alias = &data["aliases"][0];
    assert_eq!(alias["custom_metadata"], Value::Null);
    assert_eq!(alias["local"], json!(false));
    assert_eq!(alias["metadata"]["role"], json!("demo"));
    assert!(alias.get("namespace_id").is_none(), "{alias}");
    let alias_id = alias["id"].as_str().unwrap();
    let (_, alias) = server
        .get(&format!("identity/entity-alias/id/{alias_id}"), Some(&root))
        .await;
    assert_eq!(alias["data"]["namespace_id"], json!("root"), "{alias}");

    // LIST by id answers key_info.
    let (st, list) = server.list("identity/group/id", Some(&root)).await;
    assert_eq!(st, 200, "{list}");
    let info = &list["data"]["key_info"][&group_id];
    assert_eq!(
        (
            &info["name"],
            &info["num_member_entities"],
            &info["num_parent_groups"]
        ),
        (&json!("eng"), &json!(1), &json!(0)),
        "{list}"
    );
    assert_eq!(info["alias"]["name"], json!("engineering"));
    let (st, list) = server.list("identity/entity/id", Some(&root)).await;
    assert_eq!(st, 200, "{list}");
    let info = &list["data"]["key_info"][&entity_id];
    assert_eq!(info["aliases"][0]["name"], json!("alice"), "{list}");
    assert_eq!(info["name"], entity["data"]["name"]);

    // The group's policies show on the token's lookups and renewals while it exists...
    let reader = r#"path "auth/jwt/role/*" { capabilities = ["read"] }"#;
    server
        .write_ok("sys/policies/acl/eng-reader", &json!({"policy": reader}))
        .await;
    let (_, lookup) = server.get("auth/token/lookup-self", Some(&token)).await;
    assert_eq!(
        lookup["data"]["identity_policies"],
        json!(["eng-reader"]),
        "{lookup}"
    );
    assert_eq!(lookup["data"]["external_namespace_policies"], json!({}));
    // ...and no longer once it is deleted.
    let (st, _) = server
        .delete(&format!("identity/group/id/{group_id}"), Some(&root))
        .await;
    assert_eq!(st, 204);
    let (_, lookup) = server
        .post("auth/token/lookup", Some(&root), &json!({"token": token}))
        .await;
    assert!(
        lookup["data"].get("identity_policies").is_none(),
        "{lookup}"
    );
    assert!(
        lookup["data"].get("external_namespace_policies").is_none(),
        "{lookup}"
    );
    let (st, renewed) = server
        .post("auth/token/renew-self", Some(&token), &json!({}))
        .await;
    assert_eq!(st, 200, "{renewed}");
    assert!(
        renewed["auth"].get("identity_policies").is_none(),
        "{renewed}"
    );
    assert_eq!(renewed["auth"]["policies"], json!(["default", "webapps"]));
    assert_eq!(server.get("auth/jwt/role/demo", Some(&token)).await.0, 403);
}

#[tokio::test]
async fn entities_and_entity_aliases_are_managed_by_hand() {
    let server = TestServer::start().await;
    let root = Some(server.root.as_str());
    let key = Key::rsa();
    seed_mount(&server, "jwt", &key).await;
    let (_, mounts) = server.get("sys/auth", root).await;
    let accessor = mounts["data"]["jwt/"]["accessor"]
        .as_str()
        .unwrap()
        .to_string();
    let reader = r#"path "auth/jwt/role/*" { capabilities = ["read"] }"#;
    server
        .write_ok("sys/policies/acl/bob-reader", &json!({"policy": reader}))
        .await;

    // Create: 200 with id, name and null aliases.
    let (st, body) = server
        .post(
            "identity/entity",
            root,
            &json!({"name": "bob", "policies": ["bob-reader"], "metadata": {"team": "a"}}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["data"]["name"], json!("bob"));
    assert_eq!(body["data"]["aliases"], Value::Null);
    let bob = body["data"]["id"].as_str().unwrap().to_string();
    let (st, read) = server.get("identity/entity/name/BOB", root).await;
    assert_eq!(st, 200, "{read}");
    assert_eq!(read["data"]["id"], json!(bob));
    assert_eq!(read["data"]["metadata"], json!({"team": "a"}));
    assert_eq!(read["data"]["policies"], json!(["bob-reader"]));
    assert_eq!(read["data"]["aliases"], json!([]));
    // Updates answer 204: by name in the body, by id, by the name path.
    for (path, body) in [
        (
            "identity/entity".to_string(),
            json!({"name": "bob", "disabled": false}),
        ),
        (
            format!("identity/entity/id/{bob}"),
            json!({"metadata": {"team": "b"}}),
        ),
        (
            "identity/entity/name/bob".into(),
            json!({"policies": "bob-reader, other"}),
        ),
    ] {
        let (st, resp) = server.post(&path, root, &body).await;
        assert_eq!(st, 204, "{path}: {resp}");
    }
    let (_, read) = server.get(&format!("identity/entity/id/{bob}"), root).await;
    assert_eq!(read["data"]["metadata"], json!({"team": "b"}));
    assert_eq!(read["data"]["policies"], json!(["bob-reader", "other"]));
    // OpenBao's errors.
    for (path, body, message) in [
        (
            "identity/entity",
            json!({"name": "x", "policies": ["root"]}),
            "policies cannot contain root",
        ),
        (
            "identity/entity/id/nope",
            json!({"policies": ["a"]}),
            "entity not found from id",
        ),
        (
            "identity/entity-alias",
            json!({"name": "x"}),
            "'id' or 'mount_accessor' and 'name' must be provided",
        ),
        (
            "identity/entity-alias",
            json!({"name": "x", "mount_accessor": "auth_jwt_00000000"}),
            "invalid mount accessor \"auth_jwt_00000000\"",
        ),
        (
            "identity/entity-alias",
            json!({"name": "x", "mount_accessor": accessor, "canonical_id": "nope"}),
            "invalid canonical ID",
        ),
    ] {
        let (st, resp) = server.post(path, root, &body).await;
        assert_eq!(
            (st, error_message(&resp)),
            (400, message.to_string()),
            "{path} {body}"
        );
    }
    let (st, body) = server
        .post("identity/entity", root, &json!({"name": "carol"}))
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = server
        .post(
            &format!("identity/entity/id/{bob}"),
            root,
            &json!({"name": "Carol"}),
        )
        .await;
    assert_eq!(
        (st, error_message(&body)),
        (400, "entity name is already in use".into())
    );
    let (st, list) = server.list("identity/entity/name", root).await;
    assert_eq!(
        (st, list["data"]["keys"].clone()),
        (200, json!(["bob", "carol"]))
    );

    // An alias for bob: a login through it is bob's, with bob's policies.
    let (st, body) = server
        .post(
            "identity/entity-alias",
            root,
            &json!({"name": "alice", "mount_accessor": accessor, "canonical_id": bob}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["data"]["canonical_id"], json!(bob));
    let alias_id = body["data"]["id"].as_str().unwrap().to_string();
    let (st, body) = server
        .post(
            "identity/entity-alias",
            root,
            &json!({"name": "alice", "mount_accessor": accessor, "canonical_id": bob}),
        )
        .await;
    assert_eq!(st, 204, "the same alias again: {body}");
    let (st, body) = server
        .post(
            "identity/entity-alias",
            root,
            &json!({"name": "alice2", "mount_accessor": accessor, "canonical_id": bob}),
        )
        .await;
    assert_eq!(
        (st, error_message(&body)),
        (
            400,
            "Alias already exists for requested entity and mount accessor".into()
        )
    );
    let (st, list) = server.list("identity/entity-alias/id", root).await;
    assert_eq!(st, 200, "{list}");
    let info = &list["data"]["key_info"][&alias_id];
    assert_eq!(
        (
            &info["canonical_id"],
            &info["custom_metadata"],
            &info["metadata"],
            &info["mount_path"]
        ),
        (&json!(bob), &json!({}), &Value::Null, &json!("auth/jwt/")),
        "{list}"
    );
    let (st, body) = server
        .login(
            "jwt",
            "demo",
            &key.sign_claims("RS256", &seed_claims("alice")),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["auth"]["entity_id"], json!(bob));
    assert_eq!(
        body["auth"]["identity_policies"],
        json!(["bob-reader", "other"])
    );
    let token = client_token(&body);
    assert_eq!(server.get("auth/jwt/role/demo", Some(&token)).await.0, 200);

    // A disabled entity's tokens are refused, and so are its logins.
    let (st, _) = server
        .post(
            &format!("identity/entity/id/{bob}"),
            root,
            &json!({"disabled": true}),
        )
        .await;
    assert_eq!(st, 204);
    assert_eq!(
        server.get("auth/token/lookup-self", Some(&token)).await.0,
        403
    );
    let (st, _) = server
        .login(
            "jwt",
            "demo",
            &key.sign_claims("RS256", &seed_claims("alice")),
        )
        .await;
    assert_eq!(st, 403);

    // Delete: the entity and its alias are gone; a new login makes a new entity.
    let (st, _) = server
        .delete(&format!("identity/entity/id/{bob}"), root)
        .await;
    assert_eq!(st, 204);
    assert_eq!(
        server
            .get(&format!("identity/entity/id/{bob}"), root)
            .await
            .0,
        404
    );
    assert_eq!(
        server
            .get(&format!("identity/entity-alias/id/{alias_id}"), root)
            .await
            .0,
        404
    );
    let (st, _) = server.delete("identity/entity/name/carol", root).await;
    assert_eq!(st, 204);
    assert_eq!(
        server.delete("identity/entity/name/carol", root).await.0,
        204
    );
    assert_eq!(server.list("identity/entity/name", root).await.0, 404);
    let (st, body) = server
        .login(
            "jwt",
            "demo",
            &key.sign_claims("RS256", &seed_claims("alice")),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_ne!(body["auth"]["entity_id"], json!(bob));
}

#[tokio::test]
async fn group_writes_are_checked() {
    let server = TestServer::start().await;
    let root = Some(server.root.as_str());
    let (st, body) = server
        .post(
            "identity/group",
            root,
            &json!({"name": "g", "type": "internal"}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_string();
    server.enable_jwt("jwt").await;
    let (_, mounts) = server.get("sys/auth", root).await;
    let accessor = mounts["data"]["jwt/"]["accessor"].as_str().unwrap();
    // OpenBao 2.7.2's answers, text for text.
    let bad = [
        (
            "identity/group",
            json!({"name": "x", "type": "weird"}),
            "invalid group type \"weird\"",
        ),
        (
            "identity/group/name/g",
            json!({"type": "external"}),
            "group type cannot be changed",
        ),
        (
            "identity/group",
            json!({"name": "x", "policies": ["root"]}),
            "policies cannot contain root",
        ),
        (
            "identity/group-alias",
            json!({"name": "a", "mount_accessor": "auth_jwt_00000000", "canonical_id": id}),
            "invalid mount accessor \"auth_jwt_00000000\"",
        ),
        (
            "identity/group-alias",
            json!({"mount_accessor": accessor}),
            "missing alias name",
        ),
        (
            "identity/group-alias",
            json!({"name": "a"}),
            "missing mount_accessor",
        ),
        (
            "identity/group-alias",
            json!({"name": "a", "mount_accessor": accessor, "canonical_id": id}),
            "alias can't be set on an internal group",
        ),
        (
            "identity/group-alias",
            json!({"name": "a", "mount_accessor": accessor, "canonical_id": "nope"}),
            "invalid group ID given in 'canonical_id'",
        ),
    ];
    for (path, body, message) in bad {
        let (st, resp) = server.post(path, root, &body).await;
        assert_eq!(
            (st, error_message(&resp)),
            (400, message.to_string()),
            "{path} {body}"
        );
    }
    // Without canonical_id, a new external group is made for the alias (as OpenBao does);
    // a name taken on the mount makes none.
    let (st, body) = server
        .post(
            "identity/group-alias",
            root,
            &json!({"name": "ext", "mount_accessor": accessor}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let made = body["data"]["canonical_id"].as_str().unwrap().to_string();
    let (_, group) = server.get(&format!("identity/group/id/{made}"), root).await;
    assert_eq!(group["data"]["type"], json!("external"), "{group}");
    assert_eq!(group["data"]["alias"]["name"], json!("ext"), "{group}");
    let (st, body) = server
        .post(
            "identity/group-alias",
            root,
            &json!({"name": "ext", "mount_accessor": accessor}),
        )
        .await;
    assert_eq!(
        (st, error_message(&body)),
        (
            400,
            "combination of mount and group alias name is already in use".into()
        )
    );
    let (_, groups) = server.list("identity/group/id", root).await;
    assert_eq!(
        groups["data"]["keys"].as_array().unwrap().len(),
        2,
        "{groups}"
    );
    let (st, _) = server
        .delete(&format!("identity/group/id/{made}"), root)
        .await;
    assert_eq!(st, 204);
    let (st, body) = server.get("identity/group/name/g", root).await;
    assert_eq!((st, body["data"]["type"].clone()), (200, json!("internal")));
    let (st, body) = server.list("identity/group/name", root).await;
    assert_eq!((st, body["data"]["keys"].clone()), (200, json!(["g"])));
    assert_eq!(
        server
            .delete(&format!("identity/group/id/{id}"), root)
            .await
            .0,
        204
    );
    assert_eq!(
        server.get(&format!("identity/group/id/{id}"), root).await.0,
        404
    );
}

#[tokio::test]
async fn mount_tuning_through_either_path_caps_login_and_renewal() {
    let server = TestServer::start().await;
    let root = Some(server.root.as_str());
    let key = Key::rsa();
    seed_mount(&server, "jwt", &key).await;
    let (st, _) = server
        .post(
            "sys/mounts/auth/jwt/tune",
            root,
            &json!({"default_lease_ttl": "20m", "max_lease_ttl": "30m"}),
        )
        .await;
    assert_eq!(st, 204);
    let (st, tune) = server.get("sys/auth/jwt/tune", root).await;
    assert_eq!(st, 200, "{tune}");
    assert_eq!(
        (
            tune["data"]["default_lease_ttl"].clone(),
            tune["data"]["max_lease_ttl"].clone()
        ),
        (json!(1200), json!(1800))
    );
    // The seed role asks for 1h: capped at the mount's 30m with Vault's warning.
    let (st, body) = server
        .login(
            "jwt",
            "demo",
            &key.sign_claims("RS256", &seed_claims("alice")),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["auth"]["lease_duration"], json!(1800));
    assert!(
        body["warnings"][0]
            .as_str()
            .unwrap_or("")
            .contains("capped"),
        "{body}"
    );
    let token = client_token(&body);
    let (st, renewed) = server
        .post(
            "auth/token/renew-self",
            Some(&token),
            &json!({"increment": "2h"}),
        )
        .await;
    assert_eq!(st, 200, "{renewed}");
    assert!(
        renewed["auth"]["lease_duration"].as_i64().unwrap() <= 1800,
        "{renewed}"
    );
    // Bad tuning is refused and changes nothing.
    let (st, _) = server
        .post(
            "sys/auth/jwt/tune",
            root,
            &json!({"default_lease_ttl": "2h"}),
        )
        .await;
    assert_eq!(st, 400, "default above max");
    let (st, _) = server
        .post("sys/auth/jwt/tune", root, &json!({"max_lease_ttl": "1hr"}))
        .await;
    assert_eq!(st, 400);
    let (_, tune) = server.get("sys/mounts/auth/jwt/tune", root).await;
    assert_eq!(tune["data"]["max_lease_ttl"], json!(1800));
}

#[tokio::test]
async fn children_never_outlive_their_parent_and_batch_tokens_are_never_root() {
    let server = TestServer::start().await;
    let root = server.root.clone();
    let (st, body) = create(&server, &root, json!({"type": "batch"})).await;
    assert_eq!(st, 400, "a batch root token: {body}");
    let creator = r#"path "auth/token/create" { capabilities = ["update"] }"#;
    server
        .write_ok("sys/policies/acl/creator", &json!({"policy": creator}))
        .await;
    let parent = client_token(
        &create(
            &server,
            &root,
            json!({"policies": ["creator"], "ttl": "1m"}),
        )
        .await
        .1,
    );
    // A child asking for more than the parent has left is capped.
    let (st, body) = create(
        &server,
        &parent,
        json!({"policies": ["creator"], "ttl": "1h"}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(
        body["auth"]["lease_duration"].as_i64().unwrap() <= 60,
        "{body}"
    );
    let service_child = client_token(&body);
    let (st, body) = create(
        &server,
        &parent,
        json!({"policies": ["creator"], "type": "batch"}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let batch_child = client_token(&body);
    assert!(batch_child.starts_with("hvb."));
    // Root may create an orphan with no_parent.
    let orphan = client_token(
        &create(
            &server,
            &root,
            json!({"no_parent": true, "policies": ["creator"]}),
        )
        .await
        .1,
    );
    let (_, body) = server.get("auth/token/lookup-self", Some(&orphan)).await;
    assert_eq!(body["data"]["orphan"], json!(true), "{body}");
    for t in [&service_child, &batch_child] {
        assert_eq!(server.get("auth/token/lookup-self", Some(t)).await.0, 200);
    }
    let (st, _) = server
        .post("auth/token/revoke-self", Some(&parent), &json!({}))
        .await;
    assert_eq!(st, 204);
    for t in [&service_child, &batch_child] {
        assert_eq!(
            server.get("auth/token/lookup-self", Some(t)).await.0,
            403,
            "a child died with its parent"
        );
    }
    assert_eq!(
        server.get("auth/token/lookup-self", Some(&orphan)).await.0,
        200
    );
}
