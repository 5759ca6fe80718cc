//! The store: a pool of diesel-async MySQL connections lent to the shared SQL repositories.

use std::sync::Arc;
use std::time::Duration;

use diesel::ConnectionError;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl};
use mysql_async::{Opts, OptsBuilder};
use spotauth_domain::ports::RepoError;
use spotauth_sql::{AnyConn, Connections, Job, Repositories, SqlStore, TxError};

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

/// The pool, as the shared repositories see it.
pub(crate) struct MysqlPool {
    pool: Pool<AsyncMysqlConnection>,
    pub(crate) url: DatabaseUrl,
}

impl std::fmt::Debug for MysqlPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlPool").field("url", &self.url).field("pool", &self.pool.status()).finish()
    }
}

impl MysqlPool {
    /// A pooled connection, or `Unavailable`.
    async fn conn(&self) -> Result<Object<AsyncMysqlConnection>, RepoError> {
        self.pool.get().await.map_err(|e| RepoError::Unavailable(pool_error(&e)))
    }
}

/// Returns the connection to the pool unless its job failed in a way that may have left it
/// unusable (anything but an answer about the data: a lost connection, a server gone away, a
/// broken transaction). The pool does not check connections at checkout (that doubled the
/// statements per request), so a dead one would otherwise be handed out again and again, and
/// the store would never recover when the database comes back.
fn keep_if_fit<R>(conn: Object<AsyncMysqlConnection>, done: &Result<R, TxError>) {
    use diesel::result::{DatabaseErrorKind as K, Error as E};
    let about_the_data = |e: &E| {
        matches!(
            e,
            E::NotFound
                | E::DatabaseError(
                    K::UniqueViolation | K::ForeignKeyViolation | K::CheckViolation | K::NotNullViolation,
                    _
                )
        )
    };
    if let Err(TxError::Db(e)) = done
        && !about_the_data(e)
    {
        drop(Object::take(conn));
    }
}

impl Connections for MysqlPool {
    // "Duplicate entry 'VALUE' for key …" quotes values.
    const MESSAGES_ARE_VALUE_FREE: bool = false;

    async fn read<R: Send + 'static>(&self, job: Job<R>) -> Result<R, TxError> {
        let mut conn = self.conn().await?;
        let done = job(AnyConn::Mysql(&mut conn)).await;
        keep_if_fit(conn, &done);
        done
    }

    async fn write_one<R: Send + 'static>(&self, job: Job<R>) -> Result<R, TxError> {
        let mut conn = self.conn().await?;
        let done = job(AnyConn::Mysql(&mut conn)).await;
        keep_if_fit(conn, &done);
        done
    }

    async fn write<R: Send + 'static>(&self, job: Job<R>) -> Result<R, TxError> {
        let mut conn = self.conn().await?;
        let c: &mut AsyncMysqlConnection = &mut conn;
        let done = c.transaction(async move |c| job(AnyConn::Mysql(c)).await).await;
        keep_if_fit(conn, &done);
        done
    }

    /// MariaDB: `Duplicate entry '…' for key 'uq_…'` (or `'PRIMARY'`); MySQL 8 writes the key as
    /// `'table.uq_…'`.
    fn violated_key(message: &str) -> Option<&str> {
        let key = message.rsplit_once(" for key '")?.1.strip_suffix('\'')?;
        Some(key.rsplit_once('.').map_or(key, |(_, index)| index))
    }

    fn describe(&self) -> String {
        format!("MySQL {}", self.url)
    }

    fn pool_usage(&self) -> spotauth_sql::PoolUsage {
        let s = self.pool.status();
        spotauth_sql::PoolUsage { open: s.size, idle: s.available, max: s.max_size, waiting: s.waiting }
    }
}

/// The MySQL store: a connection pool and the repositories on it ([`MysqlStore::repositories`]).
/// Cheap to clone (one shared pool).
#[derive(Clone, Debug)]
pub struct MysqlStore(Arc<SqlStore<MysqlPool>>);

/// Opens one connection with our settings: UTC, utf8mb4 (diesel-async's setup), found-rows
/// semantics for UPDATE counts, TLS as the URL says.
pub(crate) async fn establish(opts: Opts) -> Result<AsyncMysqlConnection, ConnectionError> {
    let builder = OptsBuilder::from_opts(opts).client_found_rows(true).stmt_cache_size(0);
    let conn = mysql_async::Conn::new(builder).await.map_err(|e| ConnectionError::BadConnection(describe(&e)))?;
    AsyncMysqlConnection::try_from(conn).await
}

/// One line describing a driver error, without values.
fn describe(e: &mysql_async::Error) -> String {
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
        let store = MysqlStore(Arc::new(SqlStore::new(MysqlPool { pool, url })));
        store.ping().await.map_err(|e| StoreError::Connect {
            url: store.url().to_string(),
            reason: match e {
                RepoError::Unavailable(r) => r,
                other => other.to_string(),
            },
        })?;
        Ok(store)
    }

    /// Every repository port, on this store's pool.
    pub fn repositories(&self) -> Repositories {
        self.0.repositories()
    }

    /// The (redacted) URL this store talks to.
    pub fn url(&self) -> &DatabaseUrl {
        &self.0.connections().url
    }

    /// `SELECT 1`: for readiness probes.
    pub async fn ping(&self) -> Result<(), RepoError> {
        self.0.ping().await
    }

    /// Runs one administrative statement (e.g. `CREATE DATABASE`); for tools and tests.
    pub async fn execute_admin(&self, sql: &str) -> Result<(), RepoError> {
        let mut conn = self.0.connections().conn().await?;
        diesel::sql_query(sql).execute(&mut conn).await.map(|_| ()).map_err(MysqlPool::classify)
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
        let mut conn = self.0.connections().conn().await?;
        let rows: Vec<Row> = diesel::sql_query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            .load(&mut conn)
            .await
            .map_err(MysqlPool::classify)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_violations_name_the_index() {
        let key = MysqlPool::violated_key;
        assert_eq!(
            key("Duplicate entry 'acct-1' for key 'uq_spotify_users_account_key'"),
            Some("uq_spotify_users_account_key")
        );
        assert_eq!(
            key("Duplicate entry 'a' for key 'spotify_users.uq_spotify_users_account_key'"),
            Some("uq_spotify_users_account_key")
        );
        assert_eq!(key("Duplicate entry 'x for key 'y'' for key 'PRIMARY'"), Some("PRIMARY"));
        assert_eq!(key("Deadlock found when trying to get lock"), None);
    }
}
