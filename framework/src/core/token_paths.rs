//! `auth/token/`: the token store's own endpoints, as a path table. Each is checked against
//! the caller's policies under its canonical path (the built-in `default` policy allows the
//! `*-self` ones); `create-orphan`, `revoke-orphan` and listing accessors need `sudo`.
//!
//! Source: Vault API `auth/token` (create, lookup, renew, revoke; by token, by accessor,
//! and self), with Vault's rules for children: a use-limited token or a batch token cannot
//! create tokens, only root or sudo may create periodic tokens, a child never outlives its
//! parent, `explicit_max_ttl` caps every renewal.

use std::sync::{Arc, Weak};

use super::login::{new_entry, token_policies, token_ttl};
use super::reply::{auth_block, list_response, lookup_data};
use super::CoreInner;
use crate::backend::{BackendRequest, MountInfo, RenewRequest};
use crate::error::{Error, Result};
use crate::path::{Field, FieldData, FieldType, Path};
use crate::policy::RESPONSE_WRAPPING;
use crate::response::{Response, TokenParams, TokenType};
use crate::token::{StoredToken, TokenEntry};
use crate::tokenutil::parse_policies;

fn token_field() -> Field {
    Field::new("token", FieldType::String, "The token.").sensitive()
}

fn accessor_field() -> Field {
    Field::new("accessor", FieldType::String, "The token's accessor.")
}

fn create_fields() -> Vec<Field> {
    use FieldType::*;
    vec![
        Field::new("policies", CommaStringSlice, "Policies of the new token; the caller's when omitted. A caller without root may only give policies it holds."),
        Field::new("meta", KvPairs, "Metadata of the new token."),
        Field::new("no_parent", Bool, "Root only: create an orphan (not revoked with its creator)."),
        Field::new("no_default_policy", Bool, "Do not add the default policy."),
        Field::new("renewable", Bool, "Whether the token may be renewed (default true)."),
        Field::new("ttl", String, "TTL of the new token (seconds or a duration such as '1h'); 0 means the system default."),
        Field::new("lease", String, "Use ttl.").deprecated(),
        Field::new("explicit_max_ttl", String, "Hard cap on the token's lifetime, renewals included (seconds or a duration)."),
        Field::new("period", String, "Root or sudo only: a periodic token, renewable for this long each time (seconds or a duration)."),
        Field::new("num_uses", Int, "Uses of the new token; 0 means unlimited."),
        Field::new("display_name", String, "Display name (`token-` is prepended)."),
        Field::new("type", String, "'service' (default) or 'batch'."),
        Field::new("role_name", String, "Token roles are not supported: refused when given."),
        Field::new("entity_alias", String, "Token roles are not supported: refused when given."),
    ]
}

/// The `auth/token/` path table, its handlers bound to the core.
pub(super) fn paths(core: &Weak<CoreInner>) -> Vec<Path> {
    let increment = || {
        Field::new(
            "increment",
            FieldType::DurationSecond,
            "The TTL asked for (non-periodic tokens; capped by the max TTL).",
        )
    };
    vec![
        Path::new("create")
            .help("Create a token: a child of the caller, revoked with it and never outliving it.")
            .fields(create_fields())
            .update(core, CoreInner::create_token),
        Path::new("create-orphan")
            .help("Create an orphan token (not revoked with the caller). Needs sudo.")
            .fields(create_fields())
            .sudo()
            .update(core, CoreInner::create_token),
        Path::new("lookup-self")
            .help("Look up the caller's own token.")
            .read(core, CoreInner::lookup_self)
            .update(core, CoreInner::lookup_self),
        Path::new("lookup")
            .help("Look up a token (the caller's own when none is given).")
            .field(token_field())
            .read(core, CoreInner::lookup_token)
            .update(core, CoreInner::lookup_token),
        Path::new("lookup-accessor")
            .help("Look up a token by its accessor.")
            .field(accessor_field())
            .update(core, CoreInner::lookup_accessor),
        Path::new("renew-self")
            .help("Renew the caller's own token.")
            .field(increment())
            .update(core, CoreInner::renew_self),
        Path::new("renew")
            .help("Renew a token.")
            .fields([token_field(), increment()])
            .update(core, CoreInner::renew_token),
        Path::new("renew-accessor")
            .help("Renew a token by its accessor.")
            .fields([accessor_field(), increment()])
            .update(core, CoreInner::renew_accessor),
        Path::new("revoke-self")
            .help("Revoke the caller's own token and its children.")
            .update(core, CoreInner::revoke_self),
        Path::new("revoke")
            .help("Revoke a token and its children.")
            .field(token_field())
            .update(core, CoreInner::revoke_token),
        Path::new("revoke-accessor")
            .help("Revoke a token, and its children, by its accessor.")
            .field(accessor_field())
            .update(core, CoreInner::revoke_accessor),
        Path::new("revoke-orphan")
            .help("Revoke a token and make its children orphans. Needs sudo.")
            .field(token_field())
            .sudo()
            .update(core, CoreInner::revoke_orphan),
        Path::new("accessors/?")
            .help("List the accessors of every stored token. Needs sudo.")
            .sudo()
            .list(core, CoreInner::list_accessors),
        Path::new("roles/?")
            .help(
                "List the token roles: authmount has none (Vault's answer for an empty list, 404).",
            )
            .list(core, CoreInner::list_token_roles),
    ]
}

