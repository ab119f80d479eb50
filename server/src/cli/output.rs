//! Printing answers as Vault's CLI does: key/value tables (`Key  Value` / `---  -----`),
//! Go's `%v` rendering of values (`[default webapps]`, `map[role:demo]`, `<nil>`), TTL
//! fields as durations (`1h`, `767h59m59s`), the token table of a login, `-field=NAME`,
//! and `-format=json`.
//!
//! Everything here is a pure function from JSON to text; the commands print it.
//! Source: Vault `command/format.go`, `command/base_helpers.go` (`tableOutput`,
//! `humanDuration`), `github.com/ryanuber/columnize`.

use serde_json::{Map, Value};

use super::Failure;

/// `-format`: how answers are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Key/value tables and `Success!` lines (the default).
    Table,
    /// The server's answer as indented JSON; no `Success!` lines.
    Json,
    /// The same answer as YAML (Vault's `-format=yaml`).
    Yaml,
}

impl Format {
    /// Parses `table`, `json` or `yaml` (`yml` too). Errors (local): any other name, in
    /// Vault's words.
    pub fn parse(raw: &str) -> Result<Format, Failure> {
        match raw.trim().to_lowercase().as_str() {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "yaml" | "yml" => Ok(Format::Yaml),
            other => Err(Failure::Local(format!("Invalid output format: {other}"))),
        }
    }

    /// True for the formats that print the server's answer as data (JSON, YAML) instead of
    /// tables and `Success!` lines.
    pub fn is_structured(self) -> bool {
        self != Format::Table
    }
}

/// Lays out rows as columns, the first row being the header: the header is underlined
/// with dashes, columns are separated by four spaces, empty cells read `n/a`, cells are
/// trimmed, and the last column is not padded (Vault's `tableOutput` over columnize).
pub fn table(rows: &[Vec<String>]) -> String {
    let Some(header) = rows.first() else {
        return String::new();
    };
    let underline: Vec<String> = header.iter().map(|h| "-".repeat(h.trim().len())).collect();
    let mut all: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
    all.push(header.clone());
    all.push(underline);
    all.extend(rows[1..].iter().cloned());
    let cells: Vec<Vec<String>> = all
        .iter()
        .map(|row| {
            row.iter()
                .map(|c| match c.trim() {
                    "" => "n/a".to_string(),
                    t => t.to_string(),
                })
                .collect()
        })
        .collect();
    let columns = cells.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            cells
                .iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let lines: Vec<String> = cells
        .iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let pad = widths[i].saturating_sub(cell.chars().count());
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad + 4));
                }
            }
            line
        })
        .collect();
    lines.join("\n")
}

