//! Request data as Vault reads it: the JSON or form-encoded body of a `POST`/`PUT`, and the
//! query string of a `GET`, `DELETE` or `LIST`.
//!
//! * A body is form-encoded when its `Content-Type` is `application/x-www-form-urlencoded`
//!   (any parameters, any case) and it does not start, after whitespace, with `{` or `[`
//!   (so `curl --data '{"type":"jwt"}'`, which sends that content type, is still JSON).
//!   A key given more than once has its values joined with `,` (`a=1&a=2` is `"1,2"`), which
//!   every comma-separated list field accepts. A malformed form (a bad `%` escape, a `;`) is a
//!   400 `error parsing form data`.
//! * Anything else is JSON: empty or `null` is no data, an object is the data, anything else
//!   is a 400 `failed to parse JSON input: ...`.
//! * Query parameters are strings, or lists of strings when repeated; `help` is never data.
//!
//! Source: Vault `http/handler.go` (`isForm`, `parseFormRequest`, `parseQuery`) and
//! `http/logical.go`.

use actix_web::web;
use authmount_framework::{Error, Reply};
use futures_util::StreamExt;
use serde_json::{Map, Value};

/// The largest request body accepted, in bytes (larger bodies get 413).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How long a client may take to send its whole body (Vault's listener default is 30 s).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The largest file body accepted (a snapshot to restore), in bytes (413 beyond).
pub const MAX_FILE_BYTES: usize = 512 * 1024 * 1024;

/// How long a client may take to send a file body.
pub const FILE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// The endpoints whose `POST`/`PUT` body is a file handed to the core as it came
/// ([`authmount_framework::Request::body`]) rather than JSON data: the snapshot restores.
const FILE_ENDPOINTS: [&str; 2] = [
    "sys/storage/raft/snapshot",
    "sys/storage/raft/snapshot-force",
];

/// Whether a request with this (clean) path and verb carries a file body.
pub(super) fn takes_a_file(path: &str, method: &str) -> bool {
    matches!(method, "POST" | "PUT") && FILE_ENDPOINTS.contains(&path)
}

/// The whole body, at most [`MAX_BODY_BYTES`] (413 beyond) within [`BODY_TIMEOUT`] (408).
pub(super) async fn read(payload: web::Payload) -> Result<Vec<u8>, Reply> {
    read_within(payload, MAX_BODY_BYTES, BODY_TIMEOUT).await
}

/// A file body, at most [`MAX_FILE_BYTES`] (413 beyond) within [`FILE_TIMEOUT`] (408).
pub(super) async fn read_file(payload: web::Payload) -> Result<Vec<u8>, Reply> {
    read_within(payload, MAX_FILE_BYTES, FILE_TIMEOUT).await
}

