//! Tests of the identity store, on one node and on several sharing a store.

use super::*;
use crate::storage::{InMemory, SqlStore, Storage};
use serde_json::json;
use std::sync::Arc;

fn store() -> IdentityStore {
    IdentityStore::new(
        View::new(Arc::new(InMemory::new()), "core/identity/"),
        Clock::system(),
    )
}

/// Identity stores over one store, as several server nodes share a database.
fn nodes(store: Arc<dyn Storage>, n: usize) -> Vec<Arc<IdentityStore>> {
    (0..n)
        .map(|_| {
            Arc::new(IdentityStore::new(
                View::new(store.clone(), "core/identity/"),
                Clock::system(),
            ))
        })
        .collect()
}

async fn sqlite() -> (Arc<dyn Storage>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("authmount-ids-{}", uuid::Uuid::new_v4()));
    let store = SqlStore::sqlite(&dir.join("t.db")).await.unwrap();
    (Arc::new(store), dir)
}

fn named(name: &str, kind: &str, policies: &[&str]) -> GroupChanges {
    GroupChanges {
        name: Some(name.into()),
        kind: Some(kind.into()),
        policies: Some(policies.iter().map(|p| p.to_string()).collect()),
        ..Default::default()
    }
}

fn members(ids: &[&str]) -> GroupChanges {
    GroupChanges {
        member_entity_ids: Some(ids.iter().map(|p| p.to_string()).collect()),
        ..Default::default()
    }
}

async fn group_alias(ids: &IdentityStore, group: &Group, name: &str, accessor: &str) -> Result<()> {
    let alias = GroupAlias {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.into(),
        mount_accessor: accessor.into(),
        canonical_id: group.id.clone(),
        creation_time: Timestamp(0),
        last_update_time: Timestamp(0),
    };
    ids.put_group_alias(&alias).await
}

/// A new entity named `name`; its id.
async fn entity(ids: &IdentityStore, name: &str) -> String {
    let (entity, created) = ids
        .write_entity(EntityTarget::Name(name.into()), &EntityChanges::default())
        .await
        .unwrap();
    assert!(created);
    entity.id
}

