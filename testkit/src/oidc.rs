//! The real OpenID provider of `tests/oidc_provider/` (node-oidc-provider, with interactive and
//! device clients) and the browser stand-in `tests/compat/oidc_driver.py`, for the tests of the
//! OIDC browser login over HTTP. No mock: the provider's own login and consent forms are filled
//! in by the driver.
//!
//! Needs `node` (with `npm`, for `npm ci` the first time) and `python3`. Without them
//! [`shared_idp`] prints a loud SKIPPED line and returns `None`, unless
//! `AUTHMOUNT_REQUIRE_NODE=1` (set by `.ci/run`), which makes it fail.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::clock::random_hex;
use crate::readme::workspace_root;

/// The provider's interactive client (authorization code with PKCE, implicit `id_token`).
pub const CLIENT: (&str, &str) = ("authmount-interactive", "interactive-secret");
/// The provider's device-flow client (RFC 8628).
pub const DEVICE_CLIENT: (&str, &str) = ("authmount-device", "device-secret");

/// True when node and python3 are there; otherwise says so loudly, or fails when CI requires
/// them.
pub fn tools_present() -> bool {
    let ok = |cmd: &str| {
        Command::new(cmd)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ok("node") && ok("python3") {
        return true;
    }
    if std::env::var_os("AUTHMOUNT_REQUIRE_NODE").is_some() {
        panic!("node and python3 are required (AUTHMOUNT_REQUIRE_NODE is set)");
    }
    eprintln!("\n********** SKIPPED: the OIDC provider tests need node and python3 **********\n");
    false
}

/// `tests/oidc_provider/provider.mjs` on a free port of 127.0.0.1, exiting with this process.
pub struct Idp {
    child: Child,
    /// `http://127.0.0.1:<port>`: the issuer and the discovery URL.
    pub issuer: String,
}

impl Idp {
    /// Starts the provider with these extra (loopback: any port) redirect URIs registered for
    /// the interactive client, besides its defaults (`http://127.0.0.1/oidc/callback`,
    /// `http://localhost/oidc/callback`, `http://127.0.0.1/v1/auth/team/oidc/oidc/callback`, ...).
    pub fn start(extra_redirects: &[&str]) -> Idp {
        let dir = workspace_root().join("tests/oidc_provider");
        if !dir.join("node_modules").is_dir() {
            let status = Command::new("npm")
                .args(["ci", "--silent"])
                .current_dir(&dir)
                .status()
                .expect("npm ci");
            assert!(status.success(), "npm ci failed");
        }
        let keys = std::env::temp_dir().join(format!(
            "authmount-oidc-login-{}-{}.json",
            std::process::id(),
            random_hex()
        ));
        let out = Command::new("node")
            .args(["provider.mjs", "genkeys"])
            .arg(&keys)
            .current_dir(&dir)
            .output()
            .expect("node genkeys");
        assert!(out.status.success(), "genkeys: {out:?}");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut cmd = Command::new("node");
        cmd.args(["provider.mjs", "serve", &port.to_string()])
            .arg(&keys)
            .arg("--exit-with-stdin");
        for uri in extra_redirects {
            cmd.args(["--redirect-uri", uri]);
        }
        let mut child = cmd
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        while !line.contains("listening on") {
            line.clear();
            assert!(
                stdout.read_line(&mut line).expect("provider output") > 0,
                "the provider did not start"
            );
        }
        std::thread::spawn(move || {
            let mut sink = String::new();
            while stdout.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        let _ = std::fs::remove_file(&keys);
        Idp {
            child,
            issuer: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Sets the provider's token endpoint faults (`{}` clears them).
    pub async fn faults(&self, faults: Value) {
        reqwest::Client::new()
            .post(format!("{}/__faults", self.issuer))
            .body(faults.to_string())
            .send()
            .await
            .expect("faults")
            .error_for_status()
            .expect("faults accepted");
    }

    /// The provider's request counters (`{"token", "userinfo", ...}`).
    pub async fn stats(&self) -> Value {
        let body = reqwest::get(format!("{}/__stats", self.issuer))
            .await
            .expect("stats")
            .bytes()
            .await
            .expect("stats body");
        serde_json::from_slice(&body).expect("stats JSON")
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One provider for the whole test binary (`None` when the tools are missing), with the
/// server-side callbacks of the mounts `team/fp` and `team/direct` registered.
pub fn shared_idp() -> Option<&'static Idp> {
    static IDP: OnceLock<Option<Idp>> = OnceLock::new();
    IDP.get_or_init(|| {
        tools_present().then(|| {
            Idp::start(&[
                "http://127.0.0.1/v1/auth/team/fp/oidc/callback",
                "http://127.0.0.1/v1/auth/team/direct/oidc/callback",
            ])
        })
    })
    .as_ref()
}

/// Where the provider handed the browser back: `kind` (`redirect`, `form_post`), `url`, and
/// the query parameters or form fields.
pub struct End {
    /// `redirect` or `form_post`.
    pub kind: String,
    /// Where the browser was sent.
    pub url: String,
    /// The query parameters or form fields.
    pub params: HashMap<String, String>,
    /// The driver's whole answer.
    pub raw: Value,
}

/// Runs the browser driver with `args` (an authorization URL and options, or `--device` and a
/// verification URI); its JSON answer.
pub fn driver(args: &[&str]) -> Value {
    let out = Command::new("python3")
        .arg(workspace_root().join("tests/compat/oidc_driver.py"))
        .args(args)
        .output()
        .expect("python3 oidc_driver.py");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "driver answer is not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Follows `auth_url` through the provider's login (as `login`) and consent forms, stopping
/// where the provider hands back to the client; `--abort` and other options in `extra`.
pub fn authorize(auth_url: &str, login: &str, extra: &[&str]) -> End {
    let mut args = vec![auth_url, "--login", login];
    args.extend_from_slice(extra);
    let raw = driver(&args);
    let params = raw["params"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    End {
        kind: raw["kind"].as_str().unwrap_or_default().to_string(),
        url: raw["url"].as_str().unwrap_or_default().to_string(),
        params,
        raw,
    }
}
