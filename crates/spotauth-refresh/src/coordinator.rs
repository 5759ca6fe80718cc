//! The coordinator: single flight, lease, shared backoff around the domain's refresh steps.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rand::Rng as _;
use spotauth_domain::ids::UserId;
use spotauth_domain::ports::{
    Clock, LeaseOutcome, RateLimitRepository, SpotifyAccounts, TokenCipher, TokenError, TokenRefresher, UserRepository,
};
use spotauth_domain::refresh::{Attempt, StoreRefresher};
use spotauth_domain::time::Timestamp;
use spotauth_domain::token::{AccessGrant, StoredTokens};

use crate::locks::LockMap;
use crate::metrics::RefreshMetrics;

type Steps = StoreRefresher<dyn UserRepository, dyn TokenCipher, dyn SpotifyAccounts, dyn Clock>;

/// Timings of the coordination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshSettings {
    /// How long a refresh lease lasts. Must exceed Spotify's request timeout, so a live holder
    /// never loses it mid-call, while a crashed holder blocks others for at most this long.
    pub lease_ttl: Duration,
    /// How often a caller re-reads the store while another instance holds the lease.
    pub lease_poll: Duration,
    /// Longest a caller waits for another instance's refresh before answering `Unavailable`.
    pub max_wait: Duration,
    /// Cap on a 429's `Retry-After` (Spotify has sent up to 86 400 s).
    pub max_backoff: Duration,
    /// Retry hint when Spotify is unavailable and no valid token is at hand.
    pub unavailable_retry_after: Duration,
}

impl RefreshSettings {
    /// Settings for a Spotify client whose requests time out after `spotify_timeout`.
    pub fn for_timeout(spotify_timeout: Duration) -> Self {
        let lease_ttl = spotify_timeout + Duration::from_secs(5);
        RefreshSettings {
            lease_ttl,
            lease_poll: Duration::from_millis(100),
            max_wait: lease_ttl + Duration::from_secs(2),
            max_backoff: Duration::from_secs(3600),
            unavailable_retry_after: Duration::from_secs(5),
        }
    }
}

/// Implements `TokenRefresher` with exactly one upstream refresh per user per expiry, across
/// callers and instances. See the crate docs.
pub struct RefreshCoordinator {
    steps: Steps,
    users: Arc<dyn UserRepository>,
    limits: Arc<dyn RateLimitRepository>,
    clock: Arc<dyn Clock>,
    client_id: String,
    instance: String,
    settings: RefreshSettings,
    locks: LockMap,
    metrics: Arc<RefreshMetrics>,
}

