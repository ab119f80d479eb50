//! Remote key sources end to end: a real authmount server and a real key server
//! (`authmount_testkit::idp`, plain HTTP or HTTPS under a CA made in the test) serving JWKS and OIDC
//! discovery documents that the test changes while it runs, with requests counted per path.
//!
//! Covers the config write checks (reference §2.2 steps 3, 7 and 8, with DECISIONS D13),
//! the key cache and its refetch rules (D5, reference §2.4), unusable JWKS entries (D6),
//! `jwks_pairs` (D11), discovery with client credentials (D3), and that no URL named by a
//! token is ever fetched.
//!
//! Servers here read a manual clock: tests that need a refetch move it past the cool-down
//! (`jwks::COOL_DOWN`, 5 s) instead of sleeping.

use std::sync::Arc;
use std::time::{Duration, Instant};

use authmount::framework::Clock;
use authmount_jwt::COOL_DOWN;
use authmount_jwt::MAX_DOCUMENT_BYTES;
use authmount_testkit::idp::{KeyServer, Reply, TestCa};
use authmount_testkit::{
    error_message, random_hex, seed_claims, seed_role, Key, KeyKind, TestServer,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

const MOUNT: &str = "jwt";
const CONFIG: &str = "auth/jwt/config";
/// The login error when no key of the source verifies the token (reference §2.4 step 4).
const BAD_SIGNATURE: &str = "failed to verify id token signature";
/// The login error prefix of every signature failure.
const NOT_VALID: &str = "error validating token: ";

/// A server with `jwt` enabled at `jwt/` and the seed role `demo`, not yet configured.
async fn server_with_role() -> TestServer {
    let server = TestServer::start_on(Clock::manual()).await;
    server.enable_jwt(MOUNT).await;
    server.write_ok("auth/jwt/role/demo", &seed_role()).await;
    server
}

async fn write_config(server: &TestServer, config: &Value) -> (u16, Value) {
    server.post(CONFIG, Some(&server.root), config).await
}

async fn read_config(server: &TestServer) -> (u16, Value) {
    server.get(CONFIG, Some(&server.root)).await
}

/// Asserts a 400 config write whose message is `<prefix>: <cause>` with a non-empty cause
/// (DECISIONS D13), and returns the cause.
async fn assert_write_refused(server: &TestServer, config: &Value, prefix: &str) -> String {
    let (status, body) = write_config(server, config).await;
    assert_eq!(status, 400, "write {config}: {body}");
    let message = error_message(&body);
    let cause = message
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or_else(|| panic!("{message:?} is not {prefix:?} followed by \": <cause>\""));
    assert!(!cause.trim().is_empty(), "no cause in {message:?}");
    cause.to_string()
}

/// A seed token (accepted by the role `demo`) signed by `key` with its first algorithm,
/// with `kid` in the header when given, plus the members of `extra_header`.
fn token_with(key: &Key, kid: Option<&str>, extra_header: Value) -> String {
    let mut header = extra_header;
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    key.sign(key.alg(), &header, &seed_claims("alice"))
}

fn token(key: &Key, kid: Option<&str>) -> String {
    token_with(key, kid, json!({}))
}

async fn login(server: &TestServer, jwt: &str) -> (u16, Value) {
    server.login(MOUNT, "demo", jwt).await
}

async fn assert_login_ok(server: &TestServer, jwt: &str, what: &str) {
    let (status, body) = login(server, jwt).await;
    assert_eq!(status, 200, "{what}: {body}");
    let token = body["auth"]["client_token"].as_str().unwrap_or_default();
    assert!(!token.is_empty(), "{what}: no client token in {body}");
}

/// Asserts a 400 login whose message starts with `error validating token: ` and contains
/// `needle`.
async fn assert_login_refused(server: &TestServer, jwt: &str, needle: &str, what: &str) {
    let (status, body) = login(server, jwt).await;
    assert_eq!(status, 400, "{what}: {body}");
    let message = error_message(&body);
    assert!(
        message.starts_with(NOT_VALID) && message.contains(needle),
        "{what}: {message:?} should start with {NOT_VALID:?} and contain {needle:?}"
    );
}

/// Waits out the refetch cool-down of the key sets (D5), with a margin, on the server's
/// manual clock (no sleeping).
fn wait_cool_down(server: &TestServer) {
    server.clock.advance(COOL_DOWN + Duration::from_millis(500));
}

/// A key server serving `keys` as a JWKS at `/keys`.
fn jwks_server(keys: &[Value]) -> KeyServer {
    let idp = KeyServer::http();
    idp.serve_jwks("/keys", keys);
    idp
}

/// A server configured with `jwks_url` = `idp`'s `/keys`, asserting 204.
async fn server_on_jwks(idp: &KeyServer) -> TestServer {
    let server = server_with_role().await;
    server
        .write_ok(CONFIG, &json!({ "jwks_url": idp.url("/keys") }))
        .await;
    server
}

// ---------------------------------------------------------------------------------------
// Write-time checks of jwks_url (reference §2.2 step 7, DECISIONS D13)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn jwks_url_write_is_refused_for_404_non_json_and_oversized_documents_with_the_cause() {
    let server = server_with_role().await;
    let key = Key::rsa();
    let jwks = json!({ "keys": [key.public_jwk(Some("a"))] });
    let idp = KeyServer::http();
    // A valid key set behind a 404: only the status is wrong.
    idp.set(
        "/missing",
        Reply::new(404, "application/json", serde_json::to_vec(&jwks).unwrap()),
    );
    idp.set(
        "/html",
        Reply::new(200, "text/html", "<html><body>Sign in</body></html>"),
    );
    idp.set_json("/no-keys-array", &json!({ "jwks": [] }));
    // A valid key set padded to 2 MB, over the 1 MiB cap: once with a Content-Length, once
    // ending at the connection close so the cap must hold while reading.
    let two_mb = 2 * 1024 * 1024;
    assert!(two_mb > MAX_DOCUMENT_BYTES);
    let mut big = jwks.clone();
    big["padding"] = json!("x".repeat(two_mb));
    idp.set_json("/big", &big);
    idp.set(
        "/big-unframed",
        Reply {
            unframed: true,
            ..Reply::json(&big)
        },
    );

    for (path, in_cause) in [
        ("/missing", Some("404")),
        ("/html", None),
        ("/no-keys-array", None),
        ("/big", None),
        ("/big-unframed", None),
    ] {
        let url = idp.url(path);
        let cause = assert_write_refused(
            &server,
            &json!({ "jwks_url": url }),
            &format!("error checking jwks URL {url}"),
        )
        .await;
        if let Some(needle) = in_cause {
            assert!(cause.contains(needle), "{path}: cause {cause:?}");
        }
        assert_eq!(idp.hits(path), 1, "{path} is fetched once by the write");
    }
    let (status, body) = read_config(&server).await;
    assert_eq!(status, 404, "a refused write stores nothing: {body}");

    // The same padding under the cap is accepted: the size, not the extra member, was refused.
    let mut medium = jwks.clone();
    medium["padding"] = json!("x".repeat(MAX_DOCUMENT_BYTES / 2));
    idp.set_json("/medium", &medium);
    server
        .write_ok(CONFIG, &json!({ "jwks_url": idp.url("/medium") }))
        .await;
    assert_login_ok(&server, &token(&key, Some("a")), "key from the padded set").await;
}

