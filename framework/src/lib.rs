//! # authmount-framework
//!
//! The parts every auth method shares: the [`AuthBackend`] trait, endpoints declared as data
//! ([`Path`], [`Router`], [`FieldData`]), the standard token parameters ([`tokenutil`]),
//! Vault's request/response model, one [`Error`] type mapped to HTTP statuses, the mount
//! table, storage with per-mount views and exact caches ([`cache::Cached`]), the token store
//! and the identity store, all driven by [`Core`].
//!
//! The framework never speaks HTTP: an edge (the `authmount` server, or your own program)
//! builds a [`Request`], calls [`Core::handle`] and writes out the [`Reply`].

#![forbid(unsafe_code)]

pub mod audit;
pub mod backend;
pub mod cache;
pub mod clock;
pub mod core;
pub mod duration;
pub mod error;
pub mod identity;
pub mod metrics;
pub mod mount;
pub mod openapi;
pub mod path;
pub mod policy;
pub mod request;
pub mod response;
pub mod seal;
pub mod snapshot;
pub mod storage;
pub mod token;
pub mod tokenutil;

pub use crate::backend::{
    AuthBackend, BackendContext, BackendRequest, Factory, MountInfo, Registry, RenewRequest,
};
pub use crate::clock::Clock;
pub use crate::core::{Caller, Core, LeaseLimits};
pub use crate::error::{Error, Result};
pub use crate::path::{Field, FieldData, FieldType, Path, Router};
pub use crate::request::{Operation, Request};
pub use crate::response::{Alias, Auth, Reply, Response, TokenParams, TokenType};
pub use crate::storage::{InMemory, SqlStore, Storage, View};
