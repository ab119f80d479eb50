//! What the server config says about audit devices, and the checks a file device passes
//! before it is enabled (`docs/audit.md`, "Who may enable a device").
//!
//! - [`AuditRules::allow_api_creation`] (`unsafe_allow_api_audit_creation` in the server
//!   config, default false): without it `PUT sys/audit/<path>` is refused with OpenBao
//!   2.7.2's answer, [`API_CREATION_REFUSED`]. Enabling a device writes lines the caller
//!   partly chooses (request paths, even of unauthenticated requests) into a file the caller
//!   names: a sudo token could otherwise append shell commands to a file a shell sources
//!   (`/etc/profile.d/x.sh`, `~/.bashrc`) or overwrite the server's own key file. This is
//!   the class of Vault's CVE-2025-6000 and OpenBao's CVE-2025-54997.
//! - [`AuditRules::declared`]: `audit "<type>" "<path>" { ... }` blocks of the server config,
//!   enabled when the server is first unsealed, and refused to `DELETE sys/audit/<path>`.
//! - `check_target`, for every file device (over the API or from the config): the path
//!   must not be a symbolic link, must be a regular file when it exists, and must not be
//!   inside the server's own files ([`AuditRules::protected_paths`]: the data directory,
//!   the database, the seal key files, the TLS files, the config file). The sink opens the
//!   file with `O_NOFOLLOW` as well, and a device's `mode` never keeps an execute bit
//!   (OpenBao strips them: `0755` makes a `0644` file).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::Target;
use crate::error::{Error, Result};

/// OpenBao 2.7.2's answer (400) to `PUT sys/audit/<path>` when its config does not set
/// `unsafe_allow_api_audit_creation = true`.
pub const API_CREATION_REFUSED: &str =
    "cannot enable audit device via API; use declarative, config-based audit device management instead";

/// OpenBao 2.7.2's answer (400) to `DELETE sys/audit/<path>` for a device of the config.
pub const DECLARED_NOT_DISABLED: &str = "cannot disable configuration-managed audit device";

/// One `audit "<type>" "<path>" { description = "...", local = false, options { ... } }`
/// block of the server config (OpenBao's declarative audit devices).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeclaredDevice {
    /// The device path (`to-file`; listed as `to-file/`).
    pub path: String,
    /// `file` or `socket`.
    pub kind: String,
    /// Free text.
    pub description: String,
    /// Vault's `local` flag.
    pub local: bool,
    /// The device options, as `PUT sys/audit/<path>` takes them.
    pub options: BTreeMap<String, String>,
}

/// How this node lets audit devices be made; set from the server config with
/// [`crate::Core::set_audit_rules`]. The default refuses API creation and declares nothing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditRules {
    /// `unsafe_allow_api_audit_creation = true`: `PUT sys/audit/<path>` may enable devices.
    pub allow_api_creation: bool,
    /// Files and directories no file device may write into (each path and everything
    /// under it), e.g. the data directory and the seal key file.
    pub protected_paths: Vec<PathBuf>,
    /// The `audit` blocks of the config, in order.
    pub declared: Vec<DeclaredDevice>,
}

/// Checks a device's target before it is enabled. Errors (400): a file path that is a
/// symbolic link, that exists and is not a regular file (a directory, a FIFO, a device),
/// that contains `..`, or that is inside one of `protected` (compared after resolving the directories of both,
/// so `..` and linked directories do not get around it). `stdout`, `discard` and sockets
/// pass.
pub(crate) fn check_target(target: &Target, protected: &[PathBuf]) -> Result<()> {
    let Target::File { path, .. } = target else {
        return Ok(());
    };
    let shown = path.display().to_string();
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(Error::invalid(format!(
            "file_path {shown:?} contains \"..\": give the path without it"
        )));
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(Error::invalid(format!(
                "file_path {shown:?} is a symbolic link: give the path of the file itself"
            )))
        }
        Ok(meta) if !meta.is_file() => {
            return Err(Error::invalid(format!(
                "file_path {shown:?} exists and is not a regular file"
            )))
        }
        _ => {}
    }
    let resolved = resolve(path);
    for own in protected {
        let own = resolve(own);
        if resolved.starts_with(&own) {
            return Err(Error::invalid(format!(
                "file_path {shown:?} is inside the server's own files ({}): audit lines would \
                 overwrite its data; choose a path outside them",
                own.display()
            )));
        }
    }
    Ok(())
}

/// `path` made absolute, its longest existing ancestor resolved (symbolic links followed,
/// as opening the file would follow them, except for the last component which the sink
/// does not follow), the rest appended. File paths with `..` are refused before this, so a
/// `..` below a directory that does not exist yet is only applied lexically.
fn resolve(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let (parent, name) = match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => (parent, Some(name)),
        _ => (absolute.as_path(), None),
    };
    // Walk up to the first directory that exists, keeping the components below it.
    let mut existing = parent.to_path_buf();
    let mut rest = Vec::new();
    let base = loop {
        if let Ok(real) = existing.canonicalize() {
            break real;
        }
        match (existing.file_name(), existing.parent()) {
            (Some(last), Some(up)) => {
                rest.push(last.to_os_string());
                existing = up.to_path_buf();
            }
            _ => break existing.clone(),
        }
    };
    let mut out = base;
    for part in rest.iter().rev().map(Path::new).chain(name.map(Path::new)) {
        for component in part.components() {
            match component {
                Component::ParentDir => {
                    out.pop();
                }
                Component::Normal(c) => out.push(c),
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_linked_and_missing_directories() {
        let tmp = std::env::temp_dir().canonicalize().unwrap();
        let p = tmp.join("no-such-y/./a.log");
        assert_eq!(resolve(&p), tmp.join("no-such-y/a.log"));
        let dir = tmp.join(format!("authmount-guard-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("real")).unwrap();
        let _ = std::fs::remove_file(dir.join("link"));
        std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
        assert_eq!(
            resolve(&dir.join("link/new/a.log")),
            dir.join("real/new/a.log")
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(resolve(Path::new("/")), PathBuf::from("/"));
    }
}
