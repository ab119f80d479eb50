//! One table of spellings over HTTP (issue 10, DECISIONS D15): for every endpoint that takes
//! a name, a policy that grants `create read update delete list` on the collection and
//! `deny` on one object (`admin`) must refuse every other spelling of that object, for
//! write, read and delete, through every alias endpoint; and the object must be unchanged
//! afterwards, read back with the root token.
//!
//! Requests are sent byte for byte over TCP (HTTP clients tidy `.` and `..` segments away
//! before sending), and the edge's 307 to the clean path is followed as a client would,
//! with the same method, token and body.
//!
//! OpenBao 2.7.2, asked the same questions with the same policies (each checked on a fresh
//! object), refuses fewer of them: `GET`/`DELETE sys/policies/acl/admin/` (and
//! `sys/policy/admin/`, `sys/policies/acl/admin%2F`) read and delete policy `admin`;
//! `GET`/`PUT`/`DELETE auth/jwt/role/ADMIN` read, rewrite and delete role `admin`;
//! `PUT`/`DELETE identity/group/name/ADMIN` rewrite and delete group `admin`; `GET`/`DELETE
//! sys/auth/admin/` read and disable mount `admin`. authmount refuses every one of them (each
//! is a row below). OpenBao does refuse the case spellings of policy names.

use std::time::Duration;

use authmount_testkit::TestServer;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A string placed in every `admin` object: no answer to the restricted token may carry it.
const MARKER: &str = "admin-marker-7f3c";

/// How a spelling must be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// It names `admin`: refused with a 4xx, whatever the operation.
    Refused,
    /// It names another object (or none) in this kind: it may succeed, but never touches
    /// `admin` or shows it.
    Elsewhere,
}

/// One kind of named object and how to set it up, read it back and write it.
struct Kind {
    label: &'static str,
    /// The restricted token's policy: the collections granted, `admin` denied.
    policy: &'static str,
    /// The object under each alias endpoint, `{}` standing for the name.
    objects: &'static [&'static str],
    /// Names are case-insensitive (stored lower-cased): `ADMIN` is `admin`.
    folds_case: bool,
    /// Writes made with the root token first (the last one creates `admin`).
    setup: Vec<(&'static str, Value)>,
    /// What the root token reads back to see `admin` unchanged.
    reads: &'static [&'static str],
    /// The body of every write the restricted token tries. It also names `admin` in the
    /// body (`name`, `path`): a name in the path always wins over one in the body.
    write: Value,
}

