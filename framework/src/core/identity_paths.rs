//! `identity/`: groups (by id and by name), group aliases, and reads of entities and entity
//! aliases, as a path table. Group names are case-insensitive: `identity/group/name/<name>`
//! is canonical in lower case, so the ACL judges the group that is acted on.
//!
//! Source: Vault API `identity/group`, `identity/group-alias`, `identity/entity`,
//! `identity/entity-alias`.

use std::sync::{Arc, Weak};

use serde_json::{json, Value};

use super::reply::list_response;
use super::CoreInner;
use crate::backend::BackendRequest;
use crate::error::{Error, Result};
use crate::identity::{Group, GroupAlias, GroupChanges, GroupTarget};
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
        Field::new("member_entity_ids", CommaStringSlice, "Member entities (internal groups only)."),
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
            .help("List the ids of the groups.")
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
            .help("List the ids of the group aliases.")
            .list(core, CoreInner::list_group_alias_ids),
        Path::new("group-alias/id/(?P<id>[^/]+)")
            .help("Read or delete a group alias.")
            .field(id_field("The group alias id."))
            .read(core, CoreInner::read_group_alias)
            .delete(core, CoreInner::delete_group_alias),
        Path::new("entity/id/?")
            .help("List the ids of the entities.")
            .list(core, CoreInner::list_entity_ids),
        Path::new("entity/id/(?P<id>[^/]+)")
            .help("Read an entity.")
            .field(id_field("The entity id."))
            .read(core, CoreInner::read_entity),
        Path::new("entity-alias/id/(?P<id>[^/]+)")
            .help("Read an entity alias.")
            .field(id_field("The entity alias id."))
            .read(core, CoreInner::read_entity_alias),
    ]
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

    async fn list_group_ids(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        list_response(self.identity.group_ids().await?)
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
    /// as stored. Errors: 400 for a bad type, a type change, members on an external group,
    /// `root` among the policies, a name another group has; 404 for an unknown id.
    async fn write_group(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let f = &req.fields;
        let by_name = req.path.starts_with("group/name/");
        let name = f.str("name").filter(|n| !n.is_empty()).map(str::to_string);
        let mut changes = GroupChanges {
            // Writing by name keeps an existing group's spelling of its name (a new group
            // takes the path's).
            name: if by_name { None } else { name.clone() },
            kind: f.str("type").filter(|k| !k.is_empty()).map(str::to_string),
            policies: None,
            metadata: f.kv_pairs("metadata"),
            member_entity_ids: f.strings("member_entity_ids"),
        };
        if let Some(list) = f.strings("policies") {
            let policies = parse_policies(&list);
            if policies.iter().any(|p| p == "root") {
                return Err(Error::invalid("policies cannot contain root"));
            }
            changes.policies = Some(policies);
        }
        let target = match (req.path.starts_with("group/id/"), name) {
            (true, _) => GroupTarget::Id(f.str("id").unwrap_or_default().to_string()),
            (false, Some(name)) => GroupTarget::Name(name),
            (false, None) => GroupTarget::New,
        };
        let (group, created) = self.identity.write_group(target, &changes).await?;
        if by_name && !created {
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
        let mut alias = GroupAlias {
            id: uuid::Uuid::new_v4().to_string(),
            name: text("name"),
            mount_accessor: text("mount_accessor"),
            canonical_id: text("canonical_id"),
            creation_time: self.clock.unix(),
        };
        if alias.name.is_empty() {
            return Err(Error::invalid("missing alias name"));
        }
        if alias.mount_accessor.is_empty() {
            return Err(Error::invalid("missing mount_accessor"));
        }
        if self.mounts.by_accessor(&alias.mount_accessor)?.is_none() {
            return Err(Error::invalid(format!(
                "invalid mount accessor {:?}",
                alias.mount_accessor
            )));
        }
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

    async fn list_group_alias_ids(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        list_response(self.identity.group_alias_ids().await?)
    }

    async fn read_group_alias(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let id = req.fields.str("id").unwrap_or_default();
        let alias = self
            .identity
            .group_alias(id)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(Response::json(self.group_alias_json(&alias)))
    }

    async fn delete_group_alias(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let id = req.fields.str("id").unwrap_or_default();
        if let Some(alias) = self.identity.group_alias(id).await? {
            self.identity.delete_group_alias(&alias).await?;
        }
        Ok(Response::default())
    }

    async fn list_entity_ids(self: Arc<Self>, _req: BackendRequest) -> Result<Response> {
        list_response(self.identity.entity_ids().await?)
    }

    /// `identity/entity/id/<id>` (also the answer of `identity/lookup/entity`).
    pub(super) async fn read_entity(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let id = req.fields.str("id").unwrap_or_default();
        let entity = self.identity.entity(id).await?.ok_or(Error::NotFound)?;
        let mut aliases = Vec::new();
        for alias_id in &entity.aliases {
            if let Some(a) = self.identity.alias(alias_id).await? {
                aliases.push(self.entity_alias_json(&a));
            }
        }
        let groups = self.identity.groups_of(&entity.id).await?;
        Ok(Response::json(json!({
            "id": entity.id,
            "name": entity.name,
            "aliases": aliases,
            "policies": [],
            "disabled": entity.disabled,
            "creation_time": entity.creation_time,
            "group_ids": groups.iter().map(|g| g.id.clone()).collect::<Vec<_>>(),
            "identity_policies": self.identity.identity_policies(&entity.id).await?,
            "metadata": null,
        })))
    }

    async fn read_entity_alias(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let id = req.fields.str("id").unwrap_or_default();
        let alias = self.identity.alias(id).await?.ok_or(Error::NotFound)?;
        Ok(Response::json(self.entity_alias_json(&alias)))
    }

    async fn group_json(&self, g: &Group) -> Result<Value> {
        let alias = match g.alias_id.as_str() {
            "" => json!({}),
            id => self
                .identity
                .group_alias(id)
                .await?
                .map(|a| self.group_alias_json(&a))
                .unwrap_or(json!({})),
        };
        Ok(json!({
            "id": g.id,
            "name": g.name,
            "type": g.kind,
            "policies": g.policies,
            "metadata": g.metadata,
            "member_entity_ids": self.identity.member_entity_ids(g).await?,
            "alias": alias,
            "creation_time": g.creation_time,
            "last_update_time": g.last_update_time,
        }))
    }

    fn mount_of(&self, accessor: &str) -> (String, String) {
        match self.mounts.by_accessor(accessor) {
            Ok(Some(m)) => (m.entry.path, m.entry.kind),
            _ => (String::new(), String::new()),
        }
    }

    fn group_alias_json(&self, a: &GroupAlias) -> Value {
        let (mount_path, mount_type) = self.mount_of(&a.mount_accessor);
        json!({
            "id": a.id,
            "name": a.name,
            "canonical_id": a.canonical_id,
            "mount_accessor": a.mount_accessor,
            "mount_path": format!("auth/{mount_path}"),
            "mount_type": mount_type,
            "creation_time": a.creation_time,
        })
    }

    fn entity_alias_json(&self, a: &crate::identity::EntityAlias) -> Value {
        let (mount_path, mount_type) = self.mount_of(&a.mount_accessor);
        json!({
            "id": a.id,
            "canonical_id": a.canonical_id,
            "name": a.name,
            "mount_accessor": a.mount_accessor,
            "mount_path": format!("auth/{mount_path}"),
            "mount_type": mount_type,
            "metadata": a.metadata,
            "creation_time": a.creation_time,
            "last_update_time": a.last_update_time,
        })
    }
}
