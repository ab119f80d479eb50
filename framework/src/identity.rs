//! The identity store: one entity per person or machine, with one alias per (mount accessor,
//! alias name); and groups, whose policies their members' tokens get. A login upserts the
//! alias, and for external groups replaces the entity's memberships by the groups whose
//! group alias (on the login's mount) names one of the login's group aliases.
//!
//! Several server nodes may share the store, so every read-modify-write is atomic in
//! storage (compare-and-set, insert-if-absent), never behind an in-process lock:
//! - the name indexes are the arbiters of uniqueness. An object's document is written first
//!   (under a fresh UUID, so nothing finds it yet), then its name is claimed in the index
//!   with insert-if-absent; the loser of a race deletes its unreachable document and uses
//!   the winner's. An index entry naming an object that no longer exists (left by a node
//!   that stopped half way) is taken over by compare-and-set.
//! - documents (groups, an entity's membership) change by compare-and-set retry loops, so
//!   no concurrent edit is lost.
//!
//! Index keys are opaque: `HMAC-SHA256(index key, kind ‖ 0 ‖ mount accessor ‖ 0 ‖ name)`,
//! with a random index key created once in storage (`index-key`), so a copy of the database
//! does not list user or group names in its keys. Stores written before (names hex-encoded
//! in `alias-by-name/`, `group-by-name/`, `group-alias-by-name/`) are migrated at first
//! use.
//!
//! Layout (inside the identity view):
//!
//! | key | value |
//! |---|---|
//! | `entity/<id>`, `alias/<id>` | [`Entity`], [`EntityAlias`] |
//! | `alias-index/<mount accessor>/<mac>` | the alias id |
//! | `group/<id>`, `group-alias/<id>` | [`Group`], [`GroupAlias`] |
//! | `group-index/<mac>` | the group id |
//! | `group-alias-index/<mount accessor>/<mac>` | the group alias id |
//! | `membership/<entity id>` | the groups of an entity (read once per request) |
//! | `group-members/<group id>/<entity id>` | empty: entities that joined an external group at login (for group reads) |
//! | `index-key`, `index-migrated` | the index key; the marker of the migration |
//!
//! Source: Vault identity secrets engine (entities, entity aliases, groups, group aliases).

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::storage::{Retry, View};
use crate::token::now_unix;

/// An identity entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// UUID.
    pub id: String,
    /// `entity_<8 hex>`.
    pub name: String,
    /// Ids of its aliases.
    pub aliases: Vec<String>,
    /// Unix seconds.
    pub creation_time: i64,
    /// A disabled entity cannot log in (403).
    pub disabled: bool,
}

/// An entity alias: the name a mount knows someone by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityAlias {
    /// UUID.
    pub id: String,
    /// The entity it belongs to.
    pub canonical_id: String,
    /// The alias name (e.g. the JWT user claim).
    pub name: String,
    /// Accessor of the mount.
    pub mount_accessor: String,
    /// Metadata of the last login.
    pub metadata: BTreeMap<String, String>,
    /// Unix seconds.
    pub creation_time: i64,
    /// Unix seconds of the last metadata change.
    pub last_update_time: i64,
}

/// The identity store, over the core's storage view.
pub struct IdentityStore {
    storage: View,
    index: tokio::sync::OnceCell<IndexKey>,
}

/// The key of the name indexes.
struct IndexKey([u8; 32]);

#[derive(Serialize, Deserialize)]
struct IndexKeyDocument {
    hmac_key: String,
}

impl IndexKey {
    /// `hex(HMAC-SHA256(key, kind ‖ 0 ‖ scope ‖ 0 ‖ name))`: the name last, so that no two
    /// (kind, scope, name) share an input.
    fn mac(&self, kind: &str, scope: &str, name: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        for part in [
            kind.as_bytes(),
            &[0],
            scope.as_bytes(),
            &[0],
            name.as_bytes(),
        ] {
            mac.update(part);
        }
        hex::encode(mac.finalize().into_bytes())
    }

    fn alias(&self, mount_accessor: &str, name: &str) -> String {
        format!(
            "alias-index/{mount_accessor}/{}",
            self.mac("entity-alias", mount_accessor, name)
        )
    }

    fn group(&self, name: &str) -> String {
        format!("group-index/{}", self.mac("group", "", name))
    }

    fn group_alias(&self, mount_accessor: &str, name: &str) -> String {
        format!(
            "group-alias-index/{mount_accessor}/{}",
            self.mac("group-alias", mount_accessor, name)
        )
    }
}

const INDEX_KEY: &str = "index-key";
const INDEX_MIGRATED: &str = "index-migrated";

fn entity_key(id: &str) -> String {
    format!("entity/{id}")
}

fn alias_key(id: &str) -> String {
    format!("alias/{id}")
}

