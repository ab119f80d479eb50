//! Shared state stays right when several `authmount server` processes share one PostgreSQL
//! database and requests race on it: every read-modify-write is atomic in storage, so
//! - a token with `num_uses = N` serves exactly N requests, however they are spread over the
//!   nodes;
//! - the first logins of one new user through both nodes at once make one entity and one
//!   alias;
//! - concurrent updates of several groups naming one entity lose no membership (on one node
//!   and on two);
//! - two creates of one group name make one group; one group alias name on a mount is
//!   taken once; creates of one entity name make one entity, and of one entity alias one
//!   alias;
//! - an external group's read lists the entities that logged in through its group alias;
//! - the same holds on a store under a Shamir seal (every value encrypted by each node's
//!   barrier), with a node sealed and unsealed again in between.
//!
//! Each test runs several rounds and reports every round's count when one is wrong. They
//! run where `AUTHMOUNT_TEST_POSTGRES_URL` names a database whose role may create databases
//! (`.ci/run` sets it up; each test uses a fresh database), and say loudly when skipped.

use std::collections::BTreeSet;

use authmount_testkit::node::{set_up_jwt, static_seal, Node};
use authmount_testkit::{call_at, seed_claims, Binary, Key, TempDir, TestDatabase};
use serde_json::{json, Value};
use tokio::task::JoinSet;

/// The `authmount` binary cargo built for these tests.
const BIN: Binary = Binary::at(env!("CARGO_BIN_EXE_authmount"));

/// Concurrent requests per round in the token-use tests.
const REQUESTS: usize = 40;

/// Server nodes on one fresh PostgreSQL database, initialised, with the JWT method at `jwt`.
struct Cluster {
    nodes: Vec<Node>,
    root: String,
    /// The one unseal key of a cluster under a Shamir seal.
    unseal_key: Option<String>,
    signer: Key,
    _dir: TempDir,
    db: TestDatabase,
}

impl Cluster {
    /// Nodes under a static seal (each unseals itself at start).
    async fn start(nodes: usize) -> Option<Cluster> {
        Cluster::start_with(nodes, false).await
    }

    /// Nodes under a Shamir seal: they start sealed; `sys/init` on the first makes one
    /// unseal key, which then unseals every node.
    async fn start_with(nodes: usize, shamir: bool) -> Option<Cluster> {
        let db = TestDatabase::create().await?;
        let dir = TempDir::new("shared-state");
        let seal = if shamir {
            String::new()
        } else {
            static_seal(&dir)
        };
        let config = db.config(&dir, &db.url, &seal);
        let mut started = Vec::new();
        for _ in 0..nodes {
            started.push(Node::start(BIN, &[&config], dir.path()).await);
        }
        let (root, unseal_key) = if shamir {
            let init = started[0]
                .init_with(json!({"secret_shares": 1, "secret_threshold": 1}))
                .await;
            let key = init["keys"][0].as_str().expect("unseal key").to_string();
            for node in &started {
                assert_eq!(node.unseal(&key).await["sealed"], json!(false));
            }
            let root = init["root_token"].as_str().expect("root_token");
            (root.to_string(), Some(key))
        } else {
            (started[0].init().await, None)
        };
        let signer = Key::rsa();
        set_up_jwt(&started[0], &root, &signer, json!({})).await;
        Some(Cluster {
            nodes: started,
            root,
            unseal_key,
            signer,
            _dir: dir,
            db,
        })
    }

    /// The node that serves request number `i` (round robin).
    fn node(&self, i: usize) -> &Node {
        &self.nodes[i % self.nodes.len()]
    }

    /// Runs `requests` at once, request `i` on node `i % nodes`; answers in request order.
    async fn race(
        &self,
        requests: Vec<(&str, String, Option<String>, Option<Value>)>,
    ) -> Vec<(u16, Value)> {
        let mut set = JoinSet::new();
        for (i, (method, path, token, body)) in requests.into_iter().enumerate() {
            let (client, base) = (self.node(i).client.clone(), self.node(i).base.clone());
            let method = method.to_string();
            set.spawn(async move {
                (
                    i,
                    call_at(&client, &base, &method, &path, token.as_deref(), body).await,
                )
            });
        }
        let mut answers = Vec::new();
        while let Some(done) = set.join_next().await {
            answers.push(done.expect("request task"));
        }
        answers.sort_by_key(|(i, _)| *i);
        answers.into_iter().map(|(_, answer)| answer).collect()
    }

