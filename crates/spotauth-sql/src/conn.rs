//! How a store lends its connections to the shared repository code: [`AnyConn`], the
//! [`Connections`] trait each adapter implements, and the job and error types in between.

use std::future::Future;
use std::pin::Pin;

use diesel::sqlite::SqliteConnection;
use diesel_async::AsyncMysqlConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use spotauth_domain::ports::RepoError;

/// The SQLite connection type both the writer and the readers use.
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

/// A connection of either backend, lent to one [`Job`]. Each query is written once and
/// expanded per variant (`each_backend!`), so diesel type-checks it against both backends.
pub enum AnyConn<'c> {
    /// A MySQL / MariaDB / PlanetScale connection (pure-Rust `mysql_async`).
    Mysql(&'c mut AsyncMysqlConnection),
    /// A SQLite connection (diesel's sync driver, run on blocking threads).
    Sqlite(&'c mut SqliteConn),
}

impl std::fmt::Debug for AnyConn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AnyConn::Mysql(_) => "AnyConn::Mysql",
            AnyConn::Sqlite(_) => "AnyConn::Sqlite",
        })
    }
}

/// Expands one query body once per backend: `each_backend!(conn, |c| body)` with `conn` a
/// `&mut AnyConn` and `c` the concrete connection inside `body`.
macro_rules! each_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::conn::AnyConn::Mysql($c) => {
                let $c = &mut **$c;
                $body
            }
            $crate::conn::AnyConn::Sqlite($c) => {
                let $c = &mut **$c;
                $body
            }
        }
    };
}
pub(crate) use each_backend;

/// A boxed `Send` future (what a [`Job`] returns).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Work to run on one lent connection. Its captures are owned (`'static`), so a store may run it
/// on a task of its own.
pub type Job<R> = Box<dyn for<'c> FnOnce(AnyConn<'c>) -> BoxFuture<'c, Result<R, TxError>> + Send>;

/// Why a [`Job`] failed: the database said no, or the job decided the answer (and, in a write,
/// everything it wrote is rolled back). Replaces `Result<Result<…>>` in write closures.
#[derive(Debug)]
pub enum TxError {
    /// A database error, classified by [`crate::classify`] at the seam.
    Db(diesel::result::Error),
    /// The job's own answer (`Conflict`, `NotFound`, `StaleVersion`, …), or the store's
    /// (`Unavailable` when no connection could be had).
    Repo(RepoError),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Db(e)
    }
}

impl From<RepoError> for TxError {
    fn from(e: RepoError) -> Self {
        TxError::Repo(e)
    }
}

/// What a store adapter provides to [`crate::SqlStore`]: connections, its transaction policy and
/// how to read its error messages. Everything else (the queries, the rules) is shared.
pub trait Connections: Send + Sync + 'static {
    /// Whether this backend's error messages never quote a bound value, so that
    /// `RepoError::Unavailable` may include them (SQLite's do not; MySQL's may).
    const MESSAGES_ARE_VALUE_FREE: bool;

    /// Runs `job` on a connection for reading. It runs in autocommit mode: a job that needs one
    /// snapshot for several statements opens a transaction itself.
    fn read<R: Send + 'static>(&self, job: Job<R>) -> impl Future<Output = Result<R, TxError>> + Send;

    /// Runs `job` as ONE transaction on a connection that may write: committed when the job
    /// returns `Ok`, rolled back otherwise. ([`crate::SqlStore`] runs every read and write on a
    /// task of its own, so neither is ever dropped mid-flight.)
    fn write<R: Send + 'static>(&self, job: Job<R>) -> impl Future<Output = Result<R, TxError>> + Send;

    /// Runs `job` on a connection that may write, in autocommit mode (no transaction): for jobs
    /// whose effect is ONE statement, atomic by itself, whose later statements only classify its
    /// outcome. A store with a single writer MUST use that writer here too.
    fn write_one<R: Send + 'static>(&self, job: Job<R>) -> impl Future<Output = Result<R, TxError>> + Send;

    /// The name of the unique key a unique-violation message names, in the words of this
    /// backend: an index name (`uq_…`, `PRIMARY`) or `table.column`. `None` when it names none.
    fn violated_key(message: &str) -> Option<&str>;

    /// The store in one line for operators, without secrets: e.g. `MySQL mysql://root@host/db`.
    fn describe(&self) -> String;

    /// How its connection pool is used right now, for metrics.
    fn pool_usage(&self) -> PoolUsage;

    /// Classifies an error of one of the adapter's own statements (administration, TLS status).
    fn classify(error: diesel::result::Error) -> RepoError {
        crate::classify(error, Self::violated_key, None, Self::MESSAGES_ARE_VALUE_FREE)
    }
}

/// A connection pool's use at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolUsage {
    /// Connections open.
    pub open: usize,
    /// Of those, idle.
    pub idle: usize,
    /// The most it opens.
    pub max: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}
