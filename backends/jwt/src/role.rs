//! Roles (`auth/<mount>/role/<name>`): fields, create/update with merge, checks, read shape.
//!
//! Source: Vault JWT API `role` (reference §3), with DECISIONS D1 (role_type kept on update,
//! `jwt` by default unless redirect URIs are given) and D2 (bound_claims_type kept on
//! update). A write is checked whole before anything is stored.

use std::collections::{BTreeMap, BTreeSet};

use authmount_framework::tokenutil::{self, TokenSettings};
use authmount_framework::{Error, Field, FieldData, FieldType, MountInfo, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The compiled CEL fields of a role ([`Role::cel`]) and their stored form.
pub use crate::cel::{CelRules, CelSource, ClaimRule};
use crate::claims::{Leeway, Leeways};

/// `role_type`: which login a role serves. Source: Vault API role `role_type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleType {
    /// `login` with a JWT.
    #[default]
    Jwt,
    /// The OIDC browser flow (`oidc/auth_url`, `oidc/callback`).
    Oidc,
}

impl RoleType {
    /// Vault's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleType::Jwt => "jwt",
            RoleType::Oidc => "oidc",
        }
    }
}

/// `bound_claims_type`: how `bound_claims` values match. Source: Vault API role
/// `bound_claims_type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BoundClaimsType {
    /// Exact values (DECISIONS D7 for numbers).
    #[default]
    String,
    /// `*` globs on strings.
    Glob,
}

impl BoundClaimsType {
    /// Vault's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BoundClaimsType::String => "string",
            BoundClaimsType::Glob => "glob",
        }
    }
}

/// `callback_mode`: how the browser login of an `oidc` role finishes (OpenBao's role field;
/// HashiCorp Vault has only the first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallbackMode {
    /// The client (CLI listener or web UI) receives the provider's redirect and calls
    /// `oidc/callback` itself.
    #[default]
    Client,
    /// The provider redirects the browser to the server's own `oidc/callback`; the client
    /// polls `oidc/poll`.
    Direct,
    /// RFC 8628 device authorization; the client polls `oidc/poll`.
    Device,
}

impl CallbackMode {
    /// OpenBao's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackMode::Client => "client",
            CallbackMode::Direct => "direct",
            CallbackMode::Device => "device",
        }
    }

    /// The mode named `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "client" => Some(CallbackMode::Client),
            "direct" => Some(CallbackMode::Direct),
            "device" => Some(CallbackMode::Device),
            _ => None,
        }
    }
}

/// A role as stored. Durations in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Role {
    /// `jwt` or `oidc`.
    pub role_type: RoleType,
    /// The claim (or JSON pointer) naming the user: the alias name.
    pub user_claim: String,
    /// Read `user_claim` as an RFC 6901 JSON pointer.
    pub user_claim_json_pointer: bool,
    /// `bound_audiences` (`None` = never set, read as `null`).
    pub bound_audiences: Option<Vec<String>>,
    /// `bound_subject`: exact `sub` when non-empty.
    pub bound_subject: String,
    /// `bound_claims`: claim name or pointer → expected value(s).
    pub bound_claims: Option<Map<String, Value>>,
    /// `string` or `glob`.
    pub bound_claims_type: BoundClaimsType,
    /// `claim_mappings`: claim → metadata key.
    pub claim_mappings: Option<BTreeMap<String, String>>,
    /// `groups_claim`.
    pub groups_claim: String,
    /// `clock_skew_leeway`.
    pub clock_skew_leeway: Leeway,
    /// `expiration_leeway`.
    pub expiration_leeway: Leeway,
    /// `not_before_leeway`.
    pub not_before_leeway: Leeway,
    /// `allowed_redirect_uris` (OIDC flow).
    pub allowed_redirect_uris: Option<Vec<String>>,
    /// `oidc_scopes` (OIDC flow).
    pub oidc_scopes: Option<Vec<String>>,
    /// `max_age` (OIDC flow), seconds.
    pub max_age: i64,
    /// `verbose_oidc_logging`.
    pub verbose_oidc_logging: bool,
    /// `callback_mode` (OpenBao's browser-login modes): `client` by default.
    pub callback_mode: CallbackMode,
    /// `poll_interval` in seconds for the `direct` and `device` modes; 0 = the default.
    pub poll_interval: i64,
    /// `oidc_disable_confirmation`: in `direct` mode, skip the confirmation page.
    pub oidc_disable_confirmation: bool,
    // --- Beyond Vault (authmount only; read back only when set, so Vault's shape is kept).
    /// `single_use`: a JWT logs in once; its `jti` (with its `iss`) is remembered until the
    /// token expires, and a token without `jti` is refused (module `single_use`).
    pub single_use: bool,
    // --- end of Beyond Vault fields.
    /// The `token_*` fields and their deprecated names (framework `tokenutil`).
    #[serde(flatten)]
    pub tokens: TokenSettings,
    /// `claim_rules` and `policies_expression`, compiled ([`CelRules`]).
    #[serde(flatten)]
    pub cel: CelRules,
}

