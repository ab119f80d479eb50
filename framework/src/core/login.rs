//! From a backend's [`Auth`] to a token: policies, identity and groups, token type, TTLs.
//! Every backend, the JWT method and yours alike, gets Vault's token semantics here.
//!
//! Source: Vault `request_handling.go` (login), reference §4.7 (TTL rules).

use serde_json::{Map, Value};

use super::reply::auth_block;
use super::{CoreInner, Route};
use crate::backend::MountInfo;
use crate::clock::Clock;
use crate::duration;
use crate::error::{Error, Result};
use crate::mount::MountTokenType;
use crate::response::{Auth, TokenParams, TokenType};
use crate::token::TokenEntry;
use crate::tokenutil::parse_policies;

impl CoreInner {
    /// Turns a backend's `Auth`, from a login at the canonical `path`, into a token and
    /// answers its `auth` block.
    pub(super) async fn issue_token(
        &self,
        route: &Route,
        path: &str,
        auth: Auth,
        warnings: &mut Vec<String>,
    ) -> Result<Value> {
        let info = &route.mount;
        let params = &auth.token;
        let policies = token_policies(params)?;
        if auth.alias.name.is_empty() {
            return Err(Error::invalid("missing name in alias"));
        }
        let (_, entity) = self
            .identity
            .upsert_alias(&info.accessor, &auth.alias.name, &auth.alias.metadata)
            .await?;
        if entity.disabled {
            return Err(Error::PermissionDenied);
        }
        let groups = self
            .identity
            .sync_external_groups(&entity.id, &info.accessor, &auth.group_aliases)
            .await?;
        // The entity's own policies and its groups'. Identity never grants root (refused
        // at write; ignored here for stores written before that rule).
        let mut identity_policies: Vec<String> = crate::identity::group_policies(&groups)
            .into_iter()
            .chain(entity.policies.iter().cloned())
            .filter(|p| p != "root")
            .collect();
        identity_policies.sort();
        identity_policies.dedup();
        let tuned = self
            .mounts
            .by_accessor(&info.accessor)?
            .map(|m| m.entry.config.token_type)
            .unwrap_or_default();
        let (ttl, max_ttl) = token_ttl(info, params, warnings);
        let mut entry = new_entry(
            &self.clock,
            policies,
            format!("{}{}", info.path.replace('/', "-"), auth.alias.name),
            path.to_string(),
            ttl,
            max_ttl,
            params,
        );
        if token_type(tuned, params.token_type) == TokenType::Batch {
            entry.token_type = TokenType::Batch;
            entry.renewable = false;
        }
        // No metadata reads as `null`, as a Vault login whose backend sets none.
        entry.meta = (!auth.metadata.is_empty()).then(|| auth.metadata.clone());
        entry.mount_accessor = info.accessor.clone();
        entry.entity_id = entity.id.clone();
        entry.internal_data = auth.internal_data.clone();
        entry.identity_policies = identity_policies;
        let (token, entry) = self.tokens.create(entry).await?;
        Ok(auth_block(&token, &entry, ttl))
    }
}

/// The kind of token a login issues: the mount's forced type, else the role's choice, else
/// the mount's default. Source: Vault `sys/auth` `token_type`.
pub(super) fn token_type(mount: MountTokenType, role: TokenType) -> TokenType {
    match (mount, role) {
        (MountTokenType::Service, _) => TokenType::Service,
        (MountTokenType::Batch, _) => TokenType::Batch,
        (MountTokenType::DefaultBatch, TokenType::Default) => TokenType::Batch,
        (MountTokenType::DefaultService, TokenType::Default) => TokenType::Service,
        (_, chosen) => chosen,
    }
}

