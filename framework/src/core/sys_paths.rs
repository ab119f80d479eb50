//! `sys/`: mounts (`sys/auth`, tuning), ACL policies (`sys/policy`, `sys/policies/acl`) and
//! the OpenAPI document. Enabling, reading, disabling and tuning auth methods is
//! root-protected (needs `sudo`). The status and seal endpoints of the same table
//! (`sys/health`, `sys/init`, `sys/seal-status`, `sys/unseal`, `sys/seal`, `sys/leader`) are
//! in `seal_paths.rs`.
//!
//! Source: Vault API `sys/auth`, `sys/mounts/auth/.../tune`, `sys/policy`,
//! `sys/policies/acl`, `sys/internal/specs/openapi`.

use std::sync::{Arc, Weak};

use serde_json::{json, Map, Value};

use super::mounts_paths::builtin_json;
use super::reply::{mount_json, tune_json};
use super::CoreInner;
use crate::backend::BackendRequest;
use crate::error::{Error, Result};
use crate::mount::{normalize_path, ListingVisibility, MountConfig, MountEntry, MountTokenType};
use crate::path::{convert, Field, FieldType, Path};
use crate::response::Response;
use crate::storage::View;

fn tune_fields() -> Vec<Field> {
    use FieldType::*;
    vec![
        Field::new("default_lease_ttl", String, "Default TTL of tokens issued at the mount (seconds, a duration, or \"system\")."),
        Field::new("max_lease_ttl", String, "Max TTL of tokens issued at the mount (seconds, a duration, or \"system\")."),
        Field::new("description", String, "Free text."),
        Field::new("token_type", String, "'default-service', 'default-batch', 'service' or 'batch'."),
        Field::new("listing_visibility", String, "'unauth' to list the mount in sys/internal/ui/mounts without a token; '' or 'hidden' not to."),
        Field::new("passthrough_request_headers", CommaStringSlice, "Request headers handed to the backend."),
        Field::new("allowed_response_headers", CommaStringSlice, "Response headers the backend may set."),
        Field::new("audit_non_hmac_request_keys", CommaStringSlice, "Request keys audit devices log in the clear."),
        Field::new("audit_non_hmac_response_keys", CommaStringSlice, "Response keys audit devices log in the clear."),
        Field::new("options", KvPairs, "Backend options (kept and echoed)."),
        Field::new("plugin_version", String, "Accepted for compatibility; built-in backends have none."),
    ]
}

/// The `sys/` path table, its handlers bound to the core.
pub(super) fn paths(core: &Weak<CoreInner>) -> Vec<Path> {
    use FieldType::*;
    vec![
        Path::new("auth")
            .help("List the enabled auth methods.")
            .read(core, CoreInner::list_mounts),
        Path::new(r"(?:auth|mounts/auth)/(?P<path>.+?)/tune")
            .help("Read or tune an auth method's settings: lease TTLs, token type, listing visibility, headers, audit keys.")
            .field(Field::new("path", String, "The mount path, e.g. team/a/jwt."))
            .fields(tune_fields())
            .sudo()
            .read(core, CoreInner::read_tune)
            .update(core, CoreInner::write_tune),
        Path::new("auth/(?P<path>.+)")
            .help("Enable (write), read or disable (delete) an auth method at a path.")
            .fields([
                Field::new("path", String, "The mount path, e.g. team/a/jwt."),
                Field::new("type", String, "The auth method type, e.g. jwt."),
                Field::new("description", String, "Free text."),
                Field::new("config", Map, "Tuning: default_lease_ttl, max_lease_ttl, token_type, listing_visibility, passthrough_request_headers, allowed_response_headers, audit_non_hmac_request_keys, audit_non_hmac_response_keys."),
                Field::new("local", Bool, "Vault's local flag (kept; there is no replication)."),
                Field::new("seal_wrap", Bool, "Vault's seal_wrap flag (kept; every value is encrypted anyway)."),
                Field::new("external_entropy_access", Bool, "Accepted for compatibility."),
                Field::new("options", KvPairs, "Backend options (kept and echoed)."),
                Field::new("plugin_name", String, "Accepted for compatibility."),
                Field::new("plugin_version", String, "Accepted for compatibility."),
            ])
            .sudo()
            .read(core, CoreInner::read_mount)
            .update(core, CoreInner::enable)
            .delete(core, CoreInner::disable),
        Path::new("policy/?")
            .help("List the ACL policies (legacy path).")
            .read(core, CoreInner::list_policies_legacy)
            .list(core, CoreInner::list_policies_legacy),
        Path::new("policy/(?P<name>.+)")
            .help("Read, write or delete an ACL policy (legacy path; the text is `rules`).")
            .fields([
                Field::new("name", LowerCaseString, "The policy name."),
                Field::new("rules", String, "The policy text (HCL or JSON)."),
                Field::new("policy", String, "The policy text (HCL or JSON)."),
            ])
            .existence_check(core, CoreInner::policy_exists)
            .read(core, CoreInner::read_policy)
            .update(core, CoreInner::write_policy)
            .delete(core, CoreInner::delete_policy),
        Path::new("policies/acl/?")
            .help("List the ACL policies.")
            .list(core, CoreInner::list_policies),
        Path::new("policies/acl/(?P<name>.+)")
            .help("Read, write or delete an ACL policy.")
            .fields([
                Field::new("name", LowerCaseString, "The policy name."),
                Field::new("policy", String, "The policy text (HCL or JSON)."),
            ])
            .existence_check(core, CoreInner::policy_exists)
            .read(core, CoreInner::read_policy)
            .update(core, CoreInner::write_policy)
            .delete(core, CoreInner::delete_policy),
        Path::new("internal/specs/openapi")
            .help("The OpenAPI 3 document of every endpoint of this server.")
            .read(core, CoreInner::openapi_document),
    ]
}

