//! # authmount-framework
//!
//! The parts every auth method shares: the [`AuthBackend`] trait, endpoints declared as data
//! ([`Path`], [`Field`], [`FieldData`]), the standard token parameters ([`tokenutil`]),
//! Vault's request/response model, one [`Error`] type mapped to HTTP statuses, the mount
//! table, storage with per-mount views and exact caches ([`Cached`]), the token store
//! and the identity store, all driven by [`Core`].
//!
//! The public surface is what an embedder names: the items re-exported here, and the modules
//! [`audit`] (audit devices declared in a server's configuration), [`duration`] (Vault's
//! duration syntax), [`metrics`] (the counters a backend records), [`policy`] (ACL policies),
//! [`seal`] (the barrier and its keys), [`storage`] and [`tokenutil`].
//!
//! The framework never speaks HTTP: an edge (the `authmount` server, or your own program)
//! builds a [`Request`], calls [`Core::handle`] and writes out the [`Reply`].

#![forbid(unsafe_code)]
// A type in a public signature must be nameable: re-export it below, or keep it internal.
#![warn(unnameable_types)]

pub mod audit;
pub(crate) mod backend;
pub(crate) mod cache;
pub(crate) mod clock;
pub(crate) mod core;
pub mod duration;
pub(crate) mod error;
pub(crate) mod identity;
pub mod metrics;
pub(crate) mod mount;
pub(crate) mod openapi;
pub(crate) mod path;
pub mod policy;
pub(crate) mod request;
pub(crate) mod response;
pub mod seal;
pub(crate) mod snapshot;
pub mod storage;
pub(crate) mod token;
pub mod tokenutil;

// What an embedder names: writing a backend (the trait, its context and requests, path
// tables, responses, errors), driving a core (requests in, replies out), and the helpers a
// backend uses (clock, caches, storage). Everything else stays inside the crate.
pub use crate::backend::{
    AuthBackend, BackendContext, BackendRequest, Factory, MountInfo, Registry, RenewRequest,
};
pub use crate::cache::{Cached, Loaded};
pub use crate::clock::{Clock, Mark};
pub use crate::core::{Caller, Core, LeaseLimits};
pub use crate::error::{Error, Result};
pub use crate::path::{Field, FieldData, FieldType, HandlerState, Path};
pub use crate::request::{Operation, Request};
pub use crate::response::{Alias, Auth, Reply, Response, TokenParams, TokenType};
pub use crate::storage::{InMemory, SqlStore, Storage, View};
pub use crate::token::{TokenEntry, REVOCATION_PENDING};
