//! # spotauth-mysql
//!
//! The MySQL / PlanetScale adapter: [`MysqlStore`] implements the domain's `UserRepository`,
//! `SessionRepository` and `LoginFlowRepository` on diesel + diesel-async over the pure-Rust
//! `mysql_async` driver (no C client), with a deadpool connection pool, TLS when the URL asks for
//! it, and the embedded migrations of `migrations/mysql`. Its semantics are proven by the shared
//! contract suite of `spotauth-store-contract`, which the SQLite adapter passes too.
//!
//! **Architecture Invariant:** SQL, diesel and mysql_async types stop at this crate's edge:
//! every public method speaks domain types and maps library errors into `RepoError` at the seam.
//! The schema has no FOREIGN KEY constraints (PlanetScale/Vitess); relations are enforced by the
//! domain's use cases.

mod convert;
mod login_flows;
pub mod migrate;
mod rate_limits;
mod schema;
mod sessions;
mod store;
pub mod url;
mod users;

pub use migrate::{MIGRATIONS, MigrationError};
pub use store::{MysqlLoginFlows, MysqlRateLimits, MysqlSessions, MysqlStore, MysqlUsers, PoolSettings, StoreError};
pub use url::{DatabaseUrl, DatabaseUrlError, TlsMode};