fn kinds() -> Vec<Kind> {
    let admin_policy =
        format!("# {MARKER}\npath \"secret/admin\" {{ capabilities = [\"read\"] }}\n");
    let evil_policy = "path \"*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\", \"sudo\"] }";
    vec![
        Kind {
            label: "ACL policies, both alias endpoints granted and denied",
            policy: r#"
path "sys/policies/acl/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/policies/acl/admin" { capabilities = ["deny"] }
path "sys/policy/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/policy/admin" { capabilities = ["deny"] }
"#,
            objects: &["sys/policies/acl/{}", "sys/policy/{}"],
            folds_case: true,
            setup: vec![("sys/policies/acl/admin", json!({"policy": admin_policy}))],
            reads: &["sys/policies/acl/admin", "sys/policy/admin"],
            write: json!({"policy": evil_policy, "rules": evil_policy, "name": "admin"}),
        },
        Kind {
            label: "ACL policies, issue 10's policy (only sys/policies/acl/* granted)",
            policy: r#"
path "sys/policies/acl/*" { capabilities = ["create", "read", "update", "list"] }
path "sys/policies/acl/admin" { capabilities = ["deny"] }
"#,
            objects: &["sys/policies/acl/{}", "sys/policy/{}"],
            folds_case: true,
            setup: vec![("sys/policies/acl/admin", json!({"policy": admin_policy}))],
            reads: &["sys/policies/acl/admin"],
            write: json!({"policy": evil_policy, "rules": evil_policy, "name": "admin"}),
        },
        Kind {
            label: "JWT roles",
            policy: r#"
path "auth/jwt/role/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "auth/jwt/role/admin" { capabilities = ["deny"] }
path "auth/team/a/jwt/role/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "auth/team/a/jwt/role/admin" { capabilities = ["deny"] }
"#,
            objects: &["auth/jwt/role/{}", "auth/team/a/jwt/role/{}"],
            folds_case: true,
            setup: vec![
                ("sys/auth/jwt", json!({"type": "jwt"})),
                ("sys/auth/team/a/jwt", json!({"type": "jwt"})),
                (
                    "auth/jwt/role/admin",
                    json!({"role_type": "jwt", "user_claim": "sub", "bound_subject": MARKER, "bound_audiences": "a", "policies": "p1"}),
                ),
                (
                    "auth/team/a/jwt/role/admin",
                    json!({"role_type": "jwt", "user_claim": "sub", "bound_subject": MARKER, "bound_audiences": "a", "policies": "p1"}),
                ),
            ],
            reads: &["auth/jwt/role/admin", "auth/team/a/jwt/role/admin"],
            write: json!({"role_type": "jwt", "user_claim": "sub", "bound_subject": "evil", "bound_audiences": "a", "policies": "root", "name": "admin"}),
        },
        Kind {
            label: "identity groups by name",
            policy: r#"
path "identity/group/name/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "identity/group/name/admin" { capabilities = ["deny"] }
"#,
            objects: &["identity/group/name/{}"],
            folds_case: true,
            setup: vec![(
                "identity/group/name/admin",
                json!({"policies": "p1", "metadata": {"marker": MARKER}}),
            )],
            reads: &["identity/group/name/admin"],
            write: json!({"policies": "evil", "metadata": {"marker": "evil"}, "name": "admin"}),
        },
        Kind {
            label: "identity entities by name",
            policy: r#"
path "identity/entity/name/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "identity/entity/name/admin" { capabilities = ["deny"] }
"#,
            objects: &["identity/entity/name/{}"],
            folds_case: true,
            setup: vec![(
                "identity/entity/name/admin",
                json!({"policies": "p1", "metadata": {"marker": MARKER}}),
            )],
            reads: &["identity/entity/name/admin"],
            write: json!({"policies": "evil", "metadata": {"marker": "evil"}, "name": "admin"}),
        },
        Kind {
            label: "auth mounts and their tuning",
            policy: r#"
path "sys/auth/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }
path "sys/auth/admin" { capabilities = ["deny"] }
path "sys/auth/admin/tune" { capabilities = ["deny"] }
path "sys/mounts/auth/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }
path "sys/mounts/auth/admin/tune" { capabilities = ["deny"] }
"#,
            objects: &["sys/auth/{}", "sys/auth/{}/tune", "sys/mounts/auth/{}/tune"],
            // Mount paths are case-sensitive, as in Vault: `ADMIN/` is another mount.
            folds_case: false,
            setup: vec![(
                "sys/auth/admin",
                json!({"type": "jwt", "description": MARKER}),
            )],
            reads: &["sys/auth/admin", "sys/auth/admin/tune"],
            write: json!({"type": "jwt", "description": "evil", "default_lease_ttl": "77s", "path": "admin"}),
        },
    ]
}

/// Every spelling of `admin` in `template`, with what it must get.
fn spellings(template: &str, folds_case: bool) -> Vec<(String, Expect)> {
    let case = if folds_case {
        Expect::Refused
    } else {
        Expect::Elsewhere
    };
    let named = |name: &str| template.replace("{}", name);
    let mut out = Vec::new();
    for name in ["ADMIN", "Admin", "adMIN", "%41DMIN", "%41dmin"] {
        out.push((named(name), case));
    }
    for name in [
        "admin",
        "%61dmin",
        "adm%69n",
        "%61%64%6d%69%6e",
        "admin/",
        "admin//",
        "admin%2F",
        "admin%2f%2F",
        "/admin",
        "%2Fadmin",
        "./admin",
        "x/../admin",
        "%2e/admin",
        "x/%2E%2E/admin",
        "admin/.",
        "admin/x/..",
        "admin/%2e",
    ] {
        out.push((named(name), Expect::Refused));
    }
    // Whitespace makes another name (or an invalid one) in every kind.
    for name in ["admin%20", "%20admin", "admin%09"] {
        out.push((named(name), Expect::Elsewhere));
    }
    let exact = named("admin");
    for suffix in ["/", "//", "%2F", "/.", "?name=admin"] {
        out.push((format!("{exact}{suffix}"), Expect::Refused));
    }
    out.push((exact.replacen('/', "//", 1), Expect::Refused));
    out.push((format!("/{exact}"), Expect::Refused));
    out.push((exact.replacen('/', "/./", 1), Expect::Refused));
    out
}

/// An answer read off the wire.
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