async fn read_within(
    payload: web::Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Vec<u8>, Reply> {
    match actix_web::rt::time::timeout(timeout, read_capped(payload, limit)).await {
        Ok(result) => result,
        Err(_) => Err(Reply {
            status: 408,
            body: Some(serde_json::json!({
                "errors": [format!("request body not received within {}s", timeout.as_secs())]
            })),
        }),
    }
}

async fn read_capped(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, Reply> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            Reply::error(&Error::invalid(format!("failed to read request body: {e}")))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(Reply {
                status: 413,
                body: Some(serde_json::json!({
                    "errors": [format!("request body too large: the limit is {limit} bytes")]
                })),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The data of a `POST`/`PUT` body sent with this `Content-Type` header (and this raw query
/// string, which a form request must also have well-formed, as Go's `ParseForm` checks).
pub(super) fn parse(
    body: &[u8],
    content_type: Option<&[u8]>,
    query: &str,
) -> Result<Map<String, Value>, Reply> {
    if is_form(body, content_type) {
        return parse_form(body, query);
    }
    parse_json(body)
}

/// The data of a JSON body (non-logical endpoints such as `sys/init` take JSON only).
pub(super) fn parse_json(body: &[u8]) -> Result<Map<String, Value>, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    // serde_json's nesting limit of 128 refuses deep nesting without overflowing the stack.
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err(Reply::error(&Error::invalid(
            "failed to parse JSON input: the body must be a JSON object",
        ))),
        Err(e) => Err(Reply::error(&Error::invalid(format!(
            "failed to parse JSON input: {e}"
        )))),
    }
}

/// The query string as data: one value is a string, a repeated key a list of strings, `help`
/// is left out, and pairs Go cannot decode are skipped (as Go's `URL.Query` skips them).
pub(super) fn query_data(query: &str) -> Map<String, Value> {
    let mut data = Map::new();
    for (key, values) in url_values(query).pairs {
        if key == "help" {
            continue;
        }
        let value = match values.len() {
            1 => Value::String(values.into_iter().next().unwrap_or_default()),
            _ => Value::Array(values.into_iter().map(Value::String).collect()),
        };
        data.insert(key, value);
    }
    data
}

/// The first value of a query parameter, as Go's `URL.Query().Get` gives it (`""` when
/// absent).
pub(super) fn query_first(query: &str, name: &str) -> String {
    url_values(query)
        .pairs
        .into_iter()
        .find(|(key, _)| key == name)
        .and_then(|(_, values)| values.into_iter().next())
        .unwrap_or_default()
}

/// Whether a body is a form: the media type is `application/x-www-form-urlencoded` (a
/// malformed `Content-Type` is not) and the body does not look like JSON.
fn is_form(body: &[u8], content_type: Option<&[u8]>) -> bool {
    let media_type = content_type
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| media_type(v).ok());
    if media_type.as_deref() != Some("application/x-www-form-urlencoded") {
        return false;
    }
    let first = body
        .iter()
        .find(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'));
    !matches!(first, Some(b'{' | b'['))
}

fn parse_form(body: &[u8], query: &str) -> Result<Map<String, Value>, Reply> {
    let refused = || Reply::error(&Error::invalid("error parsing form data"));
    let form = url_values(&String::from_utf8_lossy(body));
    if form.malformed || url_values(query).malformed {
        return Err(refused());
    }
    Ok(form
        .pairs
        .into_iter()
        .map(|(key, values)| (key, Value::String(values.join(","))))
        .collect())
}

/// `key=value` pairs in order of first appearance, each key with all its values.
struct UrlValues {
    pairs: Vec<(String, Vec<String>)>,
    /// Some pair had a `;` or a bad `%` escape (Go's `url.ParseQuery` error).
    malformed: bool,
}

/// Go's `url.ParseQuery`: pairs split on `&`, empty ones skipped, a pair with `;` refused,
/// `+` is a space, `%XX` an escaped byte (invalid UTF-8 becomes U+FFFD); the key is what
/// comes before the first `=`, the value what follows it (`""` without one).
fn url_values(s: &str) -> UrlValues {
    let mut out = UrlValues {
        pairs: Vec::new(),
        malformed: false,
    };
    for pair in s.split('&') {
        if pair.is_empty() {
            continue;
        }
        if pair.contains(';') {
            out.malformed = true;
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(key), Some(value)) = (unescape(key), unescape(value)) else {
            out.malformed = true;
            continue;
        };
        match out.pairs.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(value),
            None => out.pairs.push((key, vec![value])),
        }
    }
    out
}

/// Go's `url.QueryUnescape`; `None` for a `%` not followed by two hex digits.
fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(
                    u8::from_str_radix(hex, 16)
                        .ok()
                        .filter(|_| hex.bytes().all(|c| c.is_ascii_hexdigit()))?,
                );
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `mime.ParseMediaType`, for the media type only: `type/subtype` (lower-cased) followed
/// by well-formed `; name=value` parameters (a trailing `;` is allowed). The error texts are
/// Go's, which Vault shows for a bad `PATCH` content type.
pub(super) fn media_type(v: &str) -> Result<String, &'static str> {
    let (base, mut rest) = v.find(';').map_or((v, ""), |i| v.split_at(i));
    let base = base.trim().to_ascii_lowercase();
    let (kind, after) = take_token(&base);
    if kind.is_empty() {
        return Err("mime: no media type");
    }
    if !after.is_empty() {
        let Some(sub) = after.strip_prefix('/') else {
            return Err("mime: expected slash after first token");
        };
        let (subtype, after) = take_token(sub);
        if subtype.is_empty() {
            return Err("mime: expected token after slash");
        }
        if !after.is_empty() {
            return Err("mime: unexpected content after media subtype");
        }
    }
    let mut names: Vec<String> = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        match media_param(rest) {
            Some((name, after)) => {
                if names.contains(&name) {
                    return Err("mime: duplicate parameter name");
                }
                names.push(name);
                rest = after;
            }
            None if rest.trim() == ";" => break, // a trailing semicolon
            None => return Err("mime: invalid media parameter"),
        }
    }
    Ok(base)
}

/// One `; name=value` parameter (value a token or a quoted string): its lower-cased name and
/// what follows it.
fn media_param(v: &str) -> Option<(String, &str)> {
    let v = v.trim_start().strip_prefix(';')?.trim_start();
    let (name, v) = take_token(v);
    if name.is_empty() {
        return None;
    }
    let v = v.trim_start().strip_prefix('=')?.trim_start();
    let rest = match v.strip_prefix('"') {
        Some(quoted) => &quoted[quoted_end(quoted)?..],
        None => {
            let (value, rest) = take_token(v);
            if value.is_empty() {
                return None;
            }
            rest
        }
    };
    Some((name.to_ascii_lowercase(), rest))
}

