//! The server config file, in Vault's HCL shape:
//!
//! ```hcl
//! storage "sqlite" { path = "/var/lib/authmount/authmount.db" }
//! # or: storage "postgresql" { connection_url = "postgres://user:pass@host/db" }
//! listener "tcp" {
//!   address       = "127.0.0.1:8200"
//!   tls_cert_file = "/etc/authmount/cert.pem"
//!   tls_key_file  = "/etc/authmount/key.pem"
//!   tls_disable   = false
//! }
//! log_level         = "info"
//! log_format        = "standard"     # or "json": one JSON object a line
//! telemetry {
//!   unauthenticated_metrics_access = false   # true: sys/metrics without a token
//! }
//! default_lease_ttl = "768h"
//! max_lease_ttl     = "768h"
//!
//! # Audit devices made by the config (OpenBao's declarative audit devices):
//! audit "file" "to-file" {
//!   description = "every request and answer"
//!   options {
//!     file_path = "/var/log/authmount/audit.log"
//!   }
//! }
//! # unsafe_allow_api_audit_creation = true   # PUT sys/audit/<path> too (off: see docs/audit.md)
//!
//! # Optional: a static root key (else the server is sealed with Shamir unseal keys).
//! seal "static" {
//!   current_key_id = "2025-06-1"
//!   current_key    = "file:///etc/authmount/seal.key"   # or "env://AUTHMOUNT_SEAL_KEY"
//!   # previous_key_id = "2025-01-1"                     # after a rotation
//!   # previous_key    = "file:///etc/authmount/seal-old.key"
//! }
//! ```
//!
//! A static key is 32 bytes: raw, 64 hex digits or base64 (`openssl rand -hex 32`), as
//! OpenBao's `seal "static"` takes it.
//!
//! Parsed with the `hcl-rs` crate. Source: Vault server configuration (`storage`,
//! `listener "tcp"`, `log_level`, `default_lease_ttl`, `max_lease_ttl`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use authmount_framework::audit::{AuditRules, DeclaredDevice};
use authmount_framework::duration::parse_seconds;
use authmount_framework::LeaseLimits;
use serde::Deserialize;
use serde_json::Value;

/// Where data is kept.
#[derive(Debug, Clone, PartialEq)]
pub enum StorageConfig {
    /// Embedded SQLite: one file.
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// `synchronous = "full"` (the default: every commit synced to disk) or `"normal"`
        /// (commits survive a crash of the server, not of the machine; faster).
        sync_every_commit: bool,
    },
    /// PostgreSQL, shareable by several server nodes.
    Postgres {
        /// `postgres://user:pass@host:port/db`.
        connection_url: String,
    },
}

/// Where the seal's root key comes from (see `authmount_framework::seal`).
#[derive(Debug, Clone, PartialEq)]
pub enum SealConfig {
    /// No `seal` block: Shamir unseal keys (`sys/init` makes them, `sys/unseal` takes them).
    Shamir,
    /// `seal "static"`: a key from a file, an environment variable or the config itself.
    Static {
        /// `current_key_id`.
        current_key_id: String,
        /// `current_key`.
        current_key: KeySource,
        /// `previous_key_id` and `previous_key`, after a rotation.
        previous: Option<(String, KeySource)>,
    },
    /// The server without a config file: a static key in this file (mode 0600), created
    /// with new storage (DECISIONS D16).
    KeyFile(PathBuf),
}

/// How a static key is given: `file://PATH`, `env://VAR`, or the key itself.
#[derive(Debug, Clone, PartialEq)]
pub enum KeySource {
    /// `file:///etc/authmount/seal.key`.
    File(PathBuf),
    /// `env://AUTHMOUNT_SEAL_KEY`.
    Env(String),
    /// The key inline (hex or base64): possible, not advised.
    Inline(String),
}

impl KeySource {
    fn parse(text: &str) -> KeySource {
        if let Some(path) = text.strip_prefix("file://") {
            KeySource::File(path.into())
        } else if let Some(var) = text.strip_prefix("env://") {
            KeySource::Env(var.to_string())
        } else {
            KeySource::Inline(text.to_string())
        }
    }