/// Sends `method /v1/<target>` exactly as written (no tidying of the target) with `token`
/// and a JSON `body`, over a fresh connection.
async fn send_once(
    server: &TestServer,
    method: &str,
    path_and_query: &str,
    token: &str,
    body: &[u8],
) -> Answer {
    let addr = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nX-Vault-Token: {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // One write: a head and a body written apart wait on Nagle and delayed ACKs (40 ms).
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).await.expect("write");
    // Read the head, then exactly `Content-Length` bytes: an answer given before the body
    // was read (a redirect, a 400) leaves the server waiting for the client to hang up.
    let read = async {
        let mut raw = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).into_owned();
                let length = header(&head, "content-length").and_then(|v| v.parse().ok());
                if length.is_some_and(|n: usize| raw.len() >= end + 4 + n) {
                    return raw;
                }
            }
            let n = stream.read(&mut chunk).await.expect("read");
            if n == 0 {
                return raw;
            }
            raw.extend_from_slice(&chunk[..n]);
        }
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("answered within 10 s");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer to {method} {path_and_query}: {raw}"));
    Answer {
        status,
        location: header(head, "location"),
        body: body.to_string(),
    }
}

/// The value of the header `name` (any case) in an answer's head.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (n, value) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
    })
}

/// [`send_once`] on `/v1/<target>`, following redirects (at most 5) as a client would.
async fn send(server: &TestServer, method: &str, target: &str, token: &str, body: &[u8]) -> Answer {
    let mut path = format!("/v1/{target}");
    for _ in 0..5 {
        let answer = send_once(server, method, &path, token, body).await;
        match (answer.status, &answer.location) {
            (301 | 302 | 307 | 308, Some(location)) => path = location.clone(),
            _ => return answer,
        }
    }
    panic!("{method} {target}: more than 5 redirects");
}

/// Makes `admin` (and what it needs) with the root token; a write that finds its object
/// there already (a mount) may fail.
async fn set_up(server: &TestServer, kind: &Kind) {
    for (path, body) in &kind.setup {
        server.post(path, Some(&server.root), body).await;
    }
}

/// What the root token reads of `admin`: status and `data` of each read.
async fn snapshot(server: &TestServer, kind: &Kind) -> Vec<(u16, Value)> {
    let mut out = Vec::new();
    for path in kind.reads {
        let (status, body) = server.get(path, Some(&server.root)).await;
        out.push((status, body["data"].clone()));
    }
    out
}

async fn restricted_token(server: &TestServer, name: &str, policy: &str) -> String {
    let (status, body) = server
        .post(
            &format!("sys/policies/acl/{name}"),
            Some(&server.root),
            &json!({ "policy": policy }),
        )
        .await;
    assert_eq!(status, 204, "write policy {name}: {body}");
    let (status, body) = server
        .post(
            "auth/token/create",
            Some(&server.root),
            &json!({"policies": [name], "ttl": "1h"}),
        )
        .await;
    assert_eq!(status, 200, "token create: {body}");
    body["auth"]["client_token"]
        .as_str()
        .expect("client_token")
        .to_string()
}

