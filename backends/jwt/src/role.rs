//! Roles (`auth/<mount>/role/<name>`): fields, create/update with merge, checks, read shape.
//!
//! Source: Vault JWT API `role` (reference §3), with DECISIONS D1 (role_type kept on update,
//! `jwt` by default unless redirect URIs are given) and D2 (bound_claims_type kept on
//! update). A write is checked whole before anything is stored.

use std::collections::{BTreeMap, BTreeSet};

use authmount_framework::duration::format_go;
use authmount_framework::{
    Error, Field, FieldData, FieldType, MountInfo, Result, TokenParams, TokenType,
};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// A role as stored. Durations in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Role {
    /// `jwt` or `oidc`.
    pub role_type: String,
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
    pub bound_claims_type: String,
    /// `claim_mappings`: claim → metadata key.
    pub claim_mappings: Option<BTreeMap<String, String>>,
    /// `groups_claim`.
    pub groups_claim: String,
    /// `clock_skew_leeway` (0 = default 60, negative = none).
    pub clock_skew_leeway: i64,
    /// `expiration_leeway` (0 = default 150, negative = none).
    pub expiration_leeway: i64,
    /// `not_before_leeway` (0 = default 150, negative = none).
    pub not_before_leeway: i64,
    /// `allowed_redirect_uris` (OIDC flow).
    pub allowed_redirect_uris: Option<Vec<String>>,
    /// `oidc_scopes` (OIDC flow).
    pub oidc_scopes: Option<Vec<String>>,
    /// `max_age` (OIDC flow).
    pub max_age: i64,
    /// `verbose_oidc_logging`.
    pub verbose_oidc_logging: bool,
    /// `callback_mode` (OpenBao's browser-login modes): `client` (the default, also when
    /// empty), `direct` or `device`.
    pub callback_mode: String,
    /// `poll_interval` in seconds for the `direct` and `device` modes; 0 = the default.
    pub poll_interval: i64,
    /// `oidc_disable_confirmation`: in `direct` mode, skip the confirmation page.
    pub oidc_disable_confirmation: bool,
    /// The `token_*` fields (Vault `tokenutil`, reference §3.2), as the core takes them.
    pub token: TokenParams,
    /// Values set through the deprecated names (`policies`, `ttl`, ...), echoed on read.
    pub legacy: LegacyFields,
}

