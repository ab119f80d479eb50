//! Help (`GET <path>?help=1`) and the OpenAPI document (`GET /v1/sys/internal/specs/openapi`),
//! both generated from the mounted backends' path tables, over a real HTTP server. The
//! document is checked against the JWT method's own path table and validated with
//! `openapi-spec-validator` (Python; `pip install openapi-spec-validator`).

#[path = "../examples/custom_backend.rs"]
#[allow(dead_code)] // the example's own `main` is not used here
mod custom_backend;

use std::process::Command;
use std::sync::Arc;

use authmount::framework::{BackendContext, Clock, InMemory, Operation, Path, View};
use authmount_testkit::{error_message, seed_mount, Key, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

/// The JWT method's path table, from the backend itself (the single source of truth).
fn jwt_paths() -> Vec<Path> {
    let ctx = BackendContext {
        storage: View::new(Arc::new(InMemory::new()), "unused/"),
        clock: Clock::system(),
    };
    authmount::jwt::JwtBackend::factory(ctx).paths()
}

/// The `components/schemas` entry a `$ref` points to.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected $ref {r}"));
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// The request-body properties of the `post` of `item`.
fn body_properties<'a>(doc: &'a Value, item: &'a Value) -> &'a Value {
    let schema = &item["post"]["requestBody"]["content"]["application/json"]["schema"];
    &resolve(doc, schema)["properties"]
}

async fn server_with_jwt_at(mounts: &[&str]) -> TestServer {
    let mut registry = authmount_server::default_registry();
    custom_backend::register(&mut registry);
    let server = TestServer::start_with(registry).await;
    for mount in mounts {
        server.enable_jwt(mount).await;
    }
    server
}

#[tokio::test]
async fn help_on_a_jwt_path_answers_vaults_help_shape() {
    let server = server_with_jwt_at(&["jwt", "team/a/jwt"]).await;
    let root = Some(server.root.as_str());

    let (status, body) = server.get("auth/jwt/login?help=1", root).await;
    assert_eq!(status, 200, "{body}");
    // Vault answers help as the bare data: help text, OpenAPI document, see_also.
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    for key in ["help", "openapi", "see_also"] {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
    let help = body["help"].as_str().expect("help text");
    assert!(
        help.starts_with("Request:        login\nMatching Route: ^login$\n"),
        "{help}"
    );
    assert!(help.contains("Authenticate with a signed JWT"), "{help}");
    assert!(
        help.contains("\njwt (string)\n    The signed JWT"),
        "{help}"
    );
    assert!(help.contains("\nrole (lowercase string)\n"), "{help}");
    let doc = &body["openapi"];
    assert_eq!(doc["openapi"], "3.0.2");
    assert_eq!(doc["servers"][0]["url"], "/v1/auth/jwt");
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.keys().collect::<Vec<_>>(), vec!["/login"]);
    let login = &doc["paths"]["/login"];
    assert_eq!(login["x-vault-unauthenticated"], true);
    assert_eq!(login["post"]["security"], json!([]));
    let props = body_properties(doc, login);
    assert_eq!(props["jwt"]["type"], "string");
    assert_eq!(props["role"]["format"], "lowercase");

    // Any HTTP verb asks for help; a nested mount answers with its own server URL.
    let (status, body) = server
        .send(
            Method::DELETE,
            "auth/team/a/jwt/role/demo?help=1",
            root,
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["openapi"]["servers"][0]["url"], "/v1/auth/team/a/jwt");
    let role = &body["openapi"]["paths"]["/role/{name}"];
    assert_eq!(role["parameters"][0]["name"], "name", "{role}");
    assert_eq!(role["parameters"][0]["in"], "path");
    for method in ["get", "post", "delete"] {
        assert!(role[method].is_object(), "{method} in {role}");
    }
    let help = body["help"].as_str().unwrap();
    assert!(
        help.contains("\nbound_audiences (comma-separated string slice)\n"),
        "{help}"
    );
    assert!(help.contains("\ntoken_ttl (duration (sec))\n"), "{help}");
}

#[tokio::test]
async fn help_on_a_mount_lists_every_route_of_its_backend() {
    let server = server_with_jwt_at(&["jwt"]).await;
    let (status, body) = server.get("auth/jwt/?help=1", Some(&server.root)).await;
    assert_eq!(status, 200, "{body}");
    let help = body["help"].as_str().unwrap();
    assert!(
        help.starts_with("## DESCRIPTION\n\nThe JWT auth method"),
        "{help}"
    );
    for spec in jwt_paths() {
        assert!(
            help.contains(&format!("    ^{}$\n        {}", spec.pattern, spec.help)),
            "{help}"
        );
    }
    let mut paths: Vec<&String> = body["openapi"]["paths"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        vec![
            "/cel/login",
            "/cel/role/",
            "/cel/role/{name}",
            "/config",
            "/login",
            "/login/explain",
            "/oidc/auth_url",
            "/oidc/callback",
            "/oidc/poll",
            "/role/",
            "/role/{name}"
        ]
    );

    // The same without the trailing slash, and with the `HELP` verb.
    let help_verb = Method::from_bytes(b"HELP").unwrap();
    let (status, again) = server
        .send(help_verb, "auth/jwt", Some(&server.root), &[], None)
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["help"], body["help"]);
}

