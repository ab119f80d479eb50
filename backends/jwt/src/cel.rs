//! Claim rules in CEL on the ordinary role: `claim_rules` (boolean expressions that must all
//! hold, each with the message a refused login gets) and `policies_expression` (a list of
//! extra policy names computed from the claims).
//!
//! Expressions are written in the Common Expression Language (the `cel` crate) and see one
//! variable, `claims`: the verified token's claims as a map. They are compiled and checked
//! when the role is written ([`CelRules::apply_write`]: syntax, names, result shape, size,
//! depth, cost on a typical token) and a bad one is refused there, naming it. The compiled
//! programs live inside the stored [`crate::role::Role`] value: a role is compiled when its
//! stored bytes are parsed, which the role cache does once per stored version (exact across
//! nodes, `authmount_framework::cache`), never per login.
//!
//! Cost: before any expression runs at login, its worst-case number of evaluation steps is
//! computed from the actual sizes of the token's lists and maps ([`estimate`]); a login
//! whose estimate is over [`MAX_STEPS`] is refused without running the expression. CEL has
//! no loops other than its comprehension macros (`all`, `exists`, `exists_one`, `map`,
//! `filter`), so the number of steps is bounded by the sizes of what they iterate.
//!
//! The one entry point of the login is [`check`].

use std::fmt;
use std::sync::{Arc, OnceLock};

use ::cel::common::ast::{operators, EntryExpr, Expr, IdedExpr, LiteralValue};
use ::cel::{Context, Env, ExecutionError, Program, Value as CelValue};
use authmount_framework::{Error, Field, FieldData, FieldType, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::login::{LoginError, Trace};
use crate::role::Role;

/// Longest expression accepted at write, in characters.
pub const MAX_EXPRESSION_CHARS: usize = 2048;
/// Deepest expression tree accepted at write (nodes from the root to a leaf).
pub const MAX_DEPTH: usize = 32;
/// Deepest nesting of brackets accepted at write (checked before parsing).
pub const MAX_NESTING: usize = 16;
/// Stack of the thread an expression is parsed on.
const PARSER_STACK_BYTES: usize = 16 << 20;
/// Most rules a role may carry.
pub const MAX_RULES: usize = 32;
/// Longest rule message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 512;
/// Evaluation budget of one expression at login: its estimated worst-case steps for the
/// token at hand.
pub const MAX_STEPS: u64 = 250_000;
/// The list and map size a role write assumes when it checks an expression's cost: an
/// expression over the budget for a token whose lists hold this many items is refused.
pub const WRITE_CHECK_ITEMS: u64 = 100;
/// Most extra policies `policies_expression` may yield.
pub const MAX_EXTRA_POLICIES: usize = 64;

/// One claim rule as written and stored: `{"expression": "...", "message": "..."}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimRule {
    /// A CEL expression over `claims` that must yield `true`.
    pub expression: String,
    /// The error a login gets when the expression does not hold (a default naming the rule
    /// when empty).
    pub message: String,
}

/// The CEL fields as stored in a role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CelSource {
    /// `claim_rules`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub claim_rules: Vec<ClaimRule>,
    /// `policies_expression` (empty: none).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub policies_expression: String,
}

/// The CEL fields of a role with their compiled programs. Stored (serde) as [`CelSource`];
/// parsing a stored role compiles them (a stored expression that no longer compiles makes
/// the role unreadable: fail closed).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(try_from = "CelSource", into = "CelSource")]
pub struct CelRules {
    source: CelSource,
    rules: Vec<Arc<Program>>,
    policies: Option<Arc<Program>>,
}

impl fmt::Debug for CelRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.source.fmt(f)
    }
}

impl PartialEq for CelRules {
    /// Same source, same programs.
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl From<CelRules> for CelSource {
    fn from(rules: CelRules) -> Self {
        rules.source
    }
}

impl TryFrom<CelSource> for CelRules {
    type Error = String;

    fn try_from(source: CelSource) -> std::result::Result<Self, String> {
        CelRules::compile(source)
    }
}

/// What an expression must yield.
#[derive(Clone, Copy, PartialEq)]
enum Want {
    Bool,
    List,
}

/// The fields of `role/<name>` this module adds.
pub fn fields() -> Vec<Field> {
    vec![
        Field::new(
            "claim_rules",
            FieldType::Raw,
            "CEL rules over 'claims' that must all hold: a list of {\"expression\", \"message\"} (or that list as a JSON string).",
        ),
        Field::new(
            "policies_expression",
            FieldType::String,
            "A CEL expression over 'claims' yielding a list of extra policy names.",
        ),
    ]
}

impl CelRules {
    /// True when the role has no CEL field.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.policies.is_none()
    }

