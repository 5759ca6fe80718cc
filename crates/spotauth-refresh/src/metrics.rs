//! Refresh metrics: counters and the current backoff.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Live counters, shared by the coordinator and whoever exports them.
#[derive(Debug, Default)]
pub struct RefreshMetrics {
    pub(crate) refreshed: AtomicU64,
    pub(crate) reauth: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) unavailable: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) served_stale: AtomicU64,
    pub(crate) backoff_blocked: AtomicU64,
    pub(crate) single_flight_joins: AtomicU64,
    pub(crate) lease_waits: AtomicU64,
    pub(crate) proactive_runs: AtomicU64,
    pub(crate) backoff_until_ms: AtomicI64,
}

/// A point-in-time copy of [`RefreshMetrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsSnapshot {
    /// Upstream refreshes that succeeded.
    pub refreshed: u64,
    /// Upstream refreshes answered `invalid_grant` (user marked for re-authorization).
    pub reauth: u64,
    /// Upstream refreshes answered 429.
    pub rate_limited: u64,
    /// Upstream refreshes that failed with 5xx, a timeout or a dropped connection.
    pub unavailable: u64,
    /// Upstream refreshes that failed otherwise.
    pub failed: u64,
    /// Times the old (still valid) token was served because Spotify could not refresh it.
    pub served_stale: u64,
    /// Refreshes not attempted because the client id was backing off.
    pub backoff_blocked: u64,
    /// Callers that waited for another caller's refresh in this process instead of refreshing.
    pub single_flight_joins: u64,
    /// Polls while another instance held the user's refresh lease.
    pub lease_waits: u64,
    /// Proactive refresh passes completed.
    pub proactive_runs: u64,
    /// End of the current rate-limit backoff known to this instance (Unix ms; 0 if none).
    pub backoff_until_ms: i64,
}

impl RefreshMetrics {
    /// A copy of every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            refreshed: g(&self.refreshed),
            reauth: g(&self.reauth),
            rate_limited: g(&self.rate_limited),
            unavailable: g(&self.unavailable),
            failed: g(&self.failed),
            served_stale: g(&self.served_stale),
            backoff_blocked: g(&self.backoff_blocked),
            single_flight_joins: g(&self.single_flight_joins),
            lease_waits: g(&self.lease_waits),
            proactive_runs: g(&self.proactive_runs),
            backoff_until_ms: self.backoff_until_ms.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
