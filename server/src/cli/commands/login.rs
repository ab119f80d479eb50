//! `login`: get a token (log in with a method, or check a given token), store it with the
//! token helper, print the token table. Source: Vault `command/login.go`.

use serde_json::{json, Value};

use super::{print_field, print_secret, read_stdin, say, warn, with_trailing_slash, Ctx};
use crate::cli::args::LoginArgs;
use crate::cli::client::Client;
use crate::cli::output::Format;
use crate::cli::{kv, Failure};

const ENV_TOKEN_WARNING: &str = "\
WARNING! The VAULT_TOKEN environment variable is set! The value of this
variable will take precedence; if this is unwanted please unset VAULT_TOKEN or
update its value accordingly.
";

const STORED: &str = "\
Success! You are now authenticated. The token information displayed below
is already stored in the token helper. You do NOT need to run \"authmount login\"
again. Future requests will automatically use this token.
";

const NOT_STORED: &str = "\
Success! You are now authenticated. The token information displayed below
is NOT stored in the token helper (-no-store). Export it as VAULT_TOKEN to use it.
";

/// `login [-method=M] [-path=P] [-no-store] [-no-print] [-token-only] [-field=F] ...`.
///
/// * `-method=token` (the default): `login TOKEN` or `login -` checks the token with
///   `auth/token/lookup-self` and stores it.
/// * `-method=oidc`: the browser login ([`super::oidc`]): `role=`, `port=`,
///   `listenaddress=`, `callbackhost=`, `skip_browser=`, ... as Vault's CLI takes them.
/// * any other method: `POST auth/<path>/login` with the K=V pairs, without sending the
///   stored token (Vault's CLI drops it for logins too).
pub async fn login(ctx: &Ctx, args: &LoginArgs) -> Result<(), Failure> {
    let method = args.method.trim().to_lowercase();
    let secret = if method == "token" {
        token_login(&ctx.client, &args.args).await?
    } else if method == "oidc" {
        let mount = with_trailing_slash(args.path.as_deref().unwrap_or(&method));
        super::oidc::login(&ctx.client, &ctx.settings.address, &mount, &args.args).await?
    } else {
        let mount = with_trailing_slash(args.path.as_deref().unwrap_or(&method));
        let body = kv::parse(&args.args, &mut std::io::stdin().lock())
            .map_err(|e| Failure::Local(format!("Error parsing configuration: {e}")))?;
        ctx.client
            .with_token(None)
            .write(&format!("auth/{mount}login"), &Value::Object(body))
            .await
            .map_err(|e| Failure::Remote(format!("Error authenticating: {e}")))?
            .ok_or_else(|| Failure::Remote("Error authenticating: empty response".into()))?
    };
    let token = secret
        .pointer("/auth/client_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Failure::Remote("Error authenticating: the answer carries no token".into()))?
        .to_string();

    if args.token_only {
        return print_field(&secret, "token", Format::Table);
    }
    let store = !args.no_store;
    if store {
        let helper = ctx.helper.as_ref().ok_or_else(|| {
            Failure::Local("Error storing token: HOME is not set (use -no-store)".into())
        })?;
        helper.store(&token).map_err(|e| {
            Failure::Local(format!(
                "Error storing token in {}: {e}",
                helper.path().display()
            ))
        })?;
    }
    if ctx.settings.token_from_env && store {
        warn(ENV_TOKEN_WARNING);
    }
    if args.no_print {
        return Ok(());
    }
    if let Some(field) = &args.field {
        return print_field(&secret, field, ctx.format());
    }
    if ctx.format() == Format::Table {
        say(if store { STORED } else { NOT_STORED });
    }
    print_secret(&secret, ctx.format());
    Ok(())
}

/// The token method: the token from the argument (`TOKEN`, `token=TOKEN`) or stdin (`-`),
/// checked with `lookup-self` and turned into a login answer (Vault's token CLI handler).
async fn token_login(client: &Client, args: &[String]) -> Result<Value, Failure> {
    let token = match args {
        [] => {
            return Err(Failure::Local(
                "Not enough arguments: give the token, or - to read it from stdin".into(),
            ))
        }
        [one] if one == "-" => read_stdin()?.trim().to_string(),
        [one] => one.strip_prefix("token=").unwrap_or(one).trim().to_string(),
        more => {
            return Err(Failure::Local(format!(
                "Too many arguments (expected 1, got {})",
                more.len()
            )))
        }
    };
    if token.is_empty() {
        return Err(Failure::Local(
            "Error authenticating: the token is empty".into(),
        ));
    }
    let lookup = client
        .with_token(Some(token.clone()))
        .read("auth/token/lookup-self")
        .await
        .map_err(|e| Failure::Remote(format!("Error authenticating: error looking up token: {e}")))?
        .unwrap_or(Value::Null);
    let data = lookup.get("data").cloned().unwrap_or(Value::Null);
    let field = |k: &str| data.get(k).cloned().unwrap_or(Value::Null);
    Ok(json!({
        "request_id": lookup.get("request_id").cloned().unwrap_or(Value::Null),
        "lease_id": "",
        "lease_duration": 0,
        "renewable": false,
        "data": null,
        "warnings": lookup.get("warnings").cloned().unwrap_or(Value::Null),
        "auth": {
            "client_token": token,
            "accessor": field("accessor"),
            "policies": field("policies"),
            "token_policies": field("policies"),
            "identity_policies": data.get("identity_policies").cloned().unwrap_or(json!([])),
            "metadata": field("meta"),
            "lease_duration": field("ttl"),
            "renewable": field("renewable"),
            "entity_id": field("entity_id"),
        },
    }))
}
