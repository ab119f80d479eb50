//! authmount inside a program of your own: the JWT method and a custom one (the API keys of
//! `custom_backend.rs`) on storage of your choosing, driven directly (a `Request` in, a
//! `Reply` out: what you need to put it behind any web stack) and served over HTTP with
//! actix-web, both on the same `Core`.
//!
//! ```sh
//! cargo run --example embed                  # log in without HTTP, then over HTTP; exit
//! cargo run --example embed -- --serve       # ... then keep serving (Ctrl-C to stop)
//! cargo run --example embed -- --serve --listen=127.0.0.1:8200
//! ```

#[path = "custom_backend.rs"]
#[allow(dead_code)] // its own `main` is not ours
mod custom_backend;

use std::net::TcpListener;
use std::sync::Arc;

use authmount::framework::{Core, InMemory, Operation, Registry, Reply, Request, Storage};
use serde_json::{json, Value};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let serve = args.iter().any(|a| a == "--serve");
    let listen = args
        .iter()
        .find_map(|a| a.strip_prefix("--listen="))
        .unwrap_or("127.0.0.1:0")
        .to_string();
    // actix-web's runtime (tokio underneath) runs both the direct calls and the server.
    actix_web::rt::System::new().block_on(run(serve, &listen))
}

async fn run(serve: bool, listen: &str) -> std::io::Result<()> {
    // 1. The backend types this program can mount: the built-in JWT method and our own.
    let mut registry = Registry::new();
    authmount::jwt::register(&mut registry);
    custom_backend::register(&mut registry);

    // 2. Storage of our choice: anything that implements `Storage`. In memory here.
    let storage: Arc<dyn Storage> = Arc::new(InMemory::new());
    let core = Arc::new(Core::new(storage, registry));
    let root = format!("embed-root-{}", hex::encode(rand::random::<[u8; 12]>()));
    core.dev_init(&root).await.map_err(io)?;

    // 3. Without HTTP: mount, create a key and log in by calling the core.
    for (path, kind) in [("jwt", "jwt"), ("api-keys", custom_backend::TYPE)] {
        let reply = call(
            &core,
            Operation::Update,
            &format!("sys/auth/{path}"),
            Some(&root),
            json!({"type": kind}),
        )
        .await;
        println!("[direct] enable {kind} at {path}: {}", reply.status);
    }
    let reply = call(
        &core,
        Operation::Update,
        "auth/api-keys/keys/build-bot",
        Some(&root),
        json!({"policies": ["builds"], "ttl": "30m"}),
    )
    .await;
    let key = body(&reply)["data"]["key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    println!("[direct] create key build-bot: {}", reply.status);
    let reply = call(
        &core,
        Operation::Update,
        "auth/api-keys/login",
        None,
        json!({"key": key}),
    )
    .await;
    let auth = &body(&reply)["auth"];
    println!(
        "[direct] login: {} policies={} lease_duration={}s",
        reply.status, auth["policies"], auth["lease_duration"]
    );

    // 4. The same core over HTTP with actix-web.
    let listener = TcpListener::bind(listen)?;
    let addr = listener.local_addr()?;
    let server = authmount_server::http::server(core.clone(), listener)?;
    let handle = server.handle();
    let running = actix_web::rt::spawn(server);
    println!("[http] serving http://{addr}/v1/");

    let client = reqwest::Client::new();
    let resp = client
        .post(format!("http://{addr}/v1/auth/api-keys/login"))
        .json(&json!({"key": key}))
        .send()
        .await
        .map_err(io)?;
    let status = resp.status().as_u16();
    let login: Value = resp.json().await.map_err(io)?;
    println!(
        "[http] login with the same key: {status} policies={}",
        login["auth"]["policies"]
    );
    let token = login["auth"]["client_token"].as_str().unwrap_or_default();
    let reply = call(
        &core,
        Operation::Read,
        "auth/token/lookup-self",
        Some(token),
        json!({}),
    )
    .await;
    println!(
        "[direct] lookup-self of the token issued over HTTP: {} display_name={}",
        reply.status,
        body(&reply)["data"]["display_name"]
    );

    if !serve {
        handle.stop(true).await;
        return running.await.map_err(io)?;
    }
    println!();
    println!("    export VAULT_ADDR='http://{addr}' VAULT_TOKEN='{root}'");
    println!("    curl -s -X POST -d '{{\"key\":\"{key}\"}}' $VAULT_ADDR/v1/auth/api-keys/login");
    println!(
        "    curl -s -H \"X-Vault-Token: $VAULT_TOKEN\" $VAULT_ADDR/v1/sys/internal/specs/openapi"
    );
    running.await.map_err(io)?
}

/// One call into the core, as another web stack would make it.
async fn call(core: &Core, op: Operation, path: &str, token: Option<&str>, data: Value) -> Reply {
    let mut req = Request::new(op, path).with_data(data);
    if let Some(token) = token {
        req = req.with_token(token);
    }
    core.handle(req).await
}

fn body(reply: &Reply) -> &Value {
    static NULL: Value = Value::Null;
    reply.body.as_ref().unwrap_or(&NULL)
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}
