//! Groups, group aliases and the per-entity membership documents of the identity store.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    entity_key, group_alias_key, group_key, member_key, membership_key, settle_list, settle_map,
    text, Claim, IdentityStore,
};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::storage::Retry;

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
    /// Policies the members' tokens get (`identity_policies`); `None` until some are
    /// written (answered as `null`, as OpenBao does).
    pub policies: Option<Vec<String>>,
    /// Free metadata; `None` until some is written.
    pub metadata: Option<BTreeMap<String, String>>,
    /// Member entities of an internal group; `None` until some are written. An external
    /// group's members are found with [`IdentityStore::member_entity_ids`]; there it is
    /// `Some(empty)` once an entity has joined or left (its members are then answered as a
    /// list, `[]` when empty, as OpenBao does).
    pub member_entity_ids: Option<Vec<String>>,
    /// The group's alias id (external groups), empty when none.
    pub alias_id: String,
    /// When it was created.
    pub creation_time: Timestamp,
    /// When it was last written, or its alias changed.
    pub last_update_time: Timestamp,
    /// Raised by every change of the group, its alias or its members (OpenBao's
    /// `modify_index`; 1 after the creation).
    #[serde(default)]
    pub modify_index: u64,
}

impl Group {
    /// Empty lists and maps become `None`, as every change of a group leaves the fields it
    /// does not set in OpenBao (see [`settle_list`]). An external group's member marker is
    /// left to [`IdentityStore::write_group`] and the login.
    pub(super) fn settle(&mut self) {
        settle_list(&mut self.policies);
        settle_map(&mut self.metadata);
        if self.kind != "external" {
            settle_list(&mut self.member_entity_ids);
        }
    }
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
    /// When it was created.
    pub creation_time: Timestamp,
    /// When it was last written (zero in documents of earlier versions: see
    /// [`GroupAlias::updated`]).
    #[serde(default)]
    pub last_update_time: Timestamp,
}

