//! One Vault HTTP request from a test: the shared client code of [`TestServer`] and
//! [`Node`](crate::node::Node), and free ports.
//!
//! [`TestServer`]: crate::TestServer

use std::net::TcpListener;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

/// How long one request may take before the test fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Sends `method <base>/v1/<path>` with an optional `X-Vault-Token`, extra headers and a raw
/// body (sent as `application/json`). Returns the status and the body as JSON: `Null` when
/// empty, a JSON string holding the raw text when it is not JSON (so assertions show it).
/// Panics when the server does not answer within 20 s.
pub(crate) async fn send(
    client: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> (u16, Value) {
    let mut req = client
        .request(method, format!("{base}/v1/{path}"))
        .timeout(REQUEST_TIMEOUT);
    if let Some(token) = token {
        req = req.header("X-Vault-Token", token);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(body) = body {
        req = req.header("Content-Type", "application/json").body(body);
    }
    let resp = req.send().await.expect("request sent and answered");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("response body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// One request to the server at `base` (`http://127.0.0.1:<port>`) through `client`, for
/// tasks that do not borrow a server handle: `method` by name (`"LIST"` too), a JSON body.
/// Answers as [`TestServer::send`](crate::TestServer::send).
pub async fn call_at(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let body = body.map(|b| serde_json::to_vec(&b).expect("serialise body"));
    send(client, base, method, path, token, &[], body).await
}
