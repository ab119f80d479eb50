//! Freshly generated signing keys that mint compact JWS tokens (josekit), as an identity
//! provider would.

use josekit::jwk::KeyPair;
use josekit::jws::{self, JwsHeader, JwsSigner};
use serde_json::{json, Map, Value};

/// The kinds of signing key the JWT method accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA, 2048 bits (RS256..RS512, PS256..PS512).
    Rsa2048,
    /// ECDSA on P-256 (ES256).
    P256,
    /// ECDSA on P-384 (ES384).
    P384,
    /// ECDSA on P-521 (ES512).
    P521,
    /// EdDSA on Ed25519.
    Ed25519,
}

impl KeyKind {
    /// Every kind, RSA first.
    pub const ALL: [KeyKind; 5] = [
        KeyKind::Rsa2048,
        KeyKind::P256,
        KeyKind::P384,
        KeyKind::P521,
        KeyKind::Ed25519,
    ];

    /// The JWS algorithms a key of this kind signs with.
    pub fn algs(self) -> &'static [&'static str] {
        match self {
            KeyKind::Rsa2048 => &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
            KeyKind::P256 => &["ES256"],
            KeyKind::P384 => &["ES384"],
            KeyKind::P521 => &["ES512"],
            KeyKind::Ed25519 => &["EdDSA"],
        }
    }
}

/// A freshly generated private key (PKCS#8 DER) and its public key (SPKI PEM).
pub struct Key {
    /// What kind of key this is.
    pub kind: KeyKind,
    private_der: Vec<u8>,
    public_pem: String,
    /// The public key as JWK members: `kty` and the key material only.
    public_jwk: Map<String, Value>,
}

impl Key {
    /// A fresh key of `kind` (josekit; RSA takes a moment).
    pub fn generate(kind: KeyKind) -> Key {
        let pair: Box<dyn KeyPair> = match kind {
            KeyKind::Rsa2048 => Box::new(jws::RS256.generate_key_pair(2048).expect("RSA key")),
            KeyKind::P256 => Box::new(jws::ES256.generate_key_pair().expect("P-256 key")),
            KeyKind::P384 => Box::new(jws::ES384.generate_key_pair().expect("P-384 key")),
            KeyKind::P521 => Box::new(jws::ES512.generate_key_pair().expect("P-521 key")),
            KeyKind::Ed25519 => Box::new(
                jws::EdDSA
                    .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
                    .expect("Ed25519 key"),
            ),
        };
        let mut public_jwk: Map<String, Value> = pair.to_jwk_public_key().into();
        public_jwk.retain(|name, _| ["kty", "n", "e", "crv", "x", "y"].contains(&name.as_str()));
        Key {
            kind,
            private_der: pair.to_der_private_key(),
            public_pem: String::from_utf8(pair.to_pem_public_key()).expect("PEM is ASCII"),
            public_jwk,
        }
    }

    /// A fresh RSA 2048 key: signs RS256 by default, as most identity providers do.
    pub fn rsa() -> Key {
        Key::generate(KeyKind::Rsa2048)
    }

    /// The public key as a JWK (RFC 7517): RSA `n`/`e`, EC `crv`/`x`/`y` or OKP `crv`/`x`,
    /// plus `kid` when given. No `alg` and no `use`.
    pub fn public_jwk(&self, kid: Option<&str>) -> Value {
        let mut jwk = self.public_jwk.clone();
        if let Some(kid) = kid {
            jwk.insert("kid".into(), Value::String(kid.into()));
        }
        Value::Object(jwk)
    }

    /// The first JWS algorithm of this key's kind (RS256, ES256, ES384, ES512, EdDSA).
    pub fn alg(&self) -> &'static str {
        self.kind.algs()[0]
    }

    /// The public key as a `-----BEGIN PUBLIC KEY-----` PEM.
    pub fn public_pem(&self) -> String {
        self.public_pem.clone()
    }

    /// A compact JWS over `claims` with header `{"alg":alg,"typ":"JWT"}` plus the members
    /// of `header_extra` (a JSON object), signed by josekit.
    pub fn sign(&self, alg: &str, header_extra: &Value, claims: &Value) -> String {
        let der = &self.private_der;
        let signer: Box<dyn JwsSigner> = match alg {
            "RS256" => Box::new(jws::RS256.signer_from_der(der).expect("RS256 signer")),
            "RS384" => Box::new(jws::RS384.signer_from_der(der).expect("RS384 signer")),
            "RS512" => Box::new(jws::RS512.signer_from_der(der).expect("RS512 signer")),
            "PS256" => Box::new(jws::PS256.signer_from_der(der).expect("PS256 signer")),
            "PS384" => Box::new(jws::PS384.signer_from_der(der).expect("PS384 signer")),
            "PS512" => Box::new(jws::PS512.signer_from_der(der).expect("PS512 signer")),
            "ES256" => Box::new(jws::ES256.signer_from_der(der).expect("ES256 signer")),
            "ES384" => Box::new(jws::ES384.signer_from_der(der).expect("ES384 signer")),
            "ES512" => Box::new(jws::ES512.signer_from_der(der).expect("ES512 signer")),
            "EdDSA" => Box::new(jws::EdDSA.signer_from_der(der).expect("EdDSA signer")),
            other => panic!("no signer for {other}"),
        };
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        if let Some(extra) = header_extra.as_object() {
            for (name, value) in extra {
                header
                    .set_claim(name, Some(value.clone()))
                    .expect("header member");
            }
        }
        let payload = serde_json::to_vec(claims).expect("serialise claims");
        jws::serialize_compact(&payload, &header, &*signer).expect("sign")
    }

    /// [`Key::sign`] with no extra header members.
    pub fn sign_claims(&self, alg: &str, claims: &Value) -> String {
        self.sign(alg, &json!({}), claims)
    }

    /// A JWT over `claims` signed with this key's first algorithm ([`Key::alg`]: RS256 for
    /// [`Key::rsa`]), header `{"alg", "typ":"JWT"}`.
    pub fn jwt(&self, claims: &Value) -> String {
        self.sign_claims(self.alg(), claims)
    }
}
