//! The proactive refresher: refreshes active users' tokens before they expire, so the Web
//! Playback SDK's `getOAuthToken` never waits on Spotify.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;
use spotauth_domain::ports::{Clock, TokenError, TokenRefresher, UserRepository};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::metrics::RefreshMetrics;

/// How the background task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProactiveSettings {
    /// Time between passes (each pass waits this plus up to 20 % jitter, so instances spread out).
    pub interval: Duration,
    /// Tokens expiring within this are refreshed (must exceed `interval`).
    pub lookahead: Duration,
    /// Most refreshes in flight at once.
    pub concurrency: usize,
    /// Most users handled per pass.
    pub batch: u32,
}

impl Default for ProactiveSettings {
    fn default() -> Self {
        ProactiveSettings {
            interval: Duration::from_secs(60),
            lookahead: Duration::from_secs(600),
            concurrency: 4,
            batch: 500,
        }
    }
}

/// The running task; [`Proactive::shutdown`] stops it after the refreshes in flight.
#[derive(Debug)]
pub struct Proactive {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Proactive {
    /// Stops the task and waits for it (refreshes in flight finish first).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// One pass: refreshes (through `refresher`, so single flight, leases and backoff apply) every
/// candidate expiring within `lookahead`, at most `concurrency` at a time. Returns how many
/// tokens were handled and how many failed.
pub async fn run_once(
    users: &Arc<dyn UserRepository>,
    refresher: &Arc<dyn TokenRefresher>,
    clock: &Arc<dyn Clock>,
    settings: ProactiveSettings,
) -> Result<(usize, usize), TokenError> {
    let candidates = users.list_refresh_candidates(clock.now().plus(settings.lookahead), settings.batch).await?;
    let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut set = JoinSet::new();
    for user in candidates {
        let permits = permits.clone();
        let refresher = refresher.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            refresher.valid_access_token(user, settings.lookahead).await
        });
    }
    let (mut ok, mut failed) = (0, 0);
    while let Some(done) = set.join_next().await {
        match done {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(TokenError::RateLimited { .. })) => {
                failed += 1;
                // Every later call would be refused too: stop this pass.
                set.abort_all();
            }
            _ => failed += 1,
        }
    }
    Ok((ok, failed))
}

/// Starts the background task.
pub fn spawn(
    users: Arc<dyn UserRepository>,
    refresher: Arc<dyn TokenRefresher>,
    clock: Arc<dyn Clock>,
    metrics: Arc<RefreshMetrics>,
    settings: ProactiveSettings,
) -> Proactive {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            let jitter = rand::thread_rng().gen_range(0..=settings.interval.as_millis() as u64 / 5);
            let wait = settings.interval + Duration::from_millis(jitter);
            tokio::select! {
                _ = stopped.changed() => break,
                () = tokio::time::sleep(wait) => {}
            }
            match run_once(&users, &refresher, &clock, settings).await {
                Ok((ok, failed)) if ok + failed > 0 => tracing::info!(ok, failed, "proactive refresh pass"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "proactive refresh pass failed"),
            }
            RefreshMetrics::inc(&metrics.proactive_runs);
            if *stopped.borrow() {
                break;
            }
        }
    });
    Proactive { stop, task }
}
