//! One audit device: its options, parsed and checked, and its sink.
//!
//! Options (all strings, as Vault takes them):
//! - `file`: `file_path` (required; a path, `stdout`, or `discard`), `mode` (octal, default
//!   `0600`, applied when the file is created; execute bits are dropped, as OpenBao 2.7.2
//!   drops them: `0755` makes a `0644` file).
//! - `socket`: `address` (required, `host:port`), `socket_type` (`tcp`, default, or `udp`),
//!   `write_timeout` (a duration, default `2s`).
//! - both: `hmac_accessor` (default true), `log_raw` (default false: DANGEROUS, every secret
//!   in the clear), `format` (`json`, the only one).
//!
//! Errors are Vault's texts: `file_path is required`, `address is required`,
//! `unknown format type "<f>"`, `strconv.ParseBool: parsing "<v>": invalid syntax`, ...

use std::path::PathBuf;
use std::time::Duration;

use super::sink::Sink;
use super::DeviceEntry;
use crate::error::{Error, Result};

/// Where a device writes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    /// The server's standard output.
    Stdout,
    /// Nowhere (Vault's `file_path=discard`): every write succeeds.
    Discard,
    /// A file, appended to (created with `mode`, never with an execute bit, when missing).
    File { path: PathBuf, mode: u32 },
    /// A TCP or UDP peer, one line per write.
    Socket {
        address: String,
        udp: bool,
        write_timeout: Duration,
    },
}

/// A device's parsed options.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings {
    pub(crate) target: Target,
    /// Hash token accessors (default true).
    pub(crate) hmac_accessor: bool,
    /// Write everything in the clear (default false).
    pub(crate) log_raw: bool,
}

/// Go's `strconv.ParseBool`, with its error text.
fn parse_bool(value: &str) -> Result<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(Error::invalid(format!(
            "strconv.ParseBool: parsing {other:?}: invalid syntax"
        ))),
    }
}

impl Settings {
    /// Parses the options of a device of type `kind`. Errors: 400 for an unknown type, a
    /// missing required option, an unknown format or a malformed value.
    pub(crate) fn parse(
        kind: &str,
        options: &std::collections::BTreeMap<String, String>,
    ) -> Result<Settings> {
        let opt = |name: &str| options.get(name).map(String::as_str);
        let flag = |name: &str, default: bool| match opt(name) {
            Some(v) => parse_bool(v),
            None => Ok(default),
        };
        match opt("format").unwrap_or("json") {
            "json" | "" => {}
            "jsonx" => {
                return Err(Error::invalid(
                    "jsonx formatting is not supported, consider switching to json by omitting \"format\" or setting it to \"json\"",
                ))
            }
            other => return Err(Error::invalid(format!("unknown format type {other:?}"))),
        }
        if opt("prefix").is_some_and(|p| !p.is_empty()) {
            return Err(Error::invalid("audit log prefixing is not allowed"));
        }
        let target = match kind {
            "file" => match opt("file_path").or(opt("path")).unwrap_or("") {
                "" => return Err(Error::invalid("file_path is required")),
                "stdout" => Target::Stdout,
                "discard" => Target::Discard,
                path => {
                    let mode = match opt("mode") {
                        Some(m) => u32::from_str_radix(m, 8)
                            .ok()
                            .filter(|m| *m <= 0o777)
                            .ok_or_else(|| {
                                Error::invalid(format!(
                                    "strconv.ParseUint: parsing {m:?}: invalid syntax"
                                ))
                            })?,
                        None => 0o600,
                    } & !0o111;
                    Target::File {
                        path: PathBuf::from(path),
                        mode,
                    }
                }
            },
            "socket" => {
                let address = opt("address").unwrap_or("");
                if address.is_empty() {
                    return Err(Error::invalid("address is required"));
                }
                let udp = match opt("socket_type").unwrap_or("tcp") {
                    "tcp" | "" => false,
                    "udp" => true,
                    other => {
                        return Err(Error::invalid(format!(
                            "socket_type {other:?} is not supported: use tcp or udp"
                        )))
                    }
                };
                let write_timeout = match opt("write_timeout") {
                    Some(t) => match crate::duration::parse_seconds_quoting(t) {
                        Ok(secs) if secs > 0 => Duration::from_secs(secs as u64),
                        Ok(_) => Duration::from_secs(2),
                        Err(why) => return Err(Error::invalid(why)),
                    },
                    None => Duration::from_secs(2),
                };
                Target::Socket {
                    address: address.to_string(),
                    udp,
                    write_timeout,
                }
            }
            other => return Err(Error::invalid(format!("unknown backend type: {other:?}"))),
        };
        Ok(Settings {
            target,
            hmac_accessor: flag("hmac_accessor", true)?,
            log_raw: flag("log_raw", false)?,
        })
    }
}

/// An enabled device on this node: its entry, settings and sink.
pub(crate) struct Device {
    pub(crate) entry: DeviceEntry,
    pub(crate) settings: Settings,
    salt: Vec<u8>,
    sink: Sink,
}

impl Device {
    /// The device for a stored entry (nothing is opened yet). Errors: 500 when the stored
    /// options no longer parse or the salt is not hex.
    pub(crate) fn new(entry: DeviceEntry) -> Result<Device> {
        let settings = Settings::parse(&entry.kind, &entry.options)
            .map_err(|e| Error::internal(format!("audit device {}: {e}", entry.path)))?;
        let salt = hex::decode(&entry.salt)
            .map_err(|_| Error::internal(format!("audit device {}: bad salt", entry.path)))?;
        Ok(Device {
            sink: Sink::new(settings.target.clone()),
            entry,
            settings,
            salt,
        })
    }

    /// The HMAC key of this device.
    pub(crate) fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// Appends one line (a newline is added). Errors: the I/O error after one re-open.
    pub(crate) async fn write_line(&self, line: &[u8]) -> std::io::Result<()> {
        self.sink.write_line(line).await
    }
}