fn group_key(id: &str) -> String {
    format!("group/{id}")
}

fn group_alias_key(id: &str) -> String {
    format!("group-alias/{id}")
}

fn membership_key(entity_id: &str) -> String {
    format!("membership/{entity_id}")
}

fn member_key(group_id: &str, entity_id: &str) -> String {
    format!("group-members/{group_id}/{entity_id}")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The outcome of claiming a name in an index.
enum Claim {
    /// The index now names the claimant.
    Ours,
    /// Another live object has the name.
    Taken,
}

impl IdentityStore {
    /// The store in `storage`. Its index key is read (or created, once, even with several
    /// server nodes starting together) at first use, and a store written by an earlier
    /// version is migrated then.
    pub fn new(storage: View) -> Self {
        IdentityStore {
            storage,
            index: tokio::sync::OnceCell::new(),
        }
    }

    async fn index(&self) -> Result<&IndexKey> {
        self.index
            .get_or_try_init(|| async {
                let mut fresh = [0u8; 32];
                OsRng.fill_bytes(&mut fresh);
                let document = IndexKeyDocument {
                    hmac_key: hex::encode(fresh),
                };
                let bytes = serde_json::to_vec(&document).map_err(Error::internal)?;
                self.storage.put_if_absent(INDEX_KEY, &bytes).await?;
                let stored: IndexKeyDocument = self
                    .storage
                    .get_json(INDEX_KEY)
                    .await?
                    .ok_or_else(|| Error::internal("identity index key vanished"))?;
                let key = hex::decode(&stored.hmac_key)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .map(IndexKey)
                    .ok_or_else(|| Error::internal("corrupt identity index key"))?;
                self.migrate(&key).await?;
                Ok(key)
            })
            .await
    }

    /// Moves the name indexes of a store written before opaque keys (names hex-encoded in
    /// the key) to keyed hashes, once; several nodes may run it at the same time.
    async fn migrate(&self, key: &IndexKey) -> Result<()> {
        if self.storage.get(INDEX_MIGRATED).await?.is_some() {
            return Ok(());
        }
        for (legacy, per_mount) in [
            ("alias-by-name/", true),
            ("group-by-name/", false),
            ("group-alias-by-name/", true),
        ] {
            let folders = match per_mount {
                true => self.storage.list(legacy).await?,
                false => vec![String::new()],
            };
            for folder in folders.iter().filter(|f| f.is_empty() || f.ends_with('/')) {
                let accessor = folder.trim_end_matches('/');
                for hex_name in self.storage.list(&format!("{legacy}{folder}")).await? {
                    let old = format!("{legacy}{folder}{hex_name}");
                    let Some(name) = hex::decode(&hex_name)
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok())
                    else {
                        tracing::warn!(target: "authmount::identity", key = %old,
                            "legacy identity index key is not a hex-encoded name: left as is");
                        continue;
                    };
                    let new = match legacy {
                        "alias-by-name/" => key.alias(accessor, &name),
                        "group-by-name/" => key.group(&name),
                        _ => key.group_alias(accessor, &name),
                    };
                    if let Some(value) = self.storage.get(&old).await? {
                        self.storage.put_if_absent(&new, &value).await?;
                    }
                    self.storage.delete(&old).await?;
                }
            }
        }
        let marker = serde_json::to_vec(&serde_json::json!({ "time": now_unix() }))
            .map_err(Error::internal)?;
        self.storage.put_if_absent(INDEX_MIGRATED, &marker).await?;
        Ok(())
    }

    /// Points the index entry `key` at `id` (an object whose document `documents<id>` is
    /// already stored) unless it names another live object; atomic across nodes.
    async fn claim(&self, key: &str, id: &str, documents: &str) -> Result<Claim> {
        let mut retry = Retry::new();
        loop {
            let current = self.storage.get(key).await?;
            if let Some(other) = &current {
                if other == id.as_bytes() {
                    return Ok(Claim::Ours);
                }
                let live = format!("{documents}{}", text(other));
                if self.storage.get(&live).await?.is_some() {
                    return Ok(Claim::Taken);
                }
            }
            // Absent, or naming an object that is gone: take it, unless someone was quicker.
            if self
                .storage
                .compare_and_put(key, current.as_deref(), id.as_bytes())
                .await?
            {
                return Ok(Claim::Ours);
            }
            retry.lost(key).await?;
        }
    }

    /// Removes the index entry `key` if it names `id`. Safe while the object `id` still
    /// exists: no one else may claim an entry naming a live object.
    async fn release(&self, key: &str, id: &str) -> Result<()> {
        if self.storage.get(key).await?.as_deref() == Some(id.as_bytes()) {
            self.storage.delete(key).await?;
        }
        Ok(())
    }

    /// Finds or creates the alias `name` on `mount_accessor` (and its entity), updates its
    /// metadata when it changed, and returns the alias. Concurrent first logins of the same
    /// alias, on any nodes, create exactly one entity and one alias: the alias index is the
    /// arbiter, and a loser removes the documents it wrote before anyone could see them.
    pub async fn upsert_alias(
        &self,
        mount_accessor: &str,
        name: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<(EntityAlias, Entity)> {
        let key = self.index().await?.alias(mount_accessor, name);
        let mut retry = Retry::new();
        loop {
            let indexed = self.storage.get(&key).await?;
            if let Some(alias_id) = &indexed {
                if let Some(found) = self.existing(&text(alias_id), metadata).await? {
                    return Ok(found);
                }
            }
            let now = now_unix();
            let entity_id = uuid::Uuid::new_v4().to_string();
            let alias = EntityAlias {
                id: uuid::Uuid::new_v4().to_string(),
                canonical_id: entity_id.clone(),
                name: name.to_string(),
                mount_accessor: mount_accessor.to_string(),
                metadata: metadata.clone(),
                creation_time: now,
                last_update_time: now,
            };
            let entity = Entity {
                name: format!("entity_{}", &entity_id[..8]),
                id: entity_id,
                aliases: vec![alias.id.clone()],
                creation_time: now,
                disabled: false,
            };
            self.storage
                .put_batch(vec![
                    (
                        entity_key(&entity.id),
                        serde_json::to_vec(&entity).map_err(Error::internal)?,
                    ),
                    (
                        alias_key(&alias.id),
                        serde_json::to_vec(&alias).map_err(Error::internal)?,
                    ),
                ])
                .await?;
            if self
                .storage
                .compare_and_put(&key, indexed.as_deref(), alias.id.as_bytes())
                .await?
            {
                return Ok((alias, entity));
            }
            // Another login of the same alias won: nothing points at these two yet.
            self.storage.delete(&alias_key(&alias.id)).await?;
            self.storage.delete(&entity_key(&entity.id)).await?;
            retry.lost("an entity alias").await?;
        }
    }

    /// The alias `alias_id` and its entity, with `metadata` stored on the alias when it
    /// changed; `None` when either is gone (the index entry is then taken over).
    async fn existing(
        &self,
        alias_id: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Option<(EntityAlias, Entity)>> {
        let Some(alias) = self.alias(alias_id).await? else {
            return Ok(None);
        };
        let Some(entity) = self.entity(&alias.canonical_id).await? else {
            return Ok(None);
        };
        if &alias.metadata == metadata {
            return Ok(Some((alias, entity)));
        }
        let now = now_unix();
        let (_, alias) = self
            .storage
            .update_json::<EntityAlias, _>(&alias_key(alias_id), |current| {
                Ok(current.filter(|a| &a.metadata != metadata).map(|mut a| {
                    a.metadata = metadata.clone();
                    a.last_update_time = now;
                    a
                }))
            })
            .await?;
        Ok(alias.map(|a| (a, entity)))
    }

    /// The entity with this id.
    pub async fn entity(&self, id: &str) -> Result<Option<Entity>> {
        self.storage.get_json(&entity_key(id)).await
    }

    /// The alias with this id.
    pub async fn alias(&self, id: &str) -> Result<Option<EntityAlias>> {
        self.storage.get_json(&alias_key(id)).await
    }

    /// Removes every alias of the mount with this accessor (the mount was disabled);
    /// entities stay, as in Vault.
    pub async fn remove_mount_aliases(&self, mount_accessor: &str) -> Result<()> {
        self.index().await?;
        let prefix = format!("alias-index/{mount_accessor}/");
        for mac in self.storage.list(&prefix).await? {
            let key = format!("{prefix}{mac}");
            let Some(alias_id) = self.storage.get(&key).await? else {
                continue;
            };
            let alias_id = text(&alias_id);
            // Unindexed first, so that no lookup finds a half-removed alias.
            self.storage.delete(&key).await?;
            if let Some(alias) = self.alias(&alias_id).await? {
                self.storage
                    .update_json::<Entity, _>(&entity_key(&alias.canonical_id), |current| {
                        Ok(current
                            .filter(|e| e.aliases.contains(&alias_id))
                            .map(|mut e| {
                                e.aliases.retain(|a| a != &alias_id);
                                e
                            }))
                    })
                    .await?;
            }
            self.storage.delete(&alias_key(&alias_id)).await?;
        }
        Ok(())
    }
}

/// An identity group. Source: Vault API `identity/group`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// UUID.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `internal` (members set by hand) or `external` (members set at login by group aliases).
    #[serde(rename = "type")]
    pub kind: String,
    /// Policies the members' tokens get (`identity_policies`).
    pub policies: Vec<String>,
    /// Free metadata.
    pub metadata: BTreeMap<String, String>,
    /// Member entities of an internal group (an external group's members are found with
    /// [`IdentityStore::member_entity_ids`]).
    pub member_entity_ids: Vec<String>,
    /// The group's alias id (external groups), empty when none.
    pub alias_id: String,
    /// Unix seconds.
    pub creation_time: i64,
    /// Unix seconds.
    pub last_update_time: i64,
}

/// A group alias: the name an auth mount's group claim uses for an external group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupAlias {
    /// UUID.
    pub id: String,
    /// The group name as the mount reports it (e.g. a `groups_claim` value).
    pub name: String,
    /// Accessor of the mount.
    pub mount_accessor: String,
    /// The group's id.
    pub canonical_id: String,
    /// Unix seconds.
    pub creation_time: i64,
}

