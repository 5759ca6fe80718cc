//! # spotauth-mysql
//!
//! The MySQL / PlanetScale store: [`MysqlStore`] runs the shared repositories of `spotauth-sql`
//! (every storage port of the domain) over a deadpool pool of diesel-async connections on the
//! pure-Rust `mysql_async` driver (no C client), with TLS when the URL asks for it, and the
//! embedded migrations of `migrations/mysql` ([`MysqlStore::run_migrations`], the
//! `spotauth-migrate` tool). Its semantics are proven by the contract suite of
//! `spotauth-testkit`, which the SQLite store passes too.
//!
//! What is MySQL's own here: `DATABASE_URL` and its TLS modes ([`url`]), the pool and
//! connection setup, transactions for the writes of several statements (single-statement
//! writes run in autocommit), the migration runner, administration (`execute_admin`, `tls_cipher`) and the wording of MySQL's
//! unique-violation messages.
//!
//! **Architecture Invariant:** SQL, diesel and mysql_async types stop at this crate's edge
//! (and `spotauth-sql`'s): every public method speaks domain types and maps library errors into
//! `RepoError` at the seam. The schema has no FOREIGN KEY constraints (PlanetScale/Vitess);
//! relations are enforced by the domain's use cases.

pub mod migrate;
mod store;
pub mod url;

pub use migrate::{MIGRATIONS, MigrationError};
pub use spotauth_sql::{Repositories, StoreHealth};
pub use store::{MysqlStore, PoolSettings, StoreError};
pub use url::{DatabaseUrl, DatabaseUrlError, TlsMode};
