//! # authmount-framework
//!
//! The parts every auth method shares: the [`AuthBackend`] trait, paths declared as data
//! ([`PathSpec`], [`Router`], [`FieldData`]), Vault's request/response model, one
//! [`Error`] type mapped to HTTP statuses, the mount table, storage with per-mount views,
//! the token store and the identity store, all driven by [`Core`].
//!
//! The framework never speaks HTTP: an edge (the `authmount` server, or your own program)
//! builds a [`Request`], calls [`Core::handle`] and writes out the [`Reply`].

pub mod backend;
pub mod core;
pub mod duration;
pub mod error;
pub mod identity;
pub mod mount;
pub mod openapi;
pub mod path;
pub mod policy;
pub mod request;
pub mod response;
pub mod seal;
pub mod storage;
pub mod token;

pub use crate::backend::{AuthBackend, BackendRequest, Factory, MountInfo, Registry, RenewRequest};
pub use crate::core::{Core, LeaseLimits};
pub use crate::error::{Error, Result};
pub use crate::path::{Field, FieldData, FieldType, PathSpec, Router};
pub use crate::request::{Operation, Request};
pub use crate::response::{Alias, Auth, Reply, Response, TokenParams, TokenType};
pub use crate::storage::{InMemory, SqlStore, Storage, View};
