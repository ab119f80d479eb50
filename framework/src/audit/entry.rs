//! The audit record of one request: what the core learns about it as it goes ([`Trail`]),
//! and the two JSON lines written for it, in Vault's shape:
//!
//! ```text
//! {"time":"<RFC 3339, ns>","type":"request","auth":{...},"request":{...}[,"error":"..."]}
//! {"time":"...","type":"response","auth":{...},"request":{...},"response":{...}[,"error":"..."]}
//! ```
//!
//! What is hashed (unless the device has `log_raw=true`): the client token and its accessor
//! (the accessor unless `hmac_accessor=false`) wherever they appear; every string inside
//! request `data` and response `data` (keys, numbers and booleans are kept), except the
//! top-level keys the mount's tuning lists in `audit_non_hmac_request_keys` /
//! `audit_non_hmac_response_keys`; an exemption never applies to a field the path table marks
//! sensitive nor to the secrets of [`ALWAYS_HASHED`]; the token and accessors of `wrap_info`;
//! error texts in `response.data.error` (the top-level `error` is in the clear, as in Vault).
//! A failed login's response names the check that refused it in `response.login_failure`
//! (the `failure` label of the login metric, [`crate::metrics::LoginFailure`]).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use super::hash::{hash_strings, hmac};
use super::{Device, Devices};
use crate::error::{Error, Result};
use crate::metrics::LoginFailure;
use crate::request::Request;
use crate::response::Reply;

/// Data keys that are hashed even when a mount's tuning lists them as non-HMAC keys.
pub const ALWAYS_HASHED: [&str; 8] = [
    "jwt",
    "client_secret",
    "oidc_client_secret",
    "token",
    "client_token",
    "id_token",
    "password",
    "code",
];

/// The mount a request was routed to.
pub(crate) struct MountFacts {
    /// `auth/jwt/`, `sys/`, `auth/token/`, `identity/`.
    pub(crate) point: String,
    pub(crate) kind: String,
    pub(crate) accessor: String,
    /// `auth` for auth methods and the token store, `secret` for `sys/` and `identity/`
    /// (Vault's mount classes).
    pub(crate) class: &'static str,
    pub(crate) non_hmac_request: Vec<String>,
    pub(crate) non_hmac_response: Vec<String>,
}

/// The authenticated caller of a request.
pub(crate) struct CallerFacts {
    pub(crate) token: String,
    pub(crate) accessor: String,
    pub(crate) display_name: String,
    pub(crate) policies: Vec<String>,
    pub(crate) token_policies: Vec<String>,
    pub(crate) identity_policies: Vec<String>,
    pub(crate) metadata: Option<BTreeMap<String, String>>,
    pub(crate) entity_id: String,
    pub(crate) token_type: &'static str,
    pub(crate) token_ttl: i64,
    pub(crate) issue_time: i64,
}

/// The audit record of one request, filled in by the core as the request goes through the
/// pipeline. With no device enabled it stays off and costs nothing.
#[derive(Default)]
pub(crate) struct Trail {
    devices: Option<Arc<Devices>>,
    id: String,
    operation: &'static str,
    path: String,
    data: Map<String, Value>,
    client_token: Option<String>,
    remote_addr: Option<IpAddr>,
    wrap_ttl: Option<Duration>,
    mount: Option<MountFacts>,
    caller: Option<CallerFacts>,
    sensitive: Vec<&'static str>,
    request_logged: bool,
    failed: bool,
}

/// Fail closed: the error a request gets when no device recorded it.
fn not_recorded() -> Error {
    Error::internal("internal error")
}

impl Trail {
    /// Starts the record of `req` (its path `path`, cleaned) when `devices` are enabled.
    pub(crate) fn start(&mut self, devices: Option<Arc<Devices>>, req: &Request, path: &str) {
        let Some(devices) = devices else { return };
        self.devices = Some(devices);
        self.id = req.request_id.clone();
        self.operation = if req.help {
            "help"
        } else {
            req.operation.as_str()
        };
        self.path = path.to_string();
        self.data = req.data.clone();
        self.client_token = req.client_token.clone().filter(|t| !t.is_empty());
        self.remote_addr = req.remote_addr;
        self.wrap_ttl = req.wrap_ttl;
    }

    /// True when devices are enabled (the core then fills in the facts below).
    pub(crate) fn is_on(&self) -> bool {
        self.devices.is_some()
    }

    /// The request turned out to create the object it names (Vault logs `create`).
    pub(crate) fn creates(&mut self) {
        self.operation = "create";
    }

    /// The mount the request was routed to.
    pub(crate) fn set_mount(&mut self, mount: MountFacts) {
        self.mount = Some(mount);
    }

    /// The authenticated caller.
    pub(crate) fn set_caller(&mut self, caller: CallerFacts) {
        self.caller = Some(caller);
    }

    /// The names of the fields the matched path marks sensitive.
    pub(crate) fn set_sensitive(&mut self, names: Vec<&'static str>) {
        self.sensitive = names;
    }