    async fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        self.nodes[0].ok(method, path, &self.root, body).await
    }

    async fn read(&self, path: &str) -> Value {
        let (status, body) = self.nodes[0]
            .call("GET", path, Some(&self.root), None)
            .await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn list(&self, path: &str) -> Vec<String> {
        let (status, body) = self.nodes[0]
            .call("LIST", path, Some(&self.root), None)
            .await;
        match status {
            404 => vec![],
            200 => serde_json::from_value(body["data"]["keys"].clone()).expect("keys"),
            _ => panic!("LIST {path}: {status} {body}"),
        }
    }

    /// A new internal or external group with these policies; its id.
    async fn group(&self, name: &str, kind: &str, policies: &[&str]) -> String {
        let body = self
            .ok(
                "POST",
                "identity/group",
                json!({"name": name, "type": kind, "policies": policies}),
            )
            .await;
        body["data"]["id"].as_str().expect("group id").to_string()
    }

    async fn jwt_accessor(&self) -> String {
        let mounts = self.read("sys/auth").await;
        mounts["data"]["jwt/"]["accessor"]
            .as_str()
            .expect("accessor")
            .to_string()
    }

    /// Logs `user` in through node `i` and returns the login answer's `auth`.
    async fn login(&self, i: usize, user: &str) -> Value {
        let (status, body) = self.node(i).login(&self.signer, user).await;
        assert_eq!(status, 200, "login of {user}: {body}");
        body["auth"].clone()
    }
}

/// How many of `REQUESTS` concurrent requests over all nodes a token with `num_uses` serves,
/// per round.
async fn uses_served(cluster: &Cluster, num_uses: i64, rounds: usize) -> Vec<usize> {
    let mut served = Vec::new();
    for _ in 0..rounds {
        let created = cluster
            .ok(
                "POST",
                "auth/token/create",
                json!({"policies": ["default"], "num_uses": num_uses, "ttl": "10m"}),
            )
            .await;
        let token = created["auth"]["client_token"].as_str().expect("token");
        let requests = (0..REQUESTS)
            .map(|_| {
                (
                    "GET",
                    "auth/token/lookup-self".to_string(),
                    Some(token.to_string()),
                    None,
                )
            })
            .collect();
        let answers = cluster.race(requests).await;
        for (status, body) in &answers {
            assert!(*status == 200 || *status == 403, "{status} {body}");
        }
        served.push(answers.iter().filter(|(s, _)| *s == 200).count());
        let (status, _) = cluster
            .node(1)
            .call("GET", "auth/token/lookup-self", Some(token), None)
            .await;
        assert_eq!(status, 403, "a used-up token is dead on every node");
    }
    served
}

#[tokio::test]
async fn a_use_limited_token_serves_exactly_its_uses_over_two_nodes() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    let once = uses_served(&cluster, 1, 8).await;
    let thrice = uses_served(&cluster, 3, 6).await;
    assert!(
        once.iter().all(|&n| n == 1) && thrice.iter().all(|&n| n == 3),
        "successes per round: num_uses=1 {once:?}, num_uses=3 {thrice:?}"
    );
}

#[tokio::test]
async fn one_new_user_logging_in_on_two_nodes_at_once_gets_one_entity_and_one_alias() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    const ROUNDS: usize = 8;
    const LOGINS: usize = 8;
    let mut entities_per_round = Vec::new();
    for round in 0..ROUNDS {
        let user = format!("racer-{round}");
        let requests = (0..LOGINS)
            .map(|_| {
                let jwt = cluster.signer.jwt(&seed_claims(&user));
                (
                    "POST",
                    "auth/jwt/login".to_string(),
                    None,
                    Some(json!({"role": "demo", "jwt": jwt})),
                )
            })
            .collect();
        let answers = cluster.race(requests).await;
        let mut ids = BTreeSet::new();
        for (status, body) in &answers {
            assert_eq!(*status, 200, "{body}");
            ids.insert(
                body["auth"]["entity_id"]
                    .as_str()
                    .expect("entity_id")
                    .to_string(),
            );
        }
        entities_per_round.push(ids.len());
    }
    // What the identity store holds: one entity per user, each with one alias.
    let entity_ids = cluster.list("identity/entity/id").await;
    let mut names = Vec::new();
    for id in &entity_ids {
        let entity = cluster.read(&format!("identity/entity/id/{id}")).await;
        for alias in entity["data"]["aliases"].as_array().expect("aliases") {
            names.push(alias["name"].as_str().expect("alias name").to_string());
        }
    }
    names.sort();
    let expected: Vec<String> = (0..ROUNDS).map(|r| format!("racer-{r}")).collect();
    assert!(
        entities_per_round.iter().all(|&n| n == 1) && entity_ids.len() == ROUNDS && names == expected,
        "entity ids answered per round: {entities_per_round:?}; {} entities stored; aliases: {names:?}",
        entity_ids.len()
    );
}