    /// Compiles and checks every expression of `source`. Errors name the field and rule
    /// (`claim_rules[1]: ...`, `policies_expression: ...`) and say why.
    pub fn compile(source: CelSource) -> std::result::Result<Self, String> {
        if source.claim_rules.len() > MAX_RULES {
            return Err(format!("claim_rules: at most {MAX_RULES} rules"));
        }
        let mut rules = Vec::with_capacity(source.claim_rules.len());
        for (i, rule) in source.claim_rules.iter().enumerate() {
            let name = format!("claim_rules[{i}]");
            if rule.message.chars().count() > MAX_MESSAGE_CHARS {
                return Err(format!(
                    "{name}: message longer than {MAX_MESSAGE_CHARS} characters"
                ));
            }
            rules.push(Arc::new(compile_one(&name, &rule.expression, Want::Bool)?));
        }
        let policies = match source.policies_expression.trim() {
            "" => None,
            expr => Some(Arc::new(compile_one(
                "policies_expression",
                expr,
                Want::List,
            )?)),
        };
        Ok(CelRules {
            source,
            rules,
            policies,
        })
    }

    /// Applies a role write's `claim_rules` and `policies_expression` (merge: a field not
    /// sent is kept; `[]` / `""` clears). Errors: 400 naming the rule and why.
    pub fn apply_write(&mut self, f: &FieldData) -> Result<()> {
        let mut source = self.source.clone();
        if let Some(raw) = f.get("claim_rules") {
            source.claim_rules = parse_rules(raw).map_err(Error::invalid)?;
        }
        if let Some(expr) = f.str("policies_expression") {
            source.policies_expression = expr.trim().to_string();
        }
        *self = CelRules::compile(source).map_err(Error::invalid)?;
        Ok(())
    }

    /// Adds `claim_rules` and `policies_expression` to a role read's `data`.
    pub fn read_into(&self, data: &mut Map<String, Value>) {
        data.insert("claim_rules".into(), json!(self.source.claim_rules));
        data.insert(
            "policies_expression".into(),
            json!(self.source.policies_expression),
        );
    }
}

/// `claim_rules` as sent: a JSON list of `{expression, message}` objects, or that list as a
/// JSON string (the CLI's `claim_rules=@rules.json`); `null` or `""` is no rules.
fn parse_rules(raw: &Value) -> std::result::Result<Vec<ClaimRule>, String> {
    let parsed;
    let list = match raw {
        Value::Null => return Ok(vec![]),
        Value::String(s) if s.trim().is_empty() => return Ok(vec![]),
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s)
                .map_err(|e| format!("claim_rules: not a JSON list: {e}"))?;
            &parsed
        }
        other => other,
    };
    serde_json::from_value::<Vec<ClaimRule>>(list.clone()).map_err(|e| {
        format!("claim_rules: expected a list of {{\"expression\", \"message\"}} objects: {e}")
    })
}

/// The environment every expression is compiled and run in: CEL's standard library and
/// macros (regular expressions included; no extensions).
fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(Env::stdlib()))
}

/// The names an expression may use: variables, and message types it may construct with the
/// fields each has.
pub(crate) struct Names<'a> {
    /// Variables (besides comprehension variables).
    pub variables: &'a [&'a str],
    /// Message types (`pb.Auth`) and their field names.
    pub messages: &'a [(&'a str, &'a [&'a str])],
    /// What an undeclared reference is told: `expressions see only ...`.
    pub hint: &'a str,
}

/// The names of claim rules and policies expressions: `claims` only, no messages.
const CLAIMS_ONLY: Names<'static> = Names {
    variables: &["claims"],
    messages: &[],
    hint: "expressions see only 'claims'",
};

/// Compiles `expr` (the field `name`) and checks it: size, depth, names, result shape and
/// cost on a typical token.
fn compile_one(name: &str, expr: &str, want: Want) -> std::result::Result<Program, String> {
    let program = compile_checked(name, expr, &CLAIMS_ONLY)?;
    let shape = shape(program.expression());
    match (want, shape) {
        (_, Shape::Dyn) | (Want::Bool, Shape::Bool) | (Want::List, Shape::List) => Ok(program),
        (Want::Bool, other) => Err(format!("{name}: yields {other}, not a bool")),
        (Want::List, other) => Err(format!("{name}: yields {other}, not a list of strings")),
    }
}

