//! Snapshots of the physical store, made and installed by the seal manager: it holds the
//! root key that proves a snapshot's origin, and the keyring that must follow a restore.
//!
//! * [`Seal::snapshot`]: one consistent image of the physical store
//!   ([`Storage::export`](crate::storage::Storage::export)), values still barrier ciphertext,
//!   with its checksums sealed under the root key ([`crate::snapshot`] has the file format).
//! * [`Seal::restore`]: checks the file (truncated, corrupted, another format: 400, nothing
//!   changed), then its origin as Vault's `sys/storage/raft/snapshot` does: unless forced, the
//!   snapshot must come from this server (same cluster id) and its sealed checksums must
//!   open with this server's root key, else 400 naming `snapshot-force`. A snapshot made
//!   under another kind of seal is refused even when forced (this server could never unseal
//!   it). The image replaces the whole store in one transaction; then the keyring is read
//!   again from the restored seal document: when this server's root key opens it the server
//!   stays unsealed, else (a forced restore from another server) it is sealed and waits for
//!   the unseal keys (or the static key) of the server the snapshot came from.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::{aead_open, aead_seal, KeyBytes, Seal, SealDoc, SealKind, Unsealed, CONFIG_KEY};
use crate::error::{Error, Result};
use crate::snapshot::{self, Meta, SealedSums};

/// One restore at a time in this process: each holds a whole decompressed snapshot (up to
/// [`snapshot::MAX_UNPACKED_BYTES`]) in memory.
static RESTORES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// What a restore did.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    /// How many physical entries the store now holds.
    pub entries: usize,
    /// The cluster id the snapshot came from.
    pub cluster_id: String,
    /// True when the snapshot came from another server (a forced restore).
    pub from_other_server: bool,
    /// True when the server is sealed after the restore (this server's root key does not
    /// open the restored keyring).
    pub sealed: bool,
}

fn sums_aad(kind: &str, root_key_id: &str, cluster_id: &str) -> Vec<u8> {
    format!("authmount snapshot sums v1|{kind}|{root_key_id}|{cluster_id}").into_bytes()
}

/// The seal document inside an image, if any. Errors: 400 when it does not parse.
fn doc_in(entries: &[(String, Vec<u8>)]) -> Result<Option<SealDoc>> {
    let Ok(at) = entries.binary_search_by(|(k, _)| k.as_str().cmp(CONFIG_KEY)) else {
        return Ok(None);
    };
    serde_json::from_slice(&entries[at].1)
        .map(Some)
        .map_err(|e| {
            Error::invalid(format!(
                "the snapshot's seal document ({CONFIG_KEY}) does not parse: {e}"
            ))
        })
}

/// Installs a snapshot into a store no server is running on (an offline restore, e.g. a
/// lost server rebuilt from its last snapshot): the file is checked as
/// [`Seal::restore`] checks it (truncated, corrupted, another format, header and seal
/// document naming different clusters: 400), then replaces the whole store in one
/// transaction. Its origin cannot be proven without the root key, so this is always a
/// forced restore: the server started on the store afterwards needs the unseal keys (or
/// static key) of the server that made the snapshot. Errors: those of the file checks and
/// of [`Storage::import`](crate::storage::Storage::import) (PostgreSQL: 400 naming
/// `pg_restore`).
pub async fn install_offline(
    storage: &dyn crate::storage::Storage,
    bytes: Arc<[u8]>,
) -> Result<Restored> {
    let snap = tokio::task::spawn_blocking(move || snapshot::read(&bytes))
        .await
        .map_err(|e| Error::internal(format!("snapshot check failed: {e}")))??;
    let doc = doc_in(&snap.entries)?;
    if doc
        .as_ref()
        .is_some_and(|d| d.cluster_id != snap.meta.cluster_id)
    {
        return Err(Error::invalid(
            "the snapshot's header and its seal document name different clusters: a \
             corrupted or altered file. Nothing was restored",
        ));
    }
    let current = match storage.get(CONFIG_KEY).await? {
        Some(bytes) => serde_json::from_slice::<SealDoc>(&bytes)
            .ok()
            .map(|d| d.cluster_id),
        None => None,
    };
    storage.import(&snap.entries).await?;
    Ok(Restored {
        entries: snap.entries.len(),
        from_other_server: current.as_deref() != Some(snap.meta.cluster_id.as_str()),
        cluster_id: snap.meta.cluster_id,
        sealed: doc.is_some(),
    })
}

