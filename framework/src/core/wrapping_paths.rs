//! Response wrapping: `X-Vault-Wrap-TTL` on any request, and the `sys/wrapping/` endpoints
//! (`wrap`, `lookup`, `unwrap`, `rewrap`).
//!
//! A wrapped answer is kept beside its wrapping token in the token store (so it goes through
//! the storage barrier, and dies with the token: unwrapped, revoked, or swept at expiry);
//! the caller gets only `wrap_info`. A wrapping token is an orphan service token with the
//! built-in `response-wrapping` policy and a TTL of the wrap TTL; it serves one request:
//! an unwrap takes it with a compare-and-set, so exactly one of any number of concurrent
//! unwraps (on any node) gets the answer, and using it anywhere else spends it.
//!
//! Answers checked against OpenBao 2.7.2: `wrap_info` carries `token`, `accessor`, `ttl`
//! (seconds), `creation_time` (RFC 3339), `creation_path` and, when a token was wrapped,
//! `wrapped_accessor`; a token that is unknown, expired or already unwrapped is 400
//! `wrapping token is not valid or does not exist`.
//!
//! Source: Vault API `sys/wrapping/*`, Vault "Response Wrapping".

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{json, Value};

use super::login::new_entry;
use super::CoreInner;
use crate::backend::BackendRequest;
use crate::error::{Error, Result};
use crate::path::{Field, FieldType, Path};
use crate::policy::{Capability, RESPONSE_WRAPPING};
use crate::request::{Operation, Request};
use crate::response::{Reply, Response, TokenParams};
use crate::token::{invalid_wrapping_token, TokenEntry};

/// The path that a wrapping token may be used on without being spent: its own unwrap.
const UNWRAP: &str = "sys/wrapping/unwrap";

/// True when a wrapping token used for `capability` on the canonical `path` is unwrapping
/// (another token named in the body; unwrapping itself needs no authentication); any other
/// use spends it.
pub(super) fn unwraps_with(path: &str, capability: Capability) -> bool {
    path == UNWRAP && capability == Capability::Update
}

fn token_field() -> Field {
    Field::new("token", FieldType::String, "The wrapping token.").sensitive()
}

/// The `sys/wrapping/` paths, served in the `sys/` table.
pub(super) fn paths(core: &Weak<CoreInner>) -> Vec<Path> {
    vec![
        Path::new("wrapping/wrap")
            .help("Wrap the parameters sent (any names) in a response-wrapping token; needs X-Vault-Wrap-TTL.")
            .arbitrary_input()
            .update(core, CoreInner::wrap_data),
        Path::new("wrapping/lookup")
            .help("Look up a wrapping token's creation path, time and TTL without unwrapping it. Needs no other token.")
            .field(token_field())
            .unauthenticated()
            .read(core, CoreInner::lookup_wrapping)
            .update(core, CoreInner::lookup_wrapping),
        Path::new("wrapping/unwrap")
            .help("Unwrap a wrapping token (given as `token`, else the request's own token): answer what it wraps, once.")
            .field(token_field())
            // The handler authenticates: the wrapping token is checked before the caller.
            .unauthenticated()
            .update(core, CoreInner::unwrap)
            .read(core, CoreInner::refuse_unwrap_by_read),
        Path::new("wrapping/rewrap")
            .help("Move a wrapped answer to a new wrapping token (the old one stops working), e.g. to extend its life.")
            .field(token_field())
            .update(core, CoreInner::rewrap),
    ]
}

/// 403 for a wrapping endpoint given no token at all (OpenBao's words).
fn empty_token() -> Error {
    Error::Forbidden("error validating wrapping token: token is empty".into())
}

/// The `token` field, when given and not empty.
fn named_token(req: &BackendRequest) -> Option<&str> {
    req.fields.str("token").filter(|t| !t.is_empty())
}

impl CoreInner {
    /// Wraps `body` (an answer in Vault's envelope) for `ttl`: a new wrapping token holds
    /// it; the reply is Vault's wrapped answer (`wrap_info` only). `creation_path` is the
    /// canonical path that produced the answer; `wrapped_accessor` the accessor of the token
    /// the answer issued, if it issued one (Vault names it only in the first wrapping, not
    /// when an unwrapped or rewrapped answer is wrapped again).
    pub(super) async fn wrap(
        &self,
        body: Value,
        creation_path: &str,
        ttl: Duration,
        wrapped_accessor: Option<&str>,
    ) -> Result<Reply> {
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let params = TokenParams {
            explicit_max_ttl: ttl,
            ..TokenParams::default()
        };
        let mut entry = new_entry(
            &self.clock,
            vec![RESPONSE_WRAPPING.into()],
            "token".into(),
            creation_path.into(),
            ttl,
            ttl,
            &params,
        );
        entry.renewable = false;
        let bytes = serde_json::to_vec(&body).map_err(Error::internal)?;
        let (token, entry) = self.tokens.create_wrapping(entry, bytes).await?;
        let mut info = json!({
            "token": token,
            "accessor": entry.accessor,
            "ttl": entry.creation_ttl,
            "creation_time": creation_time(&entry),
            "creation_path": entry.path,
        });
        if let Some(accessor) = wrapped_accessor {
            info["wrapped_accessor"] = json!(accessor);
        }
        Ok(Reply::ok(json!({
            "request_id": "",
            "lease_id": "",
            "renewable": false,
            "lease_duration": 0,
            "data": null,
            "wrap_info": info,
            "warnings": null,
            "auth": null,
        })))
    }