/// What the token store's own tokens are tuned with: the `token/` mount's tuning
/// (`sys/auth/token/tune`), untuned TTLs from the system limits.
async fn token_store_mount(core: &CoreInner) -> Result<MountInfo> {
    Ok(core.builtin_mounts().await?.token.info(&core.limits))
}

/// A duration parameter of `auth/token/create` (`ttl`, `lease`, `explicit_max_ttl`,
/// `period`): seconds, or a Go duration with Vault's `d` for days; absent or empty is 0.
/// Errors (OpenBao's texts, without a field prefix): 400 with Go's parse error
/// (`time: invalid duration "tomorrow"`), `<name> must be positive` for a negative value.
fn create_duration(f: &FieldData, name: &str) -> Result<i64> {
    let Some(text) = f.str(name).filter(|v| !v.is_empty()) else {
        return Ok(0);
    };
    let seconds = crate::duration::parse_seconds_quoting(text).map_err(Error::invalid)?;
    if seconds < 0 {
        return Err(Error::invalid(format!("{name} must be positive")));
    }
    Ok(seconds)
}

/// A 400 whose message is Go's `multierror` of one error (`1 error occurred:\n\t* <message>\n\n`),
/// as OpenBao words the accessor endpoints' errors.
fn one_error(message: &str) -> Error {
    Error::invalid(format!("1 error occurred:\n\t* {message}\n\n"))
}

/// The `token` parameter. Errors: 400 `missing token ID` (OpenBao's text).
fn token_param(req: &BackendRequest) -> Result<&str> {
    req.fields
        .str("token")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::invalid("missing token ID"))
}

/// The `accessor` parameter. Errors: 400 `missing accessor` as a multierror (OpenBao's
/// text).
fn accessor_param(req: &BackendRequest) -> Result<&str> {
    req.fields
        .str("accessor")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| one_error("missing accessor"))
}

fn caller(req: &BackendRequest) -> Result<&super::Caller> {
    req.caller.as_deref().ok_or(Error::PermissionDenied)
}

impl CoreInner {
    /// A token entry as lookups and renewals show it: with the identity policies of its
    /// entity as they are now (the entity's and its groups'), not those of its login, as
    /// Vault resolves them at each request; `root` is never among them.
    async fn shown(&self, entry: &TokenEntry) -> Result<TokenEntry> {
        let mut shown = entry.clone();
        shown.identity_policies = self
            .identity
            .identity_policies(&entry.entity_id)
            .await?
            .into_iter()
            .filter(|p| p != "root")
            .collect();
        Ok(shown)
    }

    /// `LIST auth/token/roles`: token roles are not served, so the list is always empty:
    /// 404 with an empty error list, as Vault answers an empty list.
    async fn list_token_roles(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        Err(Error::NotFound)
    }

    async fn lookup_self(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let caller = caller(&req)?;
        Ok(Response::json(lookup_data(
            &caller.token,
            &self.shown(caller.entry()).await?,
            self.clock.unix(),
        )))
    }

    /// `auth/token/lookup` (a read with `?token=`, or a write): the token given, or the
    /// caller's own when none is (as Vault does). Errors: 403 `bad token` for a token that
    /// is not valid.
    async fn lookup_token(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let Some(token) = req.fields.str("token").filter(|t| !t.is_empty()) else {
            return self.lookup_self(req).await;
        };
        let found = self
            .tokens
            .lookup(token)
            .await?
            .ok_or_else(|| Error::Forbidden("bad token".into()))?;
        Ok(Response::json(lookup_data(
            token,
            &self.shown(&found.entry).await?,
            self.clock.unix(),
        )))
    }