/// Compiles `expr` (the field `name`) and checks everything but its result: size, depth,
/// the names it uses (`names`), the functions it calls and its cost on a typical token.
/// Errors name the field and say why.
pub(crate) fn compile_checked(
    name: &str,
    expr: &str,
    names: &Names<'_>,
) -> std::result::Result<Program, String> {
    if expr.trim().is_empty() {
        return Err(format!("{name}: empty expression"));
    }
    let chars = expr.chars().count();
    if chars > MAX_EXPRESSION_CHARS {
        return Err(format!(
            "{name}: expression of {chars} characters, the limit is {MAX_EXPRESSION_CHARS}"
        ));
    }
    let nesting = bracket_nesting(expr);
    if nesting > MAX_NESTING {
        return Err(format!(
            "{name}: brackets nested {nesting} deep, the limit is {MAX_NESTING}"
        ));
    }
    let program = parse(expr).map_err(|e| format!("{name}: invalid CEL: {}", one_line(&e)))?;
    let root = program.expression();
    let depth = depth(root);
    if depth > MAX_DEPTH {
        return Err(format!(
            "{name}: expression nested {depth} deep, the limit is {MAX_DEPTH}"
        ));
    }
    check_names(root, &mut vec![], names).map_err(|e| format!("{name}: {e}"))?;
    let steps = estimate(root, WRITE_CHECK_ITEMS, literal_items(root)).steps;
    if steps > MAX_STEPS {
        return Err(format!(
            "{name}: too expensive: about {steps} evaluation steps for a token whose lists hold {WRITE_CHECK_ITEMS} items, the budget is {MAX_STEPS}"
        ));
    }
    Ok(program)
}

/// Parses `expr` on a thread of its own with a stack sized for the parser (its recursion
/// per bracket level is deep, and a request worker's stack is not), so that no expression
/// can overflow a worker's stack; a parser panic is an error.
pub(crate) fn parse(expr: &str) -> std::result::Result<Program, String> {
    let source = expr.to_string();
    std::thread::Builder::new()
        .name("cel-compile".into())
        .stack_size(PARSER_STACK_BYTES)
        .spawn(move || env().compile(&source).map_err(|e| e.to_string()))
        .map_err(|e| format!("cannot start the compiler: {e}"))?
        .join()
        .unwrap_or_else(|_| Err("the parser failed on this expression".into()))
}

/// The deepest nesting of `(`, `[` and `{` outside string literals (a cheap bound checked
/// before the parser runs).
fn bracket_nesting(expr: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut chars = expr.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ')' | ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The parser's multi-line error report on one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The sub-expressions of `e`, in evaluation order (comprehensions: range, init, condition,
/// step, result).
fn children(e: &IdedExpr) -> Vec<&IdedExpr> {
    match &e.expr {
        Expr::Call(call) => call.target.iter().map(|t| &**t).chain(&call.args).collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
        Expr::List(list) => list.elements.iter().collect(),
        Expr::Map(map) => map
            .entries
            .iter()
            .flat_map(|e| entry_parts(&e.expr))
            .collect(),
        Expr::Struct(s) => s
            .entries
            .iter()
            .flat_map(|e| entry_parts(&e.expr))
            .collect(),
        Expr::Select(select) => vec![&select.operand],
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => vec![],
    }
}

fn entry_parts(entry: &EntryExpr) -> Vec<&IdedExpr> {
    match entry {
        EntryExpr::MapEntry(m) => vec![&m.key, &m.value],
        EntryExpr::StructField(f) => vec![&f.value],
    }
}

/// Nodes from `e` to its deepest leaf (the parser bounds the recursion).
fn depth(e: &IdedExpr) -> usize {
    1 + children(e).into_iter().map(depth).max().unwrap_or(0)
}

/// Every identifier is one of `names`' variables or a comprehension variable in scope;
/// struct literals only of `names`' message types, with their fields; every function called
/// exists.
fn check_names<'a>(
    e: &'a IdedExpr,
    scope: &mut Vec<&'a str>,
    names: &Names<'_>,
) -> std::result::Result<(), String> {
    let declared = |name: &str| names.variables.contains(&name) || scope.contains(&name);
    match &e.expr {
        Expr::Ident(name) if declared(name) => Ok(()),
        Expr::Ident(name) => Err(format!("undeclared reference to '{name}' ({})", names.hint)),
        Expr::Struct(s) => {
            let Some((_, fields)) = names.messages.iter().find(|(n, _)| *n == s.type_name) else {
                return Err(format!(
                    "message construction ('{}{{...}}') is not supported",
                    s.type_name
                ));
            };
            for entry in &s.entries {
                if let EntryExpr::StructField(f) = &entry.expr {
                    if !fields.contains(&f.field.as_str()) {
                        return Err(format!(
                            "undefined field '{}' of {} (authmount knows: {})",
                            f.field,
                            s.type_name,
                            fields.join(", ")
                        ));
                    }
                }
            }
            children(e)
                .into_iter()
                .try_for_each(|c| check_names(c, scope, names))
        }
        Expr::Comprehension(c) => {
            check_names(&c.iter_range, scope, names)?;
            check_names(&c.accu_init, scope, names)?;
            let before = scope.len();
            scope.push(&c.accu_var);
            check_names(&c.result, scope, names)?;
            scope.push(&c.iter_var);
            scope.extend(c.iter_var2.as_deref());
            let inner = check_names(&c.loop_cond, scope, names).and(check_names(
                &c.loop_step,
                scope,
                names,
            ));
            scope.truncate(before);
            inner
        }
        Expr::Call(call) => {
            if !function_exists(&call.func_name) {
                return Err(format!("undeclared function '{}'", call.func_name));
            }
            children(e)
                .into_iter()
                .try_for_each(|c| check_names(c, scope, names))
        }
        _ => children(e)
            .into_iter()
            .try_for_each(|c| check_names(c, scope, names)),
    }
}

