//! Vault's HTTP API on actix-web: `/v1/<path>` with `X-Vault-Token` (or
//! `Authorization: Bearer`), verbs mapped to operations (`LIST` and `GET ?list=true` are
//! list), `?help=1` on any path a help request, JSON bodies capped in size, the query string
//! of a `GET`, `DELETE` or `LIST` as data, answers as `application/json` (except raw replies,
//! [`Reply::raw`], such as the OIDC method's pages for a browser).
//!
//! Source: Vault API conventions (reference §1.1).

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::{Method, StatusCode};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use authmount_framework::{Core, Error, Operation, Reply, Request};
use futures_util::StreamExt;
use serde_json::{Map, Value};

/// The largest request body accepted, in bytes (larger bodies get 413).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Builds the actix-web server for `core` on an already bound listener. Run it with
/// `.await` inside an actix or tokio runtime.
pub fn server(core: Arc<Core>, listener: TcpListener) -> std::io::Result<actix_web::dev::Server> {
    serve(core, listener, None)
}

/// [`server`] over TLS (rustls) with a PEM certificate chain and private key.
///
/// Errors: unreadable or invalid PEM files.
pub fn server_tls(
    core: Arc<Core>,
    listener: TcpListener,
    cert_file: &Path,
    key_file: &Path,
) -> std::io::Result<actix_web::dev::Server> {
    let bad = |what: &str, e: &dyn std::fmt::Display| std::io::Error::other(format!("{what}: {e}"));
    let certs: Vec<_> = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert_file).map_err(|e| bad("cannot open tls_cert_file", &e))?,
    ))
    .collect::<Result<_, _>>()
    .map_err(|e| bad("invalid tls_cert_file", &e))?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key_file).map_err(|e| bad("cannot open tls_key_file", &e))?,
    ))
    .map_err(|e| bad("invalid tls_key_file", &e))?
    .ok_or_else(|| bad("invalid tls_key_file", &"no private key found"))?;
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad("TLS setup", &e))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| bad("TLS certificate and key", &e))?;
    serve(core, listener, Some(tls))
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
    let started = Instant::now();
    let reply = match to_request(&http, payload).await {
        Ok(req) => core.handle(req).await,
        Err(reply) => reply,
    };
    // Paths and statuses only: never a header, a body, a token or a JWT.
    tracing::debug!(
        target: "authmount::http",
        method = %http.method(),
        path = %http.path(),
        status = reply.status,
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    to_response(reply)
}

async fn to_request(http: &HttpRequest, payload: web::Payload) -> Result<Request, Reply> {
    let raw_path = http
        .path()
        .strip_prefix("/v1/")
        .ok_or_else(|| Reply::error(&Error::unsupported_path(http.path())))?;
    let path = percent_encoding::percent_decode_str(raw_path)
        .decode_utf8()
        .map_err(|_| Reply::error(&Error::invalid("the request path is not valid UTF-8")))?
        .into_owned();
    let query = web::Query::<Map<String, Value>>::from_query(http.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let query_str = |name: &str| query.get(name).and_then(Value::as_str).unwrap_or("");
    let list_query = matches!(query_str("list"), "true" | "1");
    // Vault answers help for any non-empty `help`, whatever the verb.
    let help = !query_str("help").is_empty() || http.method().as_str() == "HELP";
    let operation = match *http.method() {
        Method::GET if list_query => Operation::List,
        Method::GET | Method::HEAD => Operation::Read,
        Method::POST | Method::PUT => Operation::Update,
        Method::DELETE => Operation::Delete,
        ref m if m.as_str() == "LIST" => Operation::List,
        _ if help => Operation::Read, // e.g. Vault's `HELP` verb
        _ => return Err(Reply::error(&Error::UnsupportedOperation)),
    };
    let body = read_body(payload).await?;
    let mut data = parse_body(&body)?;
    if operation != Operation::Update {
        // Vault reads the query string of a GET, DELETE or LIST as the request's data
        // (`parseQuery`: one value a string, a repeated key a list, `help` and `list` left out),
        // e.g. the `state` and `code` of the OIDC provider's redirect to `oidc/callback`.
        for (key, value) in query_data(http.query_string()) {
            data.entry(key).or_insert(value);
        }
    }
    let mut req = Request::new(operation, path);
    req.data = data;
    req.client_token = client_token(http);
    req.remote_addr = http.peer_addr().map(|a| a.ip());
    req.help = help;
    Ok(req)
}

/// The query string as data (see [`to_request`]); pairs that do not decode are skipped.
fn query_data(query: &str) -> Map<String, Value> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let mut data = Map::new();
    for (key, value) in pairs {
        if key == "help" || key == "list" {
            continue;
        }
        match data.get_mut(&key) {
            None => {
                data.insert(key, Value::String(value));
            }
            Some(Value::Array(items)) => items.push(Value::String(value)),
            Some(first) => *first = Value::Array(vec![first.take(), Value::String(value)]),
        }
    }
    data
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

/// How long a client may take to send its whole body (Vault's listener default is 30 s).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

async fn read_body(payload: web::Payload) -> Result<Vec<u8>, Reply> {
    match actix_web::rt::time::timeout(BODY_TIMEOUT, read_body_capped(payload)).await {
        Ok(result) => result,
        Err(_) => Err(Reply {
            status: 408,
            body: Some(serde_json::json!({
                "errors": [format!("request body not received within {}s", BODY_TIMEOUT.as_secs())]
            })),
        }),
    }
}

async fn read_body_capped(mut payload: web::Payload) -> Result<Vec<u8>, Reply> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            Reply::error(&Error::invalid(format!("failed to read request body: {e}")))
        })?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Reply {
                status: 413,
                body: Some(serde_json::json!({
                    "errors": [format!("request body too large: the limit is {MAX_BODY_BYTES} bytes")]
                })),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An empty body (or JSON `null`) is an empty object; anything else must be a JSON object
/// (serde_json's nesting limit of 128 refuses deep nesting without overflowing the stack).
fn parse_body(body: &[u8]) -> Result<Map<String, Value>, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
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

fn to_response(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    builder.insert_header(("Cache-Control", "no-store"));
    if let Some((content_type, body)) = reply.raw() {
        return builder
            .content_type(content_type)
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .body(body.to_string());
    }
    match reply.body {
        Some(body) => builder
            .content_type("application/json")
            .body(body.to_string()),
        None => builder.finish(),
    }
}
