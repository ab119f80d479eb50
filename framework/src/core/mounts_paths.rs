//! `sys/mounts` and `sys/internal/ui/mounts`: the mount table as Vault shows it, as a path
//! table; and the built-in mounts every server has.
//!
//! authmount serves auth methods only, so its secrets-engine mounts are the two built-in ones
//! Vault has too: `sys/` and `identity/`. With the token store (`token/` in `sys/auth`) they
//! are the **built-in mounts**: never enabled or disabled by a request, their accessors and
//! UUIDs made once per store (stored under `core/builtin-mounts`, created with
//! insert-if-absent so that several nodes starting together agree). `token/` is tuned like
//! any auth mount (`sys/auth/token/tune`, `token_type` excepted), and its TTLs apply to the
//! tokens `auth/token/create` makes.
//!
//! - `GET sys/mounts`: the secrets mounts (`sys/`, `identity/`).
//! - `GET sys/mounts/<path>`: the mount serving `<path>` (longest prefix), auth mounts
//!   included as `auth/<path>`; 400 `No secret engine mount at <path>/` when none.
//! - `POST sys/mounts/<path>`: no secrets engine can be enabled: 400 `plugin not found in
//!   the catalog: <type>` (OpenBao's answer for a type it does not know), 400 `cannot mount
//!   "<path>/"` under a reserved prefix; `DELETE` answers 204 (nothing there) or 400
//!   `cannot unmount "<path>/"` for a built-in or auth mount.
//! - `GET sys/mounts/<path>/tune` for `sys/` and `identity/`: their TTLs and description.
//! - `GET sys/internal/ui/mounts`: no token needed. Without one, the mounts tuned
//!   `listing_visibility = "unauth"`, each as `{type, description, options}`; with one, those
//!   plus every mount the token's policies reach ([`Acl::grants_under`]), each in full.
//!   `GET sys/internal/ui/mounts/<path>` needs a token and answers the mount serving `<path>`
//!   (with its `path`) when the policies reach it; else 403 `preflight capability check
//!   returned 403, ...`. An unknown token is a 403 either way; no use is counted.
//!
//! Source: Vault API `sys/mounts`, `sys/mounts/<path>/tune`, `sys/internal/ui/mounts`.

use std::sync::{Arc, Weak};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::reply::{mount_json, tune_json};
use super::CoreInner;
use crate::backend::BackendRequest;
use crate::error::{Error, Result};
use crate::mount::{ListingVisibility, MountConfig, MountEntry};
use crate::path::{Field, FieldType, Path};
use crate::response::Response;

/// The storage key (in the core's view) of the built-in mounts.
const BUILTIN_KEY: &str = "builtin-mounts";

/// Prefixes under which no secrets engine may be mounted (Vault's protected paths).
const RESERVED: [&str; 5] = ["audit/", "auth/", "sys/", "cubbyhole/", "identity/"];

/// The mounts every server has, as stored once per store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct BuiltinMounts {
    /// The token store: `token/` in `sys/auth`.
    pub token: MountEntry,
    /// The system backend: `sys/` in `sys/mounts`.
    pub sys: MountEntry,
    /// The identity store: `identity/` in `sys/mounts`.
    pub identity: MountEntry,
}

impl BuiltinMounts {
    /// Fresh entries with new accessors and UUIDs, as Vault describes its own.
    fn fresh() -> Self {
        // `system_1a2b3c4d`, `identity_…`: secrets mounts have no `auth_` prefix.
        let entry = |path: &str, kind: &str, description: &str, secrets: bool| {
            let mut e = MountEntry::new(
                path.into(),
                kind,
                description.into(),
                MountConfig::default(),
            );
            if secrets {
                let hex = e
                    .accessor
                    .rsplit('_')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                e.accessor = format!("{kind}_{hex}");
            }
            e
        };
        let mut sys = entry(
            "sys/",
            "system",
            "system endpoints used for control, policy and debugging",
            true,
        );
        sys.seal_wrap = true;
        sys.config.passthrough_request_headers = vec!["Accept".into()];
        let mut identity = entry("identity/", "identity", "identity store", true);
        identity.config.passthrough_request_headers = vec!["Authorization".into()];
        let token = entry("token/", "token", "token based credentials", false);
        BuiltinMounts {
            token,
            sys,
            identity,
        }
    }

    /// The secrets mounts, by path.
    fn secrets(&self) -> [&MountEntry; 2] {
        [&self.sys, &self.identity]
    }
}

/// The JSON of a built-in mount in `sys/mounts`, `sys/auth` and their reads: a mount entry
/// with `options: null` and no `deprecation_status`; a secrets mount has no `token_type`.
pub(super) fn builtin_json(e: &MountEntry) -> Value {
    let mut v = mount_json(e);
    if let Some(o) = v.as_object_mut() {
        o.insert("options".into(), Value::Null);
        o.remove("deprecation_status");
        if e.kind != "token" {
            if let Some(c) = o.get_mut("config").and_then(Value::as_object_mut) {
                c.remove("token_type");
            }
        }
    }
    v
}

