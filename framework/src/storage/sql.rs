//! SQL storage through sqlx: embedded SQLite (the default of `authmount server`: one file,
//! WAL mode, every commit synced) and PostgreSQL (several server nodes on one database).
//! Both use one table and one set of migrations (`framework/migrations/`).
//!
//! Writes are **group-committed**: every write goes to one writer task per store, which
//! takes all the writes waiting, applies them in order in one transaction and commits once
//! (one sync to disk for all); each caller is answered only after that commit. A write
//! whose statement fails is retried alone, so one bad write does not fail its neighbours.
//!
//! Each committed transaction is recorded in the store's change feed (see
//! [`feed`](super::feed)): PostgreSQL in the same transaction (`authmount_feed`,
//! `authmount_changes`); SQLite in this process's memory, as the server holding the
//! database file's lock ([`SqlStore::sqlite_exclusive`]) is its only writer.
//!
//! Prefix lists are range scans on an index in byte order: SQLite's primary key (its TEXT
//! compares bytewise), and on PostgreSQL an index on `path COLLATE "C"` made at migration.
//!
//! A store that cannot reach its database answers 503 `storage unavailable: ...` and
//! recovers by itself when the database is back (the pool reconnects; migrations run at
//! the first successful use).

use std::fs::File;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{mpsc, oneshot, OnceCell};

use super::feed::{prefix_successor, Changes, LocalFeed};
use super::{children, Storage};
use crate::error::{Error, Result};

/// How long a request waits for a database connection before it fails with 503.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The most writes one group commit takes.
pub const GROUP_COMMIT_MAX: usize = 512;

/// How many transactions PostgreSQL's change table keeps; a node further behind clears its
/// cache (it is told [`Changes::Everything`]). Trimmed every [`FEED_TRIM_EVERY`] commits.
pub const FEED_KEEP: i64 = 100_000;
/// See [`FEED_KEEP`].
pub const FEED_TRIM_EVERY: i64 = 1_000;
/// The most changed keys one [`Storage::changes_since`] reads from PostgreSQL; more
/// means [`Changes::Everything`].
const FEED_READ_MAX: usize = 4_096;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const UPSERT: &str = "INSERT INTO authmount_kv (path, value) VALUES ($1, $2) \
                      ON CONFLICT (path) DO UPDATE SET value = excluded.value";

const INSERT_IF_ABSENT: &str = "INSERT INTO authmount_kv (path, value) VALUES ($1, $2) \
                                ON CONFLICT (path) DO NOTHING";

const COMPARE_AND_PUT: &str = "UPDATE authmount_kv SET value = $3 WHERE path = $1 AND value = $2";

const DELETE: &str = "DELETE FROM authmount_kv WHERE path = $1";

