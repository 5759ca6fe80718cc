//! The store: one writer connection (serialized, `BEGIN IMMEDIATE`) and a pool of readers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::result::{ConnectionError, QueryResult};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, migration::MigrationSource, sqlite::Sqlite};
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use spotauth_domain::ports::RepoError;

use crate::convert::map_err;

/// Every migration of `migrations/sqlite`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// The name of the setting that holds the database path, as every [`StoreError`] message
/// starts with it (the app reads the path from its configuration under this name).
pub const SETTING_NAME: &str = "SQLITE_PATH";

type Conn = SyncConnectionWrapper<SqliteConnection>;

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

struct Inner {
    path: PathBuf,
    writer: tokio::sync::Mutex<Conn>,
    readers: Pool<Conn>,
    applied_at_open: Vec<String>,
}

/// The SQLite store; [`SqliteStore::users`], [`SqliteStore::sessions`] and
/// [`SqliteStore::login_flows`] are the repositories. Cheap to clone (shared connections).
#[derive(Clone)]
pub struct SqliteStore(Arc<Inner>);

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.0.path).field("readers", &self.0.readers.status()).finish()
    }
}

/// The user repository on this store.
#[derive(Debug, Clone)]
pub struct SqliteUsers(pub(crate) SqliteStore);

/// The session repository on this store.
#[derive(Debug, Clone)]
pub struct SqliteSessions(pub(crate) SqliteStore);

/// The login-flow repository on this store.
#[derive(Debug, Clone)]
pub struct SqliteLoginFlows(pub(crate) SqliteStore);

/// The rate-limit backoff repository on this store (shares its pool).
#[derive(Debug, Clone)]
pub struct SqliteRateLimits(pub(crate) SqliteStore);

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

        let mut config = ManagerConfig::<Conn>::default();
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
        let store = SqliteStore(Arc::new(Inner {
            path: path.clone(),
            writer: tokio::sync::Mutex::new(SyncConnectionWrapper::new(writer)),
            readers,
            applied_at_open,
        }));
        store.ping().await.map_err(|e| open_error(e.to_string()))?;
        Ok(store)
    }

    /// The `UserRepository`.
    pub fn users(&self) -> SqliteUsers {
        SqliteUsers(self.clone())
    }

    /// The `SessionRepository`.
    pub fn sessions(&self) -> SqliteSessions {
        SqliteSessions(self.clone())
    }

    /// The `LoginFlowRepository`.
    pub fn login_flows(&self) -> SqliteLoginFlows {
        SqliteLoginFlows(self.clone())
    }

    /// The `RateLimitRepository`.
    pub fn rate_limits(&self) -> SqliteRateLimits {
        SqliteRateLimits(self.clone())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// Names of the migrations [`SqliteStore::open`] applied (empty when the file was current).
    pub fn migrations_applied_at_open(&self) -> &[String] {
        &self.0.applied_at_open
    }

    /// Names of every embedded migration, oldest first.
    pub fn embedded_migrations() -> Result<Vec<String>, StoreError> {
        MigrationSource::<Sqlite>::migrations(&MIGRATIONS)
            .map(|all| all.iter().map(|m| m.name().to_string()).collect())
            .map_err(|e| StoreError::Migration(e.to_string()))
    }

    /// `SELECT 1` on a reader: for readiness probes.
    pub async fn ping(&self) -> Result<(), RepoError> {
        self.read(|c| c.batch_execute("SELECT 1;")).await
    }

    /// Runs `f` on a pooled reader connection, on a blocking thread.
    pub(crate) async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> QueryResult<R> + Send + 'static,
    ) -> Result<R, RepoError> {
        let mut conn: Object<Conn> = self.0.readers.get().await.map_err(|e| RepoError::Unavailable(pool_error(&e)))?;
        conn.spawn_blocking(f).await.map_err(map_err)
    }

    /// Runs `f` as one `BEGIN IMMEDIATE` transaction on the writer connection, after every
    /// earlier write of this store (the async mutex queues writers, so they never race for
    /// SQLite's write lock).
    pub(crate) async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> QueryResult<R> + Send + 'static,
    ) -> Result<R, RepoError> {
        let mut conn = self.0.writer.lock().await;
        conn.spawn_blocking(move |c| c.immediate_transaction(f)).await.map_err(map_err)
    }
}

fn pool_error(e: &diesel_async::pooled_connection::deadpool::PoolError) -> String {
    use deadpool::managed::PoolError as P;
    match e {
        P::Timeout(_) => "timed out waiting for a database connection".into(),
        P::Backend(b) => format!("cannot open a connection: {b}"),
        P::Closed => "pool closed".into(),
        P::NoRuntimeSpecified => "no runtime".into(),
        P::PostCreateHook(_) => "connection setup failed".into(),
    }
}
