//! Entities and entity aliases written by hand (`identity/entity`, `identity/entity-alias`),
//! the entity name index, and the policies an entity gives its tokens.
//!
//! As everywhere in the identity store, every change is atomic in storage across server
//! nodes: a document is written before the index entry that makes it findable, names are
//! claimed with insert-if-absent, and documents change by compare-and-set loops.

use std::collections::BTreeMap;

use super::{
    alias_key, entity_key, group_key, member_key, membership_key, settle_map, text, Claim, Entity,
    EntityAlias, IdentityStore, IndexKey,
};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::identity::{group_policies, Group};
use crate::storage::Retry;

/// The marker of the one-time indexing of entity names made before they were indexed.
const ENTITY_INDEX_BUILT: &str = "entity-index-built";

impl Entity {
    /// A new entity at `now`, named `entity_<the first 8 hex digits of its id>`, with no
    /// alias, policy or metadata.
    pub(super) fn new(now: Timestamp) -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        Entity {
            name: format!("entity_{}", &id[..8]),
            id,
            aliases: vec![],
            policies: vec![],
            metadata: None,
            creation_time: now,
            last_update_time: now,
            disabled: false,
        }
    }
}

/// Which entity a write is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityTarget {
    /// The entity with this id. Errors: 400 `entity not found from id` when there is none
    /// (OpenBao's answer).
    Id(String),
    /// The entity with this name (compared without case), created when there is none.
    Name(String),
    /// A new entity, named `entity_<8 hex>`.
    New,
}

/// What a write to an entity changes: each `Some` replaces the entity's field, `None`
/// keeps it. Source: Vault API `identity/entity` (create or update).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntityChanges {
    /// The name (unique, compared without case); an empty name is ignored.
    pub name: Option<String>,
    /// Policies, already normalised (`root` refused by the caller).
    pub policies: Option<Vec<String>>,
    /// Metadata.
    pub metadata: Option<BTreeMap<String, String>>,
    /// Whether its tokens and logins are refused.
    pub disabled: Option<bool>,
}

impl EntityChanges {
    fn apply(&self, entity: &mut Entity) {
        if let Some(name) = self.name.as_ref().filter(|n| !n.is_empty()) {
            entity.name = name.clone();
        }
        if let Some(policies) = &self.policies {
            entity.policies = policies.clone();
        }
        if let Some(metadata) = &self.metadata {
            entity.metadata = Some(metadata.clone());
        }
        if let Some(disabled) = self.disabled {
            entity.disabled = disabled;
        }
    }
}

/// What a write of an entity alias did (OpenBao answers 200 with the alias for a new or a
/// moved alias, 204 otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasWrite {
    /// A new alias.
    Created,
    /// The alias existed on the entity asked for, and its `custom_metadata` changed.
    Updated,
    /// The alias existed on another entity and now belongs to the one asked for.
    Moved,
    /// The alias existed on the entity asked for (or no entity was asked for), as it was
    /// asked for.
    Unchanged,
}

const ALIAS_ON_MOUNT: &str = "Alias already exists for requested entity and mount accessor";

impl IdentityStore {
    /// Indexes the names of the entities stored before entity names were indexed, once;
    /// several nodes may run it at the same time.
    pub(super) async fn index_entity_names(&self, key: &IndexKey) -> Result<()> {
        if self.storage.get(ENTITY_INDEX_BUILT).await?.is_some() {
            return Ok(());
        }
        for id in self.storage.list("entity/").await? {
            if let Some(entity) = self.storage.get_json::<Entity>(&entity_key(&id)).await? {
                // Generated names never collide; a taken name stays with its first owner.
                self.claim(&key.entity(&entity.name), &entity.id, "entity/")
                    .await?;
            }
        }
        let marker = serde_json::to_vec(&serde_json::json!({ "time": self.clock.unix() }))
            .map_err(Error::internal)?;
        self.storage
            .put_if_absent(ENTITY_INDEX_BUILT, &marker)
            .await?;
        Ok(())
    }