/// Per round: a new user logs in, then 8 internal groups are updated at once to list its
/// entity (spread over the cluster's nodes), which drops the previous round's entity from
/// them. Returns, per round: how many of the 8 groups the entity read lists, how many of
/// their policies a new login of the user gets, and how many groups the previous round's
/// entity is still listed in (right: `(8, 8, 0)`).
async fn memberships_kept(cluster: &Cluster, rounds: usize) -> Vec<(usize, usize, usize)> {
    const GROUPS: usize = 8;
    let mut groups = Vec::new();
    for g in 0..GROUPS {
        groups.push(
            cluster
                .group(&format!("internal-{g}"), "internal", &[&format!("p{g}")])
                .await,
        );
    }
    let mut kept = Vec::new();
    let mut previous: Option<String> = None;
    for round in 0..rounds {
        let user = format!("member-{round}");
        let entity = cluster.login(0, &user).await["entity_id"]
            .as_str()
            .expect("entity_id")
            .to_string();
        let requests = groups
            .iter()
            .map(|id| {
                (
                    "POST",
                    format!("identity/group/id/{id}"),
                    Some(cluster.root.clone()),
                    Some(json!({"member_entity_ids": [entity]})),
                )
            })
            .collect();
        for (status, body) in cluster.race(requests).await {
            // An update of a group answers 204, as OpenBao does.
            assert_eq!(status, 204, "{body}");
        }
        let read = cluster.read(&format!("identity/entity/id/{entity}")).await;
        let listed: BTreeSet<String> =
            serde_json::from_value(read["data"]["group_ids"].clone()).expect("group_ids");
        let policies = cluster.login(1, &user).await["identity_policies"].clone();
        let policies: Vec<String> = serde_json::from_value(policies).unwrap_or_default();
        let stale = match previous.replace(entity) {
            Some(old) => {
                let read = cluster.read(&format!("identity/entity/id/{old}")).await;
                read["data"]["group_ids"].as_array().map_or(0, Vec::len)
            }
            None => 0,
        };
        kept.push((
            listed
                .intersection(&groups.iter().cloned().collect())
                .count(),
            policies.len(),
            stale,
        ));
    }
    kept
}

/// [`memberships_kept`] on a cluster of `nodes` nodes: right in every round.
async fn every_membership_is_kept_on(nodes: usize) {
    let Some(cluster) = Cluster::start(nodes).await else {
        return;
    };
    let kept = memberships_kept(&cluster, 4).await;
    assert!(
        kept.iter().all(|&k| k == (8, 8, 0)),
        "(groups listed, policies, groups still listing the previous entity) per round: {kept:?}"
    );
}

#[tokio::test]
async fn concurrent_group_updates_keep_every_membership_on_one_node() {
    every_membership_is_kept_on(1).await;
}

#[tokio::test]
async fn concurrent_group_updates_keep_every_membership_on_two_nodes() {
    every_membership_is_kept_on(2).await;
}

