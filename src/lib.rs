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
//!
//! To write an auth method of your own, read [`framework::AuthBackend`] (the tutorial),
//! then the repository's `examples/custom_backend.rs` (API keys in one file) and
//! `examples/embed.rs` (serving it next to JWT from your own program, over HTTP or not).

pub use authmount_framework as framework;
pub use authmount_jwt as jwt;
