//! Keys and signatures: the compact JWS, the ten asymmetric algorithms, public keys with
//! their verifiers built once, and the `KeySource` trait behind which static keys (here)
//! and remote key sets live.
//!
//! Signatures are checked with josekit; the JOSE header rules are ours (DECISIONS D12):
//! compact serialisation only, no `crit`, no duplicate members, no `none`, no HMAC, and an
//! `alg` the key's type cannot do never verifies.

use std::fmt;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use josekit::jws::{self, JwsVerifier};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use serde_json::{Map, Value};

use crate::claims::parse_object_strict;

/// The asymmetric JWS algorithms Vault's JWT method accepts (RFC 7518 §3.1, RFC 8037 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// ECDSA P-384 with SHA-384.
    ES384,
    /// ECDSA P-521 with SHA-512.
    ES512,
    /// Ed25519.
    EdDSA,
}

impl Alg {
    /// All ten, in Vault's order.
    pub const ALL: [Alg; 10] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::ES256,
        Alg::ES384,
        Alg::ES512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::EdDSA,
    ];

    /// The algorithm named exactly `name` (case-sensitive, as in the `alg` header).
    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The JOSE name, e.g. `RS256`.
    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::ES512 => "ES512",
            Alg::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A compact JWS (RFC 7515 §7.1), split and decoded, its signature not yet checked.
