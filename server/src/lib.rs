//! # authmount-server
//!
//! The HTTP edge: an actix-web adapter that turns Vault-style HTTP requests into
//! [`authmount_framework::Request`]s for the [`Core`] and writes its [`Reply`](authmount_framework::Reply)s back, plus
//! the `authmount` command line. This is the only crate that speaks HTTP.

// A type in a public signature must be nameable: re-export it, or keep the item internal.
#![warn(unnameable_types)]
pub(crate) mod cli;
pub(crate) mod config;
mod entry;
pub mod http;
pub(crate) mod logging;

pub use crate::entry::main;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use authmount_framework::seal::{random_key, SealKind, StaticKey, CONFIG_KEY};
use authmount_framework::{Clock, Core, InMemory, LeaseLimits, Registry, SqlStore, Storage};

use crate::config::{KeySource, SealConfig, ServerConfig, StorageConfig, EMBEDDED_KEY_ID};

/// The registry of backend types this server mounts: `jwt` and `oidc`.
pub fn default_registry() -> Registry {
    let mut registry = Registry::new();
    authmount_jwt::register(&mut registry);
    registry
}

/// A core on in-memory storage (dev mode and tests) with a root token of the given id.
///
/// Errors: only internal faults of the in-memory store.
pub async fn dev_core(root_token: &str) -> authmount_framework::Result<Arc<Core>> {
    dev_core_with(default_registry(), root_token).await
}

/// [`dev_core`] mounting the backend types of `registry` (e.g. [`default_registry`] plus
/// your own, see `examples/embed.rs`).
///
/// Errors: only internal faults of the in-memory store.
pub async fn dev_core_with(
    registry: Registry,
    root_token: &str,
) -> authmount_framework::Result<Arc<Core>> {
    Ok(dev_core_and_key(registry, root_token).await?.0)
}

/// The dev server's core: in-memory storage behind the seal's barrier, initialized with one
/// Shamir unseal key (a random root key kept in memory only) and unsealed, with a root token
/// of the given id. Returns the core and the unseal key (base64), which `sys/unseal` takes
/// after a `sys/seal`.
///
/// Errors: only internal faults of the in-memory store.
pub async fn dev_core_and_key(
    registry: Registry,
    root_token: &str,
) -> authmount_framework::Result<(Arc<Core>, String)> {
    dev_core_on(registry, root_token, Clock::system()).await
}

/// [`dev_core_and_key`] reading `clock` for every time rule (tests pass a
/// [`Clock::manual`] and advance it instead of sleeping).
///
/// Errors: only internal faults of the in-memory store.
pub async fn dev_core_on(
    registry: Registry,
    root_token: &str,
    clock: Clock,
) -> authmount_framework::Result<(Arc<Core>, String)> {
    let core = Core::build(
        Arc::new(InMemory::new()),
        registry,
        LeaseLimits::default(),
        clock,
        SealKind::Shamir,
    );
    let key = core.dev_init(root_token).await?.unwrap_or_default();
    Ok((Arc::new(core), key))
}

/// A core on the storage of `config` (SQLite or PostgreSQL), with its lease limits and its
/// seal (not yet started: see [`Core::start`]). PostgreSQL is not contacted yet, so the
/// server starts while the database is down.
///
/// Errors: the SQLite file cannot be opened or created; a malformed PostgreSQL URL; a
/// static key that cannot be read or is not a 32-byte key; the embedded key file missing
/// while the storage is sealed with it.
pub(crate) async fn open_core(config: &ServerConfig) -> Result<Arc<Core>, String> {
    // Key files are read before the storage is opened, so a missing or bad key stops the start
    // before anything (a new SQLite file) is created.
    let configured_seal = configured_seal(&config.seal)?;
    let storage = open_storage(&config.storage).await?;
    let seal = match (configured_seal, &config.seal) {
        (Some(seal), _) => seal,
        (None, SealConfig::KeyFile(path)) => SealKind::Static {
            current: embedded_key(path, &storage).await?,
            previous: None,
        },
        (None, _) => return Err("the seal configuration names no root key source".into()),
    };
    Ok(Arc::new(Core::build(
        storage,
        default_registry(),
        config.limits,
        Clock::system(),
        seal,
    )))
}

