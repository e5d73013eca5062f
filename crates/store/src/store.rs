use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{Migrate, MigrateError, Migration};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};

use crate::error::{StoreError, is_busy, is_corrupt};

/// The schema, embedded in the binary. Applied on every open; a no-op when up to date.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long SQLite itself waits for another writer before reporting the database busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many times a write transaction is tried when the database stays busy past
/// [`BUSY_TIMEOUT`] (or reports a lock SQLite does not wait on).
const WRITE_ATTEMPTS: u32 = 5;

/// How many times opening a pool is tried while the database is busy (about 5 s in all).
const CONNECT_ATTEMPTS: u32 = 30;

/// Connections for reads. Writes go through a single connection per `Store`, so writers
/// of one process queue in the pool instead of spinning on SQLite's lock.
const READ_CONNECTIONS: u32 = 8;

/// The rswe database: sessions, their event logs, model usage and idempotency keys.
///
/// Cheap to clone: clones share the same connection pools. Several `Store`s (in one
/// process or several) may open the same file; SQLite serialises their writes.
#[derive(Clone)]
pub struct Store {
    pub(crate) writer: SqlitePool,
    pub(crate) reader: SqlitePool,
    location: Arc<str>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("location", &self.location).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database at `path`, creating the file and its directory if missing, and
    /// brings its schema up to date.
    pub async fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|source| StoreError::CreateDirectory { path: parent.to_path_buf(), source })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);

        let writer = connect(SqlitePoolOptions::new().max_connections(1), options.clone())
            .await
            .map_err(|error| open_error(&path, error))?;
        let location: Arc<str> = path.display().to_string().into();
        migrate(&writer, &location).await?;
        let reader =
            connect(SqlitePoolOptions::new().max_connections(READ_CONNECTIONS), options.pragma("query_only", "ON"))
                .await
                .map_err(|error| open_error(&path, error))?;
        tracing::debug!(path = %path.display(), "opened the store");
        Ok(Store { writer, reader, location })
    }

    /// Opens `data_dir()/rswe.db`. See [`crate::data_dir`] for where that is.
    pub async fn open_default() -> Result<Store, StoreError> {
        Store::open(crate::data_dir().join("rswe.db")).await
    }

    /// A private database in memory, gone when the last clone is dropped. For tests.
    pub async fn open_in_memory() -> Result<Store, StoreError> {
        // Every connection to ":memory:" is a database of its own, so the pool holds
        // exactly one connection and never lets it go.
        let options = SqliteConnectOptions::new().foreign_keys(true).busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|error| open_error(Path::new(":memory:"), error))?;
        let location: Arc<str> = ":memory:".into();
        migrate(&pool, &location).await?;
        Ok(Store { writer: pool.clone(), reader: pool, location })
    }

    /// Where the database lives, for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Waits for every connection to close; the file is checkpointed and consistent
    /// afterwards. Dropping every clone also closes the store, in the background.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Runs `op` in a write transaction (`BEGIN IMMEDIATE`: the write lock is taken up
    /// front, so the transaction never fails half-way on a lock upgrade). When the
    /// database stays busy the whole transaction is tried again, a bounded number of times.
    /// `op` must commit the transaction it is given; dropping it rolls back.
    pub(crate) async fn write<T, F, Fut>(&self, what: &'static str, mut op: F) -> Result<T, StoreError>
    where
        F: FnMut(Transaction<'static, Sqlite>) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut attempt = 1;
        loop {
            let result = match self.writer.begin_with("BEGIN IMMEDIATE").await {
                Ok(tx) => op(tx).await,
                Err(error) => Err(StoreError::from(error)),
            };
            match result {
                Err(error) if error.is_busy() => {
                    if attempt >= WRITE_ATTEMPTS {
                        tracing::warn!(what, attempts = attempt, %error, "database busy; giving up");
                        return Err(StoreError::Busy { what, attempts: attempt });
                    }
                    tracing::debug!(what, attempt, %error, "database busy; trying again");
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// Opens a pool. Switching a new database to WAL takes an exclusive lock SQLite does not
/// wait for, so a store opening while another one switches may be told the database is
/// busy: it tries again, a bounded number of times.
async fn connect(pool: SqlitePoolOptions, options: SqliteConnectOptions) -> Result<SqlitePool, sqlx::Error> {
    let mut attempt = 1;
    loop {
        match pool.clone().connect_with(options.clone()).await {
            Err(error) if is_busy(&error) && attempt < CONNECT_ATTEMPTS => {
                tracing::debug!(attempt, %error, "database busy while opening; trying again");
                tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Applies the embedded migrations inside one `BEGIN IMMEDIATE` transaction, so that two
/// processes opening a new database at once cannot both try to create the schema.
async fn migrate(pool: &SqlitePool, location: &str) -> Result<(), StoreError> {
    let migrate_error = |source: MigrateError| match &source {
        MigrateError::Execute(error) if is_corrupt(error) => corrupt_file(location, error),
        _ => StoreError::Migrate { location: location.to_string(), source },
    };
    let mut tx =
        pool.begin_with("BEGIN IMMEDIATE").await.map_err(|error| migrate_error(MigrateError::Execute(error)))?;
    let applied = run_migrations(&mut tx).await.map_err(migrate_error)?;
    tx.commit().await.map_err(|error| migrate_error(MigrateError::Execute(error)))?;
    if applied > 0 {
        tracing::info!(location, applied, "brought the database schema up to date");
    }
    Ok(())
}

/// What `Migrator::run` does, through the `Migrate` trait directly: `Migrator::run`'s
/// future is not `Send` (rustc: "implementation of `Acquire` is not general enough"),
/// which would keep `Store::open` out of spawned tasks. Returns how many were applied.
async fn run_migrations(conn: &mut SqliteConnection) -> Result<usize, MigrateError> {
    const TABLE: &str = "_sqlx_migrations";
    conn.ensure_migrations_table(TABLE).await?;
    if let Some(version) = conn.dirty_version(TABLE).await? {
        return Err(MigrateError::Dirty(version));
    }
    let known: HashMap<i64, &Migration> = MIGRATOR
        .iter()
        .filter(|migration| !migration.migration_type.is_down_migration())
        .map(|migration| (migration.version, migration))
        .collect();
    let applied = conn.list_applied_migrations(TABLE).await?;
    for migration in &applied {
        match known.get(&migration.version) {
            // A newer rswe applied a migration this one does not have.
            None => return Err(MigrateError::VersionMissing(migration.version)),
            Some(known) if known.checksum != migration.checksum => {
                return Err(MigrateError::VersionMismatch(migration.version));
            }
            Some(_) => {}
        }
    }
    let applied: HashSet<i64> = applied.iter().map(|migration| migration.version).collect();
    let mut pending: Vec<&Migration> = known.into_values().filter(|m| !applied.contains(&m.version)).collect();
    pending.sort_by_key(|migration| migration.version);
    for migration in &pending {
        conn.apply(TABLE, migration).await?;
    }
    Ok(pending.len())
}

fn open_error(path: &Path, error: sqlx::Error) -> StoreError {
    if is_corrupt(&error) {
        corrupt_file(&path.display().to_string(), &error)
    } else {
        StoreError::Open { path: PathBuf::from(path), source: error }
    }
}

fn corrupt_file(location: &str, error: &sqlx::Error) -> StoreError {
    StoreError::Corrupt(format!(
        "the file at {location} is not an rswe database or is damaged ({error}) — move it aside to start with a new \
         database, or restore a backup"
    ))
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
