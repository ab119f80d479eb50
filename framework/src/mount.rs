//! The mount table: which backend serves which path under `auth/`.
//!
//! Paths nest freely (`jwt/`, `team/a/jwt/`) but never overlap: a mount cannot sit inside
//! another or contain one (the core checks this when it changes the stored table). A
//! request path is routed to the longest mounted prefix. The in-memory table is a copy of
//! the stored one, replaced whole when storage changes.
//! Source: Vault API `sys/auth`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::backend::{AuthBackend, MountInfo};
use crate::error::{Error, Result};

/// Vault's default system lease TTL and max lease TTL: 768h, in seconds.
pub const SYSTEM_MAX_LEASE_TTL: i64 = 768 * 3600;

/// The tunable settings of a mount (seconds; 0 = the system default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MountConfig {
    /// `default_lease_ttl`.
    pub default_lease_ttl: i64,
    /// `max_lease_ttl`.
    pub max_lease_ttl: i64,
    /// `token_type` (`default-service`, `default-batch`, `service`, `batch`).
    #[serde(default)]
    pub token_type: String,
}

/// One row of the mount table, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MountEntry {
    /// The path with a trailing slash, e.g. `my-path/`.
    pub path: String,
    /// The backend type, e.g. `jwt`.
    pub kind: String,
    /// `auth_<type>_<8 hex>`.
    pub accessor: String,
    /// A UUID; also names the mount's storage prefix.
    pub uuid: String,
    /// Free text.
    pub description: String,
    /// Tuning.
    pub config: MountConfig,
    /// Vault's `local` flag (kept and echoed; there is no replication).
    pub local: bool,
    /// Vault's `seal_wrap` flag (kept and echoed).
    pub seal_wrap: bool,
}

impl MountEntry {
    /// A new entry with a fresh accessor and UUID.
    pub fn new(path: String, kind: &str, description: String, config: MountConfig) -> Self {
        let accessor = format!("auth_{kind}_{:08x}", rand::thread_rng().gen::<u32>());
        MountEntry {
            path,
            kind: kind.to_string(),
            accessor,
            uuid: uuid::Uuid::new_v4().to_string(),
            description,
            config,
            local: false,
            seal_wrap: false,
        }
    }

    /// What a backend sees of this mount, untuned values resolved from the system limits.
    pub fn info(&self, system: &crate::core::LeaseLimits) -> MountInfo {
        let max = if self.config.max_lease_ttl > 0 {
            self.config.max_lease_ttl
        } else {
            system.max_lease_ttl
        };
        let default = if self.config.default_lease_ttl > 0 {
            self.config.default_lease_ttl.min(max)
        } else {
            system.default_lease_ttl.min(max)
        };
        MountInfo {
            path: self.path.clone(),
            accessor: self.accessor.clone(),
            kind: self.kind.clone(),
            default_lease_ttl: default,
            max_lease_ttl: max,
        }
    }
}

/// A live mount: its entry and its backend instance.
#[derive(Clone)]
pub struct Mount {
    /// The stored entry.
    pub entry: MountEntry,
    /// The backend serving it.
    pub backend: Arc<dyn AuthBackend>,
}

/// Normalises a mount path: trims slashes and adds one at the end.
///
/// Errors: 400 for an empty path, a path with empty, `.` or `..` segments, or a path at or
/// under the token store's `token/`.
pub fn normalize_path(raw: &str) -> Result<String> {
    let trimmed = raw.trim_matches('/');
    if trimmed.is_empty() {
        return Err(Error::invalid("missing mount path"));
    }
    if trimmed
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(Error::invalid(format!("invalid mount path {raw:?}")));
    }
    let path = format!("{trimmed}/");
    if path.starts_with("token/") {
        return Err(Error::invalid("path is already in use at token/"));
    }
    Ok(path)
}

/// The mount table in memory. Cheap to read on every request.
#[derive(Default)]
pub struct MountTable {
    mounts: RwLock<BTreeMap<String, Mount>>,
}

fn poisoned<T>(_: T) -> Error {
    Error::internal("mount table lock poisoned")
}

impl MountTable {
    /// The mount at exactly `path`.
    pub fn get(&self, path: &str) -> Result<Option<Mount>> {
        Ok(self.mounts.read().map_err(poisoned)?.get(path).cloned())
    }

    /// The mount whose accessor is `accessor`.
    pub fn by_accessor(&self, accessor: &str) -> Result<Option<Mount>> {
        let mounts = self.mounts.read().map_err(poisoned)?;
        Ok(mounts
            .values()
            .find(|m| m.entry.accessor == accessor)
            .cloned())
    }

    /// Routes `path` (relative to `auth/`) to the longest mounted prefix; returns the mount
    /// and the rest of the path.
    pub fn route<'p>(&self, path: &'p str) -> Result<Option<(Mount, &'p str)>> {
        let mounts = self.mounts.read().map_err(poisoned)?;
        let found = mounts
            .iter()
            .filter(|(prefix, _)| {
                path.starts_with(prefix.as_str()) || format!("{path}/") == **prefix
            })
            .max_by_key(|(prefix, _)| prefix.len());
        Ok(found.map(|(prefix, m)| {
            let rest = path.get(prefix.len()..).unwrap_or("");
            (m.clone(), rest)
        }))
    }

    /// Replaces the whole table (a reload from storage).
    pub fn replace_all(&self, mounts: Vec<Mount>) -> Result<()> {
        let mut table = self.mounts.write().map_err(poisoned)?;
        *table = mounts
            .into_iter()
            .map(|m| (m.entry.path.clone(), m))
            .collect();
        Ok(())
    }

    /// Every entry, sorted by path.
    pub fn entries(&self) -> Result<Vec<MountEntry>> {
        let mounts = self.mounts.read().map_err(poisoned)?;
        Ok(mounts.values().map(|m| m.entry.clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_refuses_bad_paths() {
        assert_eq!(normalize_path("/team/a/jwt/").unwrap(), "team/a/jwt/");
        assert!(normalize_path("").is_err());
        assert!(normalize_path("a//b").is_err());
        assert!(normalize_path("a/../b").is_err());
        assert!(normalize_path("token").is_err());
        assert!(normalize_path("token/x").is_err());
        assert!(normalize_path("tokens").is_ok());
    }
}