impl Seal {
    /// The root keys that may have sealed something of this server: the one in memory, and
    /// for a static seal the previous key too.
    fn root_candidates(&self) -> Result<Vec<(String, KeyBytes)>> {
        let mut keys = vec![(String::new(), self.current_root()?)];
        if let SealKind::Static { current, previous } = &self.kind {
            keys[0].0 = current.id.clone();
            keys.extend(previous.iter().map(|p| (p.id.clone(), p.key.clone())));
        }
        Ok(keys)
    }

    /// A snapshot of the whole physical store (see the module documentation), made from one
    /// consistent image while writes go on. Errors: 503 while sealed (the checksums are
    /// sealed under the root key) or when storage does not answer; 400 for a store that does
    /// not make images (PostgreSQL: use `pg_dump`).
    pub async fn snapshot(&self) -> Result<Vec<u8>> {
        let root = match self.is_plain() {
            true => None,
            false => Some(self.current_root()?),
        };
        let entries = self.physical().export().await?;
        let doc = doc_in(&entries)?;
        let meta = Meta {
            format: snapshot::FORMAT.into(),
            version: snapshot::VERSION,
            cluster_id: doc
                .as_ref()
                .map(|d| d.cluster_id.clone())
                .unwrap_or_default(),
            seal_type: self.kind.name().into(),
            storage_type: self.physical().type_name().into(),
            created: self.clock.unix(),
            entries: 0,
        };
        let cluster_id = meta.cluster_id.clone();
        snapshot::write(meta, &entries, |sums| match (&root, &doc) {
            (Some(root), Some(doc)) => Ok(SealedSums {
                seal_type: doc.kind.clone(),
                root_key_id: doc.root_key_id.clone(),
                sealed: BASE64.encode(aead_seal(
                    root,
                    &sums_aad(&doc.kind, &doc.root_key_id, &cluster_id),
                    sums,
                )?),
            }),
            (None, None) => Ok(SealedSums {
                seal_type: "none".into(),
                root_key_id: String::new(),
                sealed: BASE64.encode(sums),
            }),
            _ => Err(Error::internal(
                "the store's seal document does not fit the server's seal",
            )),
        })
    }

