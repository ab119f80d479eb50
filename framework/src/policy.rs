//! ACL policies: Vault's HCL policy language, the rule priority, and the check of a request
//! against a token's policies.
//!
//! ```hcl
//! path "auth/jwt/role/*" {
//!   capabilities = ["create", "read", "update", "delete", "list"]
//! }
//! ```
//!
//! Patterns: an exact path; a trailing `*` matches any rest; `+` matches one whole path
//! segment. When several patterns match, the most specific wins (Vault's priority rules);
//! a matching `deny` refuses everything. The policies `root` (everything) and `default`
//! (the token's own lookup, renewal, revocation and `sys/capabilities-self`) are built in;
//! `default` may be rewritten. Source: Vault documentation, "Policies".

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::cache::Cached;
use crate::error::{Error, Result};
use crate::storage::View;

/// One capability of a rule. Source: Vault policy `capabilities`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Write to a path that does not exist yet.
    Create,
    /// Read.
    Read,
    /// Write to an existing path (or any write on paths without an existence check).
    Update,
    /// Delete.
    Delete,
    /// List keys.
    List,
    /// Use root-protected paths (with the operation's own capability).
    Sudo,
    /// Refuse everything, whatever else matches.
    Deny,
    /// Vault's `patch` (accepted in policies; authmount has no PATCH operation).
    Patch,
}

impl Capability {
    const ALL: [(Capability, &'static str); 8] = [
        (Capability::Create, "create"),
        (Capability::Read, "read"),
        (Capability::Update, "update"),
        (Capability::Delete, "delete"),
        (Capability::List, "list"),
        (Capability::Sudo, "sudo"),
        (Capability::Deny, "deny"),
        (Capability::Patch, "patch"),
    ];

    /// The capability named `name` (lower case, as in policies).
    pub fn from_name(name: &str) -> Option<Capability> {
        Capability::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(c, _)| *c)
    }

    /// Its name in policies.
    pub fn name(self) -> &'static str {
        Capability::ALL
            .iter()
            .find(|(c, _)| *c == self)
            .map(|(_, n)| *n)
            .unwrap_or("deny")
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of capabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities(u8);

impl Capabilities {
    /// True when `cap` is in the set.
    pub fn contains(self, cap: Capability) -> bool {
        self.0 & cap.bit() != 0
    }

    fn insert(&mut self, cap: Capability) {
        self.0 |= cap.bit();
    }

    fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }

    /// The names, in Vault's order (`["deny"]` alone when denied).
    pub fn names(self) -> Vec<&'static str> {
        if self.contains(Capability::Deny) {
            return vec!["deny"];
        }
        Capability::ALL
            .iter()
            .filter(|(c, _)| self.contains(*c))
            .map(|(_, n)| *n)
            .collect()
    }
}

/// A parsed policy: its name, its text as written, and its rules by pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Lower-case name.
    pub name: String,
    /// The HCL (or JSON) text it was written with.
    pub text: String,
    rules: BTreeMap<String, Capabilities>,
}

/// The built-in `default` policy: a token may look itself up, renew and revoke itself, and
/// ask its own capabilities (`sys/capabilities-self`), and wrap, look up and unwrap
/// response-wrapping tokens, as Vault's default policy allows.
pub const DEFAULT_POLICY: &str = r#"# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
  capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
  capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
  capabilities = ["update"]
}

# Allow tokens to wrap values of their own in a response-wrapping token
path "sys/wrapping/wrap" {
  capabilities = ["update"]
}

# Allow tokens to look up a response-wrapping token's creation path, time and TTL
path "sys/wrapping/lookup" {
  capabilities = ["update"]
}

# Allow tokens to unwrap a response-wrapping token given in the request body
path "sys/wrapping/unwrap" {
  capabilities = ["update"]
}
"#;

/// The built-in `response-wrapping` policy of wrapping tokens: unwrap (or revoke) and
/// nothing else. It cannot be changed, deleted, listed or given to a token. Source: Vault
/// "Response Wrapping" (the rules are Vault's; `cubbyhole/response` is Vault's legacy unwrap
/// path, which authmount does not serve).
pub const RESPONSE_WRAPPING_POLICY: &str = r#"path "cubbyhole/response" {
  capabilities = ["create", "read"]
}

