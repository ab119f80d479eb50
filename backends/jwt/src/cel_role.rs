//! OpenBao's CEL roles on the JWT method: `cel/role/<name>` (read, create/update, delete),
//! `cel/role` (list, `after` and `limit`) and `cel/login` (`role`, `jwt`).
//!
//! A CEL role has no bound claims, user claim or token fields: it has a CEL program
//! (`cel_program`: `{"expression", "variables": [{"name", "expression"}]}`) over the verified
//! token's `claims`, whose result decides the login, plus `bound_audiences` and the three
//! leeways for the token checks. The answers (fields, defaults, error strings) are OpenBao
//! 2.7.2's, as the real binary gives them (docs/cel.md); the token is checked by the login
//! pipeline every JWT login uses ([`crate::login::verify`]).
//!
//! The program's result: `false` or a string refuses the login; a `pb.Auth{...}` message
//! logs in with its `policies`, `metadata`, `num_uses`, `no_default_policy`, `alias`
//! (`logical.Alias{name, metadata}`) and `group_aliases`; anything else is refused as an
//! unexpected type. Unlike OpenBao, every CEL login gets an entity alias: named by
//! `alias.name`, else by the token's `sub`, so that identity groups apply.
//!
//! Expressions are compiled and checked when the role is written, with the checks of
//! [`crate::cel`] (size, depth, names, functions, cost); a role is compiled when its stored
//! bytes are parsed (the role cache does that once per stored version), never per login.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use ::cel::common::types::CelStruct;
use ::cel::common::value::{CowVal, Val};
use ::cel::{Context, Env, ExecutionError, Program, StructType, Value as CelValue};
use async_trait::async_trait;
use authmount_framework::{tokenutil, Alias, Auth, Error, Field, FieldType, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::cel::{
    compile_checked, estimate_bound, largest_collection, literal_items, Estimate, Names, MAX_STEPS,
    WRITE_CHECK_ITEMS,
};
use crate::claims::Leeway;
use crate::login::LoginError;
use crate::oidc_flow::Roles;
use crate::role::Role;

/// Where CEL roles are stored in the mount: `cel_role/<name>`.
pub const PREFIX: &str = "cel_role/";

/// The `pb.Auth` fields a program may set (the others of OpenBao's message are refused at
/// write: authmount does not build a login from them).
pub const AUTH_FIELDS: &[&str] = &[
    "display_name",
    "policies",
    "metadata",
    "num_uses",
    "no_default_policy",
    "alias",
    "group_aliases",
];

/// The `logical.Alias` fields a program may set.
pub const ALIAS_FIELDS: &[&str] = &["name", "metadata"];

const MESSAGES: &[(&str, &[&str])] = &[("pb.Auth", AUTH_FIELDS), ("logical.Alias", ALIAS_FIELDS)];

/// Most variables a program may declare.
pub const MAX_VARIABLES: usize = 32;

/// One variable of a program: evaluated in order, visible to the later ones and to the
/// expression.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Variable {
    /// The variable's name (an identifier).
    pub name: String,
    /// Its CEL expression.
    pub expression: String,
}

/// `cel_program` as stored and read back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProgramSource {
    /// The variables, in order (omitted from a read when there are none, as in OpenBao).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<Variable>,
    /// The expression whose result decides the login.
    pub expression: String,
}

/// A CEL role as stored. Leeways in seconds as written (0: the default, -1: none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CelRoleSource {
    /// `cel_program`.
    pub cel_program: ProgramSource,
    /// `message` (stored and read back; OpenBao shows it in no answer either).
    pub message: String,
    /// `bound_audiences`: a token must carry one of them; none: any audience.
    pub bound_audiences: Vec<String>,
    /// `clock_skew_leeway` (default 60).
    pub clock_skew_leeway: i64,
    /// `expiration_leeway` (default 150).
    pub expiration_leeway: i64,
    /// `not_before_leeway` (default 150).
    pub not_before_leeway: i64,
}

/// A CEL role with its compiled programs. Stored (serde) as [`CelRoleSource`]; a stored
/// program that no longer compiles makes the role unreadable (fail closed).
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "CelRoleSource", into = "CelRoleSource")]
pub struct CelRole {
    source: CelRoleSource,
    variables: Vec<Arc<Program>>,
    expression: Arc<Program>,
}

impl From<CelRole> for CelRoleSource {
    fn from(role: CelRole) -> Self {
        role.source
    }
}

