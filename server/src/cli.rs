//! The `authmount` command line (clap). Vault's single-dash long flags (`-dev`,
//! `-dev-root-token-id=X`) are accepted beside the double-dash ones.

use clap::{Args, Parser, Subcommand};

/// authmount: a Vault-compatible JWT/OIDC auth server.
#[derive(Debug, Parser)]
#[command(name = "authmount", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Server(ServerArgs),
}

/// `authmount server` flags (Vault's names).
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Dev mode: in-memory storage, a root token printed at start.
    #[arg(long)]
    pub dev: bool,
    /// The root token's id in dev mode (random when omitted).
    #[arg(long, value_name = "ID")]
    pub dev_root_token_id: Option<String>,
    /// Address to listen on in dev mode.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8200")]
    pub dev_listen_address: String,
    /// Log level (trace, debug, info, warn, error); `RUST_LOG` wins when set.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
}

/// Rewrites Vault's single-dash long flags (`-dev`, `-path=x`) to clap's `--dev`,
/// leaving short flags (`-h`), values and everything after `--` alone.
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
        } else {
            arg
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
                "-h",
                "--dev-listen-address=a"
            ]
        );
        let cli =
            Cli::try_parse_from(args("authmount server -dev -dev-root-token-id=root")).unwrap();
        let Command::Server(s) = cli.command;
        assert!(s.dev);
        assert_eq!(s.dev_root_token_id.as_deref(), Some("root"));
        assert_eq!(s.dev_listen_address, "127.0.0.1:8200");
    }
}