#[tokio::test]
async fn help_never_runs_the_handler() {
    let server = server_with_jwt_at(&["jwt"]).await;
    let root = Some(server.root.as_str());
    let (status, body) = server
        .post(
            "auth/jwt/config?help=1",
            root,
            &json!({"bound_issuer": "https://issuer.test/", "jwt_validation_pubkeys": ["x"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["help"]
        .as_str()
        .unwrap()
        .contains("Matching Route: ^config$"));
    let (status, body) = server.get("auth/jwt/config", root).await;
    assert_eq!(status, 404, "config was not written: {body}");

    seed_mount(&server, "jwt2", &Key::rsa()).await;
    let (status, body) = server
        .send(
            Method::DELETE,
            "auth/jwt2/role/demo?help=1",
            root,
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.get("auth/jwt2/role/demo", root).await;
    assert_eq!(status, 200, "the role is still there: {body}");
}

#[tokio::test]
async fn help_needs_a_token_and_a_routed_path() {
    let server = server_with_jwt_at(&["jwt"]).await;
    let root = Some(server.root.as_str());
    let (status, body) = server.get("auth/jwt/login?help=1", None).await;
    assert_eq!(status, 403, "help needs a token, even on login: {body}");
    let (status, body) = server.get("auth/jwt/login?help=1", Some("nope")).await;
    assert_eq!(status, 403, "{body}");
    for (path, says) in [
        ("auth/jwt/nope", "unsupported path"),
        (
            "auth/nomount/login",
            "no handler for route \"auth/nomount/login\"",
        ),
        ("nowhere/x", "no handler for route \"nowhere/x\""),
    ] {
        let (status, body) = server.get(&format!("{path}?help=1"), root).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(error_message(&body).contains(says), "{body}");
    }
    // The core's own endpoints are path tables too: help answers on every one.
    for (path, route) in [
        ("auth/token/lookup-self", "^lookup-self$"),
        ("sys/auth", "^auth$"),
        ("identity/group/name/Admins", "^group/name/(?P<name>[^/]+)$"),
    ] {
        let (status, body) = server.get(&format!("{path}?help=1"), root).await;
        assert_eq!(status, 200, "{path}: {body}");
        let help = body["help"].as_str().unwrap();
        assert!(help.contains(&format!("Matching Route: {route}")), "{help}");
    }
    // `help=` (empty) is not a help request, as in Vault.
    let (status, body) = server.get("auth/jwt/config?help=", root).await;
    assert_eq!(status, 404, "an ordinary read of an unset config: {body}");
    assert_eq!(body, json!({"errors": []}));
}

/// Every JWT path of `mount` is in `doc`, with its operations as methods, its captures as
/// path parameters, and every other field of its table as a typed, described body property.
fn assert_lists_jwt_paths(doc: &Value, mount: &str) {
    let specs = jwt_paths();
    assert_eq!(
        specs.len(),
        11,
        "config, role list, role, cel role list, cel role, cel/login, login, login/explain, oidc/auth_url, oidc/callback, oidc/poll"
    );
    let template = |pattern: &'static str| match pattern {
        "config" => "config",
        "role/?" => "role/",
        p if p.starts_with("role/(?P<name>") => "role/{name}",
        "cel/role/?" => "cel/role/",
        p if p.starts_with("cel/role/(?P<name>") => "cel/role/{name}",
        "cel/login" => "cel/login",
        "login" => "login",
        "login/explain" => "login/explain",
        p @ ("oidc/auth_url" | "oidc/callback" | "oidc/poll") => p,
        other => panic!("a jwt path this test does not know: {other}"),
    };
    for spec in &specs {
        let path = format!("/auth/{mount}/{}", template(spec.pattern));
        let item = &doc["paths"][&path];
        assert!(item.is_object(), "{path} missing");
        assert_eq!(item["description"], spec.help, "{path}");
        let captures: Vec<&str> = item["parameters"]
            .as_array()
            .map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        for op in spec.operations() {
            let method = match op {
                Operation::Read | Operation::List => "get",
                Operation::Update => "post",
                Operation::Delete => "delete",
            };
            assert!(item[method]["operationId"].is_string(), "{method} {path}");
            if op == Operation::List {
                let list = &item["get"]["parameters"][0];
                assert_eq!(list["name"], "list", "{path}");
                assert_eq!(list["in"], "query", "{path}");
            }
        }
        if !spec.supports(Operation::Update) {
            continue;
        }
        let props = body_properties(doc, item);
        for field in &spec.fields {
            if captures.contains(&field.name) {
                assert!(
                    props.get(field.name).is_none(),
                    "{path}: {} is a path parameter",
                    field.name
                );
                continue;
            }
            let prop = &props[field.name];
            assert_eq!(
                prop["description"], field.description,
                "{path} {}",
                field.name
            );
            assert!(
                prop.get("type").is_some()
                    || ["jwks_pairs", "jwks_inline", "claim_rules", "cel_program"]
                        .contains(&field.name),
                "{path} {} has a type: {prop}",
                field.name
            );
        }
        assert_eq!(
            props.as_object().map(|p| p.len()),
            Some(
                spec.fields
                    .iter()
                    .filter(|f| !captures.contains(&f.name))
                    .count()
            ),
            "{path}: exactly the table's fields"
        );
    }
    let role = &doc["paths"][format!("/auth/{mount}/role/{{name}}")];
    assert_eq!(role["parameters"][0]["required"], true);
    let props = body_properties(doc, role);
    assert_eq!(props["bound_audiences"]["type"], "array");
    assert_eq!(props["bound_audiences"]["items"]["type"], "string");
    assert_eq!(props["token_ttl"]["format"], "duration");
    assert_eq!(props["verbose_oidc_logging"]["type"], "boolean");
    assert_eq!(props["claim_mappings"]["type"], "object");
    assert_eq!(props["token_num_uses"]["type"], "integer");
}

/// Validates `doc` with openapi-spec-validator; panics with its report when it fails.
fn validate_with_openapi_spec_validator(doc: &Value) {
    let file = std::env::temp_dir().join(format!(
        "authmount-openapi-{}.json",
        authmount_testkit::random_hex()
    ));
    std::fs::write(&file, serde_json::to_vec_pretty(doc).unwrap()).expect("write the document");
    let output = Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.0"])
        .arg(&file)
        .output()
        .expect("run python3 (needs `pip install openapi-spec-validator`)");
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named"),
        "openapi-spec-validator is not installed: pip install openapi-spec-validator\n{stderr}"
    );
    assert!(
        output.status.success() && stdout.contains("OK"),
        "openapi-spec-validator refused the document:\n{stdout}\n{stderr}"
    );
}

#[tokio::test]
async fn the_openapi_document_lists_every_mounted_path_and_validates() {
    let server = server_with_jwt_at(&["jwt", "team/a/jwt"]).await;
    let root = Some(server.root.as_str());
    let (status, body) = server
        .post("sys/auth/keys", root, &json!({"type": "api-key"}))
        .await;
    assert_eq!(status, 204, "{body}");

    let (status, body) = server.get("sys/internal/specs/openapi", None).await;
    assert_eq!(status, 403, "needs a token: {body}");
    let (status, doc) = server.get("sys/internal/specs/openapi", root).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["openapi"], "3.0.2");
    assert_eq!(doc["servers"][0]["url"], "/v1");
    assert!(
        doc.get("request_id").is_none(),
        "the bare document, no envelope"
    );

    assert_lists_jwt_paths(&doc, "jwt");
    assert_lists_jwt_paths(&doc, "team/a/jwt");
    let keys = &doc["paths"]["/auth/keys/keys/{name}"];
    assert_eq!(body_properties(&doc, keys)["ttl"]["format"], "duration");
    assert!(doc["paths"]["/auth/keys/keys/"]["get"].is_object());
    assert_eq!(
        doc["paths"]["/auth/keys/login"]["x-vault-unauthenticated"],
        true
    );
    // Every endpoint of the server is described: the core's own tables too.
    for core_path in [
        "/sys/auth",
        "/sys/auth/{path}",
        "/sys/mounts/auth/{path}/tune",
        "/sys/policies/acl/{name}",
        "/auth/token/create",
        "/auth/token/lookup-self",
        "/identity/group/name/{name}",
    ] {
        assert!(doc["paths"][core_path].is_object(), "{core_path} missing");
    }
    let paths = doc["paths"].as_object().unwrap();
    let mounted = paths
        .keys()
        .filter(|p| p.starts_with("/auth/") && !p.starts_with("/auth/token/"));
    assert_eq!(mounted.count(), 11 + 11 + 3, "{paths:?}");

    validate_with_openapi_spec_validator(&doc);

    // The document follows the mount table.
    let (status, body) = server.delete("sys/auth/team/a/jwt", root).await;
    assert_eq!(status, 204, "{body}");
    let (_, doc) = server.get("sys/internal/specs/openapi", root).await;
    assert!(doc["paths"].get("/auth/team/a/jwt/login").is_none());
    assert!(doc["paths"].get("/auth/jwt/login").is_some());
    let (status, body) = server
        .post("sys/internal/specs/openapi", root, &json!({}))
        .await;
    assert_eq!(status, 405, "{body}");
}

#[tokio::test]
async fn help_documents_validate_too() {
    let server = server_with_jwt_at(&["jwt"]).await;
    let (status, body) = server.get("auth/jwt?help=1", Some(&server.root)).await;
    assert_eq!(status, 200, "{body}");
    validate_with_openapi_spec_validator(&body["openapi"]);
}