/// A JSON value as Go's `%v` prints the decoded value: strings bare, `[a b]` for arrays,
/// `map[k:v]` (keys sorted) for objects, `<nil>` for null.
pub fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(go_value).collect();
            format!("[{}]", inner.join(" "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = sorted(map)
                .map(|(k, v)| format!("{k}:{}", go_value(v)))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

/// The entries of a JSON object sorted by key, as Go prints maps and Vault sorts rows
/// (serde_json may keep insertion order when another crate enables `preserve_order`).
pub fn sorted(map: &Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries.into_iter()
}

/// Seconds as Vault prints a duration: Go's `time.Duration` text without the zero units
/// (`1h`, `1h30m`, `1m30s`, `45s`, `0s`).
pub fn human_duration(seconds: i64) -> String {
    authmount_framework::duration::format_compact(seconds)
}

/// Keys whose integer values Vault prints as durations (`ttl`, `*_ttl`, `period`, ...).
pub fn looks_like_duration(key: &str) -> bool {
    key == "period"
        || key.ends_with("_period")
        || key == "ttl"
        || key.ends_with("_ttl")
        || key == "duration"
        || key.ends_with("_duration")
        || key == "lease_max"
        || key == "ttl_max"
}

/// A value in a key/value table: durations humanised for TTL-like keys, else `%v`.
fn cell(key: &str, value: &Value) -> String {
    match value.as_i64() {
        Some(secs) if looks_like_duration(key) => human_duration(secs),
        _ => go_value(value),
    }
}

/// Go's `%q` of a `[]string`: `["default" "webapps"]`.
fn quoted_list(v: Option<&Value>) -> String {
    let items: Vec<String> = v
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| match s {
                    Value::String(s) => Value::String(s.clone()).to_string(),
                    other => Value::String(go_value(other)).to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    format!("[{}]", items.join(" "))
}

/// The warnings of an answer as Vault prints them on stderr, or `None` when there are none.
pub fn warnings(secret: &Value) -> Option<String> {
    let list = secret.get("warnings").and_then(Value::as_array)?;
    if list.is_empty() {
        return None;
    }
    let mut out = String::from("WARNING! The following warnings were returned from Vault:\n");
    for w in list {
        out.push_str(&format!("\n  * {}\n", go_value(w).trim_end()));
    }
    Some(out)
}

/// True when an answer has something to show in a table: a lease, a login or data.
pub fn has_content(secret: &Value) -> bool {
    secret
        .get("lease_duration")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        > 0
        || secret.get("auth").is_some_and(Value::is_object)
        || secret.get("wrap_info").is_some_and(Value::is_object)
        || secret
            .get("data")
            .and_then(Value::as_object)
            .is_some_and(|d| !d.is_empty())
}

/// The key/value table of an answer (Vault's `OutputSecret`): the lease, then the token
/// rows of a login (`token`, `token_accessor`, `token_duration`, ..., `token_meta_<k>`),
/// then the data keys sorted. `None` when there is nothing to show.
pub fn secret_table(secret: &Value) -> Option<String> {
    let mut rows: Vec<Vec<String>> = vec![vec!["Key".into(), "Value".into()]];
    let row = |k: &str, v: String| vec![k.to_string(), v];
    let lease = secret
        .get("lease_duration")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if lease > 0 {
        match secret.get("lease_id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => {
                rows.push(row("lease_id", id.to_string()));
                rows.push(row("lease_duration", human_duration(lease)));
                let renewable = secret.get("renewable").and_then(Value::as_bool);
                rows.push(row(
                    "lease_renewable",
                    renewable.unwrap_or(false).to_string(),
                ));
            }
            _ => rows.push(row("refresh_interval", human_duration(lease))),
        }
    }
    if let Some(auth) = secret.get("auth").and_then(Value::as_object) {
        let text = |k: &str| auth.get(k).map(go_value).unwrap_or_default();
        rows.push(row("token", text("client_token")));
        rows.push(row("token_accessor", text("accessor")));
        let duration = match auth.get("lease_duration").and_then(Value::as_i64) {
            None | Some(0) => "∞".to_string(),
            Some(secs) => human_duration(secs),
        };
        rows.push(row("token_duration", duration));
        let renewable = auth.get("renewable").and_then(Value::as_bool);
        rows.push(row(
            "token_renewable",
            renewable.unwrap_or(false).to_string(),
        ));
        rows.push(row(
            "token_policies",
            quoted_list(auth.get("token_policies")),
        ));
        rows.push(row(
            "identity_policies",
            quoted_list(auth.get("identity_policies")),
        ));
        rows.push(row("policies", quoted_list(auth.get("policies"))));
        if let Some(meta) = auth.get("metadata").and_then(Value::as_object) {
            for (k, v) in sorted(meta) {
                rows.push(row(&format!("token_meta_{k}"), go_value(v)));
            }
        }
    }
    if let Some(data) = secret.get("data").and_then(Value::as_object) {
        for (k, v) in sorted(data) {
            rows.push(row(k, cell(k, v)));
        }
    }
    for (name, value) in wrap_rows(secret) {
        let shown = match (name, &value) {
            ("wrapping_token_ttl:", Value::Number(n)) => human_duration(n.as_i64().unwrap_or(0)),
            _ => go_value(&value),
        };
        rows.push(row(name, shown));
    }
    if rows.len() == 1 {
        return None;
    }
    Some(table(&rows))
}

/// The rows of a response-wrapped answer, in Vault's order and with its names (colon
/// included): the wrapping token, its accessor, TTL (seconds), creation time and path, and
/// the accessor of the token it wraps when it wraps one. Empty for other answers.
fn wrap_rows(secret: &Value) -> Vec<(&'static str, Value)> {
    let Some(info) = secret.get("wrap_info").and_then(Value::as_object) else {
        return Vec::new();
    };
    [
        ("wrapping_token:", "token"),
        ("wrapping_accessor:", "accessor"),
        ("wrapping_token_ttl:", "ttl"),
        ("wrapping_token_creation_time:", "creation_time"),
        ("wrapping_token_creation_path:", "creation_path"),
        ("wrapped_accessor:", "wrapped_accessor"),
    ]
    .into_iter()
    .filter_map(|(name, key)| {
        let value = info.get(key).filter(|v| !v.is_null() && *v != "")?;
        Some((name, value.clone()))
    })
    .collect()
}

/// One field of an answer for `-field=NAME` (Vault's `PrintRawField`): the rows of a
/// wrapped answer by their names without the colon (`wrapping_token`, ...), the token rows
/// of a login by their table names (`token`, `token_accessor`, `token_duration`,
/// `token_policies`, `token_meta_<k>`, ...), else the data key of that name.
pub fn secret_field(secret: &Value, field: &str) -> Option<Value> {
    if let Some((_, value)) = wrap_rows(secret)
        .into_iter()
        .find(|(name, _)| name.trim_end_matches(':') == field)
    {
        return Some(value);
    }
    if let Some(auth) = secret.get("auth").and_then(Value::as_object) {
        let from = |k: &str| auth.get(k).cloned();
        let found = match field {
            "token" => from("client_token"),
            "token_accessor" => from("accessor"),
            "token_duration" => from("lease_duration"),
            "token_renewable" => from("renewable"),
            "token_policies" => from("token_policies"),
            "identity_policies" => from("identity_policies").or(Some(Value::Array(vec![]))),
            "policies" => from("policies"),
            other => other.strip_prefix("token_meta_").and_then(|k| {
                auth.get("metadata")
                    .and_then(Value::as_object)
                    .and_then(|m| m.get(k).cloned())
            }),
        };
        if found.is_some() {
            return found;
        }
    }
    secret
        .get("data")
        .and_then(Value::as_object)
        .and_then(|d| d.get(field))
        .filter(|v| !v.is_null())
        .cloned()
}

/// A `-field` value as printed: `%v` for the table format, else as [`render`] prints it.
pub fn raw_field(value: &Value, format: Format) -> String {
    match format {
        Format::Table => go_value(value),
        structured => render(value, structured),
    }
}

/// The same value with the keys of every object in sorted order (Vault's CLI prints Go
/// maps, whose keys are sorted; serde_json keeps the order the server sent).
fn keys_sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), keys_sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(keys_sorted).collect()),
        other => other.clone(),
    }
}