    /// The key material. Errors: a message naming the file or variable and the problem.
    pub fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            KeySource::File(path) => std::fs::read(path)
                .map_err(|e| format!("cannot read the key file {}: {e}", path.display())),
            KeySource::Env(var) => std::env::var(var)
                .map(String::into_bytes)
                .map_err(|_| format!("environment variable {var} unset")),
            KeySource::Inline(text) => Ok(text.clone().into_bytes()),
        }
    }
}

/// The TCP listener.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    /// `host:port`.
    pub address: String,
    /// PEM certificate chain and key; `None` when TLS is disabled.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// A whole server config.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Storage.
    pub storage: StorageConfig,
    /// Listener.
    pub listener: ListenerConfig,
    /// The seal.
    pub seal: SealConfig,
    /// `trace` … `error`.
    pub log_level: String,
    /// `log_format`: `standard` or `json` (checked by
    /// [`crate::logging::LogFormat::parse`]); empty when not set.
    pub log_format: String,
    /// `telemetry { unauthenticated_metrics_access = true }`: `sys/metrics` without a token.
    pub unauthenticated_metrics_access: bool,
    /// System lease TTLs.
    pub limits: LeaseLimits,
    /// `unsafe_allow_api_audit_creation` and the `audit` blocks.
    pub audit: AuditConfig,
}

/// What the config says about audit devices (OpenBao 2.7.2's settings).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditConfig {
    /// `unsafe_allow_api_audit_creation = true`: `PUT sys/audit/<path>` may enable devices
    /// (default false: refused, as OpenBao refuses it).
    pub unsafe_allow_api_audit_creation: bool,
    /// The `audit "<type>" "<path>" { description, local, options { ... } }` blocks.
    pub devices: Vec<DeclaredDevice>,
}

impl AuditConfig {
    /// Reads the config file given with `server -dev`: only `unsafe_allow_api_audit_creation`
    /// and `audit` blocks (dev mode keeps its data in memory and listens where its flags
    /// say). Errors: a message naming the file and the problem.
    pub fn load_for_dev(path: &Path) -> Result<AuditConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        let within = |e: String| format!("config file {}: {e}", path.display());
        let raw: RawConfig =
            hcl::from_str(&text).map_err(|e| within(format!("invalid HCL: {e}")))?;
        if raw.storage.is_some() || raw.seal.is_some() || raw.listener.is_some() {
            return Err(within(
                "with -dev, the config file may hold only unsafe_allow_api_audit_creation and \
                 audit blocks (dev mode keeps its data in memory)"
                    .into(),
            ));
        }
        audit_config(&raw).map_err(within)
    }

    /// The rules the core applies, with the paths no file device may write into.
    pub fn rules(&self, protected_paths: Vec<PathBuf>) -> AuditRules {
        AuditRules {
            allow_api_creation: self.unsafe_allow_api_audit_creation,
            protected_paths,
            declared: self.devices.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    storage: Option<BTreeMap<String, BTreeMap<String, Value>>>,
    seal: Option<BTreeMap<String, BTreeMap<String, Value>>>,
    listener: Option<BTreeMap<String, RawListener>>,
    log_level: Option<String>,
    log_format: Option<String>,
    telemetry: Option<RawTelemetry>,
    default_lease_ttl: Option<Value>,
    max_lease_ttl: Option<Value>,
    ui: Option<bool>,
    disable_mlock: Option<bool>,
    api_addr: Option<String>,
    cluster_addr: Option<String>,
    unsafe_allow_api_audit_creation: Option<bool>,
    audit: Option<Value>,
}

/// The `telemetry` block: only the access setting of `sys/metrics` is used; Vault's sink
/// settings (statsite, statsd, ...) are refused as unknown.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTelemetry {
    unauthenticated_metrics_access: Option<bool>,
    prometheus_retention_time: Option<Value>,
    disable_hostname: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    address: Option<String>,
    tls_cert_file: Option<String>,
    tls_key_file: Option<String>,
    tls_disable: Option<Value>,
}

/// The name of the embedded server's seal key file in its data directory.
pub const EMBEDDED_KEY_FILE: &str = "seal.key";

/// The key id of the embedded server's key file (for a `seal "static"` block that takes
/// it over).
pub const EMBEDDED_KEY_ID: &str = "embedded";