impl CoreInner {
    /// `sys/auth`: the token store's `token/` and every enabled method.
    async fn list_mounts(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        let token = self.builtin_mounts().await?.token;
        let mut data: Map<String, Value> = self
            .mounts
            .entries()?
            .into_iter()
            .map(|e| (e.path.clone(), mount_json(&e)))
            .collect();
        data.insert(token.path.clone(), builtin_json(&token));
        Ok(Response::data(data))
    }

    /// The token store's entry when `raw` names it (`token`, `token/`).
    async fn token_mount(&self, raw: &str) -> Result<Option<MountEntry>> {
        match raw.trim_matches('/') == "token" {
            true => Ok(Some(self.builtin_mounts().await?.token)),
            false => Ok(None),
        }
    }

    /// The mount at `raw`; a missing one is a 400 whose text `missing` builds from the
    /// normalised path (OpenBao words it differently per endpoint).
    fn mount_at(
        &self,
        raw: &str,
        missing: impl FnOnce(&str) -> String,
    ) -> Result<crate::mount::Mount> {
        let path = normalize_path(raw)?;
        self.mounts
            .get(&path)?
            .ok_or_else(|| Error::invalid(missing(&path)))
    }

    async fn read_mount(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let raw = req.fields.str("path").unwrap_or_default();
        if let Some(token) = self.token_mount(raw).await? {
            return Ok(Response::json(builtin_json(&token)));
        }
        let mount = self.mount_at(raw, |p| format!("No auth engine at {p}"))?;
        Ok(Response::json(mount_json(&mount.entry)))
    }

