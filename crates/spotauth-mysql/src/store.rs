//! The store: a pool of diesel-async MySQL connections.

use std::time::Duration;

use diesel::ConnectionError;
use diesel_async::AsyncMysqlConnection;
use diesel_async::RunQueryDsl;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use mysql_async::{Opts, OptsBuilder};
use spotauth_domain::ports::RepoError;

use crate::url::DatabaseUrl;

/// Pool sizing and timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Most connections held open.
    pub max_size: usize,
    /// Longest wait for a free connection, and for a new one to be made.
    pub timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings { max_size: 16, timeout: Duration::from_secs(5) }
    }
}

/// Why the store could not start. One line, naming `DATABASE_URL`, never the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The URL is malformed.
    #[error(transparent)]
    Url(#[from] crate::url::DatabaseUrlError),
    /// The database cannot be reached or refused us.
    #[error("DATABASE_URL: cannot connect to {url}: {reason}")]
    Connect {
        /// The redacted URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A migration failed.
    #[error("DATABASE_URL: migration failed: {0}")]
    Migration(String),
}

/// The MySQL store: a connection pool; [`MysqlStore::users`], [`MysqlStore::sessions`] and
/// [`MysqlStore::login_flows`] are the repositories.
#[derive(Clone)]
pub struct MysqlStore {
    pub(crate) pool: Pool<AsyncMysqlConnection>,
    pub(crate) url: DatabaseUrl,
}

impl std::fmt::Debug for MysqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlStore").field("url", &self.url).field("pool", &self.pool.status()).finish()
    }
}

/// The user repository on this store (shares its pool).
#[derive(Debug, Clone)]
pub struct MysqlUsers(pub(crate) MysqlStore);

/// The session repository on this store (shares its pool).
#[derive(Debug, Clone)]
pub struct MysqlSessions(pub(crate) MysqlStore);

/// The login-flow repository on this store (shares its pool).
#[derive(Debug, Clone)]
pub struct MysqlLoginFlows(pub(crate) MysqlStore);

/// The rate-limit backoff repository on this store (shares its pool).
#[derive(Debug, Clone)]
pub struct MysqlRateLimits(pub(crate) MysqlStore);

/// Opens one connection with our settings: UTC, utf8mb4 (diesel-async's setup), found-rows
/// semantics for UPDATE counts, TLS as the URL says.
pub(crate) async fn establish(opts: Opts) -> Result<AsyncMysqlConnection, ConnectionError> {
    let builder = OptsBuilder::from_opts(opts).client_found_rows(true).stmt_cache_size(0);
    let conn = mysql_async::Conn::new(builder).await.map_err(|e| ConnectionError::BadConnection(describe(&e)))?;
    AsyncMysqlConnection::try_from(conn).await
}

/// One line describing a driver error, without values.
pub(crate) fn describe(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Io(io) => format!("network/TLS error: {io}"),
        mysql_async::Error::Server(s) => format!("server error {}: {}", s.code, s.message),
        mysql_async::Error::Driver(d) => format!("driver error: {d}"),
        mysql_async::Error::Url(_) => "invalid URL".into(),
        mysql_async::Error::Other(_) => "connection failed".into(),
    }
}

impl MysqlStore {
    /// Builds the pool and checks the database answers.
    pub async fn connect(url: DatabaseUrl, settings: PoolSettings) -> Result<Self, StoreError> {
        let opts = url.opts().clone();
        let mut config = ManagerConfig::<AsyncMysqlConnection>::default();
        // No check query at every checkout (it doubled the statements per request); a broken
        // connection is detected by its failing query and dropped by the pool.
        config.recycling_method = RecyclingMethod::Fast;
        config.custom_setup = Box::new(move |_| {
            let opts = opts.clone();
            Box::pin(establish(opts))
        });
        let manager = AsyncDieselConnectionManager::new_with_config(url.to_string(), config);
        let pool = Pool::builder(manager)
            .max_size(settings.max_size)
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(settings.timeout))
            .create_timeout(Some(settings.timeout))
            .recycle_timeout(Some(settings.timeout))
            .build()
            .map_err(|e| StoreError::Connect { url: url.to_string(), reason: e.to_string() })?;
        let store = MysqlStore { pool, url };
        store.ping().await.map_err(|e| StoreError::Connect {
            url: store.url.to_string(),
            reason: match e {
                RepoError::Unavailable(r) => r,
                other => other.to_string(),
            },
        })?;
        Ok(store)
    }

    /// The `UserRepository`.
    pub fn users(&self) -> MysqlUsers {
        MysqlUsers(self.clone())
    }

    /// The `SessionRepository`.
    pub fn sessions(&self) -> MysqlSessions {
        MysqlSessions(self.clone())
    }

    /// The `LoginFlowRepository`.
    pub fn login_flows(&self) -> MysqlLoginFlows {
        MysqlLoginFlows(self.clone())
    }

    /// The `RateLimitRepository`.
    pub fn rate_limits(&self) -> MysqlRateLimits {
        MysqlRateLimits(self.clone())
    }

    /// The (redacted) URL this store talks to.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// A pooled connection, or `Unavailable`.
    pub(crate) async fn conn(&self) -> Result<Object<AsyncMysqlConnection>, RepoError> {
        self.pool.get().await.map_err(|e| RepoError::Unavailable(pool_error(&e)))
    }

    /// `SELECT 1`: for readiness probes.
    pub async fn ping(&self) -> Result<(), RepoError> {
        let mut conn = self.conn().await?;
        diesel::sql_query("SELECT 1").execute(&mut conn).await.map(|_| ()).map_err(crate::convert::map_err)
    }

    /// Runs one administrative statement (e.g. `CREATE DATABASE`); for tools and tests.
    pub async fn execute_admin(&self, sql: &str) -> Result<(), RepoError> {
        let mut conn = self.conn().await?;
        diesel::sql_query(sql).execute(&mut conn).await.map(|_| ()).map_err(crate::convert::map_err)
    }

    /// Whether the connection in use is encrypted (`Ssl_cipher` is non-empty).
    pub async fn tls_cipher(&self) -> Result<Option<String>, RepoError> {
        use diesel::QueryableByName;
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            #[diesel(column_name = Value)]
            value: String,
        }
        let mut conn = self.conn().await?;
        let rows: Vec<Row> = diesel::sql_query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            .load(&mut conn)
            .await
            .map_err(crate::convert::map_err)?;
        Ok(rows.into_iter().next().map(|r| r.value).filter(|v| !v.is_empty()))
    }
}

fn pool_error(e: &diesel_async::pooled_connection::deadpool::PoolError) -> String {
    use deadpool::managed::PoolError as P;
    match e {
        P::Timeout(_) => "timed out waiting for a database connection".into(),
        P::Backend(b) => format!("cannot connect: {b}"),
        P::Closed => "pool closed".into(),
        P::NoRuntimeSpecified => "no runtime".into(),
        P::PostCreateHook(_) => "connection setup failed".into(),
    }
}
