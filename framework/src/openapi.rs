//! Help text and OpenAPI 3 documents generated from path tables.
//!
//! Every [`Path`] already says its pattern, its typed fields, its operations and a line
//! of help; this module turns that table into
//!
//! * Vault's help text for one path ([`path_help`]) or a whole backend ([`backend_help`]),
//!   answered to `GET /v1/auth/<mount>/<path>?help=1` as `{"help": ..., "openapi": ...}`;
//! * an OpenAPI 3.0 [`Document`]: each pattern expanded to path templates (named captures
//!   become `{name}` path parameters), each operation an HTTP method (read: `get`, list:
//!   `get` with `list=true`, update: `post`, delete: `delete`), each non-capture field a
//!   typed, described property of the `post` request body. `GET /v1/sys/internal/specs/openapi`
//!   answers one document of every mounted path.
//!
//! Nothing here is written by hand per backend: a backend that declares its paths gets its
//! help and API description for free.
//!
//! Source: Vault `sdk/framework/openapi.go` (pattern expansion, type mapping, `list` query
//! parameter, request schemas under `components/schemas`) and the help templates of
//! `sdk/framework/path.go` and `backend.go`.

use std::collections::{BTreeMap, BTreeSet};

use regex_syntax::hir::{Class, Hir, HirKind};
use serde_json::{json, Map, Value};

use crate::path::{Field, FieldType, Path, Router};
use crate::request::Operation;

/// The OpenAPI version the documents declare (the one Vault's documents declare).
pub const OPENAPI_VERSION: &str = "3.0.2";

/// An OpenAPI 3.0 document assembled from path tables.
///
/// Paths are added under a prefix (`auth/jwt/` for the whole server's document, empty for a
/// backend's own help document, whose `servers` entry then carries the mount). Patterns
/// that cannot be expanded to path templates (a character class or a repetition outside a
/// named capture) are left out and logged; every pattern of the built-in backends expands.
///
/// The test `a_router_becomes_path_items` below shows one path table turned into path items.
#[derive(Debug, Clone)]
pub struct Document {
    server: String,
    paths: BTreeMap<String, Map<String, Value>>,
    schemas: BTreeMap<String, Value>,
    operation_ids: BTreeSet<String>,
}

impl Document {
    /// An empty document whose one `servers` entry is `server_url` (e.g. `/v1`).
    pub fn new(server_url: &str) -> Self {
        Document {
            server: server_url.to_string(),
            paths: BTreeMap::new(),
            schemas: BTreeMap::new(),
            operation_ids: BTreeSet::new(),
        }
    }

    /// Adds every path of `router` under `prefix` (empty, or ending with `/`).
    pub fn add_router(&mut self, prefix: &str, router: &Router) {
        for spec in router.paths() {
            self.add_path(prefix, spec);
        }
    }

    /// Adds the path templates of one spec under `prefix` (empty, or ending with `/`).
    pub fn add_path(&mut self, prefix: &str, spec: &Path) {
        let templates = match expand_pattern(spec.pattern) {
            Ok(t) => t,
            Err(reason) => {
                tracing::warn!(
                    target: "authmount::openapi",
                    pattern = spec.pattern,
                    %reason,
                    "path left out of the OpenAPI document"
                );
                return;
            }
        };
        let reads = spec.supports(Operation::Read);
        let lists = spec.supports(Operation::List);
        let mut seen = BTreeSet::new();
        for mut template in templates {
            // A list-only path is listed at its trailing-slash form, as Vault documents it.
            if lists && !reads && !template.is_empty() && !template.ends_with('/') {
                template.push('/');
            }
            if seen.insert(template.clone()) {
                self.add_template(prefix, &template, spec);
            }
        }
    }

    /// The document as JSON.
    pub fn into_json(self) -> Value {
        json!({
            "openapi": OPENAPI_VERSION,
            "info": {
                "title": "authmount API",
                "description": "Vault-compatible HTTP API of authmount's auth methods, generated from their path tables. All routes are prefixed with `/v1/`; authenticated routes take the token in `X-Vault-Token`.",
                "version": env!("CARGO_PKG_VERSION"),
                "license": {"name": "Mozilla Public License 2.0", "url": "https://www.mozilla.org/en-US/MPL/2.0/"},
            },
            "servers": [{"url": self.server}],
            "security": [{"VaultToken": []}],
            "paths": self.paths.into_iter().map(|(k, v)| (k, Value::Object(v))).collect::<Map<_, _>>(),
            "components": {
                "schemas": self.schemas.into_iter().collect::<Map<_, _>>(),
                "securitySchemes": {
                    "VaultToken": {"type": "apiKey", "in": "header", "name": "X-Vault-Token"},
                },
            },
        })
    }