impl TryFrom<CelRoleSource> for CelRole {
    type Error = String;

    fn try_from(source: CelRoleSource) -> std::result::Result<Self, String> {
        CelRole::compile(source)
    }
}

/// The fields of `cel/role/<name>`.
pub fn fields() -> Vec<Field> {
    use FieldType::*;
    vec![
        Field::new("name", String, "Name of the CEL role."),
        Field::new(
            "cel_program",
            Raw,
            "The CEL program: {\"expression\": \"...\", \"variables\": [{\"name\", \"expression\"}]}.",
        ),
        Field::new("message", String, "Static error message (stored; OpenBao shows it nowhere either)."),
        Field::new(
            "bound_audiences",
            CommaStringSlice,
            "Audiences; a token must carry one of them (none: any audience).",
        ),
        Field::new(
            "clock_skew_leeway",
            SignedDurationSecond,
            "Leeway for time claims; default 60, -1 = none.",
        ),
        Field::new(
            "expiration_leeway",
            SignedDurationSecond,
            "Leeway to compute a missing exp; default 150, -1 = none.",
        ),
        Field::new(
            "not_before_leeway",
            SignedDurationSecond,
            "Leeway to compute a missing nbf; default 150, -1 = none.",
        ),
    ]
}

/// The fields of `cel/login`.
pub fn login_fields() -> Vec<Field> {
    vec![
        Field::new(
            "role",
            FieldType::LowerCaseString,
            "The CEL role to log in against; the config's default role when omitted.",
        ),
        Field::new(
            "jwt",
            FieldType::String,
            "The signed JWT (compact serialisation).",
        )
        .sensitive(),
    ]
}

/// The fields of the `cel/role` list.
pub fn list_fields() -> Vec<Field> {
    vec![
        Field::new(
            "after",
            FieldType::String,
            "List the names after this one (it need not exist).",
        ),
        Field::new(
            "limit",
            FieldType::Int,
            "Most names to list; all when 0 or absent.",
        ),
    ]
}

/// Go's name of a JSON value's type, as OpenBao's field conversion error shows it.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Number(_) => "json.Number",
        Value::Bool(_) => "bool",
        Value::Array(_) => "[]interface {}",
        Value::Null | Value::Object(_) => "map[string]interface {}",
    }
}

/// A text field of `cel_program` as Go's weak decoding reads it (a number becomes its
/// digits, a bool `1` or `0`).
fn weak_string(v: &Value) -> std::result::Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(if *b { "1" } else { "0" }.into()),
        Value::Null => Ok(String::new()),
        _ => Err("failed to parse cel_program: expected a string".into()),
    }
}

