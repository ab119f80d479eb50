//! `identity/`: groups and entities (by id and by name), group aliases and entity aliases,
//! as a path table. Group and entity names are case-insensitive:
//! `identity/group/name/<name>` and `identity/entity/name/<name>` are canonical in lower
//! case, so the ACL judges the object that is acted on (DECISIONS D15).
//!
//! Answers have OpenBao 2.7.2's shapes: times as RFC 3339 strings with nanoseconds, `null`
//! for what was never written, the fields of features authmount does not have (merged
//! entities, nested groups, namespaces, local aliases) with their empty values.
//!
//! Source: Vault API `identity/group`, `identity/group-alias`, `identity/entity`,
//! `identity/entity-alias`.

use std::sync::{Arc, Weak};

use serde_json::{json, Value};

use super::reply::list_response;
use super::CoreInner;
use crate::backend::BackendRequest;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::identity::{
    AliasWrite, Entity, EntityAlias, EntityChanges, EntityTarget, Group, GroupAlias, GroupChanges,
    GroupTarget,
};
use crate::path::{Field, FieldType, Path};
use crate::response::Response;
use crate::tokenutil::parse_policies;

fn group_fields() -> Vec<Field> {
    use FieldType::*;
    vec![
        Field::new("name", String, "Name of the group (case-insensitive)."),
        Field::new("type", String, "'internal' (members set by hand) or 'external' (members set at login through a group alias)."),
        Field::new("policies", CommaStringSlice, "Policies the members' tokens get. 'root' is refused."),
        Field::new("metadata", KvPairs, "Free metadata."),
        Field::new("member_entity_ids", CommaStringSlice, "Member entities (internal groups only); each must exist."),
    ]
}

fn entity_fields() -> Vec<Field> {
    use FieldType::*;
    vec![
        Field::new("name", String, "Name of the entity (unique, case-insensitive); 'entity_<8 hex>' when a new entity has none."),
        Field::new("policies", CommaStringSlice, "Policies the entity's tokens get. 'root' is refused."),
        Field::new("metadata", KvPairs, "Free metadata."),
        Field::new("disabled", Bool, "A disabled entity cannot log in, and its tokens are refused."),
    ]
}

fn id_field(what: &'static str) -> Field {
    Field::new("id", FieldType::String, what)
}

