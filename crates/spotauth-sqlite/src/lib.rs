//! # spotauth-sqlite
//!
//! The embedded SQLite adapter, the zero-setup default for small deployments (a Spotify app in
//! Development Mode serves at most 5 users): [`SqliteStore`] implements the domain's
//! `UserRepository` ([`SqliteUsers`]), `SessionRepository` ([`SqliteSessions`]) and
//! `LoginFlowRepository` ([`SqliteLoginFlows`]) on diesel + diesel-async
//! (`SyncConnectionWrapper<SqliteConnection>`), with SQLite compiled into the binary
//! (`libsqlite3-sys/bundled`: no system library needed) and the embedded migrations of
//! `migrations/sqlite`, applied by [`SqliteStore::open`].
//!
//! ## Storage
//!
//! One database file (WAL mode, `synchronous=NORMAL`, `busy_timeout`); the same tables, columns
//! and meaning as the MySQL schema, in SQLite's dialect: times are `INTEGER` milliseconds since
//! the Unix epoch (UTC, the domain's own precision), booleans `INTEGER` 0/1, ciphertexts and
//! digests `BLOB`, ids hyphenated UUID `TEXT`; `STRICT` tables; no FOREIGN KEYs.
//!
//! ## Concurrency
//!
//! Reads use a small pool of connections (WAL readers never block the writer nor each other).
//! Every write goes through ONE writer connection behind an async mutex and runs as a
//! `BEGIN IMMEDIATE` transaction on a blocking thread, so our writers queue instead of failing
//! with "database is locked"; `busy_timeout` covers another process on the same file. Each
//! compare-and-swap (token version, session rotation, login-flow consumption, refresh lease)
//! is one conditional `UPDATE` plus its classification inside that one transaction.
//!
//! **Architecture Invariant:** SQL, diesel and SQLite types stop at this crate's edge: every
//! public method speaks domain types and maps library errors into `RepoError` at the seam,
//! without values or token bytes. The semantics are exactly the MySQL adapter's: both pass the
//! one contract suite of `spotauth-store-contract`.

mod convert;
mod login_flows;
mod rate_limits;
mod schema;
mod sessions;
mod store;
mod users;

pub use store::{
    MIGRATIONS, SETTING_NAME, SqliteLoginFlows, SqliteRateLimits, SqliteSessions, SqliteSettings, SqliteStore,
    SqliteUsers, StoreError,
};