/// What a write to a group changes: each `Some` replaces the group's field, `None` keeps it.
/// Source: Vault API `identity/group` (create or update).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupChanges {
    /// The name (unique); a new group without one is named `group_<8 hex of its id>`.
    pub name: Option<String>,
    /// `internal` or `external`; fixed once the group exists.
    pub kind: Option<String>,
    /// Policies, already normalised.
    pub policies: Option<Vec<String>>,
    /// Metadata.
    pub metadata: Option<BTreeMap<String, String>>,
    /// Member entities (internal groups only).
    pub member_entity_ids: Option<Vec<String>>,
}

impl GroupChanges {
    /// Applies the changes to `group` (`existing`: it is stored already).
    /// Errors: 400 for a bad type, a type change, members on an external group.
    fn apply(&self, group: &mut Group, existing: bool) -> Result<()> {
        if let Some(name) = &self.name {
            group.name = name.clone();
        }
        if group.name.is_empty() {
            group.name = format!("group_{}", &group.id[..8]);
        }
        if let Some(kind) = &self.kind {
            if kind != "internal" && kind != "external" {
                return Err(Error::invalid(format!("invalid group type {kind:?}")));
            }
            if existing && &group.kind != kind {
                return Err(Error::invalid("group type cannot be changed"));
            }
            group.kind = kind.clone();
        }
        if let Some(policies) = &self.policies {
            group.policies = policies.clone();
        }
        if let Some(metadata) = &self.metadata {
            group.metadata = metadata.clone();
        }
        if let Some(members) = &self.member_entity_ids {
            if group.kind == "external" {
                return Err(Error::invalid(
                    "member entities can't be set manually for external groups",
                ));
            }
            group.member_entity_ids = members.clone();
        }
        Ok(())
    }
}

