//! Paths as data: every endpoint, the core's own and each backend's, is a [`Path`]: a
//! pattern, a table of typed [`Field`]s, the handler of each [`Operation`] it supports and an
//! optional existence check. The [`Router`] matches a request against the table, gives it its
//! canonical spelling, parses and validates its fields; help and the OpenAPI document are
//! generated from the same table ([`crate::openapi`]).
//!
//! Modelled on Vault's `sdk/framework` (`Path`, `FieldSchema`, `Operations`,
//! `ExistenceCheck`, the `Field validation failed` message and the unknown-parameter warning).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use regex::Regex;
use serde_json::{Map, Value};

use crate::backend::BackendRequest;
use crate::duration;
use crate::error::{Error, Result};
use crate::request::Operation;
use crate::response::Response;

/// A boxed, sendable future: what handlers return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The handler of one operation on one path.
pub type Handler = Arc<dyn Fn(BackendRequest) -> BoxFuture<Result<Response>> + Send + Sync>;

/// Vault's existence check: `true` when the object a write names exists (the write then
/// needs `update`), `false` when it would be created (`create`).
pub type ExistenceCheck = Arc<dyn Fn(BackendRequest) -> BoxFuture<Result<bool>> + Send + Sync>;

/// How a field's raw JSON input is converted before the handler sees it.
///
/// Source: Vault `sdk/framework` field types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldType {
    /// A string; numbers and bools are taken as their text.
    String,
    /// A string, lower-cased (role and policy names). As a capture of the pattern it is
    /// lower-cased in the canonical path too, so the ACL judges the name that is acted on.
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

/// One field of a path: its name, type, help text and flags.
#[derive(Debug, Clone)]
pub struct Field {
    /// The parameter name in the request body (or a capture name of the pattern).
    pub name: &'static str,
    /// How input is converted.
    pub kind: FieldType,
    /// One line for help output.
    pub description: &'static str,
    /// The value a handler reads when the request does not carry the field (already in the
    /// field's canonical form, e.g. seconds for durations). Shown in help and OpenAPI.
    pub default: Option<Value>,
    /// A write without this field is refused with 400 `missing <name>`.
    pub required: bool,
    /// Still accepted, documented as deprecated (Vault's legacy names).
    pub deprecated: bool,
    /// A secret: never echoed in help, OpenAPI examples, errors or audit logs.
    pub sensitive: bool,
}

impl Field {
    /// A field of the given name, type and description; no default, optional.
    pub const fn new(name: &'static str, kind: FieldType, description: &'static str) -> Self {
        Field {
            name,
            kind,
            description,
            default: None,
            required: false,
            deprecated: false,
            sensitive: false,
        }
    }

    /// The same field with a default value (canonical form: seconds for durations, arrays
    /// for slices).
    pub fn default(mut self, value: impl Into<Value>) -> Self {
        self.default = Some(value.into());
        self
    }

    /// The same field, required on writes.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// The same field, marked deprecated.
    pub fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }

    /// The same field, marked secret.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
}

/// Something a handler can be bound to: the handler holds it weakly, so a path table never
/// keeps its backend (or the core) alive by itself.
pub trait HandlerState<S> {
    /// The weak reference the handler keeps.
    fn downgrade(self) -> Weak<S>;
}

impl<S> HandlerState<S> for &Arc<S> {
    fn downgrade(self) -> Weak<S> {
        Arc::downgrade(self)
    }
}

impl<S> HandlerState<S> for &Weak<S> {
    fn downgrade(self) -> Weak<S> {
        self.clone()
    }
}

fn bind<S, T, F, Fut>(
    state: impl HandlerState<S>,
    f: F,
) -> Arc<dyn Fn(BackendRequest) -> BoxFuture<Result<T>> + Send + Sync>
where
    S: Send + Sync + 'static,
    T: 'static,
    F: Fn(Arc<S>, BackendRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    let weak = state.downgrade();
    Arc::new(move |req| match weak.upgrade() {
        Some(state) => Box::pin(f(state, req)),
        None => Box::pin(async { Err(Error::Unavailable("the backend is gone".into())) }),
    })
}