/// PostgreSQL only (SQLite's TEXT primary key already compares bytewise): the index that
/// prefix lists scan.
const PG_BYTEWISE_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS authmount_kv_path_bytewise ON authmount_kv (path COLLATE \"C\")";

/// The advisory lock key under which [`PG_BYTEWISE_INDEX`] is created (any fixed number
/// no other user of the database takes: "authmnt1" in ASCII).
const PG_INDEX_LOCK: i64 = 0x6175_7468_6d6e_7431;

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// What the writer task and the store share.
struct Shared {
    pool: Pool,
    migrated: OnceCell<()>,
    /// SQLite's change feed (PostgreSQL's is in the database).
    local_feed: Option<LocalFeed>,
}

/// A key/value store in SQLite or PostgreSQL.
pub struct SqlStore {
    shared: Arc<Shared>,
    writer: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    /// The lock on `<database>.lock` of [`SqlStore::sqlite_exclusive`], held while open.
    _lock: Option<File>,
}

/// One write, as the writer task applies it; its outcome is "stored" (false: a condition
/// did not hold and nothing was written).
enum Op {
    Put(String, Vec<u8>),
    PutIfAbsent(String, Vec<u8>),
    CompareAndPut(String, Vec<u8>, Vec<u8>),
    Delete(String),
    Batch(Vec<(String, Vec<u8>)>),
    BatchIfAbsent(String, Vec<u8>, Vec<(String, Vec<u8>)>),
    /// Every row deleted, then these inserted: a snapshot's restore. Its change is
    /// "everything".
    Replace(Vec<(String, Vec<u8>)>),
}

impl Op {
    fn keys(&self) -> Vec<&str> {
        match self {
            Op::Put(k, _) | Op::PutIfAbsent(k, _) | Op::CompareAndPut(k, _, _) | Op::Delete(k) => {
                vec![k]
            }
            Op::Batch(entries) | Op::Replace(entries) => {
                entries.iter().map(|(k, _)| k.as_str()).collect()
            }
            Op::BatchIfAbsent(guard, _, entries) => std::iter::once(guard.as_str())
                .chain(entries.iter().map(|(k, _)| k.as_str()))
                .collect(),
        }
    }
}

struct Job {
    op: Op,
    done: oneshot::Sender<Result<bool>>,
}

/// Why a group did not commit.
enum GroupError {
    /// A statement failed: nothing was committed, each write can be tried alone.
    Statement(Error),
    /// The commit itself failed: its outcome is unknown.
    Commit(Error),
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
        match &$self.shared.pool {
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

/// Applies one [`Op`] inside the transaction `$tx` (a `&mut Transaction`); an async block
/// yielding `Result<bool, sqlx::Error>` (true: stored).
macro_rules! apply_op {
    ($tx:expr, $op:expr) => {
        async {
            let stored = match $op {
                Op::Put(key, value) => {
                    sqlx::query(UPSERT)
                        .bind(key)
                        .bind(value)
                        .execute(&mut **$tx)
                        .await?;
                    true
                }
                Op::PutIfAbsent(key, value) => {
                    let done = sqlx::query(INSERT_IF_ABSENT)
                        .bind(key)
                        .bind(value)
                        .execute(&mut **$tx)
                        .await?;
                    done.rows_affected() > 0
                }
                Op::CompareAndPut(key, expected, value) => {
                    let done = sqlx::query(COMPARE_AND_PUT)
                        .bind(key)
                        .bind(expected)
                        .bind(value)
                        .execute(&mut **$tx)
                        .await?;
                    done.rows_affected() > 0
                }
                Op::Delete(key) => {
                    sqlx::query(DELETE).bind(key).execute(&mut **$tx).await?;
                    true
                }
                Op::Batch(entries) => {
                    for (key, value) in entries {
                        sqlx::query(UPSERT)
                            .bind(key)
                            .bind(value)
                            .execute(&mut **$tx)
                            .await?;
                    }
                    true
                }
                Op::Replace(entries) => {
                    sqlx::query("DELETE FROM authmount_kv")
                        .execute(&mut **$tx)
                        .await?;
                    for (key, value) in entries {
                        sqlx::query("INSERT INTO authmount_kv (path, value) VALUES ($1, $2)")
                            .bind(key)
                            .bind(value)
                            .execute(&mut **$tx)
                            .await?;
                    }
                    true
                }
                Op::BatchIfAbsent(guard, guard_value, entries) => {
                    let inserted = sqlx::query(INSERT_IF_ABSENT)
                        .bind(guard)
                        .bind(guard_value)
                        .execute(&mut **$tx)
                        .await?
                        .rows_affected();
                    if inserted > 0 {
                        for (key, value) in entries {
                            sqlx::query(UPSERT)
                                .bind(key)
                                .bind(value)
                                .execute(&mut **$tx)
                                .await?;
                        }
                    }
                    inserted > 0
                }
            };
            Ok::<bool, sqlx::Error>(stored)
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
    ///
    /// The store assumes this process is the database's only writer (its change feed is in
    /// memory): a server opens it with [`SqlStore::sqlite_exclusive`]; this is for reading
    /// a database in tests and tools.
    pub async fn sqlite(path: &Path) -> Result<SqlStore> {
        SqlStore::sqlite_with(path, true).await
    }

    /// [`SqlStore::sqlite`], choosing whether each commit is synced to disk
    /// (`synchronous = FULL`, the default) or only handed to the OS (`NORMAL`: an answered
    /// write survives the server's crash, `kill -9` included, but not the machine's; several
    /// times the write throughput on disks with slow syncs).
    pub async fn sqlite_with(path: &Path, sync_every_commit: bool) -> Result<SqlStore> {
        SqlStore::open_sqlite(path, sync_every_commit, None).await
    }

    /// [`SqlStore::sqlite_with`] for a server: first takes an exclusive lock on the file
    /// `<path>.lock` (created when missing), held while the store is open, so that a second
    /// server process on the same database refuses to start (its in-memory caches are exact
    /// only while one process writes). Errors: 503 naming the database and the lock file when
    /// another process holds the lock, or when the lock file cannot be made.
    pub async fn sqlite_exclusive(path: &Path, sync_every_commit: bool) -> Result<SqlStore> {
        let lock_path = {
            let mut name = path.as_os_str().to_owned();
            name.push(".lock");
            std::path::PathBuf::from(name)
        };
        create_parent(&lock_path)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                Error::Unavailable(format!(
                    "cannot open the lock file {}: {e}",
                    lock_path.display()
                ))
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Unavailable(format!(
                    "the SQLite database {} is in use by another authmount server process \
                     (it holds the lock {}); one database file serves one server: stop the \
                     other one, or use PostgreSQL for several nodes",
                    path.display(),
                    lock_path.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::Unavailable(format!(
                    "cannot lock {}: {e}",
                    lock_path.display()
                )))
            }
        }
        SqlStore::open_sqlite(path, sync_every_commit, Some(file)).await
    }

    async fn open_sqlite(
        path: &Path,
        sync_every_commit: bool,
        lock: Option<File>,
    ) -> Result<SqlStore> {
        create_parent(path)?;
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
        let store = SqlStore::over(Pool::Sqlite(pool), Some(LocalFeed::new()), lock);
        store.shared.migrate().await?;
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
        Ok(SqlStore::over(Pool::Postgres(pool), None, None))
    }

    fn over(pool: Pool, local_feed: Option<LocalFeed>, lock: Option<File>) -> SqlStore {
        SqlStore {
            shared: Arc::new(Shared {
                pool,
                migrated: OnceCell::new(),
                local_feed,
            }),
            writer: Mutex::new(None),
            _lock: lock,
        }
    }

    /// Hands `op` to the writer task (started on first use, and again if its runtime
    /// ended) and waits until its group is committed.
    async fn write(&self, op: Op) -> Result<bool> {
        self.shared.migrate().await?;
        let (done, answer) = oneshot::channel();
        let mut job = Job { op, done };
        for _ in 0..2 {
            let sender = {
                let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
                match writer.as_ref().filter(|s| !s.is_closed()) {
                    Some(sender) => sender.clone(),
                    None => {
                        let (sender, jobs) = mpsc::unbounded_channel();
                        tokio::spawn(write_loop(self.shared.clone(), jobs));
                        *writer = Some(sender.clone());
                        sender
                    }
                }
            };
            match sender.send(job) {
                Ok(()) => {
                    return answer.await.unwrap_or_else(|_| {
                        Err(Error::Unavailable(
                            "storage unavailable: the writer stopped".into(),
                        ))
                    })
                }
                Err(mpsc::error::SendError(back)) => job = back,
            }
        }
        Err(Error::Unavailable(
            "storage unavailable: cannot start the writer".into(),
        ))
    }
}

fn create_parent(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Unavailable(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    Ok(())
}

/// The writer task: takes every write waiting (up to [`GROUP_COMMIT_MAX`]) and commits them
/// together, until the store is dropped.
async fn write_loop(shared: Arc<Shared>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP_COMMIT_MAX {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        shared.commit_group(group).await;
    }
}

impl Shared {
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
                })?;
                if let Pool::Postgres(p) = &self.pool {
                    // Nodes starting together would race on `IF NOT EXISTS` (a duplicate key
                    // in pg_class): one at a time, under a transaction-scoped advisory lock.
                    let mut tx = p.begin().await.map_err(storage_error)?;
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(PG_INDEX_LOCK)
                        .execute(&mut *tx)
                        .await
                        .map_err(storage_error)?;
                    sqlx::query(PG_BYTEWISE_INDEX)
                        .execute(&mut *tx)
                        .await
                        .map_err(storage_error)?;
                    tx.commit().await.map_err(storage_error)?;
                }
                Ok::<(), Error>(())
            })
            .await
            .map(|_| ())
    }

    /// Commits `group` in one transaction and answers each job; when a statement fails,
    /// tries each job alone instead.
    async fn commit_group(&self, group: Vec<Job>) {
        let ops: Vec<&Op> = group.iter().map(|j| &j.op).collect();
        let outcomes = match self.commit(&ops).await {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(GroupError::Statement(_)) if ops.len() > 1 => {
                let mut alone = Vec::with_capacity(ops.len());
                for op in &ops {
                    alone.push(match self.commit(&[op]).await {
                        Ok(outcome) => Ok(outcome[0]),
                        Err(GroupError::Statement(e) | GroupError::Commit(e)) => Err(e),
                    });
                }
                alone
            }
            Err(GroupError::Statement(e) | GroupError::Commit(e)) => vec![Err(e); ops.len()],
        };
        for (job, outcome) in group.into_iter().zip(outcomes) {
            let _ = job.done.send(outcome); // a caller that went away needs no answer
        }
    }

    /// One transaction: `ops` in order, then the change feed, then the commit.
    async fn commit(&self, ops: &[&Op]) -> std::result::Result<Vec<bool>, GroupError> {
        let statement = |e: sqlx::Error| GroupError::Statement(storage_error(e));
        let mut outcomes = Vec::with_capacity(ops.len());
        let mut changed: Vec<String> = Vec::new();
        macro_rules! in_transaction {
            ($pool:expr, $feed:ident) => {{
                let mut tx = $pool.begin().await.map_err(statement)?;
                for op in ops {
                    let stored = apply_op!(&mut tx, op).await.map_err(statement)?;
                    if stored {
                        changed.extend(op.keys().into_iter().map(str::to_string));
                    }
                    outcomes.push(stored);
                }
                $feed!(tx, changed);
                tx.commit()
                    .await
                    .map_err(|e| GroupError::Commit(storage_error(e)))?;
            }};
        }
        macro_rules! no_feed {
            ($tx:ident, $changed:ident) => {};
        }
        macro_rules! pg_feed {
            ($tx:ident, $changed:ident) => {
                if !$changed.is_empty() {
                    let head: i64 = sqlx::query_scalar(
                        "UPDATE authmount_feed SET head = head + 1 WHERE id = 1 RETURNING head",
                    )
                    .fetch_one(&mut *$tx)
                    .await
                    .map_err(statement)?;
                    sqlx::query(
                        "INSERT INTO authmount_changes (seq, path) SELECT $1, unnest($2::text[])",
                    )
                    .bind(head)
                    .bind(&$changed)
                    .execute(&mut *$tx)
                    .await
                    .map_err(statement)?;
                    if head % FEED_TRIM_EVERY == 0 && head > FEED_KEEP {
                        let upto = head - FEED_KEEP;
                        sqlx::query("DELETE FROM authmount_changes WHERE seq <= $1")
                            .bind(upto)
                            .execute(&mut *$tx)
                            .await
                            .map_err(statement)?;
                        sqlx::query("UPDATE authmount_feed SET trimmed = $1 WHERE id = 1")
                            .bind(upto)
                            .execute(&mut *$tx)
                            .await
                            .map_err(statement)?;
                    }
                }
            };
        }
        match &self.pool {
            Pool::Sqlite(pool) => in_transaction!(pool, no_feed),
            Pool::Postgres(pool) => in_transaction!(pool, pg_feed),
        }
        if let Some(feed) = &self.local_feed {
            if ops.iter().any(|op| matches!(op, Op::Replace(_))) {
                feed.record_everything();
            } else if !changed.is_empty() {
                feed.record(changed.iter().map(String::as_str));
            }
        }
        Ok(outcomes)
    }
}