/// A token entry with the given policies, names and TTLs; the rest from `params`.
pub(super) fn new_entry(
    clock: &Clock,
    policies: Vec<String>,
    display_name: String,
    path: String,
    ttl: i64,
    max_ttl: i64,
    params: &TokenParams,
) -> TokenEntry {
    let now = clock.unix();
    let batch = params.token_type == TokenType::Batch;
    TokenEntry {
        accessor: String::new(),
        token_policies: policies.clone(),
        policies,
        meta: Default::default(),
        display_name,
        path,
        mount_accessor: String::new(),
        entity_id: String::new(),
        creation_time: now,
        creation_ttl: ttl,
        expire_time: (ttl > 0).then(|| now.saturating_add(ttl)),
        max_ttl,
        explicit_max_ttl: params.explicit_max_ttl,
        period: params.period,
        num_uses: params.num_uses,
        bound_cidrs: params.bound_cidrs.clone(),
        token_type: if batch {
            TokenType::Batch
        } else {
            TokenType::Service
        },
        renewable: !batch && ttl > 0,
        internal_data: Map::new(),
        params: params.clone(),
        last_renewal_time: None,
        identity_policies: vec![],
        parent_accessor: String::new(),
        response_wrapping: false,
    }
}

/// The policies of a new token: normalised, `default` added unless refused; `root` is
/// refused (auth methods never issue root tokens), and so is `response-wrapping` (only
/// wrapping tokens hold it). Errors: 400.
pub(super) fn token_policies(params: &TokenParams) -> Result<Vec<String>> {
    let mut policies = parse_policies(&params.policies);
    if policies.iter().any(|p| p == "root") {
        return Err(Error::invalid("auth methods cannot create root tokens"));
    }
    // The wrapping tokens' own policy is never given to a login's token (OpenBao 2.7.2
    // answers the same 400 as `auth/token/create` does).
    if policies
        .iter()
        .any(|p| p == crate::policy::RESPONSE_WRAPPING)
    {
        return Err(Error::invalid(format!(
            "cannot assign policy {:?}",
            crate::policy::RESPONSE_WRAPPING
        )));
    }
    if !params.no_default_policy && !policies.iter().any(|p| p == "default") {
        policies.push("default".into());
        policies.sort();
    }
    Ok(policies)
}

/// The TTL and effective max TTL of a new or renewed token (reference §4.7): the max is the
/// mount's max lowered by `max_ttl` and `explicit_max_ttl`; a period gives the TTL, else
/// `ttl` or the mount default; a TTL above the max is capped with Vault's warning.
pub(super) fn token_ttl(
    info: &MountInfo,
    p: &TokenParams,
    warnings: &mut Vec<String>,
) -> (i64, i64) {
    let mut max = info.max_lease_ttl;
    if p.max_ttl > 0 && p.max_ttl < max {
        max = p.max_ttl;
    }
    if p.explicit_max_ttl > 0 && p.explicit_max_ttl < max {
        max = p.explicit_max_ttl;
    }
    if p.period > 0 {
        return (p.period.min(max), max);
    }
    let wanted = if p.ttl > 0 {
        p.ttl
    } else {
        info.default_lease_ttl
    };
    if wanted > max {
        warnings.push(format!(
            "TTL of {:?} exceeded the effective max_ttl of {:?}; TTL value is capped accordingly",
            duration::format_compact(wanted),
            duration::format_compact(max)
        ));
        return (max, max);
    }
    (wanted, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_decides_the_token_type_unless_it_leaves_it_to_the_role() {
        use MountTokenType as M;
        use TokenType as T;
        assert_eq!(token_type(M::DefaultService, T::Default), T::Service);
        assert_eq!(token_type(M::DefaultService, T::Batch), T::Batch);
        assert_eq!(token_type(M::DefaultBatch, T::Default), T::Batch);
        assert_eq!(token_type(M::DefaultBatch, T::Service), T::Service);
        assert_eq!(token_type(M::Service, T::Batch), T::Service);
        assert_eq!(token_type(M::Batch, T::Service), T::Batch);
    }
}