    async fn enable(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let f = &req.fields;
        let path = normalize_path(f.str("path").unwrap_or_default())?;
        let kind = f
            .str("type")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::invalid("backend type must be specified as a string"))?;
        self.registry.factory(kind)?;
        let config = match f.get("config").and_then(Value::as_object) {
            Some(c) => tune_config(&MountConfig::default(), c, self.limits.max_lease_ttl)?,
            None => MountConfig::default(),
        };
        let mut entry = MountEntry::new(
            path.clone(),
            kind,
            f.str("description").unwrap_or_default().to_string(),
            config,
        );
        entry.local = f.bool("local").unwrap_or(false);
        entry.seal_wrap = f.bool("seal_wrap").unwrap_or(false);
        entry.options = f.kv_pairs("options").unwrap_or_default();
        self.change_mounts(|entries| {
            if let Some(taken) = entries.iter().find(|e| overlaps(&e.path, &path)) {
                return Err(Error::invalid(format!(
                    "path is already in use at {}",
                    taken.path
                )));
            }
            entries.push(entry.clone());
            Ok(())
        })
        .await?;
        tracing::info!(target: "authmount::core", path = %path, kind, "auth method enabled");
        Ok(Response::default())
    }

    /// Disables a mount: its tokens are revoked, its aliases removed, its storage cleared.
    async fn disable(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let raw = req.fields.str("path").unwrap_or_default();
        if raw.trim_matches('/') == "token" {
            return Err(Error::invalid(
                "token credential backend cannot be disabled",
            ));
        }
        let path = normalize_path(raw)?;
        let removed = self
            .change_mounts(|entries| {
                let index = entries.iter().position(|e| e.path == path);
                Ok(index.map(|i| entries.remove(i)))
            })
            .await?;
        let Some(entry) = removed else {
            return Ok(Response::default());
        };
        self.tokens.revoke_mount(&entry.accessor).await?;
        self.identity.remove_mount_aliases(&entry.accessor).await?;
        View::new(self.storage.clone(), format!("auth/{}/", entry.uuid))
            .clear()
            .await?;
        tracing::info!(target: "authmount::core", path = %path, "auth method disabled");
        Ok(Response::default())
    }

    async fn read_tune(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let raw = req.fields.str("path").unwrap_or_default();
        if let Some(token) = self.token_mount(raw).await? {
            let info = token.info(&self.limits);
            return Ok(Response::json(tune_json(&token, &info)));
        }
        let mount = self.mount_at(raw, |p| {
            format!("cannot fetch sysview for path \"auth/{p}\"")
        })?;
        let info = mount.entry.info(&self.limits);
        Ok(Response::json(tune_json(&mount.entry, &info)))
    }

    async fn write_tune(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let raw = req.fields.str("path").unwrap_or_default();
        // The tuning fields as sent (the path capture excluded).
        let mut data = Map::new();
        for field in tune_fields() {
            if req.fields.has(field.name) {
                if let Some(v) = req.fields.get(field.name) {
                    data.insert(field.name.to_string(), v.clone());
                }
            }
        }
        let max = self.limits.max_lease_ttl;
        if raw.trim_matches('/') == "token" {
            return self.tune_token_store(&data, max).await;
        }
        let mount = self.mount_at(raw, |p| {
            format!("tune of path \"auth/{p}\" failed: no mount entry found")
        })?;
        let path = mount.entry.path.clone();
        self.change_mounts(|entries| {
            let entry = entries
                .iter_mut()
                .find(|e| e.uuid == mount.entry.uuid)
                .ok_or_else(|| Error::invalid(format!("No auth engine at {path}")))?;
            entry.config = tune_config(&entry.config, &data, max)?;
            if let Some(d) = data.get("description").and_then(Value::as_str) {
                entry.description = d.to_string();
            }
            if let Some(o) = data.get("options").and_then(Value::as_object) {
                entry.options = o
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect();
            }
            Ok(())
        })
        .await?;
        Ok(Response::default())
    }

    /// Tunes the token store's `token/` mount: its lease TTLs then apply to the tokens
    /// `auth/token/create` makes and renews. Errors: 400 for `token_type` (Vault's text),
    /// and those of [`tune_config`].
    async fn tune_token_store(&self, data: &Map<String, Value>, max: i64) -> Result<Response> {
        if data.contains_key("token_type") {
            return Err(Error::invalid(
                "'token_type' cannot be set for 'token' or 'ns_token' auth mounts",
            ));
        }
        self.change_builtin_mounts(|builtin| {
            builtin.token.config = tune_config(&builtin.token.config, data, max)?;
            if let Some(d) = data.get("description").and_then(Value::as_str) {
                builtin.token.description = d.to_string();
            }
            Ok(())
        })
        .await?;
        Ok(Response::default())
    }

    /// Applies `change` to the stored mount table with compare-and-set (retried when another
    /// node changed the table meanwhile, so no node's change is lost), then brings this
    /// node's table in line. Errors: the change's own, or 503 after many lost races.
    async fn change_mounts<R>(
        &self,
        change: impl Fn(&mut Vec<MountEntry>) -> Result<R>,
    ) -> Result<R> {
        for _ in 0..16 {
            let current = self.core_view.get("mounts").await?;
            let mut entries: Vec<MountEntry> = match &current {
                Some(bytes) => serde_json::from_slice(bytes)
                    .map_err(|e| Error::internal(format!("corrupt mount table: {e}")))?,
                None => Vec::new(),
            };
            let result = change(&mut entries)?;
            let next = serde_json::to_vec(&entries).map_err(Error::internal)?;
            if self
                .core_view
                .compare_and_put("mounts", current.as_deref(), &next)
                .await?
            {
                self.sync_mounts().await?;
                return Ok(result);
            }
        }
        Err(Error::Unavailable(
            "the mount table kept changing under this request; try again".into(),
        ))
    }

    async fn list_policies_legacy(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        let names = self.policies.names().await?;
        Ok(Response::json(json!({ "keys": names, "policies": names })))
    }

    async fn list_policies(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        let names = self.policies.names().await?;
        Ok(Response::json(json!({ "keys": names })))
    }

    async fn policy_exists(self: Arc<Self>, req: BackendRequest) -> Result<bool> {
        let name = req.fields.str("name").unwrap_or_default();
        Ok(self.policies.get(name).await?.is_some())
    }

    /// `sys/policy/<name>` answers the text as `rules` (and at the top level too);
    /// `sys/policies/acl/<name>` as `policy`.
    async fn read_policy(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let name = req.fields.str("name").unwrap_or_default();
        let policy = self.policies.get(name).await?.ok_or(Error::NotFound)?;
        Ok(match req.path.starts_with("policy/") {
            true => Response::json(json!({ "name": policy.name, "rules": policy.text })),
            false => Response::json(json!({ "name": policy.name, "policy": policy.text })),
        })
    }

    async fn write_policy(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let name = req.fields.str("name").unwrap_or_default();
        let legacy = req.path.starts_with("policy/");
        let text = match legacy {
            true => req.fields.str("policy").or(req.fields.str("rules")),
            false => req.fields.str("policy"),
        };
        let text = text
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| Error::invalid("'policy' parameter not supplied or empty"))?;
        self.policies.put(name, text).await?;
        Ok(match legacy && !req.fields.has("policy") {
            // Vault's legacy path still takes `rules`, and says so.
            true => Response::warnings(vec![
                "'rules' is deprecated, please use 'policy' instead".into()
            ]),
            false => Response::default(),
        })
    }

    async fn delete_policy(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        self.policies
            .delete(req.fields.str("name").unwrap_or_default())
            .await?;
        Ok(Response::default())
    }
}