/// The `{type, description, options}` of a mount shown without a token.
fn public_json(full: &Value) -> Value {
    json!({
        "type": full["type"],
        "description": full["description"],
        "options": full["options"],
    })
}

/// The `mounts/` and `internal/ui/mounts` paths of the `sys/` table, bound to the core.
pub(super) fn paths(core: &Weak<CoreInner>) -> Vec<Path> {
    use FieldType::*;
    let path_field = || Field::new("path", String, "The mount path, e.g. sys or auth/jwt.");
    vec![
        Path::new("mounts")
            .help("List the secrets engine mounts.")
            .read(core, CoreInner::list_secret_mounts),
        Path::new(r"mounts/(?P<path>.+?)/tune")
            .help("Read a secrets engine mount's TTLs and description.")
            .field(path_field())
            .read(core, CoreInner::read_secret_tune),
        Path::new("mounts/(?P<path>.+)")
            .help("Read the mount serving a path; enabling or disabling secrets engines is not supported (authmount serves auth methods).")
            .fields([
                path_field(),
                Field::new("type", String, "The secrets engine type: none is available."),
                Field::new("description", String, "Free text."),
                Field::new("config", Map, "Tuning."),
                Field::new("local", Bool, "Vault's local flag."),
                Field::new("seal_wrap", Bool, "Vault's seal_wrap flag."),
                Field::new("external_entropy_access", Bool, "Accepted for compatibility."),
                Field::new("options", KvPairs, "Engine options."),
                Field::new("plugin_name", String, "Accepted for compatibility."),
                Field::new("plugin_version", String, "Accepted for compatibility."),
            ])
            .read(core, CoreInner::read_any_mount)
            .update(core, CoreInner::enable_secrets_engine)
            .delete(core, CoreInner::disable_secrets_engine),
        Path::new("internal/ui/mounts")
            .help("The mounts the caller may see: those listed without a token, and with a token those its policies reach.")
            .token_optional()
            .read(core, CoreInner::ui_mounts),
        Path::new("internal/ui/mounts/(?P<path>.+)")
            .help("The mount serving a path, when the caller's policies reach it (needs a token).")
            .field(path_field())
            .token_optional()
            .read(core, CoreInner::ui_mount),
    ]
}

/// `<path>` with exactly one trailing slash (Vault's `sanitizePath` for mount paths).
fn with_slash(raw: &str) -> String {
    format!("{}/", raw.trim_end_matches('/'))
}

impl CoreInner {
    /// The built-in mounts, made and stored at their first use (once per store, whichever
    /// node comes first).
    pub(super) async fn builtin_mounts(&self) -> Result<BuiltinMounts> {
        if let Some(found) = self.core_view.get_json(BUILTIN_KEY).await? {
            return Ok(found);
        }
        let fresh = serde_json::to_vec(&BuiltinMounts::fresh()).map_err(Error::internal)?;
        self.core_view.put_if_absent(BUILTIN_KEY, &fresh).await?;
        self.core_view
            .get_json(BUILTIN_KEY)
            .await?
            .ok_or_else(|| Error::internal("the built-in mounts vanished from storage"))
    }

    /// Applies `change` to the stored built-in mounts with compare-and-set (retried when
    /// another node changed them meanwhile, so no node's change is lost). Errors: the
    /// change's own; 503 after many lost races.
    pub(super) async fn change_builtin_mounts(
        &self,
        change: impl Fn(&mut BuiltinMounts) -> Result<()>,
    ) -> Result<()> {
        self.builtin_mounts().await?;
        self.core_view
            .update_json::<BuiltinMounts, _>(BUILTIN_KEY, |current| {
                let mut next = current
                    .ok_or_else(|| Error::internal("the built-in mounts vanished from storage"))?;
                change(&mut next)?;
                Ok(Some(next))
            })
            .await
            .map(|_| ())
    }

    /// Every mount as Vault's combined table knows it: (full path, JSON, listing
    /// visibility), secrets mounts first, then `auth/token/` and the auth methods.
    async fn all_mounts(&self) -> Result<Vec<(String, Value, ListingVisibility)>> {
        let builtin = self.builtin_mounts().await?;
        let mut all: Vec<_> = builtin
            .secrets()
            .iter()
            .map(|e| (e.path.clone(), builtin_json(e), ListingVisibility::Hidden))
            .collect();
        all.push((
            "auth/token/".into(),
            builtin_json(&builtin.token),
            builtin.token.config.listing_visibility,
        ));
        for e in self.mounts.entries()? {
            all.push((
                format!("auth/{}", e.path),
                mount_json(&e),
                e.config.listing_visibility,
            ));
        }
        Ok(all)
    }

