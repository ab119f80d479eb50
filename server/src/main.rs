//! The `authmount` binary: the server (`authmount server -dev [-dev-root-token-id=X]
//! [-dev-listen-address=127.0.0.1:8200]`) and a client in Vault's grammar
//! (`authmount auth enable jwt`, `authmount write auth/jwt/role/demo ...`, `authmount login`).
//! Everything is in the library ([`authmount_server::main`]).

fn main() -> std::process::ExitCode {
    authmount_server::main()
}
