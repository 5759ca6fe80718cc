//! The store: one writer connection (serialized, `BEGIN IMMEDIATE`) and a pool of readers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::result::ConnectionError;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, migration::MigrationSource, sqlite::Sqlite};
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use spotauth_domain::ports::RepoError;
use spotauth_sql::{AnyConn, Connections, Job, Repositories, SqlStore, SqliteConn, TxError};

/// Every migration of `migrations/sqlite`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// The name of the setting that holds the database path, as every [`StoreError`] message
/// starts with it (the app reads the path from its configuration under this name).
pub const SETTING_NAME: &str = "SQLITE_PATH";

/// Pool sizing and waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteSettings {
    /// Most reader connections held open (writes use one more, dedicated connection).
    pub readers: usize,
    /// How long a statement waits for a lock held by another connection or process
    /// (`PRAGMA busy_timeout`).
    pub busy_timeout: Duration,
    /// Longest wait for a free reader connection.
    pub pool_timeout: Duration,
}

impl Default for SqliteSettings {
    fn default() -> Self {
        SqliteSettings { readers: 4, busy_timeout: Duration::from_millis(5000), pool_timeout: Duration::from_secs(5) }
    }
}

/// Why the store could not open. One line, starting with [`SETTING_NAME`] (`SQLITE_PATH`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The parent directory of the database file cannot be created.
    #[error("SQLITE_PATH: cannot create directory {path}: {reason}")]
    CreateDir {
        /// The directory.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The database file cannot be opened or created, or is not a database.
    #[error("SQLITE_PATH: cannot open {path}: {reason}")]
    Open {
        /// The database file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A migration failed.
    #[error("SQLITE_PATH: migration failed: {0}")]
    Migration(String),
}

/// The file's connections, as the shared repositories see them.
pub(crate) struct SqliteFiles {
    path: PathBuf,
    /// Every write runs here, one at a time (the async mutex queues our writers, so they never
    /// race for SQLite's write lock).
    writer: Arc<tokio::sync::Mutex<SqliteConn>>,
    readers: Pool<SqliteConn>,
    applied_at_open: Vec<String>,
}

impl std::fmt::Debug for SqliteFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteFiles").field("path", &self.path).field("readers", &self.readers.status()).finish()
    }
}

impl Connections for SqliteFiles {
    // SQLite's messages name tables, columns and conditions ("UNIQUE constraint failed: t.c",
    // "database is locked"), never a bound value.
    const MESSAGES_ARE_VALUE_FREE: bool = true;

    async fn read<R: Send + 'static>(&self, job: Job<R>) -> Result<R, TxError> {
        // A local file: deadpool's own words say enough ("Timeout occurred while waiting…").
        let mut conn =
            self.readers.get().await.map_err(|e| RepoError::Unavailable(format!("no reader connection: {e}")))?;
        job(AnyConn::Sqlite(&mut conn)).await
    }

    async fn write_one<R: Send + 'static>(&self, job: Job<R>) -> Result<R, TxError> {
        // The single writer, so our writes still queue here instead of meeting "database is
        // locked"; one statement is its own transaction.
        let mut conn = self.writer.lock().await;
        job(AnyConn::Sqlite(&mut conn)).await
    }

    async fn write<R: Send + 'static>(&self, job: Job<R>) -> Result<R, TxError> {
        // `BEGIN IMMEDIATE` takes the write lock up front, so a transaction that reads first
        // never has to upgrade (and fail with "database is locked").
        let mut conn = self.writer.lock().await;
        conn.immediate_transaction(async move |c| job(AnyConn::Sqlite(c)).await).await
    }

    /// `UNIQUE constraint failed: table.column`.
    fn violated_key(message: &str) -> Option<&str> {
        message.strip_prefix("UNIQUE constraint failed: ").map(str::trim)
    }

    fn describe(&self) -> String {
        format!("SQLite {}", self.path.display())
    }

    fn pool_usage(&self) -> spotauth_sql::PoolUsage {
        let s = self.readers.status();
        spotauth_sql::PoolUsage { open: s.size, idle: s.available, max: s.max_size, waiting: s.waiting }
    }
}

/// The SQLite store: one writer connection, a pool of readers, and the repositories on them
/// ([`SqliteStore::repositories`]). Cheap to clone (shared connections).
#[derive(Clone, Debug)]
pub struct SqliteStore(Arc<SqlStore<SqliteFiles>>);

