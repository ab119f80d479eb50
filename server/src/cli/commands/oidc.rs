//! `login -method=oidc`: the OIDC browser login from the command line, as Vault's and
//! OpenBao's CLI handler of the JWT/OIDC method does it.
//!
//! `authmount login -method=oidc [-path=MOUNT] [role=R] [port=8250] [listenaddress=localhost]
//! [callbackhost=localhost] [callbackmethod=http] [callbackport=PORT] [callbackmode=client]
//! [skip_browser=true] [abort_on_error=true]`:
//!
//! 1. listens on `listenaddress:port` (before anything else, so a browser that is quick never
//!    finds the port closed);
//! 2. `POST auth/<mount>/oidc/auth_url {"role", "redirect_uri":
//!    "<callbackmethod>://<callbackhost>:<callbackport>/oidc/callback", "client_nonce"}` (a
//!    fresh 20-character nonce), without a token;
//! 3. opens the browser on the URL (or, with `skip_browser=true`, only prints it on stderr);
//! 4. on the provider's redirect to the listener, `GET auth/<mount>/oidc/callback` with
//!    `state`, `code`, `id_token` and `client_nonce` (for a form_post, the posted form first
//!    goes to `POST auth/<mount>/oidc/callback`), answers the browser with a page, and returns
//!    the login; the caller stores and prints the token as for any login.
//!
//! In OpenBao's `direct` and `device` callback modes (`callbackmode=direct|device`) nothing
//! listens: the command polls `auth/<mount>/oidc/poll` every `poll_interval` seconds (twice as
//! long after a `slow_down`) until the login or an error. It gives up after 2 minutes.
//!
//! Source: `vault-plugin-auth-jwt` `cli.go` (OpenBao's copy for the modes).

use std::time::Duration;

use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::cli::client::{ApiError, Client, ErrorBody};
use crate::cli::Failure;

/// How long the command waits for the browser (or the poll) to finish.
const WAIT: Duration = Duration::from_secs(120);
/// The largest request the listener reads (head and body).
const MAX_REQUEST: usize = 1024 * 1024;

/// The options of `login -method=oidc` (Vault's names), after their defaults.
#[derive(Debug, Clone, PartialEq)]
struct Options {
    role: String,
    listen_address: String,
    port: String,
    callback_host: String,
    callback_method: String,
    callback_port: String,
    mode: String,
    skip_browser: bool,
    abort_on_error: bool,
}

impl Options {
    /// Reads the `k=v` arguments; `server` is the server's address (the callback of the
    /// direct mode goes there). Errors (local): an argument without `=`, a bad bool, an
    /// unknown callback mode.
    fn parse(args: &[String], mount: &str, server: &str) -> Result<Options, Failure> {
        let mut given = Map::new();
        for arg in args {
            let (k, v) = arg.split_once('=').ok_or_else(|| {
                Failure::Local(format!(
                    "Error parsing configuration: invalid key/value pair {arg:?}"
                ))
            })?;
            given.insert(k.to_string(), Value::String(v.to_string()));
        }
        let get = |k: &str| given.get(k).and_then(Value::as_str).map(str::to_string);
        let flag = |k: &str| -> Result<bool, Failure> {
            match get(k).as_deref() {
                None => Ok(false),
                Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
                Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
                Some(other) => Err(Failure::Local(format!(
                    "failed to parse value for {k:?}: {other:?} is not a bool"
                ))),
            }
        };
        let mode = get("callbackmode")
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "client".into());
        if !["client", "direct", "device"].contains(&mode.as_str()) {
            return Err(Failure::Local(format!(
                "invalid callbackmode {mode:?}: client, direct or device"
            )));
        }
        let port = get("port").unwrap_or_else(|| "8250".into());
        // In direct mode the provider redirects to the server itself.
        let server = (mode == "direct")
            .then(|| reqwest::Url::parse(server).ok())
            .flatten();
        let callback_host = get("callbackhost").unwrap_or_else(|| match &server {
            Some(url) => url.host_str().unwrap_or("localhost").to_string(),
            None => "localhost".into(),
        });
        let callback_method = get("callbackmethod").unwrap_or_else(|| match &server {
            Some(url) => url.scheme().to_string(),
            None => "http".into(),
        });
        let callback_port = get("callbackport").unwrap_or_else(|| match &server {
            Some(url) => format!(
                "{}/v1/auth/{mount}",
                url.port_or_known_default().unwrap_or(8200)
            ),
            None => port.clone(),
        });
        Ok(Options {
            role: get("role").unwrap_or_default(),
            listen_address: get("listenaddress").unwrap_or_else(|| "localhost".into()),
            port,
            callback_host,
            callback_method,
            callback_port,
            mode,
            skip_browser: flag("skip_browser")?,
            abort_on_error: flag("abort_on_error")?,
        })
    }

    fn redirect_uri(&self) -> String {
        format!(
            "{}://{}:{}/oidc/callback",
            self.callback_method, self.callback_host, self.callback_port
        )
    }
}