impl Role {
    /// The leeways of the time checks.
    pub fn leeways(&self) -> Leeways {
        Leeways {
            expiration: self.expiration_leeway,
            not_before: self.not_before_leeway,
            clock_skew: self.clock_skew_leeway,
        }
    }
}

/// The fields of `role/<name>`. The name matches Vault's `\w(([\w-.]+)?\w)?` (ASCII):
/// letters, digits, `_`, `-`, `.`, first and last a letter, digit or `_`; it is lower-cased.
pub fn fields() -> Vec<Field> {
    use FieldType::*;
    vec![
        Field::new("name", LowerCaseString, "Name of the role."),
        Field::new("role_type", String, "'jwt' or 'oidc'."),
        Field::new(
            "user_claim",
            String,
            "The claim to use for the Identity entity alias name.",
        ),
        Field::new(
            "user_claim_json_pointer",
            Bool,
            "Read user_claim as a JSON pointer.",
        ),
        Field::new(
            "bound_audiences",
            CommaStringSlice,
            "Audiences; a token must carry one of them.",
        ),
        Field::new(
            "bound_subject",
            String,
            "The exact 'sub' a token must carry.",
        ),
        Field::new(
            "bound_claims",
            Map,
            "Claims (names or JSON pointers) and the values they must have.",
        ),
        Field::new("bound_claims_type", String, "'string' or 'glob'."),
        Field::new(
            "claim_mappings",
            KvPairs,
            "Claims to copy into metadata: claim => metadata key.",
        ),
        Field::new(
            "groups_claim",
            String,
            "The claim holding group names (or a JSON pointer).",
        ),
        Field::new(
            "clock_skew_leeway",
            SignedDurationSecond,
            "Leeway for time claims; 0 = 60s, -1 = none.",
        ),
        Field::new(
            "expiration_leeway",
            SignedDurationSecond,
            "Leeway to compute a missing exp; 0 = 150s, -1 = none.",
        ),
        Field::new(
            "not_before_leeway",
            SignedDurationSecond,
            "Leeway to compute a missing nbf; 0 = 150s, -1 = none.",
        ),
        Field::new(
            "allowed_redirect_uris",
            CommaStringSlice,
            "Redirect URIs allowed in the OIDC flow.",
        ),
        Field::new("oidc_scopes", CommaStringSlice, "Extra OIDC scopes."),
        Field::new("max_age", DurationSecond, "OIDC max_age."),
        Field::new(
            "verbose_oidc_logging",
            Bool,
            "Log OIDC details (warned about).",
        ),
        Field::new(
            "callback_mode",
            String,
            "OIDC callback mode: 'client' (default), 'direct' or 'device'.",
        ),
        Field::new(
            "poll_interval",
            Int,
            "Seconds between polls in the 'direct' and 'device' modes.",
        ),
        Field::new(
            "oidc_disable_confirmation",
            Bool,
            "In 'direct' mode, skip the confirmation page.",
        ),
        Field::new(
            "alias_metadata",
            KvPairs,
            "Alias metadata (accepted and echoed).",
        ),
        // Beyond Vault.
        Field::new(
            "single_use",
            Bool,
            "A JWT logs in once: its jti (with its iss) is remembered until it expires, and a JWT without jti is refused. authmount only.",
        ),
    ]
    .into_iter()
    .chain(tokenutil::fields())
    .chain(crate::cel::fields())
    .collect()
}

/// A role write's outcome: the role to store and the warnings to show.
pub struct RoleWrite {
    /// The role to store.
    pub role: Role,
    /// Warnings (200 instead of 204 when non-empty).
    pub warnings: Vec<String>,
}

