//! The storage ports, decorated: reads that accepting a request needs come from memory when
//! they may; every write goes to the inner port and then forgets what it changed. Each
//! decorator only forwards and forgets: the rules live in [`SessionCache`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use spotauth_domain::ids::{SessionId, UserId};
use spotauth_domain::ports::{
    Freshness, LeaseOutcome, LoginUpdate, NewUser, RepoError, SessionRepository, TokenRepository, UserRepository,
};
use spotauth_domain::room::{DeviceId, Player, PlayerRepository};
use spotauth_domain::session::{LiveAfter, NewSession, Session, SessionView, TokenIdHash};
use spotauth_domain::time::Timestamp;
use spotauth_domain::token::{RefreshedTokens, StoredTokens, TokenVersion};
use spotauth_domain::user::{Page, PageRequest, SpotifyAccountKey, Subscription, User};

use crate::state::SessionCache;

/// Runs a write on the inner port, then forgets what it may have changed whatever its outcome
/// (a write that failed may still have committed: a timeout, a lost connection).
async fn then_forget<T>(write: impl Future<Output = T>, forget: impl FnOnce()) -> T {
    let done = write.await;
    forget();
    done
}

pub(crate) struct CachedSessions {
    pub(crate) inner: Arc<dyn SessionRepository>,
    pub(crate) cache: Arc<SessionCache>,
}

#[async_trait]
impl SessionRepository for CachedSessions {
    async fn create(&self, session: NewSession) -> Result<Session, RepoError> {
        let user = session.user_id;
        // A new session can put its user on the active list.
        then_forget(self.inner.create(session), || self.cache.forget_user(user)).await
    }

    async fn load_view(&self, id: SessionId, freshness: Freshness) -> Result<Option<SessionView>, RepoError> {
        if freshness == Freshness::Cached
            && let Some(view) = self.cache.view(id)
        {
            return Ok(Some(view));
        }
        let ticket = self.cache.ticket();
        let mut view = self.inner.load_view(id, Freshness::Latest).await?;
        if let Some(view) = &mut view {
            // A use queued here and not yet written still counts (the idle timeout).
            if let Some(at) = self.cache.queued_touch(id) {
                view.session.last_active = view.session.last_active.max(at);
            }
            self.cache.keep(ticket, view);
        }
        Ok(view)
    }

    async fn rotate(
        &self,
        id: SessionId,
        expected: &TokenIdHash,
        new: &TokenIdHash,
        now: Timestamp,
        token_expires_at: Timestamp,
    ) -> Result<Session, RepoError> {
        let write = self.inner.rotate(id, expected, new, now, token_expires_at);
        then_forget(write, || self.cache.forget_session(id)).await
    }

    async fn touch(&self, id: SessionId, now: Timestamp) -> Result<(), RepoError> {
        self.cache.touched_session(id, now);
        Ok(())
    }

    async fn touch_many(&self, ids: &[SessionId], now: Timestamp) -> Result<u64, RepoError> {
        self.inner.touch_many(ids, now).await
    }

    async fn revoke(&self, id: SessionId, now: Timestamp) -> Result<(), RepoError> {
        then_forget(self.inner.revoke(id, now), || self.cache.forget_session(id)).await
    }

    async fn revoke_all_for_user(
        &self,
        user_id: UserId,
        live: LiveAfter,
        keep: Option<SessionId>,
    ) -> Result<u64, RepoError> {
        then_forget(self.inner.revoke_all_for_user(user_id, live, keep), || self.cache.forget_user(user_id)).await
    }

    async fn list_for_user(&self, user_id: UserId, live: LiveAfter) -> Result<Vec<Session>, RepoError> {
        // The user is choosing which sessions to end: the database's list.
        self.inner.list_for_user(user_id, live).await
    }

    async fn purge_ended(&self, ended_before: LiveAfter) -> Result<u64, RepoError> {
        // Only ended sessions go, and a cached view of one is always re-read before a refusal.
        self.inner.purge_ended(ended_before).await
    }
}

pub(crate) struct CachedUsers {
    pub(crate) inner: Arc<dyn UserRepository>,
    pub(crate) cache: Arc<SessionCache>,
}

#[async_trait]
impl UserRepository for CachedUsers {
    async fn get(&self, id: UserId) -> Result<Option<User>, RepoError> {
        self.inner.get(id).await
    }

    async fn find_by_account_key(&self, key: &SpotifyAccountKey) -> Result<Option<User>, RepoError> {
        self.inner.find_by_account_key(key).await
    }

    async fn insert(&self, user: NewUser) -> Result<User, RepoError> {
        let id = user.id;
        then_forget(self.inner.insert(user), || self.cache.forget_user(id)).await
    }

    async fn update_on_login(&self, id: UserId, update: LoginUpdate) -> Result<User, RepoError> {
        then_forget(self.inner.update_on_login(id, update), || self.cache.forget_user(id)).await
    }

    async fn list_active(&self, page: PageRequest, live: LiveAfter) -> Result<Page<User>, RepoError> {
        // `live` was fixed by the caller just before this call: what was forgotten since then
        // (a logout while this request waited below) must keep its list out of the cache, or a
        // session revoked after `live.at` would be listed as live to every later reader.
        let arrived = self.cache.ticket();
        let key = (page.offset, page.limit);
        if let Some(listed) = self.cache.list(key) {
            return Ok(listed);
        }
        // One read at a time: the requests that found the list expired wait for it, instead of
        // all reading it at once (the count behind it grows with the number of people).
        let _single = self.cache.reading_lists().await;
        if let Some(listed) = self.cache.list(key) {
            return Ok(listed);
        }
        let (ticket, at) = (self.cache.ticket(), Instant::now());
        let listed = self.inner.list_active(page, live).await?;
        if ticket == arrived {
            self.cache.keep_list(key, ticket, at, &listed);
        }
        Ok(listed)
    }

