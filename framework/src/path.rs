//! Paths as data: a backend declares each of its paths as a pattern, a table of typed
//! fields and the operations it supports; the router matches, parses and validates from
//! that table, so handlers only ever see typed values.
//!
//! Modelled on Vault's `sdk/framework` path tables (field types, the
//! `Field validation failed` message, the unknown-parameter warning).

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::{Map, Value};

use crate::duration;
use crate::error::{Error, Result};
use crate::request::Operation;

/// How a field's raw JSON input is converted before the handler sees it.
///
/// Source: Vault `sdk/framework` field types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldType {
    /// A string; numbers and bools are taken as their text.
    String,
    /// A string, lower-cased (role names, `default_role`).
    LowerCaseString,
    /// `true`/`false`, also `"true"`, `"1"`, `1`, `"f"` and the other forms Go's `ParseBool` takes.
    Bool,
    /// A whole number, also as a numeric string.
    Int,
    /// Seconds as a non-negative integer, or a duration string (`"1h30m"`, `"2d"`); negative values refused.
    DurationSecond,
    /// Like `DurationSecond`, negative values allowed (leeways: `-1` means "none").
    SignedDurationSecond,
    /// A list of strings: a JSON array, or one comma-separated string; elements trimmed; `""` is `[]`.
    CommaStringSlice,
    /// A string-to-string map: a JSON object, or a list of `"k=v"` strings.
    KvPairs,
    /// A JSON object with any values.
    Map,
    /// Any JSON value, passed through unchanged.
    Raw,
}

/// One field of a path: its name, type and help text.
#[derive(Debug, Clone)]
pub struct Field {
    /// The parameter name in the request body (or a capture name of the pattern).
    pub name: &'static str,
    /// How input is converted.
    pub kind: FieldType,
    /// One line for help output.
    pub description: &'static str,
}

impl Field {
    /// A field of the given name, type and description.
    pub const fn new(name: &'static str, kind: FieldType, description: &'static str) -> Self {
        Field {
            name,
            kind,
            description,
        }
    }
}

/// One path of a backend: a regular expression (matched against the whole path after the
/// mount prefix, named captures become string fields), its fields and its operations.
#[derive(Debug, Clone)]
pub struct PathSpec {
    /// A name the backend's handler dispatches on (e.g. `"role"`).
    pub name: &'static str,
    /// The regular expression, without anchors, e.g. `role/(?P<name>\w(([\w.-]+)?\w)?)`.
    pub pattern: &'static str,
    /// The body fields.
    pub fields: Vec<Field>,
    /// The operations the path supports; any other gives 405.
    pub operations: Vec<Operation>,
    /// True when no Vault token is needed (login).
    pub unauthenticated: bool,
    /// Short help text.
    pub help: &'static str,
}

/// A backend's path table compiled for matching.
pub struct Router {
    routes: Vec<(Regex, PathSpec)>,
}

/// The result of matching a request path: which spec, and the parsed fields.
#[derive(Debug)]
pub struct Matched<'a> {
    /// The matched path spec.
    pub spec: &'a PathSpec,
    /// The captures of the pattern, by name.
    pub captures: BTreeMap<String, String>,
}

impl Router {
    /// Compiles a path table. Panics only on a pattern that is not a valid regular
    /// expression, which is a programming error in the backend, found by its first test.
    pub fn new(paths: Vec<PathSpec>) -> Self {
        let routes = paths
            .into_iter()
            .map(|spec| {
                let re = Regex::new(&format!("^(?:{})$", spec.pattern))
                    .unwrap_or_else(|e| panic!("bad path pattern {:?}: {e}", spec.pattern));
                (re, spec)
            })
            .collect();
        Router { routes }
    }

    /// The path specs, in declaration order.
    pub fn specs(&self) -> impl Iterator<Item = &PathSpec> {
        self.routes.iter().map(|(_, s)| s)
    }

    /// Finds the spec for `path` (relative to the mount). Errors: 404 `unsupported path`.
    pub fn find(&self, path: &str) -> Result<Matched<'_>> {
        for (re, spec) in &self.routes {
            if let Some(caps) = re.captures(path) {
                let captures = re
                    .capture_names()
                    .flatten()
                    .filter_map(|n| {
                        caps.name(n)
                            .map(|m| (n.to_string(), m.as_str().to_string()))
                    })
                    .collect();
                return Ok(Matched { spec, captures });
            }
        }
        Err(Error::unsupported_path(path))
    }
}