impl Role {
    /// Applies a write to `stored` (or to a new role) and runs the checks of reference §3.3 in
    /// order. Errors: 400 with Vault's message; nothing is changed.
    pub fn apply_write(
        stored: Option<&Role>,
        f: &FieldData,
        mount: &MountInfo,
    ) -> Result<RoleWrite> {
        let creating = stored.is_none();
        let mut r = stored.cloned().unwrap_or_default();
        let strs = |name: &str| f.strings(name);

        // 2. role_type (DECISIONS D1).
        match f.str("role_type").filter(|t| !t.is_empty()) {
            Some("jwt") => r.role_type = RoleType::Jwt,
            Some("oidc") => r.role_type = RoleType::Oidc,
            Some(other) => return Err(Error::invalid(format!("invalid 'role_type': {other}"))),
            None if creating => {
                let redirects = strs("allowed_redirect_uris").unwrap_or_default();
                r.role_type = match redirects.is_empty() {
                    true => RoleType::Jwt,
                    false => RoleType::Oidc,
                };
            }
            None => {}
        }

        // Plain fields (merge: only what was sent changes).
        if let Some(v) = f.str("user_claim") {
            r.user_claim = v.to_string();
        }
        if let Some(v) = f.bool("user_claim_json_pointer") {
            r.user_claim_json_pointer = v;
        }
        if let Some(v) = strs("bound_audiences") {
            r.bound_audiences = Some(v);
        }
        if let Some(v) = f.str("bound_subject") {
            r.bound_subject = v.to_string();
        }
        if let Some(v) = f.get("bound_claims").and_then(Value::as_object) {
            r.bound_claims = Some(v.clone());
        }
        if let Some(v) = f.kv_pairs("claim_mappings") {
            r.claim_mappings = Some(v);
        }
        if let Some(v) = f.str("groups_claim") {
            r.groups_claim = v.to_string();
        }
        for (name, slot) in [
            ("clock_skew_leeway", &mut r.clock_skew_leeway),
            ("expiration_leeway", &mut r.expiration_leeway),
            ("not_before_leeway", &mut r.not_before_leeway),
        ] {
            if let Some(v) = f.int(name) {
                *slot = Leeway::from(v);
            }
        }
        if let Some(v) = f.int("max_age") {
            r.max_age = v;
        }
        if let Some(v) = strs("allowed_redirect_uris") {
            r.allowed_redirect_uris = Some(v);
        }
        if let Some(v) = strs("oidc_scopes") {
            r.oidc_scopes = Some(v);
        }
        if let Some(v) = f.bool("verbose_oidc_logging") {
            r.verbose_oidc_logging = v;
        }
        // OpenBao's callback modes; like bound_claims_type (DECISIONS D2) the stored mode is
        // kept when a write omits it (OpenBao resets it to `client`).
        if let Some(v) = f.str("callback_mode").filter(|v| !v.is_empty()) {
            r.callback_mode = CallbackMode::parse(v)
                .ok_or_else(|| Error::invalid(format!("invalid 'callback_mode': {v}")))?;
        }
        if let Some(v) = f.int("poll_interval") {
            if v < 0 {
                return Err(Error::invalid("'poll_interval' cannot be negative"));
            }
            r.poll_interval = v;
        }
        if let Some(v) = f.bool("oidc_disable_confirmation") {
            r.oidc_disable_confirmation = v;
        }
        // Beyond Vault.
        if let Some(v) = f.bool("single_use") {
            r.single_use = v;
        }

        // 3. token fields, 4. legacy aliases, 5. period against the mount max.
        r.tokens.apply_write(f, mount)?;
        // CEL claim rules: compiled and checked here, never at login.
        r.cel.apply_write(f)?;

        // 6. bound_claims_type (DECISIONS D2: kept when omitted).
        match f.str("bound_claims_type").filter(|t| !t.is_empty()) {
            Some("string") => r.bound_claims_type = BoundClaimsType::String,
            Some("glob") => r.bound_claims_type = BoundClaimsType::Glob,
            Some(other) => {
                return Err(Error::invalid(format!(
                    "invalid 'bound_claims_type': {other}"
                )))
            }
            None => {}
        }
        // 7. glob values must be strings.
        if r.bound_claims_type == BoundClaimsType::Glob {
            check_glob_values(r.bound_claims.as_ref())?;
        }
        // 8. claim_mappings targets.
        check_mappings(r.claim_mappings.as_ref())?;
        // 9. user_claim.
        if r.user_claim.is_empty() {
            return Err(Error::invalid("a user claim must be defined on the role"));
        }
        // 10. oidc roles need redirect URIs.
        let redirects = r
            .allowed_redirect_uris
            .as_ref()
            .is_some_and(|v| !v.is_empty());
        if r.role_type == RoleType::Oidc && !redirects {
            return Err(Error::invalid(
                "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.",
            ));
        }
        // 11. jwt roles need a bound constraint.
        if r.role_type == RoleType::Jwt && !r.has_bound_constraint() {
            return Err(Error::invalid(
                "must have at least one bound constraint when creating/updating a role",
            ));
        }
        // 12. single-use memory outlives every acceptance of a token (crate::single_use).
        if r.single_use
            && r.clock_skew_leeway.seconds(60) > crate::single_use::MAX_CLOCK_SKEW as f64
        {
            return Err(Error::invalid(format!(
                "a single_use role's clock_skew_leeway can be at most {} seconds",
                crate::single_use::MAX_CLOCK_SKEW
            )));
        }
        // 13. ttl against max_ttl.
        let t = &r.tokens.token;
        if t.max_ttl > 0 && t.ttl > t.max_ttl {
            return Err(Error::invalid("ttl should not be greater than max ttl"));
        }
        // 14. warnings.
        let mut warnings = r.tokens.warnings(mount);
        if r.verbose_oidc_logging {
            warnings.push("verbose_oidc_logging has been enabled for this role. This may expose sensitive information in the server logs and should only be used for debugging; disable it afterwards.".to_string());
        }
        Ok(RoleWrite { role: r, warnings })
    }

