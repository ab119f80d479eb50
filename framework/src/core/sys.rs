//! `sys/`: mounts (`sys/auth`, tuning) and ACL policies (`sys/policy`, `sys/policies/acl`).
//! Enabling, disabling and tuning auth methods is root-protected (needs `sudo`).

use serde_json::{json, Map, Value};

use super::reply::{data_reply, envelope, list_reply, mount_json, token_type_name};
use super::{body_field, Core};
use crate::error::{Error, Result};
use crate::mount::{normalize_path, MountConfig, MountEntry};
use crate::path::FieldType;
use crate::policy::Capability;
use crate::request::{Operation, Request};
use crate::response::Reply;
use crate::storage::View;

impl Core {
    pub(super) async fn sys_endpoint(&self, rest: &str, req: &Request) -> Result<Reply> {
        let path = format!("sys/{rest}");
        let op = req.operation;
        if rest == "internal/specs/openapi" {
            self.authorize(req, &path, false).await?;
            return self.openapi_document(op); // core/docs.rs
        }
        if rest == "auth" {
            self.authorize(req, &path, false).await?;
            return match op {
                Operation::Read => self.list_mounts(),
                _ => Err(Error::UnsupportedOperation),
            };
        }
        if let Some(mount_path) = rest
            .strip_prefix("mounts/auth/")
            .and_then(|p| p.strip_suffix("/tune"))
            .or_else(|| {
                rest.strip_prefix("auth/")
                    .and_then(|p| p.strip_suffix("/tune"))
            })
        {
            self.authorize(req, &path, true).await?;
            return self.tune(mount_path, req).await;
        }
        if let Some(mount_path) = rest.strip_prefix("auth/") {
            self.authorize(req, &path, op != Operation::Read).await?;
            return match op {
                Operation::Update => self.enable(mount_path, &req.data).await,
                Operation::Read => {
                    let path = normalize_path(mount_path)?;
                    let mount = self.mounts.get(&path)?.ok_or(Error::NotFound)?;
                    Ok(data_reply(mount_json(&mount.entry), "system"))
                }
                Operation::Delete => self.disable(mount_path).await,
                Operation::List => Err(Error::UnsupportedOperation),
            };
        }
        if let Some(name) = rest
            .strip_prefix("policies/acl/")
            .or_else(|| rest.strip_prefix("policy/"))
        {
            return self
                .policy(name, rest.starts_with("policy/"), req, &path)
                .await;
        }
        if matches!(
            rest,
            "policy" | "policy/" | "policies/acl" | "policies/acl/"
        ) {
            self.authorize(req, &path, false).await?;
            let names = self.policies.names().await?;
            return match (rest.starts_with("policy"), op) {
                (true, Operation::Read | Operation::List) => Ok(data_reply(
                    json!({ "keys": names, "policies": names }),
                    "system",
                )),
                (false, Operation::List) => list_reply(names, "system"),
                _ => Err(Error::UnsupportedOperation),
            };
        }
        self.authorize(req, &path, false).await?;
        Err(Error::unsupported_path(&path))
    }

    /// `sys/policy/<name>` (legacy: body and read key `rules`) and `sys/policies/acl/<name>`
    /// (key `policy`). A write to a missing policy needs `create`.
    async fn policy(&self, name: &str, legacy: bool, req: &Request, path: &str) -> Result<Reply> {
        let name = name.trim_end_matches('/').to_lowercase();
        let existing = self.policies.get(&name).await?;
        let capability = match req.operation {
            Operation::Update if existing.is_none() => Capability::Create,
            Operation::Update => Capability::Update,
            Operation::Read => Capability::Read,
            Operation::List => Capability::List,
            Operation::Delete => Capability::Delete,
        };
        self.authorize_capability(req, path, capability, false)
            .await?;
        let key = if legacy { "rules" } else { "policy" };
        match req.operation {
            Operation::Read => {
                let policy = existing.ok_or(Error::NotFound)?;
                Ok(data_reply(
                    json!({ "name": policy.name, key: policy.text }),
                    "system",
                ))
            }
            Operation::Update => {
                let text = body_field(req, "policy", FieldType::String)?
                    .or(body_field(req, "rules", FieldType::String)?)
                    .and_then(|v| v.as_str().map(str::to_string))
                    .filter(|text| !text.trim().is_empty())
                    .ok_or_else(|| Error::invalid("'policy' parameter not supplied or empty"))?;
                self.policies.put(&name, &text).await?;
                Ok(Reply::no_content())
            }
            Operation::Delete => {
                self.policies.delete(&name).await?;
                Ok(Reply::no_content())
            }
            Operation::List => Err(Error::UnsupportedOperation),
        }
    }

    fn list_mounts(&self) -> Result<Reply> {
        let data: Map<String, Value> = self
            .mounts
            .entries()?
            .into_iter()
            .map(|e| (e.path.clone(), mount_json(&e)))
            .collect();
        let mut body = envelope(Some(data.clone()), None, &[], "system");
        if let Value::Object(top) = &mut body {
            top.extend(data); // legacy clients read the mounts at the top level too
        }
        Ok(Reply::ok(body))
    }

