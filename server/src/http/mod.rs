//! Vault's HTTP API on actix-web: `/v1/<path>` with `X-Vault-Token` (or
//! `Authorization: Bearer`), verbs mapped to operations (`LIST` and `GET ?list=true` are
//! list), `?help=1` (or the `HELP` verb) on any path a help request, JSON or form-encoded
//! bodies capped in size, `X-Vault-Wrap-TTL` carried to the core, answers as
//! `application/json`.
//!
//! What Vault's own HTTP layer decides is decided here, in Vault's order and with its
//! statuses and texts: the request target (`target.rs`: escapes, printable paths, `/v1/`,
//! the 307 to a clean path), the verb (`HEAD` 405 except on `sys/health`, `OPTIONS` 400,
//! `PATCH` only as `application/merge-patch+json`, unknown verbs 405), the data (`body.rs`:
//! JSON, forms, query strings), `X-Vault-Wrap-TTL` (`wrap_ttl.rs`), relative paths, and the
//! legacy top-level copies of `data` on some `sys/` answers (`legacy.rs`). The endpoints
//! Vault serves outside its logical router (`sys/health`, `sys/init`, `sys/seal-status`,
//! `sys/seal`, `sys/unseal`, `sys/step-down`, `sys/leader`) take only their own verbs
//! (others: 405 `{"errors":[]}`), JSON bodies, and ignore `X-Vault-Wrap-TTL`.
//!
//! Source: Vault API conventions (reference §1.1); Vault `http/handler.go`, `http/logical.go`.

mod body;
mod legacy;
mod target;
mod wrap_ttl;

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::{Method, StatusCode};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use authmount_framework::{Core, Error, Operation, Reply, Request};
use serde_json::{Map, Value};

pub use body::{BODY_TIMEOUT, FILE_TIMEOUT, MAX_BODY_BYTES, MAX_FILE_BYTES};

/// Builds the actix-web server for `core` on an already bound listener. Run it with
/// `.await` inside an actix or tokio runtime.
pub fn server(core: Arc<Core>, listener: TcpListener) -> std::io::Result<actix_web::dev::Server> {
    serve(core, listener, None)
}

/// [`server`] over TLS (rustls) with a configuration made by [`load_tls`].
pub fn server_tls(
    core: Arc<Core>,
    listener: TcpListener,
    tls: rustls::ServerConfig,
) -> std::io::Result<actix_web::dev::Server> {
    serve(core, listener, Some(tls))
}

/// Reads a listener's PEM certificate chain and private key (Vault config: `tls_cert_file`,
/// `tls_key_file`) into a rustls configuration. The server reads them before it opens its
/// storage, so a bad file stops the start before anything is created.
///
/// Errors: a message naming the setting, the file and the problem (missing, unreadable, no
/// certificate or key in it, or a key that does not match the certificate).
pub fn load_tls(cert_file: &Path, key_file: &Path) -> std::io::Result<rustls::ServerConfig> {
    let bad = |what: &str, file: &Path, e: &dyn std::fmt::Display| {
        std::io::Error::other(format!("{what} {}: {e}", file.display()))
    };
    let open = |what: &str, file: &Path| {
        std::fs::File::open(file)
            .map(std::io::BufReader::new)
            .map_err(|e| bad(what, file, &e))
    };
    let certs: Vec<_> = rustls_pemfile::certs(&mut open("tls_cert_file", cert_file)?)
        .collect::<Result<_, _>>()
        .map_err(|e| bad("tls_cert_file", cert_file, &e))?;
    if certs.is_empty() {
        return Err(bad("tls_cert_file", cert_file, &"no PEM certificate in it"));
    }
    let key = rustls_pemfile::private_key(&mut open("tls_key_file", key_file)?)
        .map_err(|e| bad("tls_key_file", key_file, &e))?
        .ok_or_else(|| bad("tls_key_file", key_file, &"no PEM private key in it"))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| std::io::Error::other(format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            bad(
                "tls_key_file",
                key_file,
                &format!("does not fit tls_cert_file: {e}"),
            )
        })
}