/// Which group a write is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupTarget {
    /// The group with this id. Errors: 404 when there is none.
    Id(String),
    /// The group with this name, created when there is none.
    Name(String),
    /// A new group. Errors: 400 when the changes name a group that exists.
    New,
}

/// The groups an entity belongs to, kept in one document per entity so that a login or a
/// request reads it with one `get` (no listing on the hot path).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Membership {
    /// External groups, per mount accessor, as its last login's group aliases named them.
    external: BTreeMap<String, Vec<String>>,
    /// Internal groups that list the entity among their members.
    internal: Vec<String>,
    /// Raised by every change of `internal`, so that a compare-and-set based on an older
    /// read always fails (see [`IdentityStore::reconcile_member`]).
    #[serde(default)]
    version: u64,
}

/// The policies of these groups, sorted and deduplicated.
pub fn group_policies(groups: &[Group]) -> Vec<String> {
    let mut policies: Vec<String> = groups.iter().flat_map(|g| g.policies.clone()).collect();
    policies.sort();
    policies.dedup();
    policies
}

impl IdentityStore {
    /// The group with this id.
    pub async fn group(&self, id: &str) -> Result<Option<Group>> {
        self.storage.get_json(&group_key(id)).await
    }

    /// The group with this name.
    pub async fn group_by_name(&self, name: &str) -> Result<Option<Group>> {
        Ok(self.group_by_name_versioned(name).await?.map(|(g, _)| g))
    }

    async fn group_by_name_versioned(&self, name: &str) -> Result<Option<(Group, Vec<u8>)>> {
        let key = self.index().await?.group(name);
        match self.storage.get(&key).await? {
            Some(id) => {
                self.storage
                    .get_json_versioned(&group_key(&text(&id)))
                    .await
            }
            None => Ok(None),
        }
    }