/// The `identity/` path table, its handlers bound to the core.
pub(super) fn paths(core: &Weak<CoreInner>) -> Vec<Path> {
    vec![
        Path::new("group")
            .help("Create a group, or update the group of that name.")
            .fields(group_fields())
            .update(core, CoreInner::write_group),
        Path::new("group/id/?")
            .help("List the ids of the groups, with each one's name, member count and alias.")
            .list(core, CoreInner::list_group_ids),
        Path::new("group/name/?")
            .help("List the names of the groups.")
            .list(core, CoreInner::list_group_names),
        Path::new("group/id/(?P<id>[^/]+)")
            .help("Read, update or delete a group by id.")
            .field(id_field("The group id."))
            .fields(group_fields())
            .read(core, CoreInner::read_group)
            .update(core, CoreInner::write_group)
            .delete(core, CoreInner::delete_group),
        Path::new("group/name/(?P<name>[^/]+)")
            .help("Read, create or update, or delete a group by name.")
            .field(Field::new("name", FieldType::LowerCaseString, "The group name (case-insensitive)."))
            .fields(group_fields().into_iter().filter(|f| f.name != "name"))
            .existence_check(core, CoreInner::group_exists)
            .read(core, CoreInner::read_group)
            .update(core, CoreInner::write_group)
            .delete(core, CoreInner::delete_group),
        Path::new("group-alias")
            .help("Create a group alias: the name an auth mount's group claim uses for an external group.")
            .fields([
                Field::new("name", FieldType::String, "The group name as the mount reports it."),
                Field::new("mount_accessor", FieldType::String, "Accessor of the auth mount."),
                Field::new("canonical_id", FieldType::String, "Id of the external group; without it, a new external group is created for the alias."),
            ])
            .update(core, CoreInner::write_group_alias),
        Path::new("group-alias/id/?")
            .help("List the ids of the group aliases, with each one's name, mount and group.")
            .list(core, CoreInner::list_group_alias_ids),
        Path::new("group-alias/id/(?P<id>[^/]+)")
            .help("Read or delete a group alias.")
            .field(id_field("The group alias id."))
            .read(core, CoreInner::read_group_alias)
            .delete(core, CoreInner::delete_group_alias),
        Path::new("entity")
            .help("Create an entity, or update the entity of that id, or else of that name.")
            .field(id_field("Id of an entity to update."))
            .fields(entity_fields())
            .update(core, CoreInner::write_entity),
        Path::new("entity/id/?")
            .help("List the ids of the entities, with each one's name and aliases.")
            .list(core, CoreInner::list_entity_ids),
        Path::new("entity/name/?")
            .help("List the names of the entities.")
            .list(core, CoreInner::list_entity_names),
        Path::new("entity/id/(?P<id>[^/]+)")
            .help("Read, update or delete an entity by id.")
            .field(id_field("The entity id."))
            .fields(entity_fields())
            .read(core, CoreInner::read_entity)
            .update(core, CoreInner::write_entity)
            .delete(core, CoreInner::delete_entity),
        Path::new("entity/name/(?P<name>[^/]+)")
            .help("Read, create or update, or delete an entity by name.")
            .field(Field::new("name", FieldType::LowerCaseString, "The entity name (case-insensitive)."))
            .fields(entity_fields().into_iter().filter(|f| f.name != "name"))
            .existence_check(core, CoreInner::entity_exists)
            .read(core, CoreInner::read_entity)
            .update(core, CoreInner::write_entity)
            .delete(core, CoreInner::delete_entity),
        Path::new("entity-alias")
            .help("Create an entity alias (the name a mount knows an entity by); an alias that exists on another entity moves to the one given.")
            .fields([
                Field::new("name", FieldType::String, "The alias name, as the mount reports it (e.g. the JWT user claim)."),
                Field::new("mount_accessor", FieldType::String, "Accessor of the auth mount."),
                Field::new("canonical_id", FieldType::String, "Id of the entity; without it, a new entity is created for the alias."),
                Field::new("custom_metadata", FieldType::KvPairs, "Metadata kept with the alias until a login changes it."),
            ])
            .update(core, CoreInner::write_entity_alias),
        Path::new("entity-alias/id/?")
            .help("List the ids of the entity aliases, with each one's name, mount and entity.")
            .list(core, CoreInner::list_entity_alias_ids),
        Path::new("entity-alias/id/(?P<id>[^/]+)")
            .help("Read an entity alias.")
            .field(id_field("The entity alias id."))
            .read(core, CoreInner::read_entity_alias),
    ]
}

/// `{"keys": [...], "key_info": {...}}` (LIST with details, as Vault answers the identity
/// lists by id), or 404 when there are none.
fn list_with_info(entries: Vec<(String, Value)>) -> Result<Response> {
    if entries.is_empty() {
        return Err(Error::NotFound);
    }
    let keys: Vec<&String> = entries.iter().map(|(k, _)| k).collect();
    let info: serde_json::Map<String, Value> = entries.iter().cloned().collect();
    Ok(Response::json(json!({ "keys": keys, "key_info": info })))
}

/// Policies given to a group or an entity, normalised. Errors: 400 `policies cannot contain
/// root` (OpenBao's text).
fn identity_policies_field(req: &BackendRequest) -> Result<Option<Vec<String>>> {
    let Some(list) = req.fields.strings("policies") else {
        return Ok(None);
    };
    let policies = parse_policies(&list);
    if policies.iter().any(|p| p == "root") {
        return Err(Error::invalid("policies cannot contain root"));
    }
    Ok(Some(policies))
}

fn time(t: Timestamp) -> Value {
    json!(t.rfc3339())
}

impl CoreInner {
    /// The group a request names by id or by name, if it exists.
    async fn named_group(&self, req: &BackendRequest) -> Result<Option<Group>> {
        if req.path.starts_with("group/id/") {
            return self
                .identity
                .group(req.fields.str("id").unwrap_or_default())
                .await;
        }
        match req.fields.str("name") {
            Some(name) if !name.is_empty() => self.identity.group_by_name(name).await,
            _ => Ok(None),
        }
    }

    async fn group_exists(self: Arc<Self>, req: BackendRequest) -> Result<bool> {
        Ok(self.named_group(&req).await?.is_some())
    }

