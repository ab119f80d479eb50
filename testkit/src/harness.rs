//! A dev core driven without HTTP: `Request` in, `Reply` out, for tests of the rules
//! themselves (the HTTP edge has its own tests through [`TestServer`](crate::TestServer)).

use std::sync::Arc;

use authmount_framework::{Clock, Core, Operation, Reply, Request};
use serde_json::{json, Value};

use crate::clock::random_hex;

/// A dev core (in-memory storage, unsealed, default registry: `jwt`, `oidc`) with a fresh
/// root token, called directly.
pub struct InProcess {
    /// The core.
    pub core: Arc<Core>,
    /// Its root token.
    pub root: String,
}

impl InProcess {
    /// A core on the system clock.
    pub async fn start() -> InProcess {
        InProcess::start_on(Clock::system()).await
    }

    /// A core reading `clock` (a [`Clock::manual`] the test advances instead of sleeping).
    pub async fn start_on(clock: Clock) -> InProcess {
        let root = format!("root-{}", random_hex());
        let (core, _) =
            authmount_server::dev_core_on(authmount_server::default_registry(), &root, clock)
                .await
                .expect("dev core");
        InProcess { core, root }
    }

    /// `op` on `path` with `body` as its data and `token` (if any); the core's reply.
    pub async fn call(&self, op: Operation, path: &str, token: Option<&str>, body: Value) -> Reply {
        let mut request = Request::new(op, path).with_data(body);
        if let Some(token) = token {
            request = request.with_token(token);
        }
        self.core.handle(request).await
    }

    /// Writes `path` with the root token, asserting a 2xx.
    pub async fn write_ok(&self, path: &str, body: Value) {
        let reply = self
            .call(Operation::Update, path, Some(&self.root), body)
            .await;
        assert!(reply.status < 300, "{path}: {:?}", reply.body);
    }

    /// `auth/<mount>/login {"role", "jwt"}`, no token.
    pub async fn login(&self, mount: &str, role: &str, jwt: &str) -> Reply {
        self.call(
            Operation::Update,
            &format!("auth/{mount}/login"),
            None,
            json!({"role": role, "jwt": jwt}),
        )
        .await
    }
}
