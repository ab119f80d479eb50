//! Snapshots of the `sys/` path table, at Vault's raft snapshot paths so that Vault's and
//! OpenBao's clients (`bao operator raft snapshot save|restore`) work unchanged:
//!
//! | path | operation | what |
//! |---|---|---|
//! | `sys/storage/raft/snapshot` | read (`GET`) | the snapshot file (binary, `application/octet-stream`) |
//! | `sys/storage/raft/snapshot` | update (`POST`/`PUT`) | restores the file sent as the request body |
//! | `sys/storage/raft/snapshot-force` | update | restores it without checking that it comes from this server |
//!
//! All are root-protected (Vault's `PathsSpecial.Root`): `sudo` besides `read`/`update`.
//! Like every `sys/` path but the status ones, they answer 503 while sealed.
//!
//! A restore answers 204 (Vault's answer), or 200 with a warning when the server is sealed
//! afterwards (a forced restore of another server's snapshot). After it, nothing read from
//! storage before is trusted: the mount table and parsed objects are checked against
//! storage on every use anyway ([`crate::cache::Cached`]); the keyring is read again by the
//! seal; the token store's keys, the identity index key and the "initialized" flag are
//! forgotten here ([`crate::cache::Loaded`]).
//!
//! The file format is [`crate::snapshot`]; the checks are [`crate::seal::Seal::restore`]'s.
//! PostgreSQL stores answer 400 naming `pg_dump` (see `docs/backups.md`).
//!
//! Source: Vault API `sys/storage/raft/snapshot`, `sys/storage/raft/snapshot-force`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::CoreInner;
use crate::backend::BackendRequest;
use crate::error::{Error, Result};
use crate::path::Path;
use crate::response::{Reply, Response};

/// The `Content-Type` of a snapshot file.
pub const SNAPSHOT_CONTENT_TYPE: &str = "application/octet-stream";

/// The snapshot entries of the `sys/` path table.
pub(super) fn paths(core: &Weak<CoreInner>) -> Vec<Path> {
    vec![
        Path::new("storage/raft/snapshot")
            .help("GET: a consistent snapshot of the whole store (values still encrypted under the seal), as a file. POST the file as the request body to restore it: the whole store is replaced at once, only by a snapshot made by this server. Root-protected (sudo).")
            .sudo()
            .read(core, CoreInner::save_snapshot)
            .update(core, CoreInner::restore_snapshot),
        Path::new("storage/raft/snapshot-force")
            .help("POST a snapshot file as the request body to restore it even when it was made by another server (then this server is sealed until it is given that server's unseal keys or static key). Root-protected (sudo).")
            .sudo()
            .update(core, CoreInner::force_restore_snapshot),
    ]
}

impl CoreInner {
    /// `GET sys/storage/raft/snapshot`. Errors: 400 for a PostgreSQL store (use `pg_dump`);
    /// 503 when storage does not answer.
    async fn save_snapshot(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        let file = self.seal.snapshot().await?;
        Ok(Response::raw(Reply::raw_binary(
            200,
            SNAPSHOT_CONTENT_TYPE,
            &file,
        )))
    }

    /// `POST sys/storage/raft/snapshot`.
    async fn restore_snapshot(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        self.restore(req, false).await
    }

    /// `POST sys/storage/raft/snapshot-force`.
    async fn force_restore_snapshot(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        self.restore(req, true).await
    }

    /// Restores the request body. Errors: 400 for no body or a file refused by
    /// [`crate::seal::Seal::restore`] (nothing is changed then).
    async fn restore(&self, req: BackendRequest, force: bool) -> Result<Response> {
        let body = req.body.filter(|b| !b.is_empty()).ok_or_else(|| {
            Error::invalid("no snapshot: send the snapshot file as the request body")
        })?;
        let restored = self.seal.restore(body, force).await?;
        self.initialized.store(false, Ordering::Release);
        self.identity.forget_cached();
        self.tokens.forget_cached();
        if restored.sealed {
            return Ok(Response::warnings(vec![format!(
                "the snapshot of cluster {} is restored; this server's root key does not open \
                 its keyring, so the server is now sealed: unseal it with the unseal keys (or \
                 the static key) of the server that made the snapshot",
                restored.cluster_id
            )]));
        }
        Ok(Response::default())
    }
}
