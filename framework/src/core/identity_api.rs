//! `identity/`: groups (`identity/group`, by id and by name), group aliases, and reads of
//! entities and entity aliases.
//!
//! Source: Vault API `identity/group`, `identity/group-alias`, `identity/entity`,
//! `identity/entity-alias`.

use serde_json::{json, Value};

use super::reply::{data_reply, list_reply};
use super::{body_field, normalize_policies, required_str, Core};
use crate::error::{Error, Result};
use crate::identity::{Group, GroupAlias, GroupChanges, GroupTarget};
use crate::path::FieldType;
use crate::request::{Operation, Request};
use crate::response::Reply;
use crate::token::now_unix;

impl Core {
    pub(super) async fn identity_endpoint(&self, rest: &str, req: &Request) -> Result<Reply> {
        let path = format!("identity/{rest}");
        self.authorize(req, &path, false).await?;
        let op = req.operation;
        let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        match (segments.as_slice(), op) {
            (["group"], Operation::Update) => self.write_group(None, req).await,
            (["group", "id"], Operation::List) => {
                list_reply(self.identity.group_ids().await?, "identity")
            }
            (["group", "name"], Operation::List) => {
                let mut names = Vec::new();
                for id in self.identity.group_ids().await? {
                    if let Some(g) = self.identity.group(&id).await? {
                        names.push(g.name);
                    }
                }
                names.sort();
                list_reply(names, "identity")
            }
            (["group", by @ ("id" | "name"), key], _) => {
                let group = match *by {
                    "id" => self.identity.group(key).await?,
                    _ => self.identity.group_by_name(key).await?,
                };
                match (op, group) {
                    (Operation::Read, Some(g)) => {
                        Ok(data_reply(self.group_json(&g).await?, "identity"))
                    }
                    (Operation::Update, None) if *by == "id" => Err(Error::NotFound),
                    (Operation::Update, g) => {
                        let mut req = req.clone();
                        if *by == "name" {
                            req.data.insert("name".into(), json!(key));
                        }
                        self.write_group(g, &req).await
                    }
                    (Operation::Delete, Some(g)) => {
                        self.identity.delete_group(&g).await?;
                        Ok(Reply::no_content())
                    }
                    (Operation::Delete, None) => Ok(Reply::no_content()),
                    (Operation::Read, None) => Err(Error::NotFound),
                    (Operation::List, _) => Err(Error::UnsupportedOperation),
                }
            }
            (["group-alias"], Operation::Update) => self.write_group_alias(req).await,
            (["group-alias", "id"], Operation::List) => {
                list_reply(self.identity.group_alias_ids().await?, "identity")
            }
            (["group-alias", "id", id], Operation::Read) => {
                let alias = self
                    .identity
                    .group_alias(id)
                    .await?
                    .ok_or(Error::NotFound)?;
                Ok(data_reply(self.group_alias_json(&alias), "identity"))
            }
            (["group-alias", "id", id], Operation::Delete) => {
                if let Some(alias) = self.identity.group_alias(id).await? {
                    self.identity.delete_group_alias(&alias).await?;
                }
                Ok(Reply::no_content())
            }
            (["entity", "id"], Operation::List) => {
                list_reply(self.identity.entity_ids().await?, "identity")
            }
            (["entity", "id", id], Operation::Read) => {
                let entity = self.identity.entity(id).await?.ok_or(Error::NotFound)?;
                let mut aliases = Vec::new();
                for alias_id in &entity.aliases {
                    if let Some(a) = self.identity.alias(alias_id).await? {
                        aliases.push(self.entity_alias_json(&a));
                    }
                }
                let groups = self.identity.groups_of(&entity.id).await?;
                Ok(data_reply(
                    json!({
                        "id": entity.id,
                        "name": entity.name,
                        "aliases": aliases,
                        "policies": [],
                        "disabled": entity.disabled,
                        "creation_time": entity.creation_time,
                        "group_ids": groups.iter().map(|g| g.id.clone()).collect::<Vec<_>>(),
                        "identity_policies": self.identity.identity_policies(&entity.id).await?,
                        "metadata": null,
                    }),
                    "identity",
                ))
            }
            (["entity-alias", "id", id], Operation::Read) => {
                let alias = self.identity.alias(id).await?.ok_or(Error::NotFound)?;
                Ok(data_reply(self.entity_alias_json(&alias), "identity"))
            }
            _ => Err(Error::unsupported_path(&path)),
        }
    }

    /// Creates or updates a group from `name`, `type` (`internal`/`external`), `policies`,
    /// `metadata`, `member_entity_ids` (applied by the identity store atomically, on the group
    /// as stored). Errors: 400 for a missing name, a bad type, a type change, members on an
    /// external group, a name another group has.
    async fn write_group(&self, existing: Option<Group>, req: &Request) -> Result<Reply> {
        let string = |name: &str| -> Result<Option<String>> {
            Ok(body_field(req, name, FieldType::String)?
                .and_then(|v| v.as_str().map(str::to_string)))
        };
        let name = string("name")?;
        let mut changes = GroupChanges {
            name: name.clone(),
            kind: string("type")?,
            ..Default::default()
        };
        if let Some(v) = body_field(req, "policies", FieldType::CommaStringSlice)? {
            let list: Vec<String> = serde_json::from_value(v).unwrap_or_default();
            changes.policies = Some(normalize_policies(&list));
        }
        if let Some(v) = body_field(req, "metadata", FieldType::KvPairs)? {
            changes.metadata = Some(serde_json::from_value(v).unwrap_or_default());
        }
        if let Some(v) = body_field(req, "member_entity_ids", FieldType::CommaStringSlice)? {
            changes.member_entity_ids = Some(serde_json::from_value(v).unwrap_or_default());
        }
        let target = match (existing, name) {
            (Some(g), _) => GroupTarget::Id(g.id),
            (None, Some(n)) => GroupTarget::Name(n),
            (None, None) => GroupTarget::New,
        };
        let group = self.identity.write_group(target, &changes).await?;
        Ok(data_reply(
            json!({ "id": group.id, "name": group.name }),
            "identity",
        ))
    }

    async fn write_group_alias(&self, req: &Request) -> Result<Reply> {
        let alias = GroupAlias {
            id: uuid::Uuid::new_v4().to_string(),
            name: required_str(req, "name")?,
            mount_accessor: required_str(req, "mount_accessor")?,
            canonical_id: required_str(req, "canonical_id")?,
            creation_time: now_unix(),
        };
        if self.mounts.by_accessor(&alias.mount_accessor)?.is_none() {
            return Err(Error::invalid(format!(
                "invalid mount accessor {:?}",
                alias.mount_accessor
            )));
        }
        self.identity.put_group_alias(&alias).await?;
        Ok(data_reply(
            json!({ "id": alias.id, "canonical_id": alias.canonical_id }),
            "identity",
        ))
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