#[tokio::test]
async fn concurrent_creates_of_one_group_name_make_one_group() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    const ROUNDS: usize = 6;
    const WRITERS: usize = 8;
    // Creates of one name at once: one group (a write to an existing name updates it).
    let mut ids_per_round = Vec::new();
    for round in 0..ROUNDS {
        let requests = (0..WRITERS)
            .map(|w| {
                (
                    "POST",
                    "identity/group".to_string(),
                    Some(cluster.root.clone()),
                    Some(json!({"name": format!("team-{round}"), "metadata": {"writer": w.to_string()}})),
                )
            })
            .collect();
        let (mut ids, mut created, mut refused) = (BTreeSet::new(), 0, 0);
        for (status, body) in cluster.race(requests).await {
            match (status, body["data"]["id"].as_str()) {
                (200, Some(id)) => {
                    created += 1;
                    ids.insert(id.to_string());
                }
                // An update of the group another writer created (204, as OpenBao answers).
                (204, _) => {}
                (400, _) => refused += 1,
                _ => panic!("{status} {body}"),
            }
        }
        ids_per_round.push((ids.len(), created, refused));
    }
    let names = cluster.list("identity/group/name").await;
    let stored = cluster.list("identity/group/id").await.len();
    assert!(
        ids_per_round.iter().all(|&n| n == (1, 1, 0)) && stored == ROUNDS,
        "(group ids answered, creates answered, writes refused) per round: \
         {ids_per_round:?}; {stored} groups stored: {names:?}"
    );
}

/// Per round, over two nodes at once: 8 creates of one new entity name (one entity: the
/// first create answers 200, the others update it and answer 204), then 8 creates of one
/// alias of it on the JWT mount (one alias, listed once on the entity), then a login
/// through that alias (it is that entity's, with the entity's policies).
#[tokio::test]
async fn concurrent_creates_of_one_entity_and_one_alias_make_one_of_each() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    const ROUNDS: usize = 4;
    const WRITERS: usize = 8;
    let accessor = cluster.jwt_accessor().await;
    let mut counts = Vec::new();
    for round in 0..ROUNDS {
        let user = format!("person-{round}");
        let requests = (0..WRITERS)
            .map(|w| {
                (
                    "POST",
                    "identity/entity".to_string(),
                    Some(cluster.root.clone()),
                    Some(json!({"name": user, "policies": [format!("p{round}")],
                                "metadata": {"writer": w.to_string()}})),
                )
            })
            .collect();
        let mut created = BTreeSet::new();
        for (status, body) in cluster.race(requests).await {
            match (status, body["data"]["id"].as_str()) {
                (200, Some(id)) => drop(created.insert(id.to_string())),
                (204, _) => {}
                _ => panic!("{status} {body}"),
            }
        }
        let entity = cluster.read(&format!("identity/entity/name/{user}")).await;
        let entity_id = entity["data"]["id"].as_str().expect("id").to_string();
        let requests = (0..WRITERS)
            .map(|_| {
                (
                    "POST",
                    "identity/entity-alias".to_string(),
                    Some(cluster.root.clone()),
                    Some(json!({"name": user, "mount_accessor": accessor,
                                "canonical_id": entity_id})),
                )
            })
            .collect();
        let mut aliases = BTreeSet::new();
        for (status, body) in cluster.race(requests).await {
            match (status, body["data"]["id"].as_str()) {
                (200, Some(id)) => drop(aliases.insert(id.to_string())),
                (204, _) => {}
                _ => panic!("{status} {body}"),
            }
        }
        let read = cluster
            .read(&format!("identity/entity/id/{entity_id}"))
            .await;
        let listed = read["data"]["aliases"].as_array().map_or(0, Vec::len);
        let login = cluster.login(round % 2, &user).await;
        let logged_in = login["entity_id"] == json!(entity_id)
            && login["identity_policies"] == json!([format!("p{round}")]);
        counts.push((created.len(), aliases.len(), listed, logged_in));
    }
    let entities = cluster.list("identity/entity/id").await.len();
    let aliases = cluster.list("identity/entity-alias/id").await.len();
    assert!(
        counts.iter().all(|&c| c == (1, 1, 1, true)) && entities == ROUNDS && aliases == ROUNDS,
        "(entities created, aliases created, aliases listed, login is the entity's) per round: \
         {counts:?}; {entities} entities and {aliases} aliases stored"
    );
}