impl std::fmt::Debug for RefreshCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshCoordinator")
            .field("client_id", &self.client_id)
            .field("instance", &self.instance)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl RefreshCoordinator {
    /// Wires the coordinator. `client_id` keys the shared rate-limit backoff (Spotify limits per
    /// client id); each coordinator gets a random instance id for the leases it takes.
    pub fn new(
        users: Arc<dyn UserRepository>,
        cipher: Arc<dyn TokenCipher>,
        accounts: Arc<dyn SpotifyAccounts>,
        clock: Arc<dyn Clock>,
        limits: Arc<dyn RateLimitRepository>,
        client_id: impl Into<String>,
        settings: RefreshSettings,
    ) -> Self {
        let instance = format!("i-{:016x}", rand::thread_rng().r#gen::<u64>());
        RefreshCoordinator {
            steps: StoreRefresher::new(users.clone(), cipher, accounts, clock.clone()),
            users,
            limits,
            clock,
            client_id: client_id.into(),
            instance,
            settings,
            locks: LockMap::default(),
            metrics: Arc::new(RefreshMetrics::default()),
        }
    }

    /// The live metrics.
    pub fn metrics(&self) -> Arc<RefreshMetrics> {
        self.metrics.clone()
    }

    /// This instance's lease-holder id.
    pub fn instance_id(&self) -> &str {
        &self.instance
    }

    /// The end of the client id's backoff when it is in force at `now`.
    async fn backoff(&self, now: Timestamp) -> Result<Option<Timestamp>, TokenError> {
        let known = Timestamp::from_unix_millis(self.metrics.backoff_until_ms.load(Ordering::Relaxed));
        if known > now {
            return Ok(Some(known));
        }
        // Another instance may have recorded one: the database is the shared truth.
        match self.limits.backoff_until(&self.client_id).await? {
            Some(until) if until > now => {
                self.metrics.backoff_until_ms.fetch_max(until.unix_millis(), Ordering::Relaxed);
                Ok(Some(until))
            }
            _ => Ok(None),
        }
    }

    async fn record_backoff(&self, retry_after: Duration) -> Result<Duration, TokenError> {
        let now = self.clock.now();
        let wanted = now.plus(retry_after.min(self.settings.max_backoff).max(Duration::from_secs(1)));
        let until = self.limits.extend_backoff(&self.client_id, wanted).await?;
        self.metrics.backoff_until_ms.fetch_max(until.unix_millis(), Ordering::Relaxed);
        tracing::warn!(
            retry_after_s = until.since(now).as_secs(),
            "Spotify rate limit: backing off for every user of the client id"
        );
        Ok(until.since(now))
    }

    fn serve_stale(
        &self,
        user: UserId,
        stored: &StoredTokens,
        fallback: TokenError,
    ) -> Result<AccessGrant, TokenError> {
        let served = self.steps.stored_if_valid(user, stored, fallback);
        if served.is_ok() {
            RefreshMetrics::inc(&self.metrics.served_stale);
        }
        served
    }

    /// Holding this process's lock for `user`: takes the database lease (waiting for another
    /// instance's refresh if needed), then refreshes once.
    async fn refresh_locked(&self, user: UserId, min_validity: Duration) -> Result<AccessGrant, TokenError> {
        let deadline = Instant::now() + self.settings.max_wait;
        let mut stored = self.steps.load(user).await?;
        loop {
            if self.steps.is_fresh(&stored, min_validity) {
                return self.steps.decrypt_access(user, &stored);
            }
            let now = self.clock.now();
            if let Some(until) = self.backoff(now).await? {
                RefreshMetrics::inc(&self.metrics.backoff_blocked);
                return self.serve_stale(user, &stored, TokenError::RateLimited { retry_after: until.since(now) });
            }
            match self.users.try_acquire_refresh_lease(user, &self.instance, now, self.settings.lease_ttl).await? {
                LeaseOutcome::Acquired { .. } => break,
                LeaseOutcome::Busy { .. } => {
                    RefreshMetrics::inc(&self.metrics.lease_waits);
                    if Instant::now() >= deadline {
                        let retry_after = Some(self.settings.lease_poll.max(Duration::from_secs(1)));
                        return self.serve_stale(user, &stored, TokenError::Unavailable { retry_after });
                    }
                    let jitter = rand::thread_rng().gen_range(0..=self.settings.lease_poll.as_millis() as u64 / 2);
                    tokio::time::sleep(self.settings.lease_poll + Duration::from_millis(jitter)).await;
                    stored = self.steps.load(user).await?;
                }
            }
        }
        let result = self.refresh_with_lease(user, min_validity).await;
        if let Err(e) = self.users.release_refresh_lease(user, &self.instance).await {
            // It lapses by itself at its expiry.
            tracing::warn!(error = %e, "cannot release a refresh lease");
        }
        result
    }

    /// Holding the lease: re-reads (another instance may have just refreshed), then one attempt.
    async fn refresh_with_lease(&self, user: UserId, min_validity: Duration) -> Result<AccessGrant, TokenError> {
        let stored = self.steps.load(user).await?;
        if self.steps.is_fresh(&stored, min_validity) {
            return self.steps.decrypt_access(user, &stored);
        }
        let started = Instant::now();
        let attempt = self.steps.attempt(user, &stored).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match attempt {
            Ok(Attempt::Refreshed(grant)) => {
                RefreshMetrics::inc(&self.metrics.refreshed);
                tracing::debug!(%user, elapsed_ms, "Spotify token refreshed");
                Ok(grant)
            }
            Ok(Attempt::Reauth) => {
                RefreshMetrics::inc(&self.metrics.reauth);
                tracing::info!(%user, "Spotify refused the refresh token: re-authorization required");
                Err(TokenError::ReauthRequired)
            }
            Ok(Attempt::RateLimited(retry_after)) => {
                RefreshMetrics::inc(&self.metrics.rate_limited);
                let retry_after = self.record_backoff(retry_after).await?;
                self.serve_stale(user, &stored, TokenError::RateLimited { retry_after })
            }
            Ok(Attempt::Unavailable) => {
                RefreshMetrics::inc(&self.metrics.unavailable);
                tracing::warn!(%user, elapsed_ms, "Spotify unavailable during a refresh");
                let retry_after = Some(self.settings.unavailable_retry_after);
                self.serve_stale(user, &stored, TokenError::Unavailable { retry_after })
            }
            Err(e) => {
                RefreshMetrics::inc(&self.metrics.failed);
                Err(e)
            }
        }
    }
}

#[async_trait]
impl TokenRefresher for RefreshCoordinator {
    async fn valid_access_token(&self, user: UserId, min_validity: Duration) -> Result<AccessGrant, TokenError> {
        // Fast path: no lock while the stored token is fresh.
        let stored = self.steps.load(user).await?;
        if self.steps.is_fresh(&stored, min_validity) {
            return self.steps.decrypt_access(user, &stored);
        }
        let (_lock, joined) = self.locks.lock(user).await;
        if joined {
            RefreshMetrics::inc(&self.metrics.single_flight_joins);
        }
        self.refresh_locked(user, min_validity).await
    }

    async fn valid_access_token_preloaded(
        &self,
        user: UserId,
        stored: Option<StoredTokens>,
        min_validity: Duration,
    ) -> Result<AccessGrant, TokenError> {
        // Fast path without even the read; anything else takes the full path, which reads the
        // row again before it refreshes or marks anything.
        match self.steps.preloaded_fresh(user, stored.as_ref(), min_validity) {
            Some(served) => served,
            None => self.valid_access_token(user, min_validity).await,
        }
    }
}
