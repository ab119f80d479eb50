//! A single-use role (authmount's role field `single_use`) over two `authmount server`
//! processes sharing one PostgreSQL database: a JWT that logged in through one node is
//! refused by the other, and of many logins racing with one JWT over both nodes exactly one
//! gets a token. Runs where `AUTHMOUNT_TEST_POSTGRES_URL` is set (a fresh database per
//! test), and says loudly when skipped.

use authmount_testkit::node::{set_up_jwt, static_seal, Node};
use authmount_testkit::{call_at, random_hex, seed_claims, Binary, Key, TempDir, TestDatabase};
use serde_json::{json, Value};
use tokio::task::JoinSet;

/// The `authmount` binary cargo built for these tests.
const BIN: Binary = Binary::at(env!("CARGO_BIN_EXE_authmount"));

/// Concurrent logins with one JWT per round.
const RACERS: usize = 16;

fn single_use_claims(user: &str) -> Value {
    let mut claims = seed_claims(user);
    claims["jti"] = json!(random_hex());
    claims
}

#[tokio::test]
async fn a_single_use_jwt_logs_in_once_across_two_nodes() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let dir = TempDir::new("single-use");
    let config = db.config(&dir, &db.url, &static_seal(&dir));
    let nodes = [
        Node::start(BIN, &[&config], dir.path()).await,
        Node::start(BIN, &[&config], dir.path()).await,
    ];
    let root = nodes[0].init().await;
    let signer = Key::rsa();
    set_up_jwt(&nodes[0], &root, &signer, json!({"single_use": true})).await;
    let login = |node: &Node, jwt: &str| {
        let body = json!({"role": "demo", "jwt": jwt});
        let (client, base) = (node.client.clone(), node.base.clone());
        async move { call_at(&client, &base, "POST", "auth/jwt/login", None, Some(body)).await }
    };

    // One after the other: node A takes it, node B refuses it, and so does A.
    let jwt = signer.jwt(&single_use_claims("alice"));
    let (status, body) = login(&nodes[0], &jwt).await;
    assert_eq!(status, 200, "{body}");
    for node in [&nodes[1], &nodes[0]] {
        let (status, body) = login(node, &jwt).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["errors"][0]
                .as_str()
                .unwrap_or_default()
                .starts_with("token already used"),
            "{body}"
        );
    }

    // Racing: exactly one of RACERS logins over both nodes gets in, every round.
    let mut winners = Vec::new();
    for round in 0..5 {
        let jwt = signer.jwt(&single_use_claims(&format!("racer{round}")));
        let mut set = JoinSet::new();
        for i in 0..RACERS {
            set.spawn(login(&nodes[i % 2], &jwt));
        }
        let mut ok = 0;
        while let Some(done) = set.join_next().await {
            let (status, body) = done.expect("login task");
            assert!(status == 200 || status == 400, "{status} {body}");
            ok += usize::from(status == 200);
        }
        winners.push(ok);
    }
    assert!(
        winners.iter().all(|&n| n == 1),
        "logins in per round: {winners:?}"
    );
}
