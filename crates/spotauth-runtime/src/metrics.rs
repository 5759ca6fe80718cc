//! Refresh metrics: counters and the current backoff, fed by the domain's `RefreshEvent`s.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use spotauth_domain::ports::{RefreshEvent, RefreshEvents};

/// Live counters, shared by the token use case (the `RefreshEvents` port), the background
/// tasks and whoever exports them.
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

impl RefreshEvents for RefreshMetrics {
    fn record(&self, event: RefreshEvent) {
        let inc = Self::inc;
        match event {
            RefreshEvent::Refreshed => inc(&self.refreshed),
            RefreshEvent::Reauth(user) => {
                inc(&self.reauth);
                tracing::info!(%user, "Spotify refused the refresh token: re-authorization required");
            }
            RefreshEvent::RateLimited => inc(&self.rate_limited),
            RefreshEvent::Unavailable(user) => {
                inc(&self.unavailable);
                tracing::warn!(%user, "Spotify unavailable during a refresh");
            }
            RefreshEvent::Failed => inc(&self.failed),
            RefreshEvent::ServedStale => inc(&self.served_stale),
            RefreshEvent::BackoffBlocked => inc(&self.backoff_blocked),
            RefreshEvent::SingleFlightJoin => inc(&self.single_flight_joins),
            RefreshEvent::LeaseWait => inc(&self.lease_waits),
            RefreshEvent::BackoffUntil(until) => {
                let before = self.backoff_until_ms.fetch_max(until.unix_millis(), Ordering::Relaxed);
                if until.unix_millis() > before {
                    tracing::warn!(
                        backoff_until_ms = until.unix_millis(),
                        "Spotify rate limit: backing off for every user of the client id"
                    );
                }
            }
            RefreshEvent::LeaseNotReleased(user, error) => {
                tracing::warn!(%user, %error, "cannot release a refresh lease; it lapses at its expiry");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use spotauth_domain::time::Timestamp;

    use super::*;

    #[test]
    fn events_count_and_the_backoff_only_grows() {
        let m = RefreshMetrics::default();
        m.record(RefreshEvent::Refreshed);
        m.record(RefreshEvent::Refreshed);
        m.record(RefreshEvent::SingleFlightJoin);
        m.record(RefreshEvent::BackoffUntil(Timestamp::from_unix_millis(5_000)));
        m.record(RefreshEvent::BackoffUntil(Timestamp::from_unix_millis(3_000)));
        let s = m.snapshot();
        assert_eq!((s.refreshed, s.single_flight_joins, s.backoff_until_ms), (2, 1, 5_000));
        assert_eq!(s.reauth + s.failed + s.lease_waits, 0);
    }
}
