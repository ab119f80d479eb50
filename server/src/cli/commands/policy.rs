//! `policy write`, `policy read`, `policy list`, `policy delete`: ACL policies at
//! `sys/policies/acl/<name>` (list: `sys/policy`). Policy names are lower-cased, as Vault
//! stores them. Source: Vault `command/policy_*.go`, `api/sys_policy.go`.

use serde_json::{json, Value};

use super::{read_stdin, say, Ctx};
use crate::cli::args::{PolicyNameArgs, PolicyWriteArgs};
use crate::cli::output::{self, Format};
use crate::cli::Failure;

/// `policy write NAME FILE` (FILE `-` for stdin): `PUT sys/policies/acl/<name>
/// {"policy": <text>}`; prints `Success! Uploaded policy: <name>`.
pub async fn write(ctx: &Ctx, args: &PolicyWriteArgs) -> Result<(), Failure> {
    let name = normalize(&args.name);
    let text = if args.file == "-" {
        read_stdin()?
    } else {
        std::fs::read_to_string(&args.file)
            .map_err(|e| Failure::Local(format!("Error opening policy file: {e}")))?
    };
    ctx.client
        .write(
            &format!("sys/policies/acl/{name}"),
            &json!({ "policy": text }),
        )
        .await
        .map_err(|e| Failure::Remote(format!("Error uploading policy: {e}")))?;
    say(&format!("Success! Uploaded policy: {name}"));
    Ok(())
}

/// `policy read NAME`: `GET sys/policies/acl/<name>`; prints the policy text (table) or
/// `{"policy": ...}` (json). Absent: `No policy named: <name>`, exit 2.
pub async fn read(ctx: &Ctx, args: &PolicyNameArgs) -> Result<(), Failure> {
    let name = normalize(&args.name);
    let absent = || Failure::Remote(format!("No policy named: {name}"));
    let answer = match ctx.client.read(&format!("sys/policies/acl/{name}")).await {
        Ok(Some(answer)) => answer,
        Ok(None) => return Err(absent()),
        Err(e) if e.is_not_found() => return Err(absent()),
        Err(e) => {
            return Err(Failure::Remote(format!(
                "Error reading policy named {name}: {e}"
            )))
        }
    };
    let rules = answer
        .pointer("/data/policy")
        .or_else(|| answer.pointer("/data/rules"))
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .ok_or_else(absent)?;
    match ctx.format() {
        Format::Table => say(rules.trim()),
        f @ (Format::Json | Format::Yaml) => say(&output::render(&json!({ "policy": rules }), f)),
    }
    Ok(())
}

/// `policy list`: `GET sys/policy`; one name per line (table) or a JSON list.
pub async fn list(ctx: &Ctx) -> Result<(), Failure> {
    let answer = ctx
        .client
        .read("sys/policy")
        .await
        .map_err(|e| Failure::Remote(format!("Error listing policies: {e}")))?
        .unwrap_or(Value::Null);
    let names: Vec<String> = ["/data/policies", "/data/keys", "/policies", "/keys"]
        .iter()
        .find_map(|p| answer.pointer(p).and_then(Value::as_array))
        .map(|a| a.iter().map(output::go_value).collect())
        .unwrap_or_default();
    match ctx.format() {
        Format::Table => names.iter().for_each(|n| say(n)),
        f @ (Format::Json | Format::Yaml) => say(&output::render(&json!(names), f)),
    }
    Ok(())
}

/// `policy delete NAME`: `DELETE sys/policies/acl/<name>`.
pub async fn delete(ctx: &Ctx, args: &PolicyNameArgs) -> Result<(), Failure> {
    let name = normalize(&args.name);
    ctx.client
        .delete(&format!("sys/policies/acl/{name}"))
        .await
        .map_err(|e| Failure::Remote(format!("Error deleting {name}: {e}")))?;
    say(&format!("Success! Deleted policy: {name}"));
    Ok(())
}

fn normalize(name: &str) -> String {
    name.trim().to_lowercase()
}
