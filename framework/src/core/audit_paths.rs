//! `sys/audit` and `sys/audit-hash` of the `sys/` path table: list, enable and disable audit
//! devices, and hash a value the way a device hashes it ([`crate::audit`],
//! `docs/audit.md`).
//!
//! - `GET sys/audit` (sudo): `{"<path>/": {"type", "description", "options", "path",
//!   "local"}}`.
//! - `PUT sys/audit/<path>` (sudo): `type` (`file` or `socket`), `description`, `options`
//!   (strings), `local`. The device is opened and sent a test line before it is stored:
//!   a file that cannot be opened for writing or a peer that cannot be reached is a 400 and
//!   nothing is stored. 400 `path already in use` when the path overlaps an enabled device.
//! - `DELETE sys/audit/<path>` (sudo): 204, also when nothing was enabled there.
//! - `PUT sys/audit-hash/<path>` with `input`: `{"hash": "hmac-sha256:<hex>"}` under that
//!   device's salt. 400 `unknown audit backend "<path>/"`, 400 `the "input" parameter is
//!   empty`.
//!
//! Source: Vault API `sys/audit`, `sys/audit-hash`; texts checked against OpenBao 2.7.2
//! (which also needs `unsafe_allow_api_audit_creation` in its config to enable devices over
//! the API; Vault does not, nor do we).

use std::sync::{Arc, Weak};

use serde_json::{json, Map, Value};

use super::CoreInner;
use crate::audit::{self, Device, DeviceEntry, Settings};
use crate::backend::BackendRequest;
use crate::error::{Error, Result};
use crate::path::{Field, FieldType, Path};
use crate::response::Response;

/// The audit entries of the `sys/` path table.
pub(super) fn paths(core: &Weak<CoreInner>) -> Vec<Path> {
    use FieldType::*;
    vec![
        Path::new("audit")
            .help("List the enabled audit devices.")
            .sudo()
            .read(core, CoreInner::list_audit),
        Path::new("audit/(?P<path>.+)")
            .help("Enable (write) or disable (delete) an audit device at a path.")
            .fields([
                Field::new("path", String, "The device path, e.g. file."),
                Field::new("type", String, "The device type: file or socket."),
                Field::new("description", String, "Free text."),
                Field::new("options", KvPairs, "Device options: file_path (file: a path, stdout or discard), mode; address, socket_type (tcp, udp), write_timeout (socket); hmac_accessor, log_raw (DANGEROUS: secrets in the clear), format (json)."),
                Field::new("local", Bool, "Vault's local flag (kept; there is no replication)."),
            ])
            .sudo()
            .update(core, CoreInner::enable_audit)
            .delete(core, CoreInner::disable_audit),
        Path::new("audit-hash/(?P<path>.+)")
            .help("Hash a value with an audit device's salt, as the device writes it.")
            .fields([
                Field::new("path", String, "The device path."),
                Field::new("input", String, "The value to hash.").sensitive(),
            ])
            .update(core, CoreInner::audit_hash),
    ]
}

/// A device path as stored: no leading slash, one trailing slash (case kept, as Vault keeps
/// it).
fn device_path(raw: &str) -> String {
    format!("{}/", raw.trim_matches('/'))
}

/// 32 random bytes from the OS, hex: a device's HMAC key.
fn new_salt() -> String {
    use rand::RngCore;
    let mut salt = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    hex::encode(salt)
}

impl CoreInner {
    /// The stored device table and its bytes (for a compare-and-put).
    async fn audit_table(&self) -> Result<(Option<Vec<u8>>, Vec<DeviceEntry>)> {
        let bytes = self.core_view.get(audit::TABLE_KEY).await?;
        let entries = match &bytes {
            Some(b) => audit::parse_table(b)?,
            None => Vec::new(),
        };
        Ok((bytes, entries))
    }