/// `cel_program` as sent: a map with `expression` and `variables`; other keys are dropped.
fn parse_program(raw: &Value) -> Result<ProgramSource> {
    let map = match raw {
        Value::Object(map) => map,
        Value::Null => return Ok(ProgramSource::default()),
        other => {
            let shown = match other {
                Value::Array(items) => format!("[{}]", items.len().saturating_sub(1)),
                _ => String::new(),
            };
            return Err(Error::invalid(format!(
                "Field validation failed: error converting input for field \"cel_program\": '{shown}' expected type 'map[string]interface {{}}', got unconvertible type '{}'",
                match other {
                    Value::Array(items) => items.first().map(go_type).unwrap_or("[]interface {}"),
                    v => go_type(v),
                }
            )));
        }
    };
    let mut program = ProgramSource {
        expression: weak_string(map.get("expression").unwrap_or(&Value::Null))
            .map_err(Error::invalid)?,
        variables: vec![],
    };
    match map.get("variables") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let Value::Object(v) = item else {
                    return Err(Error::invalid(
                        "failed to parse cel_program: each variable is a map of name and expression",
                    ));
                };
                let field = |k: &str| weak_string(v.get(k).unwrap_or(&Value::Null));
                program.variables.push(Variable {
                    name: field("name").map_err(Error::invalid)?,
                    expression: field("expression").map_err(Error::invalid)?,
                });
            }
        }
        Some(_) => {
            return Err(Error::invalid(
                "failed to parse cel_program: variables is a list of {\"name\", \"expression\"}",
            ))
        }
    }
    Ok(program)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl CelRole {
    /// Compiles and checks the program of `source`. Errors (the write's 400) name the part:
    /// `cel_program.expression cannot be empty`, `cel_program.variables[0] (x): ...`,
    /// `cel_program.expression: ...`.
    pub fn compile(source: CelRoleSource) -> std::result::Result<Self, String> {
        let program = &source.cel_program;
        if program.expression.trim().is_empty() {
            return Err("cel_program.expression cannot be empty".into());
        }
        if program.variables.len() > MAX_VARIABLES {
            return Err(format!(
                "cel_program.variables: at most {MAX_VARIABLES} variables"
            ));
        }
        let mut visible = vec!["claims", "operation"];
        let mut variables = Vec::with_capacity(program.variables.len());
        for (i, v) in program.variables.iter().enumerate() {
            let name = format!("cel_program.variables[{i}] ({})", v.name);
            if !is_identifier(&v.name) || ["claims", "operation"].contains(&v.name.as_str()) {
                return Err(format!(
                    "{name}: a variable's name is an identifier other than 'claims' and 'operation'"
                ));
            }
            let hint = "a variable sees 'claims', 'operation' and the variables before it";
            let names = Names {
                variables: &visible,
                messages: MESSAGES,
                hint,
            };
            variables.push(Arc::new(compile_checked(&name, &v.expression, &names)?));
            visible.push(&v.name);
        }
        let names = Names {
            variables: &visible,
            messages: MESSAGES,
            hint: "the expression sees 'claims', 'operation' and the variables",
        };
        let expression = Arc::new(compile_checked(
            "cel_program.expression",
            &program.expression,
            &names,
        )?);
        let role = CelRole {
            source,
            variables,
            expression,
        };
        let steps = role.cost(WRITE_CHECK_ITEMS);
        if steps > MAX_STEPS {
            return Err(format!(
                "cel_program: too expensive: about {steps} evaluation steps for a token whose lists hold {WRITE_CHECK_ITEMS} items, the budget is {MAX_STEPS}"
            ));
        }
        Ok(role)
    }

    /// The worst-case steps of the whole program (variables, then the expression) for a
    /// token whose lists and maps hold at most `items` items: each variable is as large as
    /// its own estimate says when a later part uses it, so a chain of variables that grows a
    /// value (`b = a + a`, `c = b + b`, ...) is counted as it grows.
    fn cost(&self, items: u64) -> u64 {
        let program = &self.source.cel_program;
        let mut bound: Vec<(&str, Estimate)> = Vec::with_capacity(program.variables.len());
        let mut total: u64 = 0;
        for (v, compiled) in program.variables.iter().zip(&self.variables) {
            let root = compiled.expression();
            let est = estimate_bound(root, items, literal_items(root), &bound);
            total = total.saturating_add(est.steps);
            bound.push((&v.name, est));
        }
        let root = self.expression.expression();
        let est = estimate_bound(root, items, literal_items(root), &bound);
        total.saturating_add(est.steps)
    }

    /// A create/update of `cel/role/<name>`: every field as sent, the defaults for the
    /// others (OpenBao replaces the whole role; nothing is merged). Errors: 400, nothing
    /// stored: `missing required field 'cel_program'`, the field conversion error of a
    /// `cel_program` that is not a map, and the program's compile errors.
    pub fn from_write(f: &authmount_framework::FieldData) -> Result<Self> {
        let raw = f
            .get("cel_program")
            .ok_or_else(|| Error::invalid("missing required field 'cel_program'"))?;
        let cel_program = parse_program(raw)?;
        let leeway = |name: &str, default: i64| f.int(name).unwrap_or(default);
        let source = CelRoleSource {
            cel_program,
            message: f.str("message").unwrap_or_default().to_string(),
            bound_audiences: f.strings("bound_audiences").unwrap_or_default(),
            clock_skew_leeway: leeway("clock_skew_leeway", 60),
            expiration_leeway: leeway("expiration_leeway", 150),
            not_before_leeway: leeway("not_before_leeway", 150),
        };
        CelRole::compile(source).map_err(Error::invalid)
    }

    /// The `data` of a read and of a write's answer.
    pub fn read_data(&self, name: &str) -> Map<String, Value> {
        let s = &self.source;
        let v = json!({
            "name": name,
            "cel_program": s.cel_program,
            "message": s.message,
            "bound_audiences": s.bound_audiences,
            "clock_skew_leeway": s.clock_skew_leeway,
            "expiration_leeway": s.expiration_leeway,
            "not_before_leeway": s.not_before_leeway,
        });
        match v {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The ordinary role the shared token checks run against: this role's audiences and
    /// leeways, nothing else bound.
    pub fn token_checks(&self) -> Role {
        let s = &self.source;
        Role {
            bound_audiences: Some(s.bound_audiences.clone()),
            clock_skew_leeway: Leeway::from(s.clock_skew_leeway),
            expiration_leeway: Leeway::from(s.expiration_leeway),
            not_before_leeway: Leeway::from(s.not_before_leeway),
            ..Role::default()
        }
    }
}

/// The role lookup of a CEL login: CEL roles, seen by the shared checks as the ordinary
/// role [`CelRole::token_checks`] gives; the CEL role found is kept for the program.
pub(crate) struct CelRoles<'a> {
    /// Reads a CEL role by name.
    pub backend: &'a crate::JwtBackend,
    /// The CEL role the checks found.
    pub found: Mutex<Option<Arc<CelRole>>>,
}

#[async_trait]
impl Roles for CelRoles<'_> {
    async fn role(&self, name: &str) -> Result<Option<Arc<Role>>> {
        let Some(cel_role) = self.backend.cel_role(name).await? else {
            return Ok(None);
        };
        let role = Arc::new(cel_role.token_checks());
        if let Ok(mut found) = self.found.lock() {
            *found = Some(cel_role);
        }
        Ok(Some(role))
    }
}

