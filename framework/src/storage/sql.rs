//! SQL storage through sqlx: embedded SQLite (the default of `authmount server`: one file,
//! WAL mode, every commit synced) and PostgreSQL (several server nodes on one database).
//! Both use one table and one set of migrations (`framework/migrations/`).
//!
//! A store that cannot reach its database answers 503 `storage unavailable: ...` and
//! recovers by itself when the database is back (the pool reconnects; migrations run at
//! the first successful use).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::OnceCell;

use super::{children, Storage};
use crate::error::{Error, Result};

/// How long a request waits for a database connection before it fails with 503.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const UPSERT: &str = "INSERT INTO authmount_kv (path, value) VALUES ($1, $2) \
                      ON CONFLICT (path) DO UPDATE SET value = excluded.value";

const INSERT_IF_ABSENT: &str = "INSERT INTO authmount_kv (path, value) VALUES ($1, $2) \
                                ON CONFLICT (path) DO NOTHING";

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A key/value store in SQLite or PostgreSQL.
pub struct SqlStore {
    pool: Pool,
    migrated: OnceCell<()>,
}

fn storage_error(e: sqlx::Error) -> Error {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => Error::Unavailable(format!("storage unavailable: {e}")),
        other => Error::internal(format!("storage error: {other}")),
    }
}

/// Runs the same query on whichever pool, binding the arguments in order; yields the rows
/// as [`Row`]s.
macro_rules! fetch {
    ($self:expr, $sql:expr $(, $arg:expr)*) => {
        match &$self.pool {
            Pool::Sqlite(pool) => sqlx::query($sql)
                $(.bind($arg))*
                .fetch_all(pool)
                .await
                .map(|rows| rows.iter().map(row_sqlite).collect::<Vec<Row>>()),
            Pool::Postgres(pool) => sqlx::query($sql)
                $(.bind($arg))*
                .fetch_all(pool)
                .await
                .map(|rows| rows.iter().map(row_postgres).collect::<Vec<Row>>()),
        }
    };
}

/// A row as (path, value): the columns a query returned, missing ones empty.
type Row = (Option<String>, Option<Vec<u8>>);

fn row_sqlite(row: &sqlx::sqlite::SqliteRow) -> Row {
    use sqlx::Row as _;
    (row.try_get("path").ok(), row.try_get("value").ok())
}

fn row_postgres(row: &sqlx::postgres::PgRow) -> Row {
    use sqlx::Row as _;
    (row.try_get("path").ok(), row.try_get("value").ok())
}

impl SqlStore {
    /// Opens (creating when missing) the SQLite database at `path`, in WAL mode with every
    /// commit synced to disk, and runs the migrations. Errors: 503 when the file cannot be
    /// opened or created.
    pub async fn sqlite(path: &Path) -> Result<SqlStore> {
        SqlStore::sqlite_with(path, true).await
    }

