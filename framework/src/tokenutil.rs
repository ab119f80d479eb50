//! The standard token parameters of every auth method's roles: the `token_*` fields, their
//! deprecated names, their checks and their read shape, in one place. A backend declares
//! them with `.fields(tokenutil::fields())`, stores a [`TokenSettings`] (e.g. flattened into
//! its role) and gets Vault's behaviour for all of them.
//!
//! Source: Vault `sdk/helper/tokenutil` (reference §3.2), `policyutil.ParsePolicies`.

use std::collections::BTreeSet;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::backend::MountInfo;
use crate::duration::format_go;
use crate::error::{Error, Result};
use crate::path::{Field, FieldData, FieldType};
use crate::response::{TokenParams, TokenType};

/// The `token_*` fields and their deprecated aliases (Vault `tokenutil.AddTokenFields`).
pub fn fields() -> Vec<Field> {
    use FieldType::*;
    vec![
        Field::new("token_policies", CommaStringSlice, "Policies of issued tokens."),
        Field::new("token_ttl", DurationSecond, "TTL of issued tokens (seconds or a duration such as \"1h\"); 0 means the mount's default."),
        Field::new("token_max_ttl", DurationSecond, "Max TTL of issued tokens; 0 means the mount's max."),
        Field::new("token_explicit_max_ttl", DurationSecond, "Hard cap on the lifetime of issued tokens, renewals included; 0 means none."),
        Field::new("token_period", DurationSecond, "Period of periodic tokens; 0 means not periodic."),
        Field::new("token_num_uses", Int, "Uses of issued tokens; 0 means unlimited."),
        Field::new("token_no_default_policy", Bool, "Do not add the default policy to issued tokens."),
        Field::new("token_bound_cidrs", CommaStringSlice, "Addresses (CIDRs) issued tokens, and logins, are bound to."),
        Field::new("token_type", String, "'default', 'service' or 'batch'."),
        Field::new("policies", CommaStringSlice, "Use token_policies.").deprecated(),
        Field::new("bound_cidrs", CommaStringSlice, "Use token_bound_cidrs.").deprecated(),
        Field::new("ttl", DurationSecond, "Use token_ttl.").deprecated(),
        Field::new("max_ttl", DurationSecond, "Use token_max_ttl.").deprecated(),
        Field::new("period", DurationSecond, "Use token_period.").deprecated(),
        Field::new("num_uses", Int, "Use token_num_uses.").deprecated(),
    ]
}

/// What a role stores of the token fields: the parameters, and the values written through
/// the deprecated names (echoed on read under those names, as Vault does).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenSettings {
    /// The parameters tokens are issued with.
    pub token: TokenParams,
    /// Values stored through the deprecated names.
    pub legacy: LegacyTokenFields,
}

/// Values stored through the deprecated aliases (reference §3.2 "Deprecated aliases").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LegacyTokenFields {
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

impl TokenSettings {
    /// Applies a write of the token fields (merge: only what was sent changes) and checks
    /// the result. A deprecated name alone sets both values; beside its new name it follows
    /// the new one; a new name sent without its alias clears the stored legacy value.
    ///
    /// Errors (400, Vault's texts): a bad CIDR or token type, negative uses, `token_ttl` over
    /// `token_max_ttl`, a batch token type with a period or limited uses, a period above the
    /// mount's max lease TTL.
    pub fn apply_write(&mut self, f: &FieldData, mount: &MountInfo) -> Result<()> {
        apply_token_fields(&mut self.token, f)?;
        self.apply_legacy(f)?;
        if self.token.period > mount.max_lease_ttl {
            return Err(Error::invalid(format!(
                "'period' of '{:?}' is greater than the backend's maximum lease TTL of '{:?}'",
                format_go(self.token.period),
                format_go(mount.max_lease_ttl)
            )));
        }
        Ok(())
    }

