//! JWT claim rules of the login pipeline: strict parsing, registered claims, time windows,
//! iss/sub/aud checks, `bound_claims`, and identity extraction (alias name, metadata, groups).
//!
//! Rules: `vault-jwt-reference.md` §4.2–§4.6, amended by DECISIONS D4, D7, D8, D9, D12 and D14.
//! Nothing here reads the clock: `now` is always an argument.

use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// The registered claim names of RFC 7519 §4.1, as they must be spelled byte for byte.
const REGISTERED: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// Every reason a claim check fails. `Display` gives Vault's message (the caller adds its
/// prefix, e.g. `error validating token: ` or `error validating claims: `).
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimError {
    /// A key equal to a registered claim under case folding but not byte-identical (DECISIONS D12).
    AmbiguousClaim {
        /// The key as the token spells it.
        key: String,
        /// The registered claim it folds to (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`).
        registered: &'static str,
    },
    /// A registered claim of the wrong JSON type (DECISIONS D14); `expected`/`got` are phrases
    /// such as "a string" and "a number".
    ClaimType {
        /// The registered claim's name.
        claim: &'static str,
        /// The JSON type it must have, as a phrase ("a string").
        expected: &'static str,
        /// The JSON type it has, as a phrase ("a number").
        got: &'static str,
    },
    /// None of `iat`, `nbf`, `exp` is present (reference §4.3 step 1).
    NoTimeClaims,
    /// `now + clock_skew < nbf` (RFC 7519 §4.1.5).
    NotYetValid,
    /// `now - clock_skew > exp` (RFC 7519 §4.1.4).
    Expired,
    /// `now + clock_skew < iat` (RFC 7519 §4.1.6).
    IssuedInFuture,
    /// `iss` differs from the role's `bound_issuer`.
    InvalidIssuer,
    /// `sub` differs from the role's `bound_subject`.
    InvalidSubject,
    /// No token audience is among the role's `bound_audiences`.
    AudienceMismatch,
    /// The token carries an audience but the role binds none (strict rule, reference §4.2 step 10).
    AudienceNotBound,
    /// A `bound_claims` key is absent from the token.
    BoundClaimMissing(String),
    /// A `bound_claims` key is present but no value matches.
    BoundClaimMismatch(String),
    /// The token's value for a bound claim is an object (compact JSON of it).
    ReceivedClaimUnsupported(String),
    /// The role's bound value is neither a string, bool, number nor list (compact JSON of it).
    BoundClaimUnsupported(String),
    /// A glob-mode bound value that is not a string (compact JSON of it).
    NotGlobString(String),
    /// The user claim is absent (holds the claim name).
    UserClaimNotFound(String),
    /// The user claim is not a JSON string.
    UserClaimNotString(String),
    /// The user claim is an empty string (DECISIONS D9).
    UserClaimEmpty(String),
    /// The groups claim is absent (holds the claim name).
    GroupsClaimNotFound(String),
    /// The groups claim is an object (holds the claim name).
    GroupsNotList(String),
    /// A group entry that is not a string (compact JSON of it).
    GroupNotString(String),
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ClaimError::*;
        match self {
            AmbiguousClaim { key, registered } => write!(
                f,
                "ambiguous claim: key {key:?} collides with registered claim {registered:?} under case folding"
            ),
            ClaimType { claim, expected, got } => {
                write!(f, "claim {claim:?} must be {expected}, got {got}")
            }
            NoTimeClaims => f.write_str(
                "no issued at (iat), not before (nbf), or expiration time (exp) claims in token",
            ),
            NotYetValid => f.write_str("invalid not before (nbf) claim: token not yet valid"),
            Expired => f.write_str("invalid expiration time (exp) claim: token is expired"),
            IssuedInFuture => f.write_str("invalid issued at (iat) claim: token issued in the future"),
            InvalidIssuer => f.write_str("invalid issuer (iss) claim"),
            InvalidSubject => f.write_str("invalid subject (sub) claim"),
            AudienceMismatch => f.write_str(
                "invalid audience (aud) claim: audience claim does not match any expected audience",
            ),
            AudienceNotBound => {
                f.write_str("audience claim found in JWT but no audiences bound to the role")
            }
            BoundClaimMissing(k) => write!(f, "claim {k:?} is missing"),
            BoundClaimMismatch(k) => {
                write!(f, "claim {k:?} does not match any associated bound claim values")
            }
            ReceivedClaimUnsupported(v) => {
                write!(f, "received claim is not a string, bool, int or list: {v}")
            }
            BoundClaimUnsupported(v) => write!(f, "bound claim is not a string, bool, int or list: {v}"),
            NotGlobString(v) => write!(f, "received claim is not a glob string: {v}"),
            UserClaimNotFound(c) => write!(f, "claim {c:?} not found in token"),
            UserClaimNotString(c) => write!(f, "claim {c:?} could not be converted to string"),
            UserClaimEmpty(c) => write!(f, "claim {c:?} is empty"),
            GroupsClaimNotFound(c) => write!(f, "failed to fetch groups: {c:?} claim not found in token"),
            GroupsNotList(c) => write!(f, "{c:?} claim could not be converted to string list"),
            GroupNotString(v) => write!(f, "value {v} in groups claim could not be parsed as string"),
        }
    }
}

impl std::error::Error for ClaimError {}

