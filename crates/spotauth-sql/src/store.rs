//! [`SqlStore`]: the five repositories over any [`Connections`], and the bundle the app wires.

use std::sync::Arc;

use async_trait::async_trait;
use diesel_async::RunQueryDsl;
use spotauth_domain::ports::{
    ChangeFeed, LoginFlowRepository, RateLimitRepository, RepoError, SessionRepository, TokenRepository, UniqueKey,
    UserRepository,
};
use spotauth_domain::room::PlayerRepository;

use crate::conn::{AnyConn, BoxFuture, Connections, Job, TxError, each_backend};
use crate::error::classify;

/// Most ids one statement names (`IN (…)`).
pub(crate) const ID_CHUNK: usize = 500;

/// A [`Job`] from a closure (the bound lets the closure's signature be inferred).
pub(crate) fn job<R, F>(f: F) -> Job<R>
where
    F: for<'c> FnOnce(AnyConn<'c>) -> BoxFuture<'c, Result<R, TxError>> + Send + 'static,
{
    Box::new(f)
}

/// What the app's readiness probe asks of the store.
#[async_trait]
pub trait StoreHealth: Send + Sync + 'static {
    /// One round trip to the database (`SELECT 1`). MUST return `Unavailable` when it fails.
    async fn ping(&self) -> Result<(), RepoError>;

    /// The store in one line, without secrets, e.g. `MySQL mysql://root@127.0.0.1:3306/test`
    /// or `SQLite ./data/spotauth.db`.
    fn describe(&self) -> String;

    /// How the connection pool is used right now (SQLite: its readers).
    fn pool_usage(&self) -> crate::PoolUsage;
}

/// Every port a store implements, ready to wire: all share one [`SqlStore`].
#[derive(Clone)]
pub struct Repositories {
    /// Users: profile, Premium status, activity.
    pub users: Arc<dyn UserRepository>,
    /// Stored Spotify tokens, refresh leases, refresh candidates.
    pub tokens: Arc<dyn TokenRepository>,
    /// App sessions.
    pub sessions: Arc<dyn SessionRepository>,
    /// Login flows in flight.
    pub flows: Arc<dyn LoginFlowRepository>,
    /// The shared Spotify rate-limit backoff.
    pub rate_limits: Arc<dyn RateLimitRepository>,
    /// The room's players and version.
    pub players: Arc<dyn PlayerRepository>,
    /// The change journal, for instances that cache sessions.
    pub changes: Arc<dyn ChangeFeed>,
    /// Readiness.
    pub health: Arc<dyn StoreHealth>,
}

impl std::fmt::Debug for Repositories {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repositories").field("store", &self.health.describe()).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
enum Access {
    Read,
    Write,
    WriteOne,
}

/// The repositories, written once over a store's [`Connections`]. Generic (static dispatch):
/// each store crate instantiates it once with its connection type.
pub struct SqlStore<C> {
    conns: Arc<C>,
}

impl<C: Connections + std::fmt::Debug> std::fmt::Debug for SqlStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore").field("conns", &self.conns).finish()
    }
}

impl<C: Connections> SqlStore<C> {
    /// The repositories over these connections.
    pub fn new(conns: C) -> Self {
        SqlStore { conns: Arc::new(conns) }
    }

    /// The store's connections (for its adapter's own statements: migrations, admin, TLS).
    pub fn connections(&self) -> &C {
        &self.conns
    }

    /// Every port, sharing this store.
    pub fn repositories(self: &Arc<Self>) -> Repositories {
        Repositories {
            users: self.clone(),
            tokens: self.clone(),
            sessions: self.clone(),
            flows: self.clone(),
            rate_limits: self.clone(),
            players: self.clone(),
            changes: self.clone(),
            health: self.clone(),
        }
    }

    /// `SELECT 1` on a reading connection.
    pub async fn ping(&self) -> Result<(), RepoError> {
        self.read(|mut conn| {
            Box::pin(async move {
                each_backend!(&mut conn, |c| diesel::sql_query("SELECT 1").execute(c).await)?;
                Ok(())
            })
        })
        .await
    }