    async fn list_present(&self, live: LiveAfter) -> Result<Vec<User>, RepoError> {
        // A command to everyone: rare, and it must not miss anyone who just arrived.
        self.inner.list_present(live).await
    }

    async fn set_active(&self, id: UserId, active: bool, now: Timestamp) -> Result<User, RepoError> {
        then_forget(self.inner.set_active(id, active, now), || self.cache.forget_user(id)).await
    }

    async fn record_subscription(&self, id: UserId, subscription: Subscription) -> Result<User, RepoError> {
        then_forget(self.inner.record_subscription(id, subscription), || self.cache.forget_user(id)).await
    }

    async fn touch(&self, id: UserId, now: Timestamp) -> Result<(), RepoError> {
        self.cache.touched_user(id, now);
        Ok(())
    }

    async fn touch_many(&self, ids: &[UserId], now: Timestamp) -> Result<u64, RepoError> {
        self.inner.touch_many(ids, now).await
    }

    async fn page(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, RepoError> {
        self.inner.page(after, limit).await
    }

    async fn erase(&self, id: UserId) -> Result<bool, RepoError> {
        // Their room player goes in the same transaction.
        then_forget(self.inner.erase(id), || {
            self.cache.forget_user(id);
            self.cache.forget_players();
        })
        .await
    }
}

pub(crate) struct CachedTokens {
    pub(crate) inner: Arc<dyn TokenRepository>,
    pub(crate) cache: Arc<SessionCache>,
}

#[async_trait]
impl TokenRepository for CachedTokens {
    async fn load_tokens(&self, id: UserId) -> Result<Option<StoredTokens>, RepoError> {
        // The refresh path: always the database's row.
        self.inner.load_tokens(id).await
    }

    async fn store_refreshed(
        &self,
        id: UserId,
        expected: TokenVersion,
        tokens: RefreshedTokens,
    ) -> Result<TokenVersion, RepoError> {
        then_forget(self.inner.store_refreshed(id, expected, tokens), || self.cache.forget_user(id)).await
    }

    async fn mark_reauth_required(&self, id: UserId, expected: TokenVersion) -> Result<(), RepoError> {
        then_forget(self.inner.mark_reauth_required(id, expected), || self.cache.forget_user(id)).await
    }

    async fn delete_tokens(&self, id: UserId) -> Result<(), RepoError> {
        then_forget(self.inner.delete_tokens(id), || self.cache.forget_user(id)).await
    }

    async fn try_acquire_refresh_lease(
        &self,
        id: UserId,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<LeaseOutcome, RepoError> {
        self.inner.try_acquire_refresh_lease(id, holder, now, ttl).await
    }

    async fn release_refresh_lease(&self, id: UserId, holder: &str) -> Result<(), RepoError> {
        self.inner.release_refresh_lease(id, holder).await
    }

    async fn list_refresh_candidates(
        &self,
        expiring_before: Timestamp,
        live: LiveAfter,
        limit: u32,
    ) -> Result<Vec<UserId>, RepoError> {
        self.inner.list_refresh_candidates(expiring_before, live, limit).await
    }

    async fn delete_tokens_of_idle_users(&self, live: LiveAfter) -> Result<u64, RepoError> {
        // Their sessions are not live, and a cached view of one is re-read before a refusal.
        self.inner.delete_tokens_of_idle_users(live).await
    }

    async fn page_tokens(&self, after: Option<UserId>, limit: u32) -> Result<Vec<(UserId, StoredTokens)>, RepoError> {
        self.inner.page_tokens(after, limit).await
    }

    async fn newest_tokens(&self) -> Result<Option<(UserId, StoredTokens)>, RepoError> {
        self.inner.newest_tokens().await
    }
}

pub(crate) struct CachedPlayers {
    pub(crate) inner: Arc<dyn PlayerRepository>,
    pub(crate) cache: Arc<SessionCache>,
}

#[async_trait]
impl PlayerRepository for CachedPlayers {
    async fn upsert(&self, player: Player) -> Result<(), RepoError> {
        then_forget(self.inner.upsert(player), || self.cache.forget_players()).await
    }

    async fn remove(&self, user: UserId, device: Option<DeviceId>) -> Result<bool, RepoError> {
        then_forget(self.inner.remove(user, device), || self.cache.forget_players()).await
    }

    async fn player_of(&self, user: UserId) -> Result<Option<Player>, RepoError> {
        self.inner.player_of(user).await
    }

    async fn live(&self, seen_after: Timestamp) -> Result<Vec<Player>, RepoError> {
        let cached = |cache: &SessionCache| {
            cache.players(seen_after).map(|players| players.into_iter().filter(|p| p.seen_at >= seen_after).collect())
        };
        if let Some(players) = cached(&self.cache) {
            return Ok(players);
        }
        let _single = self.cache.reading_lists().await;
        if let Some(players) = cached(&self.cache) {
            return Ok(players);
        }
        let (ticket, at) = (self.cache.ticket(), Instant::now());
        let players = self.inner.live(seen_after).await?;
        self.cache.keep_players(ticket, at, seen_after, &players);
        Ok(players)
    }

    async fn purge(&self, seen_before: Timestamp) -> Result<u64, RepoError> {
        then_forget(self.inner.purge(seen_before), || self.cache.forget_players()).await
    }

    async fn bump(&self, now: Timestamp) -> Result<(), RepoError> {
        self.inner.bump(now).await
    }

    async fn version(&self) -> Result<u64, RepoError> {
        self.inner.version().await
    }

    async fn purge_changes(&self, before: Timestamp) -> Result<u64, RepoError> {
        self.inner.purge_changes(before).await
    }
}
