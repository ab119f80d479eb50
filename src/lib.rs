//! # authmount
//!
//! A server that speaks HashiCorp Vault's HTTP API for auth methods, and a framework to
//! embed auth methods in your own Rust programs. This crate is the facade:
//!
//! * [`framework`]: the `AuthBackend` trait, path tables, request/response model, storage,
//!   token and identity stores, and the `Core` that drives them;
//! * [`jwt`]: Vault's JWT auth method as a backend.
//!
//! The `authmount` binary (crate `authmount-server`) serves them over HTTP.

pub use authmount_framework as framework;
pub use authmount_jwt as jwt;
