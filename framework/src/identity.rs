//! The identity store: one entity per person or machine, with one alias per (mount accessor,
//! alias name); and groups, whose policies their members' tokens get. A login upserts the
//! alias, and for external groups replaces the entity's memberships by the groups whose
//! group alias (on the login's mount) names one of the login's group aliases.
//!
//! Source: Vault identity secrets engine (entities, entity aliases, groups, group aliases).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::Result;
use crate::storage::View;

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
    clock: Clock,
    create_lock: tokio::sync::Mutex<()>,
}

fn alias_key(mount_accessor: &str, name: &str) -> String {
    format!("alias-by-name/{mount_accessor}/{}", hex::encode(name))
}

impl IdentityStore {
    /// The store in `storage`.
    pub fn new(storage: View, clock: Clock) -> Self {
        IdentityStore {
            storage,
            clock,
            create_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Finds or creates the alias `name` on `mount_accessor` (and its entity), updates its
    /// metadata when it changed, and returns the alias. Concurrent first logins of the same
    /// alias create one entity.
    pub async fn upsert_alias(
        &self,
        mount_accessor: &str,
        name: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<(EntityAlias, Entity)> {
        let key = alias_key(mount_accessor, name);
        if let Some(found) = self.existing(&key, metadata).await? {
            return Ok(found);
        }
        let _guard = self.create_lock.lock().await;
        if let Some(found) = self.existing(&key, metadata).await? {
            return Ok(found);
        }
        let now = self.clock.unix();
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
            .put_json(&format!("entity/{}", entity.id), &entity)
            .await?;
        self.storage
            .put_json(&format!("alias/{}", alias.id), &alias)
            .await?;
        self.storage.put(&key, alias.id.as_bytes()).await?;
        Ok((alias, entity))
    }

    async fn existing(
        &self,
        key: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Option<(EntityAlias, Entity)>> {
        let Some(alias_id) = self.storage.get(key).await? else {
            return Ok(None);
        };
        let alias_id = String::from_utf8_lossy(&alias_id).to_string();
        let Some(mut alias) = self.alias(&alias_id).await? else {
            return Ok(None);
        };
        let Some(entity) = self.entity(&alias.canonical_id).await? else {
            return Ok(None);
        };
        if &alias.metadata != metadata {
            alias.metadata = metadata.clone();
            alias.last_update_time = self.clock.unix();
            self.storage
                .put_json(&format!("alias/{}", alias.id), &alias)
                .await?;
        }
        Ok(Some((alias, entity)))
    }

    /// The entity with this id.
    pub async fn entity(&self, id: &str) -> Result<Option<Entity>> {
        self.storage.get_json(&format!("entity/{id}")).await
    }

    /// The alias with this id.
    pub async fn alias(&self, id: &str) -> Result<Option<EntityAlias>> {
        self.storage.get_json(&format!("alias/{id}")).await
    }

    /// Removes every alias of the mount with this accessor (the mount was disabled);
    /// entities stay, as in Vault.
    pub async fn remove_mount_aliases(&self, mount_accessor: &str) -> Result<()> {
        let prefix = format!("alias-by-name/{mount_accessor}/");
        for name in self.storage.list(&prefix).await? {
            let key = format!("{prefix}{name}");
            if let Some(alias_id) = self.storage.get(&key).await? {
                let alias_id = String::from_utf8_lossy(&alias_id).to_string();
                if let Some(alias) = self.alias(&alias_id).await? {
                    if let Some(mut entity) = self.entity(&alias.canonical_id).await? {
                        entity.aliases.retain(|a| a != &alias_id);
                        self.storage
                            .put_json(&format!("entity/{}", entity.id), &entity)
                            .await?;
                    }
                }
                self.storage.delete(&format!("alias/{alias_id}")).await?;
            }
            self.storage.delete(&key).await?;
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
    /// Member entities (internal groups).
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

/// The groups an entity belongs to, kept in one document per entity so that a login or a
/// request reads it with one `get` (no listing on the hot path).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Membership {
    /// External groups, per mount accessor, as its last login's group aliases named them.
    external: BTreeMap<String, Vec<String>>,
    /// Internal groups that list the entity among their members.
    internal: Vec<String>,
}

/// The policies of these groups, sorted and deduplicated.
pub fn group_policies(groups: &[Group]) -> Vec<String> {
    let mut policies: Vec<String> = groups.iter().flat_map(|g| g.policies.clone()).collect();
    policies.sort();
    policies.dedup();
    policies
}

fn membership_key(entity_id: &str) -> String {
    format!("membership/{entity_id}")
}

/// The index key of a group name: names are case-insensitive, as in Vault.
fn group_name_key(name: &str) -> String {
    format!("group-by-name/{}", hex::encode(name.to_lowercase()))
}

fn group_alias_key(mount_accessor: &str, name: &str) -> String {
    format!("group-alias-by-name/{mount_accessor}/{}", hex::encode(name))
}

impl IdentityStore {
    /// The group with this id.
    pub async fn group(&self, id: &str) -> Result<Option<Group>> {
        self.storage.get_json(&format!("group/{id}")).await
    }

    /// The group with this name.
    pub async fn group_by_name(&self, name: &str) -> Result<Option<Group>> {
        match self.storage.get(&group_name_key(name)).await? {
            Some(id) => self.group(&String::from_utf8_lossy(&id)).await,
            None => Ok(None),
        }
    }

    /// Stores a group (new or updated), keeping the name index and the member index right.
    /// Errors: 400 when the name belongs to another group.
    pub async fn put_group(&self, group: &Group, previous: Option<&Group>) -> Result<()> {
        let previous_name = previous.map(|p| p.name.as_str());
        if let Some(other) = self.group_by_name(&group.name).await? {
            if other.id != group.id {
                return Err(crate::Error::invalid(format!(
                    "group name {:?} is already in use",
                    group.name
                )));
            }
        }
        self.storage
            .put_json(&format!("group/{}", group.id), group)
            .await?;
        if let Some(old) = previous_name.filter(|n| n.to_lowercase() != group.name.to_lowercase()) {
            self.storage.delete(&group_name_key(old)).await?;
        }
        self.storage
            .put(&group_name_key(&group.name), group.id.as_bytes())
            .await?;
        let old_members = previous
            .map(|p| p.member_entity_ids.as_slice())
            .unwrap_or_default();
        for gone in old_members
            .iter()
            .filter(|m| !group.member_entity_ids.contains(m))
        {
            self.update_membership(gone, |m| m.internal.retain(|g| g != &group.id))
                .await?;
        }
        for member in &group.member_entity_ids {
            self.update_membership(member, |m| {
                if !m.internal.contains(&group.id) {
                    m.internal.push(group.id.clone());
                }
            })
            .await?;
        }
        Ok(())
    }

    async fn membership(&self, entity_id: &str) -> Result<Membership> {
        Ok(self
            .storage
            .get_json(&membership_key(entity_id))
            .await?
            .unwrap_or_default())
    }

    /// Changes an entity's membership document; writes only when it changed.
    async fn update_membership(
        &self,
        entity_id: &str,
        change: impl FnOnce(&mut Membership),
    ) -> Result<Membership> {
        let current = self.membership(entity_id).await?;
        let mut next = current.clone();
        change(&mut next);
        if next != current {
            self.storage
                .put_json(&membership_key(entity_id), &next)
                .await?;
        }
        Ok(next)
    }

    /// Deletes a group and its alias.
    pub async fn delete_group(&self, group: &Group) -> Result<()> {
        if !group.alias_id.is_empty() {
            if let Some(alias) = self.group_alias(&group.alias_id).await? {
                self.delete_group_alias(&alias).await?;
            }
        }
        for member in &group.member_entity_ids {
            self.update_membership(member, |m| m.internal.retain(|g| g != &group.id))
                .await?;
        }
        self.storage.delete(&group_name_key(&group.name)).await?;
        self.storage.delete(&format!("group/{}", group.id)).await
    }

    /// Ids of every group, sorted.
    pub async fn group_ids(&self) -> Result<Vec<String>> {
        self.storage.list("group/").await
    }

    /// The group alias with this id.
    pub async fn group_alias(&self, id: &str) -> Result<Option<GroupAlias>> {
        self.storage.get_json(&format!("group-alias/{id}")).await
    }

    /// Stores a group alias and links it from its group. Errors: 400 when the group is not
    /// external, already has another alias, or the (mount, name) pair is taken.
    pub async fn put_group_alias(&self, alias: &GroupAlias) -> Result<()> {
        let mut group = self
            .group(&alias.canonical_id)
            .await?
            .ok_or_else(|| crate::Error::invalid("invalid canonical_id: no such group"))?;
        if group.kind != "external" {
            return Err(crate::Error::invalid(
                "group aliases can only be set on external groups",
            ));
        }
        if !group.alias_id.is_empty() && group.alias_id != alias.id {
            return Err(crate::Error::invalid("the group already has an alias"));
        }
        let key = group_alias_key(&alias.mount_accessor, &alias.name);
        if let Some(taken) = self.storage.get(&key).await? {
            if taken != alias.id.as_bytes() {
                return Err(crate::Error::invalid(format!(
                    "group alias {:?} already exists on this mount",
                    alias.name
                )));
            }
        }
        self.storage
            .put_json(&format!("group-alias/{}", alias.id), alias)
            .await?;
        self.storage.put(&key, alias.id.as_bytes()).await?;
        group.alias_id = alias.id.clone();
        self.storage
            .put_json(&format!("group/{}", group.id), &group)
            .await
    }

    /// Deletes a group alias and unlinks it from its group.
    pub async fn delete_group_alias(&self, alias: &GroupAlias) -> Result<()> {
        self.storage
            .delete(&group_alias_key(&alias.mount_accessor, &alias.name))
            .await?;
        self.storage
            .delete(&format!("group-alias/{}", alias.id))
            .await?;
        if let Some(mut group) = self.group(&alias.canonical_id).await? {
            if group.alias_id == alias.id {
                group.alias_id.clear();
                self.storage
                    .put_json(&format!("group/{}", group.id), &group)
                    .await?;
            }
        }
        Ok(())
    }

    /// Ids of every group alias, sorted.
    pub async fn group_alias_ids(&self) -> Result<Vec<String>> {
        self.storage.list("group-alias/").await
    }

    /// At login: makes `entity_id` a member of exactly the external groups whose alias on
    /// `mount_accessor` is one of `names` (Vault: group aliases only attach to existing
    /// groups; none are created), and returns every group the entity is now in.
    pub async fn sync_external_groups(
        &self,
        entity_id: &str,
        mount_accessor: &str,
        names: &[String],
    ) -> Result<Vec<Group>> {
        let mut ids = Vec::new();
        for name in names {
            if let Some(alias_id) = self
                .storage
                .get(&group_alias_key(mount_accessor, name))
                .await?
            {
                if let Some(alias) = self
                    .group_alias(&String::from_utf8_lossy(&alias_id))
                    .await?
                {
                    ids.push(alias.canonical_id);
                }
            }
        }
        ids.sort();
        ids.dedup();
        let membership = self
            .update_membership(entity_id, |m| {
                if ids.is_empty() {
                    m.external.remove(mount_accessor);
                } else {
                    m.external.insert(mount_accessor.to_string(), ids);
                }
            })
            .await?;
        self.groups_in(&membership).await
    }

    /// The groups `entity_id` belongs to now: external ones through its logins, internal
    /// ones by membership.
    pub async fn groups_of(&self, entity_id: &str) -> Result<Vec<Group>> {
        let membership = self.membership(entity_id).await?;
        self.groups_in(&membership).await
    }

    async fn groups_in(&self, membership: &Membership) -> Result<Vec<Group>> {
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
                groups.push(g);
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
    use crate::storage::InMemory;
    use std::sync::Arc;

    #[tokio::test]
    async fn external_groups_follow_the_group_aliases_of_the_last_login() {
        let ids = IdentityStore::new(
            View::new(Arc::new(InMemory::new()), "core/identity/"),
            Clock::system(),
        );
        let group = |name: &str, kind: &str, policies: &[&str]| Group {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.into(),
            kind: kind.into(),
            policies: policies.iter().map(|p| p.to_string()).collect(),
            metadata: BTreeMap::new(),
            member_entity_ids: vec![],
            alias_id: String::new(),
            creation_time: 0,
            last_update_time: 0,
        };
        let devs = group("devs", "external", &["dev", "shared"]);
        let ops = group("ops", "external", &["ops", "shared"]);
        for g in [&devs, &ops] {
            ids.put_group(g, None).await.unwrap();
        }
        for (g, name) in [(&devs, "dev-team"), (&ops, "ops-team")] {
            let alias = GroupAlias {
                id: uuid::Uuid::new_v4().to_string(),
                name: name.into(),
                mount_accessor: "auth_jwt_1".into(),
                canonical_id: g.id.clone(),
                creation_time: 0,
            };
            ids.put_group_alias(&alias).await.unwrap();
        }
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
        // Internal groups: membership by hand, through the member index.
        let mut internal = group("humans", "internal", &["human"]);
        internal.member_entity_ids = vec![e.id.clone()];
        ids.put_group(&internal, None).await.unwrap();
        assert_eq!(
            ids.identity_policies(&e.id).await.unwrap(),
            ["dev", "human", "shared"]
        );
        let before = internal.clone();
        internal.member_entity_ids.clear();
        ids.put_group(&internal, Some(&before)).await.unwrap();
        assert_eq!(
            ids.identity_policies(&e.id).await.unwrap(),
            ["dev", "shared"]
        );
        // Internal groups cannot have aliases; names are unique.
        let bad = GroupAlias {
            id: "x".into(),
            name: "h".into(),
            mount_accessor: "a".into(),
            canonical_id: internal.id.clone(),
            creation_time: 0,
        };
        assert!(ids.put_group_alias(&bad).await.is_err());
        assert!(ids
            .put_group(&group("devs", "internal", &[]), None)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn one_entity_per_alias_and_metadata_follows_the_last_login() {
        let ids = IdentityStore::new(
            View::new(Arc::new(InMemory::new()), "core/identity/"),
            Clock::system(),
        );
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
    }
}