path "sys/wrapping/unwrap" {
  capabilities = ["update"]
}

path "auth/token/revoke-self" {
  capabilities = ["update"]
}
"#;

/// The name of [`RESPONSE_WRAPPING_POLICY`].
pub const RESPONSE_WRAPPING: &str = "response-wrapping";

impl Policy {
    /// Parses Vault's policy language: `path "<pattern>" { capabilities = [...] }` blocks in
    /// HCL (with the `hcl-rs` crate), or the same structure as JSON. Rules for the same
    /// pattern are merged. Errors: the reason, e.g. `failed to parse policy: path "a": path
    /// "a": invalid capability "reed"` (Vault's text).
    pub fn parse(name: &str, text: &str) -> std::result::Result<Policy, String> {
        let mut rules: BTreeMap<String, Capabilities> = BTreeMap::new();
        for (pattern, caps) in path_blocks(text)? {
            let mut set = Capabilities::default();
            for cap in caps {
                let parsed = Capability::from_name(&cap)
                    // Vault's words, the path named twice as its nested errors name it.
                    .ok_or_else(|| {
                        format!(
                            "failed to parse policy: path {pattern:?}: path {pattern:?}: \
                             invalid capability {cap:?}"
                        )
                    })?;
                set.insert(parsed);
            }
            let pattern = pattern.trim_start_matches('/').to_string();
            let merged = rules.get(&pattern).copied().unwrap_or_default().union(set);
            rules.insert(pattern, merged);
        }
        Ok(Policy {
            name: name.to_string(),
            text: text.to_string(),
            rules,
        })
    }
}

/// The `(pattern, capability names)` of every `path` block.
fn path_blocks(text: &str) -> std::result::Result<Vec<(String, Vec<String>)>, String> {
    if text.trim_start().starts_with('{') {
        return json_path_blocks(text);
    }
    let body = hcl::parse(text).map_err(|e| format!("failed to parse policy: {e}"))?;
    if let Some(attr) = body.attributes().next() {
        return Err(format!(
            "failed to parse policy: unexpected attribute {:?}",
            attr.key()
        ));
    }
    let mut out = Vec::new();
    for block in body.blocks() {
        if block.identifier() != "path" {
            return Err(format!(
                "failed to parse policy: unknown block {:?}",
                block.identifier()
            ));
        }
        let [label] = block.labels() else {
            return Err("failed to parse policy: a path block takes exactly one label".into());
        };
        let mut caps = Vec::new();
        for attr in block.body().attributes() {
            match (attr.key(), attr.expr()) {
                ("capabilities", hcl::Expression::Array(items)) => {
                    for item in items {
                        match item {
                            hcl::Expression::String(s) => caps.push(s.clone()),
                            other => {
                                return Err(format!("capabilities must be strings, got {other:?}"))
                            }
                        }
                    }
                }
                ("capabilities", _) => return Err("capabilities must be a list of strings".into()),
                // Vault's old syntax: one word standing for a set of capabilities.
                ("policy", hcl::Expression::String(word)) => caps.extend(
                    legacy_capabilities(word)
                        .ok_or_else(|| {
                            format!("invalid policy {word:?}: use deny, read, write or sudo")
                        })?
                        .iter()
                        .map(|c| c.to_string()),
                ),
                // Vault's parameter constraints are not enforced by authmount.
                (
                    "allowed_parameters"
                    | "denied_parameters"
                    | "required_parameters"
                    | "min_wrapping_ttl"
                    | "max_wrapping_ttl",
                    _,
                ) => {}
                (other, _) => {
                    return Err(format!(
                        "failed to parse policy: unknown key {other:?} in path {:?}",
                        label.as_str()
                    ))
                }
            }
        }
        out.push((label.as_str().to_string(), caps));
    }
    Ok(out)
}

/// The capabilities of Vault's old `policy = "<word>"` syntax.
fn legacy_capabilities(word: &str) -> Option<&'static [&'static str]> {
    Some(match word {
        "deny" => &["deny"],
        "read" => &["read", "list"],
        "write" => &["create", "read", "update", "delete", "list"],
        "sudo" => &["create", "read", "update", "delete", "list", "sudo"],
        _ => return None,
    })
}