/// True when one mount path equals, contains or sits inside the other.
fn overlaps(a: &str, b: &str) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Applies tuning parameters to a mount config. Errors: 400 for bad durations, TTLs above
/// the system max (`system_max` seconds), a default above the max, an unknown token type or
/// listing visibility.
fn tune_config(
    base: &MountConfig,
    data: &Map<String, Value>,
    system_max: i64,
) -> Result<MountConfig> {
    let mut config = base.clone();
    let seconds = |name: &str, v: &Value| -> Result<i64> {
        if v.as_str() == Some("system") {
            return Ok(0);
        }
        convert(FieldType::DurationSecond, v)
            .map(|v| v.as_i64().unwrap_or(0))
            .map_err(|e| match v.as_str() {
                // Vault's words, with the text given (a duration is no secret).
                Some(raw) if e.starts_with("time: ") => Error::invalid(format!("{e} {raw:?}")),
                _ => Error::invalid(format!("invalid {name}: {e}")),
            })
    };
    let text = |name: &str, v: &Value| -> Result<String> {
        convert(FieldType::String, v)
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .map_err(|e| Error::invalid(format!("invalid {name}: {e}")))
    };
    let list = |name: &str, v: &Value| -> Result<Vec<String>> {
        convert(FieldType::CommaStringSlice, v)
            .map(|v| serde_json::from_value(v).unwrap_or_default())
            .map_err(|e| Error::invalid(format!("invalid {name}: {e}")))
    };
    for (name, value) in data {
        match name.as_str() {
            "default_lease_ttl" => config.default_lease_ttl = seconds(name, value)?,
            "max_lease_ttl" => config.max_lease_ttl = seconds(name, value)?,
            "token_type" => config.token_type = MountTokenType::parse(&text(name, value)?)?,
            "listing_visibility" => {
                config.listing_visibility = ListingVisibility::parse(&text(name, value)?)?
            }
            "passthrough_request_headers" => {
                config.passthrough_request_headers = list(name, value)?
            }
            "allowed_response_headers" => config.allowed_response_headers = list(name, value)?,
            "audit_non_hmac_request_keys" => {
                config.audit_non_hmac_request_keys = list(name, value)?
            }
            "audit_non_hmac_response_keys" => {
                config.audit_non_hmac_response_keys = list(name, value)?
            }
            _ => {}
        }
    }
    for (name, value) in [
        ("default_lease_ttl", config.default_lease_ttl),
        ("max_lease_ttl", config.max_lease_ttl),
    ] {
        if value > system_max {
            return Err(Error::invalid(format!(
                "{name} of {value}s cannot be greater than the system max lease TTL of {system_max}s"
            )));
        }
    }
    if config.max_lease_ttl > 0 && config.default_lease_ttl > config.max_lease_ttl {
        return Err(Error::invalid(format!(
            "backend max lease TTL of {} would be less than backend default lease TTL of {}",
            config.max_lease_ttl, config.default_lease_ttl
        )));
    }
    Ok(config)
}