    async fn enable(&self, raw_path: &str, data: &Map<String, Value>) -> Result<Reply> {
        let path = normalize_path(raw_path)?;
        let kind = match data.get("type") {
            None | Some(Value::Null) => return Err(Error::invalid("missing type")),
            Some(Value::String(t)) if !t.is_empty() => t.as_str(),
            Some(Value::String(_)) => return Err(Error::invalid("missing type")),
            Some(_) => return Err(Error::invalid("type must be a string")),
        };
        self.registry.factory(kind)?;
        let description = match data.get("description") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(Error::invalid("description must be a string")),
        };
        let config = match data.get("config") {
            Some(Value::Object(c)) => {
                tune_config(&MountConfig::default(), c, self.limits.max_lease_ttl)?
            }
            None | Some(Value::Null) => MountConfig::default(),
            Some(_) => return Err(Error::invalid("config must be an object")),
        };
        let mut entry = MountEntry::new(path.clone(), kind, description, config);
        entry.local = data.get("local").and_then(Value::as_bool).unwrap_or(false);
        entry.seal_wrap = data
            .get("seal_wrap")
            .and_then(Value::as_bool)
            .unwrap_or(false);
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
        Ok(Reply::no_content())
    }

    /// Disables a mount: its tokens are revoked, its aliases removed, its storage cleared.
    async fn disable(&self, raw_path: &str) -> Result<Reply> {
        let path = normalize_path(raw_path)?;
        let removed = self
            .change_mounts(|entries| {
                let index = entries.iter().position(|e| e.path == path);
                Ok(index.map(|i| entries.remove(i)))
            })
            .await?;
        let Some(entry) = removed else {
            return Ok(Reply::no_content());
        };
        self.tokens.revoke_mount(&entry.accessor).await?;
        self.identity.remove_mount_aliases(&entry.accessor).await?;
        View::new(self.storage.clone(), format!("auth/{}/", entry.uuid))
            .clear()
            .await?;
        tracing::info!(target: "authmount::core", path = %path, "auth method disabled");
        Ok(Reply::no_content())
    }

    async fn tune(&self, raw_path: &str, req: &Request) -> Result<Reply> {
        let path = normalize_path(raw_path)?;
        let mount = self
            .mounts
            .get(&path)?
            .ok_or_else(|| Error::invalid(format!("no mount at auth/{path}")))?;
        match req.operation {
            Operation::Read => {
                let info = mount.entry.info(&self.limits);
                Ok(data_reply(
                    json!({
                        "default_lease_ttl": info.default_lease_ttl,
                        "max_lease_ttl": info.max_lease_ttl,
                        "force_no_cache": false,
                        "token_type": token_type_name(&mount.entry.config),
                        "description": mount.entry.description,
                    }),
                    "system",
                ))
            }
            Operation::Update => {
                let description = match req.data.get("description") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(d)) => Some(d.clone()),
                    Some(_) => return Err(Error::invalid("description must be a string")),
                };
                let max = self.limits.max_lease_ttl;
                self.change_mounts(|entries| {
                    let entry = entries
                        .iter_mut()
                        .find(|e| e.uuid == mount.entry.uuid)
                        .ok_or_else(|| Error::invalid(format!("no mount at auth/{path}")))?;
                    entry.config = tune_config(&entry.config, &req.data, max)?;
                    if let Some(d) = &description {
                        entry.description = d.clone();
                    }
                    Ok(())
                })
                .await?;
                Ok(Reply::no_content())
            }
            _ => Err(Error::UnsupportedOperation),
        }
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
}

/// True when one mount path equals, contains or sits inside the other.
fn overlaps(a: &str, b: &str) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Applies tuning parameters to a mount config. Errors: 400 for bad durations, TTLs above
/// the system max (`system_max` seconds), a default above the max, an unknown token type.
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
        crate::path::convert(FieldType::DurationSecond, v)
            .map(|v| v.as_i64().unwrap_or(0))
            .map_err(|e| Error::invalid(format!("invalid {name}: {e}")))
    };
    if let Some(v) = data.get("default_lease_ttl") {
        config.default_lease_ttl = seconds("default_lease_ttl", v)?;
    }
    if let Some(v) = data.get("max_lease_ttl") {
        config.max_lease_ttl = seconds("max_lease_ttl", v)?;
    }
    if let Some(v) = data.get("token_type") {
        let t = v.as_str().unwrap_or_default();
        if !["", "default-service", "default-batch", "service", "batch"].contains(&t) {
            return Err(Error::invalid(format!("invalid token_type {t:?}")));
        }
        config.token_type = t.to_string();
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
        return Err(Error::invalid(
            "backend max lease TTL cannot be less than backend default lease TTL",
        ));
    }
    Ok(config)
}
