//! `operator snapshot save FILE` and `operator snapshot restore [-force] FILE`: the
//! snapshot endpoints (`sys/storage/raft/snapshot`, `sys/storage/raft/snapshot-force`) from
//! the command line, quiet on success as Vault's `operator raft snapshot` commands are.
//! Source: Vault `command/operator_raft_snapshot_save.go`, `..._restore.go`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{warn, Ctx};
use crate::cli::args::{SnapshotRestoreArgs, SnapshotSaveArgs};
use crate::cli::Failure;

/// `operator snapshot save FILE`: the snapshot is written to a temporary file beside FILE,
/// synced, then renamed over FILE, so FILE is never half-written. Errors: remote (the
/// server refused: 403 without sudo, 400 for PostgreSQL) or local (FILE cannot be written).
pub async fn save(ctx: &Ctx, args: &SnapshotSaveArgs) -> Result<(), Failure> {
    let file = ctx
        .client
        .read_file("sys/storage/raft/snapshot")
        .await
        .map_err(|e| Failure::Remote(format!("Error taking the snapshot: {e}")))?;
    write_whole(&args.file, &file).map_err(|e| {
        Failure::Local(format!(
            "Error writing the snapshot to {}: {e}",
            args.file.display()
        ))
    })
}

/// Writes `bytes` to `path` (mode 0600) through a synced temporary file renamed over it.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file name"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let written = (|| {
        // Owner only: a snapshot holds token accessors in the clear (values stay sealed).
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        out.write_all(bytes)?;
        out.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// `operator snapshot restore [-force] FILE`: posts FILE to `sys/storage/raft/snapshot`
/// (`snapshot-force` with `-force`); a warning from the server (sealed afterwards) goes to
/// stderr. Errors: local (FILE unreadable), remote (refused: a damaged file, another
/// server's without `-force`, no sudo).
pub async fn restore(ctx: &Ctx, args: &SnapshotRestoreArgs) -> Result<(), Failure> {
    let file = std::fs::read(&args.file).map_err(|e| {
        Failure::Local(format!(
            "Error opening the snapshot file {}: {e}",
            args.file.display()
        ))
    })?;
    if let Some(config) = &args.config {
        return restore_offline(config, file, args.force).await;
    }
    let path = match args.force {
        true => "sys/storage/raft/snapshot-force",
        false => "sys/storage/raft/snapshot",
    };
    let answer = ctx
        .client
        .post_file(path, file)
        .await
        .map_err(|e| Failure::Remote(format!("Error installing the snapshot: {e}")))?;
    if let Some(warnings) = answer.as_ref().and_then(|a| a["warnings"].as_array()) {
        for w in warnings.iter().filter_map(|w| w.as_str()) {
            warn(&format!("WARNING! {w}"));
        }
    }
    Ok(())
}

/// `operator snapshot restore -config=SERVER.hcl -force FILE`: installs FILE into the
/// storage the server config names while no server runs on it (SQLite's lock refuses a
/// running one). Errors: local (no `-force`, an unreadable config, the store locked or
/// refusing images, a damaged file).
async fn restore_offline(config: &Path, file: Vec<u8>, force: bool) -> Result<(), Failure> {
    if !force {
        return Err(Failure::Local(
            "An offline restore cannot check where the snapshot comes from (that needs the \
             root key): add -force to install it; the server then needs the unseal keys (or \
             static key) of the server that made it"
                .into(),
        ));
    }
    let config = crate::config::ServerConfig::load(config).map_err(Failure::Local)?;
    let storage = crate::open_storage(&config.storage)
        .await
        .map_err(|e| Failure::Local(format!("Error opening the storage: {e}")))?;
    let restored = authmount_framework::seal::install_offline(storage.as_ref(), file.into())
        .await
        .map_err(|e| Failure::Local(format!("Error installing the snapshot: {e}")))?;
    println!(
        "Restored {} entries of cluster {} into the stopped server's storage; start it and \
         unseal it with the unseal keys (or static key) of the server that made the snapshot.",
        restored.entries, restored.cluster_id
    );
    Ok(())
}