/// True when the environment declares `name` (an operator, a standard function, or a
/// namespaced one, whose existence is left to the run). Probed by calling it without
/// arguments, as a function and as a method: only an unknown name answers "undeclared
/// reference" to both.
fn function_exists(name: &str) -> bool {
    let plain = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !plain || name.starts_with('_') {
        return true;
    }
    let ctx = Context::with_env(env().clone());
    [format!("{name}()"), format!("null.{name}()")]
        .iter()
        .any(|probe| match env().compile(probe) {
            Ok(p) => !matches!(p.execute(&ctx), Err(ExecutionError::UndeclaredReference(_))),
            Err(_) => true,
        })
}

/// What an expression statically yields, where it can be told.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Bool,
    Int,
    Double,
    String,
    Bytes,
    Null,
    List,
    Map,
    Dyn,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Shape::Bool => "a bool",
            Shape::Int => "a number",
            Shape::Double => "a number",
            Shape::String => "a string",
            Shape::Bytes => "bytes",
            Shape::Null => "null",
            Shape::List => "a list",
            Shape::Map => "a map",
            Shape::Dyn => "a value",
        })
    }
}

fn shape(e: &IdedExpr) -> Shape {
    match &e.expr {
        Expr::Literal(l) => match l {
            LiteralValue::Boolean(_) => Shape::Bool,
            LiteralValue::Int(_) | LiteralValue::UInt(_) => Shape::Int,
            LiteralValue::Double(_) => Shape::Double,
            LiteralValue::String(_) => Shape::String,
            LiteralValue::Bytes(_) => Shape::Bytes,
            LiteralValue::Null => Shape::Null,
        },
        Expr::List(_) => Shape::List,
        Expr::Map(_) => Shape::Map,
        Expr::Select(s) if s.test => Shape::Bool,
        Expr::Comprehension(c) => match &c.result.expr {
            Expr::Ident(v) if *v == c.accu_var => shape(&c.accu_init),
            _ => shape(&c.result),
        },
        Expr::Call(call) => match call.func_name.as_str() {
            operators::EQUALS
            | operators::NOT_EQUALS
            | operators::LESS
            | operators::LESS_EQUALS
            | operators::GREATER
            | operators::GREATER_EQUALS
            | operators::LOGICAL_AND
            | operators::LOGICAL_OR
            | operators::LOGICAL_NOT
            | operators::IN
            | operators::NOT_STRICTLY_FALSE
            | "startsWith"
            | "endsWith"
            | "contains"
            | "matches" => Shape::Bool,
            "size" | "int" | "uint" => Shape::Int,
            "string" => Shape::String,
            operators::CONDITIONAL if call.args.len() == 3 => {
                match (shape(&call.args[1]), shape(&call.args[2])) {
                    (a, b) if a == b => a,
                    _ => Shape::Dyn,
                }
            }
            operators::ADD if call.args.len() == 2 => {
                match (shape(&call.args[0]), shape(&call.args[1])) {
                    (a @ (Shape::List | Shape::String | Shape::Int | Shape::Double), b)
                        if a == b =>
                    {
                        a
                    }
                    _ => Shape::Dyn,
                }
            }
            operators::SUBSTRACT
            | operators::MULTIPLY
            | operators::DIVIDE
            | operators::MODULO
            | operators::NEGATE => match call.args.iter().map(shape).collect::<Vec<_>>()[..] {
                [Shape::Int] | [Shape::Int, Shape::Int] => Shape::Int,
                [Shape::Double] | [Shape::Double, Shape::Double] => Shape::Double,
                _ => Shape::Dyn,
            },
            _ => Shape::Dyn,
        },
        _ => Shape::Dyn,
    }
}