/// A message type programs construct (`pb.Auth`, `logical.Alias`): the fields it accepts,
/// kept as given (their types are judged when the login is built from them).
struct Message {
    r#type: ::cel::common::types::Type,
    fields: &'static [&'static str],
}

impl StructType for Message {
    fn get_type(&self) -> &::cel::common::types::Type {
        &self.r#type
    }

    fn new_value<'b, 'v>(
        &self,
        fields: BTreeMap<String, CowVal<'b, 'v>>,
    ) -> std::result::Result<Box<dyn Val + 'v>, ExecutionError> {
        let name = self.r#type.name().to_string();
        let mut s = CelStruct::new(name.clone());
        for (field, value) in fields {
            if !self.fields.contains(&field.as_str()) {
                return Err(ExecutionError::NoSuchKey(Arc::new(format!(
                    "field `{field}` on struct `{name}`"
                ))));
            }
            s.add_field_value(field, value);
        }
        Ok(Box::new(s))
    }
}

/// The environment CEL role programs run in: the standard library and the message types.
fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        for (name, fields) in MESSAGES {
            let message = Message {
                r#type: ::cel::common::types::Type::new_struct(name.to_string()),
                fields,
            };
            // The names are fixed identifiers registered once: this cannot fail.
            let _ = env.add_type(message);
        }
        Arc::new(env)
    })
}

/// An evaluation error as OpenBao words the common ones (`no such key: x`).
fn eval_error(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(key) => format!("no such key: {key}"),
        ExecutionError::UndeclaredReference(name) => format!("no such attribute(s): {name}"),
        other => other.to_string(),
    }
}

/// Go's name of a CEL value's type, as OpenBao's unexpected-type error shows it.
fn go_cel_type(v: &CelValue) -> String {
    match v {
        CelValue::Bool(_) => "types.Bool".into(),
        CelValue::Int(_) => "types.Int".into(),
        CelValue::UInt(_) => "types.Uint".into(),
        CelValue::Float(_) => "types.Double".into(),
        CelValue::String(_) => "types.String".into(),
        CelValue::Bytes(_) => "types.Bytes".into(),
        CelValue::Null => "types.Null".into(),
        CelValue::List(_) => "*types.baseList".into(),
        CelValue::Map(_) => "*types.baseMap".into(),
        CelValue::Struct(_) => "*types.protoObj".into(),
        other => format!("{:?}", other.type_of()),
    }
}

