//! Vault's legacy top-level copies of `data` on some `sys/` answers.
//!
//! Before the `data` envelope existed, these endpoints answered with their fields at the top
//! level, and old clients still read them there (e.g. `resp["type"]` on `GET sys/auth/<path>`,
//! `resp["rules"]` on `GET sys/policy/<name>`). Vault keeps both: on a successful answer of
//! these routes, every member of `data` is also written at the top level, unless the envelope
//! already has a member of that name.
//!
//! Source: Vault `http/handler.go` (`injectDataIntoTopRoutes`) and `sdk/logical`
//! `HTTPSysInjector`.

use serde_json::Value;

/// Routes (after `/v1/`) answered with the copies: an entry ending in `/` covers the whole
/// subtree, any other entry that exact path.
const ROUTES: [&str; 25] = [
    "sys/audit",
    "sys/audit/",
    "sys/audit-hash/",
    "sys/auth",
    "sys/auth/",
    "sys/config/cors",
    "sys/config/auditing/request-headers/",
    "sys/config/auditing/request-headers",
    "sys/capabilities",
    "sys/capabilities-accessor",
    "sys/capabilities-self",
    "sys/ha-status",
    "sys/key-status",
    "sys/mounts",
    "sys/mounts/",
    "sys/policy",
    "sys/policy/",
    "sys/rekey/backup",
    "sys/rekey/recovery-key-backup",
    "sys/rotate/root/backup",
    "sys/rotate/recovery/backup",
    "sys/remount",
    "sys/rotate",
    "sys/rotate/keyring",
    "sys/wrapping/wrap",
];

/// Whether answers to `path` (after `/v1/`, as sent) carry the top-level copies.
pub(super) fn applies(path: &str) -> bool {
    ROUTES.iter().any(|route| match route.strip_suffix('/') {
        Some(_) => path.starts_with(route),
        None => path == *route,
    })
}

/// Copies each member of `body["data"]` to the top level of `body`, where the top level has
/// no member of that name.
pub(super) fn inject(body: &mut Value) {
    let Some(top) = body.as_object_mut() else {
        return;
    };
    let Some(Value::Object(data)) = top.get("data").cloned() else {
        return;
    };
    for (key, value) in data {
        top.entry(key).or_insert(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routes_as_vault_lists_them() {
        for yes in [
            "sys/auth",
            "sys/auth/jwt",
            "sys/auth/team/a/jwt/tune",
            "sys/policy",
            "sys/policy/x",
            "sys/mounts/auth/jwt/tune",
            "sys/capabilities-self",
            "sys/wrapping/wrap",
        ] {
            assert!(applies(yes), "{yes}");
        }
        for no in [
            "sys/policies/acl/x",
            "sys/health",
            "auth/jwt/role/x",
            "sys/authx",
            "sys/wrapping/unwrap",
            "sys/capabilities/x",
        ] {
            assert!(!applies(no), "{no}");
        }
    }

    #[test]
    fn copies_data_without_overwriting_the_envelope() {
        let mut body =
            json!({"request_id": "r", "data": {"type": "jwt", "request_id": "x"}, "auth": null});
        inject(&mut body);
        assert_eq!(body["type"], "jwt");
        assert_eq!(body["request_id"], "r");
        let mut no_data = json!({"data": null, "wrap_info": {"token": "t"}});
        inject(&mut no_data);
        assert_eq!(no_data, json!({"data": null, "wrap_info": {"token": "t"}}));
    }
}
