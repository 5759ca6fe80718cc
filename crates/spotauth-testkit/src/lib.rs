//! # spotauth-testkit
//!
//! Test support shared by every crate's tests (a dev-dependency; `publish = false`):
//! - [`contract`]: the repository contract of the domain's storage ports, written ONCE, and the
//!   [`contract_tests!`] macro that runs it against a store (both `spotauth-mysql` and
//!   `spotauth-sqlite` do), so "same semantics" is a test result, not a promise;
//! - [`TestDb`]: a fresh MariaDB/MySQL database per test, dropped with the guard;
//! - [`TempDir`]: a fresh temporary directory, removed with the guard;
//! - [`DbProxy`]: a TCP proxy in front of a test database that counts the commands sent and can
//!   make the database unreachable;
//! - [`ManualClock`]: the domain's `Clock`, set and advanced by the test;
//! - [`TOKEN_KEYS`], [`SIGNING_KEY`] and [`keyring`]: fixed token-encryption and
//!   session-signing keys, as the settings take them.
//!
//! **Architecture Invariant:** test support only. It speaks the domain's ports and types and
//! knows no store adapter and not the app: a store-specific look at raw storage goes through a
//! [`contract::StoreFixture`] hook the adapter's test implements.

// Test support: these functions ARE assertions; a failed expectation must panic the test that
// runs it, exactly like `assert!` in a `#[test]` fn (which clippy.toml already allows).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod clock;
pub mod contract;
mod db;
mod dir;
pub mod emulator;
mod keys;
mod proxy;

pub use clock::ManualClock;
pub use contract::StoreFixture;
pub use db::TestDb;
pub use dir::TempDir;
pub use keys::{SIGNING_KEY, TOKEN_KEYS, keyring};
pub use proxy::DbProxy;