#[async_trait]
impl Storage for SqlStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.shared.migrate().await?;
        let rows = fetch!(self, "SELECT value FROM authmount_kv WHERE path = $1", key)
            .map_err(storage_error)?;
        Ok(rows.into_iter().next().and_then(|(_, v)| v))
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.write(Op::Put(key.to_string(), value.to_vec()))
            .await
            .map(|_| ())
    }

    /// One transaction (shared with other writes waiting): one sync to disk for all the keys.
    async fn put_batch(&self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        self.write(Op::Batch(entries.to_vec())).await.map(|_| ())
    }

    /// One transaction: the guard's insert decides; on a conflict nothing is written.
    async fn put_batch_if_absent(
        &self,
        guard: &str,
        guard_value: &[u8],
        entries: &[(String, Vec<u8>)],
    ) -> Result<bool> {
        self.write(Op::BatchIfAbsent(
            guard.to_string(),
            guard_value.to_vec(),
            entries.to_vec(),
        ))
        .await
    }

    fn type_name(&self) -> &'static str {
        match self.shared.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgresql",
        }
    }

    async fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<bool> {
        self.write(Op::PutIfAbsent(key.to_string(), value.to_vec()))
            .await
    }

    async fn compare_and_put(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool> {
        let op = match expected {
            None => Op::PutIfAbsent(key.to_string(), value.to_vec()),
            Some(expected) => Op::CompareAndPut(key.to_string(), expected.to_vec(), value.to_vec()),
        };
        self.write(op).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.write(Op::Delete(key.to_string())).await.map(|_| ())
    }

    /// A range scan in byte order on an index: `prefix <= path < successor(prefix)`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.shared.migrate().await?;
        let end = prefix_successor(prefix);
        let rows = match (&self.shared.pool, end) {
            (Pool::Sqlite(_), Some(end)) => fetch!(
                self,
                "SELECT path FROM authmount_kv WHERE path >= $1 AND path < $2 ORDER BY path",
                prefix,
                end
            ),
            (Pool::Sqlite(_), None) => fetch!(
                self,
                "SELECT path FROM authmount_kv WHERE path >= $1 ORDER BY path",
                prefix
            ),
            (Pool::Postgres(_), Some(end)) => fetch!(
                self,
                "SELECT path FROM authmount_kv WHERE path COLLATE \"C\" >= $1 \
                 AND path COLLATE \"C\" < $2 ORDER BY path COLLATE \"C\"",
                prefix,
                end
            ),
            (Pool::Postgres(_), None) => fetch!(
                self,
                "SELECT path FROM authmount_kv WHERE path COLLATE \"C\" >= $1 \
                 ORDER BY path COLLATE \"C\"",
                prefix
            ),
        }
        .map_err(storage_error)?;
        let keys: Vec<String> = rows.into_iter().filter_map(|(k, _)| k).collect();
        Ok(children(prefix, keys.iter().map(String::as_str)))
    }

    async fn ping(&self) -> Result<()> {
        self.shared.migrate().await?;
        fetch!(self, "SELECT 1 AS one").map_err(storage_error)?;
        Ok(())
    }

    /// SQLite: the in-memory feed. PostgreSQL: one query reading the feed's head and the
    /// keys changed after `since` (an index range on `authmount_changes.seq`).
    async fn changes_since(&self, since: u64) -> Result<Changes> {
        if let Some(feed) = &self.shared.local_feed {
            return Ok(feed.since(since));
        }
        self.shared.migrate().await?;
        let Pool::Postgres(pool) = &self.shared.pool else {
            return Ok(Changes::Unknown);
        };
        let since_i64 = i64::try_from(since).unwrap_or(i64::MAX);
        let rows: Vec<(i64, i64, Option<String>)> = sqlx::query_as(
            "SELECT f.head, f.trimmed, c.path FROM authmount_feed f LEFT JOIN \
             (SELECT path FROM authmount_changes WHERE seq > $1 ORDER BY seq LIMIT $2) c \
             ON TRUE WHERE f.id = 1",
        )
        .bind(since_i64)
        .bind(FEED_READ_MAX as i64 + 1)
        .fetch_all(pool)
        .await
        .map_err(storage_error)?;
        let Some(&(head, trimmed, _)) = rows.first() else {
            return Ok(Changes::Unknown); // the feed row is missing: no feed
        };
        let through = u64::try_from(head).unwrap_or(0);
        let keys: Vec<String> = rows.into_iter().filter_map(|(_, _, p)| p).collect();
        if since_i64 > head || since_i64 < trimmed || keys.len() > FEED_READ_MAX {
            return Ok(Changes::Everything { through });
        }
        Ok(Changes::Keys { through, keys })
    }

    /// SQLite: one read transaction (in WAL mode a reader sees one committed state while
    /// writers go on). PostgreSQL: refused (400), `pg_dump` is the tool.
    async fn export(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let Pool::Sqlite(pool) = &self.shared.pool else {
            return Err(super::no_images(self.type_name()));
        };
        self.shared.migrate().await?;
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

    /// SQLite: through the writer, one transaction deletes every row and inserts the image
    /// (a failure rolls it all back), and the change feed tells every cache to drop all it
    /// holds. PostgreSQL: refused (400), `pg_restore` is the tool.
    async fn import(&self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        if !matches!(self.shared.pool, Pool::Sqlite(_)) {
            return Err(super::no_images(self.type_name()));
        }
        self.write(Op::Replace(entries.to_vec())).await.map(|_| ())
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

    /// Concurrent writes on node `a` share commits, each answered with its own outcome, and
    /// node `b` (another handle on the same database) reads them and finds each key in the
    /// change feed after the point it had seen.
    async fn group_commits_feed_the_other_node(a: Arc<dyn Storage>, b: Arc<dyn Storage>) {
        let prefix = format!("g-{}/", uuid::Uuid::new_v4());
        let point = match b.changes_since(0).await.unwrap() {
            Changes::Keys { through, .. } | Changes::Everything { through } => through,
            Changes::Unknown => panic!("no change feed"),
        };
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..64 {
            let (a, key) = (a.clone(), format!("{prefix}k{i}"));
            tasks.spawn(async move { a.put(&key, format!("{i}").as_bytes()).await });
        }
        // Racing conditional writes of one key inside the same groups: exactly one stores.
        for i in 0..16 {
            let (a, key) = (a.clone(), format!("{prefix}once"));
            tasks.spawn(async move {
                let stored = a.put_if_absent(&key, format!("{i}").as_bytes()).await?;
                if stored {
                    a.put(&format!("{key}-won-{i}"), b"").await?;
                }
                Ok(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
        let listed = b.list(&prefix).await.unwrap();
        assert_eq!(listed.len(), 64 + 2, "{listed:?}");
        assert_eq!(listed.iter().filter(|k| k.contains("-won-")).count(), 1);
        for i in 0..64 {
            let key = format!("{prefix}k{i}");
            assert_eq!(
                b.get(&key).await.unwrap(),
                Some(format!("{i}").into_bytes())
            );
        }
        let Changes::Keys { through, keys } = b.changes_since(point).await.unwrap() else {
            panic!("the feed forgot");
        };
        assert!(through > point);
        for i in 0..64 {
            assert!(
                keys.contains(&format!("{prefix}k{i}")),
                "k{i} not in the feed"
            );
        }
        // Nothing after the newest point.
        assert_eq!(
            b.changes_since(through).await.unwrap(),
            Changes::Keys {
                through,
                keys: vec![]
            }
        );
        // A delete is a change too; a range ends exactly at the prefix.
        a.put(&format!("{}x", prefix.trim_end_matches('/')), b"beside")
            .await
            .unwrap();
        a.delete(&format!("{prefix}k0")).await.unwrap();
        let Changes::Keys { keys, .. } = b.changes_since(through).await.unwrap() else {
            panic!("the feed forgot");
        };
        assert!(keys.contains(&format!("{prefix}k0")));
        assert_eq!(b.list(&prefix).await.unwrap().len(), 64 + 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_group_commits_and_feeds_its_changes() {
        let dir = std::env::temp_dir().join(format!("authmount-group-{}", uuid::Uuid::new_v4()));
        let store: Arc<dyn Storage> = Arc::new(SqlStore::sqlite(&dir.join("g.db")).await.unwrap());
        group_commits_feed_the_other_node(store.clone(), store).await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Runs only where `AUTHMOUNT_TEST_POSTGRES_URL` is set.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_group_commits_and_feeds_its_changes_to_another_node() {
        let Some(url) = crate::storage::postgres_test_url() else {
            return;
        };
        group_commits_feed_the_other_node(
            Arc::new(SqlStore::postgres(&url).unwrap()),
            Arc::new(SqlStore::postgres(&url).unwrap()),
        )
        .await;
    }

    #[tokio::test]
    async fn a_second_exclusive_open_of_one_sqlite_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("authmount-lock-{}", uuid::Uuid::new_v4()));
        let path = dir.join("x.db");
        let first = SqlStore::sqlite_exclusive(&path, true).await.unwrap();
        let err = SqlStore::sqlite_exclusive(&path, true)
            .await
            .err()
            .expect("a second exclusive open");
        assert_eq!(err.status(), 503);
        assert!(
            err.to_string()
                .contains("in use by another authmount server"),
            "{err}"
        );
        drop(first);
        SqlStore::sqlite_exclusive(&path, true).await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
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
