//! A scriptable key server (a stand-in identity provider) for the remote-key tests.
//!
//! [`KeyServer`] listens on `127.0.0.1:0` over plain HTTP or HTTPS (a server certificate for
//! `127.0.0.1` and `localhost` issued by a [`TestCa`] made in the test) and answers each
//! path from a table the test changes while it runs: status, body, extra headers, a delay,
//! and whether the body is framed by `Content-Length` or by closing the connection. Unknown
//! paths answer 404. Every request is counted per path (query string removed) as soon as
//! its head is read, before any delay.
//!
//! It speaks just enough HTTP/1.1 for a GET: one request per connection, answered with
//! `Connection: close`. It runs on its own thread and tokio runtime, so it keeps serving
//! whatever the test's runtime is doing, until the test binary exits.

use std::collections::HashMap;
use std::net::TcpListener as StdTcpListener;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// What the key server answers on one path.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body, as sent.
    pub body: Vec<u8>,
    /// Extra response headers, `Content-Type` included.
    pub headers: Vec<(String, String)>,
    /// Waited after the request is read and counted, before anything is written.
    pub delay: Duration,
    /// When true, no `Content-Length`: the body ends when the connection closes.
    pub unframed: bool,
}

impl Reply {
    /// 200 with `body` as `application/json`.
    pub fn json(body: &Value) -> Reply {
        Reply::new(
            200,
            "application/json",
            serde_json::to_vec(body).expect("serialise JSON"),
        )
    }

    /// `status` with `body` of `content_type`.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            body: body.into(),
            headers: vec![("Content-Type".into(), content_type.into())],
            delay: Duration::ZERO,
            unframed: false,
        }
    }
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Reply>,
    hits: HashMap<String, usize>,
}

/// A key server on `127.0.0.1:<ephemeral port>`.
pub struct KeyServer {
    /// `http://127.0.0.1:<port>` or `https://127.0.0.1:<port>`, without a trailing slash.
    pub base: String,
    /// Its port.
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl KeyServer {
    /// A plain HTTP key server.
    pub fn http() -> KeyServer {
        KeyServer::start(None)
    }

    /// An HTTPS key server whose certificate (for `127.0.0.1` and `localhost`) `ca` issued.
    pub fn https(ca: &TestCa) -> KeyServer {
        KeyServer::start(Some(TlsAcceptor::from(Arc::new(ca.server_config()))))
    }

    fn start(tls: Option<TlsAcceptor>) -> KeyServer {
        let listener = StdTcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("local address").port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("key server runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let state = shared.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        match tls {
                            // A failed handshake (say, the client does not trust the CA)
                            // never reaches the HTTP layer, so it is not counted.
                            Some(acceptor) => {
                                if let Ok(stream) = acceptor.accept(tcp).await {
                                    serve(stream, &state).await;
                                }
                            }
                            None => serve(tcp, &state).await,
                        }
                    });
                }
            })
        });
        KeyServer {
            base: format!("{scheme}://127.0.0.1:{port}"),
            port,
            state,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `<base><path>`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Answers `path` with `reply` from now on.
    pub fn set(&self, path: &str, reply: Reply) {
        self.state().routes.insert(path.to_string(), reply);
    }

    /// Answers `path` with 200 and `body` as JSON.
    pub fn set_json(&self, path: &str, body: &Value) {
        self.set(path, Reply::json(body));
    }

    /// Changes the reply on `path` (which must have one).
    pub fn update(&self, path: &str, change: impl FnOnce(&mut Reply)) {
        let mut state = self.state();
        let reply = state
            .routes
            .get_mut(path)
            .unwrap_or_else(|| panic!("no reply set for {path}"));
        change(reply);
    }

    /// Keeps the body and headers of `path`, answering with `status`.
    pub fn set_status(&self, path: &str, status: u16) {
        self.update(path, |r| r.status = status);
    }

    /// Delays the answers on `path` by `delay`.
    pub fn set_delay(&self, path: &str, delay: Duration) {
        self.update(path, |r| r.delay = delay);
    }

    /// Adds a response header on `path`.
    pub fn add_header(&self, path: &str, name: &str, value: &str) {
        self.update(path, |r| r.headers.push((name.into(), value.into())));
    }

    /// Serves `{"keys": keys}` on `path`.
    pub fn serve_jwks(&self, path: &str, keys: &[Value]) {
        self.set_json(path, &json!({ "keys": keys }));
    }

    /// Serves a discovery document at `<prefix>/.well-known/openid-configuration` with this
    /// `issuer` and `jwks_uri`.
    pub fn serve_discovery(&self, prefix: &str, issuer: &str, jwks_uri: &str) {
        self.set_json(
            &format!("{prefix}/.well-known/openid-configuration"),
            &discovery_document(issuer, jwks_uri),
        );
    }

    /// Requests received on `path` since the start or the last [`KeyServer::reset_hits`].
    pub fn hits(&self, path: &str) -> usize {
        self.state().hits.get(path).copied().unwrap_or(0)
    }

    /// Requests received on any path.
    pub fn total_hits(&self) -> usize {
        self.state().hits.values().sum()
    }

    /// Sets every request counter to zero.
    pub fn reset_hits(&self) {
        self.state().hits.clear();
    }
}

/// The provider metadata (OpenID Connect Discovery 1.0 §3) with the members the
/// `openidconnect` crate requires.
pub fn discovery_document(issuer: &str, jwks_uri: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{}/authorize", issuer.trim_end_matches('/')),
        "jwks_uri": jwks_uri,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
    })
}

/// Reads one request head, counts it, waits the path's delay and writes its reply.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, state: &Mutex<State>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .unwrap_or("/");
    let path = target.split('?').next().unwrap_or(target).to_string();
    let reply = {
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        *state.hits.entry(path.clone()).or_insert(0) += 1;
        state
            .routes
            .get(&path)
            .cloned()
            .unwrap_or_else(|| Reply::new(404, "text/plain", "404 page not found\n"))
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut out = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (name, value) in &reply.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !reply.unframed {
        out.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&reply.body);
    // The client may hang up early (e.g. on a body over its size cap): ignore write errors.
    let _ = stream.write_all(&bytes).await;
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// A certificate authority made for one test (rcgen), issuing server certificates.
pub struct TestCa {
    /// The CA certificate as PEM: what a config's `*_ca_pem` field takes.
    pub cert_pem: String,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    /// A fresh self-signed CA with common name `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().expect("CA key");
        let issuer = rcgen::CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        TestCa {
            cert_pem: issuer.pem(),
            issuer,
        }
    }

    /// A rustls server config with a fresh certificate for `127.0.0.1` and `localhost`.
    fn server_config(&self) -> rustls::ServerConfig {
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("server certificate params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("server certificate");
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .expect("server TLS config")
    }
}