fn json_path_blocks(text: &str) -> std::result::Result<Vec<(String, Vec<String>)>, String> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| format!("failed to parse policy: {e}"))?;
    let paths = doc
        .get("path")
        .and_then(Value::as_object)
        .ok_or("failed to parse policy: no \"path\" object")?;
    paths
        .iter()
        .map(|(pattern, rule)| {
            let caps: Vec<String> = match (rule.get("capabilities"), rule.get("policy")) {
                (Some(list), _) => list
                    .as_array()
                    .ok_or_else(|| format!("path {pattern:?}: capabilities must be a list"))?
                    .iter()
                    .map(|c| {
                        c.as_str()
                            .map(str::to_string)
                            .ok_or("capabilities must be strings".to_string())
                    })
                    .collect::<std::result::Result<_, _>>()?,
                (None, Some(Value::String(word))) => legacy_capabilities(word)
                    .ok_or_else(|| {
                        format!("invalid policy {word:?}: use deny, read, write or sudo")
                    })?
                    .iter()
                    .map(|c| c.to_string())
                    .collect(),
                _ => return Err(format!("path {pattern:?} has no capabilities list")),
            };
            Ok((pattern.clone(), caps))
        })
        .collect()
}

/// True when `pattern` matches `path`: exact, `+` for one segment, trailing `*` for any rest.
fn matches(pattern: &str, path: &str) -> bool {
    let (body, glob) = match pattern.strip_suffix('*') {
        Some(body) => (body, true),
        None => (pattern, false),
    };
    if !body.contains('+') {
        return if glob {
            path.starts_with(body)
        } else {
            path == body
        };
    }
    let mut rest = path;
    let mut segments = body.split('/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        let (head, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        if last {
            return if seg == "+" {
                !head.is_empty() && (tail.is_none() || glob)
            } else if glob {
                rest.starts_with(seg)
            } else {
                rest == seg
            };
        }
        if (seg == "+" && head.is_empty()) || (seg != "+" && seg != head) {
            return false;
        }
        match tail {
            Some(t) => rest = t,
            None => return false,
        }
    }
    false
}

/// Vault's priority of a pattern: a larger key wins when several match.
fn priority(pattern: &str) -> (usize, bool, std::cmp::Reverse<usize>, usize, &str) {
    let first_wildcard = pattern.find(['+', '*']).unwrap_or(usize::MAX);
    let pluses = pattern.split('/').filter(|s| *s == "+").count();
    (
        first_wildcard,
        !pattern.ends_with('*'),
        std::cmp::Reverse(pluses),
        pattern.len(),
        pattern,
    )
}

/// The rules of a token's policies, merged, ready to check requests.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    root: bool,
    rules: BTreeMap<String, Capabilities>,
}

impl Acl {
    /// The ACL of these policies (`root` among them allows everything).
    pub fn new<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Acl {
        let mut acl = Acl::default();
        for policy in policies {
            if policy.name == "root" {
                acl.root = true;
            }
            for (pattern, caps) in &policy.rules {
                let merged = acl
                    .rules
                    .get(pattern)
                    .copied()
                    .unwrap_or_default()
                    .union(*caps);
                acl.rules.insert(pattern.clone(), merged);
            }
        }
        acl
    }

    /// True for the root policy.
    pub fn is_root(&self) -> bool {
        self.root
    }

    /// The capabilities granted on `path` (the most specific matching rule).
    pub fn capabilities(&self, path: &str) -> Capabilities {
        self.rules
            .iter()
            .filter(|(pattern, _)| matches(pattern, path))
            .max_by(|(a, _), (b, _)| priority(a).cmp(&priority(b)))
            .map(|(_, caps)| *caps)
            .unwrap_or_default()
    }

    /// True when `needed` (and `sudo`, on root-protected paths) is granted on `path` and no
    /// `deny` applies.
    pub fn allows(&self, path: &str, needed: Capability, sudo: bool) -> bool {
        if self.root {
            return true;
        }
        let caps = self.capabilities(path);
        !caps.contains(Capability::Deny)
            && caps.contains(needed)
            && (!sudo || caps.contains(Capability::Sudo))
    }