    /// Runs `job` on a reading connection.
    pub(crate) async fn read<R, F>(&self, job: F) -> Result<R, RepoError>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(AnyConn<'c>) -> BoxFuture<'c, Result<R, TxError>> + Send + 'static,
    {
        self.run(Access::Read, None, Box::new(job)).await
    }

    /// Runs `job` as one write transaction.
    pub(crate) async fn write<R, F>(&self, job: F) -> Result<R, RepoError>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(AnyConn<'c>) -> BoxFuture<'c, Result<R, TxError>> + Send + 'static,
    {
        self.run(Access::Write, None, Box::new(job)).await
    }

    /// Runs `job`, whose effect is ONE statement (later statements only classify its outcome),
    /// on the connection that may write, in autocommit mode: no `BEGIN`/`COMMIT` round trips.
    pub(crate) async fn write_one<R, F>(&self, job: F) -> Result<R, RepoError>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(AnyConn<'c>) -> BoxFuture<'c, Result<R, TxError>> + Send + 'static,
    {
        self.run(Access::WriteOne, None, Box::new(job)).await
    }

    /// [`Self::write_one`] once per chunk of at most [`ID_CHUNK`] of `ids`: `statement(chunk)`
    /// makes the chunk's job (ONE statement, answering the rows it changed); the sum.
    pub(crate) async fn write_one_per_chunk(
        &self,
        ids: Vec<String>,
        statement: impl Fn(Vec<String>) -> Job<usize>,
    ) -> Result<u64, RepoError> {
        let mut changed = 0u64;
        for chunk in ids.chunks(ID_CHUNK) {
            let n = self.run(Access::WriteOne, None, statement(chunk.to_vec())).await?;
            changed += u64::try_from(n).unwrap_or(u64::MAX);
        }
        Ok(changed)
    }

    /// [`Self::write_one`] for a single INSERT into the table whose primary key is `primary`: a
    /// violation of that key is `Conflict(primary)`.
    pub(crate) async fn write_one_insert<R, F>(&self, primary: UniqueKey, job: F) -> Result<R, RepoError>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(AnyConn<'c>) -> BoxFuture<'c, Result<R, TxError>> + Send + 'static,
    {
        self.run(Access::WriteOne, Some(primary), Box::new(job)).await
    }

    /// Runs `job`, which inserts into the table whose primary key is `primary`, as one write
    /// transaction: a violation of that key is `Conflict(primary)`.
    pub(crate) async fn write_insert<R, F>(&self, primary: UniqueKey, job: F) -> Result<R, RepoError>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(AnyConn<'c>) -> BoxFuture<'c, Result<R, TxError>> + Send + 'static,
    {
        self.run(Access::Write, Some(primary), Box::new(job)).await
    }

    /// Every job runs to its end on a task of its own, whatever becomes of its caller (a client
    /// gone, a sibling extractor failing): a query cut off mid-flight could leave a transaction
    /// open, hand a pooled MySQL connection's unread answer to the next query, or make
    /// diesel-async's SQLite wrapper block in place, which panics on actix's current-thread
    /// worker runtimes.
    async fn run<R: Send + 'static>(
        &self,
        access: Access,
        primary: Option<UniqueKey>,
        job: crate::conn::Job<R>,
    ) -> Result<R, RepoError> {
        let conns = self.conns.clone();
        let task = tokio::spawn(async move {
            match access {
                Access::Read => conns.read(job).await,
                Access::Write => conns.write(job).await,
                Access::WriteOne => conns.write_one(job).await,
            }
        });
        match task.await {
            Ok(done) => done.map_err(|e| Self::error(e, primary)),
            Err(e) => Err(RepoError::Unavailable(format!("store task failed: {e}"))),
        }
    }

    fn error(e: TxError, primary: Option<UniqueKey>) -> RepoError {
        match e {
            TxError::Repo(e) => e,
            TxError::Db(e) => classify(e, C::violated_key, primary, C::MESSAGES_ARE_VALUE_FREE),
        }
    }
}

#[async_trait]
impl<C: Connections> StoreHealth for SqlStore<C> {
    async fn ping(&self) -> Result<(), RepoError> {
        SqlStore::ping(self).await
    }

    fn describe(&self) -> String {
        self.conns.describe()
    }

    fn pool_usage(&self) -> crate::PoolUsage {
        self.conns.pool_usage()
    }
}
