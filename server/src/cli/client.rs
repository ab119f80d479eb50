//! HTTP to the server: settings from flags and Vault's environment variables, one request
//! per call, and Vault's error text (`Error making API request. URL: ... Code: 400. Errors:`).
//!
//! Source: Vault `api` package (`client.go` for the environment, `response.go` for errors).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::args::CommonFlags;
use super::output::Format;
use super::token_helper::TokenHelper;
use super::Failure;

/// The server address when neither `-address` nor `VAULT_ADDR` is given. Vault's CLI
/// defaults to `https://`; authmount's dev server speaks plain HTTP on this address.
pub const DEFAULT_ADDRESS: &str = "http://127.0.0.1:8200";

/// How long one request may take, connection included (Vault's default client timeout).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything a client command needs to know before its first request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The server's base URL, without a trailing slash.
    pub address: String,
    /// The token sent as `X-Vault-Token`: `VAULT_TOKEN`, else the token helper's.
    pub token: Option<String>,
    /// True when the token came from `VAULT_TOKEN` (login warns that it wins).
    pub token_from_env: bool,
    /// A PEM bundle: the only CAs trusted for the server's certificate.
    pub ca_cert: Option<PathBuf>,
    /// Skip TLS verification (`-tls-skip-verify`, `VAULT_SKIP_VERIFY`).
    pub insecure_skip_verify: bool,
    /// Output format.
    pub format: Format,
    /// Response-wrap every answer for this many seconds (`-wrap-ttl`, `VAULT_WRAP_TTL`).
    pub wrap_ttl: Option<i64>,
}

impl Settings {
    /// Resolves the settings: a flag wins over its environment variable, which wins over
    /// the default. `env` looks a variable up (injected, so tests need no process state).
    ///
    /// Errors (local): an unknown `-format`, a `VAULT_SKIP_VERIFY` that is not a boolean,
    /// a token helper file that exists but cannot be read.
    pub fn resolve(
        flags: &CommonFlags,
        env: &dyn Fn(&str) -> Option<String>,
        helper: Option<&TokenHelper>,
    ) -> Result<Settings, Failure> {
        let non_empty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let address = flags
            .address
            .clone()
            .or_else(|| non_empty("VAULT_ADDR"))
            .unwrap_or_else(|| DEFAULT_ADDRESS.to_string())
            .trim()
            .trim_end_matches('/')
            .to_string();
        let format = match flags.format.clone().or_else(|| non_empty("VAULT_FORMAT")) {
            Some(f) => Format::parse(&f)?,
            None => Format::Table,
        };
        let insecure_skip_verify = flags.tls_skip_verify
            || match non_empty("VAULT_SKIP_VERIFY") {
                Some(v) => parse_go_bool(&v).ok_or_else(|| {
                    Failure::Local(format!("could not parse VAULT_SKIP_VERIFY {v:?}"))
                })?,
                None => false,
            };
        let ca_cert = flags
            .ca_cert
            .clone()
            .or_else(|| non_empty("VAULT_CACERT").map(PathBuf::from));
        let wrap_ttl = match (flags.wrap_ttl, non_empty("VAULT_WRAP_TTL")) {
            (Some(secs), _) => Some(secs),
            (None, Some(raw)) => Some(
                authmount_framework::duration::parse_seconds(&Value::String(raw.clone())).map_err(
                    |e| Failure::Local(format!("could not parse VAULT_WRAP_TTL {raw:?}: {e}")),
                )?,
            ),
            (None, None) => None,
        }
        .filter(|secs| *secs > 0);
        let env_token = non_empty("VAULT_TOKEN").map(|t| t.trim().to_string());
        let token_from_env = env_token.is_some();
        let token = match env_token {
            Some(t) => Some(t),
            None => match helper {
                Some(h) => h.get().map_err(|e| {
                    Failure::Local(format!(
                        "Error reading the token helper file {}: {e}",
                        h.path().display()
                    ))
                })?,
                None => None,
            },
        };
        Ok(Settings {
            address,
            token,
            token_from_env,
            ca_cert,
            insecure_skip_verify,
            format,
            wrap_ttl,
        })
    }
}