    /// True when these policies grant anything on the mount at `prefix` (e.g. `auth/jwt/`,
    /// `sys/`): a capability other than `deny` on `prefix` itself, or a rule for a path under
    /// it that grants one (a `+` segment matching any one segment of `prefix`). Root sees
    /// every mount. Source: Vault's rule for which mounts `sys/internal/ui/mounts` shows a
    /// token.
    pub fn grants_under(&self, prefix: &str) -> bool {
        if self.root {
            return true;
        }
        let granted = |caps: &Capabilities| {
            !caps.contains(Capability::Deny) && *caps != Capabilities::default()
        };
        if granted(&self.capabilities(prefix)) {
            return true;
        }
        let mount: Vec<&str> = prefix.trim_end_matches('/').split('/').collect();
        self.rules
            .iter()
            .filter(|(_, caps)| granted(caps))
            .any(|(pattern, _)| {
                let body = pattern.trim_end_matches('*');
                if !pattern.contains('+') {
                    return body.starts_with(prefix);
                }
                // A `+` pattern reaches under the mount when its first segments match the
                // mount's, a `+` matching any one of them.
                let segments: Vec<&str> = body.split('/').collect();
                segments.len() > mount.len()
                    && mount
                        .iter()
                        .zip(&segments)
                        .all(|(m, s)| *s == "+" || s == m)
            })
    }
}

/// Stored policies (`sys/policy/<name>`), parsed once per text and cached exactly
/// ([`Cached`]), so a change through any server node applies to the next request. Names are
/// lower-cased.
pub struct PolicyStore {
    storage: View,
    cache: Cached<Policy>,
    builtin_default: Arc<Policy>,
    builtin_root: Arc<Policy>,
    builtin_wrapping: Arc<Policy>,
}

impl PolicyStore {
    /// The store in `storage`.
    pub fn new(storage: View) -> Self {
        let builtin =
            |name, text| Arc::new(Policy::parse(name, text).expect("built-in policy parses"));
        PolicyStore {
            storage,
            cache: Cached::new(),
            builtin_default: builtin("default", DEFAULT_POLICY),
            builtin_root: builtin("root", ""),
            builtin_wrapping: builtin(RESPONSE_WRAPPING, RESPONSE_WRAPPING_POLICY),
        }
    }

    /// The policy `name`: stored, or the built-in `default`/`root`/`response-wrapping`;
    /// `None` when unknown.
    pub async fn get(&self, name: &str) -> Result<Option<Arc<Policy>>> {
        match name {
            "root" => return Ok(Some(self.builtin_root.clone())),
            RESPONSE_WRAPPING => return Ok(Some(self.builtin_wrapping.clone())),
            _ => {}
        }
        let stored = self
            .cache
            .get(&self.storage, name, |bytes| async move {
                let text = String::from_utf8_lossy(&bytes);
                Policy::parse(name, &text)
                    .map_err(|e| Error::internal(format!("stored policy {name:?}: {e}")))
            })
            .await?;
        Ok(match stored {
            None if name == "default" => Some(self.builtin_default.clone()),
            other => other,
        })
    }

    /// Writes policy `name` from its text. Errors: 400 for `root` and `response-wrapping`, an empty name or text
    /// that does not parse; nothing is stored then.
    pub async fn put(&self, name: &str, text: &str) -> Result<()> {
        let name = name.to_lowercase();
        if name.is_empty() {
            return Err(Error::invalid("missing policy name"));
        }
        if name == "root" || name == RESPONSE_WRAPPING {
            return Err(Error::invalid(format!("cannot update {name:?} policy")));
        }
        let policy = Policy::parse(&name, text).map_err(Error::invalid)?;
        self.storage.put(&name, text.as_bytes()).await?;
        self.cache
            .insert(&name, text.as_bytes().to_vec(), Arc::new(policy));
        Ok(())
    }

    /// Deletes policy `name`. Errors: 400 for the built-in `root`, `default` and
    /// `response-wrapping`.
    pub async fn delete(&self, name: &str) -> Result<()> {
        if matches!(name, "root" | "default" | RESPONSE_WRAPPING) {
            return Err(Error::invalid(match name {
                "default" => "cannot delete default policy".to_string(),
                _ => format!("cannot delete {name:?} policy"),
            }));
        }
        self.storage.delete(name).await?;
        self.cache.remove(name);
        Ok(())
    }

