//! Login explain (authmount only): `POST auth/<mount>/login/explain` takes the body of
//! `login` and answers every check of the login pipeline in order ([`crate::login::run`],
//! the same code login runs), with what each compared and which failed first, without
//! issuing a token or writing anything: a single-use token is looked up, not consumed, and
//! the login metrics do not count it.
//!
//! Who may ask: a token with `sudo` on the role's path, `auth/<mount>/role/<name>` (on
//! `auth/<mount>/config` when no valid role name is given and the config names no default
//! role). The path takes no other capability, so granting explain for one role is one
//! policy line. Root tokens pass.
//!
//! What never appears in the answer: the JWT, its signature, key material. Claim values the
//! checks compared do appear (the caller may already read the role and sees the token).

use std::net::IpAddr;

use authmount_framework::{BackendRequest, Error, Result};
use serde_json::{json, Map, Value};

use crate::config::ParsedConfig;
use crate::login::{Trace, Verdict};

/// True when `name` can be a role name (Vault's `\w(([\w-.]+)?\w)?` in ASCII).
fn is_role_name(name: &str) -> bool {
    let edge = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let inner = |c: char| edge(c) || c == '-' || c == '.';
    match (name.chars().next(), name.chars().last()) {
        (Some(first), Some(last)) => edge(first) && edge(last) && name.chars().all(inner),
        _ => false,
    }
}

/// The path whose `sudo` an explain of `req` needs: the role's, or the config's when no
/// valid role name is known.
pub fn guarded_path(req: &BackendRequest, config: Option<&ParsedConfig>) -> String {
    let mount = format!("auth/{}", req.mount.path);
    let named = req.fields.str("role").filter(|r| !r.is_empty());
    let default = config.map(|c| c.stored.default_role.as_str());
    match named.or(default.filter(|d| !d.is_empty())) {
        Some(name) if is_role_name(name) => format!("{mount}role/{name}"),
        _ => format!("{mount}config"),
    }
}

/// Refuses (403 `permission denied`) a caller without a token or without `sudo` on
/// [`guarded_path`].
pub fn authorize(req: &BackendRequest, config: Option<&ParsedConfig>) -> Result<()> {
    let caller = req.caller.as_deref().ok_or(Error::PermissionDenied)?;
    if caller.has_sudo(&guarded_path(req, config)) {
        Ok(())
    } else {
        Err(Error::PermissionDenied)
    }
}

/// The client address the CIDR check judges: `client_address` when given, else the
/// caller's. Errors: 400 for an address that does not parse.
pub fn client_address(req: &BackendRequest) -> Result<Option<IpAddr>> {
    match req.fields.str("client_address").filter(|a| !a.is_empty()) {
        None => Ok(req.remote_addr),
        Some(text) => text
            .trim()
            .parse::<IpAddr>()
            .map(Some)
            .map_err(|e| Error::invalid(format!("invalid client_address {text:?}: {e}"))),
    }
}

/// The answer's `data`: `role` (the role used, once found), `allowed` (login would issue a
/// token), `failed_check` and `error` (the first check that refused and login's error; both
/// `null` when allowed), and `checks`: one object per check run, in order, with `check`
/// (its name), `passed`, what it compared, and `error` when it failed.
pub fn answer(verdict: &Verdict, trace: &Trace) -> Map<String, Value> {
    let checks: Vec<Value> = trace
        .checks()
        .iter()
        .map(|c| {
            let mut entry = Map::new();
            entry.insert("check".into(), json!(c.name));
            entry.insert("passed".into(), json!(c.passed));
            entry.extend(c.details.clone());
            if let Some(error) = &c.error {
                entry.insert("error".into(), json!(error));
            }
            Value::Object(entry)
        })
        .collect();
    let failed = trace.checks().iter().find(|c| !c.passed);
    let data = json!({
        "role": verdict.role.as_ref().map(|(name, _)| name),
        "allowed": verdict.outcome.is_ok(),
        "failed_check": failed.map(|c| c.name),
        "error": verdict.outcome.as_ref().err().map(ToString::to_string),
        "checks": checks,
    });
    match data {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::is_role_name;

    #[test]
    fn role_names_follow_the_role_pattern() {
        for good in ["demo", "a", "ci-prod.v2", "_x_"] {
            assert!(is_role_name(good), "{good}");
        }
        for bad in ["", "-a", "a.", "../x", "a/b", "a b", "é"] {
            assert!(!is_role_name(bad), "{bad}");
        }
    }
}
