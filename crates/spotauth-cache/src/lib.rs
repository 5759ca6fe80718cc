//! # spotauth-cache
//!
//! The hot path without a database round trip. [`SessionCache::wrap`] decorates the storage
//! ports (`SessionRepository`, `UserRepository`, `TokenRepository`, `PlayerRepository`) so that
//! an authenticated request is answered from memory, under one consistency rule
//! (docs/design/session-tokens.md, "The cache"):
//!
//! - **Writes go to the database, always**, through the inner ports; the decorators only forget
//!   what a write changed, on this instance at once (the very next request reads the database).
//! - **Other instances** learn of a write through the change journal ([`ChangeFeed`]) that the
//!   store writes in the write's own transaction. [`SessionCache::follow_journal`] reads it (one
//!   statement per poll, whatever the request rate); a cached view is served only while the last
//!   poll that succeeded started less than the staleness bound ago. When the database is
//!   unreachable, polls fail, and once the bound has passed every request goes to the database
//!   again (and fails with it): **fail-safe**, never "serve stale forever".
//! - **A cached view may only let a request in.** The domain decides every refusal (revoked,
//!   timed out, reused) and every write on the database's latest view
//!   ([`Freshness::Latest`](spotauth_domain::ports::Freshness)).
//! - **Last-active times are coalesced**: `touch` updates the cached view and queues the write;
//!   [`SessionCache::flush_touches`] writes the queue in a few statements.
//! - **Bounded memory**: at most `capacity` sessions (S3-FIFO eviction, `quick_cache`).
//!
//! **Architecture Invariant:** this crate knows the domain's ports only: no SQL, no HTTP, no
//! driver. It works over any store that implements the ports and the journal.

mod decorators;
mod journal;
mod state;
#[cfg(test)]
mod tests;

pub use state::{CacheSettings, CacheStats, SessionCache, Stores};