#[tokio::test]
async fn one_group_alias_name_on_a_mount_is_taken_once() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    const ROUNDS: usize = 6;
    const WRITERS: usize = 8;
    // One alias name on one mount, claimed for two external groups at once: taken once.
    let accessor = cluster.jwt_accessor().await;
    let mut taken_per_round = Vec::new();
    for round in 0..ROUNDS {
        let a = cluster
            .group(&format!("ext-a-{round}"), "external", &[])
            .await;
        let b = cluster
            .group(&format!("ext-b-{round}"), "external", &[])
            .await;
        let requests = (0..WRITERS)
            .map(|w| {
                let group = if w % 4 < 2 { &a } else { &b };
                (
                    "POST",
                    "identity/group-alias".to_string(),
                    Some(cluster.root.clone()),
                    Some(
                        json!({"name": format!("claim-{round}"), "mount_accessor": accessor,
                                "canonical_id": group}),
                    ),
                )
            })
            .collect();
        let answers = cluster.race(requests).await;
        for (status, body) in &answers {
            assert!(*status == 200 || *status == 400, "{status} {body}");
        }
        let mut linked = 0;
        for g in [&a, &b] {
            let read = cluster.read(&format!("identity/group/id/{g}")).await;
            if read["data"]["alias"]["name"].is_string() {
                linked += 1;
            }
        }
        taken_per_round.push((answers.iter().filter(|(s, _)| *s == 200).count(), linked));
    }
    let aliases = cluster.list("identity/group-alias/id").await.len();
    assert!(
        taken_per_round.iter().all(|&t| t == (1, 1)) && aliases == ROUNDS,
        "(successful creates, groups linked) per round: {taken_per_round:?}; {aliases} aliases stored"
    );
}

#[tokio::test]
async fn an_external_group_read_lists_the_members_that_logged_in_through_its_alias() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    let group = cluster.group("eng", "external", &["eng"]).await;
    let accessor = cluster.jwt_accessor().await;
    cluster
        .ok(
            "POST",
            "identity/group-alias",
            json!({"name": "engineering", "mount_accessor": accessor, "canonical_id": group}),
        )
        .await;
    // seed_claims names the group alias "engineering".
    let alice = cluster.login(0, "alice").await["entity_id"].clone();
    let bob = cluster.login(1, "bob").await["entity_id"].clone();
    let members = |read: &Value| -> BTreeSet<String> {
        serde_json::from_value(read["data"]["member_entity_ids"].clone()).expect("members")
    };
    for node in 0..2 {
        let (status, read) = cluster
            .node(node)
            .call(
                "GET",
                &format!("identity/group/id/{group}"),
                Some(&cluster.root),
                None,
            )
            .await;
        assert_eq!(status, 200, "{read}");
        let expected: BTreeSet<String> = [&alice, &bob]
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(members(&read), expected, "{read}");
    }
    // Bob's next login no longer names the group: he leaves it.
    let mut claims = seed_claims("bob");
    claims["https://vault/groups"] = json!(["other"]);
    let jwt = cluster.signer.jwt(&claims);
    let (status, body) = cluster
        .node(1)
        .call(
            "POST",
            "auth/jwt/login",
            None,
            Some(json!({"role": "demo", "jwt": jwt})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let read = cluster.read("identity/group/name/eng").await;
    assert_eq!(
        members(&read),
        BTreeSet::from([alice.as_str().unwrap().to_string()]),
        "{read}"
    );
}

/// Every value the cluster's database holds outside the seal's own records: `(path, value)`.
async fn stored_values(db: &TestDatabase) -> Vec<(String, Vec<u8>)> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    sqlx::query_as("SELECT path, value FROM authmount_kv WHERE path NOT LIKE 'seal/%'")
        .fetch_all(&mut conn)
        .await
        .expect("read the store")
}