    /// Writes the request line to every device, before the request is served. Errors: 500
    /// `internal error` when no device recorded it (the request must then not be served).
    pub(crate) async fn log_request(&mut self) -> Result<()> {
        if self.devices.is_none() || self.request_logged {
            return Ok(());
        }
        self.request_logged = true;
        if self.emit(|d| self.request_line(d, None)).await {
            return Ok(());
        }
        self.failed = true;
        Err(not_recorded())
    }

    /// Writes what is still due for this request (its request line, when it failed before
    /// it was served; its response line) and gives the reply to send: `result`'s, or 500
    /// `internal error` when no device recorded it.
    pub(crate) async fn finish(&mut self, result: Result<Reply>) -> Reply {
        let (reply, error) = match result {
            Ok(reply) => (reply, None),
            Err(e) => (Reply::error(&e), Some(e)),
        };
        if self.devices.is_none() || self.failed {
            return reply;
        }
        let message = error.as_ref().map(|e| error_text(e, &reply));
        if !self.request_logged {
            self.request_logged = true;
            if !self
                .emit(|d| self.request_line(d, message.as_deref()))
                .await
            {
                return Reply::error(&not_recorded());
            }
        }
        let failure = error
            .as_ref()
            .and(crate::metrics::login_failure_of_request());
        let recorded = self
            .emit(|d| self.response_line(d, &reply, message.as_deref(), failure))
            .await;
        match recorded {
            true => reply,
            false => Reply::error(&not_recorded()),
        }
    }

    /// Writes one line per device; true when at least one device recorded it.
    async fn emit(&self, line: impl Fn(&Device) -> Value) -> bool {
        let Some(devices) = &self.devices else {
            return true;
        };
        let mut recorded = false;
        for device in &devices.list {
            let bytes = match serde_json::to_vec(&line(device)) {
                Ok(bytes) => bytes,
                Err(_) => continue,
            };
            match device.write_line(&bytes).await {
                Ok(()) => recorded = true,
                Err(e) => tracing::error!(
                    target: "authmount::audit",
                    device = %device.entry.path,
                    error = %e,
                    "audit device failed to record an entry"
                ),
            }
        }
        recorded
    }

    fn request_line(&self, d: &Device, error: Option<&str>) -> Value {
        let mut line = json!({
            "time": now(),
            "type": "request",
            "auth": self.auth_json(d),
            "request": self.request_json(d),
        });
        if let Some(e) = error {
            line["error"] = json!(e);
        }
        line
    }

    fn response_line(
        &self,
        d: &Device,
        reply: &Reply,
        error: Option<&str>,
        failure: Option<LoginFailure>,
    ) -> Value {
        let mut line = json!({
            "time": now(),
            "type": "response",
            "auth": self.auth_json(d),
            "request": self.request_json(d),
            "response": self.response_json(d, reply, error, failure),
        });
        if let Some(e) = error {
            line["error"] = json!(e);
        }
        line
    }

    fn auth_json(&self, d: &Device) -> Value {
        let Some(c) = &self.caller else {
            return json!({ "token_type": "default" });
        };
        let mut auth = json!({
            "client_token": secret(d, &c.token),
            "display_name": c.display_name,
            "policies": c.policies,
            "token_policies": c.token_policies,
            "entity_id": c.entity_id,
            "token_type": c.token_type,
            "token_ttl": c.token_ttl,
            "token_issue_time": rfc3339(c.issue_time),
            "policy_results": { "allowed": true },
        });
        if !c.accessor.is_empty() {
            auth["accessor"] = json!(accessor(d, &c.accessor));
        }
        if !c.identity_policies.is_empty() {
            auth["identity_policies"] = json!(c.identity_policies);
        }
        if let Some(meta) = &c.metadata {
            auth["metadata"] = json!(meta);
        }
        auth
    }

    fn request_json(&self, d: &Device) -> Value {
        let mut req = Map::new();
        req.insert("id".into(), json!(self.id));
        req.insert("operation".into(), json!(self.operation));
        if let Some(m) = &self.mount {
            req.insert("mount_point".into(), json!(m.point));
            req.insert("mount_type".into(), json!(m.kind));
            if !m.accessor.is_empty() {
                req.insert("mount_accessor".into(), json!(m.accessor));
            }
            req.insert("mount_class".into(), json!(m.class));
        }
        if let Some(token) = &self.client_token {
            req.insert("client_token".into(), json!(secret(d, token)));
        }
        if let Some(a) = self.caller.as_ref().filter(|c| !c.accessor.is_empty()) {
            req.insert(
                "client_token_accessor".into(),
                json!(accessor(d, &a.accessor)),
            );
        }
        req.insert("namespace".into(), json!({ "id": "root" }));
        req.insert("path".into(), json!(self.path));
        if !self.data.is_empty() {
            let exempt = self.mount.as_ref().map(|m| &m.non_hmac_request[..]);
            req.insert(
                "data".into(),
                Value::Object(self.hashed_data(d, &self.data, exempt.unwrap_or(&[]))),
            );
        }
        if let Some(addr) = self.remote_addr {
            req.insert("remote_address".into(), json!(addr.to_string()));
        }
        if let Some(ttl) = self.wrap_ttl {
            req.insert("wrap_ttl".into(), json!(ttl.as_secs()));
        }
        Value::Object(req)
    }