    /// [`SqlStore::sqlite`], choosing whether each commit is synced to disk
    /// (`synchronous = FULL`, the default) or only handed to the OS (`NORMAL`: an answered
    /// write survives the server's crash, `kill -9` included, but not the machine's; several
    /// times the write throughput on disks with slow syncs).
    pub async fn sqlite_with(path: &Path, sync_every_commit: bool) -> Result<SqlStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::Unavailable(format!(
                    "cannot create data directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if sync_every_commit {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(ACQUIRE_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(storage_error)?;
        let store = SqlStore {
            pool: Pool::Sqlite(pool),
            migrated: OnceCell::new(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// A PostgreSQL store for `url` (`postgres://user:pass@host/db`). It does not connect
    /// yet: the server starts while the database is down. Errors: 400 for a malformed URL.
    pub fn postgres(url: &str) -> Result<SqlStore> {
        let options = sqlx::postgres::PgConnectOptions::from_str(url)
            .map_err(|e| Error::invalid(format!("invalid PostgreSQL connection_url: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        Ok(SqlStore {
            pool: Pool::Postgres(pool),
            migrated: OnceCell::new(),
        })
    }

    async fn migrate(&self) -> Result<()> {
        self.migrated
            .get_or_try_init(|| async {
                let result = match &self.pool {
                    Pool::Sqlite(p) => MIGRATOR.run(p).await,
                    Pool::Postgres(p) => MIGRATOR.run(p).await,
                };
                result.map_err(|e| match e {
                    sqlx::migrate::MigrateError::Execute(e) => storage_error(e),
                    other => Error::Unavailable(format!("storage migration failed: {other}")),
                })
            })
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl Storage for SqlStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.migrate().await?;
        let rows = fetch!(self, "SELECT value FROM authmount_kv WHERE path = $1", key)
            .map_err(storage_error)?;
        Ok(rows.into_iter().next().and_then(|(_, v)| v))
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.migrate().await?;
        fetch!(self, UPSERT, key, value).map_err(storage_error)?;
        Ok(())
    }

    /// One transaction: one sync to disk for all the keys.
    async fn put_batch(&self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        self.migrate().await?;
        macro_rules! in_transaction {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await.map_err(storage_error)?;
                for (key, value) in entries {
                    sqlx::query(UPSERT)
                        .bind(key)
                        .bind(value)
                        .execute(&mut *tx)
                        .await
                        .map_err(storage_error)?;
                }
                tx.commit().await.map_err(storage_error)
            }};
        }
        match &self.pool {
            Pool::Sqlite(pool) => in_transaction!(pool),
            Pool::Postgres(pool) => in_transaction!(pool),
        }
    }

    /// One transaction: the guard's insert decides; on a conflict nothing is written.
    async fn put_batch_if_absent(
        &self,
        guard: &str,
        guard_value: &[u8],
        entries: &[(String, Vec<u8>)],
    ) -> Result<bool> {
        self.migrate().await?;
        macro_rules! in_transaction {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await.map_err(storage_error)?;
                let inserted = sqlx::query(INSERT_IF_ABSENT)
                    .bind(guard)
                    .bind(guard_value)
                    .execute(&mut *tx)
                    .await
                    .map_err(storage_error)?
                    .rows_affected();
                if inserted == 0 {
                    tx.rollback().await.map_err(storage_error)?;
                    return Ok(false);
                }
                for (key, value) in entries {
                    sqlx::query(UPSERT)
                        .bind(key)
                        .bind(value)
                        .execute(&mut *tx)
                        .await
                        .map_err(storage_error)?;
                }
                tx.commit().await.map_err(storage_error)?;
                Ok(true)
            }};
        }
        match &self.pool {
            Pool::Sqlite(pool) => in_transaction!(pool),
            Pool::Postgres(pool) => in_transaction!(pool),
        }
    }

    fn type_name(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgresql",
        }
    }

    async fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<bool> {
        self.migrate().await?;
        let rows = fetch!(
            self,
            "INSERT INTO authmount_kv (path, value) VALUES ($1, $2) \
             ON CONFLICT (path) DO NOTHING RETURNING path",
            key,
            value
        )
        .map_err(storage_error)?;
        Ok(!rows.is_empty())
    }

