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
/// [`Response::warnings`] or `Response::default()` (204); a page for a browser, outside the
/// envelope, with [`Response::raw_body`]. Source: Vault API conventions.
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
    /// An answer already in Vault's envelope (an unwrapped answer): sent with a fresh
    /// `request_id`, and wrapped again when the caller asks for it.
    pub(crate) envelope: Option<Value>,
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

    /// A reply outside Vault's envelope: `body` sent as it is, with this HTTP status and
    /// `Content-Type` (an HTML page for a browser, say: the OIDC method's form_post answer).
    /// Nothing else of the response is used, no token is issued, and no warnings are added.
    ///
    /// Vault's equivalent is a response whose data holds `http_status_code`,
    /// `http_content_type` and `http_raw_body`, which its HTTP layer sends raw; the core's
    /// [`Reply`] carries exactly those three members (see [`Reply::raw_body`]), so an
    /// embedder that serves [`Reply`]s itself sees the same convention.
    ///
    /// ```
    /// # use authmount_framework::Response;
    /// let page = Response::raw_body(200, "text/html; charset=utf-8", "<p>Signed in</p>");
    /// assert!(!page.is_empty());
    /// ```
    pub fn raw_body(status: u16, content_type: &str, body: impl Into<String>) -> Self {
        Response::raw(Reply::raw_body(status, content_type, body))
    }

    /// True when the response carries nothing (answered with 204).
    pub fn is_empty(&self) -> bool {
        self.data.is_none()
            && self.auth.is_none()
            && self.warnings.is_empty()
            && self.raw.is_none()
            && self.issued.is_none()
            && self.envelope.is_none()
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

/// Vault's names of a raw response's members (`logical.HTTPStatusCode`,
/// `logical.HTTPContentType`, `logical.HTTPRawBody`).
const RAW_STATUS: &str = "http_status_code";
const RAW_CONTENT_TYPE: &str = "http_content_type";
const RAW_BODY: &str = "http_raw_body";
/// The member that holds a binary raw body, base64 (Vault's JSON form of `[]byte`).
const RAW_BODY_BASE64: &str = "http_raw_body_base64";

/// The core's answer: an HTTP status and an optional JSON body (none for 204), or a raw body
/// ([`Reply::raw_body`]) for the few answers that are not JSON.
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

    /// A raw reply: `body` to be sent as it is with `content_type`. Its JSON form is Vault's
    /// raw-response data, `{"http_status_code": <status>, "http_content_type": <type>,
    /// "http_raw_body": <body>}` (text only); HTTP edges send it with
    /// [`Reply::raw_body`]'s answer.
    pub fn raw_body(status: u16, content_type: &str, body: impl Into<String>) -> Self {
        Reply {
            status,
            body: Some(serde_json::json!({
                RAW_STATUS: status,
                RAW_CONTENT_TYPE: content_type,
                RAW_BODY: body.into(),
            })),
        }
    }

    /// The `Content-Type` and body of a raw reply ([`Reply::raw_body`]); `None` for a JSON
    /// reply. An edge sends these instead of the JSON body.
    pub fn raw(&self) -> Option<(&str, &str)> {
        let body = self.body.as_ref()?.as_object()?;
        if body.len() != 3 || !body.contains_key(RAW_STATUS) {
            return None;
        }
        Some((
            body.get(RAW_CONTENT_TYPE)?.as_str()?,
            body.get(RAW_BODY)?.as_str()?,
        ))
    }

    /// A raw reply whose body is bytes (a snapshot file): sent as it is with `content_type`.
    /// Its JSON form is `{"http_status_code", "http_content_type", "http_raw_body_base64"}`,
    /// the body in standard base64; HTTP edges send the decoded bytes
    /// ([`Reply::raw_bytes`]).
    pub fn raw_binary(status: u16, content_type: &str, body: &[u8]) -> Self {
        use base64::Engine;
        Reply {
            status,
            body: Some(serde_json::json!({
                RAW_STATUS: status,
                RAW_CONTENT_TYPE: content_type,
                RAW_BODY_BASE64: base64::engine::general_purpose::STANDARD.encode(body),
            })),
        }
    }

    /// The `Content-Type` and bytes of a raw reply, binary ([`Reply::raw_binary`]) or text
    /// ([`Reply::raw_body`]); `None` for a JSON reply.
    pub fn raw_bytes(&self) -> Option<(&str, Vec<u8>)> {
        use base64::Engine;
        if let Some((content_type, body)) = self.raw() {
            return Some((content_type, body.as_bytes().to_vec()));
        }
        let body = self.body.as_ref()?.as_object()?;
        if body.len() != 3 || !body.contains_key(RAW_STATUS) {
            return None;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body.get(RAW_BODY_BASE64)?.as_str()?)
            .ok()?;
        Some((body.get(RAW_CONTENT_TYPE)?.as_str()?, bytes))
    }

    /// Sets the `request_id` of a reply in Vault's envelope (one that has a non-empty
    /// `request_id` member) to `id`; other replies are left as they are.
    pub fn stamp_request_id(&mut self, id: &str) {
        if let Some(Value::String(current)) = self
            .body
            .as_mut()
            .and_then(|b| b.as_object_mut())
            .and_then(|b| b.get_mut("request_id"))
        {
            if !current.is_empty() {
                *current = id.to_string();
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_reply_is_told_from_json_ones() {
        let page = Reply::raw_body(400, "text/html; charset=utf-8", "<p>no</p>");
        assert_eq!(page.status, 400);
        assert_eq!(page.raw(), Some(("text/html; charset=utf-8", "<p>no</p>")));
        assert_eq!(Reply::ok(serde_json::json!({"data": {}})).raw(), None);
        assert_eq!(Reply::no_content().raw(), None);
        let lookalike = serde_json::json!({"http_raw_body": "x", "http_content_type": "text/html"});
        assert_eq!(
            Reply::ok(lookalike).raw(),
            None,
            "all three members or none"
        );
        assert!(!Response::raw_body(200, "text/plain", "").is_empty());
        let file = Reply::raw_binary(200, "application/octet-stream", &[0, 159, 255]);
        assert_eq!(file.raw(), None, "not text");
        assert_eq!(
            file.raw_bytes(),
            Some(("application/octet-stream", vec![0, 159, 255]))
        );
        assert_eq!(
            page.raw_bytes(),
            Some(("text/html; charset=utf-8", b"<p>no</p>".to_vec()))
        );
        assert_eq!(Reply::no_content().raw_bytes(), None);
    }
}