fn serve(
    core: Arc<Core>,
    listener: TcpListener,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::from(core);
    let http = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(handle))
    });
    let http = match tls {
        Some(tls) => http.listen_rustls_0_23(listener, tls)?,
        None => http.listen(listener)?,
    };
    Ok(http.run())
}

async fn handle(core: web::Data<Core>, http: HttpRequest, payload: web::Payload) -> HttpResponse {
    let request_id = uuid::Uuid::new_v4().to_string();
    let span = crate::logging::request_span(&request_id, http.method().as_str(), http.path());
    tracing::Instrument::instrument(serve_one(core, http, payload, request_id), span).await
}

/// Serves one request under the id its log lines and its answer's `request_id` carry.
async fn serve_one(
    core: web::Data<Core>,
    http: HttpRequest,
    payload: web::Payload,
    request_id: String,
) -> HttpResponse {
    let started = Instant::now();
    let response = match to_request(&http, payload).await {
        Ok((mut req, legacy_copies, file)) => {
            if let Some(payload) = file {
                // A file body (up to 512 MiB) is read only for a caller who may send it.
                let token = req.client_token.as_deref();
                if let Err(e) = core.preflight_sudo(token, req.remote_addr, &req.path).await {
                    return to_response(Reply::error(&e));
                }
                match body::read_file(payload).await {
                    Ok(bytes) => req.body = Some(bytes.into()),
                    Err(reply) => return to_response(reply),
                }
            }
            req.request_id = request_id;
            let mut reply = core.handle(req).await;
            if legacy_copies && reply.status == 200 {
                if let Some(body) = reply.body.as_mut() {
                    legacy::inject(body);
                }
            }
            to_response(reply)
        }
        Err(response) => response,
    };
    // Paths and statuses only: never a header, a body, a token or a JWT.
    tracing::debug!(
        target: "authmount::http",
        method = %http.method(),
        path = %http.path(),
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

/// The endpoints Vault's HTTP layer serves itself (outside its logical router), with the
/// verbs each takes. Source: Vault `http/handler.go` and `http/sys_*.go`.
const NON_LOGICAL: [(&str, &[&str]); 7] = [
    ("sys/health", &["GET", "HEAD"]),
    ("sys/init", &["GET", "PUT", "POST"]),
    ("sys/seal-status", &["GET"]),
    ("sys/leader", &["GET"]),
    ("sys/seal", &["PUT", "POST"]),
    ("sys/step-down", &["PUT", "POST"]),
    ("sys/unseal", &["PUT", "POST"]),
];

/// The core request for an HTTP request, whether its answer gets the legacy top-level
/// copies of `data`, and, for an endpoint that takes a file, the body still unread (the
/// caller reads it once the token may send it); or the answer that ends it at the edge.
async fn to_request(
    http: &HttpRequest,
    payload: web::Payload,
) -> Result<(Request, bool, Option<web::Payload>), HttpResponse> {
    let method = http.method().as_str();
    let raw_query = http.query_string();
    // Vault answers help for any non-empty `help`, whatever the verb.
    let help = !body::query_first(raw_query, "help").is_empty() || method == "HELP";
    let path = target::check(http.path(), raw_query, help, method).map_err(|r| *r)?;

    if let Some((_, verbs)) = NON_LOGICAL
        .iter()
        .find(|(p, _)| *p == path)
        .filter(|_| !help)
    {
        if !verbs.contains(&method) {
            return Err(empty_errors(StatusCode::METHOD_NOT_ALLOWED));
        }
        let (operation, data) = match *http.method() {
            // Vault's HTTP layer reads the first value of a repeated parameter here.
            Method::GET | Method::HEAD => {
                (Operation::Read, first_values(body::query_data(raw_query)))
            }
            _ => (
                Operation::Update,
                body::parse_json(&body::read(payload).await.map_err(to_response)?)
                    .map_err(to_response)?,
            ),
        };
        return Ok((core_request(http, operation, path, data), false, None));
    }

    let mut file = None;
    let (operation, data, refusal) = if help {
        (Operation::Read, Map::new(), None)
    } else if body::takes_a_file(&path, method) {
        file = Some(payload);
        (Operation::Update, Map::new(), None)
    } else {
        logical_operation(http, raw_query, payload).await?
    };
    let wrap_ttl = match http.headers().get("x-vault-wrap-ttl") {
        Some(value) => wrap_ttl::parse(value.as_bytes())
            .map_err(|message| to_response(Reply::error(&Error::invalid(message))))?,
        None => None,
    };
    if target::is_relative(&path) {
        return Err(to_response(Reply::error(&Error::invalid(
            "relative paths not supported",
        ))));
    }
    if let Some(reply) = refusal {
        return Err(to_response(reply));
    }
    let legacy_copies = !help && legacy::applies(http.path().trim_start_matches("/v1/"));
    let mut req = core_request(http, operation, path, data);
    req.help = help;
    req.wrap_ttl = wrap_ttl;
    Ok((req, legacy_copies, file))
}

/// The operation and data of a request to Vault's logical router, by verb, and the refusal
/// due once the wrap TTL and the path have been checked: `HEAD`, `PATCH` and `SCAN` name no
/// operation a backend serves (405), `OPTIONS` none at all (400).
async fn logical_operation(
    http: &HttpRequest,
    raw_query: &str,
    payload: web::Payload,
) -> Result<(Operation, Map<String, Value>, Option<Reply>), HttpResponse> {
    let unsupported = || Some(Reply::error(&Error::UnsupportedOperation));
    let content_type = http.headers().get("content-type").map(|v| v.as_bytes());
    Ok(match http.method().as_str() {
        "GET" => {
            let list = go_bool(body::query_first(raw_query, "list"));
            let scan = go_bool(body::query_first(raw_query, "scan"));
            let (Some(list), Some(scan)) = (list, scan) else {
                return Err(empty_errors(StatusCode::BAD_REQUEST));
            };
            if list && scan {
                return Err(empty_errors(StatusCode::BAD_REQUEST));
            }
            let mut data = body::query_data(raw_query);
            if list {
                data.remove("list");
                (Operation::List, data, None)
            } else {
                (Operation::Read, data, scan.then(unsupported).flatten())
            }
        }
        "POST" | "PUT" => {
            let raw = body::read(payload).await.map_err(to_response)?;
            let data = body::parse(&raw, content_type, raw_query).map_err(to_response)?;
            (Operation::Update, data, None)
        }
        "DELETE" => (Operation::Delete, body::query_data(raw_query), None),
        "LIST" => (Operation::List, body::query_data(raw_query), None),
        "HEAD" | "SCAN" => (Operation::Read, Map::new(), unsupported()),
        "PATCH" => {
            let content_type = String::from_utf8_lossy(content_type.unwrap_or_default());
            let media_type = body::media_type(&content_type)
                .map_err(|e| to_response(Reply::error(&Error::invalid(e))))?;
            if media_type != "application/merge-patch+json" {
                return Err(to_response(Reply {
                    status: 415,
                    body: Some(serde_json::json!({"errors": [format!(
                        "PATCH requires Content-Type of application/merge-patch+json, provided {media_type}"
                    )]})),
                }));
            }
            let raw = body::read(payload).await.map_err(to_response)?;
            body::parse_json(&raw).map_err(to_response)?;
            (Operation::Update, Map::new(), unsupported())
        }
        "OPTIONS" => (
            Operation::Read,
            Map::new(),
            Some(Reply::error(&Error::invalid(
                "cannot handle internal-only request operation",
            ))),
        ),
        _ => return Err(empty_errors(StatusCode::METHOD_NOT_ALLOWED)),
    })
}

/// A status with Vault's empty error list, as its HTTP layer answers verbs and queries it
/// refuses before routing.
fn empty_errors(status: StatusCode) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("Cache-Control", "no-store"))
        .content_type("application/json")
        .body(r#"{"errors":[]}"#)
}

fn core_request(
    http: &HttpRequest,
    operation: Operation,
    path: String,
    data: Map<String, Value>,
) -> Request {
    let mut req = Request::new(operation, path);
    req.data = data;
    req.client_token = client_token(http);
    req.remote_addr = http.peer_addr().map(|a| a.ip());
    req
}

/// Each parameter with its first value only (`a=1&a=2` is `a=1`).
fn first_values(data: Map<String, Value>) -> Map<String, Value> {
    data.into_iter()
        .map(|(k, v)| match v {
            Value::Array(mut items) if !items.is_empty() => (k, items.swap_remove(0)),
            other => (k, other),
        })
        .collect()
}

/// Go's `strconv.ParseBool` where `""` is false; `None` for anything else it refuses.
fn go_bool(s: String) -> Option<bool> {
    match s.as_str() {
        "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        _ => None,
    }
}

fn client_token(http: &HttpRequest) -> Option<String> {
    let header = |name: &str| {
        http.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    header("x-vault-token")
        .or_else(|| header("authorization").and_then(|v| v.strip_prefix("Bearer ")))
        .map(|t| t.trim().to_string())
}

/// The HTTP answer for a core reply: always `Cache-Control: no-store` and
/// `Content-Type: application/json`, a 204 included (as Vault sends them).
fn to_response(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    builder.insert_header(("Cache-Control", "no-store"));
    // A raw reply (e.g. the OIDC method's pages for a browser, a snapshot file) goes out
    // as it is.
    if let Some((content_type, body)) = reply.raw_bytes() {
        return builder
            .content_type(content_type)
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .body(body);
    }
    builder.content_type("application/json");
    match reply.body {
        Some(body) => builder.body(body.to_string()),
        None => builder.finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use actix_web::FromRequest;
    use serde_json::json;

    async fn request(test: TestRequest) -> Result<(Request, bool), HttpResponse> {
        let (http, mut payload) = test.to_http_parts();
        let payload = web::Payload::from_request(&http, &mut payload)
            .await
            .expect("payload");
        to_request(&http, payload)
            .await
            .map(|(req, legacy, _)| (req, legacy))
    }

    #[actix_web::test]
    async fn carries_the_wrap_ttl_and_the_query_data() {
        let (req, legacy) = request(
            TestRequest::get()
                .uri("/v1/auth/token/lookup?token=abc&help=&a=1&a=2")
                .insert_header(("X-Vault-Token", "t"))
                .insert_header(("X-Vault-Wrap-TTL", "1h30m")),
        )
        .await
        .expect("a core request");
        assert_eq!(req.operation, Operation::Read);
        assert_eq!(req.path, "auth/token/lookup");
        assert_eq!(
            serde_json::Value::Object(req.data),
            json!({"token": "abc", "a": ["1", "2"]})
        );
        assert_eq!(req.wrap_ttl, Some(std::time::Duration::from_secs(5400)));
        assert_eq!(req.client_token.as_deref(), Some("t"));
        assert!(!legacy);

        let (req, _) = request(
            TestRequest::get()
                .uri("/v1/sys/auth?list=true")
                .insert_header(("X-Vault-Wrap-TTL", "0")),
        )
        .await
        .expect("a core request");
        assert_eq!(req.operation, Operation::List);
        assert!(req.data.is_empty() && req.wrap_ttl.is_none());
    }

    #[actix_web::test]
    async fn reads_form_bodies_and_marks_legacy_routes() {
        let (req, legacy) = request(
            TestRequest::post()
                .uri("/v1/sys/auth/x")
                .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
                .set_payload("type=jwt&description=a&description=b"),
        )
        .await
        .expect("a core request");
        assert_eq!(req.operation, Operation::Update);
        assert_eq!(
            serde_json::Value::Object(req.data),
            json!({"type": "jwt", "description": "a,b"})
        );
        assert!(legacy);
    }
}
