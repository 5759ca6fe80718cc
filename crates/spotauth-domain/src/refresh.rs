//! The token-refresh steps over the storage, cipher, clock and Spotify ports, and the basic
//! strategy built from them.
//!
//! [`StoreRefresher`] refreshes on demand with a compare-and-swap write and no coordination. Its
//! steps are public so coordinators (single flight in a process, a lease across processes, a
//! shared rate-limit backoff: `spotauth-refresh`) compose the same logic instead of copying it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::ids::UserId;
use crate::ports::{
    CipherError, Clock, RepoError, SpotifyAccounts, SpotifyError, TokenCipher, TokenError, TokenRefresher,
    UserRepository,
};
use crate::secret::{AccessToken, RefreshToken};
use crate::token::{AccessGrant, RefreshedTokens, StoredTokens, TokenBinding, TokenColumn};

/// How one call to Spotify's token endpoint ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// New tokens are stored (or a concurrent login replaced them); here is the access token.
    Refreshed(AccessGrant),
    /// Spotify said `invalid_grant`; the user is now marked for re-authorization.
    Reauth,
    /// Spotify answered 429 with this `Retry-After`.
    RateLimited(Duration),
    /// 5xx, timeout or dropped connection.
    Unavailable,
}

/// Refreshes a user's Spotify access token through the store, with optimistic concurrency.
#[derive(Debug)]
pub struct StoreRefresher<U: ?Sized, C: ?Sized, A: ?Sized, K: ?Sized> {
    users: Arc<U>,
    cipher: Arc<C>,
    accounts: Arc<A>,
    clock: Arc<K>,
}

impl<U: ?Sized, C: ?Sized, A: ?Sized, K: ?Sized> StoreRefresher<U, C, A, K> {
    /// Wires the refresher.
    pub fn new(users: Arc<U>, cipher: Arc<C>, accounts: Arc<A>, clock: Arc<K>) -> Self {
        StoreRefresher { users, cipher, accounts, clock }
    }
}