    /// The entity with this name (compared without case).
    pub async fn entity_by_name(&self, name: &str) -> Result<Option<Entity>> {
        Ok(self.entity_by_name_versioned(name).await?.map(|(e, _)| e))
    }

    async fn entity_by_name_versioned(&self, name: &str) -> Result<Option<(Entity, Vec<u8>)>> {
        let key = self.index().await?.entity(name);
        let Some(id) = self.storage.get(&key).await? else {
            return Ok(None);
        };
        let found = self
            .storage
            .get_json_versioned::<Entity>(&entity_key(&text(&id)))
            .await?;
        // An entry a rename is about to release names the entity by its old name.
        Ok(found.filter(|(e, _)| e.name.to_lowercase() == name.to_lowercase()))
    }

    /// Creates or updates an entity, atomically across server nodes: the changes are
    /// applied to the entity as stored and written with compare-and-set (again on the new
    /// state when another write came first); two creates of one name make one entity (the
    /// second updates it). Returns the entity as stored, and true when this write created
    /// it. Errors: 400 `entity not found from id` for an unknown id, 400 `entity name is
    /// already in use` for a name another entity has (OpenBao's texts).
    pub async fn write_entity(
        &self,
        target: EntityTarget,
        changes: &EntityChanges,
    ) -> Result<(Entity, bool)> {
        let index = self.index().await?;
        let mut retry = Retry::new();
        loop {
            let stored = match &target {
                EntityTarget::Id(id) => Some(
                    self.storage
                        .get_json_versioned::<Entity>(&entity_key(id))
                        .await?
                        .ok_or_else(|| Error::invalid("entity not found from id"))?,
                ),
                EntityTarget::Name(name) => self.entity_by_name_versioned(name).await?,
                EntityTarget::New => None,
            };
            let now = Timestamp::now(&self.clock);
            let (before, raw) = match stored {
                Some((entity, raw)) => (Some(entity), Some(raw)),
                None => (None, None),
            };
            let mut entity = before.clone().unwrap_or_else(|| {
                let mut fresh = Entity::new(now);
                if let EntityTarget::Name(name) = &target {
                    fresh.name = name.clone();
                }
                fresh
            });
            settle_map(&mut entity.metadata);
            changes.apply(&mut entity);
            entity.last_update_time = now;
            let name_key = index.entity(&entity.name);
            let taken = || Error::invalid("entity name is already in use");
            match &before {
                None => {
                    // The document first: nothing finds it until its name is claimed.
                    self.storage
                        .put_json(&entity_key(&entity.id), &entity)
                        .await?;
                    if let Claim::Taken = self.claim(&name_key, &entity.id, "entity/").await? {
                        self.storage.delete(&entity_key(&entity.id)).await?;
                        if !matches!(target, EntityTarget::Name(_)) {
                            return Err(taken());
                        }
                        // Another node created it first: this write updates that entity.
                        retry.lost("an entity name").await?;
                        continue;
                    }
                }
                Some(old) => {
                    let renamed = index.entity(&old.name) != name_key;
                    if renamed {
                        if let Claim::Taken = self.claim(&name_key, &entity.id, "entity/").await? {
                            return Err(taken());
                        }
                    }
                    if !self
                        .storage
                        .compare_and_put_json(&entity_key(&entity.id), raw.as_deref(), &entity)
                        .await?
                    {
                        retry.lost("an entity").await?;
                        continue;
                    }
                    if renamed {
                        self.release(&index.entity(&old.name), &entity.id).await?;
                    }
                    self.settle_aliases(&entity, None).await?;
                }
            }
            return Ok((entity, before.is_none()));
        }
    }

