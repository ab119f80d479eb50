//! The JSON shapes the core answers with: Vault's envelope, the `auth` block, token lookup
//! data, mount entries, health.

use serde_json::{json, Map, Value};

use crate::mount::{MountConfig, MountEntry};
use crate::response::{Reply, TokenType};
use crate::token::{now_unix, TokenEntry};

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

/// 200 with `data` (a JSON object literal) in the envelope.
pub fn data_reply(data: Value, mount_type: &str) -> Reply {
    Reply::ok(envelope(data.as_object().cloned(), None, &[], mount_type))
}

/// `{"keys": [...]}`, or 404 when there are none (Vault: an empty list is not found).
pub fn list_reply(keys: Vec<String>, mount_type: &str) -> crate::Result<Reply> {
    if keys.is_empty() {
        return Err(crate::Error::NotFound);
    }
    Ok(data_reply(json!({ "keys": keys }), mount_type))
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
/// token itself, or empty when looked up by accessor.
pub fn lookup_data(id: &str, e: &TokenEntry) -> Value {
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
        "last_renewal_time": e.last_renewal_time,
        "meta": if e.meta.is_empty() { Value::Null } else { json!(e.meta) },
        "num_uses": e.num_uses.max(0),
        "orphan": e.parent_accessor.is_empty(),
        "path": e.path,
        "period": if e.period > 0 { json!(e.period) } else { Value::Null },
        "policies": e.policies,
        "renewable": e.renewable,
        "ttl": e.ttl(now_unix()),
        "type": type_name(e.token_type),
        "bound_cidrs": if e.bound_cidrs.is_empty() { Value::Null } else {
            json!(e.bound_cidrs.iter().map(ToString::to_string).collect::<Vec<_>>())
        },
    });
    if !e.identity_policies.is_empty() {
        data["identity_policies"] = json!(e.identity_policies);
    }
    data
}

/// Vault's name of a mount's token type setting.
pub fn token_type_name(config: &MountConfig) -> &str {
    if config.token_type.is_empty() {
        "default-service"
    } else {
        &config.token_type
    }
}

/// One entry of `sys/auth`.
pub fn mount_json(e: &MountEntry) -> Value {
    json!({
        "accessor": e.accessor,
        "config": {
            "default_lease_ttl": e.config.default_lease_ttl,
            "max_lease_ttl": e.config.max_lease_ttl,
            "force_no_cache": false,
            "token_type": token_type_name(&e.config),
        },
        "description": e.description,
        "external_entropy_access": false,
        "local": e.local,
        "options": null,
        "plugin_version": "",
        "running_plugin_version": format!("v{}+builtin.authmount", env!("CARGO_PKG_VERSION")),
        "running_sha256": "",
        "seal_wrap": e.seal_wrap,
        "type": e.kind,
        "uuid": e.uuid,
        "deprecation_status": "supported",
    })
}

/// `sys/health`.
pub fn health() -> Value {
    json!({
        "initialized": true,
        "sealed": false,
        "standby": false,
        "performance_standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": now_unix(),
        "version": env!("CARGO_PKG_VERSION"),
        "cluster_name": "authmount",
    })
}