/// Go's `strconv.ParseBool`, which Vault uses for `VAULT_SKIP_VERIFY`.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A connection to the server: the base address and the token to send.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    address: String,
    token: Option<String>,
    wrap_ttl: Option<i64>,
}

impl Client {
    /// Builds the HTTP client. Errors (local): an unreadable or empty CA file, a TLS setup
    /// failure.
    pub fn new(settings: &Settings) -> Result<Client, Failure> {
        let mut builder = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
        if let Some(path) = &settings.ca_cert {
            let pem = std::fs::read(path).map_err(|e| {
                Failure::Local(format!("Error reading CA file {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Failure::Local(format!("Error parsing CA file {}: {e}", path.display()))
            })?;
            if certs.is_empty() {
                return Err(Failure::Local(format!(
                    "Error parsing CA file {}: no PEM certificate in it",
                    path.display()
                )));
            }
            // Like Vault: a CA file replaces the system roots instead of adding to them.
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if settings.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| Failure::Local(format!("Error initializing client: {}", chain(&e))))?;
        Ok(Client {
            http,
            address: settings.address.clone(),
            token: settings.token.clone(),
            wrap_ttl: settings.wrap_ttl,
        })
    }

    /// The same connection sending `token` instead (none: no `X-Vault-Token` at all).
    pub fn with_token(&self, token: Option<String>) -> Client {
        Client {
            token,
            ..self.clone()
        }
    }

    /// `GET /v1/<path>`.
    pub async fn read(&self, path: &str) -> Result<Option<Value>, ApiError> {
        self.send(Method::GET, path, &[], None).await
    }

    /// `GET /v1/<path>?<query>`: a read with data (Vault's `ReadWithData`), the values
    /// form-encoded.
    pub async fn read_with(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<Value>, ApiError> {
        self.send(Method::GET, path, query, None).await
    }

    /// `GET /v1/<path>?list=true` (Vault's `LIST`).
    pub async fn list(&self, path: &str) -> Result<Option<Value>, ApiError> {
        self.send(Method::GET, path, &[("list", "true")], None)
            .await
    }

    /// `GET /v1/<path>?help=1`: the help generated from the path's table.
    pub async fn help(&self, path: &str) -> Result<Option<Value>, ApiError> {
        self.send(Method::GET, path, &[("help", "1")], None).await
    }

    /// `PUT /v1/<path>` with a JSON body (Vault's client writes with PUT).
    pub async fn write(&self, path: &str, body: &Value) -> Result<Option<Value>, ApiError> {
        self.send(Method::PUT, path, &[], Some(body)).await
    }

    /// `POST /v1/<path>` with a JSON body (Vault's client uses POST for `sys/auth` and tuning).
    pub async fn post(&self, path: &str, body: &Value) -> Result<Option<Value>, ApiError> {
        self.send(Method::POST, path, &[], Some(body)).await
    }

    /// `DELETE /v1/<path>`.
    pub async fn delete(&self, path: &str) -> Result<Option<Value>, ApiError> {
        self.send(Method::DELETE, path, &[], None).await
    }

    /// `GET /v1/<path>` answered with a file (a snapshot): the body's bytes.
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>, ApiError> {
        self.exchange(Method::GET, path, &[], None).await
    }

    /// `POST /v1/<path>` with a file as the body (a snapshot to restore); the JSON answer,
    /// if any.
    pub async fn post_file(&self, path: &str, file: Vec<u8>) -> Result<Option<Value>, ApiError> {
        let answer = self
            .exchange(
                Method::POST,
                path,
                &[],
                Some(("application/octet-stream", file)),
            )
            .await?;
        self.json_of(Method::POST, path, answer)
    }

    /// Sends one request. Returns the JSON answer of a 2xx (`None` for an empty body, e.g.
    /// 204), or the error: a status of 400 and above, or no answer at all.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Option<Value>, ApiError> {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        let answer = self.exchange(method.clone(), path, query, body).await?;
        self.json_of(method, path, answer)
    }

    /// The JSON of a 2xx answer's body (`None` when empty).
    fn json_of(
        &self,
        method: Method,
        path: &str,
        answer: Vec<u8>,
    ) -> Result<Option<Value>, ApiError> {
        if answer.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&answer)
            .map(Some)
            .map_err(|e| ApiError::Transport {
                method: method.to_string(),
                url: format!("{}/v1/{}", self.address, path.trim_start_matches('/')),
                message: format!("the server's answer is not JSON: {e}"),
            })
    }

    /// Sends one request with an optional body (its `Content-Type` and bytes). Returns the
    /// body of a 2xx answer, or the error: a status of 400 and above, or no answer at all.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Vec<u8>, ApiError> {
        let mut url = format!("{}/v1/{}", self.address, path.trim_start_matches('/'));
        if !query.is_empty() {
            let q: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
                .collect();
            url = format!("{url}?{}", q.join("&"));
        }
        let transport = |message: String| ApiError::Transport {
            method: method.to_string(),
            url: url.clone(),
            message,
        };
        let mut req = self
            .http
            .request(method.clone(), &url)
            .header("X-Vault-Request", "true");
        if let Some(token) = self.token.as_deref().filter(|t| !t.is_empty()) {
            req = req.header("X-Vault-Token", token);
        }
        if let Some(secs) = self.wrap_ttl {
            req = req.header("X-Vault-Wrap-TTL", secs.to_string());
        }
        if let Some((content_type, body)) = body {
            req = req.header("Content-Type", content_type).body(body);
        }
        let resp = req.send().await.map_err(|e| transport(chain(&e)))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| transport(chain(&e)))?;
        if status >= 400 {
            return Err(ApiError::Status {
                method: method.to_string(),
                url,
                status,
                errors: error_messages(&String::from_utf8_lossy(&bytes)),
            });
        }
        Ok(bytes.to_vec())
    }
}