/// An upper bound on the cost of evaluating an expression and on the size of what it yields.
#[derive(Clone, Copy, Default)]
pub struct Estimate {
    /// Evaluation steps (nodes evaluated, plus items copied or compared).
    pub steps: u64,
    /// Items of the value (list or map length; 0 for scalars).
    pub len: u64,
    /// Items of the value's largest item.
    pub elem: u64,
}

/// The number of items of all list and map literals of `e` (anything drawn from them is no
/// larger).
pub(crate) fn literal_items(e: &IdedExpr) -> u64 {
    let own = match &e.expr {
        Expr::List(l) => l.elements.len() as u64,
        Expr::Map(m) => m.entries.len() as u64,
        _ => 0,
    };
    children(e)
        .into_iter()
        .fold(own, |n, c| n.saturating_add(literal_items(c)))
}

/// Worst-case cost of `e` when every list or map drawn from the claims holds at most
/// `items` items and every literal at most `literals` (comprehension results and
/// concatenations are followed exactly).
pub fn estimate(e: &IdedExpr, items: u64, literals: u64) -> Estimate {
    Estimator {
        unknown: items.max(literals).max(1),
        scope: vec![],
    }
    .run(e)
}

/// [`estimate`] where the variables `bound` (names of earlier results, e.g. a CEL role's
/// variables) are as large as their own estimates say, not merely as large as a claim.
pub(crate) fn estimate_bound<'a>(
    e: &'a IdedExpr,
    items: u64,
    literals: u64,
    bound: &[(&'a str, Estimate)],
) -> Estimate {
    Estimator {
        unknown: items.max(literals).max(1),
        scope: bound.to_vec(),
    }
    .run(e)
}

struct Estimator<'a> {
    /// The bound of a collection drawn from the claims or a literal.
    unknown: u64,
    /// Comprehension variables in scope and the bounds of their values.
    scope: Vec<(&'a str, Estimate)>,
}

impl<'a> Estimator<'a> {
    fn opaque(&self, steps: u64) -> Estimate {
        Estimate {
            steps,
            len: self.unknown,
            elem: self.unknown,
        }
    }

    fn run(&mut self, e: &'a IdedExpr) -> Estimate {
        match &e.expr {
            Expr::Literal(_) | Expr::Unspecified => Estimate {
                steps: 1,
                ..Estimate::default()
            },
            Expr::Ident(name) => match self.scope.iter().rev().find(|(n, _)| n == name) {
                Some((_, est)) => Estimate { steps: 1, ..*est },
                None => self.opaque(1),
            },
            Expr::Select(s) => {
                let o = self.run(&s.operand);
                Estimate {
                    steps: o.steps.saturating_add(1),
                    len: o.elem,
                    elem: self.unknown.max(o.elem),
                }
            }
            Expr::List(_) | Expr::Map(_) | Expr::Struct(_) => {
                let parts: Vec<Estimate> = children(e).into_iter().map(|c| self.run(c)).collect();
                let values: Vec<&Estimate> = match &e.expr {
                    // a map's items are its values (every second part)
                    Expr::Map(_) => parts.iter().skip(1).step_by(2).collect(),
                    _ => parts.iter().collect(),
                };
                Estimate {
                    steps: sum(parts.iter().map(|p| p.steps)).saturating_add(1),
                    len: values.len() as u64,
                    elem: values.iter().map(|p| p.len).max().unwrap_or(0),
                }
            }
            Expr::Call(call) => {
                let args: Vec<Estimate> = children(e).into_iter().map(|c| self.run(c)).collect();
                let steps = sum(args.iter().map(|a| a.steps)).saturating_add(1);
                let lens = sum(args.iter().map(|a| a.len));
                match call.func_name.as_str() {
                    operators::ADD => Estimate {
                        steps: steps.saturating_add(lens),
                        len: lens,
                        elem: args.iter().map(|a| a.elem).max().unwrap_or(0),
                    },
                    // membership walks the container; other comparisons count as one step
                    operators::IN if args.len() == 2 => Estimate {
                        steps: steps.saturating_add(args[1].len),
                        len: 0,
                        elem: 0,
                    },
                    operators::EQUALS
                    | operators::NOT_EQUALS
                    | operators::LESS
                    | operators::LESS_EQUALS
                    | operators::GREATER
                    | operators::GREATER_EQUALS
                    | operators::LOGICAL_AND
                    | operators::LOGICAL_OR
                    | operators::LOGICAL_NOT
                    | operators::NOT_STRICTLY_FALSE => Estimate {
                        steps,
                        len: 0,
                        elem: 0,
                    },
                    operators::CONDITIONAL if args.len() == 3 => Estimate {
                        steps,
                        len: args[1].len.max(args[2].len),
                        elem: args[1].elem.max(args[2].elem),
                    },
                    operators::INDEX if args.len() == 2 => Estimate {
                        steps,
                        len: args[0].elem,
                        elem: self.unknown.max(args[0].elem),
                    },
                    _ => Estimate {
                        steps: steps.saturating_add(lens),
                        len: self.unknown.max(lens),
                        elem: self.unknown,
                    },
                }
            }
            Expr::Comprehension(c) => {
                let range = self.run(&c.iter_range);
                let init = self.run(&c.accu_init);
                let before = self.scope.len();
                // The accumulator is only ever appended to (map, filter) or a scalar: it
                // counts as empty in each step, and a list result is as long as the range.
                self.scope.push((&c.accu_var, Estimate::default()));
                self.scope.push((
                    &c.iter_var,
                    Estimate {
                        steps: 0,
                        len: range.elem,
                        elem: self.unknown.max(range.elem),
                    },
                ));
                if let Some(v2) = &c.iter_var2 {
                    self.scope.push((v2, self.opaque(0)));
                }
                let cond = self.run(&c.loop_cond);
                let step = self.run(&c.loop_step);
                let result = self.run(&c.result);
                self.scope.truncate(before);
                let per_item = cond.steps.saturating_add(step.steps);
                let steps = sum([
                    range.steps,
                    init.steps,
                    range.len.saturating_mul(per_item),
                    result.steps,
                ]);
                match c.accu_init.expr {
                    Expr::List(_) => Estimate {
                        steps,
                        len: range.len,
                        elem: step.elem,
                    },
                    _ => Estimate { steps, ..result },
                }
            }
        }
    }
}

fn sum(values: impl IntoIterator<Item = u64>) -> u64 {
    values.into_iter().fold(0, u64::saturating_add)
}

/// The largest list or map anywhere in `claims` (the claims map itself included): the bound
/// [`estimate`] is given at login.
pub(crate) fn largest_collection(claims: &Map<String, Value>) -> u64 {
    let mut largest = claims.len();
    let mut stack: Vec<&Value> = claims.values().collect();
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => {
                largest = largest.max(items.len());
                stack.extend(items);
            }
            Value::Object(map) => {
                largest = largest.max(map.len());
                stack.extend(map.values());
            }
            _ => {}
        }
    }
    largest as u64
}