    /// Deletes an entity: first its aliases (a login through one of them makes a new
    /// entity from then on), then its group memberships (each group's `modify_index`
    /// rises, as in OpenBao), then the entity. Deleting a missing entity is not an error;
    /// a delete cut short is finished by running it again.
    pub async fn delete_entity(&self, id: &str) -> Result<()> {
        let index = self.index().await?;
        let Some(entity) = self.entity(id).await? else {
            return Ok(());
        };
        for alias in self.aliases_of(&entity).await? {
            self.release(&index.alias(&alias.mount_accessor, &alias.name), &alias.id)
                .await?;
            self.storage.delete(&alias_key(&alias.id)).await?;
        }
        let membership = self.membership(id).await?;
        for group_id in &membership.internal {
            self.storage
                .update_json::<Group, _>(&group_key(group_id), |current| {
                    Ok(current
                        .filter(|g| g.member_entity_ids.iter().flatten().any(|m| m == id))
                        .map(|mut g| {
                            g.settle();
                            if let Some(members) = g.member_entity_ids.as_mut() {
                                members.retain(|m| m != id);
                            }
                            g.modify_index += 1;
                            g
                        }))
                })
                .await?;
        }
        for group_id in membership.external.values().flatten() {
            self.storage.delete(&member_key(group_id, id)).await?;
            self.external_members_changed(group_id).await?;
        }
        self.storage.delete(&membership_key(id)).await?;
        self.release(&index.entity(&entity.name), &entity.id)
            .await?;
        self.storage.delete(&entity_key(&entity.id)).await?;
        Ok(())
    }

    /// The aliases of an entity that still belong to it, in its order.
    pub async fn aliases_of(&self, entity: &Entity) -> Result<Vec<EntityAlias>> {
        let mut aliases = Vec::new();
        for alias_id in &entity.aliases {
            if let Some(alias) = self.alias(alias_id).await? {
                if alias.canonical_id == entity.id {
                    aliases.push(alias);
                }
            }
        }
        Ok(aliases)
    }

    /// Ids of every entity alias, sorted.
    pub async fn alias_ids(&self) -> Result<Vec<String>> {
        self.storage.list("alias/").await
    }

    /// Creates the alias `name` on `mount_accessor` for the entity `canonical_id`, or for a
    /// new entity when none is given; the alias of that name on that mount, when it exists
    /// on another entity, moves to this one; an existing alias takes `custom_metadata` (none
    /// given: empty). A (mount, name) pair is taken once, even by concurrent writes on
    /// several nodes, and an entity has at most one alias per mount.
    /// Errors (OpenBao's texts): 400 `invalid canonical ID` for an unknown entity,
    /// 400 `Alias already exists for requested entity and mount accessor`.
    pub async fn write_entity_alias(
        &self,
        name: &str,
        mount_accessor: &str,
        canonical_id: Option<&str>,
        custom_metadata: Option<&BTreeMap<String, String>>,
    ) -> Result<(EntityAlias, AliasWrite)> {
        let key = self.index().await?.alias(mount_accessor, name);
        let mut retry = Retry::new();
        loop {
            let indexed = self.storage.get(&key).await?;
            let live = match &indexed {
                Some(id) => self.alias(&text(id)).await?,
                None => None,
            };
            let wanted = custom_metadata.cloned().unwrap_or_default();
            if let Some(alias) = live {
                return match canonical_id {
                    Some(entity_id) if entity_id != alias.canonical_id => {
                        let moved = self.move_alias(alias, entity_id, wanted).await?;
                        Ok((moved, AliasWrite::Moved))
                    }
                    _ => self.update_custom_metadata(alias, wanted).await,
                };
            }
            let made = match canonical_id {
                Some(entity_id) => {
                    let entity = self
                        .entity(entity_id)
                        .await?
                        .ok_or_else(|| Error::invalid("invalid canonical ID"))?;
                    let aliases = self.aliases_of(&entity).await?;
                    match aliases.iter().find(|a| a.mount_accessor == mount_accessor) {
                        // This very alias, made by a concurrent write since the index was
                        // read: look again.
                        Some(a) if a.name == name => {
                            retry.lost("an entity alias").await?;
                            continue;
                        }
                        Some(_) => return Err(Error::invalid(ALIAS_ON_MOUNT)),
                        None => {}
                    }
                    None
                }
                None => Some(
                    self.write_entity(EntityTarget::New, &EntityChanges::default())
                        .await?
                        .0,
                ),
            };
            let now = Timestamp::now(&self.clock);
            let alias = EntityAlias {
                id: uuid::Uuid::new_v4().to_string(),
                canonical_id: match (&made, canonical_id) {
                    (Some(entity), _) => entity.id.clone(),
                    (None, id) => id.unwrap_or_default().to_string(),
                },
                name: name.to_string(),
                mount_accessor: mount_accessor.to_string(),
                metadata: None,
                custom_metadata: Some(custom_metadata.cloned().unwrap_or_default()),
                creation_time: now,
                last_update_time: now,
            };
            // The document first, then the index entry, then the link from the entity.
            self.storage.put_json(&alias_key(&alias.id), &alias).await?;
            let claimed = self
                .storage
                .compare_and_put(&key, indexed.as_deref(), alias.id.as_bytes())
                .await?;
            let linked = match claimed {
                true => self.link_alias(&alias).await,
                false => Ok(()),
            };
            if claimed && linked.is_ok() {
                return Ok((alias, AliasWrite::Created));
            }
            // Undo what nothing uses yet.
            if claimed {
                self.release(&key, &alias.id).await?;
            }
            self.storage.delete(&alias_key(&alias.id)).await?;
            if let Some(entity) = made {
                self.delete_entity(&entity.id).await?;
            }
            linked?;
            // Another write of this alias came first: look again.
            retry.lost("an entity alias").await?;
        }
    }