    /// Every policy name: `default` and the stored ones sorted, then `root` last, as Vault
    /// lists them (`response-wrapping` is not listed).
    pub async fn names(&self) -> Result<Vec<String>> {
        let mut names = self.storage.list("").await?;
        names.push("default".to_string());
        names.sort();
        names.dedup();
        names.push("root".to_string());
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(text: &str) -> Acl {
        Acl::new([&Policy::parse("p", text).unwrap()])
    }

    #[test]
    fn parses_hcl_and_json_and_refuses_bad_input() {
        let p = Policy::parse("p", r#"path "a/*" { capabilities = ["read", "list"] }"#).unwrap();
        assert_eq!(p.rules["a/*"].names(), ["read", "list"]);
        let j = Policy::parse(
            "p",
            r#"{"path": {"a/*": {"capabilities": ["read", "list"]}}}"#,
        )
        .unwrap();
        assert_eq!(j.rules, p.rules);
        assert!(
            Policy::parse("p", r#"path "a" { capabilities = ["reed"] }"#)
                .unwrap_err()
                .contains("invalid capability \"reed\"")
        );
        assert!(Policy::parse("p", r#"path "a" { capabilities = ["read"] "#).is_err());
        assert!(Policy::parse("p", r#"secret "a" { capabilities = ["read"] }"#).is_err());
        assert!(Policy::parse("p", r#"path "a" { caps = ["read"] }"#).is_err());
        let old = Policy::parse("p", "path \"a/*\" {\n  policy = \"read\"\n}\n").unwrap();
        assert_eq!(old.rules["a/*"].names(), ["read", "list"]);
        assert!(Policy::parse("p", "path \"a\" {\n  policy = \"reed\"\n}\n").is_err());
    }

    #[test]
    fn globs_and_segment_wildcards_match_like_vault() {
        assert!(matches("auth/jwt/role/*", "auth/jwt/role/demo"));
        assert!(matches("auth/jwt/role/*", "auth/jwt/role/"));
        assert!(!matches("auth/jwt/role/*", "auth/jwt/config"));
        assert!(matches("auth/jwt/config", "auth/jwt/config"));
        assert!(!matches("auth/jwt/config", "auth/jwt/config/x"));
        assert!(matches("auth/+/role/*", "auth/my-path/role/x"));
        assert!(!matches("auth/+/role/*", "auth/team/a/role/x"));
        assert!(matches("auth/+/login", "auth/jwt/login"));
        assert!(!matches("auth/+/login", "auth//login"));
        assert!(matches("auth/+", "auth/jwt"));
        assert!(!matches("auth/+", "auth/jwt/x"));
    }

    #[test]
    fn the_most_specific_rule_wins_and_deny_refuses() {
        let a = acl(r#"
            path "auth/jwt/*" { capabilities = ["read"] }
            path "auth/jwt/role/*" { capabilities = ["create", "read", "update", "delete", "list"] }
            path "auth/jwt/role/secret" { capabilities = ["deny"] }
        "#);
        assert!(a.allows("auth/jwt/role/demo", Capability::Delete, false));
        assert!(!a.allows("auth/jwt/config", Capability::Update, false));
        assert!(a.allows("auth/jwt/config", Capability::Read, false));
        assert!(!a.allows("auth/jwt/role/secret", Capability::Read, false));
        assert!(!a.allows("sys/auth/jwt", Capability::Update, true));
        assert!(
            !a.allows("auth/jwt/role/demo", Capability::Read, true),
            "sudo not granted"
        );
    }

    #[test]
    fn rules_for_one_pattern_merge_across_policies() {
        let p1 = Policy::parse("a", r#"path "x" { capabilities = ["read"] }"#).unwrap();
        let p2 = Policy::parse("b", r#"path "x" { capabilities = ["update"] }"#).unwrap();
        let acl = Acl::new([&p1, &p2]);
        assert!(
            acl.allows("x", Capability::Read, false) && acl.allows("x", Capability::Update, false)
        );
        let root = Policy::parse("root", "").unwrap();
        assert!(Acl::new([&root]).allows("sys/auth/jwt", Capability::Delete, true));
    }

    #[test]
    fn the_default_policy_allows_only_self_service() {
        let a = acl(DEFAULT_POLICY);
        assert!(a.allows("auth/token/lookup-self", Capability::Read, false));
        assert!(a.allows("auth/token/renew-self", Capability::Update, false));
        assert!(a.allows("auth/token/revoke-self", Capability::Update, false));
        assert!(!a.allows("auth/token/lookup", Capability::Update, false));
        assert!(!a.allows("auth/jwt/config", Capability::Read, false));
        assert!(a.allows("sys/capabilities-self", Capability::Update, false));
    }

    #[test]
    fn a_mount_is_reached_by_any_rule_that_grants_under_it() {
        let a = acl(r#"
            path "auth/jwt/role/*" { capabilities = ["read"] }
            path "auth/denied/*" { capabilities = ["deny"] }
            path "auth/team/+/role/*" { capabilities = ["list"] }
            path "sys/tools/hash" { capabilities = ["update"] }
            path "secret*" { capabilities = ["read"] }
        "#);
        for yes in [
            "auth/jwt/",
            "auth/team/a/",
            "auth/team/",
            "auth/",
            "sys/",
            "secret/",
            "secrets/",
        ] {
            assert!(a.grants_under(yes), "{yes}");
        }
        for no in [
            "auth/denied/",
            "auth/other/",
            "auth/team/a/b/c/",
            "identity/",
        ] {
            assert!(!a.grants_under(no), "{no}");
        }
        assert!(Acl::new([&Policy::parse("root", "").unwrap()]).grants_under("anything/"));
    }

    /// Properties of ACL matching against a reference model written from Vault's policy
    /// documentation: patterns become regular expressions (`+` one non-empty segment, a
    /// trailing `*` any rest), the most specific match is chosen by the documented pairwise
    /// rules, capabilities of one pattern are merged across policies, and a `deny` there
    /// refuses everything.
    mod properties {
        use super::*;
        use proptest::prelude::*;
        use regex::Regex;
        use std::cmp::Ordering;

        const CAPS: [Capability; 7] = [
            Capability::Create,
            Capability::Read,
            Capability::Update,
            Capability::Delete,
            Capability::List,
            Capability::Sudo,
            Capability::Deny,
        ];

        /// Patterns over a small alphabet so that they often match: segments `a`, `b`, `ab`,
        /// `+`, empty; a leading `/` sometimes (trimmed by the parser); a trailing `*`
        /// sometimes.
        fn pattern() -> impl Strategy<Value = String> {
            let segment = prop_oneof![Just("a"), Just("b"), Just("ab"), Just("+"), Just("")];
            (
                proptest::bool::weighted(0.1),
                proptest::collection::vec(segment, 1..5),
                proptest::bool::ANY,
            )
                .prop_map(|(lead, segs, glob)| {
                    let mut p = if lead { "/".to_string() } else { String::new() };
                    p.push_str(&segs.join("/"));
                    if glob {
                        p.push('*');
                    }
                    p
                })
        }

        /// Request paths as the ACL sees them: canonical (no leading or doubled slash),
        /// sometimes with a trailing one (lists).
        fn path() -> impl Strategy<Value = String> {
            let segment = prop_oneof![Just("a"), Just("b"), Just("ab"), Just("abc")];
            (
                proptest::collection::vec(segment, 1..6),
                proptest::bool::weighted(0.2),
            )
                .prop_map(|(segs, slash)| {
                    let path = segs.join("/");
                    if slash {
                        path + "/"
                    } else {
                        path
                    }
                })
        }

        fn caps() -> impl Strategy<Value = Vec<Capability>> {
            proptest::sample::subsequence(CAPS.to_vec(), 0..=4)
        }

        /// One to three policies of up to four rules each.
        fn policies() -> impl Strategy<Value = Vec<Vec<(String, Vec<Capability>)>>> {
            proptest::collection::vec(proptest::collection::vec((pattern(), caps()), 0..5), 1..4)
        }

        fn hcl(rules: &[(String, Vec<Capability>)]) -> String {
            rules
                .iter()
                .map(|(p, caps)| {
                    let names: Vec<String> =
                        caps.iter().map(|c| format!("{:?}", c.name())).collect();
                    format!(
                        "path {p:?} {{\n  capabilities = [{}]\n}}\n",
                        names.join(", ")
                    )
                })
                .collect()
        }

        fn reference_matches(pattern: &str, path: &str) -> bool {
            let (body, glob) = match pattern.strip_suffix('*') {
                Some(body) => (body, true),
                None => (pattern, false),
            };
            let segments: Vec<String> = body
                .split('/')
                .map(|s| match s {
                    "+" => "[^/]+".to_string(),
                    s => regex::escape(s),
                })
                .collect();
            let tail = if glob { ".*" } else { "" };
            Regex::new(&format!("^{}{tail}$", segments.join("/")))
                .unwrap()
                .is_match(path)
        }

        /// Vault's documented priority, pairwise: `Less` when `p1` has the lower priority.
        fn reference_order(p1: &str, p2: &str) -> Ordering {
            let wildcard = |p: &str| p.find(['+', '*']);
            match (wildcard(p1), wildcard(p2)) {
                (Some(a), Some(b)) if a != b => return a.cmp(&b),
                (Some(_), None) => return Ordering::Less,
                (None, Some(_)) => return Ordering::Greater,
                _ => {}
            }
            match (p1.ends_with('*'), p2.ends_with('*')) {
                (true, false) => return Ordering::Less,
                (false, true) => return Ordering::Greater,
                _ => {}
            }
            let pluses = |p: &str| p.split('/').filter(|s| *s == "+").count();
            if pluses(p1) != pluses(p2) {
                return pluses(p2).cmp(&pluses(p1));
            }
            if p1.len() != p2.len() {
                return p1.len().cmp(&p2.len());
            }
            p1.cmp(p2)
        }

        fn reference_allows(
            policies: &[Vec<(String, Vec<Capability>)>],
            path: &str,
            needed: Capability,
            sudo: bool,
        ) -> bool {
            let mut merged: BTreeMap<String, Vec<Capability>> = BTreeMap::new();
            for (pattern, caps) in policies.iter().flatten() {
                let pattern = pattern.trim_start_matches('/').to_string();
                merged.entry(pattern).or_default().extend(caps);
            }
            let Some((_, caps)) = merged
                .iter()
                .filter(|(p, _)| reference_matches(p, path))
                .max_by(|(a, _), (b, _)| reference_order(a, b))
            else {
                return false;
            };
            !caps.contains(&Capability::Deny)
                && caps.contains(&needed)
                && (!sudo || caps.contains(&Capability::Sudo))
        }

        fn acl_of(policies: &[Vec<(String, Vec<Capability>)>]) -> Acl {
            let parsed: Vec<Policy> = policies
                .iter()
                .enumerate()
                .map(|(i, rules)| Policy::parse(&format!("p{i}"), &hcl(rules)).unwrap())
                .collect();
            Acl::new(parsed.iter())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn matching_agrees_with_the_reference(p in pattern(), path in path()) {
                let p = p.trim_start_matches('/');
                prop_assert_eq!(matches(p, &path), reference_matches(p, &path), "{} on {}", p, path);
            }

            #[test]
            fn decisions_agree_with_the_reference(
                policies in policies(),
                path in path(),
                needed in proptest::sample::select(CAPS[..5].to_vec()),
                sudo in proptest::bool::ANY,
            ) {
                let acl = acl_of(&policies);
                prop_assert_eq!(
                    acl.allows(&path, needed, sudo),
                    reference_allows(&policies, &path, needed, sudo),
                    "{:?} on {} in {:?}", needed, path, policies
                );
            }

            /// A `deny` on the exact path refuses every capability there, whatever the other
            /// policies grant, and changes nothing on any other path.
            #[test]
            fn an_exact_deny_always_wins(
                mut policies in policies(),
                denied in path(),
                other in path(),
                needed in proptest::sample::select(CAPS[..5].to_vec()),
                sudo in proptest::bool::ANY,
            ) {
                let before = acl_of(&policies);
                policies.push(vec![(denied.clone(), vec![Capability::Deny])]);
                let after = acl_of(&policies);
                prop_assert!(!after.allows(&denied, needed, sudo));
                if other != denied {
                    prop_assert_eq!(after.allows(&other, needed, sudo), before.allows(&other, needed, sudo));
                }
            }
        }
    }
}
