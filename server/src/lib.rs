//! # authmount-server
//!
//! The HTTP edge: an actix-web adapter that turns Vault-style HTTP requests into
//! [`authmount_framework::Request`]s for the [`Core`] and writes its [`Reply`](authmount_framework::Reply)s back, plus
//! the `authmount` command line. This is the only crate that speaks HTTP.

pub mod cli;
pub mod config;
pub mod http;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use authmount_framework::{Core, InMemory, Registry, SqlStore, Storage};

use crate::config::{ServerConfig, StorageConfig};

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
    let core = Core::new(Arc::new(InMemory::new()), registry);
    core.dev_init(root_token).await?;
    Ok(Arc::new(core))
}

/// A core on the storage of `config` (SQLite or PostgreSQL), with its lease limits.
/// PostgreSQL is not contacted yet, so the server starts while the database is down.
///
/// Errors: the SQLite file cannot be opened or created; a malformed PostgreSQL URL.
pub async fn open_core(config: &ServerConfig) -> authmount_framework::Result<Arc<Core>> {
    let storage: Arc<dyn Storage> = match &config.storage {
        StorageConfig::Sqlite {
            path,
            sync_every_commit,
        } => Arc::new(SqlStore::sqlite_with(path, *sync_every_commit).await?),
        StorageConfig::Postgres { connection_url } => Arc::new(SqlStore::postgres(connection_url)?),
    };
    Ok(Arc::new(Core::with_limits(
        storage,
        default_registry(),
        config.limits,
    )))
}

/// Where `authmount server` without a config file keeps its SQLite file:
/// `$AUTHMOUNT_DATA_DIR`, else `$XDG_DATA_HOME/authmount`, else `~/.local/share/authmount`,
/// else `./authmount-data`.
pub fn default_data_dir() -> PathBuf {
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

/// Sweeps expired tokens every [`SWEEP_INTERVAL`], for as long as the runtime lives.
pub fn spawn_token_sweep(core: Arc<Core>) {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(SWEEP_INTERVAL);
        loop {
            tick.tick().await;
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
