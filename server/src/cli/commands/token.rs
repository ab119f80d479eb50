//! `token lookup`, `token renew`, `token revoke`, `token capabilities`, `token create`, and
//! `unwrap`. Without a TOKEN argument they act on the current token (`VAULT_TOKEN`, else the
//! stored one): the `*-self` endpoints, or the current token as the wrapping token.
//! Source: Vault `command/token_{lookup,renew,revoke,capabilities,create}.go`,
//! `command/unwrap.go`.

use serde_json::{json, Map, Value};

use super::{print_field, print_secret, say, Ctx};
use crate::cli::args::{
    TokenCapabilitiesArgs, TokenCreateArgs, TokenLookupArgs, TokenRenewArgs, TokenRevokeArgs,
    UnwrapArgs,
};
use crate::cli::output::{self, Format};
use crate::cli::Failure;

/// `token lookup [TOKEN]`: `GET auth/token/lookup-self`, or `POST auth/token/lookup`;
/// `token lookup -accessor ACCESSOR`: `POST auth/token/lookup-accessor`.
pub async fn lookup(ctx: &Ctx, args: &TokenLookupArgs) -> Result<(), Failure> {
    let answer = match (&args.token, args.accessor) {
        (None, _) => ctx.client.read("auth/token/lookup-self").await,
        (Some(accessor), true) => {
            ctx.client
                .post(
                    "auth/token/lookup-accessor",
                    &json!({ "accessor": accessor.trim() }),
                )
                .await
        }
        (Some(token), false) => {
            ctx.client
                .post("auth/token/lookup", &json!({ "token": token.trim() }))
                .await
        }
    }
    .map_err(|e| Failure::Remote(format!("Error looking up token: {e}")))?
    .ok_or_else(|| Failure::Remote("Error looking up token: empty response".into()))?;
    show(ctx, &answer, args.field.as_deref())
}

/// `token renew [-increment=D] [TOKEN]`: `PUT auth/token/renew-self`, or `auth/token/renew`;
/// prints the token table with the new `token_duration`.
pub async fn renew(ctx: &Ctx, args: &TokenRenewArgs) -> Result<(), Failure> {
    let mut body = Map::new();
    if let Some(secs) = args.increment {
        body.insert("increment".into(), json!(secs));
    }
    let path = match &args.token {
        None => "auth/token/renew-self",
        Some(token) => {
            body.insert("token".into(), json!(token.trim()));
            "auth/token/renew"
        }
    };
    let answer = ctx
        .client
        .write(path, &Value::Object(body))
        .await
        .map_err(|e| Failure::Remote(format!("Error renewing token: {e}")))?
        .ok_or_else(|| Failure::Remote("Error renewing token: empty response".into()))?;
    show(ctx, &answer, args.field.as_deref())
}

/// `token revoke TOKEN` or `token revoke -self`: `PUT auth/token/revoke` or `revoke-self`.
pub async fn revoke(ctx: &Ctx, args: &TokenRevokeArgs) -> Result<(), Failure> {
    let result = match (&args.token, args.self_) {
        (Some(token), false) => {
            ctx.client
                .write("auth/token/revoke", &json!({ "token": token.trim() }))
                .await
        }
        (None, true) => ctx.client.write("auth/token/revoke-self", &json!({})).await,
        _ => {
            return Err(Failure::Local(
                "give either a TOKEN or -self, not both".into(),
            ))
        }
    };
    result.map_err(|e| Failure::Remote(format!("Error revoking token: {e}")))?;
    if ctx.format() == Format::Table {
        say("Success! Revoked token (if it existed)");
    }
    Ok(())
}

/// `unwrap [TOKEN]`: `PUT sys/wrapping/unwrap`. The wrapping token goes as the request's
/// own token when there is no current token (or it is the current token), else in the body
/// beside the current token, as Vault's client does. Prints what was wrapped.
pub async fn unwrap(ctx: &Ctx, args: &UnwrapArgs) -> Result<(), Failure> {
    let current = ctx.settings.token.clone().filter(|t| !t.is_empty());
    let wrapping = args.token.as_deref().map(str::trim);
    let (client, body) = match (wrapping, current) {
        (None, None) => {
            return Err(Failure::Local(
                "no wrapping token: give TOKEN, or set VAULT_TOKEN to it".into(),
            ))
        }
        (None, Some(_)) => (ctx.client.clone(), json!({})),
        (Some(token), Some(current)) if token != current => {
            (ctx.client.clone(), json!({ "token": token }))
        }
        (Some(token), _) => (ctx.client.with_token(Some(token.to_string())), json!({})),
    };
    let answer = client
        .write("sys/wrapping/unwrap", &body)
        .await
        .map_err(|e| Failure::Remote(format!("Error unwrapping: {e}")))?
        .ok_or_else(|| Failure::Remote("Could not find wrapped response".into()))?;
    show(ctx, &answer, args.field.as_deref())
}

