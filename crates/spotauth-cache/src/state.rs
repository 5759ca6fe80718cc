//! The cache's state: cached session views, what has been forgotten since they were read, and
//! the queued last-active writes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use spotauth_domain::ids::{SessionId, UserId};
use spotauth_domain::ports::{RepoError, SessionRepository, TokenRepository, UserRepository};
use spotauth_domain::room::{Player, PlayerRepository};
use spotauth_domain::session::SessionView;
use spotauth_domain::time::Timestamp;
use spotauth_domain::user::{Page, User};

use crate::decorators::{CachedPlayers, CachedSessions, CachedTokens, CachedUsers};
use crate::journal::Cursor;

/// How the cache behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// Longest a write made on another instance may go unseen here. MUST be above zero: a
    /// bound of zero is strict mode, which is no cache at all (do not wrap the stores).
    pub staleness: Duration,
    /// Most sessions kept in memory; the coldest are evicted past it.
    pub capacity: usize,
    /// Whether other processes write the same database: then a cached view is served only
    /// while the journal has been read within `staleness` ([`SessionCache::follow_journal`]).
    /// `false` (one process owns the store, as the embedded SQLite default) needs no polling.
    pub shared: bool,
}

/// The storage ports the cache decorates (each an `Arc<dyn Port>`).
#[derive(Clone)]
pub struct Stores {
    /// Users.
    pub users: Arc<dyn UserRepository>,
    /// Stored Spotify tokens.
    pub tokens: Arc<dyn TokenRepository>,
    /// App sessions.
    pub sessions: Arc<dyn SessionRepository>,
    /// The room's players.
    pub players: Arc<dyn PlayerRepository>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

/// What the cache has done since it started (for `/metrics` and the bench).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Session views answered from memory.
    pub hits: u64,
    /// Session views read from the database (not cached, forgotten, or not trusted).
    pub misses: u64,
    /// Sessions in memory now.
    pub sessions: u64,
    /// Users forgotten because a write changed them (here or, through the journal, elsewhere).
    pub forgotten: u64,
    /// Journal reads that failed (the database unreachable).
    pub journal_failures: u64,
    /// Last-active writes queued and not yet written.
    pub touches_pending: u64,
    /// How long ago the last successful read of the change journal started, in milliseconds:
    /// how far behind other instances' writes a cached view may be (views are served while it
    /// is below the bound). `None` when nothing else writes the store (no journal to follow).
    pub journal_age_ms: Option<u64>,
}

/// A view as read, and the generation current when its read started.
pub(crate) struct Cached {
    pub(crate) view: SessionView,
    pub(crate) ticket: u64,
}

/// A list as read, when, and the generation current when its read started.
struct Listed<T> {
    at: Instant,
    ticket: u64,
    value: T,
}

/// An active-list page: offset and limit.
pub(crate) type PageKey = (u32, u32);

/// The live players as read, and the cut-off they were read for.
type LivePlayers = (Timestamp, Vec<Player>);

/// What was forgotten, by generation: a view read at ticket `t` is stale when its user or its
/// session was forgotten at a generation above `t`, or when everything was (the floor).
#[derive(Default)]
struct Forgotten {
    floor: u64,
    keys: HashMap<Key, u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    User(UserId),
    Session(SessionId),
}

impl Forgotten {
    fn is_stale(&self, cached: &Cached) -> bool {
        let after = |key| self.keys.get(&key).is_some_and(|g| *g > cached.ticket);
        cached.ticket < self.floor
            || after(Key::User(cached.view.session.user_id))
            || after(Key::Session(cached.view.session.id))
    }
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    forgotten: AtomicU64,
    journal_failures: AtomicU64,
}

