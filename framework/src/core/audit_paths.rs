//! `sys/audit` and `sys/audit-hash` of the `sys/` path table: list, enable and disable audit
//! devices, and hash a value the way a device hashes it ([`crate::audit`],
//! `docs/audit.md`).
//!
//! - `GET sys/audit` (sudo): `{"<path>/": {"type", "description", "options", "path",
//!   "local"}}`.
//! - `PUT sys/audit/<path>` (sudo): refused (400, OpenBao's [`API_CREATION_REFUSED`]) unless
//!   the server config sets `unsafe_allow_api_audit_creation = true`. Then: `type` (`file`
//!   or `socket`), `description`, `options` (strings), `local`. A file path passes
//!   [`crate::audit::guard`]'s checks; the device is opened and sent a test line before it is
//!   stored: a file that cannot be opened for writing or a peer that cannot be reached is a
//!   400 and nothing is stored. 400 `path already in use` when the path overlaps an enabled
//!   device.
//! - `DELETE sys/audit/<path>` (sudo): 204, also when nothing was enabled there; 400
//!   [`DECLARED_NOT_DISABLED`] for a device of the config.
//! - The `audit` blocks of the server config are written to the table when this node first
//!   serves a request unsealed ([`Core::apply_audit_config`]): new ones enabled, changed
//!   ones replaced (a new salt), ones no longer in the config removed.
//! - `PUT sys/audit-hash/<path>` with `input`: `{"hash": "hmac-sha256:<hex>"}` under that
//!   device's salt. 400 `unknown audit backend "<path>/"`, 400 `the "input" parameter is
//!   empty`.
//!
//! Source: Vault API `sys/audit`, `sys/audit-hash`; OpenBao 2.7.2's declarative audit
//! devices and `unsafe_allow_api_audit_creation` (texts checked against its binary).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use serde_json::{json, Map, Value};

