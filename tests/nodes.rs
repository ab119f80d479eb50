//! Several cores sharing one store behave as one server: the way server nodes share a
//! PostgreSQL database. Driven without HTTP (`Request` in, `Reply` out).

use std::sync::Arc;

use authmount::framework::{Core, InMemory, Operation, Registry, Request, Storage};
use serde_json::json;

fn registry() -> Registry {
    let mut registry = Registry::new();
    authmount::jwt::register(&mut registry);
    registry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_mount_changes_on_two_nodes_are_never_lost() {
    let storage: Arc<dyn Storage> = Arc::new(InMemory::new());
    let a = Arc::new(Core::new(storage.clone(), registry()));
    let b = Arc::new(Core::new(storage, registry()));
    a.dev_init("root").await.expect("root token");
    let enable = |core: Arc<Core>, i: usize| async move {
        let req = Request::new(Operation::Update, format!("sys/auth/m{i}"))
            .with_data(json!({"type": "jwt"}))
            .with_token("root");
        core.handle(req).await.status
    };
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let core = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(enable(core, i))
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("task"), 204);
    }
    let mut token_store = Vec::new();
    for core in [&a, &b] {
        let reply = core
            .handle(Request::new(Operation::Read, "sys/auth").with_token("root"))
            .await;
        let mounts = reply.body.expect("body")["data"]
            .as_object()
            .cloned()
            .expect("data");
        // The 24, and the token store's token/.
        assert_eq!(mounts.len(), 25, "{:?}", mounts.keys().collect::<Vec<_>>());
        token_store.push(mounts["token/"]["accessor"].clone());
    }
    // The built-in mounts are made once per store: both nodes show the same token/.
    assert_eq!(token_store[0], token_store[1]);
    // The same path enabled on both nodes at once: exactly one wins.
    let (x, y) = tokio::join!(enable(a.clone(), 99), enable(b.clone(), 99));
    let mut statuses = [x, y];
    statuses.sort();
    assert_eq!(statuses, [204, 400]);
}