/// The default listen address.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8200";

impl ServerConfig {
    /// The config without a file: SQLite at `data_dir/authmount.db`, sealed with the key
    /// file `data_dir/seal.key`, plain HTTP on 127.0.0.1:8200.
    pub fn embedded(data_dir: &Path) -> ServerConfig {
        ServerConfig {
            storage: StorageConfig::Sqlite {
                path: data_dir.join("authmount.db"),
                sync_every_commit: true,
            },
            listener: ListenerConfig {
                address: DEFAULT_ADDRESS.into(),
                tls: None,
            },
            seal: SealConfig::KeyFile(data_dir.join(EMBEDDED_KEY_FILE)),
            log_level: "info".into(),
            log_format: String::new(),
            unauthenticated_metrics_access: false,
            limits: LeaseLimits::default(),
            audit: AuditConfig::default(),
        }
    }

    /// The server's own files, which no audit file device may write into: the data
    /// directory of the embedded server (database and key file), the SQLite database and its
    /// `-wal`, `-shm` and `-journal` files, the static seal's key files, the TLS certificate
    /// and key, and `config_file`.
    pub fn protected_paths(&self, config_file: Option<&Path>) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = config_file.map(Path::to_path_buf).into_iter().collect();
        if let StorageConfig::Sqlite { path, .. } = &self.storage {
            paths.push(path.clone());
            for suffix in ["-wal", "-shm", "-journal"] {
                let mut sibling = path.clone().into_os_string();
                sibling.push(suffix);
                paths.push(sibling.into());
            }
        }
        match &self.seal {
            SealConfig::Shamir => {}
            SealConfig::KeyFile(key) => {
                paths.push(key.clone());
                if let Some(dir) = key.parent().filter(|d| !d.as_os_str().is_empty()) {
                    paths.push(dir.to_path_buf());
                }
            }
            SealConfig::Static {
                current_key,
                previous,
                ..
            } => {
                for source in std::iter::once(current_key).chain(previous.iter().map(|p| &p.1)) {
                    if let KeySource::File(file) = source {
                        paths.push(file.clone());
                    }
                }
            }
        }
        if let Some((cert, key)) = &self.listener.tls {
            paths.extend([cert.clone(), key.clone()]);
        }
        paths
    }

    /// Reads and parses a config file. Errors: a message naming the file and the problem.
    pub fn load(path: &Path) -> Result<ServerConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        ServerConfig::parse(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }

    /// Parses the HCL text of a config. Errors: bad HCL, unknown keys, a storage type other
    /// than `sqlite`/`postgresql` (or `inmem`), missing storage settings, bad durations.
    pub fn parse(text: &str) -> Result<ServerConfig, String> {
        let raw: RawConfig = hcl::from_str(text).map_err(|e| format!("invalid HCL: {e}"))?;
        let audit = audit_config(&raw)?;
        let _ = (raw.ui, raw.disable_mlock, raw.api_addr, raw.cluster_addr); // accepted, unused
        let storage = match raw
            .storage
            .unwrap_or_default()
            .into_iter()
            .collect::<Vec<_>>()
            .as_slice()
        {
            [] => {
                return Err(
                    "a storage block is required (storage \"sqlite\" { path = \"...\" })".into(),
                )
            }
            [(kind, settings)] => storage_config(kind, settings)?,
            _ => return Err("exactly one storage block is allowed".into()),
        };
        let listener = match raw
            .listener
            .unwrap_or_default()
            .into_iter()
            .collect::<Vec<_>>()
            .as_slice()
        {
            [] => ListenerConfig {
                address: DEFAULT_ADDRESS.into(),
                tls: None,
            },
            [(kind, l)] if kind == "tcp" => listener_config(l)?,
            [(kind, _)] => return Err(format!("unknown listener type {kind:?}: only \"tcp\"")),
            _ => return Err("exactly one listener block is allowed".into()),
        };
        let seal = match raw
            .seal
            .unwrap_or_default()
            .into_iter()
            .collect::<Vec<_>>()
            .as_slice()
        {
            [] => SealConfig::Shamir,
            [(kind, settings)] if kind == "static" => static_seal(settings)?,
            [(kind, _)] => {
                return Err(format!(
                    "unknown seal type {kind:?}: use seal \"static\" (or no seal block for \
                     Shamir unseal keys)"
                ))
            }
            _ => return Err("exactly one seal block is allowed".into()),
        };
        let ttl = |name: &str, v: &Option<Value>| -> Result<i64, String> {
            match v {
                None => Ok(LeaseLimits::default().max_lease_ttl),
                Some(v) => match parse_seconds(v) {
                    Ok(s) if s > 0 => Ok(s),
                    Ok(s) => Err(format!("{name} must be positive, got {s}")),
                    Err(e) => Err(format!("invalid {name}: {e}")),
                },
            }
        };
        let limits = LeaseLimits {
            default_lease_ttl: ttl("default_lease_ttl", &raw.default_lease_ttl)?,
            max_lease_ttl: ttl("max_lease_ttl", &raw.max_lease_ttl)?,
        };
        if limits.default_lease_ttl > limits.max_lease_ttl {
            return Err("default_lease_ttl cannot be greater than max_lease_ttl".into());
        }
        let log_format = raw.log_format.unwrap_or_default();
        crate::logging::LogFormat::parse(&log_format).map_err(|e| format!("log_format: {e}"))?;
        let telemetry = raw.telemetry.as_ref();
        // accepted, unused (we keep no in-memory retention, and no hostname prefix)
        let _ = telemetry.map(|t| (&t.prometheus_retention_time, t.disable_hostname));
        Ok(ServerConfig {
            storage,
            listener,
            seal,
            log_level: raw.log_level.unwrap_or_else(|| "info".into()),
            log_format,
            unauthenticated_metrics_access: telemetry
                .and_then(|t| t.unauthenticated_metrics_access)
                .unwrap_or(false),
            limits,
            audit,
        })
    }
}

