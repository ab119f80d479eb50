//! The request target, checked in the order Vault's HTTP server checks it, before any
//! handler or token check:
//!
//! 1. a `%` not followed by two hex digits in the path: 400 `400 Bad Request` (plain text);
//! 2. a character that is not printable in the decoded path (a control or format character,
//!    a space other than U+0020, an unassigned code point): 400 with an empty body;
//! 3. a path outside `/v1/`: 404 `{"errors":[]}`;
//! 4. a path that is not clean (`//`, `.` or `..` segments), unless it is a help request:
//!    307 to the clean path, query kept, e.g. `/v1/sys//auth?x=1` → `Location: /v1/sys/auth?x=1`;
//! 5. the path after `/v1/` is then percent-decoded; a `.` or `..` segment left after that
//!    (`/v1/sys/%2E%2E/x`) is refused later with 400 `relative paths not supported`.
//!
//! Source: Go's `net/http` (request parsing, `ServeMux` path cleaning), hashicorp `cleanhttp`
//! `PrintablePathCheckHandler`, Vault `http/handler.go` and `sdk/logical/path.go`
//! `IsRelativePath`.

use std::sync::LazyLock;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use regex::Regex;

/// Characters Go's `unicode.IsPrint` refuses: categories C (control, format, unassigned,
/// private use, surrogate) and Z (separators), except the ASCII space.
static NOT_PRINTABLE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[\p{C}\p{Z}&&[^ ]]").expect("a valid constant pattern"));

/// Checks the raw (still percent-encoded) path and query of a request. Returns the decoded
/// path after `/v1/`, or the answer that ends the request here.
pub(super) fn check(
    raw_path: &str,
    raw_query: &str,
    help: bool,
    method: &str,
) -> Result<String, Box<HttpResponse>> {
    if !escapes_are_valid(raw_path) {
        return Err(Box::new(
            HttpResponse::BadRequest()
                .content_type("text/plain; charset=utf-8")
                .force_close()
                .body("400 Bad Request"),
        ));
    }
    let decoded = percent_encoding::percent_decode_str(raw_path).collect::<Vec<u8>>();
    if NOT_PRINTABLE.is_match(&String::from_utf8_lossy(&decoded)) {
        return Err(Box::new(
            HttpResponse::BadRequest()
                .insert_header(("Cache-Control", "no-store"))
                .finish(),
        ));
    }
    let Some(rest) = decoded.strip_prefix(b"/v1/") else {
        return Err(Box::new(empty_not_found()));
    };
    if !help {
        let clean = clean_path(raw_path);
        if clean != raw_path {
            return Err(Box::new(redirect(&clean, raw_query, method)));
        }
    }
    if !raw_path.starts_with("/v1/") {
        return Err(Box::new(empty_not_found())); // `/v1%2F...`: decodes under /v1/ but no route takes it
    }
    String::from_utf8(rest.to_vec()).map_err(|_| {
        Box::new(super::to_response(authmount_framework::Reply::error(
            &authmount_framework::Error::invalid("the request path is not valid UTF-8"),
        )))
    })
}

/// Whether a decoded path has a `.` or `..` segment (Vault refuses such paths with 400
/// `relative paths not supported`; `//` is not a segment and passes).
pub(super) fn is_relative(path: &str) -> bool {
    path.split('/')
        .any(|segment| segment == "." || segment == "..")
}

fn escapes_are_valid(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    })
}

fn empty_not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .insert_header(("Cache-Control", "no-store"))
        .content_type("application/json")
        .body(r#"{"errors":[]}"#)
}

/// Go's `ServeMux` clean path: `path.Clean` (no empty, `.` or `..` segments; `..` at the root
/// stays at the root) keeping a trailing `/`.
fn clean_path(p: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in p.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut clean = format!("/{}", segments.join("/"));
    if p.ends_with('/') && clean != "/" {
        clean.push('/');
    }
    clean
}

/// Go's `http.Redirect` with 307: `Location` (bytes a URL may not carry are percent-encoded),
/// and for `GET`/`HEAD` a small HTML body linking to it.
fn redirect(path: &str, query: &str, method: &str) -> HttpResponse {
    let mut location = String::with_capacity(path.len() + query.len() + 1);
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b) {
            location.push(char::from(b));
        } else {
            location.push_str(&format!("%{b:02X}"));
        }
    }
    if !query.is_empty() {
        location.push('?');
        location.push_str(query);
    }
    let mut response = HttpResponse::build(StatusCode::TEMPORARY_REDIRECT);
    response
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Location", location.as_str()));
    if matches!(method, "GET" | "HEAD") {
        let href = location
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&#34;")
            .replace('\'', "&#39;");
        return response
            .content_type("text/html; charset=utf-8")
            .body(format!("<a href=\"{href}\">Temporary Redirect</a>.\n\n"));
    }
    response.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_paths_as_go_does() {
        for (raw, clean) in [
            ("/v1/sys/auth", "/v1/sys/auth"),
            ("/v1//sys/auth", "/v1/sys/auth"),
            ("/v1/sys//auth", "/v1/sys/auth"),
            ("/v1/sys/./auth", "/v1/sys/auth"),
            ("/v1/sys/x/../auth", "/v1/sys/auth"),
            ("/v1/sys/auth/", "/v1/sys/auth/"),
            ("/v1/sys/auth//", "/v1/sys/auth/"),
            ("/v1/sys/auth/.", "/v1/sys/auth"),
            ("/v1/a/../../x", "/x"),
            ("/v1/..", "/"),
            ("/v1/sys/%2E/auth", "/v1/sys/%2E/auth"),
        ] {
            assert_eq!(clean_path(raw), clean, "{raw}");
        }
    }

    #[test]
    fn finds_relative_segments() {
        assert!(is_relative("sys/./auth"));
        assert!(is_relative("sys/x/.."));
        assert!(is_relative(".."));
        assert!(!is_relative("sys//auth"));
        assert!(!is_relative("sys/a.b/..c"));
    }

    #[test]
    fn printable_is_gos_printable() {
        for ok in ["sys/a b", "sys/é", "sys/\u{fffd}", "sys/日本"] {
            assert!(!NOT_PRINTABLE.is_match(ok), "{ok:?}");
        }
        for bad in [
            "a\u{1}b",
            "a\u{7f}",
            "a\u{a0}b",
            "a\u{200b}b",
            "a\tb",
            "a\u{e000}",
        ] {
            assert!(NOT_PRINTABLE.is_match(bad), "{bad:?}");
        }
    }

    #[test]
    fn validates_escapes() {
        assert!(escapes_are_valid("/v1/a%2Fb%c3%A9"));
        assert!(!escapes_are_valid("/v1/a%zz"));
        assert!(!escapes_are_valid("/v1/a%4"));
        assert!(!escapes_are_valid("/v1/a%"));
    }
}