    /// Applies `change` to the stored device table (compare-and-put, retried when another
    /// node changed it meanwhile).
    async fn change_audit_table<R>(
        &self,
        change: impl Fn(&mut Vec<DeviceEntry>) -> Result<R>,
    ) -> Result<R> {
        for _ in 0..16 {
            let (current, mut entries) = self.audit_table().await?;
            let result = change(&mut entries)?;
            let next = serde_json::to_vec(&entries).map_err(Error::internal)?;
            if self
                .core_view
                .compare_and_put(audit::TABLE_KEY, current.as_deref(), &next)
                .await?
            {
                return Ok(result);
            }
        }
        Err(Error::Unavailable(
            "the audit device table kept changing under this request; try again".into(),
        ))
    }

    /// `GET sys/audit`.
    async fn list_audit(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        let (_, entries) = self.audit_table().await?;
        let data: Map<String, Value> = entries
            .iter()
            .map(|e| (e.path.clone(), e.public_json()))
            .collect();
        Ok(Response::data(data))
    }

    /// `PUT sys/audit/<path>`.
    async fn enable_audit(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let f = &req.fields;
        let path = device_path(f.str("path").unwrap_or_default());
        let kind = f.str("type").unwrap_or_default();
        let options = f.kv_pairs("options").unwrap_or_default();
        let settings = Settings::parse(kind, &options)?;
        let overlaps = |entries: &[DeviceEntry]| {
            entries
                .iter()
                .any(|e| e.path.starts_with(&path) || path.starts_with(&e.path))
        };
        if overlaps(&self.audit_table().await?.1) {
            return Err(Error::invalid("path already in use"));
        }
        let entry = DeviceEntry {
            path: path.clone(),
            kind: kind.to_string(),
            description: f.str("description").unwrap_or_default().to_string(),
            options,
            local: f.bool("local").unwrap_or(false),
            uuid: uuid::Uuid::new_v4().to_string(),
            salt: new_salt(),
        };
        // The device must take a line before it is stored.
        let device = Device::new(entry.clone())?;
        let line = serde_json::to_vec(&audit::entry_test_line()).map_err(Error::internal)?;
        if let Err(e) = device.write_line(&line).await {
            return Err(Error::invalid(match &settings.target {
                audit::Target::File { path, .. } => format!(
                    "sanity check failed; unable to open {:?} for writing: {e}",
                    path.display().to_string()
                ),
                _ => format!("audit backend failed test message: {e}"),
            }));
        }
        self.change_audit_table(|entries| {
            if overlaps(entries) {
                return Err(Error::invalid("path already in use"));
            }
            entries.push(entry.clone());
            Ok(())
        })
        .await?;
        tracing::info!(target: "authmount::core", path = %path, kind, "audit device enabled");
        Ok(Response::default())
    }

    /// `DELETE sys/audit/<path>`.
    async fn disable_audit(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let path = device_path(req.fields.str("path").unwrap_or_default());
        let removed = self
            .change_audit_table(|entries| {
                let before = entries.len();
                entries.retain(|e| e.path != path);
                Ok(entries.len() != before)
            })
            .await?;
        if removed {
            tracing::info!(target: "authmount::core", path = %path, "audit device disabled");
        }
        Ok(Response::default())
    }

    /// `PUT sys/audit-hash/<path>`.
    async fn audit_hash(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let path = device_path(req.fields.str("path").unwrap_or_default());
        let (_, entries) = self.audit_table().await?;
        let entry = entries
            .into_iter()
            .find(|e| e.path == path)
            .ok_or_else(|| Error::invalid(format!("unknown audit backend {path:?}")))?;
        let input = req.fields.str("input").unwrap_or_default();
        if input.is_empty() {
            return Err(Error::invalid("the \"input\" parameter is empty"));
        }
        let device = Device::new(entry)?;
        Ok(Response::json(
            json!({ "hash": audit::hash::hmac(device.salt(), input) }),
        ))
    }
}
