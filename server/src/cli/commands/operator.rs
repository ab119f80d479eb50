//! `operator init`: `PUT sys/init` once; prints the initial root token. Source: Vault
//! `command/operator_init.go` (authmount has no unseal keys: the list is empty).

use serde_json::json;

use super::{say, Ctx};
use crate::cli::output::{self, Format};
use crate::cli::Failure;

/// `operator init [-format=json]`. Errors (remote): already initialised, or unreachable.
pub async fn init(ctx: &Ctx) -> Result<(), Failure> {
    let answer = ctx
        .client
        .write("sys/init", &json!({}))
        .await
        .map_err(|e| Failure::Remote(format!("Error initializing: {e}")))?
        .ok_or_else(|| Failure::Remote("Error initializing: empty response".into()))?;
    let root = answer["root_token"].as_str().unwrap_or_default();
    match ctx.format() {
        Format::Json => say(&output::pretty(&json!({
            "unseal_keys_b64": [],
            "unseal_keys_hex": [],
            "unseal_shares": 0,
            "unseal_threshold": 0,
            "recovery_keys_b64": [],
            "recovery_keys_hex": [],
            "recovery_keys_shares": 0,
            "recovery_keys_threshold": 0,
            "root_token": root,
        }))),
        Format::Table => {
            say(&format!("Initial Root Token: {root}"));
            say("");
            say("authmount initialized. The root token is shown only now: keep it safe.");
        }
    }
    Ok(())
}
