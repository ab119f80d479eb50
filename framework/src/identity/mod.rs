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
//! | `entity-index/<mac>` | the entity id (names compared without case) |
//! | `group/<id>`, `group-alias/<id>` | [`Group`], [`GroupAlias`] |
//! | `group-index/<mac>` | the group id |
//! | `group-alias-index/<mount accessor>/<mac>` | the group alias id |
//! | `membership/<entity id>` | the groups of an entity (read once per request) |
//! | `group-members/<group id>/<entity id>` | empty: entities that joined an external group at login (for group reads) |
//! | `index-key`, `index-migrated` | the index key; the marker of the migration |
//! | `entity-index-built` | the marker of the indexing of entity names (entities made before entity names were indexed) |
//!
//! Source: Vault identity secrets engine (entities, entity aliases, groups, group aliases).

use std::collections::BTreeMap;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::cache::Loaded;
use crate::clock::{Clock, Timestamp};
use crate::error::{Error, Result};
use crate::storage::{Retry, View};

mod entities;
mod groups;
#[cfg(test)]
mod tests;

pub use entities::{AliasWrite, EntityChanges, EntityTarget};
pub use groups::{group_policies, Group, GroupAlias, GroupChanges, GroupTarget};

/// An identity entity. Source: Vault API `identity/entity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// UUID.
    pub id: String,
    /// Unique name, compared without case: given at creation, or `entity_<8 hex>`.
    pub name: String,
    /// Ids of its aliases.
    pub aliases: Vec<String>,
    /// Policies its tokens get (with its groups', as `identity_policies`), normalised.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Free metadata; `None` until some is written (answered as `null`).
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// When it was created.
    pub creation_time: Timestamp,
    /// When it was last written through `identity/entity` (zero in documents of earlier
    /// versions: see [`Entity::updated`]).
    #[serde(default)]
    pub last_update_time: Timestamp,
    /// A disabled entity cannot log in, and its tokens are refused (403).
    pub disabled: bool,
}

impl Entity {
    /// `last_update_time`, or the creation time where an earlier version stored none.
    pub fn updated(&self) -> Timestamp {
        match self.last_update_time {
            Timestamp(0) => self.creation_time,
            t => t,
        }
    }
}

/// Makes an empty list `None`. OpenBao answers an empty list or map as written (`[]`,
/// `{}`) until the next change of the object that holds it, which stores it as absent
/// (`null`); every change here does the same to the fields it does not set.
pub(crate) fn settle_list(list: &mut Option<Vec<String>>) -> bool {
    let empty = list.as_ref().is_some_and(Vec::is_empty);
    if empty {
        *list = None;
    }
    empty
}

/// Makes an empty map `None` (see [`settle_list`]).
pub(crate) fn settle_map(map: &mut Option<BTreeMap<String, String>>) -> bool {
    let empty = map.as_ref().is_some_and(BTreeMap::is_empty);
    if empty {
        *map = None;
    }
    empty
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
    /// Metadata of the last login; `None` for an alias made through `identity/entity-alias`
    /// that no login has used yet.
    pub metadata: Option<BTreeMap<String, String>>,
    /// Metadata given through `identity/entity-alias` (`custom_metadata`); `None` for an
    /// alias made or changed by a login (answered as `null`, as OpenBao does).
    #[serde(default)]
    pub custom_metadata: Option<BTreeMap<String, String>>,
    /// When it was created.
    pub creation_time: Timestamp,
    /// When its metadata or its entity last changed.
    pub last_update_time: Timestamp,
}

impl EntityAlias {
    /// Empty metadata become `None` (see [`settle_list`]); true when something changed.
    fn settle(&mut self) -> bool {
        let metadata = settle_map(&mut self.metadata);
        settle_map(&mut self.custom_metadata) || metadata
    }
}

/// The identity store, over the core's storage view.
pub struct IdentityStore {
    storage: View,
    clock: Clock,
    /// The index key once read; forgotten by [`IdentityStore::forget_cached`] (a restore).
    index: Loaded<IndexKey>,
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

