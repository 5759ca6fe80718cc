//! The MySQL adapter against the real MariaDB/MySQL at `TEST_DATABASE_URL`
//! (default `mysql://root@127.0.0.1:3306/test`). Each test creates a fresh database and drops it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl};
use spotauth_crypto::TokenKeyring;
use spotauth_domain::ids::{SessionId, UserId};
use spotauth_domain::ports::{
    LeaseOutcome, LoginUpdate, NewUser, RepoError, SessionRepository, TokenCipher, UserRepository,
};
use spotauth_domain::session::{NewSession, SessionMeta, TokenIdHash};
use spotauth_domain::time::Timestamp;
use spotauth_domain::token::{
    EncryptedToken, NewTokens, RefreshedTokens, Scopes, TokenBinding, TokenColumn, TokenVersion,
};
use spotauth_domain::user::{
    DisplayName, PageRequest, PremiumSource, PremiumStatus, SpotifyAccountKey, SpotifyUserId, Subscription,
};
use spotauth_mysql::{DatabaseUrl, MysqlStore, PoolSettings, StoreError};

fn base_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// A fresh database, dropped when the guard goes (even when the test panics).
struct TestDb {
    name: String,
    url: String,
    store: MysqlStore,
}

async fn admin() -> AsyncMysqlConnection {
    AsyncMysqlConnection::establish(&base_url()).await.expect("TEST_DATABASE_URL must reach a MySQL/MariaDB server")
}

impl TestDb {
    async fn new() -> Self {
        let name = format!("spotauth_t_{}", uuid_like());
        diesel::sql_query(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            .execute(&mut admin().await)
            .await
            .unwrap();
        let mut url = url::Url::parse(&base_url()).unwrap();
        url.set_path(&name);
        let url = url.to_string();
        let store = MysqlStore::connect(DatabaseUrl::parse(&url).unwrap(), PoolSettings::default()).await.unwrap();
        TestDb { name, url, store }
    }

    async fn migrated() -> Self {
        let db = Self::new().await;
        db.store.run_migrations(|_| {}).await.unwrap();
        db
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop from a separate thread with its own runtime: Drop cannot await.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let _ =
                    diesel::sql_query(format!("DROP DATABASE IF EXISTS `{name}`")).execute(&mut admin().await).await;
            });
        })
        .join();
    }
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{:x}{:04x}", nanos, std::process::id() & 0xffff)
}

const NOW: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

fn keyring() -> TokenKeyring {
    use base64::Engine as _;
    TokenKeyring::from_config(&format!("k1:{}", base64::engine::general_purpose::STANDARD.encode([5u8; 32]))).unwrap()
}