/// The races of the tests above on a store under a Shamir seal, with one node sealed and
/// unsealed again in between: every value is barrier ciphertext under a fresh nonce per
/// write, so each compare-and-set swaps against the exact ciphertext a node read.
#[tokio::test]
async fn uses_and_memberships_stay_exact_on_a_shamir_sealed_store_unsealed_on_two_nodes() {
    let Some(cluster) = Cluster::start_with(2, true).await else {
        return;
    };
    let sealed = &cluster.nodes[1];
    sealed.ok("PUT", "sys/seal", &cluster.root, json!({})).await;
    let (status, body) = sealed
        .call("GET", "auth/token/lookup-self", Some(&cluster.root), None)
        .await;
    assert_eq!(status, 503, "{body}");
    let key = cluster.unseal_key.as_deref().expect("Shamir key");
    assert_eq!(sealed.unseal(key).await["sealed"], json!(false));

    let once = uses_served(&cluster, 1, 6).await;
    let thrice = uses_served(&cluster, 3, 4).await;
    let kept = memberships_kept(&cluster, 3).await;
    assert!(
        once.iter().all(|&n| n == 1)
            && thrice.iter().all(|&n| n == 3)
            && kept.iter().all(|&k| k == (8, 8, 0)),
        "successes per round: num_uses=1 {once:?}, num_uses=3 {thrice:?}; \
         (groups listed, policies, groups still listing the previous entity) per round: {kept:?}"
    );
    // What was raced on is ciphertext in the database.
    let values = stored_values(&cluster.db).await;
    assert!(values.iter().any(|(p, _)| p.contains("/token/id/")));
    for (path, value) in &values {
        assert_eq!(
            value.first(),
            Some(&1u8),
            "{path} is not barrier ciphertext"
        );
        assert!(
            !value
                .windows(8)
                .any(|w| w == b"num_uses" || w == b"internal"),
            "{path} holds plaintext"
        );
    }
}

/// Each node keeps decrypted values in memory and learns from the change feed which ones
/// another node changed: a write answered by node A is seen by node B's very next request,
/// in a tight loop of writes on A and reads on B (a role, a policy, an entity's metadata,
/// a token created, used and revoked), with B's caches warm between rounds.
#[tokio::test]
async fn a_write_answered_on_one_node_is_read_on_the_other_at_its_next_request() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    let (a, b, root) = (&cluster.nodes[0], &cluster.nodes[1], &cluster.root);
    let entity = a
        .ok("POST", "identity/entity", root, json!({"name": "looped"}))
        .await["data"]["id"]
        .as_str()
        .expect("entity id")
        .to_string();
    for i in 0..60u64 {
        // Warm B's caches with the current values first.
        for path in [
            "auth/jwt/role/demo".to_string(),
            "sys/policies/acl/looped".to_string(),
            format!("identity/entity/id/{entity}"),
        ] {
            let _ = b.call("GET", &path, Some(root), None).await;
        }
        a.ok(
            "POST",
            "auth/jwt/role/demo",
            root,
            json!({"ttl": 3600 + i, "bound_audiences": authmount_testkit::SEED_AUDIENCE}),
        )
        .await;
        let (status, role) = b.call("GET", "auth/jwt/role/demo", Some(root), None).await;
        assert_eq!(status, 200, "{role}");
        assert_eq!(role["data"]["token_ttl"], json!(3600 + i), "round {i}");

        let policy = format!("path \"secret/{i}\" {{ capabilities = [\"read\"] }}");
        a.ok(
            "PUT",
            "sys/policies/acl/looped",
            root,
            json!({"policy": policy}),
        )
        .await;
        let (status, read) = b
            .call("GET", "sys/policies/acl/looped", Some(root), None)
            .await;
        assert_eq!(status, 200, "{read}");
        assert_eq!(read["data"]["policy"], json!(policy), "round {i}");

        a.ok(
            "POST",
            &format!("identity/entity/id/{entity}"),
            root,
            json!({"metadata": {"round": i.to_string()}}),
        )
        .await;
        let (status, read) = b
            .call(
                "GET",
                &format!("identity/entity/id/{entity}"),
                Some(root),
                None,
            )
            .await;
        assert_eq!(status, 200, "{read}");
        assert_eq!(read["data"]["metadata"]["round"], json!(i.to_string()));

        let created = a
            .ok(
                "POST",
                "auth/token/create",
                root,
                json!({"policies": ["default"]}),
            )
            .await;
        let token = created["auth"]["client_token"].as_str().expect("token");
        let (status, body) = b
            .call("GET", "auth/token/lookup-self", Some(token), None)
            .await;
        assert_eq!(status, 200, "round {i}: {body}");
        a.ok("POST", "auth/token/revoke", root, json!({"token": token}))
            .await;
        let (status, body) = b
            .call("GET", "auth/token/lookup-self", Some(token), None)
            .await;
        assert_eq!(
            status, 403,
            "round {i}: a revoked token still served: {body}"
        );
    }
}
