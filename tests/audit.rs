//! Audit devices over HTTP against a real server: enabling one over the API is refused unless
//! the server config allows it (OpenBao 2.7.2's answer), and even then a mode's execute bits
//! are dropped and links, non-regular files and the server's own files are refused; devices
//! of the config are enabled at the first request, cannot be disabled over the API and go
//! when the config drops them; a file device records a refused and a good login (the
//! refusal naming its failed check) with no token, accessor, JWT or secret in the clear;
//! `sys/audit-hash` gives the values the log holds; devices that cannot be written are
//! refused at enable time; requests fail closed when no device can record them (a socket
//! whose peer is gone); a socket device sends its lines to a TCP listener; list and disable.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use authmount::framework::audit::{AuditRules, DeclaredDevice};
use authmount_testkit::{
    error_message, random_hex, seed_claims, seed_mount, Key, TempDir, TestServer,
};
use serde_json::{json, Value};

/// OpenBao 2.7.2's answer to `PUT sys/audit/<path>` without
/// `unsafe_allow_api_audit_creation = true` in its config.
const REFUSED: &str =
    "cannot enable audit device via API; use declarative, config-based audit device management instead";

/// A dev server whose audit rules are `rules` (as the server config sets them); the core is
/// returned too, to change them.
async fn server_with(rules: AuditRules) -> (TestServer, Arc<authmount::framework::Core>) {
    let root = format!("root-{}", random_hex());
    let core = authmount_server::dev_core(&root).await.expect("dev core");
    core.set_audit_rules(rules);
    (TestServer::serve(core.clone(), root), core)
}

/// A dev server with `unsafe_allow_api_audit_creation = true`.
async fn allowing() -> TestServer {
    server_with(AuditRules {
        allow_api_creation: true,
        ..AuditRules::default()
    })
    .await
    .0
}

async fn enable(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    server
        .post(&format!("sys/audit/{path}"), Some(&server.root), &body)
        .await
}

async fn enable_file(server: &TestServer, path: &str, file: &Path, extra: Value) {
    let mut options = json!({ "file_path": file.to_str().unwrap() });
    options
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, body) = enable(server, path, json!({"type": "file", "options": options})).await;
    assert_eq!(status, 204, "enable {path}: {body}");
}

fn lines(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .expect("audit log")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The request and response lines of the request with this path, in order.
fn entries_for<'a>(log: &'a [Value], path: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|l| l["request"]["path"] == json!(path))
        .collect()
}

