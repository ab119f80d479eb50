//! A minute-bucketed index of things that expire, kept in a mount's storage beside them so
//! every node can sweep them: `<prefix><minute>/<name>`, where `<minute>` is the first whole
//! minute (Unix seconds / 60, twelve digits) after the thing's expiry. A sweep lists only the
//! buckets that are due, never the things themselves. Used by the OIDC login states
//! ([`crate::oidc_state`]) and the single-use memory ([`crate::single_use`]).

use authmount_framework::{Result, View};

/// The index key of `name`, which expires at `expires` (Unix seconds), under `prefix`.
pub fn key(prefix: &str, expires: u64, name: &str) -> String {
    format!("{prefix}{:012}/{name}", expires / 60 + 1)
}

/// The names indexed under `prefix` in every bucket due at `now` (Unix seconds), each with
/// its index key (to delete once the thing is dealt with). Errors: storage failures.
pub async fn due(storage: &View, prefix: &str, now: u64) -> Result<Vec<(String, String)>> {
    let current = now / 60;
    let mut found = Vec::new();
    for bucket in storage.list(prefix).await? {
        let Some(minute) = bucket.strip_suffix('/').and_then(|b| b.parse::<u64>().ok()) else {
            continue;
        };
        if minute > current {
            continue;
        }
        let dir = format!("{prefix}{bucket}");
        for name in storage.list(&dir).await? {
            found.push((format!("{dir}{name}"), name));
        }
    }
    Ok(found)
}
