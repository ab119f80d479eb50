//! One function per client command: turn the parsed arguments into requests, print the
//! answer as Vault's CLI does, and say why a command failed (local or remote).
//!
//! | file | commands |
//! |---|---|
//! | `auth.rs` | `auth enable`, `auth disable`, `auth list`, `auth tune` |
//! | `data.rs` | `write`, `read`, `list`, `delete`, `path-help` |
//! | `login.rs` | `login` |
//! | `oidc.rs` | `login -method=oidc` (the browser login) |
//! | `token.rs` | `token lookup`, `token renew`, `token revoke`, `token capabilities`, `token create`, `unwrap` |
//! | `policy.rs` | `policy write`, `policy read`, `policy list`, `policy delete` |
//! | `operator.rs` | `operator init`, `operator unseal`, `operator seal`, `status` |
//! | `snapshot.rs` | `operator snapshot save`, `operator snapshot restore` |

mod auth;
mod data;
mod login;
mod oidc;
mod operator;
mod policy;
mod snapshot;
mod token;

use std::io::{IsTerminal, Write};

use serde_json::Value;

use super::args::{
    AuthCommand, Command, CommonFlags, OperatorCommand, PolicyCommand, SnapshotCommand,
    TokenCommand,
};
use super::client::{Client, Settings};
use super::output::{self, Format};
use super::token_helper::TokenHelper;
use super::Failure;

/// Runs one client command. `server` is not a client command: main runs it.
pub async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Server(_) => Err(Failure::Local(
            "the server command is not a client command".into(),
        )),
        Command::Auth(AuthCommand::Enable(a)) => auth::enable(&Ctx::new(&a.common)?, &a).await,
        Command::Auth(AuthCommand::Disable(a)) => auth::disable(&Ctx::new(&a.common)?, &a).await,
        Command::Auth(AuthCommand::List(a)) => auth::list(&Ctx::new(&a.common)?, &a).await,
        Command::Auth(AuthCommand::Tune(a)) => auth::tune(&Ctx::new(&a.common)?, &a).await,
        Command::Write(a) => data::write(&Ctx::new(&a.common)?, &a).await,
        Command::Read(a) => data::read(&Ctx::new(&a.common)?, &a).await,
        Command::PathHelp(a) => data::path_help(&Ctx::new(&a.common)?, &a).await,
        Command::List(a) => data::list(&Ctx::new(&a.common)?, &a).await,
        Command::Delete(a) => data::delete(&Ctx::new(&a.common)?, &a).await,
        Command::Login(a) => login::login(&Ctx::new(&a.common)?, &a).await,
        Command::Token(TokenCommand::Lookup(a)) => token::lookup(&Ctx::new(&a.common)?, &a).await,
        Command::Token(TokenCommand::Renew(a)) => token::renew(&Ctx::new(&a.common)?, &a).await,
        Command::Token(TokenCommand::Revoke(a)) => token::revoke(&Ctx::new(&a.common)?, &a).await,
        Command::Token(TokenCommand::Capabilities(a)) => {
            token::capabilities(&Ctx::new(&a.common)?, &a).await
        }
        Command::Token(TokenCommand::Create(a)) => token::create(&Ctx::new(&a.common)?, &a).await,
        Command::Policy(PolicyCommand::Write(a)) => policy::write(&Ctx::new(&a.common)?, &a).await,
        Command::Policy(PolicyCommand::Read(a)) => policy::read(&Ctx::new(&a.common)?, &a).await,
        Command::Policy(PolicyCommand::List(a)) => policy::list(&Ctx::new(&a.common)?).await,
        Command::Policy(PolicyCommand::Delete(a)) => {
            policy::delete(&Ctx::new(&a.common)?, &a).await
        }
        Command::Operator(OperatorCommand::Init(a)) => {
            operator::init(&Ctx::new(&a.common)?, &a).await
        }
        Command::Operator(OperatorCommand::Unseal(a)) => {
            operator::unseal(&Ctx::new(&a.common)?, &a).await
        }
        Command::Operator(OperatorCommand::Seal(a)) => operator::seal(&Ctx::new(&a.common)?).await,
        Command::Operator(OperatorCommand::Snapshot(SnapshotCommand::Save(a))) => {
            snapshot::save(&Ctx::new(&a.common)?, &a).await
        }
        Command::Operator(OperatorCommand::Snapshot(SnapshotCommand::Restore(a))) => {
            snapshot::restore(&Ctx::new(&a.common)?, &a).await
        }
        Command::Status(a) => operator::status(&Ctx::new(&a.common)?).await,
        Command::Unwrap(a) => token::unwrap(&Ctx::new(&a.common)?, &a).await,
    }
}