/// The fields of one request, converted to their declared types.
///
/// Only fields present in the request (or captured from the path) are held: `get` returns
/// `None` for an absent field, so a handler can tell "not given" from "given as empty",
/// which merge-on-update needs. Values are canonical JSON: durations and ints as numbers,
/// slices as arrays of strings, KV pairs as objects of strings.
#[derive(Debug, Clone, Default)]
pub struct FieldData {
    values: BTreeMap<&'static str, Value>,
    /// Body parameters the path does not declare, sorted (DECISIONS D10 warns about them).
    pub unknown: Vec<String>,
}

impl FieldData {
    /// Converts `body` and `captures` by the spec's field table.
    ///
    /// Errors: 400 `Field validation failed: error converting input <v> for field "<name>": <reason>`.
    pub fn parse(
        spec: &PathSpec,
        captures: &BTreeMap<String, String>,
        body: &Map<String, Value>,
    ) -> Result<Self> {
        let mut data = FieldData::default();
        for field in &spec.fields {
            let raw = match captures.get(field.name) {
                Some(captured) => Value::String(captured.clone()),
                None => match body.get(field.name) {
                    Some(v) => v.clone(),
                    None => continue,
                },
            };
            let value = convert(field.kind, &raw).map_err(|reason| {
                Error::invalid(format!(
                    "Field validation failed: error converting input {} for field {:?}: {reason}",
                    display_input(&raw),
                    field.name
                ))
            })?;
            data.values.insert(field.name, value);
        }
        let known = |k: &str| spec.fields.iter().any(|f| f.name == k) || captures.contains_key(k);
        data.unknown = body.keys().filter(|k| !known(k)).cloned().collect();
        data.unknown.sort();
        Ok(data)
    }

    /// The converted value of a present field.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// True when the field was given.
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// A present `String`/`LowerCaseString` field.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    /// A present `Bool` field.
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(Value::as_bool)
    }

    /// A present `Int` or duration field, in its unit (seconds for durations).
    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_i64)
    }

    /// A present `CommaStringSlice` field.
    pub fn strings(&self, name: &str) -> Option<Vec<String>> {
        self.get(name).and_then(Value::as_array).map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
    }

    /// A present `KvPairs` field.
    pub fn kv_pairs(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.get(name).and_then(Value::as_object).map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
    }

    /// The warning Vault's framework gives for undeclared parameters, if there were any.
    pub fn unknown_warning(&self) -> Option<String> {
        (!self.unknown.is_empty()).then(|| {
            format!(
                "Endpoint ignored these unrecognized parameters: [{}]",
                self.unknown.join(" ")
            )
        })
    }
}

fn display_input(raw: &Value) -> String {
    match raw {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Converts one raw JSON input to the canonical value of `kind`, or says why it cannot.
pub fn convert(kind: FieldType, raw: &Value) -> std::result::Result<Value, String> {
    let numeric = matches!(
        kind,
        FieldType::Int | FieldType::DurationSecond | FieldType::SignedDurationSecond
    );
    if numeric && raw.is_null() {
        return Ok(Value::from(0)); // Vault reads null as the zero value
    }
    match kind {
        FieldType::String => scalar_text(raw).map(Value::String),
        FieldType::LowerCaseString => scalar_text(raw).map(|s| Value::String(s.to_lowercase())),
        FieldType::Bool => parse_bool(raw).map(Value::Bool),
        FieldType::Int => parse_int(raw).map(Value::from),
        FieldType::SignedDurationSecond => duration::parse_seconds(raw).map(Value::from),
        FieldType::DurationSecond => {
            let secs = duration::parse_seconds(raw)?;
            if secs < 0 {
                return Err(format!("cannot provide negative value '{secs}'"));
            }
            Ok(Value::from(secs))
        }
        FieldType::CommaStringSlice => {
            comma_slice(raw).map(|v| Value::Array(v.into_iter().map(Value::String).collect()))
        }
        FieldType::KvPairs => kv_pairs(raw)
            .map(|m| Value::Object(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect())),
        FieldType::Map => match raw {
            Value::Object(_) => Ok(raw.clone()),
            Value::Null => Ok(Value::Object(Map::new())),
            _ => Err("expected a map".to_string()),
        },
        FieldType::Raw => Ok(raw.clone()),
    }
}

fn scalar_text(raw: &Value) -> std::result::Result<String, String> {
    match raw {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(if *b { "1" } else { "0" }.to_string()),
        Value::Null => Ok(String::new()),
        _ => Err("expected a string".to_string()),
    }
}

fn parse_bool(raw: &Value) -> std::result::Result<bool, String> {
    match raw {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => Ok(n.as_f64() != Some(0.0)),
        Value::String(s) => match s.as_str() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" | "" => Ok(false),
            _ => Err(format!("cannot parse '{s}' as bool")),
        },
        Value::Null => Ok(false),
        _ => Err("expected a bool".to_string()),
    }
}

fn parse_int(raw: &Value) -> std::result::Result<i64, String> {
    match raw {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| format!("cannot parse '{n}' as an integer")),
        Value::String(s) if s.trim().is_empty() => Ok(0),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("cannot parse '{s}' as an integer")),
        _ => Err("expected an integer".to_string()),
    }
}