fn new_user(n: u8, premium: PremiumStatus) -> NewUser {
    let id = UserId::from_bytes([n; 16]);
    let c = keyring();
    NewUser {
        id,
        account_key: SpotifyAccountKey::new(format!("acct-{n}")).unwrap(),
        spotify_id: SpotifyUserId::new(format!("user{n}")).unwrap(),
        display_name: Some(DisplayName::new(format!("User ñ {n} 🎵")).unwrap()),
        subscription: Subscription {
            status: premium,
            product: premium.as_option().map(|p| if p { "premium".into() } else { "free".into() }),
            source: PremiumSource::Profile,
            checked_at: Some(NOW),
        },
        tokens: NewTokens {
            access_token: c
                .encrypt(&format!("AT-{n}"), TokenBinding { user_id: id, column: TokenColumn::Access })
                .unwrap(),
            refresh_token: c
                .encrypt(&format!("RT-{n}"), TokenBinding { user_id: id, column: TokenColumn::Refresh })
                .unwrap(),
            access_expires_at: NOW.plus(Duration::from_secs(3600)),
            refresh_expires_at: NOW.plus(Duration::from_secs(184 * 86400)),
            scopes: Scopes::parse("streaming user-read-email user-read-private"),
        },
        now: NOW,
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    let mut conn = AsyncMysqlConnection::establish(&db.url).await.unwrap();
    let rows: Vec<Count> = diesel::sql_query(sql.replace("{db}", &db.name)).load(&mut conn).await.unwrap();
    rows[0].n
}

mod migrations {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn apply_revert_reapply() {
        let db = TestDb::new().await;
        let printed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let p = printed.clone();
        let applied = db.store.run_migrations(move |n| p.lock().unwrap().push(n.to_owned())).await.unwrap();
        assert_eq!(applied.len(), 2);
        assert_eq!(*printed.lock().unwrap(), applied);
        let tables = "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME IN ('spotify_users','user_sessions')";
        assert_eq!(count(&db, tables).await, 2);
        assert!(db.store.pending_migrations().await.unwrap().is_empty());
        // Idempotent: nothing pending, nothing applied.
        assert!(db.store.run_migrations(|_| {}).await.unwrap().is_empty());

        let reverted = db.store.revert_all_migrations(|_| {}).await.unwrap();
        assert_eq!(reverted.len(), 2);
        assert_eq!(reverted[0], applied[1], "newest first");
        assert_eq!(count(&db, tables).await, 0);
        assert_eq!(db.store.pending_migrations().await.unwrap().len(), 2);

        assert_eq!(db.store.run_migrations(|_| {}).await.unwrap(), applied);
        assert_eq!(count(&db, tables).await, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn schema_is_planetscale_compatible_and_documented() {
        let db = TestDb::migrated().await;
        let fks =
            "SELECT COUNT(*) AS n FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = '{db}'";
        assert_eq!(count(&db, fks).await, 0, "no FOREIGN KEY constraints (PlanetScale/Vitess)");
        let uncommented = "SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME <> '__diesel_schema_migrations' AND COLUMN_COMMENT = ''";
        assert_eq!(count(&db, uncommented).await, 0, "every column carries a comment");
        let not_utf8mb4 = "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME <> '__diesel_schema_migrations' AND TABLE_COLLATION NOT LIKE 'utf8mb4%'";
        assert_eq!(count(&db, not_utf8mb4).await, 0);
        let jwt_column = "SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{db}' AND COLUMN_NAME LIKE '%jwt%'";
        assert_eq!(count(&db, jwt_column).await, 0, "sessions store a token-id hash, never the JWT");
        for idx in [
            "uq_spotify_users_account_key",
            "idx_spotify_users_spotify_id",
            "idx_spotify_users_active_last_active",
            "idx_user_sessions_user_id",
            "uq_user_sessions_token_id_hash",
            "idx_user_sessions_expires_at",
        ] {
            let q = format!(
                "SELECT COUNT(*) AS n FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = '{{db}}' AND INDEX_NAME = '{idx}'"
            );
            assert!(count(&db, &q).await > 0, "index {idx}");
        }
    }
}

mod users {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn insert_get_find_and_account_key_conflict() {
        let db = TestDb::migrated().await;
        let s = &db.store.users();
        let u = s.insert(new_user(1, PremiumStatus::Premium)).await.unwrap();
        assert_eq!(u.id, UserId::from_bytes([1; 16]));
        assert_eq!(u.display_name.as_ref().unwrap().as_str(), "User ñ 1 🎵");
        assert_eq!(u.subscription.status, PremiumStatus::Premium);
        assert_eq!(u.subscription.checked_at, Some(NOW));
        assert!(u.is_active && u.has_tokens && !u.reauth_required);
        assert_eq!(s.get(u.id).await.unwrap(), Some(u.clone()));
        assert_eq!(s.find_by_account_key(&u.account_key).await.unwrap(), Some(u.clone()));
        assert_eq!(
            s.find_by_account_key(&SpotifyAccountKey::new("ACCT-1").unwrap()).await.unwrap(),
            None,
            "keys are case-sensitive"
        );
        assert_eq!(s.get(UserId::from_bytes([9; 16])).await.unwrap(), None);

        let mut dup = new_user(2, PremiumStatus::Free);
        dup.account_key = u.account_key.clone();
        assert_eq!(s.insert(dup).await.unwrap_err(), RepoError::Conflict("account key"));
        let mut same_id = new_user(1, PremiumStatus::Free);
        same_id.account_key = SpotifyAccountKey::new("other").unwrap();
        assert_eq!(s.insert(same_id).await.unwrap_err(), RepoError::Conflict("user id"));
        // Nothing stored was lost.
        assert_eq!(s.get(u.id).await.unwrap(), Some(u));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_premium_round_trips_as_null() {
        let db = TestDb::migrated().await;
        let mut n = new_user(3, PremiumStatus::Unknown);
        n.subscription = Subscription::unknown();
        let u = db.store.users().insert(n).await.unwrap();
        assert_eq!(u.subscription, Subscription::unknown());
        let q = "SELECT COUNT(*) AS n FROM spotify_users WHERE is_premium IS NULL";
        assert_eq!(count(&db, q).await, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn active_list_pagination_and_toggling() {
        let db = TestDb::migrated().await;
        let s = &db.store.users();
        for n in 1..=5u8 {
            let mut u = new_user(n, PremiumStatus::Premium);
            u.now = NOW.plus(Duration::from_secs(u64::from(n)));
            s.insert(u).await.unwrap();
        }
        s.set_active(UserId::from_bytes([2; 16]), false, NOW.plus(Duration::from_secs(100))).await.unwrap();
        let page = s.list_active(PageRequest::new(0, 2).unwrap()).await.unwrap();
        assert_eq!(page.total, 4);
        let ids: Vec<_> = page.items.iter().map(|u| u.spotify_id.as_str().to_owned()).collect();
        assert_eq!(ids, ["user5", "user4"], "most recently active first");
        let page = s.list_active(PageRequest::new(2, 2).unwrap()).await.unwrap();
        let ids: Vec<_> = page.items.iter().map(|u| u.spotify_id.as_str().to_owned()).collect();
        assert_eq!(ids, ["user3", "user1"]);
        let past = s.list_active(PageRequest::new(10, 2).unwrap()).await.unwrap();
        assert!(past.items.is_empty());
        assert_eq!(past.total, 4);
        let back = s.set_active(UserId::from_bytes([2; 16]), true, NOW.plus(Duration::from_secs(200))).await.unwrap();
        assert!(back.is_active);
        assert_eq!(back.last_active, NOW.plus(Duration::from_secs(200)));
        assert_eq!(s.set_active(UserId::from_bytes([99; 16]), true, NOW).await.unwrap_err(), RepoError::NotFound);
        assert_eq!(s.touch(UserId::from_bytes([99; 16]), NOW).await.unwrap_err(), RepoError::NotFound);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn subscription_is_recorded() {
        let db = TestDb::migrated().await;
        let u = db.store.users().insert(new_user(1, PremiumStatus::Unknown)).await.unwrap();
        let sub = Subscription {
            status: PremiumStatus::Free,
            product: None,
            source: PremiumSource::PlayerProbe,
            checked_at: Some(NOW.plus(Duration::from_secs(5))),
        };
        assert_eq!(db.store.users().record_subscription(u.id, sub.clone()).await.unwrap().subscription, sub);
        assert_eq!(
            db.store.users().record_subscription(UserId::from_bytes([99; 16]), sub).await.unwrap_err(),
            RepoError::NotFound
        );
    }
}

mod tokens {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn columns_hold_ciphertext_bound_to_the_row() {
        let db = TestDb::migrated().await;
        let u = db.store.users().insert(new_user(7, PremiumStatus::Premium)).await.unwrap();
        let plain = "SELECT COUNT(*) AS n FROM spotify_users WHERE INSTR(access_token, 'AT-7') > 0 OR INSTR(refresh_token, 'RT-7') > 0";
        assert_eq!(count(&db, plain).await, 0, "no plaintext token in the table");
        let t = db.store.users().load_tokens(u.id).await.unwrap().unwrap();
        let c = keyring();
        assert_eq!(
            c.decrypt(&t.access_token, TokenBinding { user_id: u.id, column: TokenColumn::Access }).unwrap().expose(),
            "AT-7"
        );
        assert_eq!(
            c.decrypt(&t.refresh_token, TokenBinding { user_id: u.id, column: TokenColumn::Refresh }).unwrap().expose(),
            "RT-7"
        );
        assert_eq!(t.version, TokenVersion(1));
        assert_eq!(t.scopes.to_string(), "streaming user-read-email user-read-private");
        assert_eq!(t.refresh_expires_at, NOW.plus(Duration::from_secs(184 * 86400)));
        assert_eq!(db.store.users().load_tokens(UserId::from_bytes([99; 16])).await.unwrap_err(), RepoError::NotFound);
    }

    fn refreshed(tag: &str, refresh: Option<&str>) -> RefreshedTokens {
        RefreshedTokens {
            access_token: EncryptedToken::from_bytes(format!("AT-{tag}").into_bytes()),
            access_expires_at: NOW.plus(Duration::from_secs(7200)),
            refresh_token: refresh.map(|r| EncryptedToken::from_bytes(r.as_bytes().to_vec())),
            scopes: Scopes::parse("streaming"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refresh_write_is_guarded_and_keeps_the_refresh_token_unless_replaced() {
        let db = TestDb::migrated().await;
        let s = &db.store.users();
        let u = s.insert(new_user(1, PremiumStatus::Premium)).await.unwrap();
        let before = s.load_tokens(u.id).await.unwrap().unwrap();

        assert_eq!(s.store_refreshed(u.id, TokenVersion(1), refreshed("a", None)).await.unwrap(), TokenVersion(2));
        let t = s.load_tokens(u.id).await.unwrap().unwrap();
        assert_eq!(t.access_token.as_bytes(), b"AT-a");
        assert_eq!(t.refresh_token, before.refresh_token, "no refresh_token in the response: the old one stays");
        assert_eq!(t.access_expires_at, NOW.plus(Duration::from_secs(7200)));
        assert_eq!(t.refresh_expires_at, before.refresh_expires_at, "a refresh never extends the 6 months");

        // A writer that read version 1 lost the race: nothing is written.
        assert_eq!(
            s.store_refreshed(u.id, TokenVersion(1), refreshed("stale", Some("RT-stale"))).await.unwrap_err(),
            RepoError::StaleVersion
        );
        assert_eq!(s.load_tokens(u.id).await.unwrap().unwrap(), t);

        s.store_refreshed(u.id, TokenVersion(2), refreshed("b", Some("RT-b"))).await.unwrap();
        let t = s.load_tokens(u.id).await.unwrap().unwrap();
        assert_eq!(
            (t.access_token.as_bytes(), t.refresh_token.as_bytes(), t.version),
            (&b"AT-b"[..], &b"RT-b"[..], TokenVersion(3))
        );
        assert_eq!(
            s.store_refreshed(UserId::from_bytes([99; 16]), TokenVersion(1), refreshed("x", None)).await.unwrap_err(),
            RepoError::NotFound
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_refresh_writes_exactly_one_wins() {
        let db = TestDb::migrated().await;
        let store = Arc::new(db.store.users());
        let u = store.insert(new_user(1, PremiumStatus::Premium)).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store.store_refreshed(u.id, TokenVersion(1), refreshed(&i.to_string(), Some(&format!("RT-{i}")))).await
            }));
        }
        let mut wins = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(v) => wins.push((i, v)),
                Err(e) => assert_eq!(e, RepoError::StaleVersion),
            }
        }
        assert_eq!(wins.len(), 1, "exactly one concurrent writer wins");
        let t = store.load_tokens(u.id).await.unwrap().unwrap();
        let (i, v) = wins[0];
        assert_eq!(t.version, v);
        // Access and refresh token come from the same writer: never half-written.
        assert_eq!(t.access_token.as_bytes(), format!("AT-{i}").as_bytes());
        assert_eq!(t.refresh_token.as_bytes(), format!("RT-{i}").as_bytes());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reauth_mark_delete_and_relogin() {
        let db = TestDb::migrated().await;
        let s = &db.store.users();
        let u = s.insert(new_user(1, PremiumStatus::Premium)).await.unwrap();
        assert_eq!(s.mark_reauth_required(u.id, TokenVersion(0)).await.unwrap_err(), RepoError::StaleVersion);
        s.mark_reauth_required(u.id, TokenVersion(1)).await.unwrap();
        let t = s.load_tokens(u.id).await.unwrap().unwrap();
        assert!(t.reauth_required);
        assert!(s.get(u.id).await.unwrap().unwrap().reauth_required);

        let relogin = new_user(1, PremiumStatus::Free);
        let after = s
            .update_on_login(
                u.id,
                LoginUpdate {
                    spotify_id: relogin.spotify_id,
                    display_name: None,
                    subscription: relogin.subscription,
                    tokens: relogin.tokens,
                    now: NOW.plus(Duration::from_secs(60)),
                },
            )
            .await
            .unwrap();
        assert!(!after.reauth_required && after.is_active && after.display_name.is_none());
        assert_eq!(after.subscription.status, PremiumStatus::Free);
        assert_eq!(after.created_at, u.created_at);
        let t = s.load_tokens(u.id).await.unwrap().unwrap();
        assert!(!t.reauth_required);
        assert_eq!(t.version, TokenVersion(3));

        s.delete_tokens(u.id).await.unwrap();
        s.delete_tokens(u.id).await.unwrap();
        assert_eq!(s.load_tokens(u.id).await.unwrap(), None);
        assert!(!s.get(u.id).await.unwrap().unwrap().has_tokens);
        assert_eq!(
            s.store_refreshed(u.id, TokenVersion(4), refreshed("x", None)).await.unwrap_err(),
            RepoError::StaleVersion,
            "no resurrection after disconnect"
        );
        assert_eq!(s.delete_tokens(UserId::from_bytes([99; 16])).await.unwrap_err(), RepoError::NotFound);
        let bad = s
            .update_on_login(
                UserId::from_bytes([99; 16]),
                LoginUpdate {
                    spotify_id: SpotifyUserId::new("x").unwrap(),
                    display_name: None,
                    subscription: Subscription::unknown(),
                    tokens: new_user(9, PremiumStatus::Free).tokens,
                    now: NOW,
                },
            )
            .await;
        assert_eq!(bad.unwrap_err(), RepoError::NotFound);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refresh_lease_excludes_others_until_released_or_expired() {
        let db = TestDb::migrated().await;
        let s = &db.store.users();
        let u = s.insert(new_user(1, PremiumStatus::Premium)).await.unwrap();
        let ttl = Duration::from_secs(10);
        assert_eq!(
            s.try_acquire_refresh_lease(u.id, "a", NOW, ttl).await.unwrap(),
            LeaseOutcome::Acquired { until: NOW.plus(ttl) }
        );
        assert_eq!(
            s.try_acquire_refresh_lease(u.id, "b", NOW.plus(Duration::from_secs(1)), ttl).await.unwrap(),
            LeaseOutcome::Busy { until: NOW.plus(ttl) }
        );
        // Re-entrant for the holder.
        assert!(matches!(
            s.try_acquire_refresh_lease(u.id, "a", NOW.plus(Duration::from_secs(2)), ttl).await.unwrap(),
            LeaseOutcome::Acquired { .. }
        ));
        // A crashed holder's lease lapses.
        assert!(matches!(
            s.try_acquire_refresh_lease(u.id, "b", NOW.plus(Duration::from_secs(13)), ttl).await.unwrap(),
            LeaseOutcome::Acquired { .. }
        ));
        s.release_refresh_lease(u.id, "a").await.unwrap(); // not the holder: no effect
        assert!(matches!(
            s.try_acquire_refresh_lease(u.id, "c", NOW.plus(Duration::from_secs(14)), ttl).await.unwrap(),
            LeaseOutcome::Busy { .. }
        ));
        s.release_refresh_lease(u.id, "b").await.unwrap();
        assert!(matches!(
            s.try_acquire_refresh_lease(u.id, "c", NOW.plus(Duration::from_secs(14)), ttl).await.unwrap(),
            LeaseOutcome::Acquired { .. }
        ));
        assert_eq!(
            s.try_acquire_refresh_lease(UserId::from_bytes([99; 16]), "a", NOW, ttl).await.unwrap_err(),
            RepoError::NotFound
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_lease_requests_grant_exactly_one() {
        let db = TestDb::migrated().await;
        let store = Arc::new(db.store.users());
        let u = store.insert(new_user(1, PremiumStatus::Premium)).await.unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store.try_acquire_refresh_lease(u.id, &format!("h{i}"), NOW, Duration::from_secs(30)).await
                })
            })
            .collect();
        let mut acquired = 0;
        for t in tasks {
            if matches!(t.await.unwrap().unwrap(), LeaseOutcome::Acquired { .. }) {
                acquired += 1;
            }
        }
        assert_eq!(acquired, 1);
    }
}

mod sessions {
    use super::*;

    fn hash(b: u8) -> TokenIdHash {
        TokenIdHash::from_bytes([b; 32])
    }

    fn new_session(id: u8, user: u8) -> NewSession {
        NewSession {
            id: SessionId::from_bytes([id; 16]),
            user_id: UserId::from_bytes([user; 16]),
            token_id_hash: hash(id),
            created_at: NOW,
            expires_at: NOW.plus(Duration::from_secs(86400)),
            meta: SessionMeta::new(Some("Mozilla/5.0 (X11)"), Some("2001:db8::1".into())),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn create_get_rotate_revoke() {
        let db = TestDb::migrated().await;
        let s = &db.store.sessions();
        let created = s.create(new_session(1, 1)).await.unwrap();
        assert_eq!(created.last_active, NOW);
        assert_eq!(created.meta.ip_address.as_deref(), Some("2001:db8::1"));
        assert_eq!(s.get(created.id).await.unwrap(), Some(created.clone()));
        assert_eq!(s.create(new_session(1, 1)).await.unwrap_err(), RepoError::Conflict("session id"));

        let later = NOW.plus(Duration::from_secs(5));
        let rotated = s.rotate(created.id, &hash(1), &hash(2), later).await.unwrap();
        assert_eq!((rotated.token_id_hash.clone(), rotated.last_active), (hash(2), later));
        // The old hash no longer rotates: reuse or a lost race.
        assert_eq!(s.rotate(created.id, &hash(1), &hash(3), later).await.unwrap_err(), RepoError::StaleVersion);
        assert_eq!(
            s.rotate(SessionId::from_bytes([9; 16]), &hash(1), &hash(3), later).await.unwrap_err(),
            RepoError::NotFound
        );

        s.touch(created.id, later.plus(Duration::from_secs(1))).await.unwrap();
        assert_eq!(s.touch(SessionId::from_bytes([9; 16]), later).await.unwrap_err(), RepoError::NotFound);
        s.revoke(created.id, later).await.unwrap();
        s.revoke(created.id, later.plus(Duration::from_secs(9))).await.unwrap();
        s.revoke(SessionId::from_bytes([9; 16]), later).await.unwrap();
        assert_eq!(s.get(created.id).await.unwrap().unwrap().revoked_at, Some(later), "first revocation time kept");
        assert_eq!(
            s.rotate(created.id, &hash(2), &hash(3), later).await.unwrap_err(),
            RepoError::StaleVersion,
            "revoked sessions don't rotate"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_rotation_has_one_winner() {
        let db = TestDb::migrated().await;
        let store = Arc::new(db.store.sessions());
        let sid = store.create(new_session(1, 1)).await.unwrap().id;
        let tasks: Vec<_> = (10..26u8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.rotate(sid, &hash(1), &hash(i), NOW).await })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(e) => assert_eq!(e, RepoError::StaleVersion),
            }
        }
        assert_eq!(ok, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn revoke_all_and_purge() {
        let db = TestDb::migrated().await;
        let s = &db.store.sessions();
        for (id, user) in [(1, 1), (2, 1), (3, 2)] {
            s.create(new_session(id, user)).await.unwrap();
        }
        assert_eq!(s.revoke_all_for_user(UserId::from_bytes([1; 16]), NOW).await.unwrap(), 2);
        assert_eq!(s.revoke_all_for_user(UserId::from_bytes([1; 16]), NOW).await.unwrap(), 0);
        assert!(s.get(SessionId::from_bytes([3; 16])).await.unwrap().unwrap().revoked_at.is_none());
        assert_eq!(s.purge_ended(NOW).await.unwrap(), 0, "revoked exactly at the cutoff is kept");
        assert_eq!(s.purge_ended(NOW.plus(Duration::from_secs(1))).await.unwrap(), 2);
        assert_eq!(s.purge_ended(NOW.plus(Duration::from_secs(86401))).await.unwrap(), 1, "past absolute expiry");
    }
}

mod bad_input {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unreachable_database_is_one_clear_line_without_the_password() {
        let url = DatabaseUrl::parse("mysql://root:hunter2@127.0.0.1:1/nope").unwrap();
        let settings = PoolSettings { max_size: 1, timeout: Duration::from_secs(2) };
        let err = MysqlStore::connect(url, settings).await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, StoreError::Connect { .. }));
        assert!(msg.starts_with("DATABASE_URL: cannot connect to mysql://root:***@127.0.0.1:1/nope"), "{msg}");
        assert!(!msg.contains("hunter2") && !msg.contains('\n'), "{msg}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wrong_password_and_missing_database_are_clear() {
        let mut u = url::Url::parse(&base_url()).unwrap();
        u.set_path("spotauth_does_not_exist");
        let err =
            MysqlStore::connect(DatabaseUrl::parse(u.as_str()).unwrap(), PoolSettings::default()).await.unwrap_err();
        assert!(err.to_string().contains("Unknown database"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_required_against_a_server_without_tls_fails_closed() {
        #[derive(QueryableByName)]
        struct HaveSsl {
            #[diesel(sql_type = diesel::sql_types::Text)]
            v: String,
        }
        let rows: Vec<HaveSsl> = diesel::sql_query("SELECT @@have_ssl AS v").load(&mut admin().await).await.unwrap();
        let mut u = url::Url::parse(&base_url()).unwrap();
        u.set_query(Some("ssl-mode=REQUIRED"));
        let settings = PoolSettings { max_size: 1, timeout: Duration::from_secs(5) };
        let result = MysqlStore::connect(DatabaseUrl::parse(u.as_str()).unwrap(), settings).await;
        if rows[0].v == "YES" {
            assert!(result.unwrap().tls_cipher().await.unwrap().is_some());
        } else {
            // A URL that requires TLS must never fall back to plain TCP.
            let msg = result.unwrap_err().to_string();
            assert!(msg.starts_with("DATABASE_URL: cannot connect"), "{msg}");
        }
    }
}

/// Against a second MariaDB with TLS (self-signed CA, certificate for 127.0.0.1), which
/// `.ci/mariadb-tls.sh` starts when it is not already running.
mod tls {
    use super::*;

    fn tls_server_ca() -> String {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ci/mariadb-tls.sh");
        let out = std::process::Command::new("bash").arg(script).arg("ensure").output().unwrap();
        assert!(out.status.success(), "cannot start the TLS MariaDB: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().lines().last().unwrap().trim().to_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verified_tls_connection_is_encrypted_and_the_store_works_over_it() {
        let ca = tls_server_ca();
        // `tls` is created REQUIRE SSL on that server: the server refuses it over plain TCP.
        let base = format!("mysql://tls@127.0.0.1:3307/test?ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}");
        let store = MysqlStore::connect(DatabaseUrl::parse(&base).unwrap(), PoolSettings::default()).await.unwrap();
        let cipher = store.tls_cipher().await.unwrap();
        assert!(cipher.is_some(), "connection is not encrypted");

        let name = format!("spotauth_tls_{}", uuid_like());
        store.execute_admin(&format!("CREATE DATABASE `{name}`")).await.unwrap();
        let url = format!("mysql://tls@127.0.0.1:3307/{name}?ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}");
        let db = MysqlStore::connect(DatabaseUrl::parse(&url).unwrap(), PoolSettings::default()).await.unwrap();
        assert_eq!(db.run_migrations(|_| {}).await.unwrap().len(), 2);
        let u = db.users().insert(new_user(1, PremiumStatus::Premium)).await.unwrap();
        assert_eq!(db.users().get(u.id).await.unwrap(), Some(u));
        store.execute_admin(&format!("DROP DATABASE `{name}`")).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unknown_certificate_authority_is_refused() {
        let _ca = tls_server_ca();
        // Without our CA, the self-signed chain does not verify against the built-in roots.
        let url = "mysql://tls@127.0.0.1:3307/test?ssl-mode=VERIFY_CA";
        let settings = PoolSettings { max_size: 1, timeout: Duration::from_secs(5) };
        let err = MysqlStore::connect(DatabaseUrl::parse(url).unwrap(), settings).await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("DATABASE_URL: cannot connect") && msg.contains("TLS"), "{msg}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_tls_a_require_ssl_account_is_refused() {
        let _ca = tls_server_ca();
        let url = "mysql://tls@127.0.0.1:3307/test";
        let settings = PoolSettings { max_size: 1, timeout: Duration::from_secs(5) };
        let err = MysqlStore::connect(DatabaseUrl::parse(url).unwrap(), settings).await.unwrap_err();
        assert!(err.to_string().contains("Access denied"), "{err}");
    }
}