    fn add_template(&mut self, prefix: &str, template: &str, spec: &Path) {
        let full = format!("/{prefix}{template}");
        let captures = template_params(template);
        let reads = spec.supports(Operation::Read);
        let lists = spec.supports(Operation::List);
        let mut item = path_item(spec, &captures);
        for op in spec.operations().collect::<Vec<_>>().iter() {
            match op {
                Operation::Read => {
                    let list_param = (lists && template.ends_with('/')).then(|| list_query(false));
                    let op = self.operation("get", &full, spec, list_param.into_iter().collect());
                    item.insert("get".into(), op);
                }
                Operation::List if !reads => {
                    let op = self.operation("get", &full, spec, vec![list_query(true)]);
                    item.insert("get".into(), op);
                }
                Operation::List if !template.ends_with('/') => {
                    // Read and list on one pattern: the list goes to the trailing-slash form.
                    let list_path = format!("{full}/");
                    let op = self.operation("get", &list_path, spec, vec![list_query(true)]);
                    let mut list_item = path_item(spec, &captures);
                    list_item.insert("get".into(), op);
                    self.paths.entry(list_path).or_insert(list_item);
                }
                Operation::List => {} // documented as the optional `list` of the read
                Operation::Update => {
                    let body = self.request_body(&full, spec, &captures);
                    let mut op = self.operation("post", &full, spec, vec![]);
                    if let (Some(body), Value::Object(op)) = (body, &mut op) {
                        op.insert("requestBody".into(), body);
                    }
                    item.insert("post".into(), op);
                }
                Operation::Delete => {
                    let op = self.operation("delete", &full, spec, vec![]);
                    item.insert("delete".into(), op);
                }
            }
        }
        self.paths.insert(full, item);
    }

    fn operation(&mut self, method: &str, full: &str, spec: &Path, params: Vec<Value>) -> Value {
        let id = self.unique_id(&format!("{method}{}", camel_case(full)));
        let mut op = json!({
            "operationId": id,
            "summary": spec.help,
            "tags": ["auth"],
            "responses": {
                "200": {"description": "OK"},
                "204": {"description": "Done; no body"},
            },
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if spec.unauthenticated {
            op["security"] = json!([]); // no token needed (login)
        }
        op
    }

    /// The `requestBody` of a `post`: a `$ref` to `components/schemas/<Name>Request`
    /// holding every field that is not a path parameter, or `None` when there is none.
    fn request_body(&mut self, full: &str, spec: &Path, captures: &[String]) -> Option<Value> {
        let properties: Map<String, Value> = spec
            .fields
            .iter()
            .filter(|f| !captures.iter().any(|c| c == f.name))
            .map(|f| (f.name.to_string(), field_schema(f)))
            .collect();
        if properties.is_empty() {
            return None;
        }
        let name = self.unique_schema_name(&format!("{}Request", camel_case(full)));
        self.schemas.insert(
            name.clone(),
            json!({"type": "object", "properties": properties}),
        );
        Some(json!({
            "required": true,
            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}},
        }))
    }

    fn unique_id(&mut self, base: &str) -> String {
        let mut id = base.to_string();
        let mut n = 2;
        while !self.operation_ids.insert(id.clone()) {
            id = format!("{base}{n}");
            n += 1;
        }
        id
    }

    fn unique_schema_name(&self, base: &str) -> String {
        let mut name = base.to_string();
        let mut n = 2;
        while self.schemas.contains_key(&name) {
            name = format!("{base}{n}");
            n += 1;
        }
        name
    }
}

/// The path item of one template: its description, the `x-vault-unauthenticated` flag and
/// its path parameters (each capture, typed and described by the field of the same name).
fn path_item(spec: &Path, captures: &[String]) -> Map<String, Value> {
    let mut item = Map::new();
    item.insert("description".into(), Value::from(spec.help));
    if spec.unauthenticated {
        item.insert("x-vault-unauthenticated".into(), Value::Bool(true));
    }
    let params: Vec<Value> = captures
        .iter()
        .map(|name| {
            let field = spec.fields.iter().find(|f| f.name == name);
            json!({
                "name": name,
                "in": "path",
                "required": true,
                "description": field.map(|f| f.description).unwrap_or_default(),
                "schema": field.map(|f| type_schema(f.kind)).unwrap_or_else(|| json!({"type": "string"})),
            })
        })
        .collect();
    if !params.is_empty() {
        item.insert("parameters".into(), Value::Array(params));
    }
    item
}