/// One endpoint: a regular expression (matched against the whole path after its table's
/// prefix; named captures become string fields), its fields, its operations with their
/// handlers, and flags.
///
/// ```
/// # use std::sync::Arc;
/// # use authmount_framework::{BackendRequest, Field, FieldType, Path, Response, Result};
/// struct Things;
/// impl Things {
///     async fn read(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
///         let name = req.fields.str("name").unwrap_or_default();
///         Ok(Response::data(serde_json::json!({ "name": name }).as_object().unwrap().clone()))
///     }
/// }
/// let things = Arc::new(Things);
/// let path = Path::new(r"things/(?P<name>\w+)")
///     .help("Read one thing.")
///     .field(Field::new("name", FieldType::LowerCaseString, "Name of the thing."))
///     .read(&things, Things::read);
/// assert!(path.supports(authmount_framework::Operation::Read));
/// ```
#[derive(Clone)]
pub struct Path {
    /// The regular expression, without anchors, e.g. `role/(?P<name>\w(([\w.-]+)?\w)?)`.
    pub pattern: &'static str,
    /// The fields (body parameters and captures).
    pub fields: Vec<Field>,
    /// True when no Vault token is needed (logins, `sys/health`).
    pub unauthenticated: bool,
    /// Root-protected: the caller also needs `sudo` on the path (Vault `PathsSpecial.Root`).
    pub sudo: bool,
    /// On an unauthenticated path: a token sent is looked at (see [`Path::token_optional`]).
    pub token_optional: bool,
    /// Short help text.
    pub help: &'static str,
    /// The path takes parameters of any name besides its declared fields (Vault
    /// `TakesArbitraryInput`, e.g. `sys/wrapping/wrap`): they are handed over as sent in
    /// [`FieldData::arbitrary`] and get no unknown-parameter warning.
    pub arbitrary_input: bool,
    operations: Vec<(Operation, Handler)>,
    existence: Option<ExistenceCheck>,
}

