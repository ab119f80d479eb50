//! `operator init`, `operator unseal`, `operator seal` and `status`. Source: Vault
//! `command/operator_init.go`, `operator_unseal.go`, `operator_seal.go`, `status.go`.

use serde_json::{json, Value};

use super::{read_stdin, say, Ctx};
use crate::cli::args::{OperatorInitArgs, OperatorUnsealArgs};
use crate::cli::output::{self, Format};
use crate::cli::Failure;

/// `operator init [-key-shares=5] [-key-threshold=3] [-format=json]`: `PUT sys/init` once.
/// A Shamir-sealed server gets the share counts; a static seal takes none. Prints the
/// unseal keys and the initial root token. Errors (remote): already initialized, bad
/// counts, or unreachable.
pub async fn init(ctx: &Ctx, args: &OperatorInitArgs) -> Result<(), Failure> {
    let fail = |e: &dyn std::fmt::Display| Failure::Remote(format!("Error initializing: {e}"));
    let status = ctx
        .client
        .read("sys/seal-status")
        .await
        .map_err(|e| fail(&e))?
        .unwrap_or(Value::Null);
    let shamir = status["type"].as_str() == Some("shamir");
    let body = if shamir {
        json!({ "secret_shares": args.key_shares, "secret_threshold": args.key_threshold })
    } else {
        json!({})
    };
    let answer = ctx
        .client
        .write("sys/init", &body)
        .await
        .map_err(|e| fail(&e))?
        .ok_or_else(|| fail(&"empty response"))?;
    let root = answer["root_token"].as_str().unwrap_or_default();
    let list = |name: &str| -> Vec<String> {
        answer[name]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (hex_keys, b64_keys) = (list("keys"), list("keys_base64"));
    let (shares, threshold) = if shamir {
        (args.key_shares, args.key_threshold)
    } else {
        (0, 0)
    };
    match ctx.format() {
        f @ (Format::Json | Format::Yaml) => say(&output::render(
            &json!({
            "unseal_keys_b64": b64_keys,
            "unseal_keys_hex": hex_keys,
            "unseal_shares": shares,
            "unseal_threshold": threshold,
            "recovery_keys_b64": [],
            "recovery_keys_hex": [],
            "recovery_keys_shares": 0,
            "recovery_keys_threshold": 0,
            "root_token": root,
            }),
            f,
        )),
        Format::Table => {
            for (i, key) in b64_keys.iter().enumerate() {
                say(&format!("Unseal Key {}: {key}", i + 1));
            }
            if !b64_keys.is_empty() {
                say("");
            }
            say(&format!("Initial Root Token: {root}"));
            say("");
            if shamir {
                say(&format!(
                    "authmount initialized with {shares} key shares and a key threshold of \
                     {threshold}. Please securely distribute the key shares printed above. \
                     The server is sealed now and after every restart: give {threshold} of \
                     these keys to `authmount operator unseal` to unseal it."
                ));
                say("");
            }
            say(match b64_keys.is_empty() {
                true => "The root token is shown only now: keep it safe.",
                false => "The root token and the keys are shown only now: keep them safe.",
            });
        }
    }
    Ok(())
}

/// `operator unseal [-reset] [KEY]`: `PUT sys/unseal`; the key comes from stdin when not
/// given. Prints the seal status. Errors: remote (a wrong key, not initialized), local (no
/// key on stdin).
pub async fn unseal(ctx: &Ctx, args: &OperatorUnsealArgs) -> Result<(), Failure> {
    let body = if args.reset {
        json!({ "reset": true })
    } else {
        let key = match args.key.as_deref() {
            Some(k) if k != "-" => k.to_string(),
            _ => read_stdin()?.trim().to_string(),
        };
        if key.is_empty() {
            return Err(Failure::Local(
                "Error unsealing: no unseal key given".into(),
            ));
        }
        json!({ "key": key })
    };
    let status = ctx
        .client
        .write("sys/unseal", &body)
        .await
        .map_err(|e| Failure::Remote(format!("Error unsealing: {e}")))?
        .unwrap_or(Value::Null);
    print_status(ctx, &status);
    Ok(())
}

/// `operator seal`: `PUT sys/seal`. Errors (remote): no sudo, unreachable.
pub async fn seal(ctx: &Ctx) -> Result<(), Failure> {
    ctx.client
        .write("sys/seal", &json!({}))
        .await
        .map_err(|e| Failure::Remote(format!("Error sealing: {e}")))?;
    say("Success! authmount is sealed.");
    Ok(())
}

/// `status`: `GET sys/seal-status`. Exit status 0 when unsealed, 2 when sealed (Vault's).
pub async fn status(ctx: &Ctx) -> Result<(), Failure> {
    let status = ctx
        .client
        .read("sys/seal-status")
        .await
        .map_err(|e| Failure::Remote(format!("Error checking seal status: {e}")))?
        .unwrap_or(Value::Null);
    print_status(ctx, &status);
    if status["sealed"].as_bool() != Some(false) {
        return Err(Failure::Remote(String::new()));
    }
    Ok(())
}

fn print_status(ctx: &Ctx, s: &Value) {
    if ctx.format().is_structured() {
        say(&output::render(s, ctx.format()));
        return;
    }
    let text = |v: &Value| output::go_value(v);
    let mut rows = vec![
        vec!["Key".to_string(), "Value".to_string()],
        vec!["Seal Type".into(), text(&s["type"])],
        vec!["Initialized".into(), text(&s["initialized"])],
        vec!["Sealed".into(), text(&s["sealed"])],
    ];
    if s["type"] == "shamir" {
        rows.push(vec!["Total Shares".into(), text(&s["n"])]);
        rows.push(vec!["Threshold".into(), text(&s["t"])]);
        if s["sealed"] == true {
            rows.push(vec![
                "Unseal Progress".into(),
                format!("{}/{}", text(&s["progress"]), text(&s["t"])),
            ]);
            let nonce = s["nonce"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or("n/a");
            rows.push(vec!["Unseal Nonce".into(), nonce.to_string()]);
        }
    }
    rows.push(vec!["Version".into(), text(&s["version"])]);
    rows.push(vec!["Storage Type".into(), text(&s["storage_type"])]);
    if let Some(id) = s["cluster_id"].as_str() {
        rows.push(vec!["Cluster ID".into(), id.to_string()]);
    }
    say(&output::table(&rows));
}
