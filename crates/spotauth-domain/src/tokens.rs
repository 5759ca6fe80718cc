//! The token use case: a valid Spotify access token for a user, refreshed exactly once per
//! user per expiry whatever the concurrency. The whole algorithm lives here, in this order:
//!
//! 1. **Fresh check.** A stored token valid for `min_validity` more (and not one the caller
//!    reported refused, see [`TokenService::replacement_for`]) is decrypted and served;
//!    nothing else happens (no lock, no write).
//! 2. **Single flight in the process.** Callers for one user queue on the [`UserLocks`] port;
//!    whoever comes after the first re-reads the row and finds the token it wrote.
//! 3. **Shared backoff.** While Spotify's 429 backoff for the client id is in force (recorded
//!    in the database by whichever instance received it), no refresh is attempted: the stored
//!    token is served while still valid, else `RateLimited`.
//! 4. **Lease across instances.** The row's refresh lease (expiring, so a crashed holder blocks
//!    others only briefly) makes one instance refresh; the others poll the row until the new
//!    token appears; after `stale_patience` they take the still-valid token instead, and a
//!    caller with none gives up after `max_wait` (`Unavailable`).
//! 5. **One attempt, compare-and-swap write.** Holding the lease: re-read, then one call to
//!    Spotify; the new access token, its expiry and only when Spotify sent one the new refresh
//!    token are written in one update guarded by the token version.
//! 6. **Failures.** `invalid_grant`, or a refresh token past its absolute expiry: the user is
//!    marked for re-authorization (guarded the same way) and never retried. 5xx and timeouts:
//!    the still-valid token, else `Unavailable` with a retry hint, and no new attempt for that
//!    user from this instance for as long as the hint says. 429: the backoff of step 3 is
//!    extended for every instance, honouring `Retry-After` up to a cap.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::ids::UserId;
use crate::ports::{
    CipherError, Clock, IdSource, LeaseOutcome, RateLimitRepository, RefreshEvent, RefreshEvents, RepoError,
    SpotifyAccounts, SpotifyError, TokenCipher, TokenError, TokenRepository, UserLocks,
};
use crate::secret::{AccessToken, RefreshToken};
use crate::session::SessionPolicy;
use crate::time::Timestamp;
use crate::token::{AccessGrant, RefreshedTokens, StoredTokens, TokenBinding, TokenColumn};

mod keys;
#[cfg(test)]
mod tests;

pub use keys::{Canary, KeyCensus, ReencryptPage};

/// Timings of the refresh coordination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// How long a refresh lease lasts. Must exceed Spotify's request timeout, so a live holder
    /// never loses it mid-call, while a crashed holder blocks others for at most this long.
    pub lease_ttl: Duration,
    /// How often a caller re-reads the row while another instance holds the lease (plus up to
    /// half of it as jitter).
    pub lease_poll: Duration,
    /// Longest a caller waits for another instance's refresh before answering `Unavailable`.
    pub max_wait: Duration,
    /// Longest a caller whose stored token is still valid waits for another instance's refresh
    /// before it is served that token: long enough for a live holder's call, short of waiting
    /// out the lease of a holder that died.
    pub stale_patience: Duration,
    /// Cap on a 429's `Retry-After` (Spotify has sent up to 86 400 s).
    pub max_backoff: Duration,
    /// Retry hint when Spotify is unavailable and no valid token is at hand; also how long this
    /// instance makes no new attempt for a user after Spotify failed theirs (5xx, timeout,
    /// dropped connection), so that an outage does not turn every request into a call.
    pub unavailable_retry_after: Duration,
}

impl RefreshPolicy {
    /// The policy for a Spotify client whose requests time out after `spotify_timeout`.
    pub fn for_timeout(spotify_timeout: Duration) -> Self {
        let lease_ttl = spotify_timeout + Duration::from_secs(5);
        RefreshPolicy {
            lease_ttl,
            lease_poll: Duration::from_millis(100),
            max_wait: lease_ttl + Duration::from_secs(2),
            stale_patience: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3600),
            unavailable_retry_after: Duration::from_secs(5),
        }
    }
}

