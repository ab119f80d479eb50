//! # authmount-server
//!
//! The HTTP edge: an actix-web adapter that turns Vault-style HTTP requests into
//! [`authmount_framework::Request`]s for the [`Core`] and writes its [`Reply`](authmount_framework::Reply)s back, plus
//! the `authmount` command line. This is the only crate that speaks HTTP.

pub mod cli;
pub mod http;

use std::sync::Arc;

use authmount_framework::{Core, InMemory, Registry};

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
    core.dev_root_token(root_token).await?;
    Ok(Arc::new(core))
}