fn list_query(required: bool) -> Value {
    if required {
        json!({"name": "list", "in": "query", "required": true,
               "description": "Must be `true`: list the keys under this path.",
               "schema": {"type": "string", "enum": ["true"]}})
    } else {
        json!({"name": "list", "in": "query",
               "description": "Return a list if `true`.",
               "schema": {"type": "string"}})
    }
}

/// The schema of one field: its type (see [`type_schema`]) and its description.
pub fn field_schema(field: &Field) -> Value {
    let mut schema = type_schema(field.kind);
    schema["description"] = Value::from(field.description);
    if let Some(default) = field.default.as_ref().filter(|_| !field.sensitive) {
        schema["default"] = default.clone();
    }
    if field.deprecated {
        schema["deprecated"] = Value::Bool(true);
    }
    schema
}

/// The OpenAPI schema (`{"type": ...}`, with `items` or `format` where needed) of a field
/// of this type, as Vault's OpenAPI generator describes its field types.
pub fn type_schema(kind: FieldType) -> Value {
    match kind {
        FieldType::String => json!({"type": "string"}),
        FieldType::LowerCaseString => json!({"type": "string", "format": "lowercase"}),
        FieldType::Bool => json!({"type": "boolean"}),
        FieldType::Int => json!({"type": "integer"}),
        FieldType::DurationSecond | FieldType::SignedDurationSecond => {
            json!({"type": "string", "format": "duration"})
        }
        FieldType::CommaStringSlice => json!({"type": "array", "items": {"type": "string"}}),
        FieldType::KvPairs => json!({"type": "object", "format": "kvpairs"}),
        FieldType::Map => json!({"type": "object", "format": "map"}),
        FieldType::Raw => json!({}),
    }
}

/// The name of a field type in help text (Vault's names: `string`, `duration (sec)`, ...).
pub fn type_name(kind: FieldType) -> &'static str {
    match kind {
        FieldType::String => "string",
        FieldType::LowerCaseString => "lowercase string",
        FieldType::Bool => "bool",
        FieldType::Int => "int",
        FieldType::DurationSecond => "duration (sec)",
        FieldType::SignedDurationSecond => "signed duration (sec)",
        FieldType::CommaStringSlice => "comma-separated string slice",
        FieldType::KvPairs => "keypair",
        FieldType::Map => "map",
        FieldType::Raw => "any",
    }
}

/// Vault's help text for one path: the request, the matching route, the help line and each
/// field (sorted by name) with its type and description.
pub fn path_help(spec: &Path, request_path: &str) -> String {
    let mut out = format!(
        "Request:        {request_path}\nMatching Route: ^{}$\n\n{}\n",
        spec.pattern, spec.help
    );
    let operations: Vec<&str> = spec.operations().map(|o| o.as_str()).collect();
    out.push_str(&format!("\n## OPERATIONS\n\n{}\n", operations.join(", ")));
    if spec.unauthenticated {
        out.push_str("\nNo Vault token is needed for this path.\n");
    }
    let mut fields: Vec<&Field> = spec.fields.iter().collect();
    fields.sort_by_key(|f| f.name);
    if !fields.is_empty() {
        out.push_str("\n## PARAMETERS\n");
        for f in fields {
            out.push_str(&format!(
                "\n{} ({})\n    {}\n",
                f.name,
                type_name(f.kind),
                f.description
            ));
        }
    }
    out
}

/// Vault's help text for a whole backend: its description, then every route pattern
/// (sorted) with its help line.
pub fn backend_help(description: &str, router: &Router) -> String {
    let mut out = format!(
        "## DESCRIPTION\n\n{}\n\n## PATHS\n\nThe paths of this backend, as patterns; ask for help on any path that matches one of them. What a token may use depends on its policies.\n",
        description.trim()
    );
    let mut routes: Vec<(String, &str)> = router
        .paths()
        .map(|s| (format!("^{}$", s.pattern), s.help))
        .collect();
    routes.sort();
    for (route, help) in routes {
        out.push_str(&format!("\n    {route}\n        {help}\n"));
    }
    out
}

