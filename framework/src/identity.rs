//! The identity store: one entity per person or machine, with one alias per (mount accessor,
//! alias name). A login upserts the alias and returns its entity's id.
//!
//! Source: Vault identity secrets engine (entities and entity aliases).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::storage::View;
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
    create_lock: tokio::sync::Mutex<()>,
}

fn alias_key(mount_accessor: &str, name: &str) -> String {
    format!("alias-by-name/{mount_accessor}/{}", hex::encode(name))
}

impl IdentityStore {
    /// The store in `storage`.
    pub fn new(storage: View) -> Self {
        IdentityStore {
            storage,
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
            alias.last_update_time = now_unix();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::InMemory;
    use std::sync::Arc;

    #[tokio::test]
    async fn one_entity_per_alias_and_metadata_follows_the_last_login() {
        let ids = IdentityStore::new(View::new(Arc::new(InMemory::new()), "core/identity/"));
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