    async fn by_accessor(&self, req: &BackendRequest) -> Result<StoredToken> {
        self.tokens
            .lookup_accessor(accessor_param(req)?)
            .await?
            .ok_or_else(|| one_error("invalid accessor"))
    }

    async fn lookup_accessor(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let found = self.by_accessor(&req).await?;
        Ok(Response::json(lookup_data(
            "",
            &self.shown(&found.entry).await?,
            self.clock.unix(),
        )))
    }

    async fn renew_self(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let caller = caller(&req)?;
        self.renew(&caller.token, caller.stored.clone(), &req).await
    }

    async fn renew_token(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let token = token_param(&req)?;
        let found = self
            .tokens
            .lookup(token)
            .await?
            .ok_or_else(|| Error::invalid("token not found"))?;
        self.renew(token, found, &req).await
    }

    async fn renew_accessor(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let found = self.by_accessor(&req).await?;
        self.renew("", found, &req).await
    }

    async fn revoke_self(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let caller = caller(&req)?;
        if caller.stored.is_batch() {
            return Err(Error::invalid("batch tokens cannot be revoked"));
        }
        self.tokens.revoke(&caller.stored).await?;
        Ok(Response::default())
    }

    async fn revoke_token(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        if let Some(found) = self.tokens.lookup(token_param(&req)?).await? {
            self.tokens.revoke(&found).await?;
        }
        Ok(Response::default())
    }

    /// Revoking an unknown accessor succeeds with a warning, as in Vault, so clean-up
    /// scripts can run again.
    async fn revoke_accessor(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        match self.tokens.lookup_accessor(accessor_param(&req)?).await? {
            Some(found) => {
                self.tokens.revoke(&found).await?;
                Ok(Response::default())
            }
            None => Ok(Response::warnings(vec![
                "No token found with this accessor".into(),
            ])),
        }
    }

    /// Errors: 400 `token to revoke not found` (OpenBao's text; `revoke` of an unknown
    /// token answers 204).
    async fn revoke_orphan(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let found = self
            .tokens
            .lookup(token_param(&req)?)
            .await?
            .ok_or_else(|| Error::invalid("token to revoke not found"))?;
        self.tokens.revoke_orphan(&found).await?;
        Ok(Response::default())
    }

    async fn list_accessors(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        list_response(self.tokens.accessors().await?)
    }