/// Runs the role's CEL fields over the verified `claims`: every claim rule must yield
/// `true`, then `policies_expression` (if any) gives the extra policies (lower-cased,
/// trimmed, deduplicated by the caller's policy parsing). Each rule and the policies
/// expression is one check in `trace` (login explain: `cel_rule` with its index,
/// expression and message; `policies_expression` with the policies it gave).
///
/// Errors (400, failure class `claim_rule`): a rule yields `false` (its message), a rule or
/// the policies expression fails to evaluate or yields the wrong shape (named, with why),
/// or an expression's worst-case cost for this token is over [`MAX_STEPS`] (refused
/// without running it).
pub fn check(
    role: &Role,
    claims: &Map<String, Value>,
    trace: &mut Trace,
) -> std::result::Result<Vec<String>, LoginError> {
    let rules = &role.cel;
    if rules.is_empty() {
        return Ok(vec![]);
    }
    let items = largest_collection(claims);
    let within_budget = |name: &str, program: &Program| {
        let root = program.expression();
        let steps = estimate(root, items, literal_items(root)).steps;
        match steps > MAX_STEPS {
            true => Err(LoginError::ClaimRule(format!(
                "{name} exceeds the evaluation budget for this token: about {steps} steps, the limit is {MAX_STEPS}"
            ))),
            false => Ok(()),
        }
    };
    let value = ::cel::to_value(claims)
        .map_err(|e| LoginError::ClaimRule(format!("claims cannot be given to CEL: {e}")));
    let value = trace.record("cel_claims", value, |_| json!({}))?;
    let mut ctx = Context::with_env(env().clone());
    ctx.add_variable_from_value("claims", value);
    for (i, (program, rule)) in rules
        .rules
        .iter()
        .zip(&rules.source.claim_rules)
        .enumerate()
    {
        let name = format!("claim_rules[{i}]");
        let refused = |detail: Option<String>| {
            let message = match rule.message.is_empty() {
                true => format!("the token's claims do not satisfy {name}"),
                false => rule.message.clone(),
            };
            LoginError::ClaimRule(match detail {
                Some(d) => format!("{message} ({name}: {d})"),
                None => message,
            })
        };
        let outcome = within_budget(&name, program).and_then(|()| match program.execute(&ctx) {
            Ok(CelValue::Bool(true)) => Ok(()),
            Ok(CelValue::Bool(false)) => Err(refused(None)),
            Ok(other) => Err(refused(Some(format!(
                "yielded {:?}, not a bool",
                other.type_of()
            )))),
            Err(e) => Err(refused(Some(e.to_string()))),
        });
        trace.record(
            "cel_rule",
            outcome,
            |_| json!({"index": i, "expression": rule.expression, "message": rule.message}),
        )?;
    }
    let Some(program) = &rules.policies else {
        return Ok(vec![]);
    };
    let outcome = within_budget("policies_expression", program)
        .and_then(|()| extra_policies(program.execute(&ctx)));
    trace.record(
        "policies_expression",
        outcome,
        |policies| json!({"expression": rules.source.policies_expression, "policies": policies}),
    )
}