/// `application/x-www-form-urlencoded` encoding of one query key or value.
fn form_encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, FORM).to_string()
}

/// Everything but the unreserved characters of RFC 3986 is escaped.
const FORM: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A request that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The server answered with an error status.
    Status {
        /// `GET`, `PUT`, ...
        method: String,
        /// The full URL, query included.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The messages of Vault's `{"errors":[...]}` body, or the raw body.
        errors: ErrorBody,
    },
    /// No answer: refused connection, TLS failure, timeout, or an answer that is not JSON.
    Transport {
        /// `GET`, `PUT`, ...
        method: String,
        /// The full URL.
        url: String,
        /// What went wrong, with its causes.
        message: String,
    },
}

/// The body of an error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorBody {
    /// Vault's `{"errors":[...]}`, possibly empty (a read that found nothing).
    Messages(Vec<String>),
    /// Any other body, as text.
    Raw(String),
}

impl ApiError {
    /// True for Vault's "nothing here" answer: 404 with an empty error list (or no body).
    /// A 404 that carries messages (`unsupported path`) is a real error.
    pub fn is_not_found(&self) -> bool {
        match self {
            ApiError::Status {
                status: 404,
                errors,
                ..
            } => match errors {
                ErrorBody::Messages(m) => m.is_empty(),
                ErrorBody::Raw(r) => r.trim().is_empty(),
            },
            _ => false,
        }
    }
}

/// Vault's text (`api.ResponseError`), one `* message` line per error.
impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Status {
                method,
                url,
                status,
                errors,
            } => {
                let kind = match errors {
                    ErrorBody::Messages(_) => "Errors",
                    ErrorBody::Raw(_) => "Raw Message",
                };
                write!(
                    f,
                    "Error making API request.\n\nURL: {method} {url}\nCode: {status}. {kind}:\n\n"
                )?;
                match errors {
                    ErrorBody::Messages(messages) => {
                        let lines: Vec<String> = messages
                            .iter()
                            .map(|m| format!("* {}", m.trim_end()))
                            .collect();
                        f.write_str(&lines.join("\n"))
                    }
                    ErrorBody::Raw(raw) => f.write_str(raw.trim_end()),
                }
            }
            // Go's `url.Error`: `Put "http://...": dial tcp ...: connection refused`.
            ApiError::Transport {
                method,
                url,
                message,
            } => {
                let mut verb = method.to_lowercase();
                if let Some(first) = verb.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                write!(f, "{verb} \"{url}\": {message}")
            }
        }
    }
}