    /// `auth/token/create` (a child of the caller: revoked with it, never outliving it) and
    /// `create-orphan` (or `no_parent`, for root). A caller without root may only hand out a
    /// subset of its own policies; batch tokens cannot be root tokens.
    async fn create_token(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let f = &req.fields;
        let caller = caller(&req)?;
        let parent = caller.entry();
        if caller.stored.is_batch() {
            return Err(Error::invalid("batch tokens cannot create more tokens"));
        }
        if parent.num_uses != 0 {
            return Err(Error::invalid(
                "restricted use token cannot generate child tokens",
            ));
        }
        // The CLI sends both as empty strings on every create.
        let named = |name| f.str(name).is_some_and(|v| !v.is_empty());
        if named("role_name") || named("entity_alias") {
            return Err(Error::invalid("token roles are not supported"));
        }
        let canonical = format!("auth/token/{}", req.path);
        let parent_is_root = caller.is_root();
        let sudo = parent_is_root || caller.has_sudo(&canonical);
        let requested = f.strings("policies");
        let policies = parse_policies(&requested.unwrap_or_else(|| parent.policies.clone()));
        if policies.iter().any(|p| p == RESPONSE_WRAPPING) {
            return Err(Error::invalid(format!(
                "cannot assign policy {RESPONSE_WRAPPING:?}"
            )));
        }
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
        // OpenBao's checks, in its order and with its texts.
        let token_type = match f.str("type") {
            None | Some("" | "service") => TokenType::Service,
            Some("batch") => TokenType::Batch,
            Some(_) => return Err(Error::invalid("invalid 'token_type' value")),
        };
        let num_uses = f.int("num_uses").unwrap_or(0);
        if token_type == TokenType::Batch {
            let given = |name| f.str(name).is_some_and(|v| !v.is_empty() && v != "0");
            if num_uses != 0 {
                return Err(Error::invalid(r#"batch tokens cannot have "num_uses" set"#));
            }
            for name in ["period", "explicit_max_ttl"] {
                if given(name) {
                    return Err(Error::invalid(format!(
                        "batch tokens cannot have {name:?} set"
                    )));
                }
            }
        }
        if num_uses < 0 {
            return Err(Error::invalid("number of uses cannot be negative"));
        }
        let explicit_max_ttl = create_duration(f, "explicit_max_ttl")?;
        let period = create_duration(f, "period")?;
        let ttl = match f.str("ttl").filter(|v| !v.is_empty()) {
            Some(_) => create_duration(f, "ttl")?,
            None => create_duration(f, "lease")?,
        };
        let params = TokenParams {
            policies: policies.clone(),
            ttl,
            max_ttl: 0,
            explicit_max_ttl,
            period,
            num_uses,
            no_default_policy: f.bool("no_default_policy").unwrap_or(false),
            bound_cidrs: vec![],
            token_type,
        };
        if params.period > 0 && !sudo {
            return Err(Error::invalid(
                "root or sudo privileges required to create periodic token",
            ));
        }
        let is_root_token = policies.iter().any(|p| p == "root");
        let policies = if is_root_token {
            if !parent_is_root {
                return Err(Error::PermissionDenied);
            }
            if token_type == TokenType::Batch {
                return Err(Error::invalid("batch tokens cannot be root tokens"));
            }
            policies
        } else {
            token_policies(&params)?
        };
        let mut warnings = Vec::new();
        let (mut ttl, mut max_ttl) = if is_root_token && params.ttl == 0 && params.period == 0 {
            (0, 0)
        } else {
            token_ttl(&token_store_mount(&self).await?, &params, &mut warnings)
        };
        let orphan =
            req.path == "create-orphan" || (parent_is_root && f.bool("no_parent").unwrap_or(false));
        // A child never outlives its parent.
        let now = self.clock.unix();
        if let (false, Some(parent_expiry)) = (orphan, parent.expire_time) {
            let left = parent_expiry.saturating_sub(now).max(1);
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
        let display = f
            .str("display_name")
            .filter(|d| !d.is_empty())
            .map_or_else(|| "token".to_string(), |d| format!("token-{d}"));
        let mut entry = new_entry(
            &self.clock,
            policies,
            display,
            "auth/token/create".into(),
            ttl,
            max_ttl,
            &params,
        );
        if f.bool("renewable") == Some(false) {
            entry.renewable = false;
        }
        entry.meta = f.kv_pairs("meta");
        if !orphan && !parent.accessor.is_empty() {
            entry.parent_accessor = parent.accessor.clone();
        }
        let (token, entry) = self.tokens.create(entry).await?;
        let mut response = Response::warnings(warnings);
        response.issued = Some(auth_block(&token, &entry, ttl));
        Ok(response)
    }

    /// Renewal (reference §1.4): a login token's backend re-checks (the JWT method re-reads
    /// its role) and its current TTLs apply; never past the token's max TTL from creation,
    /// and never past `explicit_max_ttl`, periodic tokens included. `token` is echoed as
    /// `client_token` (empty when renewed by accessor).
    async fn renew(
        &self,
        token: &str,
        found: StoredToken,
        req: &BackendRequest,
    ) -> Result<Response> {
        if found.is_batch() {
            return Err(Error::invalid("batch tokens cannot be renewed"));
        }
        let entry = &found.entry;
        if !entry.renewable {
            return Err(Error::invalid("lease is not renewable"));
        }
        let increment = req.fields.int("increment").unwrap_or(0);
        let (info, params) = if entry.mount_accessor.is_empty() {
            (token_store_mount(self).await?, entry.params.clone())
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
        let now = self.clock.unix();
        let (mut ttl, max_ttl) = token_ttl(&info, &params, &mut warnings);
        if params.period == 0 && increment > 0 {
            ttl = increment.min(max_ttl);
        }
        let since_creation = |limit: i64| {
            entry
                .creation_time
                .saturating_add(limit)
                .saturating_sub(now)
        };
        if params.period == 0 {
            ttl = ttl.min(since_creation(max_ttl.min(entry.max_ttl.max(1))));
        }
        let explicit = match (entry.explicit_max_ttl, params.explicit_max_ttl) {
            (0, p) => p,
            (e, 0) => e,
            (e, p) => e.min(p),
        };
        if explicit > 0 {
            ttl = ttl.min(since_creation(explicit));
        }
        let ttl = ttl.max(0);
        // Stored by compare-and-set: a use counted meanwhile (on any node) stays counted.
        let renewed = self
            .tokens
            .update(&found, |e| {
                e.expire_time = Some(now.saturating_add(ttl));
                e.last_renewal_time = Some(now);
                e.params = params.clone();
            })
            .await?;
        let mut response = Response::warnings(warnings);
        response.issued = Some(auth_block(token, &self.shown(&renewed.entry).await?, ttl));
        Ok(response)
    }
}
