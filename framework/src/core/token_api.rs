//! `auth/token/`: the token store's own endpoints. Each is checked against the caller's
//! policies under its own path (the built-in `default` policy allows the `*-self` ones).
//!
//! Source: Vault API `auth/token` (create, lookup, renew, revoke; by token, by accessor,
//! and self).

use serde_json::Value;

use super::reply::{auth_block, data_reply, envelope, lookup_data};
use super::LeaseLimits;
use super::{body_field, new_entry, required_str, token_policies, token_ttl, Caller, Core};
use crate::backend::{MountInfo, RenewRequest};
use crate::error::{Error, Result};
use crate::path::FieldType;
use crate::request::{Operation, Request};
use crate::response::{Reply, TokenParams, TokenType};
use crate::token::{now_unix, StoredToken};

/// What the token store's own tokens are tuned with: the system limits.
fn token_store_mount(limits: &LeaseLimits) -> MountInfo {
    MountInfo {
        path: "token/".into(),
        accessor: String::new(),
        kind: "token".into(),
        default_lease_ttl: limits.default_lease_ttl,
        max_lease_ttl: limits.max_lease_ttl,
    }
}

impl Core {
    pub(super) async fn token_endpoint(&self, rest: &str, req: &Request) -> Result<Reply> {
        let path = format!("auth/token/{rest}");
        let sudo = rest == "create-orphan";
        let caller = self.authorize(req, &path, sudo).await?;
        let op = req.operation;
        let writes = op == Operation::Update;
        match rest {
            "lookup-self" if matches!(op, Operation::Read | Operation::Update) => Ok(data_reply(
                lookup_data(&caller.token, &caller.stored.entry),
                "token",
            )),
            "lookup" if writes => {
                let token = required_str(req, "token")?;
                let found = self.tokens.lookup(&token).await?.ok_or_else(bad_token)?;
                Ok(data_reply(lookup_data(&token, &found.entry), "token"))
            }
            "lookup-accessor" if writes => {
                let found = self.by_accessor(req).await?;
                Ok(data_reply(lookup_data("", &found.entry), "token"))
            }
            "renew-self" if writes => {
                let Caller { token, stored, .. } = caller;
                self.renew(&token, stored, req).await
            }
            "renew" if writes => {
                let token = required_str(req, "token")?;
                let found = self.tokens.lookup(&token).await?.ok_or_else(bad_token)?;
                self.renew(&token, found, req).await
            }
            "renew-accessor" if writes => {
                let found = self.by_accessor(req).await?;
                self.renew("", found, req).await
            }
            "revoke-self" if writes => self.revoke(&caller.stored).await,
            "revoke" if writes => match self.tokens.lookup(&required_str(req, "token")?).await? {
                Some(found) => self.revoke(&found).await,
                None => Ok(Reply::no_content()),
            },
            "revoke-accessor" if writes => {
                let found = self.by_accessor(req).await?;
                self.revoke(&found).await
            }
            "create" | "create-orphan" if writes => self.create(&caller, req, sudo).await,
            "lookup-self" | "lookup" | "lookup-accessor" | "renew-self" | "renew"
            | "renew-accessor" | "revoke-self" | "revoke" | "revoke-accessor" | "create"
            | "create-orphan" => Err(Error::UnsupportedOperation),
            _ => Err(Error::unsupported_path(&path)),
        }
    }

    async fn by_accessor(&self, req: &Request) -> Result<StoredToken> {
        let accessor = required_str(req, "accessor")?;
        self.tokens
            .lookup_accessor(&accessor)
            .await?
            .ok_or_else(|| Error::invalid("invalid accessor"))
    }

    async fn revoke(&self, token: &StoredToken) -> Result<Reply> {
        self.tokens.revoke(token).await?;
        Ok(Reply::no_content())
    }