    /// LIST `group/id`: the ids, and per id its `name`, `num_member_entities`,
    /// `num_parent_groups` (always 0: groups are not nested) and, when it has one, its
    /// `alias` (`id`, `mount_accessor`, `mount_path`, `mount_type`, `name`).
    async fn list_group_ids(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        let mut entries = Vec::new();
        for id in self.identity.group_ids().await? {
            let Some(group) = self.identity.group(&id).await? else {
                continue;
            };
            let members = self.identity.member_entity_ids(&group).await?;
            let mut info = json!({
                "name": group.name,
                "num_member_entities": members.map_or(0, |m| m.len()),
                "num_parent_groups": 0,
            });
            if let Some(alias) = self.linked_group_alias(&group).await? {
                let (mount_path, mount_type) = self.mount_of(&alias.mount_accessor);
                info["alias"] = json!({
                    "id": alias.id,
                    "mount_accessor": alias.mount_accessor,
                    "mount_path": mount_path,
                    "mount_type": mount_type,
                    "name": alias.name,
                });
            }
            entries.push((id, info));
        }
        list_with_info(entries)
    }

    async fn list_group_names(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        let mut names = Vec::new();
        for id in self.identity.group_ids().await? {
            if let Some(g) = self.identity.group(&id).await? {
                names.push(g.name);
            }
        }
        names.sort();
        list_response(names)
    }

    async fn read_group(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let group = self.named_group(&req).await?.ok_or(Error::NotFound)?;
        Ok(Response::json(self.group_json(&group).await?))
    }

    async fn delete_group(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        if let Some(group) = self.named_group(&req).await? {
            self.identity.delete_group(&group).await?;
        }
        Ok(Response::default())
    }

    /// Creates or updates a group from `name`, `type` (`internal`/`external`), `policies`,
    /// `metadata`, `member_entity_ids`, applied by the identity store atomically to the group
    /// as stored. Answers 200 with `id` and `name` when it created the group, else 204 (as
    /// OpenBao does). Errors: 400 for a bad type, a type change, members on an external
    /// group, an unknown member entity, `root` among the policies, a name another group
    /// has; 404 for an unknown id.
    async fn write_group(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let f = &req.fields;
        let by_name = req.path.starts_with("group/name/");
        let name = f.str("name").filter(|n| !n.is_empty()).map(str::to_string);
        let changes = GroupChanges {
            // Writing by name keeps an existing group's spelling of its name (a new group
            // takes the path's).
            name: if by_name { None } else { name.clone() },
            kind: f.str("type").filter(|k| !k.is_empty()).map(str::to_string),
            policies: identity_policies_field(&req)?,
            metadata: f.kv_pairs("metadata"),
            member_entity_ids: f.strings("member_entity_ids"),
        };
        let target = match (req.path.starts_with("group/id/"), name) {
            (true, _) => GroupTarget::Id(f.str("id").unwrap_or_default().to_string()),
            (false, Some(name)) => GroupTarget::Name(name),
            (false, None) => GroupTarget::New,
        };
        let (group, created) = self.identity.write_group(target, &changes).await?;
        if !created {
            return Ok(Response::default());
        }
        Ok(Response::json(
            json!({ "id": group.id, "name": group.name }),
        ))
    }

    /// Creates a group alias, and an external group for it when `canonical_id` is not given
    /// (as OpenBao does). Errors (OpenBao's texts): 400 `missing alias name`,
    /// `missing mount_accessor`, an unknown mount accessor, and those of
    /// [`IdentityStore::put_group_alias`](crate::identity::IdentityStore::put_group_alias).
    async fn write_group_alias(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let f = &req.fields;
        let text = |name: &str| f.str(name).unwrap_or_default().to_string();
        let now = Timestamp::now(&self.clock);
        let mut alias = GroupAlias {
            id: uuid::Uuid::new_v4().to_string(),
            name: text("name"),
            mount_accessor: text("mount_accessor"),
            canonical_id: text("canonical_id"),
            creation_time: now,
            last_update_time: now,
        };
        if alias.name.is_empty() {
            return Err(Error::invalid("missing alias name"));
        }
        if alias.mount_accessor.is_empty() {
            return Err(Error::invalid("missing mount_accessor"));
        }
        self.known_mount_accessor(&alias.mount_accessor)?;
        let mut new_group = None;
        if alias.canonical_id.is_empty() {
            let external = GroupChanges {
                kind: Some("external".into()),
                ..Default::default()
            };
            let (group, _) = self
                .identity
                .write_group(GroupTarget::New, &external)
                .await?;
            alias.canonical_id = group.id.clone();
            new_group = Some(group);
        }
        if let Err(e) = self.identity.put_group_alias(&alias).await {
            // A group made for this alias goes with it.
            if let Some(group) = new_group {
                self.identity.delete_group(&group).await?;
            }
            return Err(e);
        }
        Ok(Response::json(
            json!({ "id": alias.id, "canonical_id": alias.canonical_id }),
        ))
    }

