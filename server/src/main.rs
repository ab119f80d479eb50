//! The `authmount` binary: the server (`authmount server -dev [-dev-root-token-id=X]
//! [-dev-listen-address=127.0.0.1:8200]`) and a client in Vault's grammar
//! (`authmount auth enable jwt`, `authmount write auth/jwt/role/demo ...`, `authmount login`).

use std::process::ExitCode;

use authmount_server::cli::{self, Command, ServerArgs};
use rand::distributions::{Alphanumeric, DistString};

fn main() -> ExitCode {
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
    init_logging(&args.log_level);
    if !args.dev {
        eprintln!(
            "Error: only dev mode is available so far (durable storage is not built yet); run `authmount server -dev`"
        );
        return ExitCode::from(1);
    }
    let root = args.dev_root_token_id.clone().unwrap_or_else(|| {
        format!(
            "hvs.{}",
            Alphanumeric.sample_string(&mut rand::rngs::OsRng, 24)
        )
    });
    let listener = match std::net::TcpListener::bind(&args.dev_listen_address) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("Error: cannot listen on {}: {e}", args.dev_listen_address);
            return ExitCode::from(1);
        }
    };
    let result = actix_web::rt::System::new().block_on(async move {
        let core = authmount_server::dev_core(&root)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        println!("==> authmount server started in dev mode: all data is kept in memory only.");
        println!();
        println!("    Api Address: http://{}", args.dev_listen_address);
        println!("    Root Token:  {root}");
        println!();
        println!("    export VAULT_ADDR='http://{}'", args.dev_listen_address);
        authmount_server::http::server(core, listener)?.await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .init();
}
