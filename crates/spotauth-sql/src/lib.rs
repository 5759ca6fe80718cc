//! # spotauth-sql
//!
//! The SQL layer of both stores, written once: the diesel [`schema`] (identical in
//! `migrations/mysql` and `migrations/sqlite`: times as `BIGINT` Unix milliseconds), the row
//! types and their conversions into domain values, the changesets and queries, one error
//! classification ([`classify`]), and ONE implementation of the domain's five storage ports
//! (`UserRepository`, `TokenRepository`, `SessionRepository`, `LoginFlowRepository`,
//! `RateLimitRepository`) as [`SqlStore`], with the change journal (`ChangeFeed`) every write
//! that changes a user's view records in its own transaction,, plus [`StoreHealth`] for readiness probes.
//!
//! ## How one implementation runs on two backends
//!
//! Both backends run through diesel-async: MySQL on `AsyncMysqlConnection` (pure-Rust
//! `mysql_async`), SQLite on `SyncConnectionWrapper<SqliteConnection>`. A store adapter lends its
//! connections as an [`AnyConn`] through the [`Connections`] trait (`read`: a pooled connection;
//! `write`: one transaction under the store's policy; `write_one`: a single-statement write in
//! autocommit). [`SqlStore`] runs every job to its end on a task of its own, so a caller that
//! goes away never cuts a query or a transaction short. Each repository method is written once
//! as a job over an `AnyConn`; every query in it is expanded once per backend by a small
//! internal macro (`each_backend!`), so diesel type-checks it against both. This is diesel's
//! `MultiConnection` pattern done by hand: the async derive is unreleased, and the sync one needs
//! the C `mysqlclient`.
//!
//! **Architecture Invariant:** this crate knows the domain and diesel/diesel-async only: no
//! connection pool, no URL or file-path handling, no driver setup, no spotauth adapter. Those
//! are the store crates' (`spotauth-mysql`, `spotauth-sqlite`), which keep only what truly
//! differs: connecting, pooling, TLS, the transaction policy, migrations, and reading their
//! backend's unique-violation messages.

mod changes;
mod conn;
mod error;
mod flows;
mod players;
mod queries;
mod rate_limits;
mod rows;
pub mod schema;
mod sessions;
mod store;
mod tokens;
mod users;

pub use conn::{AnyConn, BoxFuture, Connections, Job, PoolUsage, SqliteConn, TxError};
pub use error::classify;
pub use store::{Repositories, SqlStore, StoreHealth};
