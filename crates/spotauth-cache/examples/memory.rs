//! What the session cache costs in memory: seeds users and sessions in a SQLite store (tokens
//! encrypted as in production), reads every session once through the store (warming SQLite's
//! own cache), then through the session cache, and prints the resident memory the cached
//! sessions added, at 10,000 and at 100,000 sessions.
//!
//! `cargo run --release -p spotauth-cache --example memory [-- SESSIONS...]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use spotauth_cache::{CacheSettings, SessionCache, Stores};
use spotauth_domain::ids::{SessionId, UserId};
use spotauth_domain::ports::{Freshness, NewUser, TokenCipher};
use spotauth_domain::session::{NewSession, SessionMeta, TokenIdHash};
use spotauth_domain::time::Timestamp;
use spotauth_domain::token::{NewTokens, Scopes, TokenBinding, TokenColumn};
use spotauth_domain::user::{
    DisplayName, PremiumSource, PremiumStatus, SpotifyAccountKey, SpotifyUserId, Subscription,
};
use spotauth_sqlite::{SqliteSettings, SqliteStore};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn id_bytes(n: u32, tag: u8) -> [u8; 16] {
    let mut b = [tag; 16];
    b[..4].copy_from_slice(&n.to_be_bytes());
    b
}

fn user(n: u32, now: Timestamp, keys: &dyn TokenCipher) -> NewUser {
    let id = UserId::from_bytes(id_bytes(n, 1));
    let token = |column| {
        // As long as Spotify's: about 200 characters.
        let plain = format!("BQ{n:08}{}", "x".repeat(190));
        keys.encrypt(&plain, TokenBinding { user_id: id, column }).unwrap()
    };
    NewUser {
        id,
        account_key: SpotifyAccountKey::new(format!("acct-{n}")).unwrap(),
        spotify_id: SpotifyUserId::new(format!("listener{n}")).unwrap(),
        display_name: Some(DisplayName::new(format!("Listener {n}")).unwrap()),
        subscription: Subscription {
            status: PremiumStatus::Premium,
            product: Some("premium".into()),
            source: PremiumSource::Profile,
            checked_at: Some(now),
        },
        tokens: NewTokens {
            access_token: token(TokenColumn::Access),
            refresh_token: token(TokenColumn::Refresh),
            access_expires_at: now.plus(Duration::from_secs(3600)),
            refresh_expires_at: now.plus(Duration::from_secs(184 * 86400)),
            scopes: Scopes::parse("streaming user-read-email user-read-private user-modify-playback-state"),
        },
        now,
    }
}

fn session(n: u32, now: Timestamp) -> NewSession {
    NewSession {
        id: SessionId::from_bytes(id_bytes(n, 2)),
        user_id: UserId::from_bytes(id_bytes(n, 1)),
        token_id_hash: TokenIdHash::from_bytes({
            let mut h = [7u8; 32];
            h[..4].copy_from_slice(&n.to_be_bytes());
            h
        }),
        created_at: now,
        expires_at: now.plus(Duration::from_secs(30 * 86400)),
        token_expires_at: now.plus(Duration::from_secs(86400)),
        meta: SessionMeta::new(
            Some("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"),
            Some("2001:db8::1".into()),
        ),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut steps: Vec<u32> = std::env::args().skip(1).map(|a| a.parse().expect("a number of sessions")).collect();
    if steps.is_empty() {
        steps = vec![10_000, 100_000];
    }
    let total = steps.iter().copied().max().unwrap_or(0);
    let dir = spotauth_testkit::TempDir::new("spotauth-cache-memory");
    let store = SqliteStore::open(&dir.path().join("memory.db"), SqliteSettings::default()).await.unwrap();
    let repos = store.repositories();
    let keys = spotauth_testkit::keyring();
    let now = Timestamp::from_unix_millis(
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap(),
    );
    let seeding = Instant::now();
    for n in 0..total {
        repos.users.insert(user(n, now, &keys)).await.unwrap();
        repos.sessions.create(session(n, now)).await.unwrap();
    }
    eprintln!("seeded {total} users and sessions in {:.1} s", seeding.elapsed().as_secs_f64());
    for n in 0..total {
        repos.sessions.load_view(SessionId::from_bytes(id_bytes(n, 2)), Freshness::Latest).await.unwrap();
    }
    let inner = Stores { users: repos.users, tokens: repos.tokens, sessions: repos.sessions, players: repos.players };
    // Room to spare: quick_cache starts evicting a little below its nominal capacity.
    let settings = CacheSettings { staleness: Duration::from_secs(1), capacity: 2 * total as usize, shared: false };
    let (cache, cached) = SessionCache::wrap(inner, settings);
    let base = rss_kib();
    let mut filled = 0;
    println!("| sessions cached | resident memory added | per session |\n|--:|--:|--:|");
    for step in steps {
        for n in filled..step {
            cached.sessions.load_view(SessionId::from_bytes(id_bytes(n, 2)), Freshness::Cached).await.unwrap();
        }
        filled = step;
        let added = rss_kib().saturating_sub(base);
        assert_eq!(cache.stats().sessions, u64::from(step));
        println!("| {step} | {:.1} MiB | {:.2} KiB |", added as f64 / 1024.0, added as f64 / f64::from(step));
    }
}