/// The cache shared by the decorated ports of one instance. See the crate docs for the rule.
pub struct SessionCache {
    settings: CacheSettings,
    inner: Stores,
    epoch: Instant,
    views: Cache<SessionId, Arc<Cached>>,
    forgotten: RwLock<Forgotten>,
    generation: AtomicU64,
    /// Milliseconds after `epoch` until which cached answers may be served.
    trusted_until: AtomicU64,
    lists: Mutex<HashMap<PageKey, Listed<Page<User>>>>,
    players: Mutex<Option<Listed<LivePlayers>>>,
    touched_sessions: Mutex<HashMap<SessionId, Timestamp>>,
    touched_users: Mutex<HashMap<UserId, Timestamp>>,
    pub(crate) cursor: tokio::sync::Mutex<Cursor>,
    list_reads: tokio::sync::Mutex<()>,
    counters: Counters,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// Forgetting is bounded too: past this many forgotten keys, everything is forgotten at once
/// (one re-read per cached session) and the record starts over.
const MAX_FORGOTTEN_KEYS: usize = 100_000;

/// Most active-list pages kept at once.
const MAX_LISTS: usize = 64;

/// Queued last-active times are written rounded down to this: one statement per bucket and 500
/// ids, and a time never later than the use it records (so never a longer idle timeout).
const TOUCH_BUCKET_MS: i64 = 5_000;

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SessionCache {
    /// The cache over `inner`, and `inner` decorated with it: wire the returned stores in place
    /// of `inner`. When `settings.shared`, run [`Self::follow_journal`] about every quarter of
    /// the staleness bound (until its first success nothing is served from memory); in any
    /// case run [`Self::flush_touches`] periodically and once at shutdown.
    pub fn wrap(inner: Stores, settings: CacheSettings) -> (Arc<SessionCache>, Stores) {
        let cache = Arc::new(SessionCache {
            settings,
            inner: inner.clone(),
            epoch: Instant::now(),
            views: Cache::new(settings.capacity.max(1)),
            forgotten: RwLock::new(Forgotten::default()),
            generation: AtomicU64::new(1),
            trusted_until: AtomicU64::new(if settings.shared { 0 } else { u64::MAX }),
            lists: Mutex::new(HashMap::new()),
            players: Mutex::new(None),
            touched_sessions: Mutex::new(HashMap::new()),
            touched_users: Mutex::new(HashMap::new()),
            cursor: tokio::sync::Mutex::new(Cursor::default()),
            list_reads: tokio::sync::Mutex::new(()),
            counters: Counters::default(),
        });
        let stores = Stores {
            users: Arc::new(CachedUsers { inner: inner.users, cache: cache.clone() }),
            tokens: Arc::new(CachedTokens { inner: inner.tokens, cache: cache.clone() }),
            sessions: Arc::new(CachedSessions { inner: inner.sessions, cache: cache.clone() }),
            players: Arc::new(CachedPlayers { inner: inner.players, cache: cache.clone() }),
        };
        (cache, stores)
    }

    /// The settings in force.
    pub fn settings(&self) -> CacheSettings {
        self.settings
    }

    /// What the cache has done so far.
    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        let pending = locked(&self.touched_sessions).len() + locked(&self.touched_users).len();
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            sessions: self.views.len() as u64,
            forgotten: c.forgotten.load(Ordering::Relaxed),
            journal_failures: c.journal_failures.load(Ordering::Relaxed),
            touches_pending: pending as u64,
            journal_age_ms: self.settings.shared.then(|| {
                let bound = u64::try_from(self.settings.staleness.as_millis()).unwrap_or(u64::MAX);
                let last_read_started = self.trusted_until.load(Ordering::Acquire).saturating_sub(bound);
                self.elapsed_ms(Instant::now()).saturating_sub(last_read_started)
            }),
        }
    }

    fn elapsed_ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether cached answers may be served now: always for a store nobody else writes; for a
    /// shared one, while the last successful journal read started less than the bound ago.
    pub(crate) fn trusted(&self) -> bool {
        self.elapsed_ms(Instant::now()) < self.trusted_until.load(Ordering::Acquire)
    }

    /// After a journal read that started at `started` and succeeded.
    pub(crate) fn trust_until(&self, started: Instant) {
        let bound = u64::try_from(self.settings.staleness.as_millis()).unwrap_or(u64::MAX);
        let until = self.elapsed_ms(started).saturating_add(bound);
        self.trusted_until.fetch_max(until, Ordering::AcqRel);
    }

    pub(crate) fn journal_failed(&self) {
        self.counters.journal_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The generation a read starting now is stamped with: taken BEFORE the read, so a write
    /// forgotten while the read runs makes its answer stale.
    pub(crate) fn ticket(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The cached view of session `id`, when one may be served.
    pub(crate) fn view(&self, id: SessionId) -> Option<SessionView> {
        let hit = if self.trusted() { self.views.get(&id) } else { None };
        let fresh = hit.filter(|cached| !self.read_forgotten().is_stale(cached));
        match fresh {
            Some(cached) => {
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                Some(cached.view.clone())
            }
            None => {
                self.counters.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Keeps a view read from the database under `ticket`, when it can let a request in (a
    /// refused session is always re-read anyway).
    pub(crate) fn keep(&self, ticket: u64, view: &SessionView) {
        if view.session.revoked_at.is_none() && view.owner.is_some() {
            let cached = Cached { view: view.clone(), ticket };
            if !self.read_forgotten().is_stale(&cached) {
                self.views.insert(view.session.id, Arc::new(cached));
            }
        }
    }

    fn read_forgotten(&self) -> std::sync::RwLockReadGuard<'_, Forgotten> {
        self.forgotten.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn forget(&self, key: Option<Key>) {
        // The generation is raised under the lock, so two forgets record theirs in order (a
        // later one is never overwritten by an earlier one).
        let mut forgotten = self.forgotten.write().unwrap_or_else(PoisonError::into_inner);
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        match key {
            Some(key) if forgotten.keys.len() < MAX_FORGOTTEN_KEYS => {
                forgotten.keys.insert(key, generation);
            }
            _ => {
                forgotten.floor = generation;
                forgotten.keys.clear();
                self.views.clear();
            }
        }
        self.counters.forgotten.fetch_add(1, Ordering::Relaxed);
    }

    /// A write changed what `user`'s requests see: every cached session of theirs is stale.
    pub(crate) fn forget_user(&self, user: UserId) {
        self.forget(Some(Key::User(user)));
    }

    /// A write changed session `id`.
    pub(crate) fn forget_session(&self, id: SessionId) {
        self.forget(Some(Key::Session(id)));
        self.views.remove(&id);
    }

    /// Everything cached may be stale (the journal could not be followed).
    pub(crate) fn forget_everything(&self) {
        self.forget(None);
    }

    /// The cached active list for `key`, while younger than the bound and nothing was forgotten
    /// since its read started.
    pub(crate) fn list(&self, key: PageKey) -> Option<Page<User>> {
        let lists = locked(&self.lists);
        let listed = lists.get(&key)?;
        self.current(listed).then(|| listed.value.clone())
    }

    pub(crate) fn keep_list(&self, key: PageKey, ticket: u64, at: Instant, value: &Page<User>) {
        let mut lists = locked(&self.lists);
        lists.retain(|_, l| self.current(l));
        // The pages are the client's choice: keep a bounded few.
        if lists.len() >= MAX_LISTS {
            lists.clear();
        }
        lists.insert(key, Listed { at, ticket, value: value.clone() });
    }

    /// Held while a list is read from the database (one such read at a time per instance).
    pub(crate) async fn reading_lists(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.list_reads.lock().await
    }

    /// The live players read for a cut-off at most the bound earlier than `seen_after`.
    pub(crate) fn players(&self, seen_after: Timestamp) -> Option<Vec<Player>> {
        let players = locked(&self.players);
        let listed = players.as_ref()?;
        let (cut_off, value) = &listed.value;
        (self.current(listed) && *cut_off <= seen_after).then(|| value.clone())
    }

    pub(crate) fn keep_players(&self, ticket: u64, at: Instant, seen_after: Timestamp, value: &[Player]) {
        *locked(&self.players) = Some(Listed { at, ticket, value: (seen_after, value.to_vec()) });
    }

    /// A player was written here: the next read of the players goes to the database, and a
    /// read that started before this write is not kept (the generation moves on; the cached
    /// views are unaffected, their users were not forgotten).
    pub(crate) fn forget_players(&self) {
        {
            let _ordered = self.forgotten.write().unwrap_or_else(PoisonError::into_inner);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        *locked(&self.players) = None;
    }

    fn current<T>(&self, listed: &Listed<T>) -> bool {
        self.trusted() && listed.at.elapsed() < self.settings.staleness && listed.ticket == self.ticket()
    }

    /// Session `id` was used at `now`: its cached view says so at once (the once-a-minute touch
    /// rule reads it), and the write is queued for [`Self::flush_touches`].
    pub(crate) fn touched_session(&self, id: SessionId, now: Timestamp) {
        let mut queue = locked(&self.touched_sessions);
        let at = queue.entry(id).or_insert(now);
        *at = (*at).max(now);
        drop(queue);
        if let Some(cached) = self.views.get(&id)
            && cached.view.session.last_active < now
        {
            let mut view = cached.view.clone();
            view.session.last_active = now;
            self.views.insert(id, Arc::new(Cached { view, ticket: cached.ticket }));
        }
    }

    /// User `id` was active at `now`: queued for [`Self::flush_touches`].
    pub(crate) fn touched_user(&self, id: UserId, now: Timestamp) {
        let mut queue = locked(&self.touched_users);
        let at = queue.entry(id).or_insert(now);
        *at = (*at).max(now);
    }

    /// The queued last-active time of session `id`, if any (a view read from the database does
    /// not have it yet).
    pub(crate) fn queued_touch(&self, id: SessionId) -> Option<Timestamp> {
        locked(&self.touched_sessions).get(&id).copied()
    }

    /// Writes the queued last-active times, each rounded down to 5 s (never later than the use
    /// it records): one statement per 5-s bucket and 500 ids. What could not be written stays
    /// queued for the next flush: nothing is lost while the database is away. Returns how many
    /// rows changed.
    pub async fn flush_touches(&self) -> Result<u64, RepoError> {
        let sessions = std::mem::take(&mut *locked(&self.touched_sessions));
        let users = std::mem::take(&mut *locked(&self.touched_users));
        let written = async {
            let mut changed = 0;
            for (at, ids) in buckets(&sessions) {
                changed += self.inner.sessions.touch_many(&ids, at).await?;
            }
            for (at, ids) in buckets(&users) {
                changed += self.inner.users.touch_many(&ids, at).await?;
            }
            Ok::<_, RepoError>(changed)
        };
        let written = written.await;
        if written.is_err() {
            // Writing a time again is harmless (`touch_many` only moves it forward).
            requeue(&self.touched_sessions, sessions);
            requeue(&self.touched_users, users);
        }
        written
    }
}

/// The queued ids grouped by their time rounded down to [`TOUCH_BUCKET_MS`].
fn buckets<K: Copy>(queued: &HashMap<K, Timestamp>) -> Vec<(Timestamp, Vec<K>)> {
    let mut by_bucket: std::collections::BTreeMap<i64, Vec<K>> = std::collections::BTreeMap::new();
    for (k, at) in queued {
        let ms = at.unix_millis();
        by_bucket.entry(ms - ms.rem_euclid(TOUCH_BUCKET_MS)).or_default().push(*k);
    }
    by_bucket.into_iter().map(|(ms, ids)| (Timestamp::from_unix_millis(ms), ids)).collect()
}

fn requeue<K: std::hash::Hash + Eq>(queue: &Mutex<HashMap<K, Timestamp>>, back: HashMap<K, Timestamp>) {
    let mut queue = locked(queue);
    for (k, at) in back {
        let slot = queue.entry(k).or_insert(at);
        *slot = (*slot).max(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_touches_are_written_rounded_down_never_later() {
        let t = Timestamp::from_unix_millis;
        let queued: HashMap<u8, Timestamp> = [(1, t(12_345)), (2, t(14_999)), (3, t(15_000)), (4, t(10_000))].into();
        let mut got = buckets(&queued);
        for (_, ids) in &mut got {
            ids.sort_unstable();
        }
        assert_eq!(got, vec![(t(10_000), vec![1, 2, 4]), (t(15_000), vec![3])]);
        for (at, ids) in &got {
            assert!(ids.iter().all(|id| queued[id] >= *at), "a written time is never later than its use");
        }
    }
}