    async fn compare_and_put(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool> {
        let Some(expected) = expected else {
            return self.put_if_absent(key, value).await;
        };
        self.migrate().await?;
        let rows = fetch!(
            self,
            "UPDATE authmount_kv SET value = $3 WHERE path = $1 AND value = $2 RETURNING path",
            key,
            expected,
            value
        )
        .map_err(storage_error)?;
        Ok(!rows.is_empty())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.migrate().await?;
        fetch!(self, "DELETE FROM authmount_kv WHERE path = $1", key).map_err(storage_error)?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.migrate().await?;
        let rows = match &self.pool {
            // SQLite compares TEXT bytewise: a range on the primary key index.
            Pool::Sqlite(_) => fetch!(
                self,
                "SELECT path FROM authmount_kv WHERE path >= $1 AND path < $2",
                prefix,
                format!("{prefix}{}", char::MAX)
            ),
            // PostgreSQL's collation may not be bytewise: compare the prefix exactly.
            Pool::Postgres(_) => fetch!(
                self,
                "SELECT path FROM authmount_kv WHERE substr(path, 1, length($1)) = $1",
                prefix
            ),
        }
        .map_err(storage_error)?;
        let mut keys: Vec<String> = rows.into_iter().filter_map(|(k, _)| k).collect();
        keys.sort();
        Ok(children(prefix, keys.iter().map(String::as_str)))
    }

    async fn ping(&self) -> Result<()> {
        self.migrate().await?;
        fetch!(self, "SELECT 1 AS one").map_err(storage_error)?;
        Ok(())
    }

    /// SQLite: one read transaction (in WAL mode a reader sees one committed state while
    /// writers go on). PostgreSQL: refused (400), `pg_dump` is the tool.
    async fn export(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let Pool::Sqlite(pool) = &self.pool else {
            return Err(super::no_images(self.type_name()));
        };
        self.migrate().await?;
        let mut tx = pool.begin().await.map_err(storage_error)?;
        let rows = sqlx::query("SELECT path, value FROM authmount_kv ORDER BY path")
            .fetch_all(&mut *tx)
            .await
            .map_err(storage_error)?;
        tx.commit().await.map_err(storage_error)?;
        Ok(rows
            .iter()
            .map(row_sqlite)
            .filter_map(|(k, v)| Some((k?, v.unwrap_or_default())))
            .collect())
    }

    /// SQLite: one transaction deletes every row and inserts the image; a failure rolls
    /// it all back. PostgreSQL: refused (400), `pg_restore` is the tool.
    async fn import(&self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        let Pool::Sqlite(pool) = &self.pool else {
            return Err(super::no_images(self.type_name()));
        };
        self.migrate().await?;
        let mut tx = pool.begin().await.map_err(storage_error)?;
        sqlx::query("DELETE FROM authmount_kv")
            .execute(&mut *tx)
            .await
            .map_err(storage_error)?;
        for (key, value) in entries {
            sqlx::query("INSERT INTO authmount_kv (path, value) VALUES ($1, $2)")
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await
                .map_err(storage_error)?;
        }
        tx.commit().await.map_err(storage_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::View;
    use std::sync::Arc;

    async fn exercise(store: Arc<dyn Storage>) {
        let prefix = format!("t-{}/", uuid::Uuid::new_v4());
        let view = View::new(store.clone(), prefix.clone());
        view.put("role/a", b"1").await.unwrap();
        view.put("role/b", b"2").await.unwrap();
        view.put("role/b", b"3").await.unwrap();
        view.put("config", b"4").await.unwrap();
        assert_eq!(
            view.get("role/b").await.unwrap().as_deref(),
            Some(&b"3"[..])
        );
        assert_eq!(view.list("").await.unwrap(), ["config", "role/"]);
        assert_eq!(view.list("role/").await.unwrap(), ["a", "b"]);
        view.put_batch(vec![
            ("b/1".into(), b"x".to_vec()),
            ("b/2".into(), b"y".to_vec()),
        ])
        .await
        .unwrap();
        assert_eq!(view.list("b/").await.unwrap(), ["1", "2"]);
        assert!(view.put_if_absent("once", b"x").await.unwrap());
        assert!(!view.put_if_absent("once", b"y").await.unwrap());
        assert_eq!(view.get("once").await.unwrap().as_deref(), Some(&b"x"[..]));
        assert!(!view
            .compare_and_put("once", Some(b"stale"), b"z")
            .await
            .unwrap());
        assert!(view
            .compare_and_put("once", Some(b"x"), b"z")
            .await
            .unwrap());
        assert!(!view.compare_and_put("once", None, b"w").await.unwrap());
        assert_eq!(view.get("once").await.unwrap().as_deref(), Some(&b"z"[..]));
        // A guarded batch: written whole when the guard is new, not at all otherwise.
        let guard = format!("{}guard", prefix);
        let entries = |v: &[u8]| {
            vec![
                (format!("{}g/1", prefix), v.to_vec()),
                (format!("{}g/2", prefix), v.to_vec()),
            ]
        };
        assert!(store
            .put_batch_if_absent(&guard, b"1", &entries(b"a"))
            .await
            .unwrap());
        assert!(!store
            .put_batch_if_absent(&guard, b"2", &entries(b"b"))
            .await
            .unwrap());
        assert_eq!(view.get("g/2").await.unwrap().as_deref(), Some(&b"a"[..]));
        assert_eq!(view.get("guard").await.unwrap().as_deref(), Some(&b"1"[..]));
        view.clear().await.unwrap();
        assert!(view.list("").await.unwrap().is_empty());
        assert!(view.get("role/a").await.unwrap().is_none());
        store.ping().await.unwrap();
    }

    #[tokio::test]
    async fn sqlite_keeps_keys_and_lists_children() {
        let dir = std::env::temp_dir().join(format!("authmount-sql-{}", uuid::Uuid::new_v4()));
        let store = SqlStore::sqlite(&dir.join("data/authmount.db"))
            .await
            .unwrap();
        exercise(Arc::new(store)).await;
        // Reopening finds what was written.
        let path = dir.join("again.db");
        let first = SqlStore::sqlite(&path).await.unwrap();
        first.put("k", b"v").await.unwrap();
        drop(first);
        let second = SqlStore::sqlite(&path).await.unwrap();
        assert_eq!(second.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn sqlite_images_are_consistent_and_imported_whole() {
        let dir = std::env::temp_dir().join(format!("authmount-img-{}", uuid::Uuid::new_v4()));
        let store = Arc::new(SqlStore::sqlite(&dir.join("a.db")).await.unwrap());
        // A writer moves two keys together (one transaction per step) while images are
        // taken: every image sees both keys at the same step.
        store
            .put_batch(&[("p".into(), b"0".to_vec()), ("q".into(), b"0".to_vec())])
            .await
            .unwrap();
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 1..200u32 {
                    let v = i.to_string().into_bytes();
                    store
                        .put_batch(&[("p".into(), v.clone()), ("q".into(), v)])
                        .await
                        .unwrap();
                }
            })
        };
        for _ in 0..20 {
            let image = store.export().await.unwrap();
            assert_eq!(image.len(), 2);
            assert_eq!(image[0].1, image[1].1, "{image:?}");
        }
        writer.await.unwrap();
        let image = store.export().await.unwrap();
        store.put("extra", b"x").await.unwrap();
        store.import(&image).await.unwrap();
        assert_eq!(store.export().await.unwrap(), image);
        // A failing import (the same key twice breaks the primary key) changes nothing.
        let bad = vec![
            ("k".to_string(), b"1".to_vec()),
            ("k".to_string(), b"2".to_vec()),
        ];
        assert!(store.import(&bad).await.is_err());
        assert_eq!(store.export().await.unwrap(), image);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn postgres_refuses_images_naming_pg_dump() {
        let store = SqlStore::postgres("postgres://nobody:x@127.0.0.1:9/none").unwrap();
        let err = store.export().await.unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.to_string().contains("pg_dump"), "{err}");
        assert_eq!(store.import(&[]).await.unwrap_err().status(), 400);
    }

    /// Runs only where `AUTHMOUNT_TEST_POSTGRES_URL` is set (`.ci/run` sets it).
    #[tokio::test]
    async fn postgres_keeps_keys_and_lists_children() {
        let Some(url) = crate::storage::postgres_test_url() else {
            return;
        };
        exercise(Arc::new(SqlStore::postgres(&url).unwrap())).await;
    }

    #[tokio::test]
    async fn an_unreachable_postgres_is_a_503_not_a_hang() {
        let store = SqlStore::postgres("postgres://nobody:x@127.0.0.1:9/none").unwrap();
        let err = store.ping().await.unwrap_err();
        assert_eq!(err.status(), 503, "{err}");
        assert!(err.to_string().starts_with("storage unavailable"), "{err}");
    }
}