    /// Errors: 400 `invalid mount accessor "<accessor>"` (OpenBao's text) when no auth
    /// mount has this accessor.
    fn known_mount_accessor(&self, accessor: &str) -> Result<()> {
        match self.mounts.by_accessor(accessor)? {
            Some(_) => Ok(()),
            None => Err(Error::invalid(format!(
                "invalid mount accessor {accessor:?}"
            ))),
        }
    }

    /// LIST `group-alias/id`: the ids, and per id `canonical_id`, `custom_metadata`,
    /// `local`, `metadata`, `mount_accessor`, `mount_path`, `mount_type`, `name`.
    async fn list_group_alias_ids(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        let mut entries = Vec::new();
        for id in self.identity.group_alias_ids().await? {
            if let Some(alias) = self.identity.group_alias(&id).await? {
                let mut info = self.group_alias_json(&alias, false);
                keep_only(&mut info, ALIAS_LIST_KEYS);
                entries.push((id, info));
            }
        }
        list_with_info(entries)
    }

    async fn read_group_alias(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let id = req.fields.str("id").unwrap_or_default();
        let alias = self
            .identity
            .group_alias(id)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(Response::json(self.group_alias_json(&alias, false)))
    }

    async fn delete_group_alias(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let id = req.fields.str("id").unwrap_or_default();
        if let Some(alias) = self.identity.group_alias(id).await? {
            self.identity.delete_group_alias(&alias).await?;
        }
        Ok(Response::default())
    }

    /// The entity a request names by id or by name, if it exists.
    async fn named_entity(&self, req: &BackendRequest) -> Result<Option<Entity>> {
        if req.path.starts_with("entity/name/") {
            return match req.fields.str("name") {
                Some(name) if !name.is_empty() => self.identity.entity_by_name(name).await,
                _ => Ok(None),
            };
        }
        self.identity
            .entity(req.fields.str("id").unwrap_or_default())
            .await
    }

    async fn entity_exists(self: Arc<Self>, req: BackendRequest) -> Result<bool> {
        Ok(self.named_entity(&req).await?.is_some())
    }

    /// Creates or updates an entity from `name`, `policies`, `metadata`, `disabled`:
    /// `entity/id/<id>` and `entity` with an `id` update that entity; `entity/name/<name>`
    /// and `entity` with a `name` update the entity of that name or create it; `entity`
    /// with neither creates one named `entity_<8 hex>`. Answers 200 with `id`, `name` and
    /// `aliases: null` when it created the entity, else 204 (as OpenBao does). Errors: 400
    /// `entity not found from id`, `entity name is already in use`, `policies cannot
    /// contain root`.
    async fn write_entity(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let f = &req.fields;
        let by_name = req.path.starts_with("entity/name/");
        let name = f.str("name").filter(|n| !n.is_empty()).map(str::to_string);
        // `entity/name/<name>` has no `id` field.
        let id = match by_name {
            true => None,
            false => f.str("id").filter(|n| !n.is_empty()).map(str::to_string),
        };
        let changes = EntityChanges {
            // Writing by name keeps an existing entity's spelling of its name.
            name: if by_name { None } else { name.clone() },
            policies: identity_policies_field(&req)?,
            metadata: f.kv_pairs("metadata"),
            disabled: f.bool("disabled"),
        };
        let target = match (req.path.starts_with("entity/id/"), by_name, id, name) {
            (true, _, id, _) => EntityTarget::Id(id.unwrap_or_default()),
            (false, true, _, name) => EntityTarget::Name(name.unwrap_or_default()),
            (false, false, Some(id), _) => EntityTarget::Id(id),
            (false, false, None, Some(name)) => EntityTarget::Name(name),
            (false, false, None, None) => EntityTarget::New,
        };
        let (entity, created) = self.identity.write_entity(target, &changes).await?;
        if !created {
            return Ok(Response::default());
        }
        Ok(Response::json(
            json!({ "id": entity.id, "name": entity.name, "aliases": null }),
        ))
    }

