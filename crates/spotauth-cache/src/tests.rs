//! The cache's rules against the real SQLite store, where a race needs a precise order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use spotauth_domain::ids::SessionId;
use spotauth_domain::session::SessionPolicy;
use spotauth_domain::user::{PageRequest, PremiumStatus};
use spotauth_sqlite::{SqliteSettings, SqliteStore};
use spotauth_testkit::contract::{NOW, new_session, new_user};

use crate::{CacheSettings, SessionCache, Stores};

/// Polls `fut` once: its output if it finished, `None` if it waits.
async fn poll_once<T>(mut fut: Pin<&mut (impl Future<Output = T> + ?Sized)>) -> Option<T> {
    std::future::poll_fn(|cx| {
        Poll::Ready(match fut.as_mut().poll(cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        })
    })
    .await
}

#[tokio::test]
async fn a_list_read_for_an_instant_before_a_logout_is_not_kept_for_the_readers_after_it() {
    let dir = spotauth_testkit::TempDir::new("spotauth-cache-list");
    let store = SqliteStore::open(&dir.path().join("list.db"), SqliteSettings::default()).await.unwrap();
    let repos = store.repositories();
    for n in [1, 2] {
        repos.users.insert(new_user(n, PremiumStatus::Premium)).await.unwrap();
        repos.sessions.create(new_session(n, n)).await.unwrap();
    }
    let inner = Stores { users: repos.users, tokens: repos.tokens, sessions: repos.sessions, players: repos.players };
    let settings = CacheSettings { staleness: Duration::from_secs(60), capacity: 100, shared: false };
    let (cache, cached) = SessionCache::wrap(inner, settings);
    let policy = SessionPolicy::default();
    let page = PageRequest::new(0, 20).unwrap();
    let secs = Duration::from_secs;

    // Another read of the list is under way, so the next reader waits for it.
    let reading = cache.reading_lists().await;
    // A request fixed its instant (one second in) and waits.
    let mut early = cached.users.list_active(page, policy.live_after(NOW.plus(secs(1))));
    assert!(poll_once(early.as_mut()).await.is_none(), "it waits for the read under way");
    // Meanwhile user 2 logs out (two seconds in); then the read under way ends.
    cached.sessions.revoke(SessionId::from_bytes([2; 16]), NOW.plus(secs(2))).await.unwrap();
    drop(reading);
    // Right for its own instant: both were signed in one second in.
    assert_eq!(early.await.unwrap().items.len(), 2);

    // Every request after the logout lists user 1 only, not the early request's list.
    for at in [3, 4] {
        let listed = cached.users.list_active(page, policy.live_after(NOW.plus(secs(at)))).await.unwrap();
        let ids: Vec<_> = listed.items.iter().map(|u| u.spotify_id.as_str().to_owned()).collect();
        assert_eq!(ids, ["user1"], "{at} s in");
    }
}
