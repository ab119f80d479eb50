//! `auth enable`, `auth disable`, `auth list`, `auth tune`: the mount table under
//! `sys/auth`. Source: Vault `command/auth_*.go`.

use serde_json::{json, Map, Value};

use super::{sanitize, say, with_trailing_slash, Ctx};
use crate::cli::args::{AuthDisableArgs, AuthEnableArgs, AuthListArgs, AuthTuneArgs, TuneFlags};
use crate::cli::output::{self, Format};
use crate::cli::Failure;

/// `auth enable [-path=P] [-description=D] [-default-lease-ttl=..] [-max-lease-ttl=..] TYPE`:
/// `POST sys/auth/<path>`; prints `Success! Enabled jwt auth method at: my-path/`.
pub async fn enable(ctx: &Ctx, args: &AuthEnableArgs) -> Result<(), Failure> {
    let kind = args.kind.trim();
    let path = with_trailing_slash(args.path.as_deref().unwrap_or(kind));
    if path == "/" {
        return Err(Failure::Local("the auth method's path is empty".into()));
    }
    let mut body = json!({
        "type": kind,
        "description": args.description.clone().unwrap_or_default(),
        "local": args.local,
        "seal_wrap": args.seal_wrap,
    });
    let config = tune_body(&args.tuning);
    if !config.is_empty() {
        body["config"] = Value::Object(config);
    }
    ctx.client
        .post(&format!("sys/auth/{}", path.trim_end_matches('/')), &body)
        .await
        .map_err(|e| Failure::Remote(format!("Error enabling {kind} auth: {e}")))?;
    say(&format!("Success! Enabled {kind} auth method at: {path}"));
    Ok(())
}

/// `auth disable PATH`: `DELETE sys/auth/<path>`, which also revokes the tokens it issued.
pub async fn disable(ctx: &Ctx, args: &AuthDisableArgs) -> Result<(), Failure> {
    let path = with_trailing_slash(&args.path);
    ctx.client
        .delete(&format!("sys/auth/{path}"))
        .await
        .map_err(|e| Failure::Remote(format!("Error disabling auth method at {path}: {e}")))?;
    say(&format!(
        "Success! Disabled the auth method (if it existed) at: {path}"
    ));
    Ok(())
}

