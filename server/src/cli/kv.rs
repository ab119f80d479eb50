//! Request bodies from `k=v` arguments, as Vault's CLI builds them (`kv-builder`):
//!
//! | argument | becomes |
//! |---|---|
//! | `k=v` | `"k": "v"` |
//! | `k=v k=w` | `"k": ["v", "w"]` (a repeated key becomes a list) |
//! | `k=@file` | `"k": "<the file's contents>"`; `k=\@x` is the literal `@x` |
//! | `k=-` | `"k": "<stdin>"` |
//! | `-` | a JSON object read from stdin, merged into the body |
//! | `@file.json` | a JSON object read from a file, merged into the body |
//!
//! One addition to Vault: a value that is the text of a JSON object or array
//! (`bound_claims='{"a":"b"}'`, `jwks_pairs=@pairs.json`) is sent as that JSON value, so
//! map and list fields can be written from the command line. Vault sends it as a string,
//! which its map fields refuse. A value that merely starts with `{` but is not valid JSON
//! stays a string.
//!
//! Source: `github.com/hashicorp/go-secure-stdlib/kv-builder`.

use std::io::Read;

use serde_json::{Map, Value};

/// Builds the JSON body of `args`, reading `stdin` at most once.
///
/// Errors: `invalid key/value pair "<arg>": <why>` for an argument without `=`, a file that
/// cannot be read, stdin used twice, or a `-`/`@file` body that is not a JSON object.
pub fn parse(args: &[String], stdin: &mut dyn Read) -> Result<Map<String, Value>, String> {
    let mut builder = Builder {
        stdin,
        stdin_used: false,
        body: Map::new(),
    };
    for arg in args {
        builder
            .add(arg)
            .map_err(|why| format!("invalid key/value pair {arg:?}: {why}"))?;
    }
    Ok(builder.body)
}

struct Builder<'a> {
    stdin: &'a mut dyn Read,
    stdin_used: bool,
    body: Map<String, Value>,
}

impl Builder<'_> {
    fn add(&mut self, raw: &str) -> Result<(), String> {
        if raw.is_empty() {
            return Ok(());
        }
        let Some((key, value)) = raw.split_once('=') else {
            if raw == "-" {
                let text = self.read_stdin()?;
                return self.merge(&text);
            }
            if let Some(file) = raw.strip_prefix('@') {
                let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
                return self.merge(&text);
            }
            return Err("format must be key=value".to_string());
        };
        let text = if let Some(file) = value.strip_prefix('@') {
            std::fs::read_to_string(file).map_err(|e| format!("error reading file: {e}"))?
        } else if let Some(literal) = value.strip_prefix('\\').filter(|v| v.starts_with('@')) {
            literal.to_string()
        } else if value == "-" {
            self.read_stdin()?
        } else {
            value.to_string()
        };
        let value = json_value(&text).unwrap_or(Value::String(text));
        match self.body.get_mut(key) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                self.body.insert(key.to_string(), value);
            }
        }
        Ok(())
    }

    fn read_stdin(&mut self) -> Result<String, String> {
        if self.stdin_used {
            return Err("stdin already consumed".to_string());
        }
        self.stdin_used = true;
        let mut text = String::new();
        self.stdin
            .read_to_string(&mut text)
            .map_err(|e| format!("error reading stdin: {e}"))?;
        Ok(text)
    }

    fn merge(&mut self, text: &str) -> Result<(), String> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => {
                self.body.extend(map);
                Ok(())
            }
            Ok(_) => Err("the JSON must be an object".to_string()),
            Err(e) => Err(format!("invalid JSON: {e}")),
        }
    }
}

/// The JSON object or array that `text` spells, if it spells one.
fn json_value(text: &str) -> Option<Value> {
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') && !trimmed.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Value>(text)
        .ok()
        .filter(|v| v.is_object() || v.is_array())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn build(args: &[&str], stdin: &str) -> Result<Value, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&args, &mut stdin.as_bytes()).map(Value::Object)
    }

    #[test]
    fn pairs_repeated_keys_and_json_values() {
        assert_eq!(
            build(
                &[
                    "role=demo",
                    "bound_audiences=a",
                    "bound_audiences=b",
                    "bound_audiences=c",
                    r#"bound_claims={"team":"x","n":[1]}"#,
                    "empty=",
                    "eq=a=b",
                    "brace={not json",
                    r"at=\@literal",
                ],
                ""
            )
            .unwrap(),
            json!({
                "role": "demo",
                "bound_audiences": ["a", "b", "c"],
                "bound_claims": {"team": "x", "n": [1]},
                "empty": "",
                "eq": "a=b",
                "brace": "{not json",
                "at": "@literal",
            })
        );
    }

    #[test]
    fn reads_stdin_once_and_files() {
        assert_eq!(
            build(&["jwt=-", "role=demo"], "eyJ.x.y").unwrap(),
            json!({"jwt": "eyJ.x.y", "role": "demo"})
        );
        assert_eq!(
            build(&["-", "ttl=2h"], r#"{"ttl":"1h","policies":["a"]}"#).unwrap(),
            // As in Vault, a pair whose key the JSON body has already set makes a list.
            json!({"ttl": ["1h", "2h"], "policies": ["a"]})
        );
        let err = build(&["a=-", "b=-"], "x").unwrap_err();
        assert_eq!(
            err,
            r#"invalid key/value pair "b=-": stdin already consumed"#
        );

        let dir = std::env::temp_dir().join(format!("authmount-kv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = dir.join("pub.pem");
        std::fs::write(&pem, "-----BEGIN PUBLIC KEY-----\nabc\n").unwrap();
        let body = dir.join("body.json");
        std::fs::write(&body, r#"{"bound_issuer":"https://i/"}"#).unwrap();
        let got = build(
            &[
                &format!("jwt_validation_pubkeys=@{}", pem.display()),
                &format!("@{}", body.display()),
            ],
            "",
        )
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            got,
            json!({
                "jwt_validation_pubkeys": "-----BEGIN PUBLIC KEY-----\nabc\n",
                "bound_issuer": "https://i/",
            })
        );
    }

    #[test]
    fn refuses_what_vault_refuses() {
        assert_eq!(
            build(&["novalue"], "").unwrap_err(),
            r#"invalid key/value pair "novalue": format must be key=value"#
        );
        assert!(build(&["k=@/nonexistent/file"], "")
            .unwrap_err()
            .contains("error reading file"));
        assert!(build(&["-"], "[1]")
            .unwrap_err()
            .contains("must be an object"));
    }
}
