//! Support for running the real `authmount` binary against a real server: an in-process
//! server on an ephemeral port, a runner that executes the binary with a private HOME and a
//! clean environment, keys that sign real JWTs, and temporary directories.
//!
//! Nothing is hard-coded: the root token, the keys and the directories are fresh per test.

#![allow(dead_code)] // each test binary uses a different part of this module

#[path = "../../../tests/support/clock.rs"]
mod clock;
pub mod node;
pub use clock::{now, random_hex};

#[path = "../../../tests/support/oidc.rs"]
pub mod oidc;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use josekit::jws::{self, JwsHeader};
use serde_json::{json, Value};

/// The `authmount` binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_authmount");

/// How long one command may run before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// An authmount server (dev core, in-memory storage) on `127.0.0.1:<port>`, on its own
/// thread with its own actix system, living until the test binary exits.
pub struct Server {
    /// `http://127.0.0.1:<port>`.
    pub addr: String,
    /// The root token.
    pub root: String,
}

impl Server {
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local address").port();
        let root = format!("root-{}", random_hex());
        let root_for_server = root.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let core = authmount_server::dev_core(&root_for_server)
                    .await
                    .expect("dev core");
                authmount_server::http::server(core, listener)
                    .expect("http server")
                    .await
                    .expect("server run");
            })
        });
        // The listener is bound already: connections wait in its backlog until the server
        // accepts them, so no readiness polling is needed.
        Server {
            addr: format!("http://127.0.0.1:{port}"),
            root,
        }
    }
}

/// A directory under the system temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("authmount-{label}-{}", random_hex()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` in the directory and returns its path.
    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary as an operator would: HOME is a private temp dir (so the token helper
/// file never touches the real home), the working directory is that HOME, and the
/// environment holds only what the test sets (no VAULT_* leaks in from the developer).
pub struct Cli {
    home: TempDir,
    env: Vec<(String, String)>,
}

/// What one command did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Cli {
    /// A runner with `VAULT_ADDR` pointing at `server` and no token at all.
    pub fn new(server: &Server) -> Cli {
        Cli::with_address(&server.addr)
    }

    /// A runner with `VAULT_ADDR=address` and no token.
    pub fn with_address(address: &str) -> Cli {
        let home = TempDir::new("home");
        let env = vec![
            ("HOME".to_string(), home.path().display().to_string()),
            ("VAULT_ADDR".to_string(), address.to_string()),
        ];
        Cli { home, env }
    }

    /// Sets an environment variable for every later command.
    pub fn env(mut self, name: &str, value: &str) -> Cli {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// The private home directory (also the working directory).
    pub fn home(&self) -> &TempDir {
        &self.home
    }

    /// `~/.vault-token`.
    pub fn token_file(&self) -> PathBuf {
        self.home.path().join(".vault-token")
    }

    /// Runs `authmount <args>` with stdin empty.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None)
    }

    /// Runs `authmount <args>` with `stdin` as its standard input.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        self.run_with_stdin(args, Some(stdin))
    }

    /// Starts `authmount <args>` with stdin empty and stdout and stderr piped, without
    /// waiting (a command that waits for something the test then does).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new(BIN)
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(self.home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn authmount")
    }

    fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut child = Command::new(BIN)
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(self.home.path())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn authmount");
        let mut out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes()).expect("write stdin");
        }
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for authmount") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("authmount {args:?} did not finish in {COMMAND_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Run {
            code: status.code().unwrap_or(-1),
            stdout: out_reader.join().expect("stdout reader"),
            stderr: err_reader.join().expect("stderr reader"),
        }
    }
}

impl Run {
    /// Asserts exit status 0 and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        &self.stdout
    }

    /// Asserts a local error: exit status 1, nothing on stdout, `needle` on stderr.
    #[track_caller]
    pub fn local_error(&self, needle: &str) {
        assert_eq!(self.code, 1, "expected a local error (1): {self:#?}");
        assert_eq!(self.stdout, "", "a failed command prints nothing on stdout");
        assert!(
            self.stderr.contains(needle),
            "{needle:?} not on stderr: {self:#?}"
        );
    }

    /// Asserts a remote error: exit status 2, nothing on stdout, every needle on stderr.
    #[track_caller]
    pub fn remote_error(&self, needles: &[&str]) {
        assert_eq!(self.code, 2, "expected a remote error (2): {self:#?}");
        assert_eq!(self.stdout, "", "a failed command prints nothing on stdout");
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "{needle:?} not on stderr: {self:#?}"
            );
        }
    }

    /// The value of `key` in a Vault key/value table on stdout (`key    value`).
    #[track_caller]
    pub fn row(&self, key: &str) -> String {
        self.stdout
            .lines()
            .find_map(|line| {
                let (k, v) = line.split_once(' ')?;
                (k == key).then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no row {key:?} in:\n{}", self.stdout))
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// An RSA key pair that signs RS256 JWTs, as an identity provider would.
pub struct Signer {
    private_der: Vec<u8>,
    /// The public key as a `-----BEGIN PUBLIC KEY-----` PEM.
    pub public_pem: String,
}

impl Signer {
    pub fn rsa() -> Signer {
        let pair = jws::RS256.generate_key_pair(2048).expect("RSA key");
        Signer {
            private_der: pair.to_der_private_key(),
            public_pem: String::from_utf8(pair.to_pem_public_key()).expect("PEM is ASCII"),
        }
    }

    /// A compact RS256 JWS over `claims`.
    pub fn sign(&self, claims: &Value) -> String {
        let signer = jws::RS256
            .signer_from_der(&self.private_der)
            .expect("RS256 signer");
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        let payload = serde_json::to_vec(claims).expect("claims");
        jws::serialize_compact(&payload, &header, &signer).expect("sign")
    }
}

pub const SEED_ISSUER: &str = "https://issuer.example/";
pub const SEED_SUBJECT: &str = "r3qX9DljwFIWhsiqwFiu38209F10atW6@clients";
pub const SEED_AUDIENCE: &str = "https://vault.plugin.auth.jwt.test";

/// Claims the seed role accepts, for `user`, valid for five minutes.
pub fn seed_claims(user: &str) -> Value {
    let now = now();
    json!({
        "iss": SEED_ISSUER,
        "sub": SEED_SUBJECT,
        "aud": SEED_AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "https://vault/user": user,
        "https://vault/groups": ["engineering"],
    })
}

/// An address where nothing listens: a port bound then released.
pub fn unreachable_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// The body of the README's first fenced block whose info string is `info` (e.g. `sh cli`).
pub fn readme_block(info: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("read README.md");
    let mut lines = readme
        .lines()
        .skip_while(|l| l.trim() != format!("```{info}"));
    lines
        .next()
        .unwrap_or_else(|| panic!("README has a ```{info} block"));
    lines
        .take_while(|l| l.trim() != "```")
        .collect::<Vec<_>>()
        .join("\n")
}