async fn audit_hash(server: &TestServer, device: &str, input: &str) -> String {
    let (status, body) = server
        .post(
            &format!("sys/audit-hash/{device}"),
            Some(&server.root),
            &json!({ "input": input }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["hash"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_file_device_records_both_logins_with_secrets_hashed_and_the_failed_check_named() {
    let server = allowing().await;
    let key = Key::rsa();
    seed_mount(&server, "jwt", &key).await;
    let dir = TempDir::new("audit");
    let file = dir.path().join("sub/dir/audit.log");
    enable_file(&server, "file", &file, json!({})).await;
    // Vault's test line, written at enable time.
    let first = lines(&file);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["request"]["path"], "sys/audit/test");

    let mut claims = seed_claims("carol");
    claims["aud"] = json!("https://someone-else.test");
    let refused_jwt = key.sign_claims("RS256", &claims);
    let (status, body) = server.login("jwt", "demo", &refused_jwt).await;
    assert_eq!(status, 400, "{body}");
    let good_jwt = key.sign_claims("RS256", &seed_claims("alice"));
    let (status, good) = server.login("jwt", "demo", &good_jwt).await;
    assert_eq!(status, 200, "{good}");
    let token = good["auth"]["client_token"].as_str().unwrap().to_string();
    let accessor = good["auth"]["accessor"].as_str().unwrap().to_string();
    // A request made with the new token: its auth section describes the caller.
    let (status, _) = server.get("auth/token/lookup-self", Some(&token)).await;
    assert_eq!(status, 200);

    let raw = std::fs::read_to_string(&file).unwrap();
    for (what, secret) in [
        ("refused JWT", refused_jwt.as_str()),
        ("good JWT", good_jwt.as_str()),
        ("token", token.as_str()),
        ("accessor", accessor.as_str()),
        ("root token", server.root.as_str()),
    ] {
        assert!(
            !raw.contains(secret),
            "the {what} is in the log in the clear"
        );
    }
    for part in good_jwt.split('.') {
        assert!(!raw.contains(part), "a part of the JWT is in the log");
    }

    let log = lines(&file);
    let logins = entries_for(&log, "auth/jwt/login");
    assert_eq!(logins.len(), 4, "a request and a response line per login");
    let kinds: Vec<&str> = logins.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["request", "response", "request", "response"]);
    let (refused_req, refused_resp) = (logins[0], logins[1]);
    assert_eq!(refused_req["request"]["id"], refused_resp["request"]["id"]);
    assert_eq!(refused_req["request"]["operation"], "update");
    assert_eq!(refused_req["request"]["mount_type"], "jwt");
    assert_eq!(refused_req["request"]["mount_point"], "auth/jwt/");
    assert_eq!(refused_req["request"]["remote_address"], "127.0.0.1");
    assert_eq!(refused_req["auth"], json!({"token_type": "default"}));
    assert_eq!(refused_resp["response"]["login_failure"], "audience");
    let message = error_message(&body);
    assert_eq!(refused_resp["error"], json!(message), "{refused_resp}");
    assert!(refused_resp["response"]["data"]["error"]
        .as_str()
        .unwrap()
        .starts_with("hmac-sha256:"));
    // Every string of the request data is hashed; sys/audit-hash gives the same value.
    assert_eq!(
        refused_req["request"]["data"]["jwt"],
        json!(audit_hash(&server, "file", &refused_jwt).await)
    );
    assert_eq!(
        refused_req["request"]["data"]["role"],
        json!(audit_hash(&server, "file", "demo").await)
    );

    let (good_req, good_resp) = (logins[2], logins[3]);
    // The request id is the one the answer carried (and the server's log lines carry).
    assert_eq!(good_req["request"]["id"], good["request_id"]);
    assert_eq!(good_resp["request"]["id"], good["request_id"]);
    assert!(good_resp.get("error").is_none(), "{good_resp}");
    assert!(good_resp["response"].get("login_failure").is_none());
    let auth = &good_resp["response"]["auth"];
    assert_eq!(
        auth["client_token"],
        json!(audit_hash(&server, "file", &token).await)
    );
    assert_eq!(
        auth["accessor"],
        json!(audit_hash(&server, "file", &accessor).await)
    );
    assert_eq!(auth["policies"], good["auth"]["policies"]);
    assert!(good_resp["time"].as_str().unwrap().ends_with('Z'));

    let lookup = entries_for(&log, "auth/token/lookup-self");
    assert_eq!(lookup.len(), 2);
    let caller = &lookup[0]["auth"];
    assert_eq!(caller["client_token"], auth["client_token"]);
    assert_eq!(caller["accessor"], auth["accessor"]);
    assert_eq!(caller["display_name"], "jwt-alice");
    assert_eq!(
        lookup[0]["request"]["client_token_accessor"],
        auth["accessor"]
    );
    // The lookup's answer holds the token's id and accessor in `data`: hashed too.
    assert_eq!(
        lookup[1]["response"]["data"]["accessor"], auth["accessor"],
        "{}",
        lookup[1]
    );
}

#[tokio::test]
async fn device_options_and_mount_tuning_decide_what_is_in_the_clear() {
    let server = allowing().await;
    let key = Key::rsa();
    seed_mount(&server, "tuned", &key).await;
    // The mount asks for `role` and `jwt` in the clear: `role` is, the JWT never is.
    server
        .write_ok(
            "sys/auth/tuned/tune",
            &json!({"audit_non_hmac_request_keys": ["role", "jwt"], "audit_non_hmac_response_keys": ["keys"]}),
        )
        .await;
    let dir = TempDir::new("audit");
    let (hashed, clear_accessor, raw) = (
        dir.path().join("hashed.log"),
        dir.path().join("accessor.log"),
        dir.path().join("raw.log"),
    );
    enable_file(&server, "hashed", &hashed, json!({})).await;
    enable_file(
        &server,
        "accessor",
        &clear_accessor,
        json!({"hmac_accessor": "false"}),
    )
    .await;
    enable_file(&server, "raw", &raw, json!({"log_raw": "true"})).await;

    let jwt = key.sign_claims("RS256", &seed_claims("alice"));
    let (status, good) = server.login("tuned", "demo", &jwt).await;
    assert_eq!(status, 200, "{good}");
    let token = good["auth"]["client_token"].as_str().unwrap();
    let accessor = good["auth"]["accessor"].as_str().unwrap();

    let log = lines(&hashed);
    let login = entries_for(&log, "auth/tuned/login");
    assert_eq!(login[0]["request"]["data"]["role"], "demo");
    assert_eq!(
        login[0]["request"]["data"]["jwt"],
        json!(audit_hash(&server, "hashed", &jwt).await)
    );
    let text = std::fs::read_to_string(&hashed).unwrap();
    assert!(!text.contains(&jwt) && !text.contains(token) && !text.contains(accessor));

    // hmac_accessor=false: the accessor in the clear, the token still hashed.
    let text = std::fs::read_to_string(&clear_accessor).unwrap();
    assert!(text.contains(accessor));
    assert!(!text.contains(token) && !text.contains(&jwt));

    // log_raw=true: everything in the clear (the dangerous option).
    let text = std::fs::read_to_string(&raw).unwrap();
    assert!(text.contains(token) && text.contains(&jwt) && text.contains(accessor));

    // Each device has its own salt.
    assert_ne!(
        audit_hash(&server, "hashed", "x").await,
        audit_hash(&server, "accessor", "x").await
    );
}

#[tokio::test]
async fn a_device_that_cannot_be_written_is_refused_and_nothing_is_stored() {
    let server = allowing().await;
    let dir = TempDir::new("audit");
    let plain_file = dir.path().join("plain");
    std::fs::write(&plain_file, b"").unwrap();
    let cases = [
        // A path under a regular file (even root cannot create it).
        (
            json!({"type": "file", "options": {"file_path": plain_file.join("audit.log").to_str().unwrap()}}),
            "sanity check failed; unable to open",
        ),
        // A directory, a device, a FIFO: not regular files.
        (
            json!({"type": "file", "options": {"file_path": dir.path().to_str().unwrap()}}),
            "exists and is not a regular file",
        ),
        (
            json!({"type": "file", "options": {"file_path": "/dev/full"}}),
            "file_path \"/dev/full\" exists and is not a regular file",
        ),
        (
            json!({"type": "file", "options": {"file_path": make_fifo(&dir, "nobody").to_str().unwrap()}}),
            "exists and is not a regular file",
        ),
        (json!({"type": "file"}), "file_path is required"),
        (
            json!({"type": "file", "options": {"file_path": "/tmp/x.log", "format": "xml"}}),
            "unknown format type \"xml\"",
        ),
        (
            json!({"type": "file", "options": {"file_path": "/tmp/x.log", "log_raw": "maybe"}}),
            "strconv.ParseBool: parsing \"maybe\": invalid syntax",
        ),
        (
            json!({"type": "file", "options": {"file_path": "/tmp/x.log", "mode": "9z"}}),
            "strconv.ParseUint",
        ),
        (json!({"type": "socket"}), "address is required"),
        (
            json!({"type": "socket", "options": {"address": closed_port()}}),
            "audit backend failed test message",
        ),
        (
            json!({"type": "socket", "options": {"address": "127.0.0.1:9", "socket_type": "sctp"}}),
            "socket_type",
        ),
        (
            json!({"type": "nope", "options": {"file_path": "/tmp/x.log"}}),
            "unknown backend type: \"nope\"",
        ),
        (
            json!({"options": {"file_path": "/tmp/x.log"}}),
            "unknown backend type: \"\"",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = enable(&server, "bad", body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = error_message(&answer);
        assert!(message.contains(expected), "{body}: {message}");
    }
    let (status, list) = server.get("sys/audit", Some(&server.root)).await;
    assert_eq!(status, 200);
    assert_eq!(list["data"], json!({}), "nothing stored: {list}");
}

fn make_fifo(dir: &TempDir, name: &str) -> PathBuf {
    let path = dir.path().join(name);
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    path
}

/// An address nothing listens on.
fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    addr
}

#[tokio::test]
async fn requests_fail_closed_when_no_device_can_record_them() {
    let server = allowing().await;
    let key = Key::rsa();
    seed_mount(&server, "jwt", &key).await;
    let collector = Collector::start("127.0.0.1:0");
    let address = collector.address.clone();
    let (status, body) = enable(
        &server,
        "net",
        json!({"type": "socket", "options": {"address": address}}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let jwt = key.sign_claims("RS256", &seed_claims("alice"));
    let (status, body) = server.login("jwt", "demo", &jwt).await;
    assert_eq!(status, 200, "{body}");

    // The collector goes: the device can record nothing, so nothing is served.
    collector.stop();
    let (status, body) = server.login("jwt", "demo", &jwt).await;
    assert_eq!(
        (status, body.clone()),
        (500, json!({"errors": ["internal error"]}))
    );
    let (status, body) = server
        .post(
            "sys/policies/acl/written-while-blind",
            Some(&server.root),
            &json!({"policy": "path \"x\" { capabilities = [\"read\"] }"}),
        )
        .await;
    assert_eq!((status, body), (500, json!({"errors": ["internal error"]})));

    // A collector again: the device reconnects, and the refused write was never executed.
    let collector = Collector::start(&address);
    let (status, body) = server
        .get("sys/policies/acl/written-while-blind", Some(&server.root))
        .await;
    assert_eq!(status, 404, "{body}");
    collector.stop();
}

/// A TCP collector of audit lines: accepts every connection on its address and hands over
/// each line it receives, as JSON.
struct Collector {
    address: String,
    lines: mpsc::Receiver<Value>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Collector {
    fn start(address: &str) -> Collector {
        let listener = TcpListener::bind(address).expect("bind the collector");
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (tx, lines) = mpsc::channel();
        let streams = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (streams2, stop2) = (streams.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        streams2.lock().unwrap().push(stream.try_clone().unwrap());
                        let tx = tx.clone();
                        std::thread::spawn(move || {
                            for line in BufReader::new(stream).lines() {
                                let Ok(line) = line else { break };
                                let value =
                                    serde_json::from_str::<Value>(&line).expect("JSON line");
                                if tx.send(value).is_err() {
                                    break;
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Collector {
            address,
            lines,
            streams,
            stop,
            accept: Some(accept),
        }
    }

    fn next(&self) -> Value {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("a line from the device")
    }

    /// Closes the listener and every connection.
    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.accept.take().unwrap().join().unwrap();
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[tokio::test]
async fn a_socket_device_sends_lines_to_its_peer_and_fails_closed_when_the_peer_is_gone() {
    let server = allowing().await;
    let key = Key::rsa();
    seed_mount(&server, "jwt", &key).await;
    let collector = Collector::start("127.0.0.1:0");
    let address = collector.address.clone();
    let (status, body) = enable(
        &server,
        "net",
        json!({"type": "socket", "description": "to the collector", "options": {"address": address}}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(collector.next()["request"]["path"], "sys/audit/test");

    let jwt = key.sign_claims("RS256", &seed_claims("alice"));
    let (status, good) = server.login("jwt", "demo", &jwt).await;
    assert_eq!(status, 200, "{good}");
    let request = collector.next();
    let response = collector.next();
    assert_eq!(request["type"], "request");
    assert_eq!(response["type"], "response");
    assert_eq!(response["request"]["id"], good["request_id"]);
    let text = response.to_string();
    assert!(!text.contains(&jwt) && !text.contains(good["auth"]["client_token"].as_str().unwrap()));

    // The list shows the device, without its salt.
    let (status, list) = server.get("sys/audit", Some(&server.root)).await;
    assert_eq!(status, 200);
    assert_eq!(
        list["data"],
        json!({"net/": {"type": "socket", "description": "to the collector", "options": {"address": address}, "path": "net/", "local": false}})
    );

    // The collector goes away: nothing is served.
    collector.stop();
    let (status, body) = server.login("jwt", "demo", &jwt).await;
    assert_eq!((status, body), (500, json!({"errors": ["internal error"]})));

    // A collector on the same address again: the device reconnects; disable it.
    let collector = Collector::start(&address);
    let (status, body) = server.delete("sys/audit/net", Some(&server.root)).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(collector.next()["request"]["path"], "sys/audit/net");
    let (status, list) = server.get("sys/audit", Some(&server.root)).await;
    assert_eq!((status, list["data"].clone()), (200, json!({})));
    // Disabling what is not there is fine; hashing with it is not.
    let (status, _) = server.delete("sys/audit/net", Some(&server.root)).await;
    assert_eq!(status, 204);
    let (status, body) = server
        .post(
            "sys/audit-hash/net",
            Some(&server.root),
            &json!({"input": "x"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error_message(&body), "unknown audit backend \"net/\"");
    collector.stop();
}

#[tokio::test]
async fn the_audit_endpoints_need_sudo_and_refuse_bad_input() {
    let server = allowing().await;
    let dir = TempDir::new("audit");
    enable_file(&server, "file", &dir.path().join("a.log"), json!({})).await;
    // The same path, or one inside it, is taken.
    for path in ["file", "file/inner"] {
        let (status, body) = enable(
            &server,
            path,
            json!({"type": "file", "options": {"file_path": dir.path().join("b.log").to_str().unwrap()}}),
        )
        .await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(error_message(&body), "path already in use");
    }
    let (status, body) = server
        .post("sys/audit-hash/file", Some(&server.root), &json!({}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(error_message(&body), "the \"input\" parameter is empty");
    // A token without sudo on sys/audit is refused.
    server
        .write_ok(
            "sys/policies/acl/reader",
            &json!({"policy": "path \"sys/audit*\" { capabilities = [\"read\", \"update\", \"delete\"] }"}),
        )
        .await;
    let (status, body) = server
        .post(
            "auth/token/create",
            Some(&server.root),
            &json!({"policies": ["reader"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let weak = body["auth"]["client_token"].as_str().unwrap();
    let (status, _) = server.get("sys/audit", Some(weak)).await;
    assert_eq!(status, 403);
    let (status, _) = server.delete("sys/audit/file", Some(weak)).await;
    assert_eq!(status, 403);
    // No token at all.
    let (status, _) = server.get("sys/audit", None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_readme_audit_block_runs_as_written_and_again() {
    let server = allowing().await;
    seed_mount(&server, "jwt", &Key::rsa()).await;
    let script = authmount_testkit::readme_block("sh audit");
    for round in ["first", "second"] {
        let stdout = server.run_script(&script, round).await;
        assert!(stdout.contains(r#""readme/":{"type":"file""#), "{stdout}");
        let line: Value = stdout
            .lines()
            .find(|l| l.contains(r#""type":"response""#))
            .map(|l| serde_json::from_str(l).expect("the log line is JSON"))
            .unwrap_or_else(|| panic!("no response line in:\n{stdout}"));
        assert_eq!(line["response"]["login_failure"], "malformed", "{line}");
        assert_eq!(line["request"]["path"], "auth/jwt/login");
        let hash: Value = stdout
            .lines()
            .find(|l| l.contains(r#""hash":"#))
            .map(|l| serde_json::from_str(l).unwrap())
            .unwrap_or_else(|| panic!("no audit-hash answer in:\n{stdout}"));
        assert_eq!(line["request"]["data"]["jwt"], hash["data"]["hash"]);
        assert!(!stdout.contains(r#""jwt":"not-a-jwt""#));
    }
    let (status, list) = server.get("sys/audit", Some(&server.root)).await;
    assert_eq!((status, list["data"].clone()), (200, json!({})));
}

#[tokio::test]
async fn enabling_over_the_api_is_refused_by_default_as_openbao_refuses_it() {
    let server = TestServer::start().await;
    let dir = TempDir::new("audit");
    let file = dir.path().join("profile.sh");
    for body in [
        json!({"type": "file", "options": {"file_path": file.to_str().unwrap(), "mode": "0755"}}),
        json!({"type": "socket", "options": {"address": "127.0.0.1:9"}}),
        json!({}),
    ] {
        let (status, answer) = enable(&server, "f", body.clone()).await;
        assert_eq!(
            (status, answer),
            (400, json!({"errors": [REFUSED]})),
            "{body}"
        );
    }
    assert!(!file.exists(), "nothing was written");
    // Without a token, the ACL answers first.
    let (status, _) = server
        .post("sys/audit/f", None, &json!({"type": "file"}))
        .await;
    assert_eq!(status, 403);
    // Listing and disabling stay as they are.
    let (status, list) = server.get("sys/audit", Some(&server.root)).await;
    assert_eq!((status, list["data"].clone()), (200, json!({})));
    let (status, _) = server.delete("sys/audit/f", Some(&server.root)).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn a_modes_execute_bits_are_dropped() {
    use std::os::unix::fs::PermissionsExt;
    let server = allowing().await;
    let dir = TempDir::new("audit");
    for (path, mode, made) in [
        ("x", "0755", 0o644),
        ("y", "0777", 0o666),
        ("z", "0640", 0o640),
    ] {
        let file = dir.path().join(format!("{path}.sh"));
        enable_file(&server, path, &file, json!({ "mode": mode })).await;
        let got = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        // The process umask may clear more bits, never add one.
        assert_eq!(got & !made, 0, "{mode}: made {got:o}");
        assert_eq!(got & 0o111, 0, "{mode}: made {got:o}");
    }
    // The option is listed as given (as OpenBao lists it).
    let (_, list) = server.get("sys/audit", Some(&server.root)).await;
    assert_eq!(list["data"]["x/"]["options"]["mode"], "0755");
}

#[tokio::test]
async fn links_and_the_servers_own_files_are_refused() {
    let dir = TempDir::new("audit");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let seal_key = data.join("seal.key");
    std::fs::write(&seal_key, [7u8; 32]).unwrap();
    let config = dir.path().join("authmount.hcl");
    std::fs::write(&config, "storage \"sqlite\" {}\n").unwrap();
    let (server, _core) = server_with(AuditRules {
        allow_api_creation: true,
        protected_paths: vec![data.clone(), config.clone()],
        declared: vec![],
    })
    .await;
    // A link to the data directory, a link to a file that does not exist yet.
    std::os::unix::fs::symlink(&data, dir.path().join("via-link")).unwrap();
    std::os::unix::fs::symlink(
        dir.path().join("target.log"),
        dir.path().join("dangling.log"),
    )
    .unwrap();
    let text = |p: PathBuf| p.to_str().unwrap().to_string();
    for (file_path, expected) in [
        (text(seal_key.clone()), "is inside the server's own files"),
        (
            text(data.join("new.log")),
            "is inside the server's own files",
        ),
        (
            text(data.join("sub/dir/new.log")),
            "is inside the server's own files",
        ),
        (
            text(dir.path().join("via-link/seal.key")),
            "is inside the server's own files",
        ),
        (text(config.clone()), "is inside the server's own files"),
        (
            format!("{}/other/../data/seal.key", dir.path().display()),
            "contains \"..\"",
        ),
        (text(dir.path().join("dangling.log")), "is a symbolic link"),
        (text(dir.path().join("via-link")), "is a symbolic link"),
    ] {
        let (status, answer) = enable(
            &server,
            "bad",
            json!({"type": "file", "options": {"file_path": file_path}}),
        )
        .await;
        assert_eq!(status, 400, "{file_path}: {answer}");
        let message = error_message(&answer);
        assert!(message.contains(expected), "{file_path}: {message}");
    }
    assert_eq!(std::fs::read(&seal_key).unwrap(), [7u8; 32]);
    assert!(
        !dir.path().join("target.log").exists(),
        "the link was not followed"
    );
    assert!(!data.join("new.log").exists() && !data.join("sub").exists());
    // Beside the data directory is fine.
    enable_file(&server, "good", &dir.path().join("audit.log"), json!({})).await;
}

fn declared(path: &str, file: &Path, description: &str) -> DeclaredDevice {
    DeclaredDevice {
        path: path.into(),
        kind: "file".into(),
        description: description.into(),
        local: false,
        options: [("file_path".to_string(), file.to_str().unwrap().to_string())].into(),
    }
}

#[tokio::test]
async fn devices_of_the_config_are_enabled_kept_and_removed_with_it() {
    let dir = TempDir::new("audit");
    let file = dir.path().join("declared.log");
    let rules = AuditRules {
        declared: vec![declared("to-file", &file, "from the config")],
        ..AuditRules::default()
    };
    let (server, core) = server_with(rules.clone()).await;
    // Enabled at the first request, which it records.
    let (status, list) = server.get("sys/audit", Some(&server.root)).await;
    assert_eq!(status, 200);
    assert_eq!(
        list["data"],
        json!({"to-file/": {"type": "file", "description": "from the config", "options": {"file_path": file.to_str().unwrap()}, "path": "to-file/", "local": false}})
    );
    let log = lines(&file);
    assert_eq!(log[0]["request"]["path"], "sys/audit/test");
    assert_eq!(entries_for(&log, "sys/audit").len(), 2, "{log:?}");
    // Not disabled over the API (OpenBao's answer), not replaced either.
    let (status, body) = server.delete("sys/audit/to-file", Some(&server.root)).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"errors": ["cannot disable configuration-managed audit device"]})
        )
    );
    let salt_before = audit_hash(&server, "to-file", "x").await;
    // The same config again (a restart): the device and its salt are kept.
    core.set_audit_rules(rules);
    let (status, _) = server.get("sys/audit", Some(&server.root)).await;
    assert_eq!(status, 200);
    assert_eq!(audit_hash(&server, "to-file", "x").await, salt_before);
    // A config without the block: the device goes at the next request.
    core.set_audit_rules(AuditRules::default());
    let (status, list) = server.get("sys/audit", Some(&server.root)).await;
    assert_eq!((status, list["data"].clone()), (200, json!({})));

    // A device enabled over the API at a declared path: the config is refused (and the
    // API device kept) until it is disabled.
    core.set_audit_rules(AuditRules {
        allow_api_creation: true,
        ..AuditRules::default()
    });
    enable_file(&server, "taken", &dir.path().join("api.log"), json!({})).await;
    core.set_audit_rules(AuditRules {
        declared: vec![declared("taken", &file, "")],
        ..AuditRules::default()
    });
    let (status, body) = server.get("sys/audit", Some(&server.root)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        error_message(&body).contains("a device enabled over the API has this path"),
        "{body}"
    );
}