/// Parses a JWT header or payload (the bytes after base64url decoding) into a JSON object.
///
/// Refuses invalid JSON (including trailing bytes and invalid UTF-8), a top level that is not an
/// object, and a member name repeated inside any one object at any depth (DECISIONS D12;
/// RFC 7515 §5.2 and RFC 7519 §4 allow refusing them). Nesting deeper than serde_json's limit of
/// 128 is refused rather than overflowing the stack. The error is a human-readable reason.
pub fn parse_object_strict(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    DuplicateCheck
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| format!("invalid JSON: {e}"))?;
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("invalid JSON: top-level value is not an object".to_string()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// The registered claims of RFC 7519 §4.1, decoded strictly (reference §4.2 step 9.4, DECISIONS D14).
///
/// Times are unix seconds with the fraction truncated; `None` means absent, JSON `null` or 0.
/// `aud` is the audience list: a string is a list of one, except that `aud: ""` gives an empty list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Registered {
    /// `iss`, the issuer (RFC 7519 §4.1.1).
    pub iss: Option<String>,
    /// `sub`, the subject (RFC 7519 §4.1.2).
    pub sub: Option<String>,
    /// `jti`, the token's id (RFC 7519 §4.1.7).
    pub jti: Option<String>,
    /// `aud`, the audiences (RFC 7519 §4.1.3).
    pub aud: Vec<String>,
    /// `exp`, the expiry, unix seconds (RFC 7519 §4.1.4).
    pub exp: Option<f64>,
    /// `nbf`, not valid before, unix seconds (RFC 7519 §4.1.5).
    pub nbf: Option<f64>,
    /// `iat`, issued at, unix seconds (RFC 7519 §4.1.6).
    pub iat: Option<f64>,
}

/// Decodes the registered claims of a payload.
///
/// Errors: [`ClaimError::AmbiguousClaim`] for a key that equals a registered name under Unicode
/// case folding (approximated by `to_uppercase().to_lowercase()`) without being byte-identical
/// (DECISIONS D12); [`ClaimError::ClaimType`] when `iss`/`sub`/`jti` is not a string, `aud` is not
/// a string or an array of strings, or `exp`/`nbf`/`iat` is not a number (DECISIONS D14).
pub fn registered_claims(claims: &Map<String, Value>) -> Result<Registered, ClaimError> {
    for key in claims.keys() {
        if REGISTERED.contains(&key.as_str()) {
            continue;
        }
        let folded = key.to_uppercase().to_lowercase();
        if let Some(registered) = REGISTERED.iter().find(|r| **r == folded) {
            return Err(ClaimError::AmbiguousClaim {
                key: key.clone(),
                registered,
            });
        }
    }
    Ok(Registered {
        iss: string_claim(claims, "iss")?,
        sub: string_claim(claims, "sub")?,
        jti: string_claim(claims, "jti")?,
        aud: audience_claim(claims)?,
        exp: time_claim(claims, "exp")?,
        nbf: time_claim(claims, "nbf")?,
        iat: time_claim(claims, "iat")?,
    })
}

/// One leeway of a role (Vault API: role `expiration_leeway`, `not_before_leeway`,
/// `clock_skew_leeway`). On the wire and in storage it is Vault's integer: `0` picks the
/// default, a negative number means none (read back as `-1`), else seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "i64", into = "i64")]
pub enum Leeway {
    /// The default of the leeway (expiration 150 s, not_before 150 s, clock_skew 60 s).
    #[default]
    Auto,
    /// No leeway at all.
    Disabled,
    /// This many seconds (positive).
    Seconds(i64),
}

impl From<i64> for Leeway {
    fn from(v: i64) -> Self {
        match v {
            0 => Leeway::Auto,
            v if v < 0 => Leeway::Disabled,
            v => Leeway::Seconds(v),
        }
    }
}

impl From<Leeway> for i64 {
    fn from(l: Leeway) -> i64 {
        match l {
            Leeway::Auto => 0,
            Leeway::Disabled => -1,
            Leeway::Seconds(s) => s,
        }
    }
}

impl Leeway {
    /// The seconds this leeway allows, given the default of its kind.
    pub fn seconds(self, default: i64) -> f64 {
        match self {
            Leeway::Auto => default as f64,
            Leeway::Disabled => 0.0,
            Leeway::Seconds(s) => s as f64,
        }
    }
}

/// A role's three leeways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Leeways {
    /// `expiration_leeway` (default 150 s).
    pub expiration: Leeway,
    /// `not_before_leeway` (default 150 s).
    pub not_before: Leeway,
    /// `clock_skew_leeway` (default 60 s).
    pub clock_skew: Leeway,
}

/// Checks the time claims against `now` (unix seconds, fractional), per reference §4.3 with
/// DECISIONS D4: a missing `exp` becomes `max(iat, nbf) + expiration leeway`; a missing `nbf`
/// becomes `iat` when there is one, and otherwise there is no lower bound (no made-up nbf).
/// A present `exp` gets only the clock skew as grace. `leeways.not_before` only fed Vault's
/// made-up nbf, so it has no effect here.
///
/// Checked in order: none present → [`ClaimError::NoTimeClaims`]; `now + C < nbf` →
/// [`ClaimError::NotYetValid`]; `now - C > exp` → [`ClaimError::Expired`]; `now + C < iat` →
/// [`ClaimError::IssuedInFuture`].
pub fn validate_times(reg: &Registered, leeways: &Leeways, now: f64) -> Result<(), ClaimError> {
    let clock_skew = leeways.clock_skew.seconds(60);
    let (iat, nbf) = (reg.iat, reg.nbf);
    let exp = effective_expiry(reg, leeways).ok_or(ClaimError::NoTimeClaims)?;
    if let Some(nbf) = nbf.or(iat) {
        if now + clock_skew < nbf {
            return Err(ClaimError::NotYetValid);
        }
    }
    if now - clock_skew > exp {
        return Err(ClaimError::Expired);
    }
    match iat {
        Some(iat) if now + clock_skew < iat => Err(ClaimError::IssuedInFuture),
        _ => Ok(()),
    }
}