fn comma_slice(raw: &Value) -> std::result::Result<Vec<String>, String> {
    let items: Vec<String> = match raw {
        Value::Null => vec![],
        Value::String(s) if s.trim().is_empty() => vec![],
        Value::String(s) => s.split(',').map(|p| p.trim().to_string()).collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.trim().to_string()),
                Value::Number(_) | Value::Bool(_) => Ok(item.to_string()),
                _ => Err("expected a list of strings".to_string()),
            })
            .collect::<std::result::Result<_, _>>()?,
        Value::Number(_) | Value::Bool(_) => vec![raw.to_string()],
        Value::Object(_) => return Err("expected a list of strings".to_string()),
    };
    Ok(items)
}

fn kv_pairs(raw: &Value) -> std::result::Result<BTreeMap<String, String>, String> {
    match raw {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| scalar_text(v).map(|v| (k.clone(), v)))
            .collect(),
        Value::Array(_) | Value::String(_) => comma_slice(raw)?
            .into_iter()
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) => Ok((k.trim().to_string(), v.trim().to_string())),
                None => Err(format!("invalid key value pair {pair:?}")),
            })
            .collect(),
        _ => Err("expected a map of strings".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> PathSpec {
        PathSpec {
            name: "role",
            pattern: r"role/(?P<name>\w(([\w.-]+)?\w)?)",
            fields: vec![
                Field::new("name", FieldType::LowerCaseString, "role name"),
                Field::new("ttl", FieldType::DurationSecond, "ttl"),
                Field::new("leeway", FieldType::SignedDurationSecond, "leeway"),
                Field::new("list", FieldType::CommaStringSlice, "list"),
                Field::new("kv", FieldType::KvPairs, "kv"),
                Field::new("flag", FieldType::Bool, "flag"),
            ],
            operations: vec![Operation::Read],
            unauthenticated: false,
            help: "",
        }
    }

    fn parse(path: &str, body: Value) -> Result<FieldData> {
        let router = Router::new(vec![spec()]);
        let m = router.find(path)?;
        FieldData::parse(m.spec, &m.captures, body.as_object().unwrap())
    }

    #[test]
    fn converts_declared_types_and_lists_unknown_parameters() {
        let d = parse(
            "role/MyRole",
            json!({"ttl": "1h", "leeway": -1, "list": " a, b ", "kv": ["x=1", "y=2"], "flag": "true", "typo": 1, "also": 2}),
        )
        .unwrap();
        assert_eq!(d.str("name"), Some("myrole"));
        assert_eq!(d.int("ttl"), Some(3600));
        assert_eq!(d.int("leeway"), Some(-1));
        assert_eq!(d.strings("list").unwrap(), vec!["a", "b"]);
        assert_eq!(
            d.kv_pairs("kv").unwrap().get("y").map(String::as_str),
            Some("2")
        );
        assert_eq!(d.bool("flag"), Some(true));
        assert!(!d.has("missing"));
        assert_eq!(
            d.unknown_warning().unwrap(),
            "Endpoint ignored these unrecognized parameters: [also typo]"
        );
    }

    #[test]
    fn refuses_bad_values_with_vaults_message() {
        let e = parse("role/a", json!({"ttl": -5})).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(
            e.to_string().contains("cannot provide negative value '-5'"),
            "{e}"
        );
        let e = parse("role/a", json!({"ttl": "1hr"})).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "Field validation failed: error converting input 1hr for field \"ttl\""
            ),
            "{e}"
        );
        assert!(parse("role/a", json!({"list": {"a": 1}})).is_err());
        assert!(parse("role/a", json!({"flag": [1]})).is_err());
    }

    #[test]
    fn unmatched_paths_are_unsupported() {
        let e = parse("role/-bad", json!({})).unwrap_err();
        assert_eq!(e.status(), 404);
        assert!(e.to_string().contains("unsupported path"));
    }
}