/// Expands a path pattern into OpenAPI path templates: literals are kept, named captures
/// become `{name}`, optional parts (`?`) and alternations yield one template per choice,
/// unnamed groups are expanded in place. For example `role/?` gives `role` and `role/`, and
/// `role/(?P<name>\w+)` gives `role/{name}`.
///
/// Errors: a description of the first construct that has no template form (a character
/// class or a repetition outside a named capture, or an unparsable pattern).
pub fn expand_pattern(pattern: &str) -> Result<Vec<String>, String> {
    let hir = regex_syntax::Parser::new()
        .parse(pattern)
        .map_err(|e| format!("invalid pattern: {e}"))?;
    let mut out = expand(&hir)?;
    out.sort();
    out.dedup();
    Ok(out)
}

fn expand(hir: &Hir) -> Result<Vec<String>, String> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Ok(vec![String::new()]),
        HirKind::Literal(lit) => Ok(vec![String::from_utf8_lossy(&lit.0).into_owned()]),
        HirKind::Class(class) => single_char(class)
            .map(|c| vec![c.to_string()])
            .ok_or_else(|| "a character class outside a named capture".to_string()),
        HirKind::Capture(cap) => match &cap.name {
            Some(name) => Ok(vec![format!("{{{name}}}")]),
            None => expand(&cap.sub),
        },
        HirKind::Repetition(rep) if rep.min == 0 && rep.max == Some(1) => {
            let mut out = expand(&rep.sub)?;
            out.push(String::new());
            Ok(out)
        }
        HirKind::Repetition(_) => Err("a repetition outside a named capture".to_string()),
        HirKind::Concat(parts) => {
            let mut acc = vec![String::new()];
            for part in parts {
                let choices = expand(part)?;
                acc = acc
                    .iter()
                    .flat_map(|head| choices.iter().map(move |tail| format!("{head}{tail}")))
                    .collect();
            }
            Ok(acc)
        }
        HirKind::Alternation(alts) => {
            let mut out = Vec::new();
            for alt in alts {
                out.extend(expand(alt)?);
            }
            Ok(out)
        }
    }
}

/// The one character a class matches, when it matches exactly one.
fn single_char(class: &Class) -> Option<char> {
    match class {
        Class::Unicode(c) => match c.ranges() {
            [r] if r.start() == r.end() => Some(r.start()),
            _ => None,
        },
        Class::Bytes(c) => match c.ranges() {
            [r] if r.start() == r.end() && r.start().is_ascii() => Some(char::from(r.start())),
            _ => None,
        },
    }
}

/// The names between braces in a path template, in order.
fn template_params(template: &str) -> Vec<String> {
    template
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name.to_string()))
        .collect()
}