    fn has_bound_constraint(&self) -> bool {
        self.bound_audiences.as_ref().is_some_and(|v| !v.is_empty())
            || !self.tokens.token.bound_cidrs.is_empty()
            || !self.bound_subject.is_empty()
            || self.bound_claims.as_ref().is_some_and(|m| !m.is_empty())
    }

    /// The `data` of a role read (reference §3.4).
    pub fn read_data(&self) -> Map<String, Value> {
        let v = json!({
            "role_type": self.role_type.as_str(),
            "user_claim": self.user_claim,
            "user_claim_json_pointer": self.user_claim_json_pointer,
            "bound_audiences": self.bound_audiences,
            "bound_subject": self.bound_subject,
            "bound_claims": self.bound_claims,
            "bound_claims_type": self.bound_claims_type.as_str(),
            "claim_mappings": self.claim_mappings,
            "groups_claim": self.groups_claim,
            "clock_skew_leeway": i64::from(self.clock_skew_leeway),
            "expiration_leeway": i64::from(self.expiration_leeway),
            "not_before_leeway": i64::from(self.not_before_leeway),
            "allowed_redirect_uris": self.allowed_redirect_uris,
            "oidc_scopes": self.oidc_scopes,
            "max_age": self.max_age,
            "verbose_oidc_logging": self.verbose_oidc_logging,
            "callback_mode": self.callback_mode.as_str(),
            "oidc_disable_confirmation": self.oidc_disable_confirmation,
            "alias_metadata": {},
        });
        let Value::Object(mut map) = v else {
            unreachable!("a JSON object literal")
        };
        if self.poll_interval > 0 {
            map.insert("poll_interval".into(), json!(self.poll_interval));
        }
        // Beyond Vault: shown only when set.
        if self.single_use {
            map.insert("single_use".into(), json!(true));
        }
        self.tokens.read_into(&mut map);
        self.cel.read_into(&mut map);
        map
    }
}

/// Glob-mode `bound_claims` values must be strings or lists of strings (Vault API: role
/// `bound_claims_type`). As in OpenBao 2.7.2, a lone number or bool counts as a one-element
/// list, so it is refused as `claim is not a string: <value>`; objects and `null` are
/// `claim is not a string or list`.
fn check_glob_values(bound: Option<&Map<String, Value>>) -> Result<()> {
    for value in bound.into_iter().flat_map(|m| m.values()) {
        let items = match value {
            Value::String(_) => continue,
            Value::Array(items) => items.as_slice(),
            scalar @ (Value::Number(_) | Value::Bool(_)) => std::slice::from_ref(scalar),
            other => {
                return Err(Error::invalid(format!(
                    "claim is not a string or list: {other}"
                )))
            }
        };
        if let Some(bad) = items.iter().find(|i| !i.is_string()) {
            return Err(Error::invalid(format!("claim is not a string: {bad}")));
        }
    }
    Ok(())
}

fn check_mappings(mappings: Option<&BTreeMap<String, String>>) -> Result<()> {
    let mut targets = BTreeSet::new();
    for target in mappings.into_iter().flat_map(|m| m.values()) {
        if target == "role" {
            return Err(Error::invalid(
                "metadata key \"role\" is reserved and may not be a mapping destination",
            ));
        }
        if !targets.insert(target) {
            return Err(Error::invalid(format!(
                "multiple keys are mapped to metadata key {target:?}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(bound: &str) -> std::result::Result<(), String> {
        let map: Map<String, Value> = serde_json::from_str(bound).unwrap();
        check_glob_values(Some(&map)).map_err(|e| e.to_string())
    }

    #[test]
    fn glob_bound_claims_take_strings_and_lists_of_strings_only() {
        assert_eq!(glob(r#"{"a":"x*","b":["y","z?"]}"#), Ok(()));
        // Answers checked against OpenBao 2.7.2.
        let refused = [
            (r#"{"foo":25}"#, "claim is not a string: 25"),
            (r#"{"foo":2.5}"#, "claim is not a string: 2.5"),
            (r#"{"foo":true}"#, "claim is not a string: true"),
            (r#"{"foo":["baz",10]}"#, "claim is not a string: 10"),
            (r#"{"foo":{"a":1}}"#, "claim is not a string or list"),
            (r#"{"foo":null}"#, "claim is not a string or list"),
        ];
        for (bound, want) in refused {
            let got = glob(bound).unwrap_err();
            assert!(got.contains(want), "{bound}: {got}");
        }
    }
}