    /// Creates or updates a group, atomically across server nodes: the changes are applied
    /// to the group as stored and written with compare-and-set (again on the new state when
    /// another write came first), so concurrent writes of different fields all stay; two
    /// creates of one name make one group (the second updates it). Then each entity that
    /// joined or left the group has its membership brought in line. Returns the group as
    /// stored. Errors: 404 for an unknown id; 400 for a name another group has, and those
    /// of [`GroupChanges`].
    pub async fn write_group(&self, target: GroupTarget, changes: &GroupChanges) -> Result<Group> {
        let index = self.index().await?;
        let mut retry = Retry::new();
        loop {
            let stored = match &target {
                GroupTarget::Id(id) => Some(
                    self.storage
                        .get_json_versioned::<Group>(&group_key(id))
                        .await?
                        .ok_or(Error::NotFound)?,
                ),
                GroupTarget::Name(name) => self.group_by_name_versioned(name).await?,
                GroupTarget::New => None,
            };
            let now = now_unix();
            let (before, raw) = match stored {
                Some((group, raw)) => (Some(group), Some(raw)),
                None => (None, None),
            };
            let mut group = before.clone().unwrap_or_else(|| Group {
                id: uuid::Uuid::new_v4().to_string(),
                name: match &target {
                    GroupTarget::Name(name) => name.clone(),
                    _ => String::new(),
                },
                kind: "internal".into(),
                policies: vec![],
                metadata: BTreeMap::new(),
                member_entity_ids: vec![],
                alias_id: String::new(),
                creation_time: now,
                last_update_time: now,
            });
            changes.apply(&mut group, before.is_some())?;
            group.last_update_time = now;
            let name_key = index.group(&group.name);
            let taken = || Error::invalid(format!("group name {:?} is already in use", group.name));
            match &before {
                None => {
                    // The document first: nothing finds it until its name is claimed.
                    self.storage.put_json(&group_key(&group.id), &group).await?;
                    if let Claim::Taken = self.claim(&name_key, &group.id, "group/").await? {
                        self.storage.delete(&group_key(&group.id)).await?;
                        if target == GroupTarget::New {
                            return Err(taken());
                        }
                        // Another node created it first: this write updates that group.
                        retry.lost("a group name").await?;
                        continue;
                    }
                }
                Some(old) => {
                    let renamed = old.name != group.name;
                    if renamed {
                        if let Claim::Taken = self.claim(&name_key, &group.id, "group/").await? {
                            return Err(taken());
                        }
                    }
                    if !self
                        .storage
                        .compare_and_put_json(&group_key(&group.id), raw.as_deref(), &group)
                        .await?
                    {
                        retry.lost("a group").await?;
                        continue;
                    }
                    if renamed {
                        self.release(&index.group(&old.name), &group.id).await?;
                    }
                }
            }
            let old_members = before.map(|b| b.member_entity_ids).unwrap_or_default();
            let mut changed: Vec<&String> = old_members
                .iter()
                .filter(|m| !group.member_entity_ids.contains(m))
                .chain(
                    group
                        .member_entity_ids
                        .iter()
                        .filter(|m| !old_members.contains(m)),
                )
                .collect();
            changed.sort();
            changed.dedup();
            for entity_id in changed {
                self.reconcile_member(entity_id, &group.id).await?;
            }
            return Ok(group);
        }
    }

    /// Makes the membership document of `entity_id` say whether the internal group
    /// `group_id` lists it, as the group stands now.
    ///
    /// It reads the membership, then the group, and always writes (raising `version`), so
    /// two of these racing cannot both store: the one that stores last read the group last,
    /// after the group write that caused it. A write of the group is followed by this for
    /// every entity it added or removed, so the membership ends up as the group says.
    async fn reconcile_member(&self, entity_id: &str, group_id: &str) -> Result<()> {
        let key = membership_key(entity_id);
        let mut retry = Retry::new();
        loop {
            let (mut membership, raw) = match self.storage.get_json_versioned(&key).await? {
                Some((m, raw)) => (m, Some(raw)),
                None => (Membership::default(), None),
            };
            let listed = self.group(group_id).await?.is_some_and(|g| {
                g.kind == "internal" && g.member_entity_ids.iter().any(|m| m == entity_id)
            });
            membership.internal.retain(|g| g != group_id);
            if listed {
                membership.internal.push(group_id.to_string());
                membership.internal.sort();
            }
            membership.version += 1;
            if self
                .storage
                .compare_and_put_json(&key, raw.as_deref(), &membership)
                .await?
            {
                return Ok(());
            }
            retry.lost("an entity's group membership").await?;
        }
    }

    async fn membership(&self, entity_id: &str) -> Result<Membership> {
        Ok(self
            .storage
            .get_json(&membership_key(entity_id))
            .await?
            .unwrap_or_default())
    }

    /// Deletes a group, its alias and its members' memberships.
    pub async fn delete_group(&self, group: &Group) -> Result<()> {
        let index = self.index().await?;
        let Some(group) = self.group(&group.id).await? else {
            return Ok(());
        };
        if !group.alias_id.is_empty() {
            if let Some(alias) = self.group_alias(&group.alias_id).await? {
                self.delete_group_alias(&alias).await?;
            }
        }
        self.release(&index.group(&group.name), &group.id).await?;
        self.storage.delete(&group_key(&group.id)).await?;
        for member in &group.member_entity_ids {
            self.reconcile_member(member, &group.id).await?;
        }
        let joined = format!("group-members/{}/", group.id);
        for entity_id in self.storage.list(&joined).await? {
            self.storage.delete(&format!("{joined}{entity_id}")).await?;
        }
        Ok(())
    }

