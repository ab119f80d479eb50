//! `sys/capabilities`, `sys/capabilities-self`, `sys/capabilities-accessor`: what a token's
//! policies allow on some paths, as a path table.
//!
//! Each answers `{"<path>": [...], ...}` with one key per path asked about (as sent), plus
//! `capabilities` when exactly one path was asked about. A list is the capability names in
//! alphabetical order (`["create", "sudo"]`); `["root"]` for a root token; `["deny"]` when
//! nothing is granted or a `deny` applies. A path is judged in the spelling the request flow
//! would judge a request to it (a leading `/` dropped; names a handler lower-cases lower-cased,
//! DECISIONS D15; see [`CoreInner::acl_spelling`]), so the answer says what such a request
//! would be allowed. Looking a token up here never counts one of its uses.
//!
//! Source: Vault API `sys/capabilities`, `sys/capabilities-self`, `sys/capabilities-accessor`
//! (`path` is the deprecated single-path form of `paths`; the token of
//! `sys/capabilities-self` is the caller's own, whatever the body says).

use std::sync::{Arc, Weak};

use serde_json::{json, Map};

use super::CoreInner;
use crate::backend::BackendRequest;
use crate::error::{Error, Result};
use crate::path::{Field, FieldType, Path};
use crate::policy::{Acl, Capability};
use crate::request::Operation;
use crate::response::Response;
use crate::token::TokenEntry;

fn path_fields() -> Vec<Field> {
    vec![
        Field::new(
            "paths",
            FieldType::CommaStringSlice,
            "The paths to check (a list, or comma-separated).",
        ),
        Field::new("path", FieldType::CommaStringSlice, "Use 'paths'.").deprecated(),
    ]
}

/// The capabilities paths of the `sys/` table, their handlers bound to the core.
pub(super) fn paths(core: &Weak<CoreInner>) -> Vec<Path> {
    vec![
        Path::new("capabilities")
            .help("The capabilities a token has on paths.")
            .field(Field::new("token", FieldType::String, "The token to check.").sensitive())
            .fields(path_fields())
            .update(core, CoreInner::capabilities_of_token),
        Path::new("capabilities-self")
            .help("The capabilities the caller's own token has on paths.")
            .field(
                Field::new(
                    "token",
                    FieldType::String,
                    "Ignored: the caller's own token is checked.",
                )
                .sensitive(),
            )
            .fields(path_fields())
            .update(core, CoreInner::capabilities_self),
        Path::new("capabilities-accessor")
            .help("The capabilities of the token with this accessor on paths.")
            .field(Field::new(
                "accessor",
                FieldType::String,
                "The accessor of the token to check.",
            ))
            .fields(path_fields())
            .update(core, CoreInner::capabilities_of_accessor),
    ]
}

/// Vault's text for an error it wraps in a one-item error list.
fn one_error(message: &str) -> String {
    format!("1 error occurred:\n\t* {message}\n\n")
}

/// The paths asked about: `paths`, else `path`. Errors: 400 `paths must be supplied` when
/// there are none; 400 `missing path` (Vault's wrapped text) for an empty one.
fn asked_paths(req: &BackendRequest) -> Result<Vec<String>> {
    let paths = req
        .fields
        .strings("paths")
        .filter(|p| !p.is_empty())
        .or_else(|| req.fields.strings("path"))
        .unwrap_or_default();
    if paths.is_empty() {
        return Err(Error::invalid("paths must be supplied"));
    }
    if paths.iter().any(|p| p.is_empty()) {
        return Err(Error::invalid(one_error("missing path")));
    }
    Ok(paths)
}

/// The capability names granted on `path` (already in its ACL spelling), Vault's way:
/// `["root"]` for root, `["deny"]` when nothing or a deny applies, else sorted names.
pub(super) fn capability_names(acl: &Acl, path: &str) -> Vec<&'static str> {
    if acl.is_root() {
        return vec!["root"];
    }
    let caps = acl.capabilities(path);
    let mut names = caps.names();
    if caps.contains(Capability::Deny) || names.is_empty() {
        return vec!["deny"];
    }
    names.sort_unstable();
    names
}

impl CoreInner {
    /// `sys/capabilities`: the token comes from the body. Errors, in Vault's order: 400 `no
    /// token found` (Vault answers this one with a 500; DECISIONS D9's rule: bad input is a
    /// 400); 400 `paths must be supplied`; 400 `invalid token` for an unknown or dead token.
    async fn capabilities_of_token(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let token = req.fields.str("token").unwrap_or_default();
        if token.is_empty() {
            return Err(Error::invalid(one_error("no token found")));
        }
        let paths = asked_paths(&req)?;
        let found = self
            .tokens
            .lookup(token)
            .await?
            .ok_or_else(|| Error::invalid(one_error("invalid token")))?;
        self.capabilities_answer(&found.entry, &paths).await
    }