/// `token capabilities [TOKEN] PATH...`: `POST sys/capabilities-self`, or
/// `sys/capabilities` with TOKEN. One path prints its capabilities as Vault's CLI does
/// (`list, read`; `-format=json`: the list); several print a `Path`/`Capabilities` table
/// (`-format=json`: an object by path).
pub async fn capabilities(ctx: &Ctx, args: &TokenCapabilitiesArgs) -> Result<(), Failure> {
    let (token, paths) = match args.args.as_slice() {
        [path] => (None, vec![path.clone()]),
        [token, paths @ ..] => (Some(token.trim().to_string()), paths.to_vec()),
        [] => {
            return Err(Failure::Local(
                "Not enough arguments (expected 1-2, got 0)".into(),
            ))
        }
    };
    let mut body = json!({ "paths": paths });
    let endpoint = match &token {
        None => "sys/capabilities-self",
        Some(token) => {
            body["token"] = json!(token);
            "sys/capabilities"
        }
    };
    let answer = ctx
        .client
        .post(endpoint, &body)
        .await
        .map_err(|e| Failure::Remote(format!("Error listing capabilities: {e}")))?
        .ok_or_else(|| Failure::Remote("Error listing capabilities: empty response".into()))?;
    let names = |path: &str| -> Vec<String> {
        answer["data"][path]
            .as_array()
            .map(|caps| {
                caps.iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    match (ctx.format(), paths.as_slice()) {
        (f @ (Format::Json | Format::Yaml), [path]) => say(&output::render(&json!(names(path)), f)),
        (Format::Table, [path]) => {
            let mut caps = names(path);
            caps.sort();
            say(&caps.join(", "));
        }
        (f @ (Format::Json | Format::Yaml), _) => {
            let by_path: Map<String, Value> =
                paths.iter().map(|p| (p.clone(), json!(names(p)))).collect();
            say(&output::render(&Value::Object(by_path), f));
        }
        (Format::Table, _) => {
            let mut rows = vec![vec!["Path".to_string(), "Capabilities".to_string()]];
            for path in &paths {
                rows.push(vec![path.clone(), names(path).join(", ")]);
            }
            say(&output::table(&rows));
        }
    }
    Ok(())
}

/// `token create [options]`: `POST auth/token/create` (`create-orphan` with `-orphan`);
/// prints the token table, or one field of it with `-field`.
pub async fn create(ctx: &Ctx, args: &TokenCreateArgs) -> Result<(), Failure> {
    let body = create_body(args);
    let path = match args.orphan {
        true => "auth/token/create-orphan",
        false => "auth/token/create",
    };
    let answer = ctx
        .client
        .write(path, &body)
        .await
        .map_err(|e| Failure::Remote(format!("Error creating token: {e}")))?
        .ok_or_else(|| Failure::Remote("Error creating token: empty response".into()))?;
    show(ctx, &answer, args.field.as_deref())
}

/// The body of `auth/token/create` from the flags: only what was given, and `renewable`.
fn create_body(args: &TokenCreateArgs) -> Value {
    let mut body = Map::new();
    if !args.policies.is_empty() {
        body.insert("policies".into(), json!(args.policies));
    }
    if !args.metadata.is_empty() {
        let meta: Map<String, Value> = args
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        body.insert("meta".into(), Value::Object(meta));
    }
    for (name, value) in [
        ("ttl", args.ttl),
        ("explicit_max_ttl", args.explicit_max_ttl),
        ("period", args.period),
        ("num_uses", args.use_limit),
    ] {
        if let Some(v) = value {
            body.insert(name.into(), json!(v));
        }
    }
    if args.no_default_policy {
        body.insert("no_default_policy".into(), json!(true));
    }
    if let Some(name) = &args.display_name {
        body.insert("display_name".into(), json!(name));
    }
    if let Some(kind) = &args.token_type {
        body.insert("type".into(), json!(kind));
    }
    body.insert("renewable".into(), json!(args.renewable));
    Value::Object(body)
}

fn show(ctx: &Ctx, answer: &Value, field: Option<&str>) -> Result<(), Failure> {
    match field {
        Some(field) => print_field(answer, field, ctx.format()),
        None => {
            print_secret(answer, ctx.format());
            Ok(())
        }
    }
}