impl GroupAlias {
    /// `last_update_time`, or the creation time where an earlier version stored none.
    pub fn updated(&self) -> Timestamp {
        match self.last_update_time {
            Timestamp(0) => self.creation_time,
            t => t,
        }
    }
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
            group.policies = Some(policies.clone());
        }
        if let Some(metadata) = &self.metadata {
            group.metadata = Some(metadata.clone());
        }
        if let Some(members) = &self.member_entity_ids {
            if group.kind == "external" {
                return Err(Error::invalid(
                    "member entities can't be set manually for external groups",
                ));
            }
            group.member_entity_ids = Some(members.clone());
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
pub(super) struct Membership {
    /// External groups, per mount accessor, as its last login's group aliases named them.
    pub(super) external: BTreeMap<String, Vec<String>>,
    /// Internal groups that list the entity among their members.
    pub(super) internal: Vec<String>,
    /// Raised by every change of `internal`, so that a compare-and-set based on an older
    /// read always fails (see [`IdentityStore::reconcile_member`]).
    #[serde(default)]
    version: u64,
}

/// The policies of these groups, sorted and deduplicated.
pub fn group_policies(groups: &[Group]) -> Vec<String> {
    let mut policies: Vec<String> = groups
        .iter()
        .flat_map(|g| g.policies.iter().flatten().cloned())
        .collect();
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
    /// stored, and true when this write created it. Errors: 404 for an unknown id; 400 for
    /// a name another group has, `invalid entity ID "<id>"` (as a one-error multierror) for
    /// a member entity that does not exist (OpenBao's text; OpenBao answers it with a 500),
    /// and those of [`GroupChanges`].
    pub async fn write_group(
        &self,
        target: GroupTarget,
        changes: &GroupChanges,
    ) -> Result<(Group, bool)> {
        let index = self.index().await?;
        for id in changes.member_entity_ids.iter().flatten() {
            if self.storage.get(&entity_key(id)).await?.is_none() {
                return Err(Error::invalid(format!(
                    "1 error occurred:\n\t* invalid entity ID {id:?}\n\n"
                )));
            }
        }
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
            let now = Timestamp::now(&self.clock);
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
                policies: None,
                metadata: None,
                member_entity_ids: None,
                alias_id: String::new(),
                creation_time: now,
                last_update_time: now,
                modify_index: 0,
            });
            group.settle();
            let no_members = match (&before, group.member_entity_ids.is_some()) {
                (Some(old), true) if group.kind == "external" => self
                    .member_entity_ids(old)
                    .await?
                    .is_none_or(|m| m.is_empty()),
                _ => false,
            };
            if no_members {
                group.member_entity_ids = None;
            }
            changes.apply(&mut group, before.is_some())?;
            group.last_update_time = now;
            group.modify_index += 1;
            let name_key = index.group(&group.name);
            let taken = || Error::invalid("group name is already in use");
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
                    // Names differing only in case share their index entry.
                    let renamed = index.group(&old.name) != name_key;
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
            let created = before.is_none();
            let old_members = before.and_then(|b| b.member_entity_ids).unwrap_or_default();
            let new_members = group.member_entity_ids.clone().unwrap_or_default();
            let mut changed: Vec<&String> = old_members
                .iter()
                .filter(|m| !new_members.contains(m))
                .chain(new_members.iter().filter(|m| !old_members.contains(m)))
                .collect();
            changed.sort();
            changed.dedup();
            for entity_id in changed {
                self.reconcile_member(entity_id, &group.id).await?;
            }
            return Ok((group, created));
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
                g.kind == "internal" && g.member_entity_ids.iter().flatten().any(|m| m == entity_id)
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

    pub(super) async fn membership(&self, entity_id: &str) -> Result<Membership> {
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
        for member in group.member_entity_ids.iter().flatten() {
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
    /// joiners; this read drops those that have left since. `None` (answered as `null`)
    /// while no member was ever written or joined.
    pub async fn member_entity_ids(&self, group: &Group) -> Result<Option<Vec<String>>> {
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
        if members.is_empty() && group.member_entity_ids.is_none() {
            return Ok(None);
        }
        Ok(Some(members))
    }

    /// Records a change of an external group's members (an entity joined or left it at
    /// login, or was deleted): its `modify_index` rises, and its members are answered as a
    /// list from then on, as OpenBao does. The members themselves are not in the document
    /// (see [`IdentityStore::member_entity_ids`]).
    pub(super) async fn external_members_changed(&self, group_id: &str) -> Result<()> {
        self.storage
            .update_json::<Group, _>(&group_key(group_id), |current| {
                Ok(current.map(|mut g| {
                    g.settle();
                    g.modify_index += 1;
                    g.member_entity_ids.get_or_insert_with(Vec::new);
                    g
                }))
            })
            .await?;
        Ok(())
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

    /// Stores a new group alias and links it from its group, in place of the alias the group
    /// had (which is deleted, as OpenBao does); a (mount, name) pair is taken once, even by
    /// concurrent writes on several nodes. Errors (OpenBao's texts): 400 when the group does
    /// not exist or is not external, or the pair is taken.
    pub async fn put_group_alias(&self, alias: &GroupAlias) -> Result<()> {
        let index = self.index().await?;
        let linkable = |group: Option<&Group>| -> Result<()> {
            let group =
                group.ok_or_else(|| Error::invalid("invalid group ID given in 'canonical_id'"))?;
            if group.kind != "external" {
                return Err(Error::invalid("alias can't be set on an internal group"));
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
            return Err(Error::invalid(
                "combination of mount and group alias name is already in use",
            ));
        }
        let now = Timestamp::now(&self.clock);
        let linked = self
            .storage
            .update_json::<Group, _>(&group_key(&alias.canonical_id), |current| {
                linkable(current.as_ref())?;
                Ok(current.filter(|g| g.alias_id != alias.id).map(|mut g| {
                    g.settle();
                    g.alias_id = alias.id.clone();
                    g.last_update_time = now;
                    g.modify_index += 1;
                    g
                }))
            })
            .await;
        let replaced = match linked {
            Ok((before, _)) => before.map(|g| g.alias_id).unwrap_or_default(),
            Err(e) => {
                self.release(&name_key, &alias.id).await?;
                self.storage.delete(&document).await?;
                return Err(e);
            }
        };
        // The alias this one replaced (each link replaces exactly the one it read, so
        // concurrent writes leave one alias).
        if !replaced.is_empty() && replaced != alias.id {
            if let Some(old) = self.group_alias(&replaced).await? {
                self.delete_group_alias(&old).await?;
            }
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
        let now = Timestamp::now(&self.clock);
        self.storage
            .update_json::<Group, _>(&group_key(&alias.canonical_id), |current| {
                Ok(current.filter(|g| g.alias_id == alias.id).map(|mut g| {
                    g.settle();
                    g.alias_id.clear();
                    g.last_update_time = now;
                    g.modify_index += 1;
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
        // `member_entity_ids`); those who left are dropped by the next read. Each group
        // joined or left counts the change.
        let was = before
            .and_then(|m| m.external.get(mount_accessor).cloned())
            .unwrap_or_default();
        let now_in = membership
            .external
            .get(mount_accessor)
            .cloned()
            .unwrap_or_default();
        for group_id in now_in.iter().filter(|g| !was.contains(g)) {
            self.storage
                .put(&member_key(group_id, entity_id), b"")
                .await?;
            self.external_members_changed(group_id).await?;
        }
        for group_id in was.iter().filter(|g| !now_in.contains(g)) {
            self.external_members_changed(group_id).await?;
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
                    _ => g.member_entity_ids.iter().flatten().any(|m| m == entity_id),
                };
                if agrees {
                    groups.push(g);
                }
            }
        }
        Ok(groups)
    }

    /// Ids of every entity, sorted.
    pub async fn entity_ids(&self) -> Result<Vec<String>> {
        self.storage.list("entity/").await
    }
}
