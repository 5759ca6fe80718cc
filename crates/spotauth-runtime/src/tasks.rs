//! A periodic background task: one loop for every task, so intervals, jitter and shutdown
//! behave the same everywhere.

use std::future::Future;
use std::time::Duration;

use rand::Rng as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running periodic task; [`Task::shutdown`] stops it after the pass in flight.
#[derive(Debug)]
pub struct Task {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl Task {
    /// Runs `pass` every `interval` plus up to 20 % jitter (so instances spread out), the first
    /// time one interval after the start.
    pub fn every<F, Fut>(interval: Duration, mut pass: F) -> Task
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (stop, mut stopped) = watch::channel(false);
        let handle = tokio::spawn(async move {
            loop {
                let jitter_ms = rand::thread_rng().gen_range(0..=interval.as_millis() as u64 / 5);
                tokio::select! {
                    _ = stopped.changed() => break,
                    () = tokio::time::sleep(interval + Duration::from_millis(jitter_ms)) => {}
                }
                pass().await;
                if *stopped.borrow() {
                    break;
                }
            }
        });
        Task { stop, handle }
    }

    /// Stops the task and waits for it (the pass in flight finishes first).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn runs_periodically_and_stops_on_shutdown() {
        let passes = Arc::new(AtomicU32::new(0));
        let counted = passes.clone();
        let task = Task::every(Duration::from_millis(10), move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        });
        while passes.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        task.shutdown().await;
        let after = passes.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(passes.load(Ordering::SeqCst), after, "no pass after shutdown");
    }
}