    /// Ids of every group, sorted.
    pub async fn group_ids(&self) -> Result<Vec<String>> {
        self.storage.list("group/").await
    }

    /// The member entities of a group, as Vault's group read lists them: an internal
    /// group's own list; for an external group, the entities whose last login on a mount
    /// named its group alias. The login path only adds to an external group's list of
    /// joiners; this read drops those that have left since.
    pub async fn member_entity_ids(&self, group: &Group) -> Result<Vec<String>> {
        if group.kind != "external" {
            return Ok(group.member_entity_ids.clone());
        }
        let joined = format!("group-members/{}/", group.id);
        let mut members = Vec::new();
        for entity_id in self.storage.list(&joined).await? {
            if !self.in_external_group(&entity_id, &group.id).await? {
                // Gone; but a login may be adding it back right now, after its membership
                // write: look again after the delete, and put it back if so.
                self.storage.delete(&format!("{joined}{entity_id}")).await?;
                if !self.in_external_group(&entity_id, &group.id).await? {
                    continue;
                }
                self.storage
                    .put(&member_key(&group.id, &entity_id), b"")
                    .await?;
            }
            members.push(entity_id);
        }
        Ok(members)
    }

    async fn in_external_group(&self, entity_id: &str, group_id: &str) -> Result<bool> {
        let membership = self.membership(entity_id).await?;
        Ok(membership
            .external
            .values()
            .any(|ids| ids.iter().any(|g| g == group_id)))
    }

    /// The group alias with this id.
    pub async fn group_alias(&self, id: &str) -> Result<Option<GroupAlias>> {
        self.storage.get_json(&group_alias_key(id)).await
    }

    /// Stores a new group alias and links it from its group; a (mount, name) pair is taken
    /// once, even by concurrent writes on several nodes. Errors: 400 when the group does not
    /// exist, is not external, already has another alias, or the pair is taken.
    pub async fn put_group_alias(&self, alias: &GroupAlias) -> Result<()> {
        let index = self.index().await?;
        let linkable = |group: Option<&Group>| -> Result<()> {
            let group =
                group.ok_or_else(|| Error::invalid("invalid canonical_id: no such group"))?;
            if group.kind != "external" {
                return Err(Error::invalid(
                    "group aliases can only be set on external groups",
                ));
            }
            if !group.alias_id.is_empty() && group.alias_id != alias.id {
                return Err(Error::invalid("the group already has an alias"));
            }
            Ok(())
        };
        linkable(self.group(&alias.canonical_id).await?.as_ref())?;
        // The document first (nothing finds it yet), then the name, then the link.
        let document = group_alias_key(&alias.id);
        self.storage.put_json(&document, alias).await?;
        let name_key = index.group_alias(&alias.mount_accessor, &alias.name);
        if let Claim::Taken = self.claim(&name_key, &alias.id, "group-alias/").await? {
            self.storage.delete(&document).await?;
            return Err(Error::invalid(format!(
                "group alias {:?} already exists on this mount",
                alias.name
            )));
        }
        let linked = self
            .storage
            .update_json::<Group, _>(&group_key(&alias.canonical_id), |current| {
                linkable(current.as_ref())?;
                Ok(current.filter(|g| g.alias_id != alias.id).map(|mut g| {
                    g.alias_id = alias.id.clone();
                    g
                }))
            })
            .await;
        if let Err(e) = linked {
            self.release(&name_key, &alias.id).await?;
            self.storage.delete(&document).await?;
            return Err(e);
        }
        Ok(())
    }

    /// Deletes a group alias and unlinks it from its group.
    pub async fn delete_group_alias(&self, alias: &GroupAlias) -> Result<()> {
        let index = self.index().await?;
        self.release(
            &index.group_alias(&alias.mount_accessor, &alias.name),
            &alias.id,
        )
        .await?;
        self.storage.delete(&group_alias_key(&alias.id)).await?;
        self.storage
            .update_json::<Group, _>(&group_key(&alias.canonical_id), |current| {
                Ok(current.filter(|g| g.alias_id == alias.id).map(|mut g| {
                    g.alias_id.clear();
                    g
                }))
            })
            .await?;
        Ok(())
    }

    /// Ids of every group alias, sorted.
    pub async fn group_alias_ids(&self) -> Result<Vec<String>> {
        self.storage.list("group-alias/").await
    }

