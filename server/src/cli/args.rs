//! The grammar of the command line, as clap types: Vault's commands, flags and positional
//! arguments, with Vault's flag names (`-path`, `-default-lease-ttl`, `-format`, `-field`).
//!
//! Parsing only: nothing here talks to a server. Values that have a type (durations, output
//! formats) are parsed here, so a bad one is a usage error (exit 1) before any request.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// authmount: a Vault-compatible JWT/OIDC auth server, and a client in Vault's grammar.
///
/// Flags take one dash or two (`-path=x`, `--path=x`). Client commands read VAULT_ADDR,
/// VAULT_TOKEN, VAULT_CACERT, VAULT_SKIP_VERIFY and VAULT_FORMAT, and find the token of the
/// last `authmount login` in ~/.vault-token.
#[derive(Debug, Parser)]
#[command(name = "authmount", version, subcommand_required = true)]
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
    /// Enable, disable, list and tune auth methods.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Write data to a path: `authmount write auth/jwt/role/demo ttl=1h policies=webapps`.
    #[command(long_about = WRITE_ABOUT)]
    Write(WriteArgs),
    /// Read data from a path: `authmount read auth/jwt/role/demo`.
    Read(ReadArgs),
    /// Show the help of a path, from its backend's path table: `authmount path-help auth/jwt/role/demo`.
    PathHelp(PathHelpArgs),
    /// List the keys under a path: `authmount list auth/jwt/role`.
    List(ListArgs),
    /// Delete the data at a path: `authmount delete auth/jwt/role/demo`.
    Delete(DeleteArgs),
    /// Log in and store the token in ~/.vault-token.
    #[command(long_about = LOGIN_ABOUT)]
    Login(LoginArgs),
    /// Look up, renew and revoke tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Write, read, list and delete ACL policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Operator tasks: `authmount operator init`, `operator unseal`, `operator seal`.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Show the seal status (`GET sys/seal-status`); exit status 0 unsealed, 2 sealed.
    Status(StatusArgs),
    /// Unwrap a response-wrapping token once (`PUT sys/wrapping/unwrap`) and print what it
    /// wrapped: `authmount unwrap TOKEN`, or the current token when TOKEN is omitted.
    Unwrap(UnwrapArgs),
}