    /// Group names are case-insensitive, as in Vault: the index keys the lower-cased name.
    fn group(&self, name: &str) -> String {
        format!(
            "group-index/{}",
            self.mac("group", "", &name.to_lowercase())
        )
    }

    /// Entity names are case-insensitive too: the index keys the lower-cased name.
    fn entity(&self, name: &str) -> String {
        format!(
            "entity-index/{}",
            self.mac("entity", "", &name.to_lowercase())
        )
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
    pub fn new(storage: View, clock: Clock) -> Self {
        IdentityStore {
            storage,
            clock,
            index: Loaded::new(),
        }
    }

    /// Forgets what was read from storage and kept in memory (the index key), so that the
    /// next use reads it again: after the whole store was replaced (a snapshot restore).
    pub fn forget_cached(&self) {
        self.index.forget();
    }

    async fn index(&self) -> Result<Arc<IndexKey>> {
        self.index.get_or_load(|| self.load_index()).await
    }

    /// Reads the index key, making it when absent, and migrates the indexes once.
    async fn load_index(&self) -> Result<IndexKey> {
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
        self.index_entity_names(&key).await?;
        Ok(key)
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
        let marker = serde_json::to_vec(&serde_json::json!({ "time": self.clock.unix() }))
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
        let index = self.index().await?;
        let key = index.alias(mount_accessor, name);
        let mut retry = Retry::new();
        loop {
            let indexed = self.storage.get(&key).await?;
            if let Some(alias_id) = &indexed {
                if let Some(found) = self.existing(&text(alias_id), metadata).await? {
                    return Ok(found);
                }
            }
            let now = Timestamp::now(&self.clock);
            let mut entity = Entity::new(now);
            let alias = EntityAlias {
                id: uuid::Uuid::new_v4().to_string(),
                canonical_id: entity.id.clone(),
                name: name.to_string(),
                mount_accessor: mount_accessor.to_string(),
                metadata: Some(metadata.clone()),
                custom_metadata: None,
                creation_time: now,
                last_update_time: now,
            };
            entity.aliases.push(alias.id.clone());
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
            let name_key = index.entity(&entity.name);
            let named = matches!(
                self.claim(&name_key, &entity.id, "entity/").await?,
                Claim::Ours
            );
            if named
                && self
                    .storage
                    .compare_and_put(&key, indexed.as_deref(), alias.id.as_bytes())
                    .await?
            {
                return Ok((alias, entity));
            }
            // Another login of the same alias won (or, never in practice, the random name
            // was taken): nothing points at these two yet.
            if named {
                self.release(&name_key, &entity.id).await?;
            }
            self.storage.delete(&alias_key(&alias.id)).await?;
            self.storage.delete(&entity_key(&entity.id)).await?;
            retry.lost("an entity alias").await?;
        }
    }

    /// The alias `alias_id` and its entity, with `metadata` stored on the alias when it
    /// changed (a change of the entity, as in OpenBao: empty maps of its aliases become
    /// `null`); `None` when either is gone (the index entry is then taken over).
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
        if alias.metadata.as_ref() == Some(metadata) {
            return Ok(Some((alias, entity)));
        }
        let now = Timestamp::now(&self.clock);
        let (_, alias) = self
            .storage
            .update_json::<EntityAlias, _>(&alias_key(alias_id), |current| {
                Ok(current
                    .filter(|a| a.metadata.as_ref() != Some(metadata))
                    .map(|mut a| {
                        a.settle();
                        a.metadata = Some(metadata.clone());
                        a.last_update_time = now;
                        a
                    }))
            })
            .await?;
        self.settle_aliases(&entity, Some(alias_id)).await?;
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

    /// The alias `name` on the mount with accessor `mount_accessor`, found through the alias
    /// index; `None` when there is none. Names compare exactly, as logins make them.
    pub async fn alias_by_name(
        &self,
        mount_accessor: &str,
        name: &str,
    ) -> Result<Option<EntityAlias>> {
        let key = self.index().await?.alias(mount_accessor, name);
        match self.storage.get(&key).await? {
            Some(id) => self.alias(&text(&id)).await,
            None => Ok(None),
        }
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
