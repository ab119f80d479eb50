//! The one error type of the framework and its mapping to HTTP statuses and Vault's
//! `{"errors":[...]}` body.
//!
//! User errors (bad input: 400, 403, 404, 405) and internal faults (500, 503) are separate
//! variants, so a handler says which one it means and the edge never guesses.

use serde_json::{json, Value};

/// A failed request, as Vault reports it.
///
/// | variant | status | body |
/// |---|---|---|
/// | `InvalidRequest` | 400 | `{"errors":["<message>"]}` |
/// | `PermissionDenied` | 403 | `{"errors":["permission denied"]}` |
/// | `AclDenied` | 403 | `{"errors":["1 error occurred:\n\t* permission denied\n\n"]}` |
/// | `Forbidden` | 403 | `{"errors":["<message>"]}` |
/// | `NotFound` | 404 | `{"errors":[]}` (a read or list that found nothing) |
/// | `UnsupportedPath` | 404 | `{"errors":["1 error occurred:\n\t* unsupported path\n\n"]}` inside a mount or the core's tables; `{"errors":["no handler for route \"<path>\". route entry not found."]}` where nothing is mounted |
/// | `UnsupportedOperation` | 405 | `{"errors":["1 error occurred:\n\t* unsupported operation\n\n"]}` |
/// | `MethodNotAllowed` | 405 | `{"errors":[]}` |
/// | `Internal` | 500 | `{"errors":["<message>"]}` |
/// | `Unavailable` | 503 | `{"errors":["<message>"]}` |
///
/// Source: Vault API conventions (`sdk/logical` status mapping).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad input or a refused login: 400 with the message verbatim.
    #[error("{0}")]
    InvalidRequest(String),
    /// No token, an unknown or dead token, a CIDR mismatch, or a token without the right: 403.
    #[error("permission denied")]
    PermissionDenied,
    /// A live token whose policies do not grant the request: 403, in the multi-error shape
    /// Vault's router gives this refusal (a missing or dead token is [`Error::PermissionDenied`]).
    #[error("permission denied")]
    AclDenied,
    /// A refusal with its own message, answered with 403 (e.g. `bad token` on a lookup).
    #[error("{0}")]
    Forbidden(String),
    /// A read or list that found nothing: 404 with an empty error list.
    #[error("not found")]
    NotFound,
    /// A path no route matches: 404.
    #[error("{0}")]
    UnsupportedPath(String),
    /// A verb the path does not support: 405.
    #[error("unsupported operation")]
    UnsupportedOperation,
    /// A verb that an endpoint Vault serves in its HTTP layer (`sys/health`, `sys/init`,
    /// `sys/seal-status`, `sys/unseal`, `sys/seal`, `sys/leader`) does not take: 405 with an
    /// empty error list, answered before any token is looked at.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A fault of the server (storage, a broken invariant): 500.
    #[error("{0}")]
    Internal(String),
    /// The server cannot serve now (storage down, not initialised): 503.
    #[error("{0}")]
    Unavailable(String),
}

/// Shorthand for results in the framework and in backends.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A 400 with this message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidRequest(message.into())
    }

    /// A 500 with this message.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Error::Internal(message.to_string())
    }

    /// The 404 for a path that no path of its mount (or of the core's tables) matches.
    pub fn unsupported_path() -> Self {
        Error::UnsupportedPath("1 error occurred:\n\t* unsupported path\n\n".into())
    }

    /// The 404 for a path under no mount at all.
    pub fn no_route(path: &str) -> Self {
        Error::UnsupportedPath(format!(
            "no handler for route {path:?}. route entry not found."
        ))
    }

    /// The HTTP status code of this error.
    pub fn status(&self) -> u16 {
        match self {
            Error::InvalidRequest(_) => 400,
            Error::PermissionDenied | Error::AclDenied | Error::Forbidden(_) => 403,
            Error::NotFound | Error::UnsupportedPath(_) => 404,
            Error::UnsupportedOperation | Error::MethodNotAllowed => 405,
            Error::Internal(_) => 500,
            Error::Unavailable(_) => 503,
        }
    }

    /// Vault's error body: `{"errors":[...]}`.
    pub fn body(&self) -> Value {
        let errors: Vec<String> = match self {
            Error::NotFound | Error::MethodNotAllowed => vec![],
            Error::UnsupportedOperation | Error::AclDenied => {
                vec![format!("1 error occurred:\n\t* {self}\n\n")]
            }
            other => vec![other.to_string()],
        };
        json!({ "errors": errors })
    }
}