#[tokio::test]
async fn jwks_url_write_accepts_a_key_set_with_zero_keys() {
    let server = server_with_role().await;
    let idp = jwks_server(&[]);
    let url = idp.url("/keys");
    server.write_ok(CONFIG, &json!({ "jwks_url": url })).await;
    assert_eq!(idp.hits("/keys"), 1, "the write checks the URL");
    let (status, body) = read_config(&server).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["jwks_url"], json!(url));
    // With no key, nothing verifies.
    let key = Key::rsa();
    assert_login_refused(
        &server,
        &token(&key, Some("a")),
        BAD_SIGNATURE,
        "login against an empty set",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// HTTPS with a CA given in the config
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn https_jwks_url_is_trusted_through_jwks_ca_pem_and_refused_under_another_ca() {
    let ca = TestCa::new("authmount test CA");
    let other_ca = TestCa::new("some other CA");
    let idp = KeyServer::https(&ca);
    let key = Key::generate(KeyKind::P256);
    idp.serve_jwks("/keys", &[key.public_jwk(Some("a"))]);
    let url = idp.url("/keys");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let server = server_with_role().await;

    let prefix = format!("error checking jwks URL {url}");
    for (what, ca_pem) in [
        ("another CA", other_ca.cert_pem.as_str()),
        ("the system roots", ""),
    ] {
        let cause = assert_write_refused(
            &server,
            &json!({ "jwks_url": url, "jwks_ca_pem": ca_pem }),
            &prefix,
        )
        .await;
        eprintln!("jwks_url under {what}: {cause}");
    }
    assert_eq!(
        idp.total_hits(),
        0,
        "no request gets past a refused TLS handshake"
    );

    server
        .write_ok(
            CONFIG,
            &json!({ "jwks_url": url, "jwks_ca_pem": ca.cert_pem }),
        )
        .await;
    assert_eq!(idp.hits("/keys"), 1);
    assert_login_ok(&server, &token(&key, Some("a")), "login over HTTPS").await;
}

#[tokio::test]
async fn https_discovery_url_is_trusted_through_oidc_discovery_ca_pem_and_refused_under_another_ca()
{
    let ca = TestCa::new("authmount test CA");
    let other_ca = TestCa::new("some other CA");
    let idp = KeyServer::https(&ca);
    let key = Key::generate(KeyKind::Ed25519);
    // By name this time: the certificate covers `localhost` as well as 127.0.0.1.
    let issuer = format!("https://localhost:{}/idp", idp.port);
    idp.serve_discovery("/idp", &issuer, &format!("{issuer}/keys"));
    idp.serve_jwks("/idp/keys", &[key.public_jwk(Some("d"))]);
    let server = server_with_role().await;

    for (what, ca_pem) in [
        ("another CA", other_ca.cert_pem.as_str()),
        ("the system roots", ""),
    ] {
        let cause = assert_write_refused(
            &server,
            &json!({ "oidc_discovery_url": issuer, "oidc_discovery_ca_pem": ca_pem }),
            "error checking oidc discovery URL",
        )
        .await;
        eprintln!("oidc_discovery_url under {what}: {cause}");
    }
    assert_eq!(
        idp.total_hits(),
        0,
        "no request gets past a refused TLS handshake"
    );

    server
        .write_ok(
            CONFIG,
            &json!({ "oidc_discovery_url": issuer, "oidc_discovery_ca_pem": ca.cert_pem }),
        )
        .await;
    assert_eq!(idp.hits("/idp/.well-known/openid-configuration"), 1);
    assert_eq!(
        idp.hits("/idp/keys"),
        1,
        "the jwks_uri is fetched under the same CA"
    );
    assert_login_ok(
        &server,
        &token(&key, Some("d")),
        "login over HTTPS discovery",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// The key cache and its refetch rules (DECISIONS D5)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn rotated_key_is_fetched_once_after_the_cool_down_then_served_from_the_cache() {
    let a = Key::rsa();
    let b = Key::rsa();
    let idp = jwks_server(&[a.public_jwk(Some("a"))]);
    let server = server_on_jwks(&idp).await;
    let after_write = idp.hits("/keys");
    assert_eq!(after_write, 1, "the write checks the URL once");
    assert_login_ok(&server, &token(&a, Some("a")), "login with kid a").await;
    let after_first_login = idp.hits("/keys");
    assert!(
        after_first_login - after_write <= 1,
        "the first login fetches at most once, got {}",
        after_first_login - after_write
    );

    wait_cool_down(&server);
    idp.serve_jwks("/keys", &[b.public_jwk(Some("b"))]);
    assert_login_ok(&server, &token(&b, Some("b")), "login with the new kid b").await;
    let after_rotation = idp.hits("/keys");
    assert_eq!(
        after_rotation - after_first_login,
        1,
        "the new kid costs exactly one fetch"
    );
    assert_login_ok(&server, &token(&b, Some("b")), "login with kid b again").await;
    assert_eq!(idp.hits("/keys"), after_rotation, "kid b is now cached");

    // Key a left with the refetch; within the cool-down its token is refused without a fetch.
    assert_login_refused(
        &server,
        &token(&a, Some("a")),
        BAD_SIGNATURE,
        "kid a after the rotation",
    )
    .await;
    assert_eq!(idp.hits("/keys"), after_rotation);
    eprintln!(
        "rotation fetches: write {after_write}, first login +{}, kid b +{}, kid b again +0, kid a +0",
        after_first_login - after_write,
        after_rotation - after_first_login
    );
}

#[tokio::test]
async fn fifty_unknown_kids_after_the_cool_down_cause_at_most_two_fetches() {
    let a = Key::rsa();
    let idp = jwks_server(&[a.public_jwk(Some("a"))]);
    let server = server_on_jwks(&idp).await;
    assert_login_ok(&server, &token(&a, Some("a")), "login with kid a").await;

    wait_cool_down(&server);
    idp.reset_hits();
    let started = Instant::now();
    for i in 0..50 {
        let kid = format!("unknown-{i}-{}", random_hex());
        assert_login_refused(
            &server,
            &token(&a, Some(&kid)),
            BAD_SIGNATURE,
            &format!("unknown kid {kid}"),
        )
        .await;
    }
    let fetches = idp.hits("/keys");
    eprintln!(
        "50 unknown kids in {:?}: {fetches} fetch(es)",
        started.elapsed()
    );
    assert!(
        (1..=2).contains(&fetches),
        "the first miss refetches, then the cool-down holds: {fetches} fetches"
    );
    assert_login_ok(&server, &token(&a, Some("a")), "kid a is still cached").await;
    assert_eq!(idp.hits("/keys"), fetches);
}

#[tokio::test]
async fn twenty_concurrent_logins_with_a_new_kid_share_one_slow_fetch() {
    let a = Key::rsa();
    let b = Key::generate(KeyKind::P384);
    let idp = jwks_server(&[a.public_jwk(Some("a"))]);
    let server = Arc::new(server_on_jwks(&idp).await);
    assert_login_ok(&server, &token(&a, Some("a")), "login with kid a").await;

    wait_cool_down(&server);
    idp.serve_jwks("/keys", &[a.public_jwk(Some("a")), b.public_jwk(Some("b"))]);
    let delay = Duration::from_secs(1);
    idp.set_delay("/keys", delay);
    idp.reset_hits();

    let jwt = token(&b, Some("b"));
    let started = Instant::now();
    let mut logins = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let server = server.clone();
        let jwt = jwt.clone();
        logins.spawn(async move {
            let (status, body) = login(&server, &jwt).await;
            (status, body, started.elapsed())
        });
    }
    let mut answered = Vec::new();
    while let Some(result) = logins.join_next().await {
        answered.push(result.expect("login task"));
    }
    let fetches = idp.hits("/keys");
    eprintln!(
        "20 concurrent logins with a new kid: {fetches} fetch(es), answered after {:?}..{:?}",
        answered.iter().map(|a| a.2).min().unwrap_or_default(),
        answered.iter().map(|a| a.2).max().unwrap_or_default(),
    );
    for (status, body, elapsed) in &answered {
        assert_eq!(*status, 200, "a concurrent login: {body}");
        assert!(
            *elapsed >= delay - Duration::from_millis(100),
            "answered after {elapsed:?}, before the key was served"
        );
    }
    assert_eq!(fetches, 1, "concurrent misses share one fetch");
    assert_login_ok(&server, &jwt, "kid b is now cached").await;
    assert_eq!(idp.hits("/keys"), 1);
}

/// A successful login, then `break_it` on the key server: the cached key keeps working, an
/// unknown kid fails after its (failed) refetch, and the failure does not drop the cache.
async fn cached_keys_outlive_a_broken_key_server(break_it: impl FnOnce(&KeyServer)) {
    let a = Key::rsa();
    let idp = jwks_server(&[a.public_jwk(Some("a"))]);
    let server = server_on_jwks(&idp).await;
    assert_login_ok(&server, &token(&a, Some("a")), "login before the outage").await;

    break_it(&idp);
    idp.reset_hits();
    for _ in 0..3 {
        assert_login_ok(
            &server,
            &token(&a, Some("a")),
            "cached key during the outage",
        )
        .await;
    }
    assert_eq!(idp.hits("/keys"), 0, "a cached key needs no fetch");

    wait_cool_down(&server);
    let stranger = Key::rsa();
    assert_login_refused(
        &server,
        &token(&stranger, Some("unknown")),
        "fetching keys",
        "unknown kid during the outage",
    )
    .await;
    assert_eq!(
        idp.hits("/keys"),
        1,
        "the unknown kid tried one refetch, which failed"
    );
    assert_login_ok(
        &server,
        &token(&a, Some("a")),
        "cached key after the failed refetch",
    )
    .await;
    assert_eq!(idp.hits("/keys"), 1);
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_key_server_answers_500() {
    cached_keys_outlive_a_broken_key_server(|idp| idp.set_status("/keys", 500)).await;
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_key_server_answers_garbage() {
    cached_keys_outlive_a_broken_key_server(|idp| {
        idp.set(
            "/keys",
            Reply::new(200, "text/plain", "%%% this is not a key set %%%"),
        )
    })
    .await;
}

#[tokio::test]
async fn stale_key_set_is_refreshed_in_the_background_after_its_max_age() {
    let a = Key::rsa();
    let b = Key::generate(KeyKind::P256);
    let idp = jwks_server(&[a.public_jwk(Some("a"))]);
    // max-age below the cool-down counts as the cool-down (D5).
    idp.add_header("/keys", "Cache-Control", "public, max-age=1");
    let server = server_on_jwks(&idp).await;
    assert_eq!(idp.hits("/keys"), 1);

    wait_cool_down(&server);
    idp.serve_jwks("/keys", &[a.public_jwk(Some("a")), b.public_jwk(Some("b"))]);
    let delay = Duration::from_secs(1);
    idp.set_delay("/keys", delay);
    let started = Instant::now();
    assert_login_ok(&server, &token(&a, Some("a")), "stale but cached key").await;
    let took = started.elapsed();
    assert!(
        took < delay,
        "the stale set answers at once ({took:?}); the refresh runs in the background"
    );
    tokio::time::sleep(delay + Duration::from_millis(500)).await;
    assert_eq!(idp.hits("/keys"), 2, "one background refresh");
    assert_login_ok(
        &server,
        &token(&b, Some("b")),
        "kid b came with the background refresh",
    )
    .await;
    assert_eq!(idp.hits("/keys"), 2);
}

// ---------------------------------------------------------------------------------------
// Unusable entries (DECISIONS D6) and jwks_pairs (DECISIONS D11)
// ---------------------------------------------------------------------------------------

/// Big-endian hex to base64url, for fixed JWK coordinates.
fn hex_b64(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn unusable_jwks_entries_are_skipped_and_the_rest_of_the_set_works() {
    let good = Key::generate(KeyKind::P256);
    let enc = Key::rsa();
    let mut good_jwk = good.public_jwk(Some("good"));
    good_jwk["use"] = json!("sig");
    let mut enc_jwk = enc.public_jwk(Some("enc"));
    enc_jwk["use"] = json!("enc");
    let idp = jwks_server(&[
        json!({ "kty": "XYZ", "kid": "xyz", "k": "AAAA" }),
        // P-192's base point (SEC 2): a real point on a curve JOSE does not define for JWS.
        json!({
            "kty": "EC",
            "crv": "P-192",
            "kid": "p192",
            "x": hex_b64("188da80eb03090f67cbf20eb43a18800f4ff0afd82ff1012"),
            "y": hex_b64("07192b95ffc8da78631011ed6b24cdd573f977a11e794811"),
        }),
        enc_jwk,
        good_jwk,
    ]);
    let server = server_on_jwks(&idp).await;

    assert_login_ok(&server, &token(&good, Some("good")), "the good key by kid").await;
    assert_login_ok(&server, &token(&good, None), "the good key without kid").await;
    assert_login_refused(
        &server,
        &token(&enc, Some("enc")),
        BAD_SIGNATURE,
        "the use:enc key by kid",
    )
    .await;
    assert_login_refused(
        &server,
        &token(&enc, None),
        BAD_SIGNATURE,
        "the use:enc key without kid",
    )
    .await;
}

#[tokio::test]
async fn jwks_pairs_pick_the_source_by_kid_and_try_every_key_without_kid() {
    let a = Key::rsa();
    let b = Key::generate(KeyKind::Ed25519);
    let first = jwks_server(&[a.public_jwk(Some("a"))]);
    let second = jwks_server(&[b.public_jwk(Some("b"))]);
    let server = server_with_role().await;
    server
        .write_ok(
            CONFIG,
            &json!({ "jwks_pairs": [
                { "jwks_url": first.url("/keys"), "jwks_ca_pem": "" },
                { "jwks_url": second.url("/keys"), "jwks_ca_pem": "" },
            ] }),
        )
        .await;
    assert_eq!(
        (first.hits("/keys"), second.hits("/keys")),
        (1, 1),
        "the write checks every URL"
    );

    assert_login_ok(
        &server,
        &token(&a, Some("a")),
        "kid a from the first source",
    )
    .await;
    assert_login_ok(
        &server,
        &token(&b, Some("b")),
        "kid b from the second source",
    )
    .await;
    assert_login_ok(&server, &token(&a, None), "no kid, key of the first source").await;
    assert_login_ok(
        &server,
        &token(&b, None),
        "no kid, key of the second source",
    )
    .await;

    // The kid names the first source, whose keys cannot verify b's signature: if the kid
    // were ignored, b's key would verify it.
    assert_login_refused(
        &server,
        &token(&b, Some("a")),
        BAD_SIGNATURE,
        "b's signature under kid a",
    )
    .await;
    assert_login_refused(
        &server,
        &token(&a, Some("c")),
        "no key found with kid c in any JWKS endpoint",
        "kid c in no source",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// OIDC discovery
// ---------------------------------------------------------------------------------------

const DISCOVERY: &str = "/idp/.well-known/openid-configuration";

/// A key server with a discovery document at `/idp` whose `jwks_uri` is `/idp/jwks`
/// holding `key` as kid "d".
fn discovery_server(key: &Key) -> KeyServer {
    let idp = KeyServer::http();
    idp.serve_discovery("/idp", &idp.url("/idp"), &idp.url("/idp/jwks"));
    idp.serve_jwks("/idp/jwks", &[key.public_jwk(Some("d"))]);
    idp
}

#[tokio::test]
async fn discovery_url_logs_in_and_the_document_stays_cached_while_it_fails() {
    let key = Key::rsa();
    let idp = discovery_server(&key);
    let server = server_with_role().await;
    let config = json!({ "oidc_discovery_url": idp.url("/idp") });
    server.write_ok(CONFIG, &config).await;
    assert_eq!((idp.hits(DISCOVERY), idp.hits("/idp/jwks")), (1, 1));
    assert_login_ok(&server, &token(&key, Some("d")), "login through discovery").await;
    assert_login_ok(&server, &token(&key, None), "no kid, through discovery").await;

    idp.set_status(DISCOVERY, 500);
    for _ in 0..3 {
        assert_login_ok(
            &server,
            &token(&key, Some("d")),
            "login while discovery answers 500",
        )
        .await;
    }
    assert_eq!(idp.hits(DISCOVERY), 1, "the document is not read again");

    // The document really is failing: rewriting the same config is refused, and the
    // refusal leaves the working config in place.
    let cause = assert_write_refused(&server, &config, "error checking oidc discovery URL").await;
    assert!(cause.contains("500"), "cause {cause:?}");
    assert_login_ok(
        &server,
        &token(&key, Some("d")),
        "after the refused rewrite",
    )
    .await;
}

#[tokio::test]
async fn discovery_issuer_that_differs_by_a_trailing_slash_refuses_the_write() {
    let key = Key::rsa();
    let idp = KeyServer::http();
    idp.serve_jwks("/keys", &[key.public_jwk(Some("d"))]);
    // The document adds a slash the config lacks, and the reverse.
    idp.serve_discovery("/idp", &format!("{}/", idp.url("/idp")), &idp.url("/keys"));
    idp.serve_discovery("/other", &idp.url("/other"), &idp.url("/keys"));
    let server = server_with_role().await;

    for (configured, document) in [
        (idp.url("/idp"), "/idp/.well-known/openid-configuration"),
        (
            idp.url("/other/"),
            "/other/.well-known/openid-configuration",
        ),
    ] {
        let cause = assert_write_refused(
            &server,
            &json!({ "oidc_discovery_url": configured }),
            "error checking oidc discovery URL",
        )
        .await;
        assert_eq!(
            idp.hits(document),
            1,
            "{configured}: the document was read ({cause})"
        );
    }
    assert_eq!(idp.hits("/keys"), 0, "no key set from a mismatched issuer");
    let (status, body) = read_config(&server).await;
    assert_eq!(status, 404, "a refused write stores nothing: {body}");

    // With the issuer matching, the same URL is accepted.
    idp.serve_discovery("/idp", &idp.url("/idp"), &idp.url("/keys"));
    server
        .write_ok(CONFIG, &json!({ "oidc_discovery_url": idp.url("/idp") }))
        .await;
    assert_login_ok(&server, &token(&key, Some("d")), "matching issuer").await;
}

#[tokio::test]
async fn discovery_with_client_credentials_still_allows_jwt_login_and_never_returns_the_secret() {
    let key = Key::generate(KeyKind::P521);
    let idp = discovery_server(&key);
    let server = server_with_role().await;
    let secret = format!("client-secret-{}", random_hex());
    server
        .write_ok(
            CONFIG,
            &json!({
                "oidc_discovery_url": idp.url("/idp"),
                "oidc_client_id": "authmount-test-client",
                "oidc_client_secret": secret,
            }),
        )
        .await;
    // D3: verified against the discovery keys, with the role's own bound_audiences (the
    // seed token's audience is not the client id).
    assert_login_ok(
        &server,
        &token(&key, Some("d")),
        "JWT login with an OIDC-flow config",
    )
    .await;

    let (status, body) = read_config(&server).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["oidc_client_id"], "authmount-test-client");
    assert!(
        body["data"].get("oidc_client_secret").is_none(),
        "the secret field is not returned: {body}"
    );
    assert!(
        !body.to_string().contains(&secret),
        "the secret appears in the config read: {body}"
    );
}

// ---------------------------------------------------------------------------------------
// What is never fetched
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_config_change_drops_the_old_key_set_at_once() {
    let a = Key::rsa();
    let b = Key::rsa();
    let idp = KeyServer::http();
    idp.serve_jwks("/a/keys", &[a.public_jwk(Some("a"))]);
    idp.serve_jwks("/b/keys", &[b.public_jwk(Some("b"))]);
    let server = server_with_role().await;
    server
        .write_ok(CONFIG, &json!({ "jwks_url": idp.url("/a/keys") }))
        .await;
    assert_login_ok(&server, &token(&a, Some("a")), "kid a from URL A").await;

    server
        .write_ok(CONFIG, &json!({ "jwks_url": idp.url("/b/keys") }))
        .await;
    idp.reset_hits();
    for _ in 0..3 {
        assert_login_ok(&server, &token(&b, Some("b")), "kid b from URL B").await;
    }
    // Key a was in the old cache only.
    assert_login_refused(
        &server,
        &token(&a, Some("a")),
        BAD_SIGNATURE,
        "kid a after the change",
    )
    .await;
    assert_login_refused(
        &server,
        &token(&a, None),
        BAD_SIGNATURE,
        "key a without kid after the change",
    )
    .await;

    wait_cool_down(&server);
    let stranger = Key::rsa();
    assert_login_refused(
        &server,
        &token(&stranger, Some("unknown")),
        BAD_SIGNATURE,
        "an unknown kid after the cool-down",
    )
    .await;
    assert_login_refused(
        &server,
        &token(&a, Some("a")),
        BAD_SIGNATURE,
        "kid a after the cool-down",
    )
    .await;
    assert_login_ok(&server, &token(&b, Some("b")), "kid b still").await;
    assert_eq!(idp.hits("/a/keys"), 0, "URL A is never fetched again");
    assert_eq!(
        idp.hits("/b/keys"),
        1,
        "the miss after the cool-down refetched URL B"
    );
}

#[tokio::test]
async fn urls_named_by_a_token_jku_and_x5u_are_never_fetched() {
    let a = Key::rsa();
    let stranger = Key::rsa();
    let idp = jwks_server(&[a.public_jwk(Some("a"))]);
    // Tempting answers on the paths the token names: the stranger's key.
    idp.serve_jwks("/jku", &[stranger.public_jwk(Some("x"))]);
    idp.set(
        "/x5u",
        Reply::new(
            200,
            "application/pem-certificate-chain",
            stranger.public_pem(),
        ),
    );
    let server = server_on_jwks(&idp).await;
    let pointers = json!({
        "jku": idp.url("/jku"),
        "x5u": idp.url("/x5u"),
        "jwk": stranger.public_jwk(None),
    });

    assert_login_ok(
        &server,
        &token_with(&a, Some("a"), pointers.clone()),
        "a configured key, with jku/x5u/jwk in the header",
    )
    .await;
    for kid in [Some("x"), None] {
        assert_login_refused(
            &server,
            &token_with(&stranger, kid, pointers.clone()),
            BAD_SIGNATURE,
            &format!("the stranger's key, kid {kid:?}, with jku/x5u/jwk"),
        )
        .await;
    }
    // After the cool-down the miss refetches: the configured URL only.
    wait_cool_down(&server);
    let before = idp.hits("/keys");
    assert_login_refused(
        &server,
        &token_with(&stranger, Some("x"), pointers.clone()),
        BAD_SIGNATURE,
        "the stranger's key after the cool-down",
    )
    .await;
    assert_eq!(
        idp.hits("/keys") - before,
        1,
        "the miss refetched the configured URL"
    );
    assert_eq!(idp.hits("/jku"), 0, "jku is never fetched");
    assert_eq!(idp.hits("/x5u"), 0, "x5u is never fetched");
}
