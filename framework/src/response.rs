//! The response model: what a backend returns, and the reply the core hands back to the
//! edge (status plus Vault's JSON envelope).

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a handler returns on success.
///
/// An empty response (no data, no auth, no warnings) becomes 204 No Content; anything else
/// becomes 200 with Vault's envelope. Build it with [`Response::data`], [`Response::login`],
/// [`Response::warnings`] or `Response::default()` (204). Source: Vault API conventions.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Response {
    /// The `data` object.
    pub data: Option<Map<String, Value>>,
    /// Set by a login: who logged in and with which token parameters. The core turns it
    /// into a token; backends never create tokens themselves.
    pub auth: Option<Auth>,
    /// Warnings shown to the client.
    pub warnings: Vec<String>,
    /// The core's own answers that are not in the envelope (help, health, the OpenAPI
    /// document): sent as they are.
    pub(crate) raw: Option<Reply>,
    /// The `auth` block of a token the token store issued itself (`auth/token/create`).
    pub(crate) issued: Option<Value>,
}

impl Response {
    /// A response with this `data` object.
    pub fn data(data: Map<String, Value>) -> Self {
        Response {
            data: Some(data),
            ..Response::default()
        }
    }

    /// A login's response: the core turns `auth` into a token.
    pub fn login(auth: Auth) -> Self {
        Response {
            auth: Some(auth),
            ..Response::default()
        }
    }

    /// A response carrying only these warnings (200 when non-empty, else 204).
    pub fn warnings(warnings: Vec<String>) -> Self {
        Response {
            warnings,
            ..Response::default()
        }
    }

    /// True when the response carries nothing (answered with 204).
    pub fn is_empty(&self) -> bool {
        self.data.is_none()
            && self.auth.is_none()
            && self.warnings.is_empty()
            && self.raw.is_none()
            && self.issued.is_none()
    }

    /// A reply sent as it is, without the envelope.
    pub(crate) fn raw(reply: Reply) -> Self {
        Response {
            raw: Some(reply),
            ..Response::default()
        }
    }

    /// `data` from a JSON object literal (anything else gives no data).
    pub(crate) fn json(data: Value) -> Self {
        match data {
            Value::Object(map) => Response::data(map),
            _ => Response::default(),
        }
    }
}

/// The result of a successful login, as a backend reports it.
///
/// Source: Vault `logical.Auth` as filled by the JWT method (reference §4.7).
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// The identity alias: its name (e.g. the user claim) and metadata.
    pub alias: Alias,
    /// Names of the group aliases (from `groups_claim`).
    pub group_aliases: Vec<String>,
    /// Token metadata (`meta` on lookup; `auth.metadata` in the login answer).
    pub metadata: BTreeMap<String, String>,
    /// Data the backend needs back at renewal (e.g. the role name); never shown to clients.
    pub internal_data: Map<String, Value>,
    /// Token parameters.
    pub token: TokenParams,
}

/// An identity alias: a name unique per mount, plus metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Alias {
    /// The alias name (for JWT: the user claim's value).
    pub name: String,
    /// Alias metadata.
    pub metadata: BTreeMap<String, String>,
}

/// The kind of token a login asks for. Source: Vault role field `token_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// The mount's default (service).
    #[default]
    Default,
    /// A stored, renewable token with an accessor.
    Service,
    /// A self-contained, encrypted token: not stored, not renewable, no accessor.
    Batch,
}

impl TokenType {
    /// Vault's name: `default`, `service` or `batch`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Default => "default",
            TokenType::Service => "service",
            TokenType::Batch => "batch",
        }
    }
}

/// The `token_*` parameters a role gives its tokens; durations in seconds, 0 = unset.
///
/// Source: Vault `sdk/helper/tokenutil` (reference §3.2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenParams {
    /// `token_policies`.
    pub policies: Vec<String>,
    /// `token_ttl`: 0 means the mount's default lease TTL.
    pub ttl: i64,
    /// `token_max_ttl`: 0 means the mount's max lease TTL.
    pub max_ttl: i64,
    /// `token_explicit_max_ttl`: a hard cap, 0 = none.
    pub explicit_max_ttl: i64,
    /// `token_period`: periodic tokens, 0 = not periodic.
    pub period: i64,
    /// `token_num_uses`: 0 = unlimited.
    pub num_uses: i64,
    /// `token_no_default_policy`.
    pub no_default_policy: bool,
    /// `token_bound_cidrs`: the addresses the token may be used from.
    pub bound_cidrs: Vec<IpNet>,
    /// `token_type`.
    pub token_type: TokenType,
}

/// The core's answer: an HTTP status and an optional JSON body (none for 204).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// JSON body; `None` for 204 No Content.
    pub body: Option<Value>,
}

impl Reply {
    /// 204 No Content.
    pub fn no_content() -> Self {
        Reply {
            status: 204,
            body: None,
        }
    }

    /// 200 with this body.
    pub fn ok(body: Value) -> Self {
        Reply {
            status: 200,
            body: Some(body),
        }
    }

    /// The reply for an error: its status and `{"errors":[...]}`.
    pub fn error(err: &crate::Error) -> Self {
        Reply {
            status: err.status(),
            body: Some(err.body()),
        }
    }
}