use super::{Core, CoreInner};
use crate::audit::guard::{check_target, API_CREATION_REFUSED, DECLARED_NOT_DISABLED};
use crate::audit::{self, AuditRules, DeclaredDevice, Device, DeviceEntry, Settings};
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
            .help("Enable (write; only with unsafe_allow_api_audit_creation = true in the server config) or disable (delete) an audit device at a path.")
            .fields([
                Field::new("path", String, "The device path, e.g. file."),
                Field::new("type", String, "The device type: file or socket."),
                Field::new("description", String, "Free text."),
                Field::new("options", KvPairs, "Device options: file_path (file: a path, stdout or discard; not a link, not inside the server's own files), mode (execute bits dropped); address, socket_type (tcp, udp), write_timeout (socket); hmac_accessor, log_raw (DANGEROUS: secrets in the clear), format (json)."),
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

impl Core {
    /// Sets this node's audit rules from the server config: whether `PUT sys/audit/<path>`
    /// may enable devices, the paths no file device may write into, and the declared
    /// devices (applied again at the next request, or by [`Core::apply_audit_config`]).
    pub fn set_audit_rules(&self, rules: AuditRules) {
        let inner = &self.inner;
        match inner.audit_rules.write() {
            Ok(mut current) => *current = Arc::new(rules),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(rules),
        }
        inner.audit_declared.0.store(false, Ordering::Release);
    }

    /// Brings the stored device table in line with the declared devices now, when the
    /// server is unsealed (else at its first request once unsealed), so that a bad `audit`
    /// block stops the start. Errors: 400 for a block whose options are refused, whose
    /// device cannot be written, or whose path is taken by a device enabled over the API;
    /// the storage's.
    pub async fn apply_audit_config(&self) -> Result<()> {
        if self.inner.seal.is_sealed() {
            return Ok(());
        }
        self.inner.apply_declared_audit().await
    }
}

/// The entry of a declared device, with a new uuid and salt.
fn declared_entry(d: &DeclaredDevice) -> DeviceEntry {
    DeviceEntry {
        path: device_path(&d.path),
        kind: d.kind.clone(),
        description: d.description.clone(),
        options: d.options.clone(),
        local: d.local,
        uuid: uuid::Uuid::new_v4().to_string(),
        salt: new_salt(),
        declared: true,
    }
}

/// True when `entry` is what `d` declares (the uuid and salt aside).
fn is_declared_as(entry: &DeviceEntry, d: &DeclaredDevice) -> bool {
    entry.declared
        && entry.kind == d.kind
        && entry.description == d.description
        && entry.options == d.options
        && entry.local == d.local
}

/// Two device paths overlap when one is a prefix of the other.
fn overlap(a: &str, b: &str) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// The table with the declared devices applied: declared entries no longer in `declared`
/// removed, changed ones replaced, new ones added. Errors: 400 when a declared path
/// overlaps a device enabled over the API, or another declared one.
fn with_declared(entries: &[DeviceEntry], declared: &[DeclaredDevice]) -> Result<Vec<DeviceEntry>> {
    let wanted: Vec<String> = declared.iter().map(|d| device_path(&d.path)).collect();
    let mut next: Vec<DeviceEntry> = entries
        .iter()
        .filter(|e| !e.declared || wanted.contains(&e.path))
        .cloned()
        .collect();
    for (d, path) in declared.iter().zip(&wanted) {
        match next.iter().position(|e| e.path == *path) {
            Some(i) if !next[i].declared => {
                return Err(Error::invalid(format!(
                    "audit {:?} {:?} of the server config: a device enabled over the API has this path; disable it (DELETE sys/audit/{}) and start again",
                    d.kind, d.path, path.trim_end_matches('/')
                )))
            }
            Some(i) if is_declared_as(&next[i], d) => {}
            Some(i) => next[i] = declared_entry(d),
            None => {
                if next.iter().any(|e| overlap(&e.path, path)) {
                    return Err(Error::invalid(format!(
                        "audit {:?} {:?} of the server config: path already in use",
                        d.kind, d.path
                    )));
                }
                next.push(declared_entry(d));
            }
        }
    }
    Ok(next)
}

impl CoreInner {
    /// This node's audit rules.
    fn audit_rules(&self) -> Arc<AuditRules> {
        match self.audit_rules.read() {
            Ok(rules) => rules.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Opens a device about to be stored and writes Vault's test line to it. Errors: 400
    /// naming the file or the peer.
    async fn test_device(entry: &DeviceEntry, settings: &Settings) -> Result<()> {
        let device = Device::new(entry.clone())?;
        let line = serde_json::to_vec(&audit::entry_test_line()).map_err(Error::internal)?;
        device.write_line(&line).await.map_err(|e| {
            Error::invalid(match &settings.target {
                audit::Target::File { path, .. } => format!(
                    "sanity check failed; unable to open {:?} for writing: {e}",
                    path.display().to_string()
                ),
                _ => format!("audit backend failed test message: {e}"),
            })
        })
    }

    /// Once per [`Core::set_audit_rules`] on this node (and at its first unsealed request):
    /// writes the declared devices to the stored table (see [`with_declared`]); new and
    /// changed devices pass the same checks and test line as over the API first.
    pub(super) async fn apply_declared_audit(&self) -> Result<()> {
        let (done, lock) = &self.audit_declared;
        if done.load(Ordering::Acquire) {
            return Ok(());
        }
        let _one_at_a_time = lock.lock().await;
        if done.load(Ordering::Acquire) {
            return Ok(());
        }
        let rules = self.audit_rules();
        let mut checked = Vec::new();
        for d in &rules.declared {
            let context = |e: Error| {
                Error::invalid(format!(
                    "audit {:?} {:?} of the server config: {e}",
                    d.kind, d.path
                ))
            };
            let settings = Settings::parse(&d.kind, &d.options).map_err(context)?;
            check_target(&settings.target, &rules.protected_paths).map_err(context)?;
            checked.push(settings);
        }
        for _ in 0..16 {
            let (current, entries) = self.audit_table().await?;
            let next = with_declared(&entries, &rules.declared)?;
            if next == entries {
                done.store(true, Ordering::Release);
                return Ok(());
            }
            for (d, settings) in rules.declared.iter().zip(&checked) {
                let path = device_path(&d.path);
                let fresh = !entries
                    .iter()
                    .any(|e| e.path == path && is_declared_as(e, d));
                if let Some(entry) = next.iter().find(|e| e.path == path).filter(|_| fresh) {
                    Self::test_device(entry, settings).await.map_err(|e| {
                        Error::invalid(format!(
                            "audit {:?} {:?} of the server config: {e}",
                            d.kind, d.path
                        ))
                    })?;
                }
            }
            let bytes = serde_json::to_vec(&next).map_err(Error::internal)?;
            if self
                .core_view
                .compare_and_put(audit::TABLE_KEY, current.as_deref(), &bytes)
                .await?
            {
                let paths: Vec<&str> = next
                    .iter()
                    .filter(|e| e.declared)
                    .map(|e| e.path.as_str())
                    .collect();
                tracing::info!(target: "authmount::core", declared = ?paths, "audit devices of the server config applied");
                done.store(true, Ordering::Release);
                return Ok(());
            }
        }
        Err(Error::Unavailable(
            "the audit device table kept changing under this request; try again".into(),
        ))
    }

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
        let rules = self.audit_rules();
        if !rules.allow_api_creation {
            return Err(Error::invalid(API_CREATION_REFUSED));
        }
        let f = &req.fields;
        let path = device_path(f.str("path").unwrap_or_default());
        let kind = f.str("type").unwrap_or_default();
        let options = f.kv_pairs("options").unwrap_or_default();
        let settings = Settings::parse(kind, &options)?;
        check_target(&settings.target, &rules.protected_paths)?;
        let overlaps = |entries: &[DeviceEntry]| entries.iter().any(|e| overlap(&e.path, &path));
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
            declared: false,
        };
        // The device must take a line before it is stored.
        Self::test_device(&entry, &settings).await?;
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
                if entries.iter().any(|e| e.path == path && e.declared) {
                    return Err(Error::invalid(DECLARED_NOT_DISABLED));
                }
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