impl<U, C, A, K> StoreRefresher<U, C, A, K>
where
    U: UserRepository + ?Sized,
    C: TokenCipher + ?Sized,
    A: SpotifyAccounts + ?Sized,
    K: Clock + ?Sized,
{
    /// The stored tokens, or why there are none to use: `NotConnected`, `ReauthRequired`, and
    /// `ReauthRequired` for a refresh token past its absolute expiry (marked, no Spotify call).
    pub async fn load(&self, user: UserId) -> Result<StoredTokens, TokenError> {
        let stored = self.users.load_tokens(user).await?.ok_or(TokenError::NotConnected)?;
        if stored.reauth_required {
            return Err(TokenError::ReauthRequired);
        }
        if stored.refresh_expires_at <= self.clock.now() {
            self.mark_reauth(user, &stored).await?;
            return Err(TokenError::ReauthRequired);
        }
        Ok(stored)
    }

    /// The access token of a row the caller already read (e.g. with the session) when that row
    /// alone settles the answer: usable (no re-authorization pending, refresh token within its
    /// absolute expiry) and fresh for `min_validity`. `None` means "take the full path", which
    /// reads the row again, so no refresh or re-authorization mark ever acts on a copy.
    pub fn preloaded_fresh(
        &self,
        user: UserId,
        stored: Option<&StoredTokens>,
        min_validity: Duration,
    ) -> Option<Result<AccessGrant, TokenError>> {
        let stored = stored?;
        let usable = !stored.reauth_required && stored.refresh_expires_at > self.clock.now();
        (usable && self.is_fresh(stored, min_validity)).then(|| self.decrypt_access(user, stored))
    }

    /// Whether the stored access token stays valid for `min_validity` more.
    pub fn is_fresh(&self, stored: &StoredTokens, min_validity: Duration) -> bool {
        stored.access_expires_at > self.clock.now().plus(min_validity)
    }

    /// The stored access token in the clear.
    pub fn decrypt_access(&self, user: UserId, stored: &StoredTokens) -> Result<AccessGrant, TokenError> {
        let clear =
            self.cipher.decrypt(&stored.access_token, TokenBinding { user_id: user, column: TokenColumn::Access })?;
        let access_token = AccessToken::new(clear.expose()).map_err(|_| CipherError::Malformed)?;
        Ok(AccessGrant { access_token, expires_at: stored.access_expires_at })
    }

    /// The stored access token while it is still valid at all (Spotify being unavailable or
    /// rate limiting), else `fallback`.
    pub fn stored_if_valid(
        &self,
        user: UserId,
        stored: &StoredTokens,
        fallback: TokenError,
    ) -> Result<AccessGrant, TokenError> {
        if self.is_fresh(stored, Duration::ZERO) { self.decrypt_access(user, stored) } else { Err(fallback) }
    }

    async fn mark_reauth(&self, user: UserId, stored: &StoredTokens) -> Result<(), TokenError> {
        match self.users.mark_reauth_required(user, stored.version).await {
            // A login (or another refresher) moved the version on: nothing to mark.
            Ok(()) | Err(RepoError::StaleVersion) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// One call to Spotify's token endpoint with the stored refresh token. On success the new
    /// access token, its expiry and — only when Spotify sent one — the new refresh token are
    /// written in one update guarded by the version read; on `invalid_grant` the user is marked
    /// for re-authorization (guarded the same way). Never retries.
    pub async fn attempt(&self, user: UserId, stored: &StoredTokens) -> Result<Attempt, TokenError> {
        let clear =
            self.cipher.decrypt(&stored.refresh_token, TokenBinding { user_id: user, column: TokenColumn::Refresh })?;
        let refresh_token = RefreshToken::new(clear.expose()).map_err(|_| CipherError::Malformed)?;
        match self.accounts.refresh(&refresh_token).await {
            Ok(grant) => {
                let bind = |column| TokenBinding { user_id: user, column };
                let access_token = self.cipher.encrypt(grant.access_token.expose(), bind(TokenColumn::Access))?;
                let refresh_token = match &grant.refresh_token {
                    Some(rt) => Some(self.cipher.encrypt(rt.expose(), bind(TokenColumn::Refresh))?),
                    None => None,
                };
                let update = RefreshedTokens {
                    access_token,
                    access_expires_at: grant.access_expires_at,
                    refresh_token,
                    scopes: grant.scopes,
                };
                match self.users.store_refreshed(user, stored.version, update).await {
                    // StaleVersion: a login replaced the tokens meanwhile; ours is still valid.
                    Ok(_) | Err(RepoError::StaleVersion) => {}
                    Err(e) => return Err(e.into()),
                }
                Ok(Attempt::Refreshed(AccessGrant {
                    access_token: grant.access_token,
                    expires_at: grant.access_expires_at,
                }))
            }
            Err(SpotifyError::ReauthRequired) => {
                self.mark_reauth(user, stored).await?;
                Ok(Attempt::Reauth)
            }
            Err(SpotifyError::RateLimited { retry_after }) => Ok(Attempt::RateLimited(retry_after)),
            Err(SpotifyError::Unavailable(_)) => Ok(Attempt::Unavailable),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl<U, C, A, K> TokenRefresher for StoreRefresher<U, C, A, K>
where
    U: UserRepository + ?Sized,
    C: TokenCipher + ?Sized,
    A: SpotifyAccounts + ?Sized,
    K: Clock + ?Sized,
{
    async fn valid_access_token(&self, user: UserId, min_validity: Duration) -> Result<AccessGrant, TokenError> {
        let stored = self.load(user).await?;
        if self.is_fresh(&stored, min_validity) {
            return self.decrypt_access(user, &stored);
        }
        match self.attempt(user, &stored).await? {
            Attempt::Refreshed(grant) => Ok(grant),
            Attempt::Reauth => Err(TokenError::ReauthRequired),
            Attempt::RateLimited(retry_after) => {
                self.stored_if_valid(user, &stored, TokenError::RateLimited { retry_after })
            }
            Attempt::Unavailable => self.stored_if_valid(user, &stored, TokenError::Unavailable { retry_after: None }),
        }
    }

    async fn valid_access_token_preloaded(
        &self,
        user: UserId,
        stored: Option<StoredTokens>,
        min_validity: Duration,
    ) -> Result<AccessGrant, TokenError> {
        match self.preloaded_fresh(user, stored.as_ref(), min_validity) {
            Some(served) => served,
            None => self.valid_access_token(user, min_validity).await,
        }
    }
}