fn error_messages(text: &str) -> ErrorBody {
    let parsed: Option<Vec<String>> = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("errors").and_then(Value::as_array).cloned())
        .map(|errors| {
            errors
                .iter()
                .map(|e| match e {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        });
    match parsed {
        Some(messages) => ErrorBody::Messages(messages),
        None => ErrorBody::Raw(text.to_string()),
    }
}

/// An error and its causes, `outer: inner: innermost`, skipping reqwest's own top line
/// (it repeats the URL, which the caller prints already).
fn chain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if parts.is_empty() {
        return e.to_string();
    }
    if e.is_timeout() {
        parts.insert(0, "request timed out".to_string());
    }
    parts.dedup();
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn flags_win_over_the_environment_which_wins_over_defaults() {
        let none = env_of(&[]);
        let s = Settings::resolve(&CommonFlags::default(), &none, None).unwrap();
        assert_eq!(s.address, DEFAULT_ADDRESS);
        assert_eq!(s.format, Format::Table);
        assert!(!s.insecure_skip_verify);
        assert_eq!(s.token, None);

        let env = env_of(&[
            ("VAULT_ADDR", "https://vault.example:8200/"),
            ("VAULT_TOKEN", "hvs.env"),
            ("VAULT_SKIP_VERIFY", "1"),
            ("VAULT_FORMAT", "json"),
            ("VAULT_CACERT", "/etc/ca.pem"),
        ]);
        let s = Settings::resolve(&CommonFlags::default(), &env, None).unwrap();
        assert_eq!(s.address, "https://vault.example:8200");
        assert_eq!(s.token.as_deref(), Some("hvs.env"));
        assert!(s.token_from_env && s.insecure_skip_verify);
        assert_eq!(s.format, Format::Json);
        assert_eq!(s.ca_cert, Some(PathBuf::from("/etc/ca.pem")));

        let flags = CommonFlags {
            address: Some("http://127.0.0.1:1".into()),
            format: Some("table".into()),
            ..CommonFlags::default()
        };
        let s = Settings::resolve(&flags, &env, None).unwrap();
        assert_eq!(s.address, "http://127.0.0.1:1");
        assert_eq!(s.format, Format::Table);
    }

    #[test]
    fn refuses_bad_settings_as_local_errors() {
        let env = env_of(&[("VAULT_SKIP_VERIFY", "yes")]);
        let e = Settings::resolve(&CommonFlags::default(), &env, None).unwrap_err();
        assert!(matches!(e, Failure::Local(m) if m.contains("VAULT_SKIP_VERIFY")));
        let flags = CommonFlags {
            format: Some("xml".into()),
            ..CommonFlags::default()
        };
        let e = Settings::resolve(&flags, &env_of(&[]), None).unwrap_err();
        assert_eq!(e, Failure::Local("Invalid output format: xml".into()));
    }

    #[test]
    fn prints_errors_as_vaults_client_does() {
        let e = ApiError::Status {
            method: "PUT".into(),
            url: "http://127.0.0.1:8200/v1/auth/jwt/role/demo".into(),
            status: 400,
            errors: error_messages(r#"{"errors":["missing role","bad ttl\n"]}"#),
        };
        assert_eq!(
            e.to_string(),
            "Error making API request.\n\nURL: PUT http://127.0.0.1:8200/v1/auth/jwt/role/demo\n\
             Code: 400. Errors:\n\n* missing role\n* bad ttl"
        );
        let raw = error_messages("<html>bad gateway</html>");
        assert_eq!(raw, ErrorBody::Raw("<html>bad gateway</html>".into()));
        let e = ApiError::Transport {
            method: "PUT".into(),
            url: "http://127.0.0.1:1/v1/x".into(),
            message: "connection refused".into(),
        };
        assert_eq!(
            e.to_string(),
            "Put \"http://127.0.0.1:1/v1/x\": connection refused"
        );
    }

    #[test]
    fn only_an_empty_404_means_nothing_is_there() {
        let status = |code, body: &str| ApiError::Status {
            method: "GET".into(),
            url: "u".into(),
            status: code,
            errors: error_messages(body),
        };
        assert!(status(404, r#"{"errors":[]}"#).is_not_found());
        assert!(status(404, "").is_not_found());
        assert!(!status(404, r#"{"errors":["unsupported path: \"x\""]}"#).is_not_found());
        assert!(!status(400, r#"{"errors":[]}"#).is_not_found());
    }
}
