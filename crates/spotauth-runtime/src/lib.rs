//! # spotauth-runtime
//!
//! The tokio side of the domain: the adapters for the domain's environment ports that need a
//! runtime, and the background tasks that drive the domain's use cases.
//!
//! - [`SystemClock`] implements `Clock` (wall-clock time, `tokio::time::sleep`).
//! - [`LockMap`] implements `UserLocks`: per-user async mutexes, the in-process single flight
//!   of token refreshes; entries vanish when nobody holds or waits for them.
//! - [`RefreshMetrics`] implements `RefreshEvents`: counters for `/metrics`, and the log lines
//!   for refresh failures.
//! - [`proactive`] refreshes active users' tokens before they expire, through the domain's
//!   `TokenService`, with bounded concurrency and jitter, and stops cleanly on shutdown.
//! - [`housekeeping`] runs the domain's `AuthService::housekeeping` periodically (ended
//!   sessions and lapsed login attempts are deleted after their retention).
//!
//! **Architecture Invariant:** this crate knows the domain and tokio, nothing of SQL, HTTP or
//! Spotify's wire format, and holds no rule of its own: the refresh algorithm is the domain's
//! `TokenService`; this crate only decides when to run it. `xtask/tests/repo_rules.rs` checks
//! its dependencies.

mod clock;
pub mod housekeeping;
mod locks;
mod metrics;
pub mod proactive;
mod tasks;

pub use clock::SystemClock;
pub use locks::LockMap;
pub use metrics::{MetricsSnapshot, RefreshMetrics};
pub use tasks::Task;