/// The ports the token use case runs on.
#[derive(Clone)]
pub struct TokenPorts {
    /// Stored tokens and leases.
    pub tokens: Arc<dyn TokenRepository>,
    /// The shared 429 backoff.
    pub limits: Arc<dyn RateLimitRepository>,
    /// Encryption at rest.
    pub cipher: Arc<dyn TokenCipher>,
    /// Spotify's token endpoint.
    pub accounts: Arc<dyn SpotifyAccounts>,
    /// Time and waiting.
    pub clock: Arc<dyn Clock>,
    /// Poll jitter.
    pub ids: Arc<dyn IdSource>,
    /// Single flight in this process.
    pub locks: Arc<dyn UserLocks>,
    /// Metrics and logs.
    pub events: Arc<dyn RefreshEvents>,
}

impl std::fmt::Debug for TokenPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPorts").finish_non_exhaustive()
    }
}

/// Who this instance is when it takes leases, and which backoff it shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIdentity {
    /// The Spotify client id: Spotify rate-limits per client id, so it keys the backoff.
    pub client_id: String,
    /// This instance's lease-holder id (unique per process).
    pub instance: String,
}

/// What a caller can use: a token valid for at least `min_validity` that is not `refused`.
struct Want<'a> {
    min_validity: Duration,
    refused: Option<&'a AccessToken>,
}

impl Want<'_> {
    fn refuses(&self, grant: &AccessGrant) -> bool {
        self.refused.is_some_and(|r| r.expose() == grant.access_token.expose())
    }
}

/// How one call to Spotify's token endpoint ended.
enum Attempt {
    Refreshed(AccessGrant),
    Reauth,
    RateLimited(Duration),
    Unavailable,
}

/// The token use case. See the module docs for the algorithm.
pub struct TokenService {
    ports: TokenPorts,
    policy: RefreshPolicy,
    identity: TokenIdentity,
    /// The end of the client id's backoff as last seen by this instance (Unix ms): saves a
    /// database read per refresh while a backoff is known to be in force.
    known_backoff_ms: AtomicI64,
    /// Users whose last attempt Spotify failed, and until when no new one is made for them
    /// (this instance only: each instance tries at most once per pause).
    paused: Mutex<HashMap<UserId, Timestamp>>,
}

