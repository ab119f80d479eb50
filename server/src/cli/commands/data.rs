//! `write`, `read`, `list`, `delete`: any path of the API, Vault's generic commands.
//! Source: Vault `command/{write,read,list,delete}.go`.

use serde_json::Value;

use super::{print_field, print_secret, sanitize, say, warn, with_trailing_slash, Ctx};
use crate::cli::args::{DeleteArgs, ListArgs, PathHelpArgs, ReadArgs, WriteArgs};
use crate::cli::output::{self, Format};
use crate::cli::{kv, Failure};

/// `write PATH K=V...`: `PUT /v1/<path>` with the body built from the pairs. An empty
/// answer prints `Success! Data written to: <path>`; a login prints the token table.
pub async fn write(ctx: &Ctx, args: &WriteArgs) -> Result<(), Failure> {
    let path = sanitize(&args.path);
    if args.data.is_empty() && !args.force {
        return Err(Failure::Local("Must supply data or use -force".into()));
    }
    let body = kv::parse(&args.data, &mut std::io::stdin().lock())
        .map_err(|e| Failure::Local(format!("Failed to parse K=V data: {e}")))?;
    let answer = ctx
        .client
        .write(&path, &Value::Object(body))
        .await
        .map_err(|e| Failure::Remote(format!("Error writing data to {path}: {e}")))?;
    finish(ctx, answer, args.field.as_deref(), || {
        format!("Success! Data written to: {path}")
    })
}

/// `read PATH`: `GET /v1/<path>`. Nothing there: `No value found at <path>`, exit 2.
pub async fn read(ctx: &Ctx, args: &ReadArgs) -> Result<(), Failure> {
    let path = sanitize(&args.path);
    let not_found = || Failure::Remote(format!("No value found at {path}"));
    let secret = match ctx.client.read(&path).await {
        Ok(Some(secret)) => secret,
        Ok(None) => return Err(not_found()),
        Err(e) if e.is_not_found() => return Err(not_found()),
        Err(e) => return Err(Failure::Remote(format!("Error reading {path}: {e}"))),
    };
    match &args.field {
        Some(field) => print_field(&secret, field, ctx.format()),
        None => {
            print_secret(&secret, ctx.format());
            Ok(())
        }
    }
}

/// `path-help PATH`: `GET /v1/<path>?help=1`; prints the help text (table) or the whole
/// answer, OpenAPI document included (json). Source: Vault `command/path_help.go`.
pub async fn path_help(ctx: &Ctx, args: &PathHelpArgs) -> Result<(), Failure> {
    let path = sanitize(&args.path);
    let path = if args.path.trim().ends_with('/') {
        format!("{path}/")
    } else {
        path
    };
    let answer = ctx
        .client
        .help(&path)
        .await
        .map_err(|e| Failure::Remote(format!("Error retrieving help: {e}")))?
        .ok_or_else(|| Failure::Remote("Error retrieving help: empty response".into()))?;
    match ctx.format() {
        f @ (Format::Json | Format::Yaml) => say(&output::render(&answer, f)),
        Format::Table => say(answer["help"].as_str().unwrap_or_default()),
    }
    Ok(())
}

/// `list PATH`: `GET /v1/<path>/?list=true`, the keys sorted under a `Keys` header.
pub async fn list(ctx: &Ctx, args: &ListArgs) -> Result<(), Failure> {
    let path = with_trailing_slash(&args.path);
    let not_found = || Failure::Remote(format!("No value found at {path}"));
    let secret = match ctx.client.list(&path).await {
        Ok(Some(secret)) => secret,
        Ok(None) => return Err(not_found()),
        Err(e) if e.is_not_found() => return Err(not_found()),
        Err(e) => return Err(Failure::Remote(format!("Error listing {path}: {e}"))),
    };
    let Some(keys) = secret
        .get("data")
        .and_then(|d| d.get("keys"))
        .and_then(Value::as_array)
    else {
        if let Some(w) = output::warnings(&secret) {
            warn(&w);
        }
        return Err(Failure::Remote(format!("No entries found at {path}")));
    };
    let mut keys: Vec<String> = keys.iter().map(output::go_value).collect();
    keys.sort();
    match ctx.format() {
        f @ (Format::Json | Format::Yaml) => say(&output::render(&serde_json::json!(keys), f)),
        Format::Table => {
            if let Some(w) = output::warnings(&secret) {
                warn(&w);
            }
            let mut rows = vec![vec!["Keys".to_string()]];
            rows.extend(keys.into_iter().map(|k| vec![k]));
            say(&output::table(&rows));
        }
    }
    Ok(())
}

/// `delete PATH`: `DELETE /v1/<path>`; prints `Success! Data deleted (if it existed) at: <path>`.
pub async fn delete(ctx: &Ctx, args: &DeleteArgs) -> Result<(), Failure> {
    let path = sanitize(&args.path);
    let answer = ctx
        .client
        .delete(&path)
        .await
        .map_err(|e| Failure::Remote(format!("Error deleting {path}: {e}")))?;
    finish(ctx, answer, None, || {
        format!("Success! Data deleted (if it existed) at: {path}")
    })
}

/// Prints the answer of a write or delete: the field asked for, the answer's table, or the
/// `Success!` line when the answer has nothing else to show (table format only; warnings
/// still go to stderr).
fn finish(
    ctx: &Ctx,
    answer: Option<Value>,
    field: Option<&str>,
    success: impl Fn() -> String,
) -> Result<(), Failure> {
    let format = ctx.format();
    match (answer, field) {
        (Some(secret), Some(field)) => print_field(&secret, field, format),
        (None, Some(field)) => Err(Failure::Local(format!(
            "Field {field:?} not present in secret"
        ))),
        (Some(secret), None) if output::has_content(&secret) || format.is_structured() => {
            print_secret(&secret, format);
            Ok(())
        }
        (answer, None) => {
            if let Some(w) = answer.as_ref().and_then(output::warnings) {
                warn(&w);
            }
            if format == Format::Table {
                say(&success());
            }
            Ok(())
        }
    }
}