    /// `POST sys/wrapping/wrap`: the parameters as `data`, wrapped by the core. Errors: 400
    /// without a wrap TTL (there is nothing to answer unwrapped).
    async fn wrap_data(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        if req.wrap_ttl.is_none() {
            return Err(Error::invalid(
                "endpoint requires response wrapping to be used",
            ));
        }
        Ok(Response::data(req.fields.arbitrary().clone()))
    }

    /// `sys/wrapping/lookup`: the token from `token`, else from `X-Vault-Token`; nothing is
    /// spent. Errors: 403 without any token; 400 for one that is not a live wrapping token.
    async fn lookup_wrapping(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let entry = self
            .tokens
            .lookup_wrapping(wrapping_token_of(&req)?)
            .await?;
        Ok(Response::json(json!({
            "creation_path": entry.path,
            "creation_time": creation_time(&entry),
            "creation_ttl": entry.creation_ttl,
        })))
    }

    /// `sys/wrapping/unwrap`: unwraps `token`, else the request's own token, and answers
    /// what it wrapped (wrapped again if the caller asks). The token to unwrap is checked
    /// first; then a request naming it in `token` must come with a token allowed to unwrap
    /// (`update` on `sys/wrapping/unwrap`), while a wrapping token sent as the request's own
    /// token needs nothing else. Errors (as OpenBao answers them): 403 `error validating
    /// wrapping token: token is empty` when there is no token at all; 400 `wrapping token is
    /// not valid or does not exist` when it is not a live wrapping token (a second unwrap
    /// among them); 403 `permission denied` for a caller not allowed to unwrap.
    async fn unwrap(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let target = wrapping_token_of(&req)?;
        self.tokens.lookup_wrapping(target).await?;
        if named_token(&req).is_some() {
            self.authenticate_unwrap(&req, target, Operation::Update)
                .await?;
        }
        let (_, bytes) = self.tokens.unwrap(target).await?;
        Ok(Response {
            envelope: Some(wrapped_answer(&bytes)?),
            ..Response::default()
        })
    }

    /// `GET sys/wrapping/unwrap`: not an unwrap. Checked as OpenBao checks it (the token
    /// first, as for an unwrap), then refused: a wrapping token sent as the request's own
    /// token is spent by it (403).
    async fn refuse_unwrap_by_read(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let target = wrapping_token_of(&req)?;
        self.tokens.lookup_wrapping(target).await?;
        self.authenticate_unwrap(&req, target, Operation::Read)
            .await?;
        Err(Error::UnsupportedOperation)
    }

    /// Authenticates the client token of a request to `sys/wrapping/unwrap` that names the
    /// wrapping token `target` (or a read of it), as any other request is: the caller needs
    /// the operation's capability on the path; a wrapping token used as the client token for
    /// anything but unwrapping another token is spent. Errors: 403 `permission denied`.
    async fn authenticate_unwrap(
        &self,
        req: &BackendRequest,
        target: &str,
        operation: Operation,
    ) -> Result<()> {
        let request = Request {
            client_token: req.presented_token.clone(),
            remote_addr: req.remote_addr,
            ..Request::new(operation, UNWRAP)
        };
        let capability = super::capability_of(operation);
        let caller = self
            .authenticate_for(&request, UNWRAP, capability, false)
            .await?;
        if caller.entry().response_wrapping && caller.token != target {
            // The caller's own wrapping token was used for this request: spent.
            self.tokens.revoke(&caller.stored).await?;
        }
        Ok(())
    }

    /// `sys/wrapping/rewrap`: moves the answer of `token` to a new wrapping token with the
    /// same creation path, for the wrap TTL asked now, else the old token's. Errors: 400
    /// when `token` is missing or not a live wrapping token.
    async fn rewrap(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let token = named_token(&req).ok_or_else(invalid_wrapping_token)?;
        let (old, bytes) = self.tokens.unwrap(token).await?;
        let body = wrapped_answer(&bytes)?;
        let ttl = req
            .wrap_ttl
            .unwrap_or(Duration::from_secs(old.creation_ttl.max(0) as u64));
        Ok(Response::raw(self.wrap(body, &old.path, ttl, None).await?))
    }
}

/// The wrapping token a request is about: `token`, else the request's own. Errors: 403
/// [`empty_token`] when there is neither.
fn wrapping_token_of(req: &BackendRequest) -> Result<&str> {
    named_token(req)
        .or(req.presented_token.as_deref())
        .ok_or_else(empty_token)
}

/// A wrapped answer as stored (Vault's envelope). Errors: 500 when storage holds no JSON.
fn wrapped_answer(bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::internal(format!("corrupt wrapped answer: {e}")))
}

/// A wrapping token's creation time as Vault shows it (RFC 3339, UTC).
fn creation_time(entry: &TokenEntry) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_secs(entry.creation_time.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}