/// `auth list [-detailed]`: `GET sys/auth`, one row per mount, sorted by path.
pub async fn list(ctx: &Ctx, args: &AuthListArgs) -> Result<(), Failure> {
    let answer = ctx
        .client
        .read("sys/auth")
        .await
        .map_err(|e| Failure::Remote(format!("Error listing enabled authentications: {e}")))?
        .unwrap_or(Value::Null);
    // Vault's answer carries the mounts under `data` and, for old clients, at the top.
    let mounts: Map<String, Value> = match answer.get("data").and_then(Value::as_object) {
        Some(data) => data.clone(),
        None => answer
            .as_object()
            .map(|top| {
                top.iter()
                    .filter(|(k, v)| k.ends_with('/') && v.is_object())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default(),
    };
    match ctx.format() {
        f @ (Format::Json | Format::Yaml) => say(&output::render(&Value::Object(mounts), f)),
        Format::Table if args.detailed => say(&output::table(&detailed_rows(&mounts))),
        Format::Table => say(&output::table(&simple_rows(&mounts))),
    }
    Ok(())
}

/// `auth tune [-default-lease-ttl=..] [-max-lease-ttl=..] [-description=D] PATH`:
/// `POST sys/mounts/auth/<path>/tune` with the flags that were given.
pub async fn tune(ctx: &Ctx, args: &AuthTuneArgs) -> Result<(), Failure> {
    let path = with_trailing_slash(&args.path);
    let mut body = tune_body(&args.tuning);
    if let Some(d) = &args.description {
        body.insert("description".into(), json!(d));
    }
    ctx.client
        .post(
            &format!("sys/mounts/auth/{}/tune", sanitize(&args.path)),
            &Value::Object(body),
        )
        .await
        .map_err(|e| Failure::Remote(format!("Error tuning auth method {path}: {e}")))?;
    say(&format!("Success! Tuned the auth method at: {path}"));
    Ok(())
}

/// The tuning fields that were given; a negative TTL means "system" (Vault's `ttlToAPI`).
fn tune_body(flags: &TuneFlags) -> Map<String, Value> {
    let ttl = |secs: i64| {
        if secs < 0 {
            json!("system")
        } else {
            json!(secs)
        }
    };
    let mut body = Map::new();
    if let Some(secs) = flags.default_lease_ttl {
        body.insert("default_lease_ttl".into(), ttl(secs));
    }
    if let Some(secs) = flags.max_lease_ttl {
        body.insert("max_lease_ttl".into(), ttl(secs));
    }
    if let Some(t) = &flags.token_type {
        body.insert("token_type".into(), json!(t));
    }
    body
}

fn text(mount: &Value, key: &str) -> String {
    match mount.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(v) => output::go_value(v),
    }
}

/// `Path | Type | Accessor | Description | Version` (Vault's `simpleMounts`).
fn simple_rows(mounts: &Map<String, Value>) -> Vec<Vec<String>> {
    let mut rows = vec![["Path", "Type", "Accessor", "Description", "Version"]
        .map(String::from)
        .to_vec()];
    for (path, m) in output::sorted(mounts) {
        rows.push(vec![
            path.clone(),
            text(m, "type"),
            text(m, "accessor"),
            text(m, "description"),
            text(m, "plugin_version"),
        ]);
    }
    rows
}

/// Every column of Vault's `auth list -detailed`.
fn detailed_rows(mounts: &Map<String, Value>) -> Vec<Vec<String>> {
    let header = [
        "Path",
        "Plugin",
        "Accessor",
        "Default TTL",
        "Max TTL",
        "Token Type",
        "Replication",
        "Seal Wrap",
        "External Entropy Access",
        "Options",
        "Description",
        "UUID",
        "Version",
        "Running Version",
        "Running SHA256",
        "Deprecation Status",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    for (path, m) in output::sorted(mounts) {
        let config = m.get("config").cloned().unwrap_or(Value::Null);
        let ttl = |key: &str| match config.get(key).and_then(Value::as_i64) {
            None | Some(0) => "system".to_string(),
            Some(secs) => output::human_duration(secs),
        };
        let flag = |key: &str| m.get(key).and_then(Value::as_bool).unwrap_or(false);
        let options = match m.get("options") {
            None | Some(Value::Null) => "map[]".to_string(),
            Some(v) => output::go_value(v),
        };
        rows.push(vec![
            path.clone(),
            text(m, "type"),
            text(m, "accessor"),
            ttl("default_lease_ttl"),
            ttl("max_lease_ttl"),
            text(&config, "token_type"),
            if flag("local") { "local" } else { "replicated" }.to_string(),
            flag("seal_wrap").to_string(),
            flag("external_entropy_access").to_string(),
            options,
            text(m, "description"),
            text(m, "uuid"),
            text(m, "plugin_version"),
            text(m, "running_plugin_version"),
            text(m, "running_sha256"),
            text(m, "deprecation_status"),
        ]);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_mounts_as_vault_does() {
        let mounts = json!({
            "my-path/": {"type": "jwt", "accessor": "auth_jwt_2", "description": "team",
                         "plugin_version": "", "config": {"default_lease_ttl": 1800}},
            "jwt/": {"type": "jwt", "accessor": "auth_jwt_1", "description": "",
                     "plugin_version": "", "local": true},
        });
        let mounts = mounts.as_object().unwrap();
        assert_eq!(
            output::table(&simple_rows(mounts)),
            "Path        Type    Accessor      Description    Version\n\
             ----        ----    --------      -----------    -------\n\
             jwt/        jwt     auth_jwt_1    n/a            n/a\n\
             my-path/    jwt     auth_jwt_2    team           n/a"
        );
        let detailed = detailed_rows(mounts);
        assert_eq!(detailed[1][3], "system");
        assert_eq!(detailed[1][6], "local");
        assert_eq!(detailed[2][3], "30m");
        assert_eq!(detailed[2][9], "map[]");
    }

    #[test]
    fn tuning_sends_only_the_given_flags() {
        let flags = TuneFlags {
            default_lease_ttl: Some(1800),
            max_lease_ttl: Some(-1),
            token_type: None,
        };
        assert_eq!(
            Value::Object(tune_body(&flags)),
            json!({"default_lease_ttl": 1800, "max_lease_ttl": "system"})
        );
        assert!(tune_body(&TuneFlags::default()).is_empty());
    }
}
