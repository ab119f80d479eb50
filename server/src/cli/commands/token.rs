//! `token lookup`, `token renew`, `token revoke`, and `unwrap`. Without a TOKEN argument they
//! act on the current token (`VAULT_TOKEN`, else the stored one): the `*-self` endpoints, or
//! the current token as the wrapping token.
//! Source: Vault `command/token_{lookup,renew,revoke}.go`, `command/unwrap.go`.

use serde_json::{json, Map, Value};

use super::{print_field, print_secret, say, Ctx};
use crate::cli::args::{TokenLookupArgs, TokenRenewArgs, TokenRevokeArgs, UnwrapArgs};
use crate::cli::output::Format;
use crate::cli::Failure;

/// `token lookup [TOKEN]`: `GET auth/token/lookup-self`, or `POST auth/token/lookup`.
pub async fn lookup(ctx: &Ctx, args: &TokenLookupArgs) -> Result<(), Failure> {
    let answer = match &args.token {
        None => ctx.client.read("auth/token/lookup-self").await,
        Some(token) => {
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

fn show(ctx: &Ctx, answer: &Value, field: Option<&str>) -> Result<(), Failure> {
    match field {
        Some(field) => print_field(answer, field, ctx.format()),
        None => {
            print_secret(answer, ctx.format());
            Ok(())
        }
    }
}
