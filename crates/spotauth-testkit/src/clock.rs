//! A clock the test moves.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use spotauth_domain::ports::Clock;
use spotauth_domain::time::Timestamp;

/// The domain's `Clock`, standing still until the test sets or advances it. By default `sleep`
/// advances it by the duration (no real wait) and yields, so other tasks run as if the time had
/// passed; [`ManualClock::with_real_sleep`] makes `sleep` wait for real without moving it (for
/// tests where another party, e.g. a lease holder, must act while the caller waits).
#[derive(Debug)]
pub struct ManualClock {
    now_ms: AtomicI64,
    real_sleep: bool,
}

impl ManualClock {
    /// A clock showing 2027-01-15T08:00:00Z (the contract's `NOW`).
    pub fn new() -> Self {
        Self::at(crate::contract::NOW)
    }

    /// A clock showing `start`.
    pub fn at(start: Timestamp) -> Self {
        ManualClock { now_ms: AtomicI64::new(start.unix_millis()), real_sleep: false }
    }

    /// This clock, but `sleep` waits for real and leaves the time alone.
    pub fn with_real_sleep(self) -> Self {
        ManualClock { real_sleep: true, ..self }
    }

    /// Shows `now` from here on.
    pub fn set(&self, now: Timestamp) {
        self.now_ms.store(now.unix_millis(), Ordering::SeqCst);
    }

    /// Moves the time on by `d`.
    pub fn advance(&self, d: Duration) {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.now_ms.load(Ordering::SeqCst))
    }

    async fn sleep(&self, duration: Duration) {
        if self.real_sleep {
            tokio::time::sleep(duration).await;
        } else {
            self.advance(duration);
            tokio::task::yield_now().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_clock_moves_only_when_told() {
        assert_eq!(ManualClock::new().now(), crate::contract::NOW);
        let clock = ManualClock::at(Timestamp::from_unix_seconds(100));
        assert_eq!(clock.now(), Timestamp::from_unix_seconds(100));
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), Timestamp::from_unix_millis(101_500));
        clock.sleep(Duration::from_secs(2)).await;
        assert_eq!(clock.now(), Timestamp::from_unix_millis(103_500));
        clock.set(Timestamp::EPOCH);
        assert_eq!(clock.now(), Timestamp::EPOCH);
    }
}