    /// `sys/capabilities-self`: the caller's own token (already authenticated).
    async fn capabilities_self(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let paths = asked_paths(&req)?;
        let caller = req.caller.as_deref().ok_or(Error::PermissionDenied)?;
        Ok(answer(&caller.acl, self.spelled(&paths)?))
    }

    /// `sys/capabilities-accessor`. Errors: 400 `missing accessor`; 400 `invalid accessor`
    /// (both before the paths are looked at, as in Vault); 400 `paths must be supplied`.
    async fn capabilities_of_accessor(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let accessor = req.fields.str("accessor").unwrap_or_default();
        if accessor.is_empty() {
            return Err(Error::invalid("missing accessor"));
        }
        let found = self
            .tokens
            .lookup_accessor(accessor)
            .await?
            .ok_or_else(|| Error::invalid(one_error("invalid accessor")))?;
        let paths = asked_paths(&req)?;
        self.capabilities_answer(&found.entry, &paths).await
    }

    async fn capabilities_answer(&self, entry: &TokenEntry, paths: &[String]) -> Result<Response> {
        let acl = self.acl(entry).await?;
        Ok(answer(&acl, self.spelled(paths)?))
    }

    /// Each path as sent, with the spelling the ACL judges it in.
    fn spelled(&self, paths: &[String]) -> Result<Vec<(String, String)>> {
        paths
            .iter()
            .map(|p| Ok((p.clone(), self.capability_path(p)?)))
            .collect()
    }

    /// The spelling the request flow's ACL check would give a request to `path`: without
    /// its leading `/`, routed like a request, in its route's canonical spelling when a path
    /// table matches (a trailing `/` kept, as a list request keeps it); as sent otherwise.
    pub(super) fn capability_path(&self, path: &str) -> Result<String> {
        let path = path.trim_start_matches('/');
        let operation = match path.ends_with('/') {
            true => Operation::List,
            false => Operation::Read,
        };
        let Some(route) = self.route(path)? else {
            return Ok(path.to_string());
        };
        let rel = path.get(route.prefix.len()..).unwrap_or_default();
        Ok(match route.table.find(rel, operation) {
            Some(matched) => CoreInner::acl_spelling(&route, &matched),
            None => path.to_string(),
        })
    }
}

/// `{"<path>": [names], ...}`, plus `capabilities` for a single path.
fn answer(acl: &Acl, paths: Vec<(String, String)>) -> Response {
    let mut data = Map::new();
    let single = paths.len() == 1;
    for (asked, spelled) in paths {
        let names = json!(capability_names(acl, &spelled));
        if single {
            data.insert("capabilities".into(), names.clone());
        }
        data.insert(asked, names);
    }
    Response::data(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use serde_json::Value;

    fn acl(text: &str) -> Acl {
        let p = Policy::parse("p", text).unwrap();
        Acl::new([&p])
    }

    #[test]
    fn names_are_sorted_and_deny_or_nothing_is_deny() {
        let a = acl(r#"path "a/*" { capabilities = ["update", "read", "list"] }
               path "a/secret" { capabilities = ["deny"] }
               path "b/+/x" { capabilities = ["sudo", "create"] }"#);
        assert_eq!(capability_names(&a, "a/x"), ["list", "read", "update"]);
        assert_eq!(capability_names(&a, "a/secret"), ["deny"]);
        assert_eq!(capability_names(&a, "b/y/x"), ["create", "sudo"]);
        assert_eq!(capability_names(&a, "c"), ["deny"]);
        let root = Policy::parse("root", "").unwrap();
        assert_eq!(capability_names(&Acl::new([&root]), "anything"), ["root"]);
    }

    #[test]
    fn one_path_also_answers_capabilities() {
        let a = acl(r#"path "a" { capabilities = ["read"] }"#);
        let one = answer(&a, vec![("/a".into(), "a".into())]);
        assert_eq!(
            Value::Object(one.data.unwrap()),
            json!({"/a": ["read"], "capabilities": ["read"]})
        );
        let two = answer(&a, vec![("a".into(), "a".into()), ("b".into(), "b".into())]);
        assert_eq!(
            Value::Object(two.data.unwrap()),
            json!({"a": ["read"], "b": ["deny"]})
        );
    }
}