    /// Warnings about settings the mount will cap (shown on a successful write).
    pub fn warnings(&self, mount: &MountInfo) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.token.max_ttl > mount.max_lease_ttl {
            warnings.push("token max ttl is greater than the system or backend mount's maximum TTL value; issued tokens' max TTL value will be truncated".to_string());
        }
        warnings
    }

    /// Adds the read shape of the token fields to `data`: every `token_*` field, and each
    /// deprecated name that holds a value.
    pub fn read_into(&self, data: &mut Map<String, Value>) {
        let t = &self.token;
        for (name, value) in [
            ("token_policies", json!(t.policies)),
            ("token_ttl", json!(t.ttl)),
            ("token_max_ttl", json!(t.max_ttl)),
            ("token_explicit_max_ttl", json!(t.explicit_max_ttl)),
            ("token_period", json!(t.period)),
            ("token_num_uses", json!(t.num_uses)),
            ("token_no_default_policy", json!(t.no_default_policy)),
            ("token_bound_cidrs", json!(cidr_strings(&t.bound_cidrs))),
            ("token_type", json!(t.token_type.as_str())),
        ] {
            data.insert(name.into(), value);
        }
        let l = &self.legacy;
        if !l.policies.is_empty() {
            data.insert("policies".into(), json!(l.policies));
        }
        if !l.bound_cidrs.is_empty() {
            data.insert("bound_cidrs".into(), json!(cidr_strings(&l.bound_cidrs)));
        }
        for (name, value) in [
            ("ttl", l.ttl),
            ("max_ttl", l.max_ttl),
            ("period", l.period),
            ("num_uses", l.num_uses),
        ] {
            if value != 0 {
                data.insert(name.into(), json!(value));
            }
        }
    }

    fn apply_legacy(&mut self, f: &FieldData) -> Result<()> {
        let (t, l) = (&mut self.token, &mut self.legacy);
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

/// CIDRs as Vault prints them: a single address (/32, /128) without its mask.
pub fn cidr_strings(cidrs: &[IpNet]) -> Vec<String> {
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

/// Parses addresses and CIDRs (`10.0.0.0/8`, `10.0.0.5`); empty entries are skipped.
///
/// Errors: 400 `error parsing address "x": ...`.
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

/// Lower-cases, trims, deduplicates and sorts policy names; drops empty ones (Vault
/// `policyutil.ParsePolicies`).
pub fn parse_policies(items: &[String]) -> Vec<String> {
    let set: BTreeSet<String> = items
        .iter()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::{Path, Router};
    use crate::request::Operation;

    fn write(settings: &mut TokenSettings, body: Value) -> Result<()> {
        let path = Path::new("x").fields(fields());
        let router = Router::new(vec![path]);
        let m = router.find("x", Operation::Update).unwrap();
        let f = FieldData::parse(
            m.path,
            &m.captures,
            body.as_object().unwrap(),
            Operation::Update,
        )?;
        let mount = MountInfo {
            path: "jwt/".into(),
            accessor: "a".into(),
            kind: "jwt".into(),
            default_lease_ttl: 3600,
            max_lease_ttl: 7200,
        };
        settings.apply_write(&f, &mount)
    }

    #[test]
    fn legacy_names_set_both_values_and_new_names_win() {
        let mut s = TokenSettings::default();
        write(&mut s, json!({"policies": "B, a", "ttl": "10m"})).unwrap();
        assert_eq!(s.token.policies, ["a", "b"]);
        assert_eq!((s.token.ttl, s.legacy.ttl), (600, 600));
        write(&mut s, json!({"token_ttl": 60})).unwrap();
        assert_eq!((s.token.ttl, s.legacy.ttl), (60, 0));
        let mut data = Map::new();
        s.read_into(&mut data);
        assert_eq!(data["token_ttl"], 60);
        assert!(!data.contains_key("ttl"));
        assert_eq!(data["policies"], json!(["a", "b"]));
    }

    #[test]
    fn refuses_what_vault_refuses() {
        let msg = |body: Value| {
            write(&mut TokenSettings::default(), body)
                .unwrap_err()
                .to_string()
        };
        assert!(
            msg(json!({"token_type": "default-service"})).contains("invalid 'token_type' value")
        );
        assert!(msg(json!({"token_ttl": 10, "token_max_ttl": 5})).contains("cannot be greater"));
        assert!(msg(json!({"token_type": "batch", "token_period": 5})).contains("periodic"));
        assert!(msg(json!({"token_num_uses": -1})).contains("negative"));
        assert!(msg(json!({"token_period": "3h"})).contains("maximum lease TTL"));
        assert!(msg(json!({"token_bound_cidrs": "10.0.0.0/33"})).contains("error parsing address"));
    }
}
