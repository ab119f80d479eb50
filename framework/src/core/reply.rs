//! The JSON shapes the core answers with: Vault's envelope, the `auth` block, token lookup
//! data, mount entries, health.

use serde_json::{json, Map, Value};

use crate::backend::MountInfo;
use crate::clock::Clock;
use crate::mount::{ListingVisibility, MountConfig, MountEntry};
use crate::response::{Response, TokenType};
use crate::token::TokenEntry;

/// Vault's success envelope.
pub fn envelope(
    data: Option<Map<String, Value>>,
    auth: Option<Value>,
    warnings: &[String],
    mount_type: &str,
) -> Value {
    json!({
        "request_id": uuid::Uuid::new_v4().to_string(),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": if warnings.is_empty() { Value::Null } else { json!(warnings) },
        "auth": auth,
        "mount_type": mount_type,
    })
}

/// `{"keys": [...]}`, or 404 when there are none (Vault: an empty list is not found).
pub fn list_response(keys: Vec<String>) -> crate::Result<Response> {
    if keys.is_empty() {
        return Err(crate::Error::NotFound);
    }
    Ok(Response::json(json!({ "keys": keys })))
}

fn type_name(t: TokenType) -> &'static str {
    if t == TokenType::Batch {
        "batch"
    } else {
        "service"
    }
}

/// The `auth` block of a login, token creation or renewal (reference §4.7).
pub fn auth_block(token: &str, e: &TokenEntry, ttl: i64) -> Value {
    let mut auth = json!({
        "client_token": token,
        "accessor": e.accessor,
        "policies": all_policies(e),
        "token_policies": e.token_policies,
        "metadata": e.meta,
        "lease_duration": ttl,
        "renewable": e.renewable,
        "entity_id": e.entity_id,
        "token_type": type_name(e.token_type),
        "orphan": e.parent_accessor.is_empty(),
        "mfa_requirement": null,
        "num_uses": e.num_uses.max(0),
    });
    if !e.identity_policies.is_empty() {
        auth["identity_policies"] = json!(e.identity_policies);
    }
    auth
}

/// Token and identity policies together, sorted and deduplicated.
pub fn all_policies(e: &TokenEntry) -> Vec<String> {
    let mut all: Vec<String> = e
        .policies
        .iter()
        .chain(&e.identity_policies)
        .cloned()
        .collect();
    all.sort();
    all.dedup();
    all
}

fn rfc3339(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `data` of `lookup-self`, `lookup` and `lookup-accessor` (reference §1.4). `id` is the
/// token itself, or empty when looked up by accessor. `meta` is `null` when the token was
/// given none; `last_renewal_time` (Unix seconds) and `last_renewal` (RFC 3339), `period`
/// and `bound_cidrs` are left out when unset; `identity_policies` (with OpenBao's empty
/// `external_namespace_policies`) only when the entity gives some, as OpenBao answers.
pub fn lookup_data(id: &str, e: &TokenEntry, now: i64) -> Value {
    let mut data = json!({
        "accessor": e.accessor,
        "creation_time": e.creation_time,
        "creation_ttl": e.creation_ttl,
        "display_name": e.display_name,
        "entity_id": e.entity_id,
        "expire_time": e.expire_time.map(rfc3339),
        "explicit_max_ttl": e.explicit_max_ttl,
        "id": id,
        "issue_time": rfc3339(e.creation_time),
        "meta": e.meta,
        // A wrapping token serves one request (authmount counts it by its own rule).
        "num_uses": if e.response_wrapping { 1 } else { e.num_uses.max(0) },
        "orphan": e.parent_accessor.is_empty(),
        "path": e.path,
        "policies": e.policies,
        "renewable": e.renewable,
        "ttl": e.ttl(now),
        "type": type_name(e.token_type),
    });
    // Present only when set, as Vault answers them.
    if let Some(renewed) = e.last_renewal_time {
        data["last_renewal_time"] = json!(renewed);
        data["last_renewal"] = json!(rfc3339(renewed));
    }
    if e.period > 0 {
        data["period"] = json!(e.period);
    }
    if !e.bound_cidrs.is_empty() {
        data["bound_cidrs"] = json!(e
            .bound_cidrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>());
    }
    if !e.identity_policies.is_empty() {
        data["identity_policies"] = json!(e.identity_policies);
        data["external_namespace_policies"] = json!({});
    }
    data
}

/// One entry of `sys/auth` (and the read of `sys/auth/<path>`): the stored settings, TTLs
/// as tuned (0 = the system default).
pub fn mount_json(e: &MountEntry) -> Value {
    let c = &e.config;
    let mut config = json!({
        "default_lease_ttl": c.default_lease_ttl,
        "max_lease_ttl": c.max_lease_ttl,
        "force_no_cache": false,
        "token_type": c.token_type.as_str(),
    });
    add_tuned_lists(&mut config, c);
    json!({
        "accessor": e.accessor,
        "config": config,
        "description": e.description,
        "external_entropy_access": false,
        "local": e.local,
        "options": e.options,
        "plugin_version": "",
        "running_plugin_version": format!("v{}+builtin.authmount", env!("CARGO_PKG_VERSION")),
        "running_sha256": "",
        "seal_wrap": e.seal_wrap,
        "type": e.kind,
        "uuid": e.uuid,
        "deprecation_status": "supported",
    })
}

/// The read of `sys/auth/<path>/tune`: TTLs resolved against the system limits.
pub fn tune_json(e: &MountEntry, info: &MountInfo) -> Value {
    let c = &e.config;
    let mut tune = json!({
        "default_lease_ttl": info.default_lease_ttl,
        "max_lease_ttl": info.max_lease_ttl,
        "force_no_cache": false,
        "token_type": c.token_type.as_str(),
        "description": e.description,
    });
    add_tuned_lists(&mut tune, c);
    if !e.options.is_empty() {
        tune["options"] = json!(e.options);
    }
    tune
}

/// The optional tuning values, present only when set (as Vault answers them).
fn add_tuned_lists(out: &mut Value, c: &MountConfig) {
    if c.listing_visibility != ListingVisibility::Unset {
        out["listing_visibility"] = json!(c.listing_visibility.as_str());
    }
    for (name, list) in [
        (
            "passthrough_request_headers",
            &c.passthrough_request_headers,
        ),
        ("allowed_response_headers", &c.allowed_response_headers),
        (
            "audit_non_hmac_request_keys",
            &c.audit_non_hmac_request_keys,
        ),
        (
            "audit_non_hmac_response_keys",
            &c.audit_non_hmac_response_keys,
        ),
    ] {
        if !list.is_empty() {
            out[name] = json!(list);
        }
    }
}

/// `sys/health`.
pub fn health(clock: &Clock) -> Value {
    json!({
        "initialized": true,
        "sealed": false,
        "standby": false,
        "performance_standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": clock.unix(),
        "version": env!("CARGO_PKG_VERSION"),
        "cluster_name": "authmount",
    })
}