/// `/auth/my-path/role/{name}` → `AuthMyPathRoleName`.
fn camel_case(path: &str) -> String {
    path.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .map(|s| {
            let mut chars = s.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;

    impl Nothing {
        async fn ok(
            self: std::sync::Arc<Self>,
            _r: crate::BackendRequest,
        ) -> crate::Result<crate::Response> {
            Ok(crate::Response::default())
        }
    }

    fn spec(pattern: &'static str, operations: Vec<Operation>, fields: Vec<Field>) -> Path {
        let state = std::sync::Arc::new(Nothing);
        let mut path = Path::new(pattern).help("help line").fields(fields);
        for op in operations {
            path = path.on(op, &state, Nothing::ok);
        }
        path
    }

    #[test]
    fn expands_captures_optionals_and_alternations() {
        assert_eq!(expand_pattern("login").unwrap(), vec!["login"]);
        assert_eq!(expand_pattern("role/?").unwrap(), vec!["role", "role/"]);
        assert_eq!(
            expand_pattern(r"role/(?P<name>[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)").unwrap(),
            vec!["role/{name}"]
        );
        assert_eq!(
            expand_pattern(r"(?:oidc|jwt)/(?P<a>\w+)/x\.y").unwrap(),
            vec!["jwt/{a}/x.y", "oidc/{a}/x.y"]
        );
        assert!(expand_pattern(r"keys/\w+").is_err());
        assert!(expand_pattern(r"keys/(").is_err());
    }

    #[test]
    fn documents_operations_parameters_and_typed_body_fields() {
        let router = Router::new(vec![
            spec(
                r"role/(?P<name>\w+)",
                vec![Operation::Read, Operation::Update, Operation::Delete],
                vec![
                    Field::new("name", FieldType::LowerCaseString, "Role name."),
                    Field::new("ttl", FieldType::DurationSecond, "Token TTL."),
                    Field::new("policies", FieldType::CommaStringSlice, "Policies."),
                    Field::new("flag", FieldType::Bool, "A flag."),
                ],
            ),
            spec("role/?", vec![Operation::List], vec![]),
        ]);
        let mut doc = Document::new("/v1");
        doc.add_router("auth/my-path/", &router);
        let doc = doc.into_json();
        assert_eq!(doc["openapi"], OPENAPI_VERSION);
        let item = &doc["paths"]["/auth/my-path/role/{name}"];
        assert_eq!(item["parameters"][0]["name"], "name");
        assert_eq!(item["parameters"][0]["required"], true);
        assert_eq!(item["parameters"][0]["schema"]["format"], "lowercase");
        for method in ["get", "post", "delete"] {
            assert!(item[method]["operationId"].is_string(), "{method}: {item}");
        }
        let schema_ref = item["post"]["requestBody"]["content"]["application/json"]["schema"]
            ["$ref"]
            .as_str()
            .unwrap();
        let name = schema_ref.rsplit('/').next().unwrap();
        let props = &doc["components"]["schemas"][name]["properties"];
        assert!(props.get("name").is_none(), "captures are not body fields");
        assert_eq!(props["ttl"]["type"], "string");
        assert_eq!(props["ttl"]["format"], "duration");
        assert_eq!(props["ttl"]["description"], "Token TTL.");
        assert_eq!(props["policies"]["items"]["type"], "string");
        assert_eq!(props["flag"]["type"], "boolean");
        let list = &doc["paths"]["/auth/my-path/role/"];
        assert_eq!(list["get"]["parameters"][0]["name"], "list");
        assert_eq!(list["get"]["parameters"][0]["required"], true);
        assert!(doc["paths"].get("/auth/my-path/role").is_none());
    }

    #[test]
    fn operation_ids_stay_unique_when_paths_camel_case_alike() {
        let router = Router::new(vec![spec("a-b", vec![Operation::Read], vec![])]);
        let other = Router::new(vec![spec("b", vec![Operation::Read], vec![])]);
        let mut doc = Document::new("/v1");
        doc.add_router("x/", &router);
        doc.add_router("x/a/", &other);
        let doc = doc.into_json();
        assert_eq!(doc["paths"]["/x/a-b"]["get"]["operationId"], "getXAB");
        assert_eq!(doc["paths"]["/x/a/b"]["get"]["operationId"], "getXAB2");
    }

    #[test]
    fn help_lists_route_and_typed_parameters() {
        let s = spec(
            "login",
            vec![Operation::Update],
            vec![
                Field::new("role", FieldType::LowerCaseString, "The role."),
                Field::new("jwt", FieldType::String, "The token."),
            ],
        );
        let help = path_help(&s, "login");
        assert!(help.starts_with("Request:        login\nMatching Route: ^login$\n"));
        let jwt = help.find("jwt (string)\n    The token.").unwrap();
        let role = help.find("role (lowercase string)\n    The role.").unwrap();
        assert!(jwt < role, "sorted by name: {help}");
        let root = backend_help("A backend.", &Router::new(vec![s]));
        assert!(root.contains("## DESCRIPTION\n\nA backend."));
        assert!(root.contains("    ^login$\n        help line"));
    }

    #[test]
    fn a_router_becomes_path_items() {
        use crate::{BackendRequest, Response, Result};
        use std::sync::Arc;

        struct Items;
        impl Items {
            async fn read(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
                Ok(Response::default())
            }
        }
        let items = Arc::new(Items);
        let router = Router::new(vec![Path::new(r"items/(?P<name>\w+)")
            .help("Manage one item.")
            .fields([
                Field::new("name", FieldType::String, "Name of the item."),
                Field::new("ttl", FieldType::DurationSecond, "How long it lives."),
            ])
            .read(&items, Items::read)
            .update(&items, Items::read)]);
        let mut doc = Document::new("/v1");
        doc.add_router("auth/things/", &router);
        let doc = doc.into_json();
        let item = &doc["paths"]["/auth/things/items/{name}"];
        assert_eq!(item["parameters"][0]["in"], "path");
        assert!(item["get"].is_object() && item["post"].is_object());
    }
}