/// What every command works with: the resolved settings, a client, the token helper.
pub struct Ctx {
    settings: Settings,
    client: Client,
    helper: Option<TokenHelper>,
}

impl Ctx {
    /// Resolves the settings from `flags` and the process environment, and builds the
    /// client. Errors (local): bad settings, an unreadable CA or token file.
    fn new(flags: &CommonFlags) -> Result<Ctx, Failure> {
        let env = |name: &str| std::env::var(name).ok();
        let helper = TokenHelper::from_env(&env);
        let settings = Settings::resolve(flags, &env, helper.as_ref())?;
        let client = Client::new(&settings)?;
        Ok(Ctx {
            settings,
            client,
            helper,
        })
    }

    fn format(&self) -> Format {
        self.settings.format
    }
}

/// `path` without leading or trailing slashes and spaces (Vault's `sanitizePath`).
fn sanitize(path: &str) -> String {
    path.trim().trim_matches('/').to_string()
}

/// `path` sanitised, with one trailing slash (Vault's `ensureTrailingSlash`).
fn with_trailing_slash(path: &str) -> String {
    format!("{}/", sanitize(path))
}

/// Prints one line on stdout. A closed pipe (`| head`) is not an error worth a panic.
fn say(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// Prints one line on stderr (warnings; errors are printed by the caller of [`run`]).
fn warn(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Prints an answer in the chosen format: the warnings on stderr then the key/value table,
/// or the whole answer as JSON.
fn print_secret(secret: &Value, format: Format) {
    match format {
        f @ (Format::Json | Format::Yaml) => say(&output::render(secret, f)),
        Format::Table => {
            if let Some(w) = output::warnings(secret) {
                warn(&w);
            }
            if let Some(t) = output::secret_table(secret) {
                say(&t);
            }
        }
    }
}

/// `-field=NAME`: prints that field alone, raw. Like Vault, no newline is added when stdout
/// is not a terminal, so `$(authmount ... -field=token)` and pipes get the bare value.
///
/// Errors (local, as Vault's): the field is not in the answer.
fn print_field(secret: &Value, field: &str, format: Format) -> Result<(), Failure> {
    let value = output::secret_field(secret, field)
        .ok_or_else(|| Failure::Local(format!("Field {field:?} not present in secret")))?;
    print_raw(&output::raw_field(&value, format));
    Ok(())
}

fn print_raw(text: &str) {
    let mut stdout = std::io::stdout();
    if stdout.is_terminal() {
        let _ = writeln!(stdout, "{text}");
    } else {
        let _ = write!(stdout, "{text}");
    }
    let _ = stdout.flush();
}

/// Reads all of stdin. Errors (local): stdin cannot be read.
fn read_stdin() -> Result<String, Failure> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text)
        .map_err(|e| Failure::Local(format!("Error reading stdin: {e}")))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_sanitised_like_vaults() {
        assert_eq!(sanitize("/auth/jwt/role/demo/"), "auth/jwt/role/demo");
        assert_eq!(with_trailing_slash("/my-path"), "my-path/");
        assert_eq!(with_trailing_slash("team/a/jwt//"), "team/a/jwt/");
    }
}
