//! `identity/lookup/entity`: find an entity by one criterion, as a path table.
//!
//! Exactly one criterion: `id`, `name` (case-insensitive, as entity names are in Vault),
//! `alias_id`, or `alias_name` with `alias_mount_accessor` (the alias name compared exactly,
//! as logins store it). A criterion counts when its parameter is sent, even empty. The
//! answer is the entity as `identity/entity/id/<id>` reads it; 204 when nothing matches.
//! Errors (Vault's texts, 400): `query parameter not supplied` (none),
//! `query parameter conflict; please supply distinct set of query parameters` (more than
//! one, or an empty alias pair), `both 'alias_name' and 'alias_mount_accessor' needs to be
//! set` (half of the pair).
//!
//! Source: Vault API `identity/lookup/entity`.

use std::sync::{Arc, Weak};

use serde_json::json;

use super::CoreInner;
use crate::backend::BackendRequest;
use crate::error::{Error, Result};
use crate::identity::Entity;
use crate::path::{Field, FieldData, FieldType, Path};
use crate::response::Response;

const CRITERIA: [&str; 5] = [
    "id",
    "name",
    "alias_id",
    "alias_name",
    "alias_mount_accessor",
];

/// The `lookup/` paths of the `identity/` table, bound to the core.
pub(super) fn paths(core: &Weak<CoreInner>) -> Vec<Path> {
    use FieldType::String;
    vec![Path::new("lookup/entity")
        .help("Find an entity by id, name, alias id, or alias name and mount accessor.")
        .fields([
            Field::new("id", String, "The entity id."),
            Field::new("name", String, "The entity name (case-insensitive)."),
            Field::new("alias_id", String, "The id of one of the entity's aliases."),
            Field::new(
                "alias_name",
                String,
                "The name of one of the entity's aliases (with alias_mount_accessor).",
            ),
            Field::new(
                "alias_mount_accessor",
                String,
                "The accessor of the mount of that alias (with alias_name).",
            ),
        ])
        .update(core, CoreInner::lookup_entity)]
}

/// The one criterion of a lookup.
#[derive(Debug, PartialEq)]
enum Criterion {
    Id(String),
    Name(String),
    AliasId(String),
    Alias {
        name: String,
        mount_accessor: String,
    },
    /// Half of the alias pair, sent empty: matches nothing.
    Nothing,
}

impl Criterion {
    /// The criterion of `fields`, by Vault's counting rules (see the module doc).
    fn of(fields: &FieldData) -> Result<Criterion> {
        let given: Vec<&str> = CRITERIA.into_iter().filter(|n| fields.has(n)).collect();
        let value = |name: &str| fields.str(name).unwrap_or_default().to_string();
        let (alias_name, mount_accessor) = (value("alias_name"), value("alias_mount_accessor"));
        match given.as_slice() {
            [] => Err(Error::invalid("query parameter not supplied")),
            ["id"] => Ok(Criterion::Id(value("id"))),
            ["name"] => Ok(Criterion::Name(value("name"))),
            ["alias_id"] => Ok(Criterion::AliasId(value("alias_id"))),
            ["alias_name", "alias_mount_accessor"]
                if !alias_name.is_empty() && !mount_accessor.is_empty() =>
            {
                Ok(Criterion::Alias {
                    name: alias_name,
                    mount_accessor,
                })
            }
            [_] if !alias_name.is_empty() || !mount_accessor.is_empty() => Err(Error::invalid(
                "both 'alias_name' and 'alias_mount_accessor' needs to be set",
            )),
            [_] => Ok(Criterion::Nothing),
            _ => Err(Error::invalid(
                "query parameter conflict; please supply distinct set of query parameters",
            )),
        }
    }
}

impl CoreInner {
    async fn lookup_entity(self: Arc<Self>, req: BackendRequest) -> Result<Response> {
        let entity_id = match Criterion::of(&req.fields)? {
            Criterion::Id(id) => self.identity.entity(&id).await?.map(|e| e.id),
            Criterion::Name(name) => self.entity_named(&name).await?.map(|e| e.id),
            Criterion::AliasId(id) => self.identity.alias(&id).await?.map(|a| a.canonical_id),
            Criterion::Alias {
                name,
                mount_accessor,
            } => self
                .identity
                .alias_by_name(&mount_accessor, &name)
                .await?
                .map(|a| a.canonical_id),
            Criterion::Nothing => None,
        };
        let Some(id) = entity_id.filter(|id| !id.is_empty()) else {
            return Ok(Response::default());
        };
        if self.identity.entity(&id).await?.is_none() {
            return Ok(Response::default());
        }
        // The entity as its own read shows it.
        let read = BackendRequest {
            path: format!("entity/id/{id}"),
            fields: FieldData::from_values([("id", json!(id))]),
            ..req
        };
        self.read_entity(read).await
    }

    /// The entity named `name`, compared case-insensitively (through the entity name
    /// index).
    async fn entity_named(&self, name: &str) -> Result<Option<Entity>> {
        self.identity.entity_by_name(name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn criterion(body: Value) -> Result<Criterion> {
        let table = paths(&Weak::new());
        let body = body.as_object().cloned().unwrap_or_default();
        let fields = FieldData::parse(
            &table[0],
            &Default::default(),
            &body,
            crate::request::Operation::Update,
        )?;
        Criterion::of(&fields)
    }

    #[test]
    fn exactly_one_criterion_as_vault_counts_them() {
        assert_eq!(
            criterion(json!({"id": "a"})).unwrap(),
            Criterion::Id("a".into())
        );
        assert_eq!(
            criterion(json!({"id": ""})).unwrap(),
            Criterion::Id("".into())
        );
        assert_eq!(
            criterion(json!({"alias_name": "n", "alias_mount_accessor": "m"})).unwrap(),
            Criterion::Alias {
                name: "n".into(),
                mount_accessor: "m".into()
            }
        );
        let text = |b| criterion(b).unwrap_err().to_string();
        assert_eq!(text(json!({})), "query parameter not supplied");
        assert!(text(json!({"id": "a", "name": "b"})).starts_with("query parameter conflict"));
        assert!(text(json!({"alias_name": "", "alias_mount_accessor": ""}))
            .starts_with("query parameter conflict"));
        assert!(text(json!({"alias_name": "n"})).starts_with("both 'alias_name'"));
    }
}