/// `authmount unwrap [options] [TOKEN]`.
#[derive(Debug, Args)]
pub struct UnwrapArgs {
    /// The wrapping token [default: the current token]
    #[arg(value_name = "TOKEN")]
    pub token: Option<String>,
    /// Print only this field, raw.
    #[arg(long, value_name = "NAME")]
    pub field: Option<String>,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount operator ...`.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Initialise a server's storage once and print its initial root token
    /// (`PUT sys/init`): `authmount operator init -format=json`.
    Init(OperatorInitArgs),
    /// Give one unseal key (`PUT sys/unseal`): `authmount operator unseal KEY`, or the key
    /// on stdin (keeps it out of the shell history); `-reset` forgets the keys given.
    Unseal(OperatorUnsealArgs),
    /// Seal the server (`PUT sys/seal`; needs sudo): every request then answers 503 until
    /// it is unsealed.
    Seal(OperatorSealArgs),
    /// Save or restore a snapshot of the whole store (`sys/storage/raft/snapshot`; needs
    /// sudo): `authmount operator snapshot save FILE`, `... restore [-force] FILE`.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

/// `authmount operator snapshot ...`.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Write a consistent snapshot of the server's store to FILE (still sealed: useless
    /// without the seal's keys). The server goes on serving meanwhile.
    Save(SnapshotSaveArgs),
    /// Replace the server's whole store with the snapshot in FILE, at once. Only a snapshot
    /// of this same server is accepted unless `-force` is given.
    Restore(SnapshotRestoreArgs),
}

/// `authmount operator snapshot save FILE`.
#[derive(Debug, Args)]
pub struct SnapshotSaveArgs {
    /// Where to write the snapshot (replaced when it exists; written whole or not at all).
    pub file: std::path::PathBuf,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount operator snapshot restore [-force] FILE`.
#[derive(Debug, Args)]
pub struct SnapshotRestoreArgs {
    /// Install a snapshot made by another server (`sys/storage/raft/snapshot-force`); this
    /// server is then sealed until it gets that server's unseal keys or static key.
    #[arg(long)]
    pub force: bool,
    /// Restore OFFLINE into the storage this server config file names, with no server
    /// running on it (needs `-force`: the origin cannot be checked without the root key).
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// The snapshot file.
    pub file: std::path::PathBuf,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount operator init [options]`.
#[derive(Debug, Args)]
pub struct OperatorInitArgs {
    /// Number of unseal keys to make (Shamir seal only).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub key_shares: i64,
    /// Number of unseal keys needed to unseal (Shamir seal only).
    #[arg(long, value_name = "T", default_value_t = 3)]
    pub key_threshold: i64,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount operator unseal [-reset] [KEY]`.
#[derive(Debug, Args)]
pub struct OperatorUnsealArgs {
    /// Forget the unseal keys given so far.
    #[arg(long)]
    pub reset: bool,
    /// The unseal key (hex or base64); read from stdin when omitted or `-`.
    pub key: Option<String>,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount operator seal`.
#[derive(Debug, Args)]
pub struct OperatorSealArgs {
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

const WRITE_ABOUT: &str = "\
Write data to a path: `authmount write auth/jwt/role/demo ttl=1h policies=webapps`.

Data is given as K=V pairs, as Vault's CLI takes them:
  k=v          a string
  k=v k=w      a repeated key becomes a list [\"v\", \"w\"]
  k=@file      the contents of a file (a literal leading @ is written \\@)
  k=-          the contents of stdin
  k='{\"a\":\"b\"}'  a JSON object or array is sent as JSON (maps such as bound_claims)
  -            a JSON object read from stdin, merged into the body
  @file.json   a JSON object read from a file, merged into the body

A write that answers with a login (auth/<mount>/login) prints the token table.";

const LOGIN_ABOUT: &str = "\
Log in and store the token in ~/.vault-token (mode 0600), where later commands find it.

  authmount login TOKEN                                   check a token and store it
  authmount login -                                       the same, reading the token from stdin
  authmount login -method=jwt role=demo jwt=eyJ...        log in at auth/jwt/login
  authmount login -method=jwt -path=my-path role=demo jwt=@token.jwt

VAULT_TOKEN, when set, wins over the stored token.";

/// `authmount server` flags (Vault's names).
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server config file (HCL: storage, listener, log_level, lease TTLs, audit). Without
    /// it: SQLite in the data directory, 127.0.0.1:8200, initialised on first start. With
    /// -dev: a file of `unsafe_allow_api_audit_creation` and `audit` blocks only.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the SQLite file goes when no config file is given
    /// [env: AUTHMOUNT_DATA_DIR] [default: ~/.local/share/authmount]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The address to listen on, overriding the config file's listener [default: 127.0.0.1:8200].
    #[arg(long, value_name = "ADDR", conflicts_with = "dev")]
    pub listen_address: Option<String>,
    /// Dev mode: in-memory storage, a root token printed at start.
    #[arg(long)]
    pub dev: bool,
    /// The root token's id in dev mode (random when omitted).
    #[arg(long, value_name = "ID")]
    pub dev_root_token_id: Option<String>,
    /// Address to listen on in dev mode.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8200")]
    pub dev_listen_address: String,
    /// Log level (trace, debug, info, warn, error) [default: the config's, else info];
    /// `RUST_LOG` wins when set.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log format: standard or json [env: AUTHMOUNT_LOG_FORMAT] [default: the config's
    /// log_format, else standard]
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
}

/// Flags every client command takes: where the server is, how to trust it, how to print.
#[derive(Debug, Clone, Default, Args)]
pub struct CommonFlags {
    /// Address of the server [env: VAULT_ADDR] [default: http://127.0.0.1:8200]
    #[arg(long, value_name = "URL", help_heading = "HTTP Options")]
    pub address: Option<String>,
    /// PEM file of the CA certificates that sign the server's certificate; only these are
    /// trusted [env: VAULT_CACERT]
    #[arg(long, value_name = "FILE", help_heading = "HTTP Options")]
    pub ca_cert: Option<PathBuf>,
    /// Do not verify the server's TLS certificate (insecure) [env: VAULT_SKIP_VERIFY]
    #[arg(long, help_heading = "HTTP Options")]
    pub tls_skip_verify: bool,
    /// Output format: table or json [env: VAULT_FORMAT] [default: table]
    #[arg(long, value_name = "FORMAT", help_heading = "Output Options")]
    pub format: Option<String>,
    /// Ask the server to response-wrap its answer for this long (e.g. 5m): the answer is a
    /// wrapping token to give to whoever runs `authmount unwrap` [env: VAULT_WRAP_TTL]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "HTTP Options")]
    pub wrap_ttl: Option<i64>,
}

/// `authmount auth ...`.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Enable an auth method: `authmount auth enable -path=my-path jwt`.
    Enable(AuthEnableArgs),
    /// Disable the auth method at a path (revokes its tokens): `authmount auth disable my-path`.
    Disable(AuthDisableArgs),
    /// List the enabled auth methods.
    List(AuthListArgs),
    /// Tune an auth method's lease TTLs or description: `authmount auth tune -max-lease-ttl=2h jwt`.
    Tune(AuthTuneArgs),
}

/// `authmount auth enable [options] TYPE`.
#[derive(Debug, Args)]
pub struct AuthEnableArgs {
    /// The auth method's type, e.g. jwt or oidc.
    #[arg(value_name = "TYPE")]
    pub kind: String,
    /// Where to enable it, under auth/ [default: the TYPE]
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// Free text shown by `auth list`.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    #[command(flatten)]
    /// The tuning flags.
    pub tuning: TuneFlags,
    /// Mark the mount local (kept and shown; there is no replication).
    #[arg(long)]
    pub local: bool,
    /// Mark the mount seal-wrapped (kept and shown).
    #[arg(long)]
    pub seal_wrap: bool,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// The tunable settings shared by `auth enable` and `auth tune`.
#[derive(Debug, Clone, Default, Args)]
pub struct TuneFlags {
    /// Default TTL of the tokens it issues, e.g. 30m or 3600; a negative value means the
    /// system default
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, allow_hyphen_values = true)]
    pub default_lease_ttl: Option<i64>,
    /// Longest TTL its tokens may reach, e.g. 24h; a negative value means the system default
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, allow_hyphen_values = true)]
    pub max_lease_ttl: Option<i64>,
    /// Token type: default-service, default-batch, service or batch.
    #[arg(long, value_name = "TYPE")]
    pub token_type: Option<String>,
}

/// `authmount auth disable [options] PATH`.
#[derive(Debug, Args)]
pub struct AuthDisableArgs {
    /// The auth method's path, e.g. my-path.
    #[arg(value_name = "PATH")]
    pub path: String,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount auth list [options]`.
#[derive(Debug, Args)]
pub struct AuthListArgs {
    /// Show every column (TTLs, token type, replication, UUID, ...).
    #[arg(long)]
    pub detailed: bool,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount auth tune [options] PATH`.
#[derive(Debug, Args)]
pub struct AuthTuneArgs {
    /// The auth method's path, e.g. my-path.
    #[arg(value_name = "PATH")]
    pub path: String,
    /// New description.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    #[command(flatten)]
    /// The tuning flags.
    pub tuning: TuneFlags,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount write [options] PATH [K=V...]`.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// The path, e.g. auth/jwt/role/demo.
    #[arg(value_name = "PATH")]
    pub path: String,
    /// The data: K=V pairs (see above).
    #[arg(value_name = "K=V")]
    pub data: Vec<String>,
    /// Write even with no data.
    #[arg(short, long)]
    pub force: bool,
    /// Print only this field of the answer, raw.
    #[arg(long, value_name = "NAME")]
    pub field: Option<String>,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount read [options] PATH`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// The path, e.g. auth/jwt/config.
    #[arg(value_name = "PATH")]
    pub path: String,
    /// Print only this field, raw.
    #[arg(long, value_name = "NAME")]
    pub field: Option<String>,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount path-help [options] PATH`.
#[derive(Debug, Args)]
pub struct PathHelpArgs {
    /// The path, e.g. auth/jwt/config, or a mount (auth/jwt/) for all its routes.
    #[arg(value_name = "PATH")]
    pub path: String,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount list [options] PATH`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The path, e.g. auth/jwt/role.
    #[arg(value_name = "PATH")]
    pub path: String,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount delete [options] PATH`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The path, e.g. auth/jwt/role/demo.
    #[arg(value_name = "PATH")]
    pub path: String,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount login [options] [TOKEN | K=V...]`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// For the token method: the token, or - to read it from stdin. For other methods: the
    /// login data as K=V pairs (role=demo jwt=...), with write's syntax.
    #[arg(value_name = "TOKEN | K=V")]
    pub args: Vec<String>,
    /// The auth method's type: token, or the type of an enabled method such as jwt.
    #[arg(long, value_name = "TYPE", default_value = "token")]
    pub method: String,
    /// Where the method is enabled, under auth/ [default: the method's type]
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// Do not store the token in ~/.vault-token.
    #[arg(long)]
    pub no_store: bool,
    /// Do not print anything (the token is still stored).
    #[arg(long)]
    pub no_print: bool,
    /// Print only the token, and do not store it (same as -field=token -no-store).
    #[arg(long)]
    pub token_only: bool,
    /// Print only this field of the token table, raw.
    #[arg(long, value_name = "NAME")]
    pub field: Option<String>,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Show a token's properties: the current one, or TOKEN.
    Lookup(TokenLookupArgs),
    /// Renew a token's lease: the current one, or TOKEN.
    Renew(TokenRenewArgs),
    /// Revoke TOKEN, or the current token with -self.
    Revoke(TokenRevokeArgs),
    /// Show what a token may do on paths: the current one, or TOKEN.
    Capabilities(TokenCapabilitiesArgs),
    /// Create a token: a child of the current token, or an orphan with -orphan.
    Create(TokenCreateArgs),
}

/// `authmount token capabilities [options] [TOKEN] PATH...`.
#[derive(Debug, Args)]
pub struct TokenCapabilitiesArgs {
    /// PATH alone is checked for the current token; TOKEN PATH... for TOKEN (Vault's CLI
    /// takes one PATH; more are checked together).
    #[arg(value_name = "[TOKEN] PATH", required = true, num_args = 1..)]
    pub args: Vec<String>,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount token create [options]`.
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// A policy of the new token; repeat for more [default: the current token's]
    #[arg(long = "policy", value_name = "NAME")]
    pub policies: Vec<String>,
    /// Initial TTL, e.g. 30m (renewals may extend it up to the max TTL).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub ttl: Option<i64>,
    /// Hard limit on the token's lifetime, renewals included, e.g. 24h.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub explicit_max_ttl: Option<i64>,
    /// A periodic token: every renewal gives this TTL (needs sudo).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub period: Option<i64>,
    /// Create the token with no parent (`auth/token/create-orphan`; needs sudo).
    #[arg(long)]
    pub orphan: bool,
    /// Do not attach the default policy.
    #[arg(long)]
    pub no_default_policy: bool,
    /// Whether the token may be renewed: -renewable=false to forbid it.
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub renewable: bool,
    /// The type of token: service or batch [default: service]
    #[arg(long = "type", value_name = "TYPE")]
    pub token_type: Option<String>,
    /// Number of uses of the token; 0 means unlimited.
    #[arg(long, value_name = "N")]
    pub use_limit: Option<i64>,
    /// Name shown in lookups (`token-` is prepended).
    #[arg(long, value_name = "NAME")]
    pub display_name: Option<String>,
    /// Metadata key=value; repeat for more.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_kv_pair)]
    pub metadata: Vec<(String, String)>,
    /// Print only this field of the token table, raw (e.g. token).
    #[arg(long, value_name = "NAME")]
    pub field: Option<String>,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount token lookup [options] [TOKEN]`.
#[derive(Debug, Args)]
pub struct TokenLookupArgs {
    /// The token to look up [default: the current token]; an accessor with -accessor.
    #[arg(value_name = "TOKEN", required_if_eq("accessor", "true"))]
    pub token: Option<String>,
    /// TOKEN is an accessor: look the token up by it (`auth/token/lookup-accessor`).
    #[arg(long)]
    pub accessor: bool,
    /// Print only this field, raw.
    #[arg(long, value_name = "NAME")]
    pub field: Option<String>,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount token renew [options] [TOKEN]`.
#[derive(Debug, Args)]
pub struct TokenRenewArgs {
    /// The token to renew [default: the current token]
    #[arg(value_name = "TOKEN")]
    pub token: Option<String>,
    /// Ask for this TTL from now, e.g. 30m (the server caps it at the max TTL).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub increment: Option<i64>,
    /// Print only this field of the token table, raw.
    #[arg(long, value_name = "NAME")]
    pub field: Option<String>,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount token revoke [options] (TOKEN | -self)`.
#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token to revoke.
    #[arg(
        value_name = "TOKEN",
        required_unless_present = "self_",
        conflicts_with = "self_"
    )]
    pub token: Option<String>,
    /// Revoke the current token.
    #[arg(long = "self", id = "self_")]
    pub self_: bool,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Upload an ACL policy from a file, or from stdin with -: `authmount policy write webapps webapps.hcl`.
    Write(PolicyWriteArgs),
    /// Print an ACL policy.
    Read(PolicyNameArgs),
    /// List the ACL policies.
    List(PolicyListArgs),
    /// Delete an ACL policy.
    Delete(PolicyNameArgs),
}

/// `authmount policy write [options] NAME FILE`.
#[derive(Debug, Args)]
pub struct PolicyWriteArgs {
    /// The policy's name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The policy file (HCL or JSON), or - for stdin.
    #[arg(value_name = "FILE")]
    pub file: String,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount policy read|delete [options] NAME`.
#[derive(Debug, Args)]
pub struct PolicyNameArgs {
    /// The policy's name.
    #[arg(value_name = "NAME")]
    pub name: String,
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// `authmount policy list [options]`.
#[derive(Debug, Args)]
pub struct PolicyListArgs {
    #[command(flatten)]
    /// The flags every client command takes.
    pub common: CommonFlags,
}

/// A `key=value` flag, split at the first `=`. Errors: no `=` (Vault: `missing = in KV
/// pair`).
fn parse_kv_pair(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("missing = in KV pair: {raw:?}"))
}

/// A duration flag in Vault's grammar (`30m`, `1h30m`, `3600`, `2d`), in whole seconds.
fn parse_duration(raw: &str) -> Result<i64, String> {
    authmount_framework::duration::parse_seconds(&serde_json::Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_take_vaults_forms() {
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("3600"), Ok(3600));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert_eq!(parse_duration("-1"), Ok(-1));
        assert!(parse_duration("1hr").is_err());
    }
}