    fn response_json(
        &self,
        d: &Device,
        reply: &Reply,
        error: Option<&str>,
        failure: Option<LoginFailure>,
    ) -> Value {
        let mut resp = Map::new();
        if let Some(m) = &self.mount {
            resp.insert("mount_point".into(), json!(m.point));
            resp.insert("mount_type".into(), json!(m.kind));
            if !m.accessor.is_empty() {
                resp.insert("mount_accessor".into(), json!(m.accessor));
            }
            resp.insert("mount_class".into(), json!(m.class));
        }
        let exempt = self.mount.as_ref().map(|m| &m.non_hmac_response[..]);
        let exempt = exempt.unwrap_or(&[]);
        if let Some(e) = error {
            resp.insert("data".into(), json!({ "error": secret(d, e) }));
            if let Some(class) = failure {
                resp.insert("login_failure".into(), json!(class.as_str()));
            }
            return Value::Object(resp);
        }
        let Some(body) = reply.body.as_ref().and_then(Value::as_object) else {
            return Value::Object(resp);
        };
        if !body.contains_key("lease_id") {
            // Not Vault's envelope (help, the OpenAPI document, a raw page): all of it is data.
            resp.insert(
                "data".into(),
                Value::Object(self.hashed_data(d, body, exempt)),
            );
            return Value::Object(resp);
        }
        if let Some(Value::Object(auth)) = body.get("auth") {
            let mut auth = auth.clone();
            hash_member(d, &mut auth, "client_token", false);
            hash_member(d, &mut auth, "accessor", true);
            resp.insert("auth".into(), Value::Object(auth));
        }
        if let Some(Value::Object(data)) = body.get("data") {
            resp.insert(
                "data".into(),
                Value::Object(self.hashed_data(d, data, exempt)),
            );
        }
        if let Some(Value::Array(w)) = body.get("warnings").filter(|w| w.is_array()) {
            if !w.is_empty() {
                resp.insert("warnings".into(), json!(w));
            }
        }
        if let Some(Value::Object(wrap)) = body.get("wrap_info") {
            let mut wrap = wrap.clone();
            hash_member(d, &mut wrap, "token", false);
            hash_member(d, &mut wrap, "accessor", true);
            hash_member(d, &mut wrap, "wrapped_accessor", true);
            resp.insert("wrap_info".into(), Value::Object(wrap));
        }
        Value::Object(resp)
    }

    /// `data` with every string hashed, except the top-level keys in `exempt` that are
    /// neither sensitive on the path nor in [`ALWAYS_HASHED`].
    fn hashed_data(
        &self,
        d: &Device,
        data: &Map<String, Value>,
        exempt: &[String],
    ) -> Map<String, Value> {
        if d.settings.log_raw {
            return data.clone();
        }
        data.iter()
            .map(|(k, v)| {
                let mut v = v.clone();
                let clear = exempt.iter().any(|e| e == k)
                    && !self.sensitive.contains(&k.as_str())
                    && !ALWAYS_HASHED.contains(&k.as_str());
                if !clear {
                    hash_strings(d.salt(), &mut v);
                }
                (k.clone(), v)
            })
            .collect()
    }
}

/// A secret as the device writes it.
fn secret(d: &Device, value: &str) -> String {
    match d.settings.log_raw {
        true => value.to_string(),
        false => hmac(d.salt(), value),
    }
}

/// An accessor as the device writes it (hashed unless `hmac_accessor=false` or `log_raw`).
fn accessor(d: &Device, value: &str) -> String {
    match d.settings.hmac_accessor {
        true => secret(d, value),
        false => value.to_string(),
    }
}

/// Hashes the string member `key` of `map` (an accessor when `is_accessor`), if non-empty.
fn hash_member(d: &Device, map: &mut Map<String, Value>, key: &str, is_accessor: bool) {
    if let Some(Value::String(s)) = map.get_mut(key) {
        if !s.is_empty() {
            *s = match is_accessor {
                true => accessor(d, s),
                false => secret(d, s),
            };
        }
    }
}

/// The text of a failed request: the first message of its `{"errors":[...]}` body, else the
/// error's own text.
fn error_text(e: &Error, reply: &Reply) -> String {
    reply
        .body
        .as_ref()
        .and_then(|b| b["errors"].get(0))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| e.to_string())
}

fn now() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

fn rfc3339(unix: i64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The test line a device gets when it is enabled (Vault writes the same one): it shows the
/// device can be written before it is stored.
pub(crate) fn test_line() -> Value {
    json!({
        "time": now(),
        "type": "request",
        "auth": { "token_type": "default" },
        "request": {
            "id": uuid::Uuid::new_v4().to_string(),
            "operation": "update",
            "namespace": { "id": "root" },
            "path": "sys/audit/test",
        },
    })
}
