//! The proactive refresher: refreshes the tokens of signed-in users (a live session) before
//! they expire, so the Web Playback SDK's `getOAuthToken` never waits on Spotify. Users without
//! a live session are left alone: nothing is refreshed for someone who is not there.

use std::sync::Arc;
use std::time::Duration;

use spotauth_domain::ports::TokenError;
use spotauth_domain::session::SessionPolicy;
use spotauth_domain::tokens::TokenService;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::metrics::RefreshMetrics;
use crate::tasks::Task;

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

/// One pass: refreshes (through the token use case, so single flight, leases and backoff
/// apply) every candidate expiring within `lookahead` who has a session live under `sessions`,
/// at most `concurrency` at a time. Returns how many tokens were handled and how many failed.
pub async fn run_once(
    tokens: &Arc<TokenService>,
    settings: ProactiveSettings,
    sessions: &SessionPolicy,
) -> Result<(usize, usize), TokenError> {
    let candidates = tokens.due_for_refresh(settings.lookahead, sessions, settings.batch).await?;
    let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut set = JoinSet::new();
    for user in candidates {
        let permits = permits.clone();
        let tokens = tokens.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            tokens.valid_access_token(user, settings.lookahead).await
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
    tokens: Arc<TokenService>,
    metrics: Arc<RefreshMetrics>,
    settings: ProactiveSettings,
    sessions: SessionPolicy,
) -> Task {
    Task::every(settings.interval, move || {
        let (tokens, metrics) = (tokens.clone(), metrics.clone());
        async move {
            match run_once(&tokens, settings, &sessions).await {
                Ok((ok, failed)) if ok + failed > 0 => tracing::info!(ok, failed, "proactive refresh pass"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "proactive refresh pass failed"),
            }
            RefreshMetrics::inc(&metrics.proactive_runs);
        }
    })
}
