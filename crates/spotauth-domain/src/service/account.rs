//! The signed-in user's account: the active list, the Premium status, the playback token.

use crate::ids::UserId;
use crate::ports::RepoError;
use crate::secret::AccessToken;
use crate::time::Timestamp;
use crate::token::{AccessGrant, StoredTokens};
use crate::user::{Page, PageRequest, PremiumStatus, Presence, Subscription, User};

use super::session::Authenticated;
use super::{AuthError, AuthService};

/// A Spotify access token as handed out, with the time it was handed out (for `expires_in`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedToken {
    /// The token and its expiry.
    pub grant: AccessGrant,
    /// When it was served.
    pub served_at: Timestamp,
}

impl AuthService {
    /// The active list: people signed in right now (a live session) who have not opted out,
    /// most recently active first, each as a [`Presence`] (only what a party page needs).
    pub async fn list_active_users(&self, page: PageRequest) -> Result<Page<Presence>, AuthError> {
        let live = self.policy.session.live_after(self.ports.clock.now());
        let Page { items, total, request } = self.ports.users.list_active(page, live).await?;
        Ok(Page { items: items.iter().map(Presence::of).collect(), total, request })
    }

    /// Sets whether the signed-in user shows in the active list (an opt-out lasts until they
    /// opt in again, across logins).
    pub async fn set_active(&self, auth: &Authenticated, active: bool) -> Result<User, AuthError> {
        let now = self.ports.clock.now();
        match self.ports.users.set_active(auth.user.id, active, now).await {
            Err(RepoError::NotFound) => Err(AuthError::UserNotFound),
            other => Ok(other?),
        }
    }

    /// The signed-in user's subscription: the stored answer while younger than the policy's
    /// TTL (no further read: the user came with the session), else re-checked with Spotify.
    pub async fn subscription(&self, auth: Authenticated) -> Result<Subscription, AuthError> {
        let Authenticated { user, tokens, .. } = auth;
        let now = self.ports.clock.now();
        if user.subscription.checked_at.is_some_and(|t| now.since(t) < self.policy.subscription_ttl) {
            return Ok(user.subscription);
        }
        let min_validity = self.policy.access_token_min_validity;
        let grant = self.tokens.valid_access_token_given(user.id, tokens, min_validity).await?;
        let profile = self.tokens.under_backoff(self.ports.profile.current_profile(&grant.access_token)).await?;
        let subscription = self.settle_premium(&profile, &grant.access_token).await;
        match self.ports.users.record_subscription(user.id, subscription).await {
            Ok(user) => Ok(user.subscription),
            Err(RepoError::NotFound) => Err(AuthError::UserNotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// A valid Spotify access token for the signed-in user's Web Playback SDK. Refused with
    /// `PremiumRequired` for a user known to be free; refreshed only when near expiry. The token
    /// row came with the session, so a fresh token costs no further read.
    pub async fn playback_token(&self, auth: Authenticated) -> Result<ServedToken, AuthError> {
        if auth.user.subscription.status == PremiumStatus::Free {
            return Err(AuthError::PremiumRequired);
        }
        self.access_token_given(auth.user.id, auth.tokens).await
    }

    /// A replacement for the playback token a client reports refused (the Web Playback SDK
    /// asked again): refreshed while the refused token is still the stored one, else the
    /// current token. Same refusals as [`Self::playback_token`]; never the refused token.
    pub async fn replace_playback_token(
        &self,
        auth: Authenticated,
        refused: &AccessToken,
    ) -> Result<ServedToken, AuthError> {
        if auth.user.subscription.status == PremiumStatus::Free {
            return Err(AuthError::PremiumRequired);
        }
        let min_validity = self.policy.access_token_min_validity;
        let grant = self.tokens.replacement_for(auth.user.id, auth.tokens, refused, min_validity).await?;
        Ok(ServedToken { grant, served_at: self.ports.clock.now() })
    }

    /// A valid access token for the user whatever their plan, from the row read with the session.
    pub(super) async fn access_token_given(
        &self,
        user: UserId,
        tokens: Option<StoredTokens>,
    ) -> Result<ServedToken, AuthError> {
        let min_validity = self.policy.access_token_min_validity;
        let grant = self.tokens.valid_access_token_given(user, tokens, min_validity).await?;
        Ok(ServedToken { grant, served_at: self.ports.clock.now() })
    }
}
