//! Properties of the JWT parser and the claim rules, through the real login path of a core
//! (in-memory storage, no HTTP): whatever string, bytes or claims a client sends, the login
//! answers a 4xx (or, for a token that really meets the role, a 200), never a 5xx and never
//! a panic.
//!
//! One core with the JWT method at `jwt`, configured with a fresh P-256 key and the role `r`
//! (`bound_audiences` set, `user_claim = "sub"`), serves every case. Tokens are signed with
//! that key over header and payload bytes built here, so the claim rules behind the
//! signature check are reached too.

use std::sync::OnceLock;

use authmount_jwt::keys::Jws;
use authmount_testkit::{now, InProcess};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use josekit::jws::{JwsSigner, ES256};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const ISSUER: &str = "https://issuer.test/";
/// The role's audience: no generator below can produce it, so arbitrary claims never meet it.
const AUDIENCE: &str = "urn:authmount:properties:aud-Zq9";

/// The core, the runtime that drives it, and the signer of the configured key.
struct Harness {
    runtime: tokio::runtime::Runtime,
    core: InProcess,
    signer: Box<dyn JwsSigner>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let pair = ES256.generate_key_pair().expect("P-256 key");
        let signer = Box::new(
            ES256
                .signer_from_der(pair.to_der_private_key())
                .expect("signer"),
        );
        let pem = String::from_utf8(pair.to_pem_public_key()).expect("PEM is ASCII");
        let core = runtime.block_on(async {
            let core = InProcess::start().await;
            core.write_ok("sys/auth/jwt", json!({"type": "jwt"})).await;
            core.write_ok(
                "auth/jwt/config",
                json!({"jwt_validation_pubkeys": [pem], "bound_issuer": ISSUER}),
            )
            .await;
            core.write_ok(
                "auth/jwt/role/r",
                json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": AUDIENCE, "policies": "p"}),
            )
            .await;
            core
        });
        Harness {
            runtime,
            core,
            signer,
        }
    })
}

/// Logs in to role `r` with `jwt`; the reply's status and body.
fn login(jwt: &str) -> (u16, Option<Value>) {
    let h = harness();
    let reply = h.runtime.block_on(h.core.login("jwt", "r", jwt));
    (reply.status, reply.body)
}

/// A compact JWS over these exact header and payload bytes, signed with the configured key.
fn signed(header: &[u8], payload: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = harness().signer.sign(input.as_bytes()).expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn valid_claims() -> Map<String, Value> {
    let now = now();
    json!({"iss": ISSUER, "sub": "user", "aud": AUDIENCE, "iat": now, "exp": now + 300})
        .as_object()
        .expect("object")
        .clone()
}

const HEADER: &[u8] = br#"{"alg":"ES256","typ":"JWT"}"#;

fn claims_token(claims: &Map<String, Value>) -> String {
    signed(HEADER, &serde_json::to_vec(claims).expect("claims"))
}

/// A refusal: a 4xx with Vault's `{"errors":[...]}` body.
fn assert_refused(what: &str, (status, body): (u16, Option<Value>)) -> Result<(), TestCaseError> {
    prop_assert!(
        (400..500).contains(&status),
        "{what}: answered {status} {body:?}"
    );
    let errors = body.as_ref().and_then(|b| b["errors"].as_array());
    prop_assert!(errors.is_some(), "{what}: not an error body: {body:?}");
    Ok(())
}

/// Member names: the registered claims, look-alikes of them, and anything.
fn member_name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "Exp", "AUD", "ıss", "ſub", "alg",
            "kid", "crit", "typ", "b64", "jwk",
        ])
        .prop_map(str::to_string),
        "\\PC{0,8}",
    ]
}

/// Any JSON value up to three levels deep (no value equal to the role's audience).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        "\\PC{0,12}".prop_map(Value::String),
        Just(json!(ISSUER)),
        Just(json!("user")),
        Just(json!("ES256")),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(member_name(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn the_harness_accepts_a_valid_token_and_refuses_a_forged_one() {
    let token = claims_token(&valid_claims());
    let (status, body) = login(&token);
    assert_eq!(status, 200, "{body:?}");
    // The same token with the last signature character changed.
    let mut forged = token.clone();
    let last = forged.pop().expect("non-empty");
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let (status, body) = login(&forged);
    assert_eq!(status, 400, "{body:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any text as the token: the parser returns, the login refuses with a 4xx.
    #[test]
    fn any_text_is_refused(text in prop_oneof!["\\PC{0,80}", any::<String>(), "[A-Za-z0-9_.=-]{0,120}"]) {
        let _ = Jws::parse(&text);
        assert_refused(&format!("{text:?}"), login(&text))?;
    }

    /// Three base64url parts of arbitrary bytes (an unsigned or badly signed token).
    #[test]
    fn any_three_parts_are_refused(
        header in proptest::collection::vec(any::<u8>(), 0..64),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        signature in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let token = [header, payload, signature]
            .iter()
            .map(|part| URL_SAFE_NO_PAD.encode(part))
            .collect::<Vec<_>>()
            .join(".");
        let _ = Jws::parse(&token);
        assert_refused(&token, login(&token))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// A correctly signed token whose header has arbitrary members (which may replace `alg`)
    /// and whose payload is arbitrary bytes: refused with a 4xx.
    #[test]
    fn signed_arbitrary_bytes_are_refused(
        extra in proptest::collection::btree_map(member_name(), json_value(), 0..4),
        payload in proptest::collection::vec(any::<u8>(), 0..96),
    ) {
        let mut header = json!({"alg": "ES256"}).as_object().expect("object").clone();
        header.extend(extra);
        let token = signed(&serde_json::to_vec(&header).expect("header"), &payload);
        assert_refused(&token, login(&token))?;
    }

    /// A correctly signed token over any JSON value as its claims: refused with a 4xx (no
    /// generated value carries the role's audience).
    #[test]
    fn signed_arbitrary_claims_are_refused(claims in json_value()) {
        let token = signed(HEADER, &serde_json::to_vec(&claims).expect("claims"));
        assert_refused(&claims.to_string(), login(&token))?;
    }

    /// A valid token with one claim replaced by any JSON value: a 200 or a 4xx, never
    /// anything else; and a 200 only when the replaced claim still meets its rule.
    #[test]
    fn a_valid_token_with_one_claim_replaced_is_judged(name in member_name(), value in json_value()) {
        let mut claims = valid_claims();
        claims.insert(name.clone(), value.clone());
        let (status, body) = login(&claims_token(&claims));
        prop_assert!(status == 200 || (400..500).contains(&status), "{name} = {value}: {status} {body:?}");
        if status == 200 {
            match name.as_str() {
                "iss" => prop_assert_eq!(&value, &json!(ISSUER)),
                "sub" => prop_assert!(value.as_str().is_some_and(|s| !s.is_empty()), "{}", value),
                "aud" => prop_assert!(false, "aud = {} met the role", value),
                "exp" => prop_assert!(value.is_null() || value.as_f64().is_some_and(|t| t > (now() - 300) as f64), "{}", value),
                "nbf" | "iat" => prop_assert!(value.is_null() || value.is_number(), "{}", value),
                _ => {}
            }
        }
    }
}