/// Values stored through the deprecated aliases (reference §3.2 "Deprecated aliases").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LegacyFields {
    /// `policies`.
    pub policies: Vec<String>,
    /// `bound_cidrs`.
    pub bound_cidrs: Vec<IpNet>,
    /// `ttl`.
    pub ttl: i64,
    /// `max_ttl`.
    pub max_ttl: i64,
    /// `period`.
    pub period: i64,
    /// `num_uses`.
    pub num_uses: i64,
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
            "token_policies",
            CommaStringSlice,
            "Policies of issued tokens.",
        ),
        Field::new("token_ttl", DurationSecond, "TTL of issued tokens."),
        Field::new("token_max_ttl", DurationSecond, "Max TTL of issued tokens."),
        Field::new(
            "token_explicit_max_ttl",
            DurationSecond,
            "Hard cap on the lifetime of issued tokens.",
        ),
        Field::new("token_period", DurationSecond, "Period of periodic tokens."),
        Field::new(
            "token_num_uses",
            Int,
            "Uses of issued tokens; 0 = unlimited.",
        ),
        Field::new(
            "token_no_default_policy",
            Bool,
            "Do not add the default policy.",
        ),
        Field::new(
            "token_bound_cidrs",
            CommaStringSlice,
            "Addresses issued tokens (and logins) are bound to.",
        ),
        Field::new("token_type", String, "'default', 'service' or 'batch'."),
        Field::new(
            "alias_metadata",
            KvPairs,
            "Alias metadata (accepted and echoed).",
        ),
        Field::new("policies", CommaStringSlice, "Deprecated: token_policies."),
        Field::new(
            "bound_cidrs",
            CommaStringSlice,
            "Deprecated: token_bound_cidrs.",
        ),
        Field::new("ttl", DurationSecond, "Deprecated: token_ttl."),
        Field::new("max_ttl", DurationSecond, "Deprecated: token_max_ttl."),
        Field::new("period", DurationSecond, "Deprecated: token_period."),
        Field::new("num_uses", Int, "Deprecated: token_num_uses."),
    ]
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
        let mut r = stored.cloned().unwrap_or_else(|| Role {
            bound_claims_type: "string".into(),
            ..Role::default()
        });
        let strs = |name: &str| f.strings(name);

        // 2. role_type (DECISIONS D1).
        if let Some(t) = f.str("role_type").filter(|t| !t.is_empty()) {
            r.role_type = t.to_string();
        } else if creating {
            let redirects = strs("allowed_redirect_uris").unwrap_or_default();
            r.role_type = if redirects.is_empty() { "jwt" } else { "oidc" }.into();
        }
        if r.role_type != "jwt" && r.role_type != "oidc" {
            return Err(Error::invalid(format!(
                "invalid 'role_type': {}",
                r.role_type
            )));
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
            ("max_age", &mut r.max_age),
        ] {
            if let Some(v) = f.int(name) {
                *slot = v;
            }
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
        // kept when a write omits it.
        if let Some(v) = f.str("callback_mode").filter(|v| !v.is_empty()) {
            if !["client", "direct", "device"].contains(&v) {
                return Err(Error::invalid(format!("invalid 'callback_mode': {v}")));
            }
            r.callback_mode = v.to_string();
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

        // 3. token fields, 4. legacy aliases, 5. period against the mount max.
        apply_token_fields(&mut r.token, f)?;
        apply_legacy(&mut r, f)?;
        if r.token.period > mount.max_lease_ttl {
            return Err(Error::invalid(format!(
                "'period' of '{:?}' is greater than the backend's maximum lease TTL of '{:?}'",
                format_go(r.token.period),
                format_go(mount.max_lease_ttl)
            )));
        }

        // 6. bound_claims_type (DECISIONS D2: kept when omitted).
        if let Some(t) = f.str("bound_claims_type").filter(|t| !t.is_empty()) {
            r.bound_claims_type = t.to_string();
        }
        if r.bound_claims_type != "string" && r.bound_claims_type != "glob" {
            return Err(Error::invalid(format!(
                "invalid 'bound_claims_type': {}",
                r.bound_claims_type
            )));
        }
        // 7. glob values must be strings.
        if r.bound_claims_type == "glob" {
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
        if r.role_type == "oidc" && !redirects {
            return Err(Error::invalid(
                "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.",
            ));
        }
        // 11. jwt roles need a bound constraint.
        if r.role_type == "jwt" && !r.has_bound_constraint() {
            return Err(Error::invalid(
                "must have at least one bound constraint when creating/updating a role",
            ));
        }
        // 12. ttl against max_ttl.
        if r.token.max_ttl > 0 && r.token.ttl > r.token.max_ttl {
            return Err(Error::invalid("ttl should not be greater than max ttl"));
        }
        // 13. warnings.
        let mut warnings = Vec::new();
        if r.token.max_ttl > mount.max_lease_ttl {
            warnings.push("token max ttl is greater than the system or backend mount's maximum TTL value; issued tokens' max TTL value will be truncated".to_string());
        }
        if r.verbose_oidc_logging {
            warnings.push("verbose_oidc_logging has been enabled for this role. This may expose sensitive information in the server logs and should only be used for debugging; disable it afterwards.".to_string());
        }
        Ok(RoleWrite { role: r, warnings })
    }

    /// The effective `callback_mode`: `client` when none is stored.
    pub fn callback_mode(&self) -> &str {
        match self.callback_mode.as_str() {
            "" => "client",
            mode => mode,
        }
    }

    fn has_bound_constraint(&self) -> bool {
        self.bound_audiences.as_ref().is_some_and(|v| !v.is_empty())
            || !self.token.bound_cidrs.is_empty()
            || !self.bound_subject.is_empty()
            || self.bound_claims.as_ref().is_some_and(|m| !m.is_empty())
    }

    /// The `data` of a role read (reference §3.4).
    pub fn read_data(&self) -> Map<String, Value> {
        let t = &self.token;
        let mut v = json!({
            "role_type": self.role_type,
            "user_claim": self.user_claim,
            "user_claim_json_pointer": self.user_claim_json_pointer,
            "bound_audiences": self.bound_audiences,
            "bound_subject": self.bound_subject,
            "bound_claims": self.bound_claims,
            "bound_claims_type": self.bound_claims_type,
            "claim_mappings": self.claim_mappings,
            "groups_claim": self.groups_claim,
            "clock_skew_leeway": self.clock_skew_leeway,
            "expiration_leeway": self.expiration_leeway,
            "not_before_leeway": self.not_before_leeway,
            "allowed_redirect_uris": self.allowed_redirect_uris,
            "oidc_scopes": self.oidc_scopes,
            "max_age": self.max_age,
            "verbose_oidc_logging": self.verbose_oidc_logging,
            "callback_mode": self.callback_mode(),
            "oidc_disable_confirmation": self.oidc_disable_confirmation,
            "token_policies": t.policies,
            "token_ttl": t.ttl,
            "token_max_ttl": t.max_ttl,
            "token_explicit_max_ttl": t.explicit_max_ttl,
            "token_period": t.period,
            "token_num_uses": t.num_uses,
            "token_no_default_policy": t.no_default_policy,
            "token_bound_cidrs": cidr_strings(&t.bound_cidrs),
            "token_type": t.token_type.as_str(),
            "alias_metadata": {},
        });
        let l = &self.legacy;
        let map = v.as_object_mut().expect("a JSON object literal");
        if self.poll_interval > 0 {
            map.insert("poll_interval".into(), json!(self.poll_interval));
        }
        if !l.policies.is_empty() {
            map.insert("policies".into(), json!(l.policies));
        }
        if !l.bound_cidrs.is_empty() {
            map.insert("bound_cidrs".into(), json!(cidr_strings(&l.bound_cidrs)));
        }
        for (name, value) in [
            ("ttl", l.ttl),
            ("max_ttl", l.max_ttl),
            ("period", l.period),
            ("num_uses", l.num_uses),
        ] {
            if value != 0 {
                map.insert(name.into(), json!(value));
            }
        }
        map.clone()
    }
}

/// CIDRs as Vault prints them: a single address (/32, /128) without its mask.
fn cidr_strings(cidrs: &[IpNet]) -> Vec<String> {
    cidrs
        .iter()
        .map(|c| {
            if c.prefix_len() == c.max_prefix_len() {
                c.addr().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Parses addresses and CIDRs (`10.0.0.0/8`, `10.0.0.5`). Errors: `error parsing address "x": ...`.
pub fn parse_cidrs(items: &[String]) -> Result<Vec<IpNet>> {
    items
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|e| Error::invalid(format!("error parsing address {s:?}: {e}")))
        })
        .collect()
}

/// Lower-cases, trims, deduplicates and sorts policies (Vault `policyutil.ParsePolicies`).
fn parse_policies(items: &[String]) -> Vec<String> {
    let set: BTreeSet<String> = items
        .iter()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    set.into_iter().collect()
}

fn apply_token_fields(t: &mut TokenParams, f: &FieldData) -> Result<()> {
    if let Some(v) = f.strings("token_policies") {
        t.policies = v;
    }
    if let Some(v) = f.strings("token_bound_cidrs") {
        t.bound_cidrs = parse_cidrs(&v)?;
    }
    for (name, slot) in [
        ("token_ttl", &mut t.ttl),
        ("token_max_ttl", &mut t.max_ttl),
        ("token_explicit_max_ttl", &mut t.explicit_max_ttl),
        ("token_period", &mut t.period),
        ("token_num_uses", &mut t.num_uses),
    ] {
        if let Some(v) = f.int(name) {
            *slot = v;
        }
    }
    if let Some(v) = f.bool("token_no_default_policy") {
        t.no_default_policy = v;
    }
    if let Some(v) = f.str("token_type") {
        t.token_type = match v {
            "" | "default" => TokenType::Default,
            "service" => TokenType::Service,
            "batch" => TokenType::Batch,
            other => {
                return Err(Error::invalid(format!(
                    "invalid 'token_type' value {other:?}"
                )))
            }
        };
    }
    if t.num_uses < 0 {
        return Err(Error::invalid("'token_num_uses' cannot be negative"));
    }
    if t.max_ttl > 0 && t.ttl > t.max_ttl {
        return Err(Error::invalid(
            "'token_ttl' cannot be greater than 'token_max_ttl'",
        ));
    }
    if t.token_type == TokenType::Batch {
        if t.period > 0 {
            return Err(Error::invalid("'token_type' cannot be 'batch' or 'default_batch' when set to generate periodic tokens"));
        }
        if t.num_uses > 0 {
            return Err(Error::invalid(
                "'token_type' cannot be 'batch' or 'default_batch' when set to have limited uses",
            ));
        }
    }
    Ok(())
}

/// The deprecated names: alone they set both values; beside the new name they follow it;
/// a new name sent without its alias clears the stored legacy value.
fn apply_legacy(r: &mut Role, f: &FieldData) -> Result<()> {
    let (t, l) = (&mut r.token, &mut r.legacy);
    match (f.has("token_policies"), f.strings("policies")) {
        (false, Some(p)) => {
            l.policies = parse_policies(&p);
            t.policies = l.policies.clone();
        }
        (true, Some(_)) => l.policies = t.policies.clone(),
        (true, None) => l.policies.clear(),
        (false, None) => {}
    }
    match (f.has("token_bound_cidrs"), f.strings("bound_cidrs")) {
        (false, Some(c)) => {
            l.bound_cidrs = parse_cidrs(&c)?;
            t.bound_cidrs = l.bound_cidrs.clone();
        }
        (true, Some(_)) => l.bound_cidrs = t.bound_cidrs.clone(),
        (true, None) => l.bound_cidrs.clear(),
        (false, None) => {}
    }
    for (new, old, tv, lv) in [
        ("token_ttl", "ttl", &mut t.ttl, &mut l.ttl),
        ("token_max_ttl", "max_ttl", &mut t.max_ttl, &mut l.max_ttl),
        ("token_period", "period", &mut t.period, &mut l.period),
        (
            "token_num_uses",
            "num_uses",
            &mut t.num_uses,
            &mut l.num_uses,
        ),
    ] {
        match (f.has(new), f.int(old)) {
            (false, Some(v)) => {
                *lv = v;
                *tv = v;
            }
            (true, Some(_)) => *lv = *tv,
            (true, None) => *lv = 0,
            (false, None) => {}
        }
    }
    if t.num_uses < 0 {
        return Err(Error::invalid("'token_num_uses' cannot be negative"));
    }
    Ok(())
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
