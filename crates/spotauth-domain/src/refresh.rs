//! The basic token-refresh strategy over the storage, cipher, clock and Spotify ports.
//!
//! It refreshes on demand with a compare-and-swap write. It does not coordinate concurrent
//! callers: that is the job of wrappers around the [`TokenRefresher`] port (single flight in a
//! process, a lease across processes).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::ids::UserId;
use crate::ports::{
    Clock, RepoError, SpotifyAccounts, SpotifyError, TokenCipher, TokenError, TokenRefresher, UserRepository,
};
use crate::secret::{AccessToken, RefreshToken};
use crate::token::{AccessGrant, RefreshedTokens, StoredTokens, TokenBinding, TokenColumn};

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
    fn decrypt_access(&self, user: UserId, stored: &StoredTokens) -> Result<AccessGrant, TokenError> {
        let clear =
            self.cipher.decrypt(&stored.access_token, TokenBinding { user_id: user, column: TokenColumn::Access })?;
        let access_token = AccessToken::new(clear.expose()).map_err(|_| crate::ports::CipherError::Malformed)?;
        Ok(AccessGrant { access_token, expires_at: stored.access_expires_at })
    }

    async fn mark_reauth(&self, user: UserId, stored: &StoredTokens) -> Result<(), TokenError> {
        match self.users.mark_reauth_required(user, stored.version).await {
            // A login (or another refresher) moved the version on: nothing to mark.
            Ok(()) | Err(RepoError::StaleVersion) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The stored access token while it is still valid at all, else `fallback`.
    fn stored_if_valid(
        &self,
        user: UserId,
        stored: &StoredTokens,
        fallback: TokenError,
    ) -> Result<AccessGrant, TokenError> {
        if stored.access_expires_at > self.clock.now() { self.decrypt_access(user, stored) } else { Err(fallback) }
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
        let now = self.clock.now();
        let stored = self.users.load_tokens(user).await?.ok_or(TokenError::NotConnected)?;
        if stored.reauth_required {
            return Err(TokenError::ReauthRequired);
        }
        if stored.access_expires_at > now.plus(min_validity) {
            return self.decrypt_access(user, &stored);
        }
        if stored.refresh_expires_at <= now {
            // Known dead (6 months after authorization): no call to Spotify.
            self.mark_reauth(user, &stored).await?;
            return Err(TokenError::ReauthRequired);
        }
        let clear =
            self.cipher.decrypt(&stored.refresh_token, TokenBinding { user_id: user, column: TokenColumn::Refresh })?;
        let refresh_token = RefreshToken::new(clear.expose()).map_err(|_| crate::ports::CipherError::Malformed)?;
        match self.accounts.refresh(&refresh_token).await {
            Ok(grant) => {
                let access_token = self.cipher.encrypt(
                    grant.access_token.expose(),
                    TokenBinding { user_id: user, column: TokenColumn::Access },
                )?;
                let refresh_token = match &grant.refresh_token {
                    Some(rt) => Some(
                        self.cipher
                            .encrypt(rt.expose(), TokenBinding { user_id: user, column: TokenColumn::Refresh })?,
                    ),
                    None => None,
                };
                let update = RefreshedTokens {
                    access_token,
                    access_expires_at: grant.access_expires_at,
                    refresh_token,
                    scopes: grant.scopes,
                };
                match self.users.store_refreshed(user, stored.version, update).await {
                    // StaleVersion: another writer stored tokens meanwhile; ours is still valid.
                    Ok(_) | Err(RepoError::StaleVersion) => {}
                    Err(e) => return Err(e.into()),
                }
                Ok(AccessGrant { access_token: grant.access_token, expires_at: grant.access_expires_at })
            }
            Err(SpotifyError::ReauthRequired) => {
                self.mark_reauth(user, &stored).await?;
                Err(TokenError::ReauthRequired)
            }
            Err(SpotifyError::RateLimited { retry_after }) => {
                self.stored_if_valid(user, &stored, TokenError::RateLimited { retry_after })
            }
            Err(SpotifyError::Unavailable(_)) => {
                self.stored_if_valid(user, &stored, TokenError::Unavailable { retry_after: None })
            }
            Err(e) => Err(e.into()),
        }
    }
}