/// The expiry [`validate_times`] judges against (DECISIONS D4): `exp`, or without it
/// `max(iat, nbf) + expiration leeway`; `None` when the token has none of the three. A token
/// is accepted until this plus the clock skew leeway.
pub fn effective_expiry(reg: &Registered, leeways: &Leeways) -> Option<f64> {
    match (reg.exp, reg.iat, reg.nbf) {
        (Some(exp), _, _) => Some(exp),
        (None, None, None) => None,
        (None, iat, nbf) => {
            Some(iat.unwrap_or(0.0).max(nbf.unwrap_or(0.0)) + leeways.expiration.seconds(150))
        }
    }
}

/// Vault API: role `bound_issuer`. Empty means no check; otherwise `iss` must be byte-identical
/// (a missing `iss` fails) → [`ClaimError::InvalidIssuer`].
pub fn validate_issuer(reg: &Registered, bound_issuer: &str) -> Result<(), ClaimError> {
    if bound_issuer.is_empty() || reg.iss.as_deref() == Some(bound_issuer) {
        return Ok(());
    }
    Err(ClaimError::InvalidIssuer)
}

/// Vault API: role `bound_subject`. Empty means no check; a missing `sub` counts as ""
/// → [`ClaimError::InvalidSubject`] on any difference.
pub fn validate_subject(reg: &Registered, bound_subject: &str) -> Result<(), ClaimError> {
    if bound_subject.is_empty() || reg.sub.as_deref().unwrap_or("") == bound_subject {
        return Ok(());
    }
    Err(ClaimError::InvalidSubject)
}

/// Vault API: role `bound_audiences` (reference §4.2 steps 9.7 and 10).
///
/// With bound audiences, one token audience must equal one of them, else
/// [`ClaimError::AudienceMismatch`] (a token without `aud` fails). Without bound audiences, a
/// token audience that is a string (even `""`, as OpenBao 2.7.2 answers) or a non-empty array →
/// [`ClaimError::AudienceNotBound`] (the strict rule, kept on purpose); `aud: []` and no `aud` pass.
pub fn validate_audience(reg: &Registered, bound_audiences: &[String]) -> Result<(), ClaimError> {
    if bound_audiences.is_empty() {
        return match reg.aud.is_empty() {
            true => Ok(()),
            false => Err(ClaimError::AudienceNotBound),
        };
    }
    match reg.aud.iter().any(|a| bound_audiences.contains(a)) {
        true => Ok(()),
        false => Err(ClaimError::AudienceMismatch),
    }
}

/// Reads a claim (reference §4.4). A name starting with `/` is an RFC 6901 JSON pointer (`~1` is
/// `/`, `~0` is `~`, decimal segments without leading zeros index arrays); anything else is a
/// literal top-level key. Unresolvable pointers and JSON `null` give `None`. Values are returned
/// as they are: no number conversion (DECISIONS D7).
pub fn lookup<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let found = match name.strip_prefix('/') {
        None => claims.get(name)?,
        Some(pointer) => {
            let mut segments = pointer
                .split('/')
                .map(|s| s.replace("~1", "/").replace("~0", "~"));
            let mut current = claims.get(segments.next()?.as_str())?;
            for segment in segments {
                current = match current {
                    Value::Object(map) => map.get(segment.as_str())?,
                    Value::Array(items) => items.get(array_index(&segment)?)?,
                    _ => return None,
                };
            }
            current
        }
    };
    (!found.is_null()).then_some(found)
}

/// Vault API: role `bound_claims` and `bound_claims_type` (reference §4.5 with DECISIONS D7).
///
/// Every key must match (checked in sorted key order, so the reported failure is stable); a key
/// matches when any expected value equals any token value. Scalars are lists of one. String mode
/// compares type and exact value (42 = 42.0, 123 ≠ 123.9, big integers exact, numbers inside
/// token arrays count, "true" ≠ true, "123" ≠ 123). Glob mode (`glob == true`): expected values
/// must be strings in which `*` matches any run; non-string token values are skipped.
/// Errors: [`ClaimError::BoundClaimMissing`], [`ClaimError::ReceivedClaimUnsupported`],
/// [`ClaimError::BoundClaimUnsupported`], [`ClaimError::NotGlobString`], [`ClaimError::BoundClaimMismatch`].
pub fn validate_bound_claims(
    claims: &Map<String, Value>,
    bound: &Map<String, Value>,
    glob: bool,
) -> Result<(), ClaimError> {
    let mut entries: Vec<(&String, &Value)> = bound.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for (key, expected_raw) in entries {
        let Some(actual) = lookup(claims, key) else {
            return Err(ClaimError::BoundClaimMissing(key.clone()));
        };
        let actual = as_list(actual)
            .ok_or_else(|| ClaimError::ReceivedClaimUnsupported(actual.to_string()))?;
        let expected = as_list(expected_raw)
            .ok_or_else(|| ClaimError::BoundClaimUnsupported(expected_raw.to_string()))?;
        let matched = if glob {
            let mut patterns = Vec::with_capacity(expected.len());
            for e in expected {
                patterns.push(
                    e.as_str()
                        .ok_or_else(|| ClaimError::NotGlobString(e.to_string()))?,
                );
            }
            patterns.iter().any(|p| {
                actual
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|a| glob_match(p, a))
            })
        } else {
            expected
                .iter()
                .any(|e| actual.iter().any(|a| same_value(e, a)))
        };
        if !matched {
            return Err(ClaimError::BoundClaimMismatch(key.clone()));
        }
    }
    Ok(())
}