/// The extra policies from the policies expression's value: a list of at most
/// [`MAX_EXTRA_POLICIES`] strings.
fn extra_policies(
    result: std::result::Result<CelValue, ExecutionError>,
) -> std::result::Result<Vec<String>, LoginError> {
    let bad = |detail: String| LoginError::ClaimRule(format!("policies_expression: {detail}"));
    let items = match result {
        Ok(CelValue::List(items)) => items,
        Ok(other) => {
            return Err(bad(format!(
                "yielded {:?}, not a list of strings",
                other.type_of()
            )))
        }
        Err(e) => return Err(bad(e.to_string())),
    };
    if items.len() > MAX_EXTRA_POLICIES {
        return Err(bad(format!(
            "yielded {} policies, the limit is {MAX_EXTRA_POLICIES}",
            items.len()
        )));
    }
    items
        .iter()
        .map(|item| match item {
            CelValue::String(s) => Ok(s.to_string()),
            other => Err(bad(format!(
                "yielded a list holding {:?}, not only strings",
                other.type_of()
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(rules: Value, policies: &str) -> std::result::Result<CelRules, String> {
        CelRules::compile(CelSource {
            claim_rules: serde_json::from_value(rules).unwrap(),
            policies_expression: policies.into(),
        })
    }

    fn check(
        rules: &CelRules,
        claims: &Map<String, Value>,
    ) -> std::result::Result<Vec<String>, LoginError> {
        let role = Role {
            cel: rules.clone(),
            ..Role::default()
        };
        super::check(&role, claims, &mut Trace::off())
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn write_time_checks_name_the_rule_and_say_why() {
        let cases = [
            (
                json!([{"expression": "claims.a =="}]),
                "claim_rules[0]: invalid CEL",
            ),
            (
                json!([{"expression": "true"}, {"expression": "nosuch == 1"}]),
                "claim_rules[1]: undeclared reference to 'nosuch'",
            ),
            (
                json!([{"expression": "1 + 2"}]),
                "claim_rules[0]: yields a number, not a bool",
            ),
            (
                json!([{"expression": "'x'"}]),
                "claim_rules[0]: yields a string, not a bool",
            ),
            (
                json!([{"expression": "nofunc(claims.a)"}]),
                "claim_rules[0]: undeclared function 'nofunc'",
            ),
            (
                json!([{"expression": "claims.a.all(x, claims.a.all(y, claims.a.all(z, x == y)))"}]),
                "claim_rules[0]: too expensive",
            ),
        ];
        for (input, want) in cases {
            let got = rules(input.clone(), "").err().unwrap_or_default();
            assert!(got.starts_with(want), "{input}: {got}");
        }
        let long = format!("claims.a == '{}'", "x".repeat(MAX_EXPRESSION_CHARS));
        let got = rules(json!([{"expression": long}]), "").err().unwrap();
        assert!(got.contains("the limit is 2048"), "{got}");
        let deep = format!("{}true{}", "(".repeat(40), ")".repeat(40));
        let deep = format!("!{}", deep.replace("(", "(!"));
        let got = rules(json!([{"expression": deep}]), "").err().unwrap();
        assert_eq!(
            got,
            "claim_rules[0]: brackets nested 40 deep, the limit is 16"
        );
        let chain = vec!["claims.a"; 150].join(" + ");
        let got = rules(json!([{"expression": format!("{chain} == 'x'")}]), "")
            .err()
            .unwrap();
        assert!(got.contains("deep") || got.contains("invalid CEL"), "{got}");
        let got = rules(json!([]), "claims.a == 'x'").err().unwrap();
        assert_eq!(
            got,
            "policies_expression: yields a bool, not a list of strings"
        );
        let fine = rules(
            json!([{"expression": "claims.ref.startsWith('refs/heads/') && size(claims.groups) > 0"}]),
            "claims.groups.map(g, 'team-' + g)",
        );
        assert!(fine.is_ok(), "{:?}", fine.err());
    }

    #[test]
    fn rules_hold_refuse_and_yield_policies() {
        let r = rules(
            json!([{"expression": "claims.ref == 'refs/heads/main'", "message": "only main"},
                   {"expression": "'dev' in claims.groups"}]),
            "claims.groups.filter(g, g != 'dev').map(g, 'team-' + g)",
        )
        .unwrap();
        let ok = claims(json!({"ref": "refs/heads/main", "groups": ["dev", "ops"]}));
        assert_eq!(check(&r, &ok).unwrap(), ["team-ops"]);
        let wrong_ref = claims(json!({"ref": "refs/heads/x", "groups": ["dev"]}));
        assert_eq!(check(&r, &wrong_ref).unwrap_err().to_string(), "only main");
        let no_dev = claims(json!({"ref": "refs/heads/main", "groups": ["ops"]}));
        assert_eq!(
            check(&r, &no_dev).unwrap_err().to_string(),
            "the token's claims do not satisfy claim_rules[1]"
        );
        let missing = claims(json!({"groups": ["dev"]}));
        assert_eq!(
            check(&r, &missing).unwrap_err().to_string(),
            "only main (claim_rules[0]: No such key: ref)"
        );
    }

    #[test]
    fn an_expensive_rule_is_refused_before_it_runs() {
        let r = rules(
            json!([{"expression": "claims.g.all(a, claims.g.exists(b, a == b))"}]),
            "",
        )
        .unwrap();
        let small = claims(json!({"g": (0..10).collect::<Vec<_>>()}));
        assert!(check(&r, &small).is_ok());
        let big = claims(json!({"g": (0..5000).collect::<Vec<_>>()}));
        let err = check(&r, &big).unwrap_err().to_string();
        assert!(
            err.starts_with("claim_rules[0] exceeds the evaluation budget"),
            "{err}"
        );
    }

    #[test]
    fn stored_form_round_trips_and_compiles_on_parse() {
        let r = rules(json!([{"expression": "true", "message": "m"}]), "['a']").unwrap();
        let bytes = serde_json::to_vec(&r).unwrap();
        let back: CelRules = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, r);
        assert_eq!(check(&back, &Map::new()).unwrap(), ["a"]);
        let empty: CelRules = serde_json::from_slice(b"{}").unwrap();
        assert!(empty.is_empty());
        assert_eq!(serde_json::to_string(&empty).unwrap(), "{}");
    }

    #[test]
    fn the_examples_of_docs_cel_md_compile_as_it_says() {
        let doc = include_str!("../../../docs/cel.md");
        let mut blocks = 0;
        for block in doc.split("```json\n").skip(1) {
            let text = &block[..block.find("```").unwrap()];
            if text.contains("cel_program") {
                continue; // a CEL role: crate::cel_role's tests compile it
            }
            let v: Value = serde_json::from_str(text).unwrap();
            let got = rules(
                v.get("claim_rules").cloned().unwrap_or(json!([])),
                v["policies_expression"].as_str().unwrap_or_default(),
            );
            match text.contains("substring") {
                true => assert_eq!(
                    got.err().as_deref(),
                    Some("policies_expression: undeclared function 'substring'")
                ),
                false => assert!(got.is_ok(), "{text}: {:?}", got.err()),
            }
            blocks += 1;
        }
        assert_eq!(blocks, 3);
    }
}