/// `unsafe_allow_api_audit_creation` and the `audit` blocks of a parsed config.
fn audit_config(raw: &RawConfig) -> Result<AuditConfig, String> {
    let mut devices = Vec::new();
    if let Some(audit) = &raw.audit {
        collect_audit_blocks(audit, &mut Vec::new(), &mut devices)?;
    }
    for (i, d) in devices.iter().enumerate() {
        let path = d.path.trim_matches('/');
        if path.is_empty() {
            return Err(format!("audit {:?}: the path label is empty", d.kind));
        }
        if devices[..i]
            .iter()
            .any(|o| o.path.trim_matches('/') == path)
        {
            return Err(format!("audit: two blocks have the path {path:?}"));
        }
    }
    Ok(AuditConfig {
        unsafe_allow_api_audit_creation: raw.unsafe_allow_api_audit_creation.unwrap_or(false),
        devices,
    })
}

/// Walks `audit "<type>" "<path>" { ... }` as hcl-rs hands it over (objects keyed by the
/// labels; repeated blocks may come as arrays).
fn collect_audit_blocks(
    value: &Value,
    labels: &mut Vec<String>,
    out: &mut Vec<DeclaredDevice>,
) -> Result<(), String> {
    match value {
        Value::Array(items) => items
            .iter()
            .try_for_each(|item| collect_audit_blocks(item, labels, out)),
        Value::Object(map) if labels.len() < 2 => {
            for (label, inner) in map {
                labels.push(label.clone());
                collect_audit_blocks(inner, labels, out)?;
                labels.pop();
            }
            Ok(())
        }
        Value::Object(body) => {
            let (kind, path) = (labels[0].clone(), labels[1].clone());
            let within = |e: String| format!("audit {kind:?} {path:?}: {e}");
            let mut device = DeclaredDevice {
                path: path.clone(),
                kind: kind.clone(),
                ..DeclaredDevice::default()
            };
            for (name, v) in body {
                match (name.as_str(), v) {
                    ("description", Value::String(s)) => device.description = s.clone(),
                    ("local", Value::Bool(b)) => device.local = *b,
                    ("options", Value::Object(options)) => {
                        for (k, v) in options {
                            let text = match v {
                                Value::String(s) => s.clone(),
                                Value::Bool(_) | Value::Number(_) => v.to_string(),
                                _ => return Err(within(format!("option {k:?} must be a string"))),
                            };
                            device.options.insert(k.clone(), text);
                        }
                    }
                    ("description" | "local" | "options", _) => {
                        return Err(within(format!("{name} has the wrong type")))
                    }
                    (other, _) => return Err(within(format!("unknown setting {other:?}"))),
                }
            }
            out.push(device);
            Ok(())
        }
        _ => Err(
            "audit blocks take a type and a path: audit \"file\" \"<path>\" { options { ... } }"
                .into(),
        ),
    }
}