/// A value in a structured format: indented JSON (two spaces, keys sorted) as Vault's
/// `-format=json` prints it, or YAML for `-format=yaml` (the table format prints JSON too).
pub fn render(value: &Value, format: Format) -> String {
    let value = &keys_sorted(value);
    match format {
        Format::Yaml => serde_norway::to_string(value)
            .map(|y| y.trim_end().to_string())
            .unwrap_or_else(|_| value.to_string()),
        _ => serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_drop_zero_units_like_vault() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(60), "1m");
        assert_eq!(human_duration(90), "1m30s");
        assert_eq!(human_duration(3600), "1h");
        assert_eq!(human_duration(3601), "1h1s");
        assert_eq!(human_duration(5400), "1h30m");
        assert_eq!(human_duration(2_764_800), "768h");
        assert_eq!(human_duration(2_764_799), "767h59m59s");
    }

    #[test]
    fn values_print_as_gos_percent_v() {
        assert_eq!(
            go_value(&json!(["default", "webapps"])),
            "[default webapps]"
        );
        assert_eq!(
            go_value(&json!({"role": "demo", "a": [1, true]})),
            "map[a:[1 true] role:demo]"
        );
        assert_eq!(go_value(&json!(null)), "<nil>");
        assert_eq!(go_value(&json!([])), "[]");
        assert_eq!(go_value(&json!(1.5)), "1.5");
    }

    #[test]
    fn tables_are_columns_with_an_underlined_header() {
        let rows = vec![
            vec!["Path".into(), "Type".into(), "Description".into()],
            vec!["jwt/".into(), "jwt".into(), "".into()],
            vec!["my-path/".into(), "jwt".into(), "team logins".into()],
        ];
        assert_eq!(
            table(&rows),
            "Path        Type    Description\n\
             ----        ----    -----------\n\
             jwt/        jwt     n/a\n\
             my-path/    jwt     team logins"
        );
    }

    #[test]
    fn a_login_prints_vaults_token_table() {
        let login = json!({
            "lease_duration": 0, "lease_id": "", "data": null, "warnings": null,
            "auth": {
                "client_token": "hvs.x", "accessor": "acc", "lease_duration": 3600,
                "renewable": true, "policies": ["default", "webapps"],
                "token_policies": ["default", "webapps"], "metadata": {"role": "demo"},
            }
        });
        assert_eq!(
            secret_table(&login).unwrap(),
            "Key                  Value\n\
             ---                  -----\n\
             token                hvs.x\n\
             token_accessor       acc\n\
             token_duration       1h\n\
             token_renewable      true\n\
             token_policies       [\"default\" \"webapps\"]\n\
             identity_policies    []\n\
             policies             [\"default\" \"webapps\"]\n\
             token_meta_role      demo"
        );
        assert_eq!(secret_field(&login, "token"), Some(json!("hvs.x")));
        assert_eq!(secret_field(&login, "token_meta_role"), Some(json!("demo")));
        assert_eq!(secret_field(&login, "nope"), None);
    }

    #[test]
    fn data_rows_are_sorted_and_ttls_humanised() {
        let read = json!({"lease_duration": 0, "data": {
            "ttl": 3600, "policies": ["webapps"], "bound_claims": null, "user_claim": "sub",
            "description": ""
        }});
        assert_eq!(
            secret_table(&read).unwrap(),
            "Key             Value\n\
             ---             -----\n\
             bound_claims    <nil>\n\
             description     n/a\n\
             policies        [webapps]\n\
             ttl             1h\n\
             user_claim      sub"
        );
        assert_eq!(secret_table(&json!({"data": {}})), None);
        assert!(!has_content(&json!({"data": null, "warnings": ["w"]})));
    }

    #[test]
    fn warnings_read_as_vaults() {
        assert_eq!(
            warnings(&json!({"warnings": ["one", "two"]})).unwrap(),
            "WARNING! The following warnings were returned from Vault:\n\n  * one\n\n  * two\n"
        );
        assert_eq!(warnings(&json!({"warnings": null})), None);
    }

    #[test]
    fn unknown_formats_are_refused() {
        assert_eq!(Format::parse("JSON").unwrap(), Format::Json);
        assert_eq!(Format::parse("yml").unwrap(), Format::Yaml);
        assert!(matches!(Format::parse("xml"), Err(Failure::Local(_))));
    }

    #[test]
    fn structured_formats_print_the_answer_with_sorted_keys() {
        let answer = json!({"data": {"b": [1, 2], "a": "x"}, "auth": null});
        assert_eq!(
            render(&answer, Format::Yaml),
            "auth: null\ndata:\n  a: x\n  b:\n  - 1\n  - 2"
        );
        assert_eq!(
            render(&answer, Format::Json),
            "{\n  \"auth\": null,\n  \"data\": {\n    \"a\": \"x\",\n    \"b\": [\n      1,\n      2\n    ]\n  }\n}"
        );
    }
}