/// Runs `role`'s program (named `name`) over the verified `claims` and builds the login from
/// its result. Errors (400, failure class `claim_rule`), with OpenBao's words:
/// `error executing cel program: CEL role '<name>' blocked authorization with boolean false
/// return` / `... with message: <s>`, `... CEL program '<name>' returned unexpected type:
/// <Go type>`, `... CEL auth program failed: ...` (an evaluation error), a budget refusal,
/// or a `pb.Auth` field of the wrong type.
pub fn evaluate(
    role: &CelRole,
    name: &str,
    claims: &Map<String, Value>,
) -> std::result::Result<Auth, LoginError> {
    let refused =
        |detail: String| LoginError::ClaimRule(format!("error executing cel program: {detail}"));
    let program = &role.source.cel_program;
    let steps = role.cost(largest_collection(claims));
    if steps > MAX_STEPS {
        return Err(refused(format!(
            "cel_program exceeds the evaluation budget for this token: about {steps} steps, the limit is {MAX_STEPS}"
        )));
    }
    let value = ::cel::to_value(claims)
        .map_err(|e| refused(format!("claims cannot be given to CEL: {e}")))?;
    let mut ctx = Context::with_env(env().clone());
    ctx.add_variable_from_value("claims", value);
    ctx.add_variable_from_value("operation", "update");
    for (i, (v, compiled)) in program.variables.iter().zip(&role.variables).enumerate() {
        let value = compiled.execute(&ctx).map_err(|e| {
            refused(format!(
                "CEL auth program failed: failed to evaluate variables: variable[{i}].{}: failed to evaluate expression {:?}: {}",
                v.name,
                v.expression,
                eval_error(&e)
            ))
        })?;
        ctx.add_variable_from_value(v.name.clone(), value);
    }
    let result = role.expression.execute(&ctx).map_err(|e| {
        refused(format!(
            "CEL auth program failed: failed to evaluate expression: failed to evaluate expression {:?}: {}",
            program.expression,
            eval_error(&e)
        ))
    })?;
    match result {
        CelValue::Bool(false) => Err(refused(format!(
            "CEL role '{name}' blocked authorization with boolean false return"
        ))),
        CelValue::String(s) => Err(refused(format!(
            "CEL role '{name}' blocked authorization with message: {s}"
        ))),
        CelValue::Struct(s) if s.name() == "pb.Auth" => build_auth(&s, name, claims)
            .map_err(|e| refused(format!("error converting proto auth: {e}"))),
        other => Err(refused(format!(
            "CEL program '{name}' returned unexpected type: {}",
            go_cel_type(&other)
        ))),
    }
}

/// The fields of a constructed message as values.
fn message_fields(s: &CelStruct<'_>) -> std::result::Result<BTreeMap<String, CelValue>, String> {
    s.field_values()
        .into_iter()
        .map(|(k, v)| {
            CelValue::try_from(&*v)
                .map(|v| (k.clone(), v))
                .map_err(|e| format!("{k}: {e}"))
        })
        .collect()
}

fn as_string(field: &str, v: &CelValue) -> std::result::Result<String, String> {
    match v {
        CelValue::String(s) => Ok(s.to_string()),
        other => Err(format!("{field} is {}, not a string", go_cel_type(other))),
    }
}

fn as_strings(field: &str, v: &CelValue) -> std::result::Result<Vec<String>, String> {
    match v {
        CelValue::List(items) => items
            .iter()
            .map(|i| as_string(&format!("{field} item"), i))
            .collect(),
        other => Err(format!(
            "{field} is {}, not a list of strings",
            go_cel_type(other)
        )),
    }
}

fn as_string_map(
    field: &str,
    v: &CelValue,
) -> std::result::Result<BTreeMap<String, String>, String> {
    let CelValue::Map(map) = v else {
        return Err(format!(
            "{field} is {}, not a map of strings",
            go_cel_type(v)
        ));
    };
    map.map
        .iter()
        .map(|(k, v)| match (k, v) {
            (::cel::objects::Key::String(k), CelValue::String(s)) => {
                Ok((k.to_string(), s.to_string()))
            }
            _ => Err(format!("{field} is not a map of strings")),
        })
        .collect()
}

/// A `logical.Alias` value's name and metadata.
fn alias_of(field: &str, v: &CelValue) -> std::result::Result<Alias, String> {
    let CelValue::Struct(s) = v else {
        return Err(format!(
            "{field} is {}, not a logical.Alias",
            go_cel_type(v)
        ));
    };
    if s.name() != "logical.Alias" {
        return Err(format!("{field} is a {}, not a logical.Alias", s.name()));
    }
    let fields = message_fields(s)?;
    Ok(Alias {
        name: match fields.get("name") {
            Some(n) => as_string(&format!("{field}.name"), n)?,
            None => String::new(),
        },
        metadata: match fields.get("metadata") {
            Some(m) => as_string_map(&format!("{field}.metadata"), m)?,
            None => BTreeMap::new(),
        },
    })
}