impl std::fmt::Debug for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Path")
            .field("pattern", &self.pattern)
            .field("operations", &self.operations().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Path {
    /// A path with this pattern, no fields and no operations yet.
    pub fn new(pattern: &'static str) -> Path {
        Path {
            pattern,
            fields: Vec::new(),
            unauthenticated: false,
            sudo: false,
            token_optional: false,
            help: "",
            arbitrary_input: false,
            operations: Vec::new(),
            existence: None,
        }
    }

    /// Sets the help text.
    pub fn help(mut self, help: &'static str) -> Self {
        self.help = help;
        self
    }

    /// Adds fields.
    pub fn fields(mut self, fields: impl IntoIterator<Item = Field>) -> Self {
        self.fields.extend(fields);
        self
    }

    /// Adds one field.
    pub fn field(mut self, field: Field) -> Self {
        self.fields.push(field);
        self
    }

    /// Marks the path as needing no token.
    pub fn unauthenticated(mut self) -> Self {
        self.unauthenticated = true;
        self
    }

    /// Marks the path as taking parameters of any name (see [`Path::arbitrary_input`]).
    pub fn arbitrary_input(mut self) -> Self {
        self.arbitrary_input = true;
        self
    }

    /// Marks the path as needing no token but looking at one when it is sent: the handler
    /// gets the token's caller (its ACL included) in [`BackendRequest::caller`], `None`
    /// without a token. An unknown or dead token is refused (403); no use is counted.
    /// Source: Vault's `sys/internal/ui/mounts`, which shows a caller with a token what its
    /// policies reach.
    pub fn token_optional(mut self) -> Self {
        self.unauthenticated = true;
        self.token_optional = true;
        self
    }

    /// Marks the path as root-protected (`sudo` needed besides the operation's capability).
    pub fn sudo(mut self) -> Self {
        self.sudo = true;
        self
    }

    /// Serves `operation` with `handler`, an async method of `state`'s type taking
    /// `self: Arc<Self>` and the request.
    pub fn on<S, F, Fut>(mut self, operation: Operation, state: impl HandlerState<S>, f: F) -> Self
    where
        S: Send + Sync + 'static,
        F: Fn(Arc<S>, BackendRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response>> + Send + 'static,
    {
        self.operations.retain(|(op, _)| *op != operation);
        self.operations.push((operation, bind(state, f)));
        self
    }

    /// Serves reads (`GET`).
    pub fn read<S, F, Fut>(self, state: impl HandlerState<S>, f: F) -> Self
    where
        S: Send + Sync + 'static,
        F: Fn(Arc<S>, BackendRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response>> + Send + 'static,
    {
        self.on(Operation::Read, state, f)
    }

    /// Serves lists (`LIST`, `GET ?list=true`).
    pub fn list<S, F, Fut>(self, state: impl HandlerState<S>, f: F) -> Self
    where
        S: Send + Sync + 'static,
        F: Fn(Arc<S>, BackendRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response>> + Send + 'static,
    {
        self.on(Operation::List, state, f)
    }

    /// Serves writes (`POST`, `PUT`).
    pub fn update<S, F, Fut>(self, state: impl HandlerState<S>, f: F) -> Self
    where
        S: Send + Sync + 'static,
        F: Fn(Arc<S>, BackendRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response>> + Send + 'static,
    {
        self.on(Operation::Update, state, f)
    }

    /// Serves deletes (`DELETE`).
    pub fn delete<S, F, Fut>(self, state: impl HandlerState<S>, f: F) -> Self
    where
        S: Send + Sync + 'static,
        F: Fn(Arc<S>, BackendRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response>> + Send + 'static,
    {
        self.on(Operation::Delete, state, f)
    }

    /// Vault's existence check: a write to an object that does not exist needs `create`,
    /// one to an existing object `update`. The check sees the captures of the path only.
    pub fn existence_check<S, F, Fut>(mut self, state: impl HandlerState<S>, f: F) -> Self
    where
        S: Send + Sync + 'static,
        F: Fn(Arc<S>, BackendRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<bool>> + Send + 'static,
    {
        self.existence = Some(bind(state, f));
        self
    }

    /// The operations this path serves, in declaration order.
    pub fn operations(&self) -> impl Iterator<Item = Operation> + '_ {
        self.operations.iter().map(|(op, _)| *op)
    }

    /// True when the path serves `operation`.
    pub fn supports(&self, operation: Operation) -> bool {
        self.operations.iter().any(|(op, _)| *op == operation)
    }

    /// The handler of `operation`, if served.
    pub fn handler(&self, operation: Operation) -> Option<&Handler> {
        self.operations
            .iter()
            .find(|(op, _)| *op == operation)
            .map(|(_, h)| h)
    }

    /// The existence check, if any.
    pub fn existence(&self) -> Option<&ExistenceCheck> {
        self.existence.as_ref()
    }

    /// The field named `name`.
    pub fn field_named(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A path table compiled for matching.
pub struct Router {
    routes: Vec<(Regex, Path)>,
}

/// A request path matched against a [`Router`].
#[derive(Debug)]
pub struct Matched<'a> {
    /// The matched path.
    pub path: &'a Path,
    /// The captures of the pattern, by name, converted as their fields declare
    /// (lower-cased for [`FieldType::LowerCaseString`]).
    pub captures: BTreeMap<String, String>,
    /// The request path as the handler will act on it: captures in canonical form, no
    /// trailing `/` (list requests: always one). The ACL is checked on this spelling.
    pub canonical: String,
}

impl Router {
    /// Compiles a path table. Panics only on a pattern that is not a valid regular
    /// expression, which is a programming error in the table, found by its first test.
    pub fn new(paths: Vec<Path>) -> Self {
        let routes = paths
            .into_iter()
            .map(|path| {
                let re = Regex::new(&format!("^(?:{})$", path.pattern))
                    .unwrap_or_else(|e| panic!("bad path pattern {:?}: {e}", path.pattern));
                (re, path)
            })
            .collect();
        Router { routes }
    }

    /// The paths, in declaration order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.routes.iter().map(|(_, p)| p)
    }

    /// Finds the path for `path` (relative to the table's prefix, already free of doubled
    /// slashes): the first pattern that matches. `None` when none does.
    pub fn find(&self, path: &str, operation: Operation) -> Option<Matched<'_>> {
        let (re, spec, caps) = self
            .routes
            .iter()
            .find_map(|(re, spec)| re.captures(path).map(|caps| (re, spec, caps)))?;
        let mut captures = BTreeMap::new();
        let mut canonical = String::with_capacity(path.len());
        let mut at = 0;
        for name in re.capture_names().flatten() {
            let Some(m) = caps.name(name) else { continue };
            let value = match spec.field_named(name).map(|f| f.kind) {
                Some(FieldType::LowerCaseString) => m.as_str().to_lowercase(),
                _ => m.as_str().to_string(),
            };
            if m.start() >= at {
                canonical.push_str(&path[at..m.start()]);
                canonical.push_str(&value);
                at = m.end();
            }
            captures.insert(name.to_string(), value);
        }
        canonical.push_str(&path[at..]);
        if operation != Operation::List {
            // The last capture may have swallowed a trailing slash (`.+` patterns): the
            // handler gets the name without it, as the canonical path has it.
            for name in re.capture_names().flatten() {
                if caps.name(name).is_some_and(|m| m.end() == path.len()) {
                    if let Some(v) = captures.get_mut(name) {
                        while v.len() > 1 && v.ends_with('/') {
                            v.pop();
                        }
                    }
                }
            }
        }
        match operation {
            Operation::List if !canonical.ends_with('/') && !canonical.is_empty() => {
                canonical.push('/')
            }
            Operation::List => {}
            _ => {
                while canonical.ends_with('/') {
                    canonical.pop();
                }
            }
        }
        Some(Matched {
            path: spec,
            captures,
            canonical,
        })
    }
}

/// The fields of one request, converted to their declared types.
///
/// [`FieldData::get`] returns the value sent, else the field's default, else `None`, so a
/// handler can tell "not given" from "given as empty" (merge-on-update needs it:
/// [`FieldData::has`]). Values are canonical JSON: durations and ints as numbers, slices as
/// arrays of strings, KV pairs as objects of strings. Reading a field the path did not
/// declare is a programming error (a debug assertion, caught by the first test that does it).
#[derive(Debug, Clone, Default)]
pub struct FieldData {
    values: BTreeMap<&'static str, Value>,
    defaults: BTreeMap<&'static str, Value>,
    declared: BTreeSet<&'static str>,
    /// Body parameters the path does not declare, sorted (DECISIONS D10 warns about them).
    pub unknown: Vec<String>,
    /// On a path that takes arbitrary input: the parameters it does not declare, as sent.
    arbitrary: Map<String, Value>,
}

impl FieldData {
    /// Converts `body` and `captures` by the path's field table.
    ///
    /// Errors: 400 `Field validation failed: error converting input for field "<name>":
    /// <reason>` (the input itself is never echoed: it may be a secret); 400 `missing
    /// <name>` for a required field absent from a write.
    pub fn parse(
        path: &Path,
        captures: &BTreeMap<String, String>,
        body: &Map<String, Value>,
        operation: Operation,
    ) -> Result<Self> {
        let mut data = FieldData {
            declared: path.fields.iter().map(|f| f.name).collect(),
            ..FieldData::default()
        };
        for field in &path.fields {
            if let Some(default) = &field.default {
                data.defaults.insert(field.name, default.clone());
            }
            let raw = match captures.get(field.name) {
                Some(captured) => Value::String(captured.clone()),
                None => match body.get(field.name) {
                    Some(v) => v.clone(),
                    None if field.required && operation == Operation::Update => {
                        return Err(Error::invalid(format!("missing {}", field.name)));
                    }
                    None => continue,
                },
            };
            let value = convert(field.kind, &raw).map_err(|reason| {
                Error::invalid(format!(
                    "Field validation failed: error converting input for field {:?}: {reason}",
                    field.name
                ))
            })?;
            data.values.insert(field.name, value);
        }
        let known = |k: &str| data.declared.contains(k) || captures.contains_key(k);
        let undeclared = body.iter().filter(|(k, _)| !known(k));
        if path.arbitrary_input {
            data.arbitrary = undeclared.map(|(k, v)| (k.clone(), v.clone())).collect();
        } else {
            data.unknown = undeclared.map(|(k, _)| k.clone()).collect();
            data.unknown.sort();
        }
        Ok(data)
    }

    /// Field data holding only these values (for existence checks and internal calls).
    pub fn from_values(values: impl IntoIterator<Item = (&'static str, Value)>) -> Self {
        let values: BTreeMap<&'static str, Value> = values.into_iter().collect();
        FieldData {
            declared: values.keys().copied().collect(),
            values,
            ..FieldData::default()
        }
    }

    fn check_declared(&self, name: &str) {
        debug_assert!(
            self.declared.contains(name),
            "a handler read the field {name:?}, which its path does not declare"
        );
    }

    /// The converted value sent for a field, else its default.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.check_declared(name);
        self.values.get(name).or_else(|| self.defaults.get(name))
    }

    /// True when the request carried the field (defaults do not count).
    pub fn has(&self, name: &str) -> bool {
        self.check_declared(name);
        self.values.contains_key(name)
    }

    /// A `String`/`LowerCaseString` field.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    /// A `Bool` field.
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(Value::as_bool)
    }

    /// An `Int` or duration field, in its unit (seconds for durations).
    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_i64)
    }

    /// A `CommaStringSlice` field.
    pub fn strings(&self, name: &str) -> Option<Vec<String>> {
        self.get(name).and_then(Value::as_array).map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
    }

    /// A `KvPairs` field.
    pub fn kv_pairs(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.get(name).and_then(Value::as_object).map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
    }

    /// The undeclared parameters of a path that takes arbitrary input, as sent (empty on
    /// other paths).
    pub fn arbitrary(&self) -> &Map<String, Value> {
        &self.arbitrary
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

/// Converts one raw JSON input to the canonical value of `kind`, or says why it cannot.
/// The reason never contains the input.
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
            _ => Err("expected a bool".to_string()),
        },
        Value::Null => Ok(false),
        _ => Err("expected a bool".to_string()),
    }
}

fn parse_int(raw: &Value) -> std::result::Result<i64, String> {
    let bad = || "expected an integer".to_string();
    match raw {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                    .map(|f| f as i64)
            })
            .ok_or_else(bad),
        Value::String(s) if s.trim().is_empty() => Ok(0),
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| bad()),
        _ => Err(bad()),
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
                None => Err("expected key=value pairs".to_string()),
            })
            .collect(),
        _ => Err("expected a map of strings".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Nothing;

    impl Nothing {
        async fn ok(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
            Ok(Response::default())
        }
    }

    fn path(state: &Arc<Nothing>) -> Path {
        Path::new(r"role/(?P<name>\w(([\w.-]+)?\w)?)")
            .fields([
                Field::new("name", FieldType::LowerCaseString, "role name"),
                Field::new("ttl", FieldType::DurationSecond, "ttl").default(60),
                Field::new("leeway", FieldType::SignedDurationSecond, "leeway"),
                Field::new("list", FieldType::CommaStringSlice, "list"),
                Field::new("kv", FieldType::KvPairs, "kv"),
                Field::new("flag", FieldType::Bool, "flag"),
                Field::new("secret", FieldType::String, "secret").sensitive(),
            ])
            .read(state, Nothing::ok)
    }

    fn parse(p: &str, body: Value) -> Result<FieldData> {
        let state = Arc::new(Nothing);
        let router = Router::new(vec![path(&state)]);
        let m = router
            .find(p, Operation::Read)
            .ok_or_else(Error::unsupported_path)?;
        FieldData::parse(
            m.path,
            &m.captures,
            body.as_object().unwrap(),
            Operation::Read,
        )
    }

    #[test]
    fn converts_declared_types_and_lists_unknown_parameters() {
        let d = parse(
            "role/MyRole",
            json!({"leeway": -1, "list": " a, b ", "kv": ["x=1", "y=2"], "flag": "true", "typo": 1, "also": 2}),
        )
        .unwrap();
        assert_eq!(d.str("name"), Some("myrole"));
        assert_eq!(d.int("ttl"), Some(60), "the default");
        assert!(!d.has("ttl"));
        assert_eq!(d.int("leeway"), Some(-1));
        assert_eq!(d.strings("list").unwrap(), vec!["a", "b"]);
        assert_eq!(
            d.kv_pairs("kv").unwrap().get("y").map(String::as_str),
            Some("2")
        );
        assert_eq!(d.bool("flag"), Some(true));
        assert_eq!(
            d.unknown_warning().unwrap(),
            "Endpoint ignored these unrecognized parameters: [also typo]"
        );
    }

    #[test]
    fn refuses_bad_values_without_echoing_them() {
        let e = parse("role/a", json!({"ttl": -5})).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(
            e.to_string().contains("cannot provide negative value '-5'"),
            "{e}"
        );
        let e = parse("role/a", json!({"ttl": "1hr-secret"})).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Field validation failed: error converting input for field \"ttl\""),
            "{e}"
        );
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(parse("role/a", json!({"list": {"a": 1}})).is_err());
        assert!(parse("role/a", json!({"flag": [1]})).is_err());
        assert!(parse("role/a", json!({"secret": {"a": 1}})).is_err());
    }

    #[test]
    fn the_canonical_path_is_the_name_acted_on() {
        let state = Arc::new(Nothing);
        let router = Router::new(vec![
            path(&state),
            Path::new("policy/(?P<name>.+)")
                .field(Field::new("name", FieldType::LowerCaseString, "name"))
                .read(&state, Nothing::ok),
        ]);
        let canon = |p: &str, op| router.find(p, op).map(|m| m.canonical);
        assert_eq!(canon("role/ADMIN", Operation::Read).unwrap(), "role/admin");
        assert_eq!(
            canon("policy/Admin/", Operation::Read).unwrap(),
            "policy/admin"
        );
        let m = router.find("policy/Admin//", Operation::Delete).unwrap();
        assert_eq!(m.captures["name"], "admin");
        assert_eq!(canon("policy/a/B", Operation::Read).unwrap(), "policy/a/b");
        assert_eq!(canon("role/x", Operation::List).unwrap(), "role/x/");
        assert!(canon("role/-bad", Operation::Read).is_none());
    }

    #[test]
    #[should_panic(expected = "does not declare")]
    #[cfg(debug_assertions)]
    fn reading_an_undeclared_field_is_a_programming_error() {
        let d = parse("role/a", json!({})).unwrap();
        let _ = d.str("nope");
    }
}
