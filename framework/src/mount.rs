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
use crate::path::Router;

/// Vault's default system lease TTL and max lease TTL: 768h, in seconds.
pub const SYSTEM_MAX_LEASE_TTL: i64 = 768 * 3600;

/// A mount's `token_type` setting: which kind of token its logins issue.
/// Source: Vault API `sys/auth` `config.token_type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountTokenType {
    /// Service tokens unless the role asks for batch ones.
    #[default]
    #[serde(rename = "default-service", alias = "")]
    DefaultService,
    /// Batch tokens unless the role asks for service ones.
    #[serde(rename = "default-batch")]
    DefaultBatch,
    /// Always service tokens; a role asking for batch is refused at login.
    #[serde(rename = "service")]
    Service,
    /// Always batch tokens; a role asking for service is refused at login.
    #[serde(rename = "batch")]
    Batch,
}

impl MountTokenType {
    /// Vault's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MountTokenType::DefaultService => "default-service",
            MountTokenType::DefaultBatch => "default-batch",
            MountTokenType::Service => "service",
            MountTokenType::Batch => "batch",
        }
    }

    /// Parses Vault's spelling (`""` is `default-service`). Errors: 400 naming the value.
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "" | "default-service" => Ok(MountTokenType::DefaultService),
            "default-batch" => Ok(MountTokenType::DefaultBatch),
            "service" => Ok(MountTokenType::Service),
            "batch" => Ok(MountTokenType::Batch),
            other => Err(Error::invalid(format!("invalid token_type {other:?}"))),
        }
    }
}

/// Vault's `listing_visibility`: whether `sys/internal/ui/mounts` lists the mount to callers
/// without a token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListingVisibility {
    /// Never set: not listed (Vault's default, read back as `""`, left out of tune reads).
    #[default]
    #[serde(rename = "")]
    Unset,
    /// Set to `hidden`: not listed, and read back as `hidden` (as OpenBao keeps it).
    #[serde(rename = "hidden")]
    Hidden,
    /// Listed without authentication.
    #[serde(rename = "unauth")]
    Unauth,
}

impl ListingVisibility {
    /// Vault's spelling: `""`, `hidden` or `unauth`.
    pub fn as_str(self) -> &'static str {
        match self {
            ListingVisibility::Unset => "",
            ListingVisibility::Hidden => "hidden",
            ListingVisibility::Unauth => "unauth",
        }
    }

    /// Parses `""`, `hidden` or `unauth`. Errors: 400 `invalid listing_visibility <v>`.
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "" => Ok(ListingVisibility::Unset),
            "hidden" => Ok(ListingVisibility::Hidden),
            "unauth" => Ok(ListingVisibility::Unauth),
            other => Err(Error::invalid(format!(
                "invalid listing_visibility {other}"
            ))),
        }
    }
}

/// The tunable settings of a mount (seconds; 0 = the system default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MountConfig {
    /// `default_lease_ttl`.
    pub default_lease_ttl: i64,
    /// `max_lease_ttl`.
    pub max_lease_ttl: i64,
    /// `token_type`.
    pub token_type: MountTokenType,
    /// `listing_visibility`.
    pub listing_visibility: ListingVisibility,
    /// `passthrough_request_headers`: request headers handed to the backend.
    pub passthrough_request_headers: Vec<String>,
    /// `allowed_response_headers`: response headers the backend may set.
    pub allowed_response_headers: Vec<String>,
    /// `audit_non_hmac_request_keys`: request keys audit devices log in the clear.
    pub audit_non_hmac_request_keys: Vec<String>,
    /// `audit_non_hmac_response_keys`: response keys audit devices log in the clear.
    pub audit_non_hmac_response_keys: Vec<String>,
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
    /// Vault's `options` (kept and echoed).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
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
            options: BTreeMap::new(),
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

/// A live mount: its entry, its backend instance and the backend's compiled path table.
#[derive(Clone)]
pub struct Mount {
    /// The stored entry.
    pub entry: MountEntry,
    /// The backend serving it.
    pub backend: Arc<dyn AuthBackend>,
    /// The backend's paths, compiled once per mount.
    pub router: Arc<Router>,
}

/// The longest mount path accepted, in bytes (without the trailing slash).
pub const MAX_MOUNT_PATH: usize = 255;

/// Normalises a mount path: trims slashes and adds one at the end.
///
/// Errors: 400 for an empty path; a path longer than [`MAX_MOUNT_PATH`]; a segment that is
/// empty, `.` or `..`, or holds anything but ASCII letters, digits, `-`, `_` and `.` (so no
/// ACL glob `*` or `+`, no spaces, no look-alike Unicode); a path at or under the token
/// store's `token/`.
pub fn normalize_path(raw: &str) -> Result<String> {
    let trimmed = raw.trim_matches('/');
    if trimmed.is_empty() {
        return Err(Error::invalid("missing mount path"));
    }
    if trimmed.len() > MAX_MOUNT_PATH {
        return Err(Error::invalid(format!(
            "mount path is longer than {MAX_MOUNT_PATH} bytes"
        )));
    }
    let segment_ok = |seg: &str| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if !trimmed.split('/').all(segment_ok) {
        return Err(Error::invalid(
            "invalid mount path: use ASCII letters, digits, '-', '_' and '.' in '/'-separated segments",
        ));
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
    /// The stored table the live one was built from.
    built_from: RwLock<Option<Arc<Vec<MountEntry>>>>,
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

    /// True when the live table was built from exactly this parse of the stored table.
    pub fn is_built_from(&self, stored: &Arc<Vec<MountEntry>>) -> Result<bool> {
        let built = self.built_from.read().map_err(poisoned)?;
        Ok(built.as_ref().is_some_and(|b| Arc::ptr_eq(b, stored)))
    }

    /// Replaces the whole table (a reload from storage), remembering what it was built from.
    pub fn replace_all(&self, mounts: Vec<Mount>, stored: Arc<Vec<MountEntry>>) -> Result<()> {
        let mut table = self.mounts.write().map_err(poisoned)?;
        *table = mounts
            .into_iter()
            .map(|m| (m.entry.path.clone(), m))
            .collect();
        *self.built_from.write().map_err(poisoned)? = Some(stored);
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
        assert_eq!(normalize_path("team/a.b_c-d").unwrap(), "team/a.b_c-d/");
        for bad in ["ünï", "a b", "*", "a+b", "a/*", "x@y"] {
            assert!(normalize_path(bad).is_err(), "{bad}");
        }
        assert!(normalize_path(&"a".repeat(MAX_MOUNT_PATH)).is_ok());
        assert!(normalize_path(&"a".repeat(MAX_MOUNT_PATH + 1)).is_err());
    }
}
