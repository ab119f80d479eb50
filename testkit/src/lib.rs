//! # authmount-testkit
//!
//! The test support of the authmount workspace, one crate for every test directory
//! (`tests/`, `server/tests/`, `backends/jwt/tests/`), used only as a dev-dependency.
//!
//! Tests assert real behaviour: real keys, real signed tokens, a real server on
//! `127.0.0.1` with an ephemeral port, real clients. Nothing here is hard-coded: every key,
//! root token and directory is made per server or per test.
//!
//! By purpose:
//!
//! * a dev core driven without HTTP ([`InProcess`]), for rule tests;
//! * the same core served over HTTP in this process ([`TestServer`]) with a small Vault client;
//! * the real `authmount` binary: the command line ([`Cli`]) and server processes ([`node`]),
//!   located by the test crate ([`Binary`]); a fresh PostgreSQL database per test
//!   ([`TestDatabase`]);
//! * keys that sign JWTs ([`Key`]) and the seed role of the docs ([`seed_claims`],
//!   [`seed_role`]);
//! * stand-in and real identity providers: a scriptable key server ([`idp`]) and the
//!   OpenID provider of `tests/oidc_provider/` with its browser driver ([`oidc`]);
//! * small things: time and ids ([`now`], [`random_hex`]), temporary directories
//!   ([`TempDir`]), the README's runnable blocks ([`readme_block`]).

mod clock;
mod harness;
pub mod idp;
mod keys;
pub mod node;
pub mod oidc;
mod postgres;
mod process;
mod readme;
mod seed;
mod server;
mod tempdir;
mod vault_http;

pub use clock::{now, random_hex};
pub use harness::InProcess;
pub use keys::{Key, KeyKind};
pub use postgres::{skipped, TestDatabase};
pub use process::{unreachable_address, Binary, Cli, Run};
pub use readme::{readme_block, workspace_root};
pub use seed::{seed_claims, seed_role, SEED_AUDIENCE, SEED_ISSUER, SEED_SUBJECT};
pub use server::{error_message, seed_mount, TestServer};
pub use tempdir::TempDir;
pub use vault_http::{call_at, free_port};