    /// At login: makes `entity_id` a member of exactly the external groups whose alias on
    /// `mount_accessor` is one of `names` (Vault: group aliases only attach to existing
    /// groups; none are created), and returns every group the entity is now in. Writes only
    /// when the memberships changed (by compare-and-set); no listing.
    pub async fn sync_external_groups(
        &self,
        entity_id: &str,
        mount_accessor: &str,
        names: &[String],
    ) -> Result<Vec<Group>> {
        let index = self.index().await?;
        let mut ids = Vec::new();
        for name in names {
            let key = index.group_alias(mount_accessor, name);
            if let Some(alias_id) = self.storage.get(&key).await? {
                if let Some(alias) = self.group_alias(&text(&alias_id)).await? {
                    ids.push(alias.canonical_id);
                }
            }
        }
        ids.sort();
        ids.dedup();
        let (before, after) = self
            .storage
            .update_json::<Membership, _>(&membership_key(entity_id), |current| {
                let mut next = current.clone().unwrap_or_default();
                if ids.is_empty() {
                    next.external.remove(mount_accessor);
                } else {
                    next.external
                        .insert(mount_accessor.to_string(), ids.clone());
                }
                let unchanged = next == current.unwrap_or_default();
                Ok((!unchanged).then_some(next))
            })
            .await?;
        let membership = after.unwrap_or_default();
        // Joiners are listed for group reads, after the membership write (see
        // `member_entity_ids`); those who left are dropped by the next read.
        let was = before
            .and_then(|m| m.external.get(mount_accessor).cloned())
            .unwrap_or_default();
        for group_id in membership
            .external
            .get(mount_accessor)
            .into_iter()
            .flatten()
            .filter(|g| !was.contains(g))
        {
            self.storage
                .put(&member_key(group_id, entity_id), b"")
                .await?;
        }
        self.groups_in(entity_id, &membership).await
    }

    /// The groups `entity_id` belongs to now: external ones through its logins, internal
    /// ones by membership.
    pub async fn groups_of(&self, entity_id: &str) -> Result<Vec<Group>> {
        let membership = self.membership(entity_id).await?;
        self.groups_in(entity_id, &membership).await
    }

    /// The groups of a membership document that exist and agree: an internal group counts
    /// only while it lists the entity (fails closed on a membership left stale).
    async fn groups_in(&self, entity_id: &str, membership: &Membership) -> Result<Vec<Group>> {
        let mut ids: Vec<&String> = membership
            .external
            .values()
            .flatten()
            .chain(&membership.internal)
            .collect();
        ids.sort();
        ids.dedup();
        let mut groups = Vec::new();
        for id in ids {
            if let Some(g) = self.group(id).await? {
                let agrees = match g.kind.as_str() {
                    "external" => true,
                    _ => g.member_entity_ids.iter().any(|m| m == entity_id),
                };
                if agrees {
                    groups.push(g);
                }
            }
        }
        Ok(groups)
    }

    /// The policies `entity_id` gets from its groups now, sorted and deduplicated.
    pub async fn identity_policies(&self, entity_id: &str) -> Result<Vec<String>> {
        if entity_id.is_empty() {
            return Ok(vec![]);
        }
        Ok(group_policies(&self.groups_of(entity_id).await?))
    }