/// The login a `pb.Auth` result gives: its policies (normalised as any policy list),
/// metadata, `num_uses`, `no_default_policy`; the entity alias named by `alias.name`, else by
/// the token's `sub`; its `group_aliases` by name. The token's other parameters are the
/// mount's.
fn build_auth(
    s: &CelStruct<'_>,
    role_name: &str,
    claims: &Map<String, Value>,
) -> std::result::Result<Auth, String> {
    let fields = message_fields(s)?;
    let mut auth = Auth::default();
    if let Some(v) = fields.get("display_name") {
        as_string("display_name", v)?;
    }
    if let Some(v) = fields.get("policies") {
        auth.token.policies = tokenutil::parse_policies(&as_strings("policies", v)?);
    }
    if let Some(v) = fields.get("metadata") {
        auth.metadata = as_string_map("metadata", v)?;
    }
    if let Some(v) = fields.get("num_uses") {
        auth.token.num_uses = match v {
            CelValue::Int(n) if *n >= 0 => *n,
            CelValue::UInt(n) => i64::try_from(*n).map_err(|_| "num_uses is too large")?,
            other => return Err(format!("num_uses is {}, not a count", go_cel_type(other))),
        };
    }
    if let Some(v) = fields.get("no_default_policy") {
        auth.token.no_default_policy = match v {
            CelValue::Bool(b) => *b,
            other => {
                return Err(format!(
                    "no_default_policy is {}, not a bool",
                    go_cel_type(other)
                ))
            }
        };
    }
    if let Some(v) = fields.get("alias") {
        auth.alias = alias_of("alias", v)?;
    }
    if let Some(v) = fields.get("group_aliases") {
        let CelValue::List(items) = v else {
            return Err(format!("group_aliases is {}, not a list", go_cel_type(v)));
        };
        for (i, item) in items.iter().enumerate() {
            let alias = alias_of(&format!("group_aliases[{i}]"), item)?;
            if !alias.name.is_empty() {
                auth.group_aliases.push(alias.name);
            }
        }
    }
    if auth.alias.name.is_empty() {
        auth.alias.name = match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            _ => {
                return Err(
                    "no alias name: the program gave no alias.name and the token has no sub".into(),
                )
            }
        };
    }
    auth.internal_data
        .insert("cel_role".into(), json!(role_name));
    Ok(auth)
}

