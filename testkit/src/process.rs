//! The real `authmount` binary as an operator runs it: the command line with a private HOME
//! and a clean environment.
//!
//! A library cannot know the path of the binary cargo built for a test crate
//! (`CARGO_BIN_EXE_authmount` exists only while compiling that crate's tests), so the test
//! crate names it once and passes it in:
//!
//! ```text
//! const BIN: Binary = Binary::at(env!("CARGO_BIN_EXE_authmount"));
//! let cli = Cli::new(BIN, &TestServer::start_blocking());
//! ```

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::TestServer;
use crate::tempdir::TempDir;

/// How long one command may run before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The `authmount` binary built for the calling test crate:
/// `Binary::at(env!("CARGO_BIN_EXE_authmount"))`.
#[derive(Debug, Clone, Copy)]
pub struct Binary(&'static str);

impl Binary {
    /// The binary at `path` (absolute, as cargo gives it).
    pub const fn at(path: &'static str) -> Binary {
        Binary(path)
    }

    /// Its path.
    pub fn path(self) -> &'static Path {
        Path::new(self.0)
    }

    /// A command running it, with nothing set yet.
    pub fn command(self) -> Command {
        Command::new(self.0)
    }
}

/// Runs the binary as an operator would: HOME is a private temp dir (so the token helper
/// file never touches the real home), the working directory is that HOME, and the
/// environment holds only what the test sets (no VAULT_* leaks in from the developer).
pub struct Cli {
    bin: Binary,
    home: TempDir,
    env: Vec<(String, String)>,
}

/// What one command did.
#[derive(Debug)]
pub struct Run {
    /// The exit status (-1 when killed by a signal).
    pub code: i32,
    /// Everything printed on standard output.
    pub stdout: String,
    /// Everything printed on standard error.
    pub stderr: String,
}

impl Cli {
    /// A runner of `bin` with `VAULT_ADDR` pointing at `server` and no token at all.
    pub fn new(bin: Binary, server: &TestServer) -> Cli {
        Cli::with_address(bin, &server.base)
    }

    /// A runner of `bin` with `VAULT_ADDR=address` and no token.
    pub fn with_address(bin: Binary, address: &str) -> Cli {
        let home = TempDir::new("home");
        let env = vec![
            ("HOME".to_string(), home.path().display().to_string()),
            ("VAULT_ADDR".to_string(), address.to_string()),
        ];
        Cli { bin, home, env }
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
        self.bin
            .command()
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
        let mut child = self
            .bin
            .command()
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

/// An address where nothing listens: a port bound then released.
pub fn unreachable_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