/// Opens one connection with our settings. `reader` connections are `query_only`.
fn establish(path: &str, busy_timeout: Duration, reader: bool) -> Result<SqliteConnection, ConnectionError> {
    let mut conn = SqliteConnection::establish(path)?;
    let pragmas = format!(
        "PRAGMA busy_timeout = {}; PRAGMA synchronous = NORMAL; PRAGMA query_only = {};",
        busy_timeout.as_millis(),
        if reader { "ON" } else { "OFF" }
    );
    conn.batch_execute(&pragmas).map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

impl SqliteStore {
    /// Opens (creating on first run) the database file at `path`: creates the parent directory,
    /// switches the file to WAL mode and applies pending migrations. Errors are one line naming
    /// `SQLITE_PATH` and the path.
    pub async fn open(path: &Path, settings: SqliteSettings) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if parent.exists() && !parent.is_dir() {
                return Err(StoreError::CreateDir {
                    path: display(parent),
                    reason: "exists and is not a directory".into(),
                });
            }
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::CreateDir { path: display(parent), reason: e.to_string() })?;
        }
        if path.is_dir() {
            return Err(StoreError::Open { path: display(&path), reason: "is a directory".into() });
        }
        let Some(url) = path.to_str().map(str::to_owned) else {
            return Err(StoreError::Open { path: display(&path), reason: "path is not valid UTF-8".into() });
        };
        let open_error = |reason: String| StoreError::Open { path: display(&path), reason };
        // The file holds encrypted tokens and session hashes: owner-only from its first byte
        // (SQLite creates its -wal and -shm files with the database file's permissions).
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .or_else(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists { Ok(std::fs::File::open(&path)?) } else { Err(e) }
                })
                .map_err(|e| open_error(e.to_string()))?;
        }

        let busy = settings.busy_timeout;
        let setup_url = url.clone();
        let (writer, applied_at_open) = tokio::task::spawn_blocking(move || {
            let mut conn = establish(&setup_url, busy, false).map_err(|e| Err(e.to_string()))?;
            // Persistent in the file: readers see committed data while the writer writes.
            conn.batch_execute("PRAGMA journal_mode = WAL;").map_err(|e| Err(e.to_string()))?;
            let applied = conn
                .run_pending_migrations(MIGRATIONS)
                .map_err(|e| Ok(e.to_string()))?
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>();
            Ok::<_, Result<String, String>>((conn, applied))
        })
        .await
        .map_err(|e| open_error(e.to_string()))?
        .map_err(|e| match e {
            Ok(migration) => StoreError::Migration(migration),
            Err(open) => open_error(open),
        })?;

        let mut config = ManagerConfig::<SqliteConn>::default();
        config.recycling_method = RecyclingMethod::Fast;
        config.custom_setup = Box::new(move |url| {
            let url = url.to_owned();
            Box::pin(async move {
                tokio::task::spawn_blocking(move || establish(&url, busy, true))
                    .await
                    .map_err(|e| ConnectionError::BadConnection(e.to_string()))?
                    .map(SyncConnectionWrapper::new)
            })
        });
        let manager = AsyncDieselConnectionManager::new_with_config(url, config);
        let readers = Pool::builder(manager)
            .max_size(settings.readers.max(1))
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(settings.pool_timeout))
            .create_timeout(Some(settings.pool_timeout))
            .recycle_timeout(Some(settings.pool_timeout))
            .build()
            .map_err(|e| open_error(e.to_string()))?;
        let store = SqliteStore(Arc::new(SqlStore::new(SqliteFiles {
            path: path.clone(),
            writer: Arc::new(tokio::sync::Mutex::new(SyncConnectionWrapper::new(writer))),
            readers,
            applied_at_open,
        })));
        store.ping().await.map_err(|e| open_error(e.to_string()))?;
        Ok(store)
    }

    /// Every repository port, on this store's connections.
    pub fn repositories(&self) -> Repositories {
        self.0.repositories()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.0.connections().path
    }

    /// Names of the migrations [`SqliteStore::open`] applied (empty when the file was current).
    pub fn migrations_applied_at_open(&self) -> &[String] {
        &self.0.connections().applied_at_open
    }

    /// Names of every embedded migration, oldest first.
    pub fn embedded_migrations() -> Result<Vec<String>, StoreError> {
        MigrationSource::<Sqlite>::migrations(&MIGRATIONS)
            .map(|all| all.iter().map(|m| m.name().to_string()).collect())
            .map_err(|e| StoreError::Migration(e.to_string()))
    }

    /// `SELECT 1` on a reader: for readiness probes.
    pub async fn ping(&self) -> Result<(), RepoError> {
        self.0.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_violations_name_the_column() {
        let key = SqliteFiles::violated_key;
        assert_eq!(
            key("UNIQUE constraint failed: spotify_users.spotify_account_key"),
            Some("spotify_users.spotify_account_key")
        );
        assert_eq!(key("UNIQUE constraint failed: oauth_login_flows.state_hash"), Some("oauth_login_flows.state_hash"));
        assert_eq!(key("database is locked"), None);
    }
}