    /// `identity/entity/id/<id>` and `identity/entity/name/<name>` (also the answer of
    /// `identity/lookup/entity`).
    pub(super) async fn read_entity(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let entity = self.named_entity(&req).await?.ok_or(Error::NotFound)?;
        Ok(Response::json(self.entity_json(&entity).await?))
    }

    /// Deletes an entity with its aliases and memberships; 204 also when there is none.
    async fn delete_entity(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        if let Some(entity) = self.named_entity(&req).await? {
            self.identity.delete_entity(&entity.id).await?;
        }
        Ok(Response::default())
    }

    /// LIST `entity/id`: the ids, and per id its `name` and, when it has some, its
    /// `aliases` (`id`, `mount_accessor`, `mount_path`, `mount_type`, `name`).
    async fn list_entity_ids(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        let mut entries = Vec::new();
        for id in self.identity.entity_ids().await? {
            let Some(entity) = self.identity.entity(&id).await? else {
                continue;
            };
            let mut info = json!({ "name": entity.name });
            let aliases = self.identity.aliases_of(&entity).await?;
            if !aliases.is_empty() {
                info["aliases"] = aliases
                    .iter()
                    .map(|a| {
                        let (mount_path, mount_type) = self.mount_of(&a.mount_accessor);
                        json!({
                            "id": a.id,
                            "mount_accessor": a.mount_accessor,
                            "mount_path": mount_path,
                            "mount_type": mount_type,
                            "name": a.name,
                        })
                    })
                    .collect();
            }
            entries.push((id, info));
        }
        list_with_info(entries)
    }

    async fn list_entity_names(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        let mut names = Vec::new();
        for id in self.identity.entity_ids().await? {
            if let Some(e) = self.identity.entity(&id).await? {
                names.push(e.name);
            }
        }
        names.sort();
        list_response(names)
    }

    /// Creates an entity alias from `name`, `mount_accessor`, `canonical_id` (a new entity
    /// when not given) and `custom_metadata`. Answers 200 with `id` and `canonical_id` for
    /// a new alias, one that moved to `canonical_id` or one whose `custom_metadata`
    /// changed, 204 when the alias was already there as asked (as OpenBao does). Errors
    /// (OpenBao's texts): 400 `'id' or 'mount_accessor' and 'name' must be provided`,
    /// `invalid mount accessor "<accessor>"`, and those of
    /// [`IdentityStore::write_entity_alias`](crate::identity::IdentityStore::write_entity_alias).
    async fn write_entity_alias(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let f = &req.fields;
        let given = |name: &str| f.str(name).filter(|v| !v.is_empty());
        let (Some(name), Some(accessor)) = (given("name"), given("mount_accessor")) else {
            return Err(Error::invalid(
                "'id' or 'mount_accessor' and 'name' must be provided",
            ));
        };
        self.known_mount_accessor(accessor)?;
        let custom_metadata = f.kv_pairs("custom_metadata");
        let (alias, write) = self
            .identity
            .write_entity_alias(
                name,
                accessor,
                given("canonical_id"),
                custom_metadata.as_ref(),
            )
            .await?;
        if write == AliasWrite::Unchanged {
            return Ok(Response::default());
        }
        Ok(Response::json(
            json!({ "id": alias.id, "canonical_id": alias.canonical_id }),
        ))
    }

    /// LIST `entity-alias/id`: the ids, and per id `canonical_id`, `custom_metadata`,
    /// `local`, `metadata`, `mount_accessor`, `mount_path`, `mount_type`, `name`.
    async fn list_entity_alias_ids(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        let mut entries = Vec::new();
        for id in self.identity.alias_ids().await? {
            if let Some(alias) = self.identity.alias(&id).await? {
                let mut info = self.entity_alias_json(&alias, false);
                keep_only(&mut info, ALIAS_LIST_KEYS);
                entries.push((id, info));
            }
        }
        list_with_info(entries)
    }

    async fn read_entity_alias(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let id = req.fields.str("id").unwrap_or_default();
        let alias = self.identity.alias(id).await?.ok_or(Error::NotFound)?;
        Ok(Response::json(self.entity_alias_json(&alias, false)))
    }