    /// Installs a snapshot made by [`Seal::snapshot`] (see the module documentation for
    /// the checks and what follows). `force` (Vault's `snapshot-force`) skips the origin
    /// checks only. Errors (400, nothing changed): a truncated, corrupted or foreign file; a
    /// snapshot from another server without `force`; a snapshot made under another kind of
    /// seal. 503 while sealed or when storage does not answer (the transaction is rolled
    /// back: the store is as it was).
    pub async fn restore(&self, bytes: Arc<[u8]>, force: bool) -> Result<Restored> {
        let candidates = match self.is_plain() {
            true => Vec::new(),
            false => self.root_candidates()?,
        };
        // Decompressing and checking is CPU work: off the request workers, one at a time.
        let _one_at_a_time = RESTORES
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("snapshot restores are shut down".into()))?;
        let snap = tokio::task::spawn_blocking(move || snapshot::read(&bytes))
            .await
            .map_err(|e| Error::internal(format!("snapshot check failed: {e}")))??;
        let doc = doc_in(&snap.entries)?;
        let here = self.kind.name();
        match &doc {
            Some(doc) if doc.cluster_id != snap.meta.cluster_id => {
                return Err(Error::invalid(
                    "the snapshot's header and its seal document name different clusters: \
                     a corrupted or altered file. Nothing was restored",
                ))
            }
            Some(doc) if doc.kind != here => {
                return Err(Error::invalid(format!(
                    "the snapshot was made by a server with a {} seal; this server has a \
                     {here} seal and could never unseal it. Nothing was restored",
                    doc.kind
                )))
            }
            None if !self.is_plain() => {
                return Err(Error::invalid(
                    "the snapshot holds no seal (made by a core without one); this server \
                     has a seal. Nothing was restored",
                ))
            }
            Some(_) if self.is_plain() => {
                return Err(Error::invalid(
                    "the snapshot was made by a sealed server; this core has no seal. \
                     Nothing was restored",
                ))
            }
            _ => {}
        }
        let current = self.status().await?.cluster_id.unwrap_or_default();
        let same_cluster = current == snap.meta.cluster_id;
        let verified = same_cluster && self.sums_open(&snap, &candidates);
        if !verified && !force {
            let why = match same_cluster {
                false => format!(
                    "it was made by another server (cluster id {:?}; this server's is {current:?})",
                    snap.meta.cluster_id
                ),
                true => "its checksums are not sealed with this server's root key".to_string(),
            };
            return Err(Error::invalid(format!(
                "could not verify hash file, possibly the snapshot is using a different set of \
                 unseal keys: {why}. Restore it with sys/storage/raft/snapshot-force \
                 (`authmount operator snapshot restore -force`) to install it anyway; this server \
                 then needs the unseal keys (or static key) of the server that made it. Nothing \
                 was restored"
            )));
        }
        let _guard = self.unseal_lock.lock().await;
        self.physical().import(&snap.entries).await?;
        let sealed = match doc {
            None => false,
            Some(doc) => !self.reload_keyring(&doc, &candidates).await,
        };
        tracing::warn!(
            target: "authmount::seal",
            entries = snap.entries.len(),
            cluster_id = %snap.meta.cluster_id,
            forced = force,
            sealed,
            "storage restored from a snapshot"
        );
        Ok(Restored {
            entries: snap.entries.len(),
            cluster_id: snap.meta.cluster_id,
            from_other_server: !same_cluster,
            sealed,
        })
    }

    /// Whether the snapshot's `SHA256SUMS.sealed` opens, under one of `candidates`, to its
    /// `SHA256SUMS`.
    fn sums_open(&self, snap: &snapshot::Snapshot, candidates: &[(String, KeyBytes)]) -> bool {
        let Ok(sealed) = BASE64.decode(&snap.sealed_sums.sealed) else {
            return false;
        };
        if self.is_plain() {
            return snap.sealed_sums.seal_type == "none" && sealed == snap.sums;
        }
        let aad = sums_aad(
            &snap.sealed_sums.seal_type,
            &snap.sealed_sums.root_key_id,
            &snap.meta.cluster_id,
        );
        candidates
            .iter()
            .any(|(_, root)| aead_open(root, &aad, &sealed).is_some_and(|sums| *sums == snap.sums))
    }

    /// After an import: the restored keyring opened with one of this server's root keys
    /// (installed, sealed anew under the current static key when an older one opened it);
    /// false, and the server sealed, when none opens it.
    async fn reload_keyring(&self, doc: &SealDoc, candidates: &[(String, KeyBytes)]) -> bool {
        for (id, root) in candidates {
            let Ok(Some(keyring)) = doc.open_keyring(root) else {
                continue;
            };
            if let SealKind::Static { current, .. } = &self.kind {
                let stale = *id != current.id || doc.root_key_id != current.id;
                if stale && self.rewrap(doc, &keyring, current).await.is_err() {
                    break;
                }
            }
            let installed = self.barrier.install(Unsealed {
                keyring,
                root_key: candidates[0].1.clone(),
            });
            return installed.is_ok();
        }
        self.barrier.clear();
        if let Ok(mut progress) = self.progress.lock() {
            *progress = Default::default();
        }
        false
    }
}