    /// The mount serving `path` (which ends in `/`): the longest mounted prefix.
    async fn mount_serving(&self, path: &str) -> Result<Option<(String, Value)>> {
        Ok(self
            .all_mounts()
            .await?
            .into_iter()
            .filter(|(prefix, _, _)| path.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _, _)| prefix.len())
            .map(|(prefix, json, _)| (prefix, json)))
    }

    async fn list_secret_mounts(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        let builtin = self.builtin_mounts().await?;
        let data: Map<_, _> = builtin
            .secrets()
            .iter()
            .map(|e| (e.path.clone(), builtin_json(e)))
            .collect();
        Ok(Response::data(data))
    }

    async fn read_any_mount(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let path = with_slash(req.fields.str("path").unwrap_or_default());
        match self.mount_serving(&path).await? {
            Some((_, json)) => Ok(Response::json(json)),
            None => Err(Error::invalid(format!("No secret engine mount at {path}"))),
        }
    }

    async fn read_secret_tune(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let path = with_slash(req.fields.str("path").unwrap_or_default());
        let builtin = self.builtin_mounts().await?;
        let entry = builtin
            .secrets()
            .into_iter()
            .find(|e| e.path == path)
            .ok_or_else(|| Error::invalid(format!("cannot fetch sysview for path {path:?}")))?;
        let mut tune = tune_json(entry, &entry.info(&self.limits));
        if let Some(o) = tune.as_object_mut() {
            o.remove("token_type");
        }
        Ok(Response::json(tune))
    }

    /// No secrets engine is available: every type is unknown (OpenBao's answer for a type
    /// missing from its catalog). Errors: 400 `backend type must be specified as a
    /// string`; 400 `cannot mount "<path>/"` under a reserved prefix; 400 `plugin not found
    /// in the catalog: <type>`.
    async fn enable_secrets_engine(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let kind = req
            .fields
            .str("type")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::invalid("backend type must be specified as a string"))?;
        let path = with_slash(req.fields.str("path").unwrap_or_default());
        if RESERVED.iter().any(|r| path.starts_with(r)) {
            return Err(Error::invalid(format!("cannot mount {path:?}")));
        }
        Err(Error::invalid(format!(
            "plugin not found in the catalog: {kind}"
        )))
    }

    /// Nothing can be unmounted here: 204 where nothing is mounted (as Vault answers), 400
    /// `cannot unmount "<path>/"` for the built-in mounts and auth methods (`sys/auth` is
    /// where those are disabled).
    async fn disable_secrets_engine(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let path = with_slash(req.fields.str("path").unwrap_or_default());
        if RESERVED.iter().any(|r| path.starts_with(r)) {
            return Err(Error::invalid(format!("cannot unmount {path:?}")));
        }
        Ok(Response::default())
    }

    async fn ui_mounts(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let acl = req.caller.as_deref().map(|c| &c.acl);
        let mut auth = Map::new();
        let mut secret = Map::new();
        for (path, full, visibility) in self.all_mounts().await? {
            let shown = match acl {
                Some(acl) if visibility == ListingVisibility::Unauth || acl.grants_under(&path) => {
                    full
                }
                None if visibility == ListingVisibility::Unauth => public_json(&full),
                _ => continue,
            };
            match path.strip_prefix("auth/") {
                Some(rel) => auth.insert(rel.to_string(), shown),
                None => secret.insert(path, shown),
            };
        }
        Ok(Response::json(json!({ "auth": auth, "secret": secret })))
    }

    async fn ui_mount(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let caller = req.caller.as_deref().ok_or(Error::PermissionDenied)?;
        let path = with_slash(req.fields.str("path").unwrap_or_default());
        let refused = || {
            Error::Forbidden(format!(
                "preflight capability check returned 403, please ensure client's policies grant access to path {path:?}"
            ))
        };
        let (prefix, mut json) = self.mount_serving(&path).await?.ok_or_else(refused)?;
        if !caller.acl.grants_under(&prefix) {
            return Err(refused());
        }
        json["path"] = json!(prefix.strip_prefix("auth/").unwrap_or(&prefix));
        Ok(Response::json(json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_mounts_look_like_vaults() {
        let b = BuiltinMounts::fresh();
        assert!(b.sys.accessor.starts_with("system_"), "{}", b.sys.accessor);
        assert!(b.identity.accessor.starts_with("identity_"));
        assert!(b.token.accessor.starts_with("auth_token_"));
        let sys = builtin_json(&b.sys);
        assert_eq!(sys["options"], Value::Null);
        assert!(sys.get("deprecation_status").is_none());
        assert!(sys["config"].get("token_type").is_none());
        assert_eq!(
            sys["config"]["passthrough_request_headers"],
            json!(["Accept"])
        );
        assert_eq!(sys["seal_wrap"], json!(true));
        let token = builtin_json(&b.token);
        assert_eq!(token["config"]["token_type"], "default-service");
        assert_eq!(token["type"], "token");
    }

    #[test]
    fn mount_paths_get_one_slash() {
        assert_eq!(with_slash("sys"), "sys/");
        assert_eq!(with_slash("auth/jwt//"), "auth/jwt/");
    }
}
