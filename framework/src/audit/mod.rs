//! Audit devices: one JSON line per request and per response, written to every enabled
//! device before the request is served and before its answer leaves (`docs/audit.md`).
//!
//! - The device table is stored (through the seal's barrier) at `core/audit`, so every node
//!   of a cluster reads the same devices; each node opens its own files and sockets for them
//!   (`Broker`, re-opened when the stored table changes).
//! - Each device has an HMAC salt: 32 random bytes made once at enable time and stored with
//!   its entry (never shown by `sys/audit`). Secrets are written as
//!   `hmac-sha256:<hex of HMAC-SHA256(salt, value)>` ([`hash`]); `sys/audit-hash/<path>`
//!   computes the same value for an input, so an operator can find a known token in the log.
//! - Fail closed: when devices are enabled and none of them records a request, the request
//!   is not served (500 `internal error`); when none records a response, the answer is
//!   replaced by that 500 (`Trail`).
//!
//! - Who may enable a device: only the server config, unless it sets
//!   `unsafe_allow_api_audit_creation = true` ([`guard`]).
//!
//! Source: Vault's audit devices (`sys/audit`, `sys/audit-hash`, the `file` and `socket`
//! devices, `audit/hashstructure.go` for what is hashed); checked against OpenBao 2.7.2.

mod device;
mod entry;
pub mod guard;
pub mod hash;
mod sink;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::cache::Cached;
use crate::error::{Error, Result};
use crate::storage::View;

pub use entry::ALWAYS_HASHED;
pub use guard::{AuditRules, DeclaredDevice};

pub(crate) use device::{Device, Settings, Target};
pub(crate) use entry::{test_line as entry_test_line, CallerFacts, MountFacts, Trail};

/// The storage key of the device table, under the core's view (`core/audit`).
pub(crate) const TABLE_KEY: &str = "audit";

/// One enabled audit device as stored (`core/audit` holds a JSON array of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceEntry {
    /// The device path with a trailing slash, as given (case kept), e.g. `file/`.
    pub path: String,
    /// `file` or `socket`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The device's options as given (`file_path`, `address`, `hmac_accessor`, ...).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Vault's `local` flag (kept and shown; there is no replication).
    #[serde(default)]
    pub local: bool,
    /// A unique id of this enablement (a device disabled and enabled again gets a new one).
    pub uuid: String,
    /// The HMAC key, hex (64 characters). Never answered by any endpoint.
    pub(crate) salt: String,
    /// True for a device of an `audit` block of the server config: it is removed when the
    /// block goes, and `DELETE sys/audit/<path>` refuses it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub declared: bool,
}

impl DeviceEntry {
    /// The answer of `GET sys/audit` for this device: `{"type", "description", "options",
    /// "path", "local"}` (the salt is never shown).
    pub fn public_json(&self) -> serde_json::Value {
        serde_json::json!({
            "type": self.kind,
            "description": self.description,
            "options": self.options,
            "path": self.path,
            "local": self.local,
        })
    }
}

/// Parses the stored device table. Errors: 500 when it is not a table of devices.
pub(crate) fn parse_table(bytes: &[u8]) -> Result<Vec<DeviceEntry>> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::internal(format!("corrupt audit device table: {e}")))
}

/// The devices this node has open, for the stored table they were opened from.
pub(crate) struct Devices {
    pub(crate) list: Vec<Arc<Device>>,
}

/// This node's view of the stored device table: the devices, opened once per stored
/// version (files and sockets are opened lazily at their first write, so a device that
/// cannot be reached from this node fails its writes rather than the table).
#[derive(Default)]
pub(crate) struct Broker {
    table: Cached<Devices>,
}

impl Broker {
    /// The enabled devices, `None` when there are none. Errors: the storage's; 500 for a
    /// corrupt table.
    pub(crate) async fn devices(&self, core_view: &View) -> Result<Option<Arc<Devices>>> {
        let devices = self
            .table
            .get(core_view, TABLE_KEY, |bytes| async move {
                let entries = parse_table(&bytes)?;
                let list = entries
                    .into_iter()
                    .map(|e| Device::new(e).map(Arc::new))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Devices { list })
            })
            .await?;
        Ok(devices.filter(|d| !d.list.is_empty()))
    }
}
