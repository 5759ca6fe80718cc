//! # spotauth-refresh
//!
//! [`RefreshCoordinator`] implements the domain's `TokenRefresher` port so that tokens are
//! refreshed exactly once per user per expiry, whatever the concurrency:
//!
//! - **On demand:** a token expiring within the caller's `min_validity` is refreshed before it
//!   is handed out.
//! - **Single flight (one process):** callers for one user queue on a per-user async mutex; the
//!   first refreshes, the rest re-read the store and get the token it wrote (counted as joins).
//! - **Lease (several instances):** the refresher takes the user row's lease (with an expiry
//!   longer than Spotify's timeout, so a crashed holder cannot block for long); other instances
//!   poll the store until the holder's token appears or the lease lapses.
//! - **Atomic storage:** the domain's `StoreRefresher::attempt` writes the new access token, its
//!   expiry and — only when Spotify sent one — the new refresh token in one update guarded by
//!   the token version.
//! - **Failures:** `invalid_grant` → re-authorization (never retried); 5xx/timeouts → the old
//!   token while valid, else `Unavailable` with a retry hint; 429 → one backoff per client id,
//!   recorded in the database for every instance, honouring `Retry-After` up to a cap.
//! - **Proactive:** [`proactive::spawn`] refreshes active users' tokens before they expire, with
//!   bounded concurrency and jitter, and stops cleanly on shutdown.
//! - **Metrics:** [`RefreshMetrics`].
//!
//! **Architecture Invariant:** this crate knows the domain's ports and tokio, nothing of SQL,
//! HTTP or Spotify's wire format; the refresh logic itself stays in the domain.

mod coordinator;
mod locks;
mod metrics;
pub mod proactive;

pub use coordinator::{RefreshCoordinator, RefreshSettings};
pub use metrics::{MetricsSnapshot, RefreshMetrics};
