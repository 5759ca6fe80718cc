//! # spotauth-sqlite
//!
//! The embedded SQLite store, the zero-setup default for small deployments (a Spotify app in
//! Development Mode serves at most 5 users): [`SqliteStore`] runs the shared repositories of
//! `spotauth-sql` (every storage port of the domain) on diesel-async
//! (`SyncConnectionWrapper<SqliteConnection>`), with SQLite compiled into the binary
//! (`libsqlite3-sys/bundled`: no system library needed) and the embedded migrations of
//! `migrations/sqlite`, applied by [`SqliteStore::open`].
//!
//! ## Storage
//!
//! One database file, owner-only (0600) from its first byte (WAL mode, `synchronous=NORMAL`,
//! `busy_timeout`); the same tables, columns and meaning as the MySQL schema, so both stores
//! share one diesel schema: times are `INTEGER` milliseconds since the Unix epoch (UTC),
//! booleans `INTEGER` 0/1, ciphertexts and digests `BLOB`, ids hyphenated UUID `TEXT`;
//! `STRICT` tables; no FOREIGN KEYs.
//!
//! ## Concurrency
//!
//! Reads use a small pool of `query_only` connections (WAL readers never block the writer nor
//! each other). Every write goes through ONE writer connection behind an async mutex, so our
//! writers queue instead of failing with "database is locked"; `busy_timeout` covers another
//! process on the same file. A write of several statements runs as one `BEGIN IMMEDIATE`
//! transaction; a write whose effect is one statement (each compare-and-swap: token version,
//! refresh lease, login-flow consumption) runs in autocommit, its classifying reads after it
//! still on the writer, so no other write of ours comes between.
//!
//! **Architecture Invariant:** SQL, diesel and SQLite types stop at this crate's edge (and
//! `spotauth-sql`'s): every public method speaks domain types and maps library errors into
//! `RepoError` at the seam, without values or token bytes. The semantics are exactly the MySQL
//! store's: both pass the one contract suite of `spotauth-testkit`.

mod store;

pub use spotauth_sql::{Repositories, StoreHealth};
pub use store::{MIGRATIONS, SETTING_NAME, SqliteSettings, SqliteStore, StoreError};
