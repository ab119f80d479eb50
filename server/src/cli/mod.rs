//! The `authmount` command line (clap), in Vault's grammar: `auth enable`, `write`, `read`,
//! `list`, `delete`, `login`, `token`, `policy`, and `server`. Operators' scripts written
//! for `vault` run with `authmount` in its place.
//!
//! Vault's single-dash long flags (`-dev`, `-path=x`) are accepted beside the double-dash
//! ones. Exit status as Vault's CLI: 0 success, 1 a local error (bad flags or arguments, an
//! unreadable file), 2 a remote error (the server refused the request or could not be
//! reached).
//!
//! | module | role |
//! |---|---|
//! | `args` | the grammar (clap types) |
//! | `commands` | one function per command: build the request, print the answer |
//! | `client` | HTTP to the server, settings from flags and `VAULT_*` variables, Vault's error text |
//! | `kv` | `k=v`, `k=@file`, `k=-`, `-` into a JSON body |
//! | `output` | Vault's key/value tables, `-field`, `-format=json` |
//! | `token_helper` | `~/.vault-token` |

mod args;
mod client;
mod commands;
mod kv;
mod output;
mod token_helper;

use std::io::Write;
use std::process::ExitCode;

pub(crate) use args::{Cli, Command, ServerArgs};

/// Why a command failed; decides the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Bad flags or arguments, an unreadable local file: exit status 1.
    Local(String),
    /// The server refused the request or could not be reached: exit status 2.
    Remote(String),
}

impl Failure {
    /// The process exit status: 1 for local, 2 for remote failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Local(_) => 1,
            Failure::Remote(_) => 2,
        }
    }

    /// The message printed on stderr.
    pub fn message(&self) -> &str {
        match self {
            Failure::Local(m) | Failure::Remote(m) => m,
        }
    }
}

/// Parses the command line (after [`normalize_args`]). On a usage error or `-h`, prints
/// clap's text and returns the exit status to end with: 0 for help and version, 1 for a
/// usage error (clap's own default, 2, would read as a remote error).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Cli, ExitCode> {
    use clap::Parser;
    Cli::try_parse_from(normalize_args(args)).map_err(|e| {
        let _ = e.print();
        usage_exit_code(&e)
    })
}

/// The exit status after clap stopped: 0 for `--help` and `--version` (printed on stdout),
/// 1 for a usage error (printed on stderr).
fn usage_exit_code(e: &clap::Error) -> ExitCode {
    if e.use_stderr() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs a client command (any but `server`) against the server and returns its exit status.
/// Output goes to stdout, errors and warnings to stderr.
pub fn run(command: Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error starting the client runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let _ = writeln!(std::io::stderr().lock(), "{}", failure.message().trim_end());
            ExitCode::from(failure.exit_code())
        }
    }
}

/// Rewrites Vault's single-dash long flags (`-dev`, `-path=x`) to clap's `--dev`, and `-h`
/// to `--help` (Vault's `-h` shows the whole help, clap's only a summary), leaving other
/// short flags (`-f`), values and everything after `--` alone.
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut passthrough = false;
    for arg in args {
        if arg == "--" {
            passthrough = true;
        }
        let single_dash_long = !passthrough
            && arg.starts_with('-')
            && !arg.starts_with("--")
            && arg.len() > 2
            && arg[1..].starts_with(|c: char| c.is_ascii_alphabetic());
        out.push(if single_dash_long {
            format!("-{arg}")
        } else if arg == "-h" && !passthrough {
            "--help".to_string()
        } else {
            arg
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::args::AuthCommand;
    use super::*;
    use clap::Parser;

    fn args(s: &str) -> Vec<String> {
        normalize_args(s.split(' ').map(String::from))
    }

    #[test]
    fn accepts_vaults_single_dash_flags() {
        assert_eq!(
            args("authmount server -dev -dev-root-token-id=x -h --dev-listen-address=a"),
            [
                "authmount",
                "server",
                "--dev",
                "--dev-root-token-id=x",
                "--help",
                "--dev-listen-address=a"
            ]
        );
        let cli =
            Cli::try_parse_from(args("authmount server -dev -dev-root-token-id=root")).unwrap();
        let Command::Server(s) = cli.command else {
            panic!("not the server command: {:?}", cli.command);
        };
        assert!(s.dev);
        assert_eq!(s.dev_root_token_id.as_deref(), Some("root"));
        assert_eq!(s.dev_listen_address, "127.0.0.1:8200");
    }

    #[test]
    fn parses_the_seeds_commands() {
        let cli = Cli::try_parse_from(args("authmount auth enable -path=my-path jwt")).unwrap();
        let Command::Auth(AuthCommand::Enable(a)) = cli.command else {
            panic!("not auth enable: {:?}", cli.command);
        };
        assert_eq!(
            (a.kind.as_str(), a.path.as_deref()),
            ("jwt", Some("my-path"))
        );

        let cli = Cli::try_parse_from(args(
            "authmount write auth/jwt/role/demo policies=webapps ttl=1h -format=json",
        ))
        .unwrap();
        let Command::Write(w) = cli.command else {
            panic!("not write: {:?}", cli.command);
        };
        assert_eq!(w.data, ["policies=webapps", "ttl=1h"]);
        assert_eq!(w.common.format.as_deref(), Some("json"));

        // A lone `-` (JSON body on stdin) is data, not a flag.
        let cli = Cli::try_parse_from(args("authmount write auth/jwt/config -")).unwrap();
        let Command::Write(w) = cli.command else {
            panic!("not write: {:?}", cli.command);
        };
        assert_eq!(w.data, ["-"]);

        let cli = Cli::try_parse_from(args(
            "authmount login -method=jwt -path=my-path role=demo jwt=x",
        ))
        .unwrap();
        let Command::Login(l) = cli.command else {
            panic!("not login: {:?}", cli.command);
        };
        assert_eq!(
            (l.method.as_str(), l.path.as_deref()),
            ("jwt", Some("my-path"))
        );
        assert_eq!(l.args, ["role=demo", "jwt=x"]);
    }

    #[test]
    fn usage_errors_exit_1_and_help_exits_0() {
        let code = |s: &str| match Cli::try_parse_from(args(s)) {
            Ok(_) => None,
            Err(e) => Some(usage_exit_code(&e)),
        };
        assert_eq!(code("authmount auth enable"), Some(ExitCode::from(1)));
        assert_eq!(code("authmount read -bogus x"), Some(ExitCode::from(1)));
        assert_eq!(code("authmount token revoke"), Some(ExitCode::from(1)));
        assert_eq!(code("authmount read -h"), Some(ExitCode::SUCCESS));
        assert_eq!(code("authmount auth tune -help"), Some(ExitCode::SUCCESS));
        assert_eq!(code("authmount token revoke -self"), None);
    }
}