#[tokio::test]
async fn no_spelling_of_a_denied_name_reaches_it() {
    let mut failures = Vec::new();
    let mut cases = 0;
    for (i, kind) in kinds().into_iter().enumerate() {
        // A server per kind: the kinds do not see each other's objects.
        let server = TestServer::start().await;
        set_up(&server, &kind).await;
        let token = restricted_token(&server, &format!("spell{i}"), kind.policy).await;
        let before = snapshot(&server, &kind).await;
        for (read, (status, data)) in kind.reads.iter().zip(&before) {
            assert_eq!(*status, 200, "{}: root reads {read}: {data}", kind.label);
        }
        let write = serde_json::to_vec(&kind.write).expect("body");
        for template in kind.objects {
            for (target, expect) in spellings(template, kind.folds_case) {
                for (method, body) in [("PUT", &write[..]), ("GET", &[][..]), ("DELETE", &[][..])] {
                    cases += 1;
                    let answer = send(&server, method, &target, &token, body).await;
                    let shown: String = answer.body.trim().chars().take(160).collect();
                    let what = format!(
                        "{}: {method} {target} answered {} {shown}",
                        kind.label, answer.status
                    );
                    if answer.status >= 500 {
                        failures.push(format!("{what} (a server error)"));
                    } else if expect == Expect::Refused && answer.status < 400 {
                        failures.push(format!("{what} (must be refused)"));
                    }
                    if answer.body.contains(MARKER) {
                        failures.push(format!("{what} (shows admin)"));
                    }
                    let after = snapshot(&server, &kind).await;
                    if after != before {
                        failures.push(format!("{what} (changed admin to {after:?})"));
                        set_up(&server, &kind).await; // for the next rows
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} requests got past the deny:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The spellings a policy allows are stored under the name the ACL judged: the canonical
/// one. Writing `Other` creates `other`, for policies (both endpoints), roles and groups;
/// mount paths keep their case.
#[tokio::test]
async fn allowed_spellings_are_stored_under_their_canonical_name() {
    let server = TestServer::start().await;
    server.enable_jwt("jwt").await;
    let policy = r#"
path "sys/policies/acl/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/policy/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "auth/jwt/role/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "identity/group/name/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/auth/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }
"#;
    let token = restricted_token(&server, "allowed", policy).await;
    let text = "path \"x\" { capabilities = [\"read\"] }";
    let writes = [
        ("sys/policies/acl/Other", json!({"policy": text})),
        ("sys/policy/OTHER2", json!({"rules": text})),
        ("sys/policies/acl/%4Fther3", json!({"policy": text})),
        (
            "auth/jwt/role/Other",
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "a"}),
        ),
        ("identity/group/name/Other", json!({"policies": "p"})),
        ("sys/auth/Other", json!({"type": "jwt"})),
    ];
    for (target, body) in &writes {
        let body = serde_json::to_vec(body).expect("body");
        let answer = send(&server, "PUT", target, &token, &body).await;
        assert!(
            (200..300).contains(&answer.status),
            "PUT {target}: {} {}",
            answer.status,
            answer.body
        );
    }
    let root = Some(server.root.as_str());
    let (_, policies) = server.list("sys/policies/acl", root).await;
    let keys = &policies["data"]["keys"];
    for name in ["other", "other2", "other3"] {
        assert!(
            keys.as_array().unwrap().contains(&json!(name)),
            "{name} in {keys}"
        );
    }
    assert!(!keys.to_string().contains("Other"), "{keys}");
    let (_, roles) = server.list("auth/jwt/role", root).await;
    assert_eq!(roles["data"]["keys"], json!(["other"]));
    // OpenBao keeps the spelling of a new group's name (`Other`) and finds it by any case;
    // authmount stores the canonical (lower-case) name the ACL judged.
    let (_, groups) = server.list("identity/group/name", root).await;
    assert_eq!(groups["data"]["keys"], json!(["other"]));
    let (status, _) = server.get("identity/group/name/OTHER", root).await;
    assert_eq!(status, 200, "a group is found by any case");
    // Mount paths are case-sensitive (as in OpenBao): `Other/` is its own mount.
    let (_, mounts) = server.get("sys/auth", root).await;
    assert!(mounts["data"].get("Other/").is_some(), "{mounts}");
    assert!(mounts["data"].get("other/").is_none(), "{mounts}");
}

/// Token roles (`auth/token/roles/<name>`) are not served, so there is nothing to spell:
/// every verb answers 404 or 405, even to root.
#[tokio::test]
async fn token_roles_are_not_served() {
    let server = TestServer::start().await;
    for target in ["auth/token/roles/admin"] {
        for method in ["PUT", "GET", "DELETE"] {
            let answer = send(&server, method, target, &server.root, b"{}").await;
            assert!(
                matches!(answer.status, 404 | 405),
                "{method} {target}: {} {}",
                answer.status,
                answer.body
            );
        }
    }
}

/// Mount paths are `/`-separated segments of ASCII letters, digits, `-`, `_` and `.`, at most
/// 255 bytes: no space, glob character (`*`, `+`), other punctuation or non-ASCII letter, so a
/// mount path never reads as an ACL pattern or as a look-alike of another. OpenBao 2.7.2
/// accepts every one of the refused paths below (and paths of 5,000 characters).
#[tokio::test]
async fn mount_paths_outside_the_safe_set_are_refused() {
    let server = TestServer::start().await;
    let root = server.root.clone();
    let body = br#"{"type":"jwt"}"#;
    let long_ok = "a".repeat(255);
    let long_bad = "b".repeat(256);
    let huge = "c".repeat(5000);
    for path in [
        "a%20b",
        "star%2A",
        "plus%2B",
        "team/%2A",
        "%C3%BCn%C3%AF",
        "semi%3Bcolon",
        "q%3Fm",
        "x%40y",
        &long_bad,
        &huge,
    ] {
        let answer = send(&server, "POST", &format!("sys/auth/{path}"), &root, body).await;
        let shown: String = path.chars().take(20).collect();
        assert_eq!(answer.status, 400, "{shown}: {}", answer.body);
    }
    for path in [long_ok.as_str(), "dot.dot", "-lead", "team/a_b/jwt-2"] {
        let answer = send(&server, "POST", &format!("sys/auth/{path}"), &root, body).await;
        assert_eq!(answer.status, 204, "{path}: {}", answer.body);
    }
    let (_, mounts) = server.get("sys/auth", Some(&root)).await;
    let paths: Vec<&String> = mounts["data"]
        .as_object()
        .expect("mounts")
        .keys()
        .filter(|p| *p != "token/")
        .collect();
    assert_eq!(paths.len(), 4, "only the four accepted paths: {paths:?}");
}