/// The page of names `after` (exclusive) and at most `limit` (0: all) of `keys`, sorted.
pub fn page(mut keys: Vec<String>, after: &str, limit: i64) -> Vec<String> {
    keys.sort();
    let start = keys.partition_point(|k| k.as_str() <= after);
    let mut page = keys.split_off(start);
    if limit > 0 {
        page.truncate(limit as usize);
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(program: Value) -> std::result::Result<CelRole, String> {
        let program: ProgramSource = serde_json::from_value(program).unwrap();
        CelRole::compile(CelRoleSource {
            cel_program: program,
            ..CelRoleSource::default()
        })
    }

    fn login(program: Value, claims: Value) -> std::result::Result<Auth, String> {
        let r = role(program)?;
        evaluate(&r, "r", claims.as_object().unwrap()).map_err(|e| e.to_string())
    }

    #[test]
    fn results_decide_the_login_as_openbao_words_it() {
        let claims = json!({"sub": "alice", "groups": ["dev", "ops"]});
        let cases = [
            ("false", "CEL role 'r' blocked authorization with boolean false return"),
            ("'nope'", "CEL role 'r' blocked authorization with message: nope"),
            ("true", "CEL program 'r' returned unexpected type: types.Bool"),
            ("1", "CEL program 'r' returned unexpected type: types.Int"),
            ("claims.groups", "CEL program 'r' returned unexpected type: *types.baseList"),
            ("claims.nosuch", "CEL auth program failed: failed to evaluate expression: failed to evaluate expression \"claims.nosuch\": no such key: nosuch"),
        ];
        for (expr, want) in cases {
            let got = login(json!({"expression": expr}), claims.clone()).unwrap_err();
            assert_eq!(
                got,
                format!("error executing cel program: {want}"),
                "{expr}"
            );
        }
        let auth = login(
            json!({"expression": "pb.Auth{policies: claims.groups, metadata: {'a': x}, alias: logical.Alias{name: x + '@ci'}, group_aliases: [logical.Alias{name: 'g1'}]}",
                   "variables": [{"name": "x", "expression": "claims.sub"}]}),
            claims.clone(),
        )
        .unwrap();
        assert_eq!(auth.token.policies, ["dev", "ops"]);
        assert_eq!(auth.alias.name, "alice@ci");
        assert_eq!(auth.group_aliases, ["g1"]);
        assert_eq!(auth.metadata["a"], "alice");
        let by_sub = login(json!({"expression": "pb.Auth{}"}), claims).unwrap();
        assert_eq!(by_sub.alias.name, "alice");
    }

    #[test]
    fn writes_are_checked() {
        let cases = [
            (json!({}), "cel_program.expression cannot be empty"),
            (
                json!({"expression": "claims.a =="}),
                "cel_program.expression: invalid CEL",
            ),
            (
                json!({"expression": "nosuch == 1"}),
                "cel_program.expression: undeclared reference to 'nosuch'",
            ),
            (
                json!({"expression": "pb.Auth{ttl: 1}"}),
                "cel_program.expression: undefined field 'ttl' of pb.Auth",
            ),
            (
                json!({"expression": "pb.Alias{name: 'x'}"}),
                "cel_program.expression: message construction",
            ),
            (
                json!({"expression": "x", "variables": [{"name": "x", "expression": "y"}, {"name": "y", "expression": "true"}]}),
                "cel_program.variables[0] (x): undeclared reference to 'y'",
            ),
            (
                json!({"expression": "true", "variables": [{"name": "x"}]}),
                "cel_program.variables[0] (x): empty expression",
            ),
        ];
        for (program, want) in cases {
            let got = role(program.clone()).err().unwrap_or_default();
            assert!(got.starts_with(want), "{program}: {got}");
        }
        assert!(role(json!({"expression": "1 + 2"})).is_ok());
    }

    #[test]
    fn the_cel_role_example_of_docs_cel_md_logs_in_as_it_says() {
        let doc = include_str!("../../../docs/cel.md");
        let text = doc
            .split("```json\n")
            .map(|b| &b[..b.find("```").unwrap_or(b.len())])
            .find(|text| text.contains("cel_program"))
            .unwrap();
        let v: Value = serde_json::from_str(text).unwrap();
        let claims = json!({"sub": "s", "email": "a@x", "groups": ["team-red", "ops"]});
        let auth = login(v["cel_program"].clone(), claims).unwrap();
        assert_eq!(auth.token.policies, ["ci-team-red"]);
        assert_eq!(auth.alias.name, "a@x");
        assert_eq!(auth.group_aliases, ["team-red"]);
        let none = login(v["cel_program"].clone(), json!({"groups": ["ops"]})).unwrap_err();
        assert!(none.ends_with("with message: not in any team"), "{none}");
    }

    #[test]
    fn a_chain_of_growing_variables_is_counted_as_it_grows() {
        let doubling: Vec<Value> = (0..20)
            .map(|i| match i {
                0 => json!({"name": "v0", "expression": "claims.g + claims.g"}),
                i => json!({"name": format!("v{i}"), "expression": format!("v{} + v{}", i - 1, i - 1)}),
            })
            .collect();
        let got = role(json!({"expression": "size(v19) > 0", "variables": doubling}))
            .err()
            .unwrap_or_default();
        assert!(got.starts_with("cel_program: too expensive"), "{got}");
        let quadratic = json!({"expression": "claims.g.all(a, claims.g.exists(b, a == b)) ? pb.Auth{} : false"});
        let small = json!({"sub": "s", "g": (0..10).collect::<Vec<_>>()});
        assert!(login(quadratic.clone(), small).is_ok());
        let big = json!({"sub": "s", "g": (0..5000).collect::<Vec<_>>()});
        let err = login(quadratic, big).unwrap_err();
        assert!(
            err.starts_with(
                "error executing cel program: cel_program exceeds the evaluation budget"
            ),
            "{err}"
        );
    }

    #[test]
    fn pages_of_names() {
        let keys = || vec!["b".to_string(), "a".into(), "c".into()];
        assert_eq!(page(keys(), "", 0), ["a", "b", "c"]);
        assert_eq!(page(keys(), "a", 1), ["b"]);
        assert_eq!(page(keys(), "", 1), ["a"]);
        assert_eq!(page(keys(), "c", 0), Vec::<String>::new());
    }
}