/// Above this many paused users, ended pauses are swept out at the next insertion.
const PAUSED_SWEEP_AT: usize = 1024;

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("policy", &self.policy)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// The use case on its ports.
    pub fn new(ports: TokenPorts, policy: RefreshPolicy, identity: TokenIdentity) -> Self {
        TokenService { ports, policy, identity, known_backoff_ms: AtomicI64::new(0), paused: Mutex::default() }
    }

    /// This instance's lease-holder id.
    pub fn instance_id(&self) -> &str {
        &self.identity.instance
    }

    /// A token valid for at least `min_validity` when one can be had; the stored token while
    /// still valid when Spotify is unavailable or rate limiting; `ReauthRequired` when Spotify
    /// said `invalid_grant` or the refresh token is past its absolute expiry (never retrying);
    /// `NotConnected` when no tokens are stored; `Store(NotFound)` for an unknown user.
    pub async fn valid_access_token(&self, user: UserId, min_validity: Duration) -> Result<AccessGrant, TokenError> {
        let served = self.serve(user, Want { min_validity, refused: None }).await;
        self.retired_key_is_reauth(user, served).await
    }

    /// A replacement for an access token a client reports refused (the Web Playback SDK asks
    /// again when the token it holds stopped working, e.g. expired early): while that token is
    /// still the stored one, it is refreshed now, through the same single flight, lease and
    /// backoff as any refresh, so many tabs reporting it cause one refresh; once it has been
    /// replaced, the current token is served without a call. Never serves the refused token.
    /// `stored` is the row read with the session, as for [`Self::valid_access_token_given`].
    pub async fn replacement_for(
        &self,
        user: UserId,
        stored: Option<StoredTokens>,
        refused: &AccessToken,
        min_validity: Duration,
    ) -> Result<AccessGrant, TokenError> {
        let served = self.serve_given(user, stored, Want { min_validity, refused: Some(refused) }).await;
        self.retired_key_is_reauth(user, served).await
    }

    /// `stored` (read by the caller) when it meets `want` and may still be used; else the full
    /// path, which reads the row again, so no refresh or mark ever acts on a copy.
    async fn serve_given(
        &self,
        user: UserId,
        stored: Option<StoredTokens>,
        want: Want<'_>,
    ) -> Result<AccessGrant, TokenError> {
        if let Some(stored) = &stored
            && stored.refreshable_at(self.ports.clock.now())
            && let Some(grant) = self.usable(user, stored, &want)?
        {
            return Ok(grant);
        }
        self.serve(user, want).await
    }

    /// The stored token when it meets `want`, else a refresh.
    async fn serve(&self, user: UserId, want: Want<'_>) -> Result<AccessGrant, TokenError> {
        let stored = self.load(user).await?;
        if let Some(grant) = self.usable(user, &stored, &want)? {
            return Ok(grant);
        }
        self.refresh(user, &want).await
    }

    /// [`Self::valid_access_token`] for a caller that already read the user's token row (`None`:
    /// the user has no tokens), e.g. with the session: a fresh, usable row is served without
    /// another read; anything else takes the full path, which reads the row again, so no
    /// refresh or re-authorization mark ever acts on a copy.
    pub async fn valid_access_token_given(
        &self,
        user: UserId,
        stored: Option<StoredTokens>,
        min_validity: Duration,
    ) -> Result<AccessGrant, TokenError> {
        let served = self.serve_given(user, stored, Want { min_validity, refused: None }).await;
        self.retired_key_is_reauth(user, served).await
    }

    /// A token sealed under a key the keyring no longer holds can never be read again: the row
    /// is marked for re-authorization (the user reconnects Spotify), as after `invalid_grant`,
    /// instead of failing alike on every request and every proactive pass. Only a row that is
    /// still unreadable when read again is marked, under its version, so a login that just
    /// stored new tokens is never marked.
    async fn retired_key_is_reauth(
        &self,
        user: UserId,
        served: Result<AccessGrant, TokenError>,
    ) -> Result<AccessGrant, TokenError> {
        let Err(TokenError::Cipher(CipherError::UnknownKey(_))) = &served else { return served };
        let stored = self.ports.tokens.load_tokens(user).await?.ok_or(TokenError::NotConnected)?;
        let binding = |column| TokenBinding { user_id: user, column };
        let unreadable =
            |ct, column| matches!(self.ports.cipher.decrypt(ct, binding(column)), Err(CipherError::UnknownKey(_)));
        if unreadable(&stored.access_token, TokenColumn::Access)
            || unreadable(&stored.refresh_token, TokenColumn::Refresh)
        {
            self.mark_reauth(user, &stored).await?;
            return Err(TokenError::ReauthRequired);
        }
        served
    }

    /// Users whose tokens expire within `lookahead`, soonest first, at most `limit`, among
    /// those with a session live under `sessions`: what the proactive refresher works through.
    pub async fn due_for_refresh(
        &self,
        lookahead: Duration,
        sessions: &SessionPolicy,
        limit: u32,
    ) -> Result<Vec<UserId>, TokenError> {
        let now = self.ports.clock.now();
        Ok(self.ports.tokens.list_refresh_candidates(now.plus(lookahead), sessions.live_after(now), limit).await?)
    }

    /// Runs one other call to Spotify (a code exchange, a profile read, a player probe) under
    /// the client id's shared 429 backoff, as refreshes run: while the backoff is in force the
    /// call is not made at all (`RateLimited`), and a 429 it receives extends the backoff for
    /// every instance. Other Spotify errors come back as `TokenError::Spotify`.
    pub async fn under_backoff<T>(&self, call: impl Future<Output = Result<T, SpotifyError>>) -> Result<T, TokenError> {
        let now = self.ports.clock.now();
        if let Some(until) = self.backoff(now).await? {
            self.ports.events.record(RefreshEvent::BackoffBlocked);
            return Err(TokenError::RateLimited { retry_after: until.since(now) });
        }
        match call.await {
            Ok(answer) => Ok(answer),
            Err(SpotifyError::RateLimited { retry_after }) => {
                Err(TokenError::RateLimited { retry_after: self.record_backoff(retry_after).await? })
            }
            Err(e) => Err(TokenError::Spotify(e)),
        }
    }

    /// The stored tokens, or why there are none to use. A refresh token past its absolute
    /// expiry is marked for re-authorization here, without asking Spotify.
    async fn load(&self, user: UserId) -> Result<StoredTokens, TokenError> {
        let stored = self.ports.tokens.load_tokens(user).await?.ok_or(TokenError::NotConnected)?;
        if stored.refreshable_at(self.ports.clock.now()) {
            return Ok(stored);
        }
        // Past its absolute expiry (and not yet marked): mark it, without asking Spotify.
        if !stored.reauth_required {
            self.mark_reauth(user, &stored).await?;
        }
        Err(TokenError::ReauthRequired)
    }

    fn is_fresh(&self, stored: &StoredTokens, min_validity: Duration) -> bool {
        stored.access_expires_at > self.ports.clock.now().plus(min_validity)
    }

    /// The stored access token when it meets `want`: valid for long enough, and not the one a
    /// client reported refused.
    fn usable(&self, user: UserId, stored: &StoredTokens, want: &Want<'_>) -> Result<Option<AccessGrant>, TokenError> {
        if !self.is_fresh(stored, want.min_validity) {
            return Ok(None);
        }
        let grant = self.decrypt_access(user, stored)?;
        Ok((!want.refuses(&grant)).then_some(grant))
    }

    fn decrypt_access(&self, user: UserId, stored: &StoredTokens) -> Result<AccessGrant, TokenError> {
        let binding = TokenBinding { user_id: user, column: TokenColumn::Access };
        let clear = self.ports.cipher.decrypt(&stored.access_token, binding)?;
        let access_token = AccessToken::new(clear.expose()).map_err(|_| CipherError::Malformed)?;
        Ok(AccessGrant { access_token, expires_at: stored.access_expires_at })
    }

    /// The stored token while it is valid at all (Spotify could not refresh it), else `fallback`.
    fn serve_stale(
        &self,
        user: UserId,
        stored: &StoredTokens,
        want: &Want<'_>,
        fallback: TokenError,
    ) -> Result<AccessGrant, TokenError> {
        self.stale(user, stored, want)?.ok_or(fallback)
    }

    /// The stored token, recorded as served stale, while it is valid at all.
    fn stale(&self, user: UserId, stored: &StoredTokens, want: &Want<'_>) -> Result<Option<AccessGrant>, TokenError> {
        let still_valid = Want { min_validity: Duration::ZERO, refused: want.refused };
        let grant = self.usable(user, stored, &still_valid)?;
        if grant.is_some() {
            self.ports.events.record(RefreshEvent::ServedStale);
        }
        Ok(grant)
    }

    async fn mark_reauth(&self, user: UserId, stored: &StoredTokens) -> Result<(), TokenError> {
        match self.ports.tokens.mark_reauth_required(user, stored.version).await {
            // A login (or another refresher) moved the version on: nothing to mark.
            Ok(()) | Err(RepoError::StaleVersion) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Steps 2 to 6: single flight, backoff, lease, one attempt.
    async fn refresh(&self, user: UserId, want: &Want<'_>) -> Result<AccessGrant, TokenError> {
        let lock = self.ports.locks.lock(user).await;
        if lock.joined {
            self.ports.events.record(RefreshEvent::SingleFlightJoin);
        }
        let clock = &self.ports.clock;
        let deadline = clock.now().plus(self.policy.max_wait);
        // Also bounded by a count of polls: a wall clock stepped back must not stretch the wait.
        let max_polls = self.policy.max_wait.as_millis() / self.policy.lease_poll.as_millis().max(1);
        let patience = clock.now().plus(self.policy.stale_patience);
        let patient_polls = self.policy.stale_patience.as_millis() / self.policy.lease_poll.as_millis().max(1);
        let mut polls = 0u128;
        let mut stored = self.load(user).await?;
        loop {
            if let Some(grant) = self.usable(user, &stored, want)? {
                return Ok(grant);
            }
            let now = clock.now();
            if let Some(until) = self.paused_until(user, now) {
                let fallback = TokenError::Unavailable { retry_after: Some(until.since(now)) };
                return self.serve_stale(user, &stored, want, fallback);
            }
            if let Some(until) = self.backoff(now).await? {
                self.ports.events.record(RefreshEvent::BackoffBlocked);
                let fallback = TokenError::RateLimited { retry_after: until.since(now) };
                return self.serve_stale(user, &stored, want, fallback);
            }
            let lease =
                self.ports.tokens.try_acquire_refresh_lease(user, self.instance_id(), now, self.policy.lease_ttl);
            match lease.await? {
                LeaseOutcome::Acquired => break,
                LeaseOutcome::Busy => {
                    self.ports.events.record(RefreshEvent::LeaseWait);
                    polls += 1;
                    if (clock.now() >= patience || polls > patient_polls)
                        && let Some(grant) = self.stale(user, &stored, want)?
                    {
                        return Ok(grant);
                    }
                    if clock.now() >= deadline || polls > max_polls {
                        let retry_after = Some(self.policy.lease_poll.max(Duration::from_secs(1)));
                        return self.serve_stale(user, &stored, want, TokenError::Unavailable { retry_after });
                    }
                    let poll = self.policy.lease_poll;
                    clock.sleep(poll + self.ports.ids.jitter(poll / 2)).await;
                    stored = self.load(user).await?;
                }
            }
        }
        let result = self.refresh_with_lease(user, want).await;
        if let Err(e) = self.ports.tokens.release_refresh_lease(user, self.instance_id()).await {
            // It lapses by itself at its expiry.
            self.ports.events.record(RefreshEvent::LeaseNotReleased(user, e));
        }
        drop(lock);
        result
    }

    /// Holding the lease: re-read (another instance may have just refreshed), then one attempt.
    async fn refresh_with_lease(&self, user: UserId, want: &Want<'_>) -> Result<AccessGrant, TokenError> {
        let stored = self.load(user).await?;
        if let Some(grant) = self.usable(user, &stored, want)? {
            return Ok(grant);
        }
        let events = &self.ports.events;
        match self.attempt(user, &stored).await {
            Ok(Attempt::Refreshed(grant)) => {
                events.record(RefreshEvent::Refreshed);
                self.paused().remove(&user);
                Ok(grant)
            }
            Ok(Attempt::Reauth) => {
                events.record(RefreshEvent::Reauth(user));
                Err(TokenError::ReauthRequired)
            }
            Ok(Attempt::RateLimited(retry_after)) => {
                events.record(RefreshEvent::RateLimited);
                let retry_after = self.record_backoff(retry_after).await?;
                self.serve_stale(user, &stored, want, TokenError::RateLimited { retry_after })
            }
            Ok(Attempt::Unavailable) => {
                events.record(RefreshEvent::Unavailable(user));
                self.pause(user);
                let retry_after = Some(self.policy.unavailable_retry_after);
                self.serve_stale(user, &stored, want, TokenError::Unavailable { retry_after })
            }
            Err(e) => {
                events.record(RefreshEvent::Failed);
                Err(e)
            }
        }
    }

    /// One call to Spotify's token endpoint with the stored refresh token, and its write.
    async fn attempt(&self, user: UserId, stored: &StoredTokens) -> Result<Attempt, TokenError> {
        let bind = |column| TokenBinding { user_id: user, column };
        let cipher = &self.ports.cipher;
        let clear = cipher.decrypt(&stored.refresh_token, bind(TokenColumn::Refresh))?;
        let refresh_token = RefreshToken::new(clear.expose()).map_err(|_| CipherError::Malformed)?;
        let grant = match self.ports.accounts.refresh(&refresh_token).await {
            Ok(grant) => grant,
            Err(SpotifyError::ReauthRequired) => {
                self.mark_reauth(user, stored).await?;
                return Ok(Attempt::Reauth);
            }
            Err(SpotifyError::RateLimited { retry_after }) => return Ok(Attempt::RateLimited(retry_after)),
            Err(SpotifyError::Unavailable(_)) => return Ok(Attempt::Unavailable),
            Err(e) => return Err(e.into()),
        };
        let update = RefreshedTokens {
            access_token: cipher.encrypt(grant.access_token.expose(), bind(TokenColumn::Access))?,
            access_expires_at: grant.access_expires_at,
            refresh_token: match &grant.refresh_token {
                Some(rt) => Some(cipher.encrypt(rt.expose(), bind(TokenColumn::Refresh))?),
                None => None,
            },
            scopes: grant.scopes,
        };
        match self.ports.tokens.store_refreshed(user, stored.version, update).await {
            // StaleVersion: a login replaced the tokens meanwhile; ours is still valid.
            Ok(_) | Err(RepoError::StaleVersion) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Attempt::Refreshed(AccessGrant { access_token: grant.access_token, expires_at: grant.access_expires_at }))
    }

    fn paused(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Timestamp>> {
        self.paused.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The end of the user's pause after a failed attempt, when it is in force at `now`.
    fn paused_until(&self, user: UserId, now: Timestamp) -> Option<Timestamp> {
        self.paused().get(&user).copied().filter(|until| *until > now)
    }

    fn pause(&self, user: UserId) {
        let now = self.ports.clock.now();
        let mut paused = self.paused();
        if paused.len() >= PAUSED_SWEEP_AT {
            paused.retain(|_, until| *until > now);
        }
        paused.insert(user, now.plus(self.policy.unavailable_retry_after));
    }

    /// The end of the client id's backoff when it is in force at `now`.
    async fn backoff(&self, now: Timestamp) -> Result<Option<Timestamp>, TokenError> {
        let known = Timestamp::from_unix_millis(self.known_backoff_ms.load(Ordering::Relaxed));
        if known > now {
            return Ok(Some(known));
        }
        // Another instance may have recorded one: the database is the shared truth.
        match self.ports.limits.backoff_until(&self.identity.client_id).await? {
            Some(until) if until > now => {
                self.learn_backoff(until);
                Ok(Some(until))
            }
            _ => Ok(None),
        }
    }

    /// Extends the shared backoff by Spotify's `Retry-After` (at least 1 s, at most the cap);
    /// returns how long it now lasts.
    async fn record_backoff(&self, retry_after: Duration) -> Result<Duration, TokenError> {
        let now = self.ports.clock.now();
        let wanted =
            now.plus(retry_after.clamp(Duration::from_secs(1), self.policy.max_backoff.max(Duration::from_secs(1))));
        let until = self.ports.limits.extend_backoff(&self.identity.client_id, wanted, now).await?;
        self.learn_backoff(until);
        Ok(until.since(now))
    }

    fn learn_backoff(&self, until: Timestamp) {
        self.known_backoff_ms.fetch_max(until.unix_millis(), Ordering::Relaxed);
        self.ports.events.record(RefreshEvent::BackoffUntil(until));
    }
}