    /// `auth/token/create` (a child of the caller: revoked with it, never outliving it) and
    /// `create-orphan` (or `no_parent`, for root). A caller without root may only hand out a
    /// subset of its own policies; batch tokens cannot be root tokens.
    async fn create(&self, caller: &Caller, req: &Request, orphan: bool) -> Result<Reply> {
        let int = |name: &str, kind: FieldType| -> Result<i64> {
            Ok(body_field(req, name, kind)?
                .and_then(|v| v.as_i64())
                .unwrap_or(0))
        };
        let flag = |name: &str| -> Result<Option<bool>> {
            Ok(body_field(req, name, FieldType::Bool)?.and_then(|v| v.as_bool()))
        };
        let parent = &caller.stored.entry;
        let parent_is_root = caller.acl.is_root();
        let requested = body_field(req, "policies", FieldType::CommaStringSlice)?
            .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok());
        let policies =
            super::normalize_policies(&requested.unwrap_or_else(|| parent.policies.clone()));
        if !parent_is_root {
            if let Some(extra) = policies
                .iter()
                .find(|p| *p != "default" && !parent.policies.contains(p))
            {
                return Err(Error::invalid(format!(
                    "child policies must be subset of parent: {extra:?} is not held by the caller"
                )));
            }
        }
        let token_type = match body_field(req, "type", FieldType::String)?
            .as_ref()
            .and_then(Value::as_str)
        {
            None | Some("" | "service" | "default") => TokenType::Service,
            Some("batch") => TokenType::Batch,
            Some(other) => return Err(Error::invalid(format!("invalid 'type' value {other:?}"))),
        };
        let params = TokenParams {
            policies: policies.clone(),
            ttl: int("ttl", FieldType::DurationSecond)?,
            max_ttl: 0,
            explicit_max_ttl: int("explicit_max_ttl", FieldType::DurationSecond)?,
            period: int("period", FieldType::DurationSecond)?,
            num_uses: int("num_uses", FieldType::Int)?,
            no_default_policy: flag("no_default_policy")?.unwrap_or(false),
            bound_cidrs: vec![],
            token_type,
        };
        if params.num_uses < 0 {
            return Err(Error::invalid("number of uses cannot be negative"));
        }
        let is_root_token = policies.iter().any(|p| p == "root");
        let policies = if is_root_token {
            if !parent_is_root {
                return Err(Error::PermissionDenied);
            }
            if token_type == TokenType::Batch {
                return Err(Error::invalid(
                    "batch tokens cannot be created with the root policy",
                ));
            }
            policies
        } else {
            token_policies(&params)?
        };
        let mut warnings = Vec::new();
        let (mut ttl, mut max_ttl) = if is_root_token && params.ttl == 0 && params.period == 0 {
            (0, 0)
        } else {
            token_ttl(&token_store_mount(&self.limits), &params, &mut warnings)
        };
        let orphan = orphan || (parent_is_root && flag("no_parent")?.unwrap_or(false));
        // A child never outlives its parent.
        if let (false, Some(parent_expiry)) = (orphan, parent.expire_time) {
            let left = parent_expiry.saturating_sub(now_unix()).max(1);
            if ttl == 0 || ttl > left {
                warnings.push(format!(
                    "TTL of the new token is capped at its parent's remaining {left}s"
                ));
                ttl = left;
            }
            max_ttl = if max_ttl == 0 {
                left
            } else {
                max_ttl.min(left)
            };
        }
        let display = body_field(req, "display_name", FieldType::String)?
            .and_then(|v| v.as_str().map(str::to_string))
            .filter(|d| !d.is_empty())
            .map_or_else(|| "token".to_string(), |d| format!("token-{d}"));
        let mut entry = new_entry(
            policies,
            display,
            "auth/token/create".into(),
            ttl,
            max_ttl,
            &params,
        );
        if let Some(false) = flag("renewable")? {
            entry.renewable = false;
        }
        if let Some(meta) = body_field(req, "meta", FieldType::KvPairs)? {
            entry.meta = serde_json::from_value(meta).unwrap_or_default();
        }
        if !orphan && !parent.accessor.is_empty() {
            entry.parent_accessor = parent.accessor.clone();
        }
        let (token, entry) = self.tokens.create(entry).await?;
        Ok(Reply::ok(envelope(
            None,
            Some(auth_block(&token, &entry, ttl)),
            &warnings,
            "token",
        )))
    }

    /// Renewal (reference §1.4): a login token's backend re-checks (the JWT method re-reads
    /// its role) and its current TTLs apply; never past the token's max TTL from creation.
    /// `token` is echoed as `client_token` (empty when renewed by accessor).
    async fn renew(&self, token: &str, found: StoredToken, req: &Request) -> Result<Reply> {
        if found.is_batch() {
            return Err(Error::invalid("batch tokens cannot be renewed"));
        }
        let entry = &found.entry;
        if !entry.renewable {
            return Err(Error::invalid("lease is not renewable"));
        }
        let increment = body_field(req, "increment", FieldType::DurationSecond)?
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        let (info, params) = if entry.mount_accessor.is_empty() {
            (token_store_mount(&self.limits), entry.params.clone())
        } else {
            let mount = self
                .mounts
                .by_accessor(&entry.mount_accessor)?
                .ok_or_else(|| {
                    Error::invalid("the mount that issued this token no longer exists")
                })?;
            let info = mount.entry.info(&self.limits);
            let params = mount
                .backend
                .renew(RenewRequest {
                    internal_data: &entry.internal_data,
                    token: &entry.params,
                    mount: &info,
                })
                .await?;
            (info, params)
        };
        let mut warnings = Vec::new();
        let now = now_unix();
        let (mut ttl, max_ttl) = token_ttl(&info, &params, &mut warnings);
        if params.period == 0 && increment > 0 {
            ttl = increment.min(max_ttl);
        }
        let limit = entry
            .creation_time
            .saturating_add(max_ttl.min(entry.max_ttl.max(1)))
            .saturating_sub(now);
        if params.period == 0 && ttl > limit {
            ttl = limit.max(0);
        }
        // Stored by compare-and-set: a use counted meanwhile stays counted.
        let renewed = self
            .tokens
            .update(&found, |e| {
                e.expire_time = Some(now.saturating_add(ttl));
                e.last_renewal_time = Some(now);
                e.params = params.clone();
            })
            .await?;
        Ok(Reply::ok(envelope(
            None,
            Some(auth_block(token, &renewed.entry, ttl)),
            &warnings,
            "token",
        )))
    }
}

fn bad_token() -> Error {
    Error::invalid("bad token")
}
