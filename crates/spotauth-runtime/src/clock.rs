//! Wall-clock time and tokio's timer, as the domain's `Clock` port.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use spotauth_domain::ports::Clock;
use spotauth_domain::time::Timestamp;

/// Wall-clock time (UTC, milliseconds); waits on tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        Timestamp::from_unix_millis(i64::try_from(ms).unwrap_or(i64::MAX))
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn now_is_after_2023_and_sleep_waits() {
        assert!(SystemClock.now() > Timestamp::from_unix_seconds(1_700_000_000));
        let start = std::time::Instant::now();
        SystemClock.sleep(Duration::from_millis(20)).await;
        assert!(start.elapsed() >= Duration::from_millis(20));
    }
}