/// Every key under `prefix` in `view`.
async fn all_keys(view: &View, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![prefix.to_string()];
    while let Some(dir) = pending.pop() {
        for child in view.list(&dir).await.unwrap() {
            let key = format!("{dir}{child}");
            if child.ends_with('/') {
                pending.push(key);
            } else {
                out.push(key);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn external_groups_follow_the_group_aliases_of_the_last_login() {
    let ids = store();
    let devs = ids
        .write_group(
            GroupTarget::New,
            &named("devs", "external", &["dev", "shared"]),
        )
        .await
        .unwrap()
        .0;
    let ops = ids
        .write_group(
            GroupTarget::New,
            &named("ops", "external", &["ops", "shared"]),
        )
        .await
        .unwrap()
        .0;
    group_alias(&ids, &devs, "dev-team", "auth_jwt_1")
        .await
        .unwrap();
    group_alias(&ids, &ops, "ops-team", "auth_jwt_1")
        .await
        .unwrap();
    let (_, e) = ids
        .upsert_alias("auth_jwt_1", "alice", &BTreeMap::new())
        .await
        .unwrap();
    let names = vec!["dev-team".to_string(), "ops-team".into(), "unknown".into()];
    ids.sync_external_groups(&e.id, "auth_jwt_1", &names)
        .await
        .unwrap();
    assert_eq!(
        ids.identity_policies(&e.id).await.unwrap(),
        ["dev", "ops", "shared"]
    );
    ids.sync_external_groups(&e.id, "auth_jwt_1", &names[..1])
        .await
        .unwrap();
    assert_eq!(
        ids.identity_policies(&e.id).await.unwrap(),
        ["dev", "shared"]
    );
    // An alias on another mount does not attach.
    ids.sync_external_groups(&e.id, "auth_jwt_2", &names)
        .await
        .unwrap();
    assert_eq!(
        ids.identity_policies(&e.id).await.unwrap(),
        ["dev", "shared"]
    );
    // Internal groups: membership by hand.
    let mut humans = named("humans", "internal", &["human"]);
    humans.member_entity_ids = Some(vec![e.id.clone()]);
    let internal = ids.write_group(GroupTarget::New, &humans).await.unwrap().0;
    assert_eq!(
        ids.identity_policies(&e.id).await.unwrap(),
        ["dev", "human", "shared"]
    );
    ids.write_group(GroupTarget::Id(internal.id.clone()), &members(&[]))
        .await
        .unwrap();
    assert_eq!(
        ids.identity_policies(&e.id).await.unwrap(),
        ["dev", "shared"]
    );
    // Internal groups cannot have aliases; names are unique; types do not change.
    assert!(group_alias(&ids, &internal, "h", "a").await.is_err());
    let err = ids
        .write_group(GroupTarget::New, &named("devs", "internal", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 400, "{err}");
    let err = ids
        .write_group(
            GroupTarget::Name("devs".into()),
            &named("devs", "internal", &[]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "group type cannot be changed");
    let rename = GroupChanges {
        name: Some("ops".into()),
        ..Default::default()
    };
    let err = ids
        .write_group(GroupTarget::Id(devs.id.clone()), &rename)
        .await
        .unwrap_err();
    assert_eq!(err.status(), 400, "{err}");
    // A rename frees the old name.
    let rename = GroupChanges {
        name: Some("developers".into()),
        ..Default::default()
    };
    ids.write_group(GroupTarget::Id(devs.id.clone()), &rename)
        .await
        .unwrap();
    assert!(ids.group_by_name("devs").await.unwrap().is_none());
    assert_eq!(
        ids.group_by_name("developers").await.unwrap().unwrap().id,
        devs.id
    );
    let other = ids
        .write_group(GroupTarget::New, &named("devs", "internal", &[]))
        .await
        .unwrap()
        .0;
    assert_ne!(other.id, devs.id);
    // Names are case-insensitive: another spelling finds the group and is taken; a rename
    // that changes only the case keeps the name's index entry.
    let renamed = |name: &str| GroupChanges {
        name: Some(name.into()),
        ..Default::default()
    };
    assert_eq!(
        ids.group_by_name("DEVELOPERS").await.unwrap().unwrap().id,
        devs.id
    );
    let err = ids
        .write_group(GroupTarget::Id(other.id.clone()), &renamed("Developers"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "group name is already in use");
    ids.write_group(GroupTarget::Id(devs.id.clone()), &renamed("Developers"))
        .await
        .unwrap();
    let found = ids.group_by_name("developers").await.unwrap().unwrap();
    assert_eq!(
        (found.id, found.name),
        (devs.id.clone(), "Developers".into())
    );
}

#[tokio::test]
async fn a_new_group_alias_replaces_the_one_the_group_had() {
    let ids = store();
    let (eng, _) = ids
        .write_group(GroupTarget::New, &named("eng", "external", &["eng"]))
        .await
        .unwrap();
    group_alias(&ids, &eng, "old", "acc").await.unwrap();
    group_alias(&ids, &eng, "new", "acc").await.unwrap();
    let stored = ids.group(&eng.id).await.unwrap().unwrap();
    let alias = ids.group_alias(&stored.alias_id).await.unwrap().unwrap();
    assert_eq!(alias.name, "new");
    assert_eq!(ids.group_alias_ids().await.unwrap(), [stored.alias_id]);
    // The old name is free again; the new one is taken.
    let (ops, _) = ids
        .write_group(GroupTarget::New, &named("ops", "external", &[]))
        .await
        .unwrap();
    group_alias(&ids, &ops, "old", "acc").await.unwrap();
    let err = group_alias(&ids, &ops, "new", "acc").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "combination of mount and group alias name is already in use"
    );
    // OpenBao's texts for a group that is internal or missing.
    let (internal, _) = ids
        .write_group(GroupTarget::New, &named("humans", "internal", &[]))
        .await
        .unwrap();
    let err = group_alias(&ids, &internal, "h", "acc").await.unwrap_err();
    assert_eq!(err.to_string(), "alias can't be set on an internal group");
    ids.delete_group(&internal).await.unwrap();
    let err = group_alias(&ids, &internal, "h", "acc").await.unwrap_err();
    assert_eq!(err.to_string(), "invalid group ID given in 'canonical_id'");
}

/// Aliases of different names set on one group at once, over three nodes: the group ends
/// with one of them, and the others are gone (each link replaces exactly what it read).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_aliases_of_one_group_leave_one() {
    let nodes = nodes(Arc::new(InMemory::new()), 3);
    let (group, _) = nodes[0]
        .write_group(GroupTarget::New, &named("eng", "external", &[]))
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let (node, group) = (nodes[i % 3].clone(), group.clone());
        tasks.spawn(async move { group_alias(&node, &group, &format!("a{i}"), "acc").await });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    let stored = nodes[1].group(&group.id).await.unwrap().unwrap();
    assert_eq!(nodes[2].group_alias_ids().await.unwrap(), [stored.alias_id]);
}

#[tokio::test]
async fn one_entity_per_alias_and_metadata_follows_the_last_login() {
    let ids = store();
    let mut meta = BTreeMap::from([("role".to_string(), "r".to_string())]);
    let (a1, e1) = ids
        .upsert_alias("auth_jwt_1", "alice", &meta)
        .await
        .unwrap();
    meta.insert("team".into(), "x".into());
    let (a2, e2) = ids
        .upsert_alias("auth_jwt_1", "alice", &meta)
        .await
        .unwrap();
    assert_eq!((a1.id.clone(), e1.id.clone()), (a2.id.clone(), e2.id));
    assert_eq!(
        ids.alias(&a1.id).await.unwrap().unwrap().metadata,
        Some(meta.clone())
    );
    let (_, other) = ids
        .upsert_alias("auth_jwt_2", "alice", &meta)
        .await
        .unwrap();
    assert_ne!(other.id, e1.id);
    ids.remove_mount_aliases("auth_jwt_1").await.unwrap();
    assert!(ids.alias(&a1.id).await.unwrap().is_none());
    assert!(ids
        .entity(&e1.id)
        .await
        .unwrap()
        .unwrap()
        .aliases
        .is_empty());
    // The alias is new at its next login.
    let (a3, _) = ids
        .upsert_alias("auth_jwt_1", "alice", &meta)
        .await
        .unwrap();
    assert_ne!(a3.id, a1.id);
}

/// 16 first logins of one alias at once over three nodes: one entity, one alias.
async fn first_logins_make_one_entity(store: Arc<dyn Storage>) {
    let nodes = nodes(store, 3);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let node = nodes[i % 3].clone();
        tasks.spawn(async move {
            let meta = BTreeMap::from([("n".to_string(), i.to_string())]);
            node.upsert_alias("auth_jwt_1", "alice", &meta).await
        });
    }
    let mut entities = std::collections::BTreeSet::new();
    while let Some(done) = tasks.join_next().await {
        entities.insert(done.unwrap().unwrap().1.id);
    }
    assert_eq!(entities.len(), 1);
    assert_eq!(nodes[0].entity_ids().await.unwrap().len(), 1);
    assert_eq!(nodes[0].storage.list("alias/").await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_logins_on_several_nodes_make_one_entity_in_memory() {
    first_logins_make_one_entity(Arc::new(InMemory::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_logins_on_several_nodes_make_one_entity_on_sqlite() {
    let (store, dir) = sqlite().await;
    first_logins_make_one_entity(store).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// 8 groups updated at once (over `n` nodes) to list one entity, then all at once to
/// list another instead: every membership is kept, every removal too.
async fn concurrent_group_updates_lose_nothing(store: Arc<dyn Storage>, n: usize) {
    let nodes = nodes(store, n);
    let mut groups = Vec::new();
    for g in 0..8 {
        let changes = named(&format!("g{g}"), "internal", &[&format!("p{g}")]);
        groups.push(
            nodes[0]
                .write_group(GroupTarget::New, &changes)
                .await
                .unwrap()
                .0,
        );
    }
    let expected: Vec<String> = (0..8).map(|g| format!("p{g}")).collect();
    let e1 = entity(&nodes[0], "e1").await;
    let e2 = entity(&nodes[0], "e2").await;
    for entity in [&e1, &e2] {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, group) in groups.iter().enumerate() {
            let (node, id, entity) = (nodes[i % n].clone(), group.id.clone(), entity.clone());
            tasks.spawn(async move {
                node.write_group(GroupTarget::Id(id), &members(&[&entity]))
                    .await
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
        assert_eq!(nodes[0].identity_policies(entity).await.unwrap(), expected);
        assert_eq!(nodes[0].membership(entity).await.unwrap().internal.len(), 8);
    }
    assert!(nodes[0].identity_policies(&e1).await.unwrap().is_empty());
    assert!(nodes[0].membership(&e1).await.unwrap().internal.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_group_updates_lose_nothing_in_memory() {
    concurrent_group_updates_lose_nothing(Arc::new(InMemory::new()), 1).await;
    concurrent_group_updates_lose_nothing(Arc::new(InMemory::new()), 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_group_updates_lose_nothing_on_sqlite() {
    let (store, dir) = sqlite().await;
    concurrent_group_updates_lose_nothing(store, 2).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_of_different_fields_all_stay() {
    let nodes = nodes(Arc::new(InMemory::new()), 2);
    let group = nodes[0]
        .write_group(GroupTarget::New, &named("g", "internal", &[]))
        .await
        .unwrap()
        .0;
    let e = entity(&nodes[0], "e").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (node, id, e) = (nodes[i % 2].clone(), group.id.clone(), e.clone());
        tasks.spawn(async move {
            let changes = match i {
                0 => GroupChanges {
                    policies: Some(vec!["kept".into()]),
                    ..Default::default()
                },
                1 => members(&[&e]),
                _ => GroupChanges {
                    metadata: Some(BTreeMap::from([("k".into(), "v".into())])),
                    ..Default::default()
                },
            };
            node.write_group(GroupTarget::Id(id), &changes).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    let stored = nodes[1].group(&group.id).await.unwrap().unwrap();
    assert_eq!(stored.policies, Some(vec!["kept".to_string()]));
    assert_eq!(stored.member_entity_ids, Some(vec![e]));
    assert_eq!(stored.metadata.unwrap()["k"], "v");
    // Each write counted once: the creation and the eight updates.
    assert_eq!(stored.modify_index, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_name_makes_one_group_and_one_group_alias() {
    let nodes = nodes(Arc::new(InMemory::new()), 3);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let node = nodes[i % 3].clone();
        tasks.spawn(async move {
            let changes = GroupChanges {
                kind: Some("external".into()),
                ..Default::default()
            };
            node.write_group(GroupTarget::Name("team".into()), &changes)
                .await
        });
    }
    let mut ids = std::collections::BTreeSet::new();
    while let Some(done) = tasks.join_next().await {
        ids.insert(done.unwrap().unwrap().0.id);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(nodes[0].group_ids().await.unwrap().len(), 1);
    // A second external group; one alias name claimed for both at once: taken once.
    let other = nodes[0]
        .write_group(GroupTarget::New, &named("other", "external", &[]))
        .await
        .unwrap()
        .0;
    let team = nodes[0].group_by_name("team").await.unwrap().unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let node = nodes[i % 3].clone();
        let group = if i % 2 == 0 {
            team.clone()
        } else {
            other.clone()
        };
        tasks.spawn(async move { group_alias(&node, &group, "claim", "acc").await });
    }
    let mut stored = 0;
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            Ok(()) => stored += 1,
            Err(e) => assert_eq!(e.status(), 400, "{e}"),
        }
    }
    assert_eq!(stored, 1);
    assert_eq!(nodes[0].group_alias_ids().await.unwrap().len(), 1);
    let mut linked = 0;
    for g in [&team, &other] {
        let stored = nodes[0].group(&g.id).await.unwrap().unwrap();
        linked += usize::from(!stored.alias_id.is_empty());
    }
    assert_eq!(linked, 1);
}

#[tokio::test]
async fn index_keys_do_not_show_names() {
    let view = View::new(Arc::new(InMemory::new()), "core/identity/");
    let ids = IdentityStore::new(view.clone(), Clock::system());
    let secret = ["alice@example.com", "secret-team", "eng-team"];
    let (_, e) = ids
        .upsert_alias("auth_jwt_1", secret[0], &BTreeMap::new())
        .await
        .unwrap();
    let group = ids
        .write_group(GroupTarget::New, &named(secret[1], "external", &["p"]))
        .await
        .unwrap()
        .0;
    group_alias(&ids, &group, secret[2], "auth_jwt_1")
        .await
        .unwrap();
    ids.sync_external_groups(&e.id, "auth_jwt_1", &[secret[2].to_string()])
        .await
        .unwrap();
    let keys = all_keys(&view, "").await;
    for name in secret {
        for shown in [name.to_string(), hex::encode(name)] {
            assert!(
                keys.iter().all(|k| !k.contains(&shown)),
                "{shown} in {keys:?}"
            );
        }
    }
    assert_eq!(ids.identity_policies(&e.id).await.unwrap(), ["p"]);
    // Another store (with its own random index key) keys the same names differently.
    let elsewhere = View::new(Arc::new(InMemory::new()), "core/identity/");
    let other = IdentityStore::new(elsewhere.clone(), Clock::system());
    other
        .upsert_alias("auth_jwt_1", secret[0], &BTreeMap::new())
        .await
        .unwrap();
    let index = |keys: Vec<String>| -> Vec<String> {
        keys.into_iter()
            .filter(|k| k.starts_with("alias-index/"))
            .collect()
    };
    assert_ne!(
        index(all_keys(&view, "").await),
        index(all_keys(&elsewhere, "").await)
    );
}

/// The layout written before opaque index keys: names hex-encoded in the keys, times in
/// whole seconds, no entity name index; documents as that version wrote them.
async fn write_legacy_store(view: &View) -> (Entity, EntityAlias, Group) {
    let documents = [
        (
            "alias/a-1",
            json!({"id": "a-1", "canonical_id": "e-1", "name": "alice",
                   "mount_accessor": "auth_jwt_1", "metadata": {},
                   "creation_time": 1, "last_update_time": 1}),
        ),
        (
            "entity/e-1",
            json!({"id": "e-1", "name": "entity_e1", "aliases": ["a-1"],
                   "creation_time": 1, "disabled": false}),
        ),
        (
            "group/g-1",
            json!({"id": "g-1", "name": "eng", "type": "external", "policies": ["eng"],
                   "metadata": {}, "member_entity_ids": [], "alias_id": "ga-1",
                   "creation_time": 1, "last_update_time": 1}),
        ),
        (
            "group-alias/ga-1",
            json!({"id": "ga-1", "name": "engineering", "mount_accessor": "auth_jwt_1",
                   "canonical_id": "g-1", "creation_time": 1}),
        ),
        // An internal group listing the entity, and the membership document as that
        // version wrote it (no `version`).
        (
            "group/g-2",
            json!({"id": "g-2", "name": "ops", "type": "internal", "policies": ["ops"],
                   "metadata": {}, "member_entity_ids": ["e-1"], "alias_id": "",
                   "creation_time": 1, "last_update_time": 1}),
        ),
        (
            "membership/e-1",
            json!({"external": {}, "internal": ["g-2"]}),
        ),
    ];
    for (key, value) in &documents {
        view.put_json(key, value).await.unwrap();
    }
    let legacy = [
        (
            format!("alias-by-name/auth_jwt_1/{}", hex::encode("alice")),
            "a-1",
        ),
        (format!("group-by-name/{}", hex::encode("eng")), "g-1"),
        (format!("group-by-name/{}", hex::encode("ops")), "g-2"),
        (
            format!(
                "group-alias-by-name/auth_jwt_1/{}",
                hex::encode("engineering")
            ),
            "ga-1",
        ),
    ];
    for (key, id) in legacy {
        view.put(&key, id.as_bytes()).await.unwrap();
    }
    let read = |i: usize| documents[i].1.clone();
    (
        serde_json::from_value(read(1)).unwrap(),
        serde_json::from_value(read(0)).unwrap(),
        serde_json::from_value(read(2)).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_with_hex_name_keys_is_migrated_by_the_first_node_to_use_it() {
    let (store, dir) = sqlite().await;
    let view = View::new(store.clone(), "core/identity/");
    let (entity, alias, group) = write_legacy_store(&view).await;
    // Two nodes start on it at once.
    let nodes = nodes(store, 2);
    let no_metadata = BTreeMap::new();
    let (a, b) = tokio::join!(
        nodes[0].upsert_alias("auth_jwt_1", "alice", &no_metadata),
        nodes[1].group_by_name("eng"),
    );
    let (found_alias, found_entity) = a.unwrap();
    assert_eq!(
        (found_alias.id, found_entity.id),
        (alias.id, entity.id.clone())
    );
    assert_eq!(b.unwrap().unwrap().id, group.id);
    let groups = nodes[1]
        .sync_external_groups(&entity.id, "auth_jwt_1", &["engineering".to_string()])
        .await
        .unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(
        nodes[0].identity_policies(&entity.id).await.unwrap(),
        ["eng", "ops"]
    );
    // The old membership document takes changes.
    let ops = nodes[0].group_by_name("ops").await.unwrap().unwrap();
    nodes[1]
        .write_group(GroupTarget::Id(ops.id), &members(&[]))
        .await
        .unwrap();
    assert_eq!(
        nodes[0].identity_policies(&entity.id).await.unwrap(),
        ["eng"]
    );
    let keys = all_keys(&view, "").await;
    assert!(
        keys.iter().all(|k| !k.contains("-by-name/")),
        "legacy keys left: {keys:?}"
    );
    assert!(keys.contains(&INDEX_MIGRATED.to_string()));
    // Entities made before entity names were indexed are found by name (without case), and
    // their times in whole seconds read as instants.
    let found = nodes[1].entity_by_name("ENTITY_E1").await.unwrap().unwrap();
    assert_eq!(
        (found.id.as_str(), found.updated()),
        ("e-1", Timestamp::from_unix(1))
    );
    assert!(keys.contains(&"entity-index-built".to_string()));
    // Names stay unique across the migration.
    let err = nodes[0]
        .write_group(GroupTarget::New, &named("eng", "internal", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 400);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_index_entry_left_by_a_crash_is_taken_over() {
    let ids = store();
    // An index entry naming an alias that was never written (a node stopped there).
    let key = ids.index().await.unwrap().alias("auth_jwt_1", "alice");
    ids.storage.put(&key, b"missing").await.unwrap();
    let (alias, _) = ids
        .upsert_alias("auth_jwt_1", "alice", &BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(
        ids.storage.get(&key).await.unwrap().unwrap(),
        alias.id.as_bytes()
    );
    let key = ids.index().await.unwrap().group("g");
    ids.storage.put(&key, b"missing").await.unwrap();
    let group = ids
        .write_group(GroupTarget::New, &named("g", "internal", &[]))
        .await
        .unwrap()
        .0;
    assert_eq!(ids.group_by_name("g").await.unwrap().unwrap().id, group.id);
}

#[tokio::test]
async fn an_external_group_lists_the_entities_that_joined_it_at_login() {
    let ids = store();
    let group = ids
        .write_group(GroupTarget::New, &named("eng", "external", &["eng"]))
        .await
        .unwrap()
        .0;
    group_alias(&ids, &group, "engineering", "auth_jwt_1")
        .await
        .unwrap();
    let claim = vec!["engineering".to_string()];
    for entity in ["e1", "e2"] {
        ids.sync_external_groups(entity, "auth_jwt_1", &claim)
            .await
            .unwrap();
    }
    assert_eq!(
        ids.member_entity_ids(&group).await.unwrap(),
        Some(vec!["e1".to_string(), "e2".into()])
    );
    // e2's next login no longer names the group: the next read drops it. Each join and
    // leave counts in the group's modify_index (created, alias set, two joins, one leave).
    ids.sync_external_groups("e2", "auth_jwt_1", &[])
        .await
        .unwrap();
    let stored = ids.group(&group.id).await.unwrap().unwrap();
    assert_eq!(stored.modify_index, 5);
    assert_eq!(
        ids.member_entity_ids(&group).await.unwrap(),
        Some(vec!["e1".to_string()])
    );
    assert_eq!(
        ids.storage
            .list(&format!("group-members/{}/", group.id))
            .await
            .unwrap(),
        ["e1"]
    );
    // Deleting the group removes its list of members.
    ids.delete_group(&group).await.unwrap();
    assert!(ids.storage.list("group-members/").await.unwrap().is_empty());
    assert!(ids.identity_policies("e1").await.unwrap().is_empty());
}

#[tokio::test]
async fn entities_are_written_by_id_or_by_name_and_names_ignore_case() {
    let ids = store();
    let changes = EntityChanges {
        policies: Some(vec!["p".into()]),
        metadata: Some(BTreeMap::from([("team".into(), "a".into())])),
        ..Default::default()
    };
    let (bob, created) = ids
        .write_entity(EntityTarget::Name("bob".into()), &changes)
        .await
        .unwrap();
    assert!(created);
    assert_eq!(
        (bob.name.as_str(), bob.policies.as_slice()),
        ("bob", &["p".to_string()][..])
    );
    // Another spelling finds it; a name in the changes renames it to that spelling.
    let rename = EntityChanges {
        name: Some("Bob".into()),
        disabled: Some(true),
        ..Default::default()
    };
    let (same, created) = ids
        .write_entity(EntityTarget::Name("BOB".into()), &rename)
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(
        (same.id.as_str(), same.name.as_str()),
        (bob.id.as_str(), "Bob")
    );
    assert_eq!(same.metadata, changes.metadata, "untouched fields stay");
    assert_eq!(same.creation_time, bob.creation_time);
    // A disabled entity's tokens are refused; its policies still show.
    assert_eq!(ids.identity_policies(&bob.id).await.unwrap(), ["p"]);
    assert_eq!(
        ids.request_policies(&bob.id).await.unwrap_err().status(),
        403
    );
    // New entities without a name get one; names are unique; unknown ids are refused.
    let (anon, _) = ids
        .write_entity(EntityTarget::New, &EntityChanges::default())
        .await
        .unwrap();
    assert_eq!(anon.name, format!("entity_{}", &anon.id[..8]));
    assert_eq!(anon.metadata, None);
    let taken = EntityChanges {
        name: Some("bob".into()),
        ..Default::default()
    };
    let err = ids
        .write_entity(EntityTarget::Id(anon.id.clone()), &taken)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "entity name is already in use");
    let err = ids
        .write_entity(EntityTarget::Id("nope".into()), &taken)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "entity not found from id");
    // A rename frees the old name.
    let carol = EntityChanges {
        name: Some("carol".into()),
        ..Default::default()
    };
    ids.write_entity(EntityTarget::Id(bob.id.clone()), &carol)
        .await
        .unwrap();
    assert!(ids.entity_by_name("bob").await.unwrap().is_none());
    assert_eq!(
        ids.entity_by_name("CAROL").await.unwrap().unwrap().id,
        bob.id
    );
}

#[tokio::test]
async fn entity_aliases_are_made_moved_and_limited_to_one_per_mount() {
    let ids = store();
    let bob = entity(&ids, "bob").await;
    let dave = entity(&ids, "dave").await;
    let custom = BTreeMap::from([("k".to_string(), "v".to_string())]);
    let (alias, write) = ids
        .write_entity_alias("bob@x", "auth_jwt_1", Some(&bob), Some(&custom))
        .await
        .unwrap();
    assert_eq!(write, AliasWrite::Created);
    assert_eq!(
        (alias.metadata.clone(), alias.custom_metadata.clone()),
        (None, Some(custom.clone()))
    );
    // Again as it is: unchanged; without its custom metadata: updated (emptied), as
    // OpenBao does. Another alias of bob's on that mount: refused.
    let (_, write) = ids
        .write_entity_alias("bob@x", "auth_jwt_1", Some(&bob), Some(&custom))
        .await
        .unwrap();
    assert_eq!(write, AliasWrite::Unchanged);
    let (emptied, write) = ids
        .write_entity_alias("bob@x", "auth_jwt_1", Some(&bob), None)
        .await
        .unwrap();
    assert_eq!(
        (write, emptied.custom_metadata),
        (AliasWrite::Updated, Some(BTreeMap::new()))
    );
    let err = ids
        .write_entity_alias("bobby", "auth_jwt_1", Some(&bob), None)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Alias already exists for requested entity and mount accessor"
    );
    let err = ids
        .write_entity_alias("x", "auth_jwt_1", Some("nope"), None)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "invalid canonical ID");
    // A login through it is bob's, and drops the custom metadata.
    let meta = BTreeMap::from([("role".to_string(), "demo".to_string())]);
    let (logged, e) = ids
        .upsert_alias("auth_jwt_1", "bob@x", &meta)
        .await
        .unwrap();
    assert_eq!(
        (logged.id.as_str(), e.id.as_str()),
        (alias.id.as_str(), bob.as_str())
    );
    let stored = ids.alias(&alias.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.metadata, stored.custom_metadata),
        (Some(meta), None)
    );
    // Given to dave, it moves: dave lists it, bob no longer does.
    let (moved, write) = ids
        .write_entity_alias("bob@x", "auth_jwt_1", Some(&dave), None)
        .await
        .unwrap();
    assert_eq!(
        (write, moved.id.as_str()),
        (AliasWrite::Moved, alias.id.as_str())
    );
    let listed = |id: String| {
        let ids = &ids;
        async move {
            let e = ids.entity(&id).await.unwrap().unwrap();
            ids.aliases_of(&e)
                .await
                .unwrap()
                .into_iter()
                .map(|a| a.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(dave.clone()).await, vec![alias.id.clone()]);
    assert!(listed(bob.clone()).await.is_empty());
    // Without an entity, a new one is made for the alias.
    let (fresh, write) = ids
        .write_entity_alias("zed", "auth_jwt_1", None, None)
        .await
        .unwrap();
    assert_eq!(write, AliasWrite::Created);
    assert_eq!(
        listed(fresh.canonical_id.clone()).await,
        vec![fresh.id.clone()]
    );
    assert_eq!(ids.alias_ids().await.unwrap().len(), 2);
}

#[tokio::test]
async fn deleting_an_entity_removes_its_aliases_and_memberships() {
    let ids = store();
    let (alias, e) = ids
        .upsert_alias("auth_jwt_1", "alice", &BTreeMap::new())
        .await
        .unwrap();
    let mut changes = named("humans", "internal", &["human"]);
    changes.member_entity_ids = Some(vec![e.id.clone()]);
    let (humans, _) = ids.write_group(GroupTarget::New, &changes).await.unwrap();
    let (eng, _) = ids
        .write_group(GroupTarget::New, &named("eng", "external", &["eng"]))
        .await
        .unwrap();
    group_alias(&ids, &eng, "engineering", "auth_jwt_1")
        .await
        .unwrap();
    ids.sync_external_groups(&e.id, "auth_jwt_1", &["engineering".to_string()])
        .await
        .unwrap();
    assert_eq!(
        ids.identity_policies(&e.id).await.unwrap(),
        ["eng", "human"]
    );
    // A member that does not exist is refused.
    let err = ids
        .write_group(GroupTarget::Id(humans.id.clone()), &members(&["nope"]))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "1 error occurred:\n\t* invalid entity ID \"nope\"\n\n"
    );

    ids.delete_entity(&e.id).await.unwrap();
    assert!(ids.entity(&e.id).await.unwrap().is_none());
    assert!(ids.alias(&alias.id).await.unwrap().is_none());
    assert!(ids.entity_by_name(&e.name).await.unwrap().is_none());
    assert!(ids.identity_policies(&e.id).await.unwrap().is_empty());
    let humans = ids.group(&humans.id).await.unwrap().unwrap();
    assert_eq!(humans.member_entity_ids, Some(vec![]));
    assert_eq!(humans.modify_index, 2);
    let eng = ids.group(&eng.id).await.unwrap().unwrap();
    assert_eq!(ids.member_entity_ids(&eng).await.unwrap(), Some(vec![]));
    // A login through the alias makes a new entity; deleting again is no error.
    let (_, again) = ids
        .upsert_alias("auth_jwt_1", "alice", &BTreeMap::new())
        .await
        .unwrap();
    assert_ne!(again.id, e.id);
    ids.delete_entity(&e.id).await.unwrap();
}

/// Writes of one new entity name and of one new alias at once over three nodes: one
/// entity, one alias.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_name_makes_one_entity_and_one_alias() {
    let nodes = nodes(Arc::new(InMemory::new()), 3);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let node = nodes[i % 3].clone();
        tasks.spawn(async move {
            let (e, _) = node
                .write_entity(EntityTarget::Name("bob".into()), &EntityChanges::default())
                .await?;
            node.write_entity_alias("bob", "auth_jwt_1", Some(&e.id), None)
                .await
        });
    }
    let mut aliases = std::collections::BTreeSet::new();
    while let Some(done) = tasks.join_next().await {
        aliases.insert(done.unwrap().unwrap().0.id);
    }
    assert_eq!(aliases.len(), 1);
    assert_eq!(nodes[0].entity_ids().await.unwrap().len(), 1);
    assert_eq!(nodes[1].alias_ids().await.unwrap().len(), 1);
    let bob = nodes[2].entity_by_name("bob").await.unwrap().unwrap();
    assert_eq!(bob.aliases.len(), 1);
}

/// OpenBao answers an empty map or list as written until the next change of the object
/// that holds it (for an alias: of its entity), and as `null` from then on.
#[tokio::test]
async fn empty_maps_and_lists_become_null_at_the_next_change() {
    let ids = store();
    let empty = EntityChanges {
        metadata: Some(BTreeMap::new()),
        ..Default::default()
    };
    let (e, _) = ids
        .write_entity(EntityTarget::Name("m".into()), &empty)
        .await
        .unwrap();
    assert_eq!(e.metadata, Some(BTreeMap::new()));
    let (alias, _) = ids
        .write_entity_alias("m", "auth_jwt_1", Some(&e.id), None)
        .await
        .unwrap();
    assert_eq!(alias.custom_metadata, Some(BTreeMap::new()));
    let disable = EntityChanges {
        disabled: Some(false),
        ..Default::default()
    };
    let (e, _) = ids
        .write_entity(EntityTarget::Id(e.id.clone()), &disable)
        .await
        .unwrap();
    assert_eq!(e.metadata, None);
    assert_eq!(
        ids.alias(&alias.id).await.unwrap().unwrap().custom_metadata,
        None
    );
    // Asked again without custom metadata: unchanged (none is empty); with some: updated.
    let (_, write) = ids
        .write_entity_alias("m", "auth_jwt_1", Some(&e.id), None)
        .await
        .unwrap();
    assert_eq!(write, AliasWrite::Unchanged);
    let custom = BTreeMap::from([("k".to_string(), "v".to_string())]);
    let (updated, write) = ids
        .write_entity_alias("m", "auth_jwt_1", None, Some(&custom))
        .await
        .unwrap();
    assert_eq!(
        (write, updated.custom_metadata),
        (AliasWrite::Updated, Some(custom))
    );

    let mut changes = named("g", "internal", &[]);
    changes.metadata = Some(BTreeMap::new());
    changes.member_entity_ids = Some(vec![]);
    let (g, _) = ids.write_group(GroupTarget::New, &changes).await.unwrap();
    assert_eq!(
        (
            g.policies.clone(),
            g.metadata.clone(),
            g.member_entity_ids.clone()
        ),
        (Some(vec![]), Some(BTreeMap::new()), Some(vec![]))
    );
    let (g, _) = ids
        .write_group(GroupTarget::Id(g.id.clone()), &GroupChanges::default())
        .await
        .unwrap();
    assert_eq!(
        (g.policies, g.metadata, g.member_entity_ids, g.modify_index),
        (None, None, None, 2)
    );
}