    /// Stores `wanted` as the `custom_metadata` of an existing alias, unless it has them
    /// already (no metadata counts as empty, as in OpenBao).
    async fn update_custom_metadata(
        &self,
        alias: EntityAlias,
        wanted: BTreeMap<String, String>,
    ) -> Result<(EntityAlias, AliasWrite)> {
        if alias.custom_metadata.clone().unwrap_or_default() == wanted {
            return Ok((alias, AliasWrite::Unchanged));
        }
        let now = Timestamp::now(&self.clock);
        let (_, stored) = self
            .storage
            .update_json::<EntityAlias, _>(&alias_key(&alias.id), |current| {
                Ok(current.map(|mut a| {
                    a.settle();
                    a.custom_metadata = Some(wanted.clone());
                    a.last_update_time = now;
                    a
                }))
            })
            .await?;
        let stored = stored.ok_or_else(|| Error::invalid("invalid canonical ID"))?;
        if let Some(entity) = self.entity(&stored.canonical_id).await? {
            self.settle_aliases(&entity, Some(&stored.id)).await?;
        }
        Ok((stored, AliasWrite::Updated))
    }

    /// After a change of `entity`: the empty maps of its aliases (but `except`) become
    /// `None`, as OpenBao stores an entity's aliases with it (see
    /// [`settle_list`](super::settle_list)).
    pub(super) async fn settle_aliases(&self, entity: &Entity, except: Option<&str>) -> Result<()> {
        for alias_id in &entity.aliases {
            if Some(alias_id.as_str()) == except {
                continue;
            }
            self.storage
                .update_json::<EntityAlias, _>(&alias_key(alias_id), |current| {
                    Ok(current
                        .filter(|a| a.canonical_id == entity.id)
                        .and_then(|mut a| a.settle().then_some(a)))
                })
                .await?;
        }
        Ok(())
    }

