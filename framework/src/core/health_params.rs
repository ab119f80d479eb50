//! The query parameters of `sys/health`: the status code each state answers with, for load
//! balancers that want another code than Vault's defaults.
//!
//! | parameter | default | used when |
//! |---|---|---|
//! | `activecode` | 200 | initialised, unsealed, storage answers (every authmount node is active) |
//! | `uninitcode` | 501 | not initialised |
//! | `sealedcode` | 503 | sealed |
//! | `standbycode` | 429 | a standby node (never: authmount has no standbys) |
//! | `performancestandbycode` | 473 | a performance standby (never) |
//! | `drsecondarycode` | 472 | a DR secondary (never) |
//! | `haunhealthycode` | 474 | an unhealthy HA node (never) |
//! | `removedcode` | 530 | a node removed from its raft cluster (never) |
//! | `standbyok`, `perfstandbyok` | false | answer a standby with `activecode` (never matters) |
//!
//! Every parameter is checked, like Vault does: a code that is not an integer, or a flag that
//! is not a Go boolean (`1`, `t`, `true`, `0`, `f`, `false`, ..., empty = false), is a 400 with
//! Vault's empty error list `{"errors":[]}`. A code outside 200..=599 is a 400 that says so
//! (Vault sends whatever integer it got, and Go drops the connection for one outside
//! 100..=999). Unknown parameters are ignored. OpenBao 2.7.2 checks only `activecode`,
//! `sealedcode`, `uninitcode`, `standbycode` and `standbyok`; Vault checks them all.
//!
//! Source: Vault API `sys/health`; Vault `http/sys_health.go`; checked against OpenBao 2.7.2.

use serde_json::json;

use crate::path::{Field, FieldData, FieldType};
use crate::response::Reply;

/// The code parameters with their defaults (Vault's).
const CODES: [(&str, u16); 8] = [
    ("activecode", 200),
    ("uninitcode", 501),
    ("sealedcode", 503),
    ("standbycode", 429),
    ("performancestandbycode", 473),
    ("drsecondarycode", 472),
    ("haunhealthycode", 474),
    ("removedcode", 530),
];

/// The flag parameters.
const FLAGS: [&str; 2] = ["standbyok", "perfstandbyok"];

/// The fields of `sys/health` (all strings: the handler checks them as Vault does).
pub(super) fn fields() -> Vec<Field> {
    let mut fields: Vec<Field> = CODES
        .iter()
        .map(|(name, default)| {
            Field::new(
                name,
                FieldType::String,
                match *name {
                    "activecode" => "Status code when the server is initialised and unsealed (default 200).",
                    "uninitcode" => "Status code when the server is not initialised (default 501).",
                    "sealedcode" => "Status code when the server is sealed (default 503).",
                    _ => "Status code of a replication or HA state that authmount never is (accepted and checked for Vault compatibility).",
                },
            )
            .default(default.to_string())
        })
        .collect();
    fields.extend(FLAGS.iter().map(|name| {
        Field::new(
            name,
            FieldType::String,
            "Answer a standby with the active code (accepted for Vault compatibility: authmount has no standbys).",
        )
    }));
    fields
}

/// The status codes asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HealthCodes {
    /// `activecode`.
    pub active: u16,
    /// `uninitcode`.
    pub uninit: u16,
    /// `sealedcode`.
    pub sealed: u16,
}

/// Reads and checks every parameter. Errors: the 400 reply to answer instead.
pub(super) fn parse(fields: &FieldData) -> Result<HealthCodes, Reply> {
    let bad = || Reply {
        status: 400,
        body: Some(json!({ "errors": [] })),
    };
    let mut found = [0u16; CODES.len()];
    for (slot, (name, default)) in found.iter_mut().zip(CODES) {
        let raw = fields.str(name);
        *slot = match raw {
            None => default,
            Some(raw) => {
                let code: i64 = raw.parse().map_err(|_| bad())?;
                if !(200..=599).contains(&code) {
                    return Err(Reply::error(&crate::Error::invalid(format!(
                        "{name} must be an HTTP status code from 200 to 599, not {code}"
                    ))));
                }
                code as u16
            }
        };
    }
    for name in FLAGS {
        if let Some(raw) = fields.str(name) {
            if !matches!(
                raw,
                "" | "1"
                    | "t"
                    | "T"
                    | "true"
                    | "TRUE"
                    | "True"
                    | "0"
                    | "f"
                    | "F"
                    | "false"
                    | "FALSE"
                    | "False"
            ) {
                return Err(bad());
            }
        }
    }
    Ok(HealthCodes {
        active: found[0],
        uninit: found[1],
        sealed: found[2],
    })
}