fn storage_config(kind: &str, settings: &BTreeMap<String, Value>) -> Result<StorageConfig, String> {
    let text = |name: &str| {
        settings
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    match kind {
        "sqlite" => Ok(StorageConfig::Sqlite {
            path: text("path").ok_or("storage \"sqlite\" needs path")?.into(),
            sync_every_commit: match text("synchronous").unwrap_or("full") {
                "full" | "FULL" => true,
                "normal" | "NORMAL" => false,
                other => {
                    return Err(format!(
                        "invalid synchronous {other:?}: use \"full\" or \"normal\""
                    ))
                }
            },
        }),
        "postgresql" => Ok(StorageConfig::Postgres {
            connection_url: text("connection_url")
                .ok_or("storage \"postgresql\" needs connection_url")?
                .to_string(),
        }),
        other => Err(format!(
            "unknown storage type {other:?}: use \"sqlite\" or \"postgresql\""
        )),
    }
}

fn static_seal(settings: &BTreeMap<String, Value>) -> Result<SealConfig, String> {
    const KNOWN: [&str; 4] = [
        "current_key_id",
        "current_key",
        "previous_key_id",
        "previous_key",
    ];
    if let Some(unknown) = settings.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(format!("seal \"static\": unknown setting {unknown:?}"));
    }
    let text = |name: &str| -> Result<Option<String>, String> {
        match settings.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(format!(
                "seal \"static\": {name} must be a non-empty string"
            )),
        }
    };
    let (Some(current_key_id), Some(current_key)) = (text("current_key_id")?, text("current_key")?)
    else {
        return Err("seal \"static\" needs current_key_id and current_key".into());
    };
    let previous = match (text("previous_key_id")?, text("previous_key")?) {
        (None, None) => None,
        (Some(id), Some(key)) => Some((id, KeySource::parse(&key))),
        _ => return Err("seal \"static\": previous_key_id and previous_key go together".into()),
    };
    Ok(SealConfig::Static {
        current_key_id,
        current_key: KeySource::parse(&current_key),
        previous,
    })
}