    /// Adds `alias` to the aliases of its entity (by compare-and-set), unless the entity
    /// has another alias on the same mount by now. Errors: 400 as
    /// [`IdentityStore::write_entity_alias`].
    async fn link_alias(&self, alias: &EntityAlias) -> Result<()> {
        let key = entity_key(&alias.canonical_id);
        let mut retry = Retry::new();
        loop {
            let (mut entity, raw) = self
                .storage
                .get_json_versioned::<Entity>(&key)
                .await?
                .ok_or_else(|| Error::invalid("invalid canonical ID"))?;
            if entity.aliases.contains(&alias.id) {
                return Ok(());
            }
            if self
                .aliases_of(&entity)
                .await?
                .iter()
                .any(|a| a.mount_accessor == alias.mount_accessor && a.id != alias.id)
            {
                return Err(Error::invalid(ALIAS_ON_MOUNT));
            }
            entity.aliases.push(alias.id.clone());
            if self
                .storage
                .compare_and_put_json(&key, Some(&raw), &entity)
                .await?
            {
                return self.settle_aliases(&entity, Some(&alias.id)).await;
            }
            retry.lost("an entity").await?;
        }
    }

    /// Moves `alias` to the entity `entity_id`: listed there first, then the alias itself
    /// changes (from then on logins through it are that entity's), then it leaves its old
    /// entity's list (reads skip an alias whose `canonical_id` is another entity's).
    async fn move_alias(
        &self,
        alias: EntityAlias,
        entity_id: &str,
        custom_metadata: BTreeMap<String, String>,
    ) -> Result<EntityAlias> {
        if self.entity(entity_id).await?.is_none() {
            return Err(Error::invalid("invalid canonical ID"));
        }
        let now = Timestamp::now(&self.clock);
        let mut moved = alias.clone();
        moved.canonical_id = entity_id.to_string();
        moved.last_update_time = now;
        self.link_alias(&moved).await?;
        let (_, stored) = self
            .storage
            .update_json::<EntityAlias, _>(&alias_key(&alias.id), |current| {
                Ok(current
                    .filter(|a| a.canonical_id != entity_id)
                    .map(|mut a| {
                        a.settle();
                        a.canonical_id = entity_id.to_string();
                        a.custom_metadata = Some(custom_metadata.clone());
                        a.last_update_time = now;
                        a
                    }))
            })
            .await?;
        let (_, old) = self
            .storage
            .update_json::<Entity, _>(&entity_key(&alias.canonical_id), |current| {
                Ok(current
                    .filter(|e| e.aliases.contains(&alias.id))
                    .map(|mut e| {
                        e.aliases.retain(|a| a != &alias.id);
                        e
                    }))
            })
            .await?;
        if let Some(old) = old {
            self.settle_aliases(&old, None).await?;
        }
        Ok(stored.unwrap_or(moved))
    }

    /// The policies `entity_id` gives its tokens now: the entity's own and its groups',
    /// sorted and deduplicated (Vault's `identity_policies`); none for an empty id or an
    /// entity that is gone.
    pub async fn identity_policies(&self, entity_id: &str) -> Result<Vec<String>> {
        Ok(self.policies_of(entity_id).await?.1)
    }

    /// [`IdentityStore::identity_policies`] for a request made with a token of the entity.
    /// Errors: 403 `permission denied` when the entity is disabled (Vault refuses every
    /// token of a disabled entity).
    pub async fn request_policies(&self, entity_id: &str) -> Result<Vec<String>> {
        let (disabled, policies) = self.policies_of(entity_id).await?;
        if disabled {
            return Err(Error::PermissionDenied);
        }
        Ok(policies)
    }

    async fn policies_of(&self, entity_id: &str) -> Result<(bool, Vec<String>)> {
        if entity_id.is_empty() {
            return Ok((false, vec![]));
        }
        let entity = self.entity(entity_id).await?;
        let mut policies = group_policies(&self.groups_of(entity_id).await?);
        if let Some(entity) = &entity {
            policies.extend(entity.policies.iter().cloned());
            policies.sort();
            policies.dedup();
        }
        Ok((entity.is_some_and(|e| e.disabled), policies))
    }
}