/// The alias name (reference §4.6 "User", DECISIONS D9). With `json_pointer` false (Vault API: role
/// `user_claim_json_pointer`) `user_claim` is always a literal top-level key, else it is read with
/// [`lookup`]. Errors: absent or null → [`ClaimError::UserClaimNotFound`]; not a string →
/// [`ClaimError::UserClaimNotString`]; "" → [`ClaimError::UserClaimEmpty`].
pub fn user_name(
    claims: &Map<String, Value>,
    user_claim: &str,
    json_pointer: bool,
) -> Result<String, ClaimError> {
    let value = match json_pointer {
        true => lookup(claims, user_claim),
        false => claims.get(user_claim).filter(|v| !v.is_null()),
    };
    match value {
        None => Err(ClaimError::UserClaimNotFound(user_claim.to_string())),
        Some(Value::String(s)) if s.is_empty() => {
            Err(ClaimError::UserClaimEmpty(user_claim.to_string()))
        }
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ClaimError::UserClaimNotString(user_claim.to_string())),
    }
}

/// Vault API: role `claim_mappings` (source claim name or pointer → metadata key), DECISIONS D8.
/// Strings are copied; numbers and bools become their JSON text (`42`, `true`); arrays and objects
/// become compact JSON. A missing source is skipped. The `role` entry is the caller's job.
pub fn mapped_metadata(
    claims: &Map<String, Value>,
    mappings: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut metadata = BTreeMap::new();
    for (source, target) in mappings {
        let Some(value) = lookup(claims, source) else {
            continue;
        };
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        metadata.insert(target.clone(), text);
    }
    metadata
}

/// Group alias names from the role's `groups_claim` (reference §4.6 "Groups"), read with
/// [`lookup`]. A string is a list of one; empty strings are skipped; order and duplicates are
/// kept. Errors: absent → [`ClaimError::GroupsClaimNotFound`]; an object →
/// [`ClaimError::GroupsNotList`]; any non-string entry (or a bare number/bool) → [`ClaimError::GroupNotString`].
pub fn group_names(
    claims: &Map<String, Value>,
    groups_claim: &str,
) -> Result<Vec<String>, ClaimError> {
    let value = lookup(claims, groups_claim)
        .ok_or_else(|| ClaimError::GroupsClaimNotFound(groups_claim.to_string()))?;
    let items = match value {
        Value::Object(_) => return Err(ClaimError::GroupsNotList(groups_claim.to_string())),
        Value::Array(items) => items.as_slice(),
        scalar => std::slice::from_ref(scalar),
    };
    let mut groups = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::String(s) if s.is_empty() => {}
            Value::String(s) => groups.push(s.clone()),
            other => return Err(ClaimError::GroupNotString(other.to_string())),
        }
    }
    Ok(groups)
}

// ---- private helpers ----

/// Walks a JSON document without building it, failing on a repeated member name in any object.
struct DuplicateCheck;

impl<'de> DeserializeSeed<'de> for DuplicateCheck {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DuplicateCheck {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(DuplicateCheck)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                return Err(A::Error::custom(format!("duplicate member name {key:?}")));
            }
            map.next_value_seed(DuplicateCheck)?;
            seen.insert(key);
        }
        Ok(())
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn string_claim(
    claims: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<String>, ClaimError> {
    match claims.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ClaimError::ClaimType {
            claim,
            expected: "a string",
            got: json_kind(other),
        }),
    }
}

fn audience_claim(claims: &Map<String, Value>) -> Result<Vec<String>, ClaimError> {
    let wrong = |got| ClaimError::ClaimType {
        claim: "aud",
        expected: "a string or an array of strings",
        got,
    };
    match claims.get("aud") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| wrong("an array with a non-string element"))
            })
            .collect(),
        Some(other) => Err(wrong(json_kind(other))),
    }
}

fn time_claim(claims: &Map<String, Value>, claim: &'static str) -> Result<Option<f64>, ClaimError> {
    let wrong = |got| ClaimError::ClaimType {
        claim,
        expected: "a number",
        got,
    };
    match claims.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64().map(f64::trunc) {
            Some(t) if t.is_finite() => Ok((t != 0.0).then_some(t)),
            _ => Err(wrong("a number out of range")),
        },
        Some(other) => Err(wrong(json_kind(other))),
    }
}

/// An RFC 6901 array index: "0" or a decimal number without a leading zero.
fn array_index(segment: &str) -> Option<usize> {
    let digits_only = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (segment.len() > 1 && segment.starts_with('0')) {
        return None;
    }
    segment.parse().ok()
}

/// Reference §4.5 step 2: scalars become a list of one, arrays stay; objects and null are refused.
fn as_list(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Array(items) => Some(items),
        Value::String(_) | Value::Bool(_) | Value::Number(_) => Some(std::slice::from_ref(value)),
        Value::Null | Value::Object(_) => None,
    }
}

/// String-mode equality (DECISIONS D7): same JSON type and same value; arrays and objects never match.
fn same_value(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => same_number(a, b),
        _ => false,
    }
}

/// Exact numeric equality across serde_json's i64 / u64 / f64 representations.
fn same_number(a: &Number, b: &Number) -> bool {
    let int = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (int(a), int(b)) {
        (Some(x), Some(y)) => x == y,
        (Some(i), None) => b.as_f64().is_some_and(|f| float_equals_int(f, i)),
        (None, Some(i)) => a.as_f64().is_some_and(|f| float_equals_int(f, i)),
        (None, None) => a.as_f64().is_some() && a.as_f64() == b.as_f64(),
    }
}