fn listener_config(l: &RawListener) -> Result<ListenerConfig, String> {
    let disabled = match &l.tls_disable {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.as_str(), "true" | "1"),
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        Some(other) => return Err(format!("invalid tls_disable {other}")),
    };
    let tls =
        match (disabled, &l.tls_cert_file, &l.tls_key_file) {
            (true, _, _) | (false, None, None) => None,
            (false, Some(cert), Some(key)) => Some((cert.into(), key.into())),
            _ => return Err(
                "listener \"tcp\" needs both tls_cert_file and tls_key_file, or tls_disable = true"
                    .into(),
            ),
        };
    Ok(ListenerConfig {
        address: l.address.clone().unwrap_or_else(|| DEFAULT_ADDRESS.into()),
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vaults_shape() {
        let c = ServerConfig::parse(
            r#"
            storage "postgresql" { connection_url = "postgres://u:p@127.0.0.1/db" }
            listener "tcp" {
              address = "0.0.0.0:8201"
              tls_cert_file = "/c.pem"
              tls_key_file = "/k.pem"
              tls_disable = false
            }
            log_level = "debug"
            default_lease_ttl = "1h"
            max_lease_ttl = 7200
            ui = true
            "#,
        )
        .unwrap();
        assert_eq!(
            c.storage,
            StorageConfig::Postgres {
                connection_url: "postgres://u:p@127.0.0.1/db".into()
            }
        );
        assert_eq!(c.listener.address, "0.0.0.0:8201");
        assert_eq!(c.listener.tls, Some(("/c.pem".into(), "/k.pem".into())));
        assert_eq!(c.log_level, "debug");
        assert_eq!(
            c.limits,
            LeaseLimits {
                default_lease_ttl: 3600,
                max_lease_ttl: 7200
            }
        );
        let s = ServerConfig::parse(
            r#"storage "sqlite" { path = "/tmp/a.db" }
listener "tcp" { tls_disable = 1 }"#,
        )
        .unwrap();
        assert_eq!(
            s.storage,
            StorageConfig::Sqlite {
                path: "/tmp/a.db".into(),
                sync_every_commit: true,
            }
        );
        assert_eq!(s.listener.tls, None);
        assert_eq!(s.listener.address, DEFAULT_ADDRESS);
        assert_eq!(s.seal, SealConfig::Shamir);
        let st = ServerConfig::parse(
            r#"storage "sqlite" { path = "/tmp/a.db" }
seal "static" {
  current_key_id = "k2"
  current_key = "file:///etc/authmount/k2.key"
  previous_key_id = "k1"
  previous_key = "env://OLD_KEY"
}"#,
        )
        .unwrap();
        assert_eq!(
            st.seal,
            SealConfig::Static {
                current_key_id: "k2".into(),
                current_key: KeySource::File("/etc/authmount/k2.key".into()),
                previous: Some(("k1".into(), KeySource::Env("OLD_KEY".into()))),
            }
        );
    }

    #[test]
    fn the_readme_config_block_parses() {
        let readme = include_str!("../../README.md");
        // The config file is the heredoc the `sh server-config` block writes.
        let block = readme
            .split("```sh server-config\n")
            .nth(1)
            .and_then(|rest| rest.split("<<EOF\n").nth(1))
            .and_then(|rest| rest.split("\nEOF\n").next())
            .expect("the server-config block's heredoc in the README");
        let config = ServerConfig::parse(&block.replace("$DIR", "/var/lib/authmount")).unwrap();
        assert!(
            matches!(config.seal, SealConfig::Static { .. }),
            "{config:?}"
        );
    }

    #[test]
    fn parses_audit_blocks_and_the_api_setting() {
        let c = ServerConfig::parse(
            r#"storage "sqlite" { path = "/var/lib/authmount/authmount.db" }
unsafe_allow_api_audit_creation = true
audit "file" "to-file" {
  description = "every request"
  options {
    file_path = "/var/log/authmount/audit.log"
    mode = "0640"
  }
}
audit "file" "to-stdout" {
  options = {
    file_path = "stdout"
    hmac_accessor = false
  }
}
audit "socket" "collector" {
  local = true
  options {
    address = "127.0.0.1:9090"
  }
}
"#,
        )
        .unwrap();
        assert!(c.audit.unsafe_allow_api_audit_creation);
        let mut devices = c.audit.devices.clone();
        devices.sort_by(|a, b| a.path.cmp(&b.path));
        let options = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            devices,
            vec![
                DeclaredDevice {
                    path: "collector".into(),
                    kind: "socket".into(),
                    description: String::new(),
                    local: true,
                    options: options(&[("address", "127.0.0.1:9090")]),
                },
                DeclaredDevice {
                    path: "to-file".into(),
                    kind: "file".into(),
                    description: "every request".into(),
                    local: false,
                    options: options(&[
                        ("file_path", "/var/log/authmount/audit.log"),
                        ("mode", "0640")
                    ]),
                },
                DeclaredDevice {
                    path: "to-stdout".into(),
                    kind: "file".into(),
                    description: String::new(),
                    local: false,
                    options: options(&[("file_path", "stdout"), ("hmac_accessor", "false")]),
                },
            ]
        );
        // Off by default, nothing declared.
        let plain = ServerConfig::parse(r#"storage "sqlite" { path = "/a.db" }"#).unwrap();
        assert_eq!(plain.audit, AuditConfig::default());
        for (text, want) in [
            (
                "audit \"file\" \"a\" {\n  colour = 1\n}\n",
                "unknown setting \"colour\"",
            ),
            (
                "audit \"file\" {\n  description = \"x\"\n}\n",
                "take a type and a path",
            ),
            (
                "audit \"file\" \"a\" {\n  options { x = [1] }\n}\n",
                "must be a string",
            ),
            (
                "audit \"file\" \"a\" {}\naudit \"socket\" \"a/\" {}\n",
                "two blocks have the path",
            ),
            ("unsafe_allow_api_audit_creation = \"yes\"\n", "invalid HCL"),
        ] {
            let text = format!("storage \"sqlite\" {{ path = \"/a.db\" }}\n{text}");
            let err = ServerConfig::parse(&text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_readme_audit_config_block_parses() {
        let readme = include_str!("../../README.md");
        let block = readme
            .split("```hcl audit-config\n")
            .nth(1)
            .and_then(|rest| rest.split("\n```").next())
            .expect("the README's hcl audit-config block");
        let text = format!("storage \"sqlite\" {{ path = \"/a.db\" }}\n{block}\n");
        let config = ServerConfig::parse(&text).unwrap();
        assert!(!config.audit.devices.is_empty(), "{config:?}");
    }

    #[test]
    fn the_servers_own_files_are_protected_from_audit_devices() {
        let embedded = ServerConfig::embedded(Path::new("/var/lib/authmount"));
        let own = embedded.protected_paths(None);
        assert!(
            own.contains(&PathBuf::from("/var/lib/authmount")),
            "{own:?}"
        );
        assert!(own.contains(&PathBuf::from("/var/lib/authmount/seal.key")));
        let c = ServerConfig::parse(
            r#"storage "sqlite" { path = "/srv/db/a.db" }
listener "tcp" {
  tls_cert_file = "/etc/am/c.pem"
  tls_key_file = "/etc/am/k.pem"
}
seal "static" {
  current_key_id = "k2"
  current_key = "file:///etc/am/k2.key"
  previous_key_id = "k1"
  previous_key = "file:///etc/am/k1.key"
}"#,
        )
        .unwrap();
        let own = c.protected_paths(Some(Path::new("/etc/am/server.hcl")));
        for path in [
            "/etc/am/server.hcl",
            "/srv/db/a.db",
            "/srv/db/a.db-wal",
            "/srv/db/a.db-shm",
            "/srv/db/a.db-journal",
            "/etc/am/k2.key",
            "/etc/am/k1.key",
            "/etc/am/c.pem",
            "/etc/am/k.pem",
        ] {
            assert!(own.contains(&PathBuf::from(path)), "{path}: {own:?}");
        }
        // Not the whole directory of a database placed by a config.
        assert!(!own.contains(&PathBuf::from("/srv/db")));
    }

    #[test]
    fn refuses_bad_configs_with_a_reason() {
        for (text, want) in [
            ("", "storage block is required"),
            (r#"storage "etcd" { x = 1 }"#, "unknown storage type"),
            (r#"storage "sqlite" {}"#, "needs path"),
            (
                r#"storage "sqlite" { path = "a" }
listener "unix" {}"#,
                "unknown listener",
            ),
            (
                r#"storage "sqlite" { path = "a" }
listener "tcp" { tls_cert_file = "c" }"#,
                "both",
            ),
            (
                r#"storage "sqlite" { path = "a" }
max_lease_ttl = "1hr""#,
                "invalid max_lease_ttl",
            ),
            (
                r#"storage "sqlite" { path = "a" }
default_lease_ttl = "2h"
max_lease_ttl = "1h""#,
                "cannot be greater",
            ),
            (
                r#"storage "sqlite" { path = "a" }
colour = "blue""#,
                "invalid HCL",
            ),
            (r#"storage "sqlite" { path = "a" "#, "invalid HCL"),
            (
                r#"storage "sqlite" { path = "a" }
seal "awskms" { kms_key_id = "x" }"#,
                "unknown seal type",
            ),
            (
                r#"storage "sqlite" { path = "a" }
seal "static" { current_key = "file:///k" }"#,
                "needs current_key_id and current_key",
            ),
            (
                r#"storage "sqlite" { path = "a" }
seal "static" {
  current_key_id = "a"
  current_key = "file:///k"
  previous_key = "file:///j"
}"#,
                "go together",
            ),
            (
                r#"storage "sqlite" { path = "a" }
seal "static" {
  current_key_id = "a"
  current_key = "file:///k"
  colour = "x"
}"#,
                "unknown setting",
            ),
        ] {
            let err = ServerConfig::parse(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
