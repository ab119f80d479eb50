//! The `authmount` binary's entry point: the server (`authmount server -dev
//! [-dev-root-token-id=X] [-dev-listen-address=127.0.0.1:8200]`) and a client in Vault's
//! grammar (`authmount auth enable jwt`, `authmount write auth/jwt/role/demo ...`,
//! `authmount login`).

use std::process::ExitCode;

use crate::cli::{self, Command, ServerArgs};
use crate::config::{AuditConfig, SealConfig, ServerConfig, StorageConfig};
use crate::logging::{self, LogFormat};
use rand::distributions::{Alphanumeric, DistString};

/// Parses the process's arguments and runs the server or the client command they name; the
/// process's exit status (Vault's: 0 success, 1 a local error, 2 a remote error).
pub fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args()) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match cli.command {
        Command::Server(args) => run_server(args),
        client_command => cli::run(client_command),
    }
}

fn run_server(args: ServerArgs) -> ExitCode {
    let result = if args.dev {
        run_dev(&args)
    } else {
        run_durable(&args)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(1)
        }
    }
}

/// `server -dev [-config=FILE]`: in-memory storage, a root token of the given (or a random)
/// id; the file may allow API audit creation and declare audit devices (as with OpenBao).
fn run_dev(args: &ServerArgs) -> std::io::Result<()> {
    init_logging(args, "info", None)?;
    let audit = match &args.config {
        Some(path) => AuditConfig::load_for_dev(path).map_err(std::io::Error::other)?,
        None => AuditConfig::default(),
    };
    let root = args.dev_root_token_id.clone().unwrap_or_else(|| {
        format!(
            "hvs.{}",
            Alphanumeric.sample_string(&mut rand::rngs::OsRng, 24)
        )
    });
    let listener = bind(&args.dev_listen_address)?;
    actix_web::rt::System::new().block_on(async move {
        let (core, unseal_key) = crate::dev_core_and_key(crate::default_registry(), &root)
            .await
            .map_err(to_io)?;
        core.set_audit_rules(audit.rules(args.config.iter().cloned().collect()));
        core.apply_audit_config().await.map_err(to_io)?;
        println!("==> authmount server started in dev mode: all data is kept in memory only.");
        println!();
        println!("    Api Address: http://{}", args.dev_listen_address);
        println!("    Unseal Key:  {unseal_key}");
        println!("    Root Token:  {root}");
        println!();
        println!("    In another shell:");
        println!("    export VAULT_ADDR='http://{}'", args.dev_listen_address);
        println!("    export VAULT_TOKEN='{root}'");
        crate::spawn_token_sweep(core.clone());
        crate::http::server(core, listener)?.await
    })
}

/// `server [-config=FILE]`: durable storage behind the seal. Without a config file: SQLite
/// in the data directory on 127.0.0.1:8200, sealed with a key file beside it, initialised on
/// first start (the root token printed once).
fn run_durable(args: &ServerArgs) -> std::io::Result<()> {
    let config = match &args.config {
        Some(path) => ServerConfig::load(path).map_err(std::io::Error::other)?,
        None => ServerConfig::embedded(
            &args
                .data_dir
                .clone()
                .unwrap_or_else(crate::default_data_dir),
        ),
    };
    let mut config = config;
    if let Some(address) = &args.listen_address {
        config.listener.address = address.clone();
    }
    init_logging(args, &config.log_level, Some(&config.log_format))?;
    // Everything that can be checked without the storage is, before the storage is opened.
    let tls = match &config.listener.tls {
        Some((cert, key)) => Some(crate::http::load_tls(cert, key)?),
        None => None,
    };
    let listener = bind(&config.listener.address)?;
    let scheme = if config.listener.tls.is_some() {
        "https"
    } else {
        "http"
    };
    actix_web::rt::System::new().block_on(async move {
        let core = crate::open_core(&config)
            .await
            .map_err(std::io::Error::other)?;
        core.set_unauthenticated_metrics(config.unauthenticated_metrics_access);
        core.set_audit_rules(
            config
                .audit
                .rules(config.protected_paths(args.config.as_deref())),
        );
        let migrated = core.start().await.map_err(to_io)?;
        println!("==> authmount server started.");
        println!();
        match &config.storage {
            StorageConfig::Sqlite { path, .. } => {
                println!("    Storage:     sqlite ({})", path.display())
            }
            StorageConfig::Postgres { .. } => println!("    Storage:     postgresql"),
        }
        match &config.seal {
            SealConfig::Shamir => println!(
                "    Seal:        shamir (unseal with `authmount operator unseal` after each start)"
            ),
            SealConfig::Static { current_key_id, .. } => {
                println!("    Seal:        static (key id {current_key_id:?})")
            }
            SealConfig::KeyFile(path) => println!(
                "    Seal:        static, key file {} (keep a copy apart from the database)",
                path.display()
            ),
        }
        println!("    Api Address: {scheme}://{}", config.listener.address);
        if migrated > 0 {
            println!();
            println!(
                "    Encrypted in place {migrated} values that an earlier authmount had stored in the clear."
            );
        }
        let mut root_token = None;
        if args.config.is_none() {
            match core.initialize().await {
                Ok(Some(root)) => {
                    println!();
                    println!("    Initialized new storage. Root Token: {root}");
                    println!("    It is shown only now: keep it safe.");
                    root_token = Some(root);
                }
                Ok(None) => {}
                Err(e) => return Err(to_io(e)),
            }
        } else {
            println!("    (new storage? run `authmount operator init` once to initialize it)");
        }
        println!();
        println!("    In another shell:");
        println!(
            "    export VAULT_ADDR='{scheme}://{}'",
            config.listener.address
        );
        if let Some(cert) = config.listener.tls.as_ref().map(|(cert, _)| cert) {
            println!(
                "    export VAULT_CACERT='{}'   # when the certificate is self-signed",
                cert.display()
            );
        }
        match root_token {
            Some(root) => println!("    export VAULT_TOKEN='{root}'"),
            None => println!("    export VAULT_TOKEN=<the root token printed at the first start or by `operator init`>"),
        }
        // A bad `audit` block stops the start (a sealed server applies them once unsealed).
        core.apply_audit_config().await.map_err(to_io)?;
        crate::spawn_token_sweep(core.clone());
        match tls {
            Some(tls) => crate::http::server_tls(core, listener, tls)?.await,
            None => crate::http::server(core, listener)?.await,
        }
    })
}

fn bind(address: &str) -> std::io::Result<std::net::TcpListener> {
    std::net::TcpListener::bind(address)
        .map_err(|e| std::io::Error::other(format!("cannot listen on {address}: {e}")))
}

fn to_io(e: authmount_framework::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Installs the log subscriber: the flag's level, else `config_level`; the format from
/// `-log-format`, `AUTHMOUNT_LOG_FORMAT` or the config's `log_format`.
fn init_logging(
    args: &ServerArgs,
    config_level: &str,
    config_format: Option<&str>,
) -> std::io::Result<()> {
    let format = LogFormat::choose(args.log_format.as_deref(), config_format)
        .map_err(std::io::Error::other)?;
    logging::init(args.log_level.as_deref().unwrap_or(config_level), format);
    Ok(())
}