#[derive(Debug)]
pub struct Jws {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The header's `alg`.
    pub alg: Alg,
    /// The header's `kid`, if any.
    pub kid: Option<String>,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`: the signed bytes.
    pub signing_input: Vec<u8>,
    /// The decoded payload bytes (JSON, not yet parsed).
    pub payload: Vec<u8>,
    /// The decoded signature.
    pub signature: Vec<u8>,
}

impl Jws {
    /// Splits and decodes a compact JWS and applies the header rules of DECISIONS D12.
    ///
    /// Errors (the detail after `error validating token: `): not three base64url parts, a
    /// JSON-serialised JWS, a header that is not a JSON object or has duplicate members,
    /// `crit`, an `alg` other than the ten asymmetric ones (`none`, `HS256`, ...), an empty
    /// signature.
    pub fn parse(token: &str) -> Result<Jws, String> {
        let token = token.trim();
        if token.starts_with('{') {
            return Err("malformed jwt: only the compact serialization is accepted".into());
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [head, body, sig] = parts.as_slice() else {
            return Err(format!(
                "malformed jwt: expected 3 parts, got {}",
                parts.len()
            ));
        };
        let decode = |part: &str, what: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|e| format!("malformed jwt: {what} is not base64url: {e}"))
        };
        let header = parse_object_strict(&decode(head, "header")?)
            .map_err(|e| format!("malformed jwt: header: {e}"))?;
        if header.contains_key("crit") {
            return Err("malformed jwt: critical header parameters are not supported".into());
        }
        let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let alg = Alg::from_name(alg_name).ok_or_else(|| {
            format!("error verifying token signature: unsupported signing algorithm {alg_name:?}")
        })?;
        let signature = decode(sig, "signature")?;
        if signature.is_empty() {
            return Err("token must be signed".into());
        }
        let kid = match header.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(_) => return Err("malformed jwt: kid must be a string".into()),
        };
        Ok(Jws {
            alg,
            kid,
            signing_input: format!("{head}.{body}").into_bytes(),
            payload: decode(body, "payload")?,
            signature,
            header,
        })
    }
}

/// A public key with a verifier for each algorithm its type can do, built once.
pub struct PublicKey {
    verifiers: Vec<(Alg, Box<dyn JwsVerifier>)>,
    /// The JWK `kid`, for keys from a key set.
    pub kid: Option<String>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algs: Vec<&str> = self.verifiers.iter().map(|(a, _)| a.name()).collect();
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("algs", &algs)
            .finish()
    }
}

impl PublicKey {
    /// Parses exactly one PEM block holding a PKIX public key or an X.509 certificate, of
    /// type RSA (2048 bits or more), EC P-256/P-384/P-521 or Ed25519.
    /// Source: Vault config `jwt_validation_pubkeys`. Errors: the detail of
    /// `error parsing public key: <detail>`.
    pub fn from_pem(pem: &str) -> Result<PublicKey, String> {
        let pem = pem.trim();
        let blocks = pem.matches("-----BEGIN ").count();
        if blocks == 0 {
            return Err("data does not contain any valid public keys".into());
        }
        if blocks > 1 || !pem.ends_with("-----") {
            return Err("data contains more than one PEM block or trailing data".into());
        }
        let pkey = if pem.starts_with("-----BEGIN CERTIFICATE-----") {
            openssl::x509::X509::from_pem(pem.as_bytes())
                .and_then(|cert| cert.public_key())
                .map_err(|_| "data does not contain a valid certificate".to_string())?
        } else {
            PKey::public_key_from_pem(pem.as_bytes())
                .map_err(|_| "data does not contain any valid public keys".to_string())?
        };
        PublicKey::from_pkey(&pkey, None)
    }

    /// Builds the verifiers for an OpenSSL public key. Errors: an unsupported key type or
    /// curve, or an RSA key under 2048 bits.
    pub fn from_pkey(pkey: &PKey<Public>, kid: Option<String>) -> Result<PublicKey, String> {
        let curve = pkey.ec_key().ok().and_then(|k| k.group().curve_name());
        let algs = match (pkey.id(), curve) {
            (Id::RSA, _) => RSA_ALGS,
            (Id::EC, Some(Nid::X9_62_PRIME256V1)) => &[Alg::ES256],
            (Id::EC, Some(Nid::SECP384R1)) => &[Alg::ES384],
            (Id::EC, Some(Nid::SECP521R1)) => &[Alg::ES512],
            (Id::ED25519, _) => &[Alg::EdDSA],
            (Id::EC, _) => return Err("unsupported elliptic curve".into()),
            _ => return Err("unsupported key type: want RSA, ECDSA or Ed25519".into()),
        };
        let der = pkey
            .public_key_to_der()
            .map_err(|e| format!("cannot encode key: {e}"))?;
        PublicKey::build(algs, &Material::Der(&der), kid)
    }

    /// Builds the verifiers for one JWK (RFC 7517 §4) of a key set: `kty` RSA, EC (P-256,
    /// P-384, P-521) or OKP (Ed25519). A JWK `alg` restricts the key to that algorithm.
    /// Errors (the entry is then skipped, DECISIONS D6): `use` other than `sig`, an unknown
    /// `kty` or curve, bad key material, an RSA key under 2048 bits.
    pub fn from_jwk(jwk: &Map<String, Value>) -> Result<PublicKey, String> {
        let text = |name: &str| jwk.get(name).and_then(Value::as_str);
        if let Some(usage) = text("use").filter(|u| *u != "sig") {
            return Err(format!("key use {usage:?} is not \"sig\""));
        }
        let algs: &[Alg] = match (text("kty"), text("crv")) {
            (Some("RSA"), _) => RSA_ALGS,
            (Some("EC"), Some("P-256")) => &[Alg::ES256],
            (Some("EC"), Some("P-384")) => &[Alg::ES384],
            (Some("EC"), Some("P-521")) => &[Alg::ES512],
            (Some("OKP"), Some("Ed25519")) => &[Alg::EdDSA],
            (Some("EC" | "OKP"), crv) => return Err(format!("unsupported curve {crv:?}")),
            (kty, _) => return Err(format!("unsupported key type {kty:?}")),
        };
        let algs: Vec<Alg> = match text("alg") {
            Some(wanted) => algs
                .iter()
                .copied()
                .filter(|a| a.name() == wanted)
                .collect(),
            None => algs.to_vec(),
        };
        if algs.is_empty() {
            return Err(format!("alg {:?} does not fit the key type", text("alg")));
        }
        let mut key_map = jwk.clone();
        key_map.remove("alg"); // josekit checks a JWK's alg against each verifier; we did
        let parsed = josekit::jwk::Jwk::from_map(key_map).map_err(|e| format!("bad JWK: {e}"))?;
        PublicKey::build(
            &algs,
            &Material::Jwk(&parsed),
            text("kid").map(str::to_string),
        )
    }

    fn build(
        algs: &[Alg],
        material: &Material<'_>,
        kid: Option<String>,
    ) -> Result<PublicKey, String> {
        let verifiers = algs
            .iter()
            .map(|&alg| {
                verifier(alg, material)
                    .map(|v| (alg, v))
                    .map_err(|e| format!("unusable key: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(PublicKey { verifiers, kid })
    }

    /// True when `jws` carries a valid signature by this key under its `alg` (false when
    /// the key's type cannot do that `alg`).
    pub fn verifies(&self, jws: &Jws) -> bool {
        self.verifiers
            .iter()
            .find(|(a, _)| *a == jws.alg)
            .is_some_and(|(_, v)| v.verify(&jws.signing_input, &jws.signature).is_ok())
    }
}

/// The algorithms an RSA key can do.
const RSA_ALGS: &[Alg] = &[
    Alg::RS256,
    Alg::RS384,
    Alg::RS512,
    Alg::PS256,
    Alg::PS384,
    Alg::PS512,
];

/// Key material in one of the two forms josekit builds verifiers from.
enum Material<'a> {
    /// A DER SubjectPublicKeyInfo.
    Der(&'a [u8]),
    /// A JWK.
    Jwk(&'a josekit::jwk::Jwk),
}

/// The josekit verifier for `alg` over `material`.
fn verifier(alg: Alg, material: &Material<'_>) -> Result<Box<dyn JwsVerifier>, josekit::JoseError> {
    macro_rules! from {
        ($algorithm:expr) => {
            match material {
                Material::Der(der) => {
                    Box::new($algorithm.verifier_from_der(der)?) as Box<dyn JwsVerifier>
                }
                Material::Jwk(jwk) => Box::new($algorithm.verifier_from_jwk(jwk)?),
            }
        };
    }
    Ok(match alg {
        Alg::RS256 => from!(jws::RS256),
        Alg::RS384 => from!(jws::RS384),
        Alg::RS512 => from!(jws::RS512),
        Alg::PS256 => from!(jws::PS256),
        Alg::PS384 => from!(jws::PS384),
        Alg::PS512 => from!(jws::PS512),
        Alg::ES256 => from!(jws::ES256),
        Alg::ES384 => from!(jws::ES384),
        Alg::ES512 => from!(jws::ES512),
        Alg::EdDSA => from!(jws::EdDSA),
    })
}

/// The message when no static key validated a signature (Vault's wording).
pub const NO_KEY_VALIDATED: &str = "no known key successfully validated the token signature";

/// Why a key source could not verify a token.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyError {
    /// The source could not be set up (e.g. the discovery document cannot be fetched):
    /// `error configuring token validator: <detail>`.
    Setup(String),
    /// The signature was not verified: `error validating token: <detail>`.
    Invalid(String),
}

/// Which key verified a signature (shown by login explain; never key material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMatch {
    /// The config field the key comes from: `jwt_validation_pubkeys`, `jwks_url`,
    /// `jwks_pairs`, `oidc_discovery_url` or `jwks_inline`.
    pub source: &'static str,
    /// The URL the key set was fetched from; `None` for keys written in the config.
    pub url: Option<String>,
    /// The key's JWK `kid`, when it has one.
    pub kid: Option<String>,
    /// The key's position in its set or list (0-based).
    pub index: usize,
}

/// Where a mount's verification keys come from: static PEM keys, a JWKS URL, JWKS pairs,
/// OIDC discovery, or an inline JWKS.
#[async_trait]
pub trait KeySource: Send + Sync {
    /// Checks the signature of `jws` (whose `alg` is already allowed); on success, which key
    /// verified it.
    async fn verify(&self, jws: &Jws) -> Result<KeyMatch, KeyError>;
}

/// Keys given in the config (`jwt_validation_pubkeys`). The `kid` header is ignored: every
/// key that can do the token's `alg` is tried in order (Vault reference §2.4).
#[derive(Debug)]
pub struct StaticKeys {
    keys: Vec<PublicKey>,
}

impl StaticKeys {
    /// Parses every PEM. Errors: `error parsing public key: <detail>`.
    pub fn from_pems(pems: &[String]) -> Result<StaticKeys, String> {
        let keys = pems
            .iter()
            .map(|pem| {
                PublicKey::from_pem(pem).map_err(|e| format!("error parsing public key: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(StaticKeys { keys })
    }
}

#[async_trait]
impl KeySource for StaticKeys {
    async fn verify(&self, jws: &Jws) -> Result<KeyMatch, KeyError> {
        if let Some(index) = self.keys.iter().position(|k| k.verifies(jws)) {
            Ok(KeyMatch {
                source: "jwt_validation_pubkeys",
                url: None,
                kid: None,
                index,
            })
        } else {
            Err(KeyError::Invalid(format!(
                "error verifying token signature: {NO_KEY_VALIDATED}"
            )))
        }
    }
}