/// Runs the browser login at `auth/<mount>/` and returns the login answer.
///
/// Errors: local (bad options, the port cannot be listened on, the browser cannot be
/// opened with `abort_on_error=true`), remote (the server refused `auth_url`, the callback
/// or the poll; no redirect within 2 minutes).
pub(super) async fn login(
    client: &Client,
    server: &str,
    mount: &str,
    args: &[String],
) -> Result<Value, Failure> {
    let mount = mount.trim_matches('/');
    let options = Options::parse(args, mount, server)?;
    let client = client.with_token(None);
    let listener = match options.mode.as_str() {
        "client" => {
            let address = format!("{}:{}", options.listen_address, options.port);
            Some(TcpListener::bind(&address).await.map_err(|e| {
                Failure::Local(format!(
                    "Error authenticating: cannot listen on {address}: {e}"
                ))
            })?)
        }
        _ => None,
    };
    let client_nonce: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(20)
        .map(char::from)
        .collect();
    let redirect_uri = options.redirect_uri();
    let started = client
        .write(
            &format!("auth/{mount}/oidc/auth_url"),
            &json!({"role": options.role, "redirect_uri": redirect_uri, "client_nonce": client_nonce}),
        )
        .await
        .map_err(|e| Failure::Remote(format!("Error authenticating: {e}")))?
        .unwrap_or(Value::Null);
    let data = |k: &str| {
        started
            .pointer(&format!("/data/{k}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let auth_url = data("auth_url");
    if auth_url.is_empty() {
        return Err(Failure::Remote(format!(
            "Error authenticating: Unable to authorize role {:?} with redirect_uri {redirect_uri:?}. Check the server's logs for more information.",
            options.role
        )));
    }
    let (state, poll_interval, user_code) =
        (data("state"), data("poll_interval"), data("user_code"));
    match (listener.is_some(), state.is_empty()) {
        (true, false) => return Err(Failure::Remote(
            "Error authenticating: state returned in client callback mode, try callbackmode=direct"
                .into(),
        )),
        (false, true) => {
            return Err(Failure::Remote(format!(
                "Error authenticating: no state returned in {} callback mode",
                options.mode
            )))
        }
        _ => {}
    }

    if options.skip_browser {
        eprint!("Complete the login via your OIDC provider. Open the following link in your browser:\n\n    {auth_url}\n\n\n");
    } else {
        eprint!("Complete the login via your OIDC provider. Launching browser to:\n\n    {auth_url}\n\n\n");
        if let Err(e) = open_browser(&auth_url) {
            if options.abort_on_error {
                return Err(Failure::Local(format!(
                    "failed to launch the browser abort_on_error=true, err={e}"
                )));
            }
            eprintln!("Error attempting to automatically open browser: '{e}'.\nPlease visit the authorization URL manually.");
        }
    }
    eprintln!("Waiting for OIDC authentication to complete...");
    if !user_code.is_empty() {
        eprintln!("When prompted, enter code {user_code}\n");
    }

    let finish = async {
        match listener {
            Some(listener) => serve(&listener, &client, mount, &client_nonce).await,
            None => {
                let interval = poll_interval.parse::<u64>().map_err(|_| {
                    Failure::Remote(format!(
                        "Error authenticating: cannot convert poll_interval {poll_interval:?} to an integer"
                    ))
                })?;
                poll(&client, mount, &state, &client_nonce, interval).await
            }
        }
    };
    tokio::time::timeout(WAIT, finish).await.map_err(|_| {
        Failure::Remote("Error authenticating: Timed out waiting for response from provider".into())
    })?
}

/// OpenBao's direct and device modes: polls until the login, a `slow_down` doubling the wait.
async fn poll(
    client: &Client,
    mount: &str,
    state: &str,
    client_nonce: &str,
    interval: u64,
) -> Result<Value, Failure> {
    let mut interval = Duration::from_secs(interval.max(1));
    let body = json!({"state": state, "client_nonce": client_nonce});
    loop {
        tokio::time::sleep(interval).await;
        match client
            .write(&format!("auth/{mount}/oidc/poll"), &body)
            .await
        {
            Ok(Some(secret)) => return Ok(secret),
            Ok(None) => {
                return Err(Failure::Remote(
                    "Error authenticating: empty response".into(),
                ))
            }
            Err(e) => match last_message(&e).as_deref() {
                Some("authorization_pending") => {}
                Some("slow_down") => interval *= 2,
                _ => return Err(Failure::Remote(format!("Error authenticating: {e}"))),
            },
        }
    }
}

fn last_message(e: &ApiError) -> Option<String> {
    match e {
        ApiError::Status {
            errors: ErrorBody::Messages(m),
            ..
        } => m.last().map(|m| m.trim().to_string()),
        _ => None,
    }
}

/// Accepts connections on the listener until one brings the provider's redirect (or its
/// form_post) to `/oidc/callback`; anything else (a favicon, a stray request) gets a 404.
async fn serve(
    listener: &TcpListener,
    client: &Client,
    mount: &str,
    client_nonce: &str,
) -> Result<Value, Failure> {
    loop {
        let (mut stream, _) = listener.accept().await.map_err(|e| {
            Failure::Local(format!("Error authenticating: the listener failed: {e}"))
        })?;
        let Some(request) = read_request(&mut stream).await else {
            let _ = respond(&mut stream, 400, "Bad request").await;
            continue;
        };
        if request.path != "/oidc/callback" {
            let _ = respond(&mut stream, 404, "Not found").await;
            continue;
        }
        let result = callback(client, mount, client_nonce, &request).await;
        let page = match &result {
            Ok(_) => success_page(),
            Err(e) => error_page(e.message()),
        };
        let _ = respond(&mut stream, 200, &page).await;
        return result;
    }
}

/// The callback of the server, with what the provider sent to the listener.
async fn callback(
    client: &Client,
    mount: &str,
    client_nonce: &str,
    request: &HttpRequest,
) -> Result<Value, Failure> {
    let path = format!("auth/{mount}/oidc/callback");
    let field = |k: &str| {
        request
            .params
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (state, code, id_token) = (field("state"), field("code"), field("id_token"));
    let mut query = vec![
        ("state", state.as_str()),
        ("code", code.as_str()),
        ("id_token", id_token.as_str()),
        ("client_nonce", client_nonce),
    ];
    if request.method == "POST" {
        // form_post: the server keeps what the provider posted, then the GET finishes (its
        // own answer is a page for a browser, and any error shows in the GET).
        let body = json!({"state": state, "code": code, "id_token": id_token, "client_nonce": client_nonce});
        let _ = client.post(&path, &body).await;
        query.retain(|(k, _)| *k != "id_token");
    }
    client
        .read_with(&path, &query)
        .await
        .map_err(|e| Failure::Remote(format!("Error authenticating: {e}")))?
        .ok_or_else(|| Failure::Remote("Error authenticating: empty response".into()))
}

/// One HTTP request to the listener: its method, path and parameters (the query, then a
/// form body).
struct HttpRequest {
    method: String,
    path: String,
    params: Vec<(String, String)>,
}

/// Reads one HTTP/1.1 request (head and a `Content-Length` body, at most [`MAX_REQUEST`]
/// bytes, within 10 seconds). `None` for anything malformed.
async fn read_request(stream: &mut TcpStream) -> Option<HttpRequest> {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > MAX_REQUEST {
                return None;
            }
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&buf[..head_end]).ok()?;
        let mut lines = head.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let method = first.next()?.to_string();
        let target = first.next()?.to_string();
        let length = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if length > MAX_REQUEST {
            return None;
        }
        while buf.len() < head_end + length {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let url = reqwest::Url::parse(&format!("http://listener{target}")).ok()?;
        let mut params: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if method == "POST" {
            let body = std::str::from_utf8(&buf[head_end..head_end + length]).ok()?;
            let form = reqwest::Url::parse(&format!("http://listener/?{body}")).ok()?;
            // Form values first: they win over the query (Go's FormValue).
            let mut posted: Vec<(String, String)> = form
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            posted.append(&mut params);
            params = posted;
        }
        Some(HttpRequest {
            method,
            path: url.path().to_string(),
            params,
        })
    })
    .await
    .ok()
    .flatten()
}

async fn respond(stream: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(answer.as_bytes()).await?;
    stream.shutdown().await
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> String {
    format!("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n{body}\n</body>\n</html>\n")
}

fn success_page() -> String {
    page(
        "Authentication Succeeded",
        "<h1>Signed in via your OIDC provider</h1>\n<p>You can close this window and return to the command line.</p>",
    )
}

fn error_page(message: &str) -> String {
    page(
        "Authentication Failed",
        &format!(
            "<h1>Sign-in failed</h1>\n<pre>{}</pre>",
            escape(message.trim())
        ),
    )
}

/// Opens the system's browser on `url` (`open` on macOS, `xdg-open` elsewhere on Unix,
/// `rundll32` on Windows), without waiting for it.
fn open_browser(url: &str) -> std::io::Result<()> {
    let (program, args): (&str, Vec<&str>) = if cfg!(target_os = "macos") {
        ("open", vec![url])
    } else if cfg!(windows) {
        ("rundll32", vec!["url.dll,FileProtocolHandler", url])
    } else {
        ("xdg-open", vec![url])
    };
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    // Reaped in the background: the browser may outlive the command.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_take_vaults_defaults() {
        let o = Options::parse(&[], "oidc", "http://127.0.0.1:8200").unwrap();
        assert_eq!(o.redirect_uri(), "http://localhost:8250/oidc/callback");
        assert_eq!(
            (o.listen_address.as_str(), o.port.as_str()),
            ("localhost", "8250")
        );
        assert_eq!(o.mode, "client");
        assert!(!o.skip_browser);
        let o = Options::parse(
            &args(&[
                "role=r1",
                "port=9000",
                "callbackhost=127.0.0.1",
                "skip_browser=true",
            ]),
            "team/oidc",
            "http://127.0.0.1:8200",
        )
        .unwrap();
        assert_eq!(o.redirect_uri(), "http://127.0.0.1:9000/oidc/callback");
        assert_eq!(o.role, "r1");
        assert!(o.skip_browser);
        let o = Options::parse(
            &args(&["callbackmode=direct"]),
            "team/oidc",
            "https://vault.example:8443",
        )
        .unwrap();
        assert_eq!(
            o.redirect_uri(),
            "https://vault.example:8443/v1/auth/team/oidc/oidc/callback"
        );
        assert!(Options::parse(&args(&["skip_browser=maybe"]), "oidc", "").is_err());
        assert!(Options::parse(&args(&["callbackmode=bogus"]), "oidc", "").is_err());
        assert!(Options::parse(&args(&["role"]), "oidc", "").is_err());
    }
}