/// The store a config's `storage` block names. SQLite is opened exclusively: while a server
/// runs on the file, another open is refused. Errors: the file cannot be opened, created or
/// locked; a malformed PostgreSQL URL.
pub(crate) async fn open_storage(storage: &StorageConfig) -> Result<Arc<dyn Storage>, String> {
    Ok(match storage {
        StorageConfig::Sqlite {
            path,
            sync_every_commit,
        } => Arc::new(
            SqlStore::sqlite_exclusive(path, *sync_every_commit)
                .await
                .map_err(|e| e.to_string())?,
        ),
        StorageConfig::Postgres { connection_url } => {
            Arc::new(SqlStore::postgres(connection_url).map_err(|e| e.to_string())?)
        }
    })
}

/// The seal a config names, read without the storage: Shamir, or the static keys read from
/// their sources. `None` for the embedded key file, which is read or made once the storage says
/// whether it is sealed already ([`embedded_key`]). Errors name the key and the file or variable.
fn configured_seal(seal: &SealConfig) -> Result<Option<SealKind>, String> {
    let load = |id: &str, source: &KeySource, which: &str| -> Result<StaticKey, String> {
        let material = zeroize::Zeroizing::new(
            source
                .read()
                .map_err(|e| format!("seal \"static\": {which}: {e}"))?,
        );
        StaticKey::parse(id, &material).map_err(|e| format!("seal \"static\": {which}: {e}"))
    };
    match seal {
        SealConfig::Shamir => Ok(Some(SealKind::Shamir)),
        SealConfig::Static {
            current_key_id,
            current_key,
            previous,
        } => Ok(Some(SealKind::Static {
            current: load(current_key_id, current_key, "current_key")?,
            previous: match previous {
                Some((id, source)) => Some(load(id, source, "previous_key")?),
                None => None,
            },
        })),
        SealConfig::KeyFile(_) => Ok(None),
    }
}

/// The embedded server's key: read from `path`, or made there when the storage has no seal.
async fn embedded_key(path: &Path, storage: &Arc<dyn Storage>) -> Result<StaticKey, String> {
    match std::fs::read(path) {
        Ok(material) => {
            let material = zeroize::Zeroizing::new(material);
            StaticKey::parse(EMBEDDED_KEY_ID, &material)
                .map_err(|e| format!("the seal key file {}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let sealed = storage
                .get(CONFIG_KEY)
                .await
                .map_err(|e| format!("cannot read the storage: {e}"))?
                .is_some();
            if sealed {
                return Err(format!(
                    "the seal key file {} is missing, but this storage is sealed with it: \
                     restore the key file from its backup (kept apart from the database); \
                     without it the data cannot be read",
                    path.display()
                ));
            }
            let key = StaticKey::new(EMBEDDED_KEY_ID, random_key());
            write_key_file(path, key.to_hex().as_bytes())
                .map_err(|e| format!("cannot create the seal key file {}: {e}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(format!(
            "cannot read the seal key file {}: {e}",
            path.display()
        )),
    }
}

/// Writes a new key file readable by its owner only: a temporary file, synced, then renamed
/// into place, so a crash never leaves a partial key.
fn write_key_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    if let Err(e) = written.and_then(|_| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Some(dir) = dir {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Where `authmount server` without a config file keeps its SQLite file:
/// `$AUTHMOUNT_DATA_DIR`, else `$XDG_DATA_HOME/authmount`, else `~/.local/share/authmount`,
/// else `./authmount-data`.
pub(crate) fn default_data_dir() -> PathBuf {
    let env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("AUTHMOUNT_DATA_DIR")
        .or_else(|| env("XDG_DATA_HOME").map(|d| d.join("authmount")))
        .or_else(|| env("HOME").map(|h| h.join(".local/share/authmount")))
        .unwrap_or_else(|| PathBuf::from("authmount-data"))
}

/// How often expired tokens are swept from storage.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Sweeps expired tokens every [`SWEEP_INTERVAL`] (skipped while sealed), for as long as
/// the runtime lives.
pub fn spawn_token_sweep(core: Arc<Core>) {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(SWEEP_INTERVAL);
        loop {
            tick.tick().await;
            if core.is_sealed() {
                continue; // nothing can be read until an operator unseals
            }
            match core.sweep_expired_tokens().await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(target: "authmount::server", removed = n, "swept expired tokens")
                }
                Err(e) => {
                    tracing::warn!(target: "authmount::server", error = %e, "token sweep failed")
                }
            }
        }
    });
}