/// The leading RFC 2045 token of `s` and the rest.
fn take_token(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !c.is_ascii_graphic() || "()<>@,;:\\\"/[]?=".contains(c))
        .unwrap_or(s.len());
    s.split_at(end)
}

/// The index just past the closing quote of a quoted string whose opening quote is gone.
fn quoted_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FORM: Option<&[u8]> = Some(b"application/x-www-form-urlencoded");

    fn data(body: &str, content_type: Option<&[u8]>) -> Value {
        match parse(body.as_bytes(), content_type, "") {
            Ok(map) => Value::Object(map),
            Err(reply) => reply.body.unwrap_or(Value::Null),
        }
    }

    #[test]
    fn form_bodies_as_vault_reads_them() {
        assert_eq!(
            data("role=demo&jwt=a.b.c", FORM),
            json!({"role": "demo", "jwt": "a.b.c"})
        );
        assert_eq!(
            data("description=hello+world%21&x=%C3%A9", FORM),
            json!({"description": "hello world!", "x": "é"})
        );
        assert_eq!(data("p=a&p=b&p=c", FORM), json!({"p": "a,b,c"}));
        assert_eq!(
            data("flag&=x&&a=", FORM),
            json!({"flag": "", "": "x", "a": ""})
        );
        assert_eq!(data("", FORM), json!({}));
        assert_eq!(data("x=%FF", FORM), json!({"x": "\u{fffd}"}));
        for content_type in [
            &b"application/x-www-form-urlencoded; charset=utf-8"[..],
            b"APPLICATION/X-WWW-FORM-URLENCODED",
            b"application/x-www-form-urlencoded;",
        ] {
            assert_eq!(data("a=1", Some(content_type)), json!({"a": "1"}));
        }
    }

    #[test]
    fn a_body_that_looks_like_json_is_json_whatever_its_type() {
        assert_eq!(data("  {\"a\": 1}", FORM), json!({"a": 1}));
        for content_type in [
            None,
            Some(&b"application/json"[..]),
            Some(b"text/plain"),
            Some(b"application/x-www-form-urlencoded; charset"),
        ] {
            assert_eq!(data("{\"a\": [1]}", content_type), json!({"a": [1]}));
            let refused = data("a=1", content_type);
            assert!(
                refused["errors"][0]
                    .as_str()
                    .unwrap()
                    .starts_with("failed to parse JSON input: "),
                "{refused}"
            );
        }
    }

    #[test]
    fn a_malformed_form_is_refused() {
        for body in ["a=%zz", "a=%4", "a=1;b=2", "ok=1&bad=%"] {
            assert_eq!(
                data(body, FORM),
                json!({"errors": ["error parsing form data"]}),
                "{body}"
            );
        }
        let refused = parse(b"a=1", FORM, "x=1;y=2").unwrap_err();
        assert_eq!(refused.status, 400);
    }

    #[test]
    fn query_strings_become_data() {
        assert_eq!(
            Value::Object(query_data("token=abc&help=1&a=1&a=2&bad=%zz&s=x;y&sp=a+b")),
            json!({"token": "abc", "a": ["1", "2"], "sp": "a b"})
        );
        assert!(query_data("").is_empty());
    }

    #[test]
    fn media_types_as_go_parses_them() {
        assert_eq!(
            media_type("Application/JSON").as_deref(),
            Ok("application/json")
        );
        assert_eq!(
            media_type("text/plain; charset=\"utf-8\"; a=b;").as_deref(),
            Ok("text/plain")
        );
        assert_eq!(media_type(""), Err("mime: no media type"));
        assert_eq!(
            media_type("a b"),
            Err("mime: expected slash after first token")
        );
        assert_eq!(media_type("a/"), Err("mime: expected token after slash"));
        assert_eq!(
            media_type("a/b c"),
            Err("mime: unexpected content after media subtype")
        );
        assert_eq!(media_type("a/b; c"), Err("mime: invalid media parameter"));
        assert_eq!(
            media_type("a/b; c=1; C=2"),
            Err("mime: duplicate parameter name")
        );
        assert_eq!(media_type("a/b;;"), Err("mime: invalid media parameter"));
        assert_eq!(
            media_type("a/b; c=1 d"),
            Err("mime: invalid media parameter")
        );
    }
}
