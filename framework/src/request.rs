//! The request model: what the HTTP edge (or an embedding program) hands to the core.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::{Map, Value};

/// A logical operation, as Vault maps HTTP verbs onto them.
///
/// `GET` is `Read`, `LIST` and `GET ?list=true` are `List`, `POST`/`PUT` are `Update`,
/// `DELETE` is `Delete`. Source: Vault API, "HTTP verbs".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Read one object.
    Read,
    /// List the keys under a path.
    List,
    /// Create or replace (Vault's create and update both arrive here).
    Update,
    /// Delete.
    Delete,
}

impl Operation {
    /// Vault's name of the capability for this operation (`read`, `list`, `update`, `delete`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::List => "list",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// One request to the core.
#[derive(Debug, Clone)]
pub struct Request {
    /// The operation.
    pub operation: Operation,
    /// The path after `/v1/`, without a leading slash, e.g. `auth/jwt/login`.
    pub path: String,
    /// The JSON body (an object; an empty map when there was none).
    pub data: Map<String, Value>,
    /// The Vault token from `X-Vault-Token` or `Authorization: Bearer`.
    pub client_token: Option<String>,
    /// The client's address (the TCP peer), for `token_bound_cidrs`.
    pub remote_addr: Option<IpAddr>,
    /// A help request (`GET <path>?help=1`, any non-empty `help`): the core answers with
    /// the path's help text and OpenAPI description (`{"help", "openapi"}`) instead of
    /// running `operation`. Source: Vault API, "Help".
    pub help: bool,
    /// The caller asks for the answer to be response-wrapped for this long
    /// (`X-Vault-Wrap-TTL`: seconds, or a Go duration such as `"5m"` or `"1h30m"`, or whole
    /// days such as `"2d"`). `None` when not asked for; a zero TTL is `None` too, since Vault
    /// wraps only for a TTL above zero. The edge refuses malformed and negative values with a
    /// 400 before the core sees the request; whether an endpoint may be wrapped, and the
    /// TTL limits of policies, are the core's to decide. Source: Vault API, "Response
    /// Wrapping".
    pub wrap_ttl: Option<Duration>,
    /// The request's id: a fresh UUID v4 from [`Request::new`], or the edge's (so its log
    /// lines carry it). The answer's `request_id` is this id (Vault's envelope member).
    pub request_id: String,
    /// The raw body of a request to an endpoint that takes a file rather than JSON (a
    /// snapshot restore: `POST sys/storage/raft/snapshot`); `None` elsewhere. The edge sends
    /// such a body here as it came, and `data` stays empty.
    pub body: Option<std::sync::Arc<[u8]>>,
}

impl Request {
    /// A request with an empty body, no token and no address.
    pub fn new(operation: Operation, path: impl Into<String>) -> Self {
        Request {
            operation,
            path: path.into(),
            data: Map::new(),
            client_token: None,
            remote_addr: None,
            help: false,
            wrap_ttl: None,
            request_id: uuid::Uuid::new_v4().to_string(),
            body: None,
        }
    }

    /// The same request carrying this raw body (see [`Request::body`]).
    pub fn with_body(mut self, body: impl Into<std::sync::Arc<[u8]>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// The same request with this JSON object as its body (non-objects are ignored).
    pub fn with_data(mut self, data: Value) -> Self {
        if let Value::Object(map) = data {
            self.data = map;
        }
        self
    }

    /// The same request carrying this Vault token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.client_token = Some(token.into());
        self
    }

    /// The same request as a help request (see [`Request::help`]).
    pub fn with_help(mut self) -> Self {
        self.help = true;
        self
    }

    /// The same request asking for its answer wrapped for `ttl` (see [`Request::wrap_ttl`];
    /// a zero `ttl` asks for nothing).
    pub fn with_wrap_ttl(mut self, ttl: Duration) -> Self {
        self.wrap_ttl = Some(ttl).filter(|t| !t.is_zero());
        self
    }

    /// The same request from this client address.
    pub fn with_remote_addr(mut self, addr: IpAddr) -> Self {
        self.remote_addr = Some(addr);
        self
    }
}