    /// Ids of every entity, sorted.
    pub async fn entity_ids(&self) -> Result<Vec<String>> {
        self.storage.list("entity/").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{InMemory, SqlStore, Storage};
    use std::sync::Arc;

    fn store() -> IdentityStore {
        IdentityStore::new(View::new(Arc::new(InMemory::new()), "core/identity/"))
    }

    /// Identity stores over one store, as several server nodes share a database.
    fn nodes(store: Arc<dyn Storage>, n: usize) -> Vec<Arc<IdentityStore>> {
        (0..n)
            .map(|_| {
                Arc::new(IdentityStore::new(View::new(
                    store.clone(),
                    "core/identity/",
                )))
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

    async fn group_alias(
        ids: &IdentityStore,
        group: &Group,
        name: &str,
        accessor: &str,
    ) -> Result<()> {
        let alias = GroupAlias {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.into(),
            mount_accessor: accessor.into(),
            canonical_id: group.id.clone(),
            creation_time: 0,
        };
        ids.put_group_alias(&alias).await
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
            .unwrap();
        let ops = ids
            .write_group(
                GroupTarget::New,
                &named("ops", "external", &["ops", "shared"]),
            )
            .await
            .unwrap();
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
        let internal = ids.write_group(GroupTarget::New, &humans).await.unwrap();
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
            .unwrap();
        assert_ne!(other.id, devs.id);
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
        assert_eq!(ids.alias(&a1.id).await.unwrap().unwrap().metadata, meta);
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
                    .unwrap(),
            );
        }
        let expected: Vec<String> = (0..8).map(|g| format!("p{g}")).collect();
        for entity in ["e1", "e2"] {
            let mut tasks = tokio::task::JoinSet::new();
            for (i, group) in groups.iter().enumerate() {
                let (node, id) = (nodes[i % n].clone(), group.id.clone());
                tasks.spawn(async move {
                    node.write_group(GroupTarget::Id(id), &members(&[entity]))
                        .await
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.unwrap().unwrap();
            }
            assert_eq!(nodes[0].identity_policies(entity).await.unwrap(), expected);
            assert_eq!(nodes[0].membership(entity).await.unwrap().internal.len(), 8);
        }
        assert!(nodes[0].identity_policies("e1").await.unwrap().is_empty());
        assert!(nodes[0].membership("e1").await.unwrap().internal.is_empty());
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
            .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8 {
            let (node, id) = (nodes[i % 2].clone(), group.id.clone());
            tasks.spawn(async move {
                let changes = match i {
                    0 => GroupChanges {
                        policies: Some(vec!["kept".into()]),
                        ..Default::default()
                    },
                    1 => members(&["e"]),
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
        assert_eq!(stored.policies, ["kept"]);
        assert_eq!(stored.member_entity_ids, ["e"]);
        assert_eq!(stored.metadata["k"], "v");
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
            ids.insert(done.unwrap().unwrap().id);
        }
        assert_eq!(ids.len(), 1);
        assert_eq!(nodes[0].group_ids().await.unwrap().len(), 1);
        // A second external group; one alias name claimed for both at once: taken once.
        let other = nodes[0]
            .write_group(GroupTarget::New, &named("other", "external", &[]))
            .await
            .unwrap();
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
        let ids = IdentityStore::new(view.clone());
        let secret = ["alice@example.com", "secret-team", "eng-team"];
        let (_, e) = ids
            .upsert_alias("auth_jwt_1", secret[0], &BTreeMap::new())
            .await
            .unwrap();
        let group = ids
            .write_group(GroupTarget::New, &named(secret[1], "external", &["p"]))
            .await
            .unwrap();
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
        let other = IdentityStore::new(elsewhere.clone());
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

    /// The layout written before opaque index keys: names hex-encoded in the keys.
    async fn write_legacy_store(view: &View) -> (Entity, EntityAlias, Group) {
        let alias = EntityAlias {
            id: "a-1".into(),
            canonical_id: "e-1".into(),
            name: "alice".into(),
            mount_accessor: "auth_jwt_1".into(),
            metadata: BTreeMap::new(),
            creation_time: 1,
            last_update_time: 1,
        };
        let entity = Entity {
            id: "e-1".into(),
            name: "entity_e1".into(),
            aliases: vec!["a-1".into()],
            creation_time: 1,
            disabled: false,
        };
        let group = Group {
            id: "g-1".into(),
            name: "eng".into(),
            kind: "external".into(),
            policies: vec!["eng".into()],
            metadata: BTreeMap::new(),
            member_entity_ids: vec![],
            alias_id: "ga-1".into(),
            creation_time: 1,
            last_update_time: 1,
        };
        let group_alias = GroupAlias {
            id: "ga-1".into(),
            name: "engineering".into(),
            mount_accessor: "auth_jwt_1".into(),
            canonical_id: "g-1".into(),
            creation_time: 1,
        };
        view.put_json("entity/e-1", &entity).await.unwrap();
        view.put_json("alias/a-1", &alias).await.unwrap();
        view.put_json("group/g-1", &group).await.unwrap();
        view.put_json("group-alias/ga-1", &group_alias)
            .await
            .unwrap();
        let legacy = [
            (
                format!("alias-by-name/auth_jwt_1/{}", hex::encode("alice")),
                "a-1",
            ),
            (format!("group-by-name/{}", hex::encode("eng")), "g-1"),
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
        (entity, alias, group)
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
        assert_eq!(groups.len(), 1);
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
            .unwrap();
        assert_eq!(ids.group_by_name("g").await.unwrap().unwrap().id, group.id);
    }

    #[tokio::test]
    async fn an_external_group_lists_the_entities_that_joined_it_at_login() {
        let ids = store();
        let group = ids
            .write_group(GroupTarget::New, &named("eng", "external", &["eng"]))
            .await
            .unwrap();
        group_alias(&ids, &group, "engineering", "auth_jwt_1")
            .await
            .unwrap();
        let claim = vec!["engineering".to_string()];
        for entity in ["e1", "e2"] {
            ids.sync_external_groups(entity, "auth_jwt_1", &claim)
                .await
                .unwrap();
        }
        assert_eq!(ids.member_entity_ids(&group).await.unwrap(), ["e1", "e2"]);
        // e2's next login no longer names the group: the next read drops it.
        ids.sync_external_groups("e2", "auth_jwt_1", &[])
            .await
            .unwrap();
        assert_eq!(ids.member_entity_ids(&group).await.unwrap(), ["e1"]);
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
}