    /// An entity as `entity/id/<id>` answers it. Groups are not nested, so
    /// `direct_group_ids` and `group_ids` are the same and `inherited_group_ids` is empty.
    async fn entity_json(&self, e: &Entity) -> Result<Value> {
        let aliases: Vec<Value> = self
            .identity
            .aliases_of(e)
            .await?
            .iter()
            .map(|a| self.entity_alias_json(a, true))
            .collect();
        let groups: Vec<String> = self
            .identity
            .groups_of(&e.id)
            .await?
            .into_iter()
            .map(|g| g.id)
            .collect();
        Ok(json!({
            "aliases": aliases,
            "creation_time": time(e.creation_time),
            "direct_group_ids": groups,
            "disabled": e.disabled,
            "group_ids": groups,
            "id": e.id,
            "inherited_group_ids": [],
            "last_update_time": time(e.updated()),
            "merged_entity_ids": null,
            "metadata": e.metadata,
            "name": e.name,
            "namespace_id": "root",
            "policies": e.policies,
        }))
    }

    async fn linked_group_alias(&self, g: &Group) -> Result<Option<GroupAlias>> {
        match g.alias_id.as_str() {
            "" => Ok(None),
            id => self.identity.group_alias(id).await,
        }
    }

    async fn group_json(&self, g: &Group) -> Result<Value> {
        let alias = match self.linked_group_alias(g).await? {
            Some(a) => self.group_alias_json(&a, true),
            None => json!({}),
        };
        Ok(json!({
            "alias": alias,
            "creation_time": time(g.creation_time),
            "id": g.id,
            "last_update_time": time(g.last_update_time),
            "member_entity_ids": self.identity.member_entity_ids(g).await?,
            "member_group_ids": null,
            "metadata": g.metadata,
            "modify_index": g.modify_index.max(1),
            "name": g.name,
            "namespace_id": "root",
            "parent_group_ids": null,
            "policies": g.policies,
            "type": g.kind,
        }))
    }

    /// `(mount_path, mount_type)` of the auth mount with this accessor (`auth/<path>/`), or
    /// empty strings when it is gone.
    fn mount_of(&self, accessor: &str) -> (String, String) {
        match self.mounts.by_accessor(accessor) {
            Ok(Some(m)) => (format!("auth/{}", m.entry.path), m.entry.kind),
            _ => (String::new(), String::new()),
        }
    }

    /// A group alias as `group-alias/id/<id>` answers it, or (`nested`) as the `alias` of a
    /// group read, which has no `custom_metadata`, `local` or `namespace_id`.
    fn group_alias_json(&self, a: &GroupAlias, nested: bool) -> Value {
        let (mount_path, mount_type) = self.mount_of(&a.mount_accessor);
        let mut out = json!({
            "canonical_id": a.canonical_id,
            "creation_time": time(a.creation_time),
            "id": a.id,
            "last_update_time": time(a.updated()),
            "merged_from_canonical_ids": null,
            "metadata": null,
            "mount_accessor": a.mount_accessor,
            "mount_path": mount_path,
            "mount_type": mount_type,
            "name": a.name,
        });
        if !nested {
            out["custom_metadata"] = Value::Null;
            out["local"] = json!(false);
            out["namespace_id"] = json!("root");
        }
        out
    }

    /// An entity alias as `entity-alias/id/<id>` answers it, or (`nested`) as one of the
    /// `aliases` of an entity read, which has no `namespace_id`.
    fn entity_alias_json(&self, a: &EntityAlias, nested: bool) -> Value {
        let (mount_path, mount_type) = self.mount_of(&a.mount_accessor);
        let mut out = json!({
            "canonical_id": a.canonical_id,
            "creation_time": time(a.creation_time),
            "custom_metadata": a.custom_metadata,
            "id": a.id,
            "last_update_time": time(a.last_update_time),
            "local": false,
            "merged_from_canonical_ids": null,
            "metadata": a.metadata,
            "mount_accessor": a.mount_accessor,
            "mount_path": mount_path,
            "mount_type": mount_type,
            "name": a.name,
        });
        if !nested {
            out["namespace_id"] = json!("root");
        }
        out
    }
}

/// The fields of an alias in the `key_info` of a LIST of alias ids.
const ALIAS_LIST_KEYS: &[&str] = &[
    "canonical_id",
    "custom_metadata",
    "local",
    "metadata",
    "mount_accessor",
    "mount_path",
    "mount_type",
    "name",
];

fn keep_only(object: &mut Value, keys: &[&str]) {
    if let Value::Object(map) = object {
        map.retain(|k, _| keys.contains(&k.as_str()));
    }
}