fn float_equals_int(f: f64, i: i128) -> bool {
    // Every i64/u64 lies inside ±3.7e19; there an integral f64 converts to i128 exactly.
    f.fract() == 0.0 && f.abs() < 3.7e19 && f as i128 == i
}

/// Whole-string, case-sensitive glob where only `*` is special (reference §4.5 step 3).
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = match parts.as_slice() {
        [only] => return *only == text,
        [first, .., last] => (*first, *last),
        [] => return text.is_empty(),
    };
    if text.len() < first.len() + last.len() || !text.starts_with(first) || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::ClaimError::*;
    use super::*;

    const NOW: f64 = 1_700_000_000.0;
    const X: Option<f64> = None;
    const OK: Result<(), ClaimError> = Ok(());

    /// A claims object from JSON text, through the strict parser.
    fn o(text: &str) -> Map<String, Value> {
        parse_object_strict(text.as_bytes()).expect("test fixture is a JSON object")
    }
    fn reg(text: &str) -> Result<Registered, ClaimError> {
        registered_claims(&o(text))
    }
    fn msg<T: fmt::Debug>(r: Result<T, ClaimError>) -> String {
        r.expect_err("expected an error").to_string()
    }
    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn strict_parse_refuses_duplicate_names_at_any_depth() {
        assert!(parse_object_strict(br#"{"u":"a","o":{"u":1},"l":[{"u":2}]}"#).is_ok());
        assert!(parse_object_strict(br#"{"user":"alice","user":"mallory"}"#).is_err());
        assert!(parse_object_strict(br#"{"sub":"s-1","\u0073ub":"admin"}"#).is_err());
        let nested = parse_object_strict(br#"{"a":{"b":{"c":1,"c":2}}}"#).expect_err("dup");
        assert!(nested.contains("duplicate member name \"c\""), "{nested}");
        assert!(parse_object_strict(br#"{"a":[{"x":{"k":1,"k":1}}]}"#).is_err());
    }

    #[test]
    fn strict_parse_refuses_bad_shapes_without_overflowing() {
        let bad: [&[u8]; 7] = [
            b"[1]",
            b"\"s\"",
            b"{} x",
            b"{\"a\":",
            b"",
            b"null",
            b"{\"\xff\":1}",
        ];
        for text in bad {
            assert!(
                parse_object_strict(text).is_err(),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_object_strict(deep.as_bytes()).is_err());
        let big = o(r#"{"n":9007199254740993}"#);
        assert_eq!(big["n"].as_u64(), Some(9_007_199_254_740_993));
    }

    #[test]
    fn registered_claims_are_typed_strictly() {
        let r = reg(r#"{"iss":"i","sub":"s","jti":null,"aud":["a","b"],"exp":12.9,"nbf":0}"#);
        let r = r.expect("valid registered claims");
        assert_eq!(
            (r.iss.as_deref(), r.sub.as_deref(), r.jti),
            (Some("i"), Some("s"), None)
        );
        assert_eq!(
            (r.aud, r.exp, r.nbf, r.iat),
            (strings(&["a", "b"]), Some(12.0), None, None)
        );
        #[rustfmt::skip]
        let type_errors = [
            (r#"{"sub":12345}"#, r#"claim "sub" must be a string, got a number"#),
            (r#"{"iss":5}"#, r#"claim "iss" must be a string, got a number"#),
            (r#"{"jti":[7]}"#, r#"claim "jti" must be a string, got an array"#),
            (r#"{"exp":"1999999999"}"#, r#"claim "exp" must be a number, got a string"#),
            (r#"{"iat":true}"#, r#"claim "iat" must be a number, got a bool"#),
            (r#"{"nbf":{}}"#, r#"claim "nbf" must be a number, got an object"#),
        ];
        for (payload, want) in type_errors {
            assert_eq!(msg(reg(payload)), want);
        }
        let aud = r#"claim "aud" must be a string or an array of strings, got "#;
        assert_eq!(msg(reg(r#"{"aud":5}"#)), format!("{aud}a number"));
        assert!(msg(reg(r#"{"aud":["a",1]}"#)).starts_with(aud));
        assert_eq!(reg(r#"{"aud":"x"}"#).map(|r| r.aud), Ok(strings(&["x"])));
        assert_eq!(
            reg(r#"{"aud":""}"#).map(|r| r.aud),
            Ok(strings(&[""])),
            "aud \"\" is an audience (OpenBao 2.7.2)"
        );
        assert_eq!(reg(r#"{"aud":[""]}"#).map(|r| r.aud), Ok(strings(&[""])));
    }

    #[test]
    fn case_folded_registered_names_are_refused() {
        let err = reg(r#"{"sub":"s-1","SUB":"s-2"}"#).expect_err("SUB");
        let want =
            r#"ambiguous claim: key "SUB" collides with registered claim "sub" under case folding"#;
        assert_eq!(err.to_string(), want);
        let registered = match err {
            AmbiguousClaim { registered, .. } => registered,
            _ => "",
        };
        assert_eq!(registered, "sub");
        assert!(msg(reg(r#"{"sub":"s-1","ſub":"s-2"}"#)).contains(r#"key "ſub" collides"#));
        assert!(msg(reg(r#"{"Exp":1}"#)).contains(r#"registered claim "exp""#));
        assert!(reg(r#"{"subject":"x","Sub_":"y","user":"u","sub":"s"}"#).is_ok());
    }

    /// Times are offsets from NOW; leeways are (expiration, not_before, clock_skew).
    fn times(
        t: (Option<f64>, Option<f64>, Option<f64>),
        l: (i64, i64, i64),
        now: f64,
    ) -> Result<(), ClaimError> {
        let at = |t: Option<f64>| t.map(|t| NOW + t);
        let reg = Registered {
            iat: at(t.0),
            nbf: at(t.1),
            exp: at(t.2),
            ..Registered::default()
        };
        let leeways = Leeways {
            expiration: l.0.into(),
            not_before: l.1.into(),
            clock_skew: l.2.into(),
        };
        validate_times(&reg, &leeways, NOW + now)
    }

    #[test]
    fn time_rules() {
        let d = (0, 0, 0);
        #[rustfmt::skip]
        let cases = [
            // ((iat, nbf, exp), leeways, now, expected)
            ((X, X, X), d, 0.0, Err(NoTimeClaims)),
            ((Some(0.0), X, X), d, 209.0, OK), // only iat: until iat + E + C = 210
            ((Some(0.0), X, X), d, 211.0, Err(Expired)),
            ((X, Some(-185.0), X), d, 0.0, OK), // only nbf: the same window
            ((X, Some(-235.0), X), d, 0.0, Err(Expired)),
            ((X, X, Some(0.0)), d, 59.0, OK), // only exp (D4): until exp + C ...
            ((X, X, Some(0.0)), d, 61.0, Err(Expired)),
            ((X, X, Some(3600.0)), d, 0.0, OK), // ... and no lower bound
            ((X, X, Some(235.0)), d, 0.0, OK),
            ((Some(0.0), Some(30.0), Some(300.0)), d, 0.0, OK),
            ((Some(0.0), Some(90.0), Some(300.0)), d, 0.0, Err(NotYetValid)),
            ((Some(35.0), X, Some(600.0)), d, 0.0, OK), // nbf defaults to iat
            ((Some(85.0), X, Some(600.0)), d, 0.0, Err(NotYetValid)),
            ((Some(85.0), Some(0.0), Some(600.0)), d, 0.0, Err(IssuedInFuture)),
            ((Some(-10.0), X, Some(-20.0)), d, 0.0, OK), // exp < iat is not refused by itself
            ((Some(-100.0), Some(-100.0), Some(-30.0)), d, 0.0, OK),
            ((Some(-100.0), Some(-100.0), Some(-61.0)), (3600, 0, 0), 0.0, Err(Expired)),
            ((Some(0.0), X, X), (0, 0, 10), 160.0, OK),
            ((Some(0.0), X, X), (0, 0, 10), 161.0, Err(Expired)),
            ((Some(0.0), X, X), (-1, 0, 30), 30.0, OK),
            ((Some(0.0), X, X), (-100, 0, 30), 31.0, Err(Expired)),
            ((X, X, Some(75.0)), (0, 10, 0), 0.0, OK),
            ((X, X, Some(3600.0)), (0, 5, -1), 0.0, OK),
            ((X, X, Some(0.0)), (0, 5, -1), 0.0, OK),
            ((X, X, Some(0.0)), (0, 5, -1), 0.5, Err(Expired)),
            ((Some(-10.0), Some(1.0), Some(300.0)), (0, 0, -1), 0.0, Err(NotYetValid)),
        ];
        for (i, (claims, leeways, now, want)) in cases.into_iter().enumerate() {
            assert_eq!(times(claims, leeways, now), want, "case {i}");
        }
        let zero = reg(r#"{"iat":0,"nbf":0,"exp":0}"#).expect("zeros are absent");
        assert_eq!(
            validate_times(&zero, &Leeways::default(), NOW),
            Err(NoTimeClaims)
        );
        // fractions are truncated: nbf = NOW + 0.9 counts as NOW
        let fraction = reg(&format!(r#"{{"nbf":{},"exp":{}}}"#, NOW + 0.9, NOW + 300.0));
        let no_skew = Leeways {
            clock_skew: Leeway::Disabled,
            ..Leeways::default()
        };
        assert_eq!(validate_times(&fraction.expect("valid"), &no_skew, NOW), OK);
    }

    #[test]
    fn issuer_and_subject() {
        let r = reg(r#"{"iss":"https://issuer.test/","sub":"s-1"}"#).expect("valid");
        let none = Registered::default();
        assert_eq!(validate_issuer(&r, ""), OK);
        assert_eq!(validate_issuer(&r, "https://issuer.test/"), OK);
        assert_eq!(
            msg(validate_issuer(&r, "https://issuer.test")),
            "invalid issuer (iss) claim"
        );
        assert_eq!(validate_issuer(&none, "x"), Err(InvalidIssuer));
        assert_eq!(validate_subject(&r, "s-1"), OK);
        assert_eq!(validate_subject(&none, ""), OK);
        assert_eq!(
            msg(validate_subject(&none, "s-1")),
            "invalid subject (sub) claim"
        );
    }

    #[test]
    fn audience_rules() {
        let check = |token: &str, bound: &[&str]| validate_audience(&reg(token)?, &strings(bound));
        assert_eq!(check(r#"{"aud":"vault-test"}"#, &["vault-test"]), OK);
        assert_eq!(check(r#"{"aud":["x","vault-test"]}"#, &["vault-test"]), OK);
        assert_eq!(check(r#"{"aud":"b"}"#, &["a", "b"]), OK);
        let mismatch = msg(check(r#"{"aud":"https://foo"}"#, &["vault-test"]));
        let want =
            "invalid audience (aud) claim: audience claim does not match any expected audience";
        assert_eq!(mismatch, want);
        assert_eq!(check("{}", &["vault-test"]), Err(AudienceMismatch));
        assert_eq!(
            check(r#"{"aud":""}"#, &["vault-test"]),
            Err(AudienceMismatch)
        );
        let strict = "audience claim found in JWT but no audiences bound to the role";
        assert_eq!(msg(check(r#"{"aud":"x"}"#, &[])), strict);
        assert_eq!(
            check(r#"{"aud":["a","b","c"]}"#, &[]),
            Err(AudienceNotBound)
        );
        assert_eq!(check(r#"{"aud":[""]}"#, &[]), Err(AudienceNotBound));
        assert_eq!(check(r#"{"aud":""}"#, &[]), Err(AudienceNotBound));
        for tolerated in ["{}", r#"{"aud":[]}"#, r#"{"aud":null}"#] {
            assert_eq!(check(tolerated, &[]), OK, "{tolerated}");
        }
    }

    #[test]
    fn lookup_reads_literal_keys_and_pointers() {
        let c = o(r#"{"https://v/u":"u","a/b":1,"m~n":2,"n":null,"o":{"d":["x","y"],"":"e"}}"#);
        assert_eq!(lookup(&c, "https://v/u"), Some(&Value::from("u")));
        assert_eq!(lookup(&c, "/a~1b"), Some(&Value::from(1)));
        assert_eq!(lookup(&c, "/m~0n"), Some(&Value::from(2)));
        assert_eq!(lookup(&c, "/o/d/1"), Some(&Value::from("y")));
        assert_eq!(lookup(&c, "/o/"), Some(&Value::from("e")));
        for absent in [
            "n", "/n", "/o/d/2", "/o/d/01", "/o/d/-", "/o/d/1/x", "o/d", "/", "",
        ] {
            assert_eq!(lookup(&c, absent), None, "{absent}");
        }
    }

    #[test]
    fn bound_claims_matching() {
        #[rustfmt::skip]
        let cases = [
            // (token claims, bound claims, glob, matches)
            (r#"{"c":"green"}"#, r#"{"c":"green"}"#, false, true),
            (r#"{"c":"red"}"#, r#"{"c":"green"}"#, false, false),
            (r#"{"g":["dev","admins"]}"#, r#"{"g":"admins"}"#, false, true),
            (r#"{"g":["c","b"]}"#, r#"{"g":["a","b"]}"#, false, true),
            (r#"{"g":["x"]}"#, r#"{"g":["a","b"]}"#, false, false),
            (r#"{"g":["a"]}"#, r#"{"g":[]}"#, false, false),
            (r#"{"p":123}"#, r#"{"p":123}"#, false, true),
            (r#"{"p":123.0}"#, r#"{"p":123}"#, false, true),
            (r#"{"p":42}"#, r#"{"p":42.0}"#, false, true),
            (r#"{"p":123.9}"#, r#"{"p":123}"#, false, false),
            (r#"{"p":"123"}"#, r#"{"p":123}"#, false, false),
            (r#"{"p":123}"#, r#"{"p":"123"}"#, false, false),
            (r#"{"p":[123]}"#, r#"{"p":123}"#, false, true),
            (r#"{"p":[7,123]}"#, r#"{"p":123}"#, false, true),
            (r#"{"p":[[123]]}"#, r#"{"p":[[123]]}"#, false, false),
            (r#"{"p":[{"k":1}]}"#, r#"{"p":[{"k":1}]}"#, false, false),
            (r#"{"p":-5}"#, r#"{"p":-5.0}"#, false, true),
            (r#"{"p":9007199254740993}"#, r#"{"p":9007199254740993}"#, false, true),
            (r#"{"p":9007199254740993}"#, r#"{"p":9007199254740992}"#, false, false),
            (r#"{"p":9007199254740993}"#, r#"{"p":9007199254740992.0}"#, false, false),
            (r#"{"p":18446744073709551615}"#, r#"{"p":18446744073709551615}"#, false, true),
            (r#"{"p":1e300}"#, r#"{"p":18446744073709551615}"#, false, false),
            (r#"{"v":true}"#, r#"{"v":true}"#, false, true),
            (r#"{"v":"true"}"#, r#"{"v":true}"#, false, false),
            (r#"{"v":true}"#, r#"{"v":"true"}"#, false, false),
            (r#"{"o":{"d":["x","y"]}}"#, r#"{"/o/d/1":"y"}"#, false, true),
            (r#"{"o":{"d":["x","q"]}}"#, r#"{"/o/d/1":"y"}"#, false, false),
            (r#"{"e":"a@corp.test"}"#, r#"{"e":"*@corp.test"}"#, true, true),
            (r#"{"e":"a@corp.test.evil"}"#, r#"{"e":"*@corp.test"}"#, true, false),
            (r#"{"e":"anything at all"}"#, r#"{"e":"*"}"#, true, true),
            (r#"{"e":""}"#, r#"{"e":"*"}"#, true, true),
            (r#"{"e":"42x"}"#, r#"{"e":["4*d","42*"]}"#, true, true),
            (r#"{"e":"4d"}"#, r#"{"e":["4*d","42*"]}"#, true, true),
            (r#"{"e":"43x"}"#, r#"{"e":["4*d","42*"]}"#, true, false),
            (r#"{"e":""}"#, r#"{"e":""}"#, true, true),
            (r#"{"e":"a"}"#, r#"{"e":""}"#, true, false),
            (r#"{"e":"a-b-c"}"#, r#"{"e":"a*b*c"}"#, true, true),
            (r#"{"e":"abc"}"#, r#"{"e":"a**b*c"}"#, true, true),
            (r#"{"e":"acb"}"#, r#"{"e":"a*b*c"}"#, true, false),
            (r#"{"e":"aba"}"#, r#"{"e":"ab*ba"}"#, true, false),
            (r#"{"e":"A@x"}"#, r#"{"e":"a*"}"#, true, false),
            (r#"{"e":"ab"}"#, r#"{"e":"a?"}"#, true, false),
            (r#"{"e":"ſ日本x"}"#, r#"{"e":"ſ*本*"}"#, true, true),
            (r#"{"v":42}"#, r#"{"v":"4*"}"#, true, false),
            (r#"{"v":[42,"41"]}"#, r#"{"v":"4*"}"#, true, true),
        ];
        for (token, bound, glob, matches) in cases {
            let got = validate_bound_claims(&o(token), &o(bound), glob);
            assert_eq!(
                got.is_ok(),
                matches,
                "{token} vs {bound} (glob {glob}): {got:?}"
            );
            assert!(
                matches || matches!(got, Err(BoundClaimMismatch(_))),
                "{token}: {got:?}"
            );
        }
    }

    #[test]
    fn bound_claims_errors() {
        let check = |t: &str, b: &str, glob| msg(validate_bound_claims(&o(t), &o(b), glob));
        let first_failure = check(
            r#"{"a":"1","b":"2"}"#,
            r#"{"c":"x","b":"9","a":"1"}"#,
            false,
        );
        assert_eq!(
            first_failure,
            r#"claim "b" does not match any associated bound claim values"#
        );
        assert_eq!(
            check("{}", r#"{"color":"g"}"#, false),
            r#"claim "color" is missing"#
        );
        assert_eq!(
            check(r#"{"c":null}"#, r#"{"c":"*"}"#, true),
            r#"claim "c" is missing"#
        );
        let absent = check(r#"{"o":{"d":["x"]}}"#, r#"{"/o/d/1":"y"}"#, false);
        assert_eq!(absent, r#"claim "/o/d/1" is missing"#);
        let object = check(r#"{"meta":{"a":1}}"#, r#"{"meta":"x"}"#, false);
        assert_eq!(
            object,
            r#"received claim is not a string, bool, int or list: {"a":1}"#
        );
        let bound = check(r#"{"meta":"x"}"#, r#"{"meta":{"k":"v"}}"#, false);
        assert_eq!(
            bound,
            r#"bound claim is not a string, bool, int or list: {"k":"v"}"#
        );
        let not_glob = check(r#"{"v":"4"}"#, r#"{"v":["4*",4]}"#, true);
        assert_eq!(not_glob, "received claim is not a glob string: 4");
    }

    #[test]
    fn user_name_rules() {
        let c = o(r#"{"user":"alice","num":1,"empty":"","nul":null,"n":{"u":"bob"},"/n/u":"lit"}"#);
        assert_eq!(user_name(&c, "user", false), Ok("alice".to_string()));
        assert_eq!(user_name(&c, "/n/u", true), Ok("bob".to_string()));
        assert_eq!(user_name(&c, "/n/u", false), Ok("lit".to_string()));
        let not_found = |c: &str| format!(r#"claim "{c}" not found in token"#);
        assert_eq!(msg(user_name(&c, "gone", false)), not_found("gone"));
        assert_eq!(msg(user_name(&c, "nul", false)), not_found("nul"));
        assert_eq!(msg(user_name(&c, "/n/x", true)), not_found("/n/x"));
        let not_string = |c: &str| format!(r#"claim "{c}" could not be converted to string"#);
        assert_eq!(msg(user_name(&c, "num", false)), not_string("num"));
        assert_eq!(msg(user_name(&c, "n", true)), not_string("n"));
        assert_eq!(
            msg(user_name(&c, "empty", false)),
            r#"claim "empty" is empty"#
        );
    }

    #[test]
    fn claim_mappings_render_values_as_text() {
        let c = o(r#"{"s":"x","n":42,"f":1.5,"b":true,"a":["a","b"],"o":{"k":"v"},"d":{"x":"y"}}"#);
        let pairs = |p: &[(&str, &str)]| -> BTreeMap<String, String> {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        #[rustfmt::skip]
        let mappings = pairs(&[("s", "ms"), ("n", "mn"), ("f", "mf"), ("b", "mb"), ("a", "ma"),
            ("o", "mo"), ("/d/x", "md"), ("gone", "mg")]);
        #[rustfmt::skip]
        let want = pairs(&[("ms", "x"), ("mn", "42"), ("mf", "1.5"), ("mb", "true"),
            ("ma", r#"["a","b"]"#), ("mo", r#"{"k":"v"}"#), ("md", "y")]);
        assert_eq!(mapped_metadata(&c, &mappings), want);
    }

    #[test]
    fn group_name_rules() {
        let c = o(
            r#"{"g":["a","","b","a"],"one":"solo","blank":"","o":{},"mix":["a",7],
            "num":3,"bool":true,"d":{"g":["d"]}}"#,
        );
        assert_eq!(group_names(&c, "g"), Ok(strings(&["a", "b", "a"])));
        assert_eq!(group_names(&c, "one"), Ok(strings(&["solo"])));
        assert_eq!(group_names(&c, "blank"), Ok(vec![]));
        assert_eq!(group_names(&c, "/d/g"), Ok(strings(&["d"])));
        let missing = r#"failed to fetch groups: "gone" claim not found in token"#;
        assert_eq!(msg(group_names(&c, "gone")), missing);
        let object = r#""o" claim could not be converted to string list"#;
        assert_eq!(msg(group_names(&c, "o")), object);
        let not_string =
            |v: &str| format!("value {v} in groups claim could not be parsed as string");
        assert_eq!(msg(group_names(&c, "mix")), not_string("7"));
        assert_eq!(msg(group_names(&c, "num")), not_string("3"));
        assert_eq!(msg(group_names(&c, "bool")), not_string("true"));
    }
}
