//! The MySQL store against the real MariaDB/MySQL at `TEST_DATABASE_URL`
//! (default `mysql://root@127.0.0.1:3306`). Each test creates a fresh database and drops it;
//! without a server every test fails (never skips).
//!
//! The repository semantics are the shared contract of `spotauth-testkit` (run here by
//! `contract_tests!` over a MySQL fixture, and by the SQLite store over its own); this file
//! adds only what is MySQL-specific: migrations (with the conversion of existing rows to Unix
//! milliseconds), the information_schema, TLS, bad URLs.
// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl};
use spotauth_domain::ports::Freshness;
use spotauth_domain::user::{PremiumStatus, Subscription};
use spotauth_mysql::{DatabaseUrl, MysqlStore, PoolSettings, Repositories, StoreError};
use spotauth_testkit::contract::{RawBytes, new_user};
use spotauth_testkit::{StoreFixture, TestDb};

/// Every migration in `migrations/mysql`.
const MIGRATION_COUNT: usize = 8;
/// Every table the migrations create.
const TABLES: &str = "('spotify_users','user_sessions','oauth_login_flows','spotify_rate_limits')";

/// A fresh database and a store on it. Field order: the pool closes before the database goes.
struct MysqlDb {
    store: MysqlStore,
    db: TestDb,
}

impl MysqlDb {
    async fn new() -> Self {
        let db = TestDb::create().await;
        let store = MysqlStore::connect(DatabaseUrl::parse(db.url()).unwrap(), PoolSettings::default()).await.unwrap();
        MysqlDb { store, db }
    }

    async fn migrated() -> Self {
        let db = Self::new().await;
        db.store.run_migrations(|_| {}).await.unwrap();
        db
    }

    /// A connection of our own, past the store.
    async fn raw(&self) -> AsyncMysqlConnection {
        AsyncMysqlConnection::establish(self.db.url()).await.unwrap()
    }

    /// Runs raw statements (`;`-separated), past the store.
    async fn execute(&self, sql: &str) {
        use diesel_async::SimpleAsyncConnection as _;
        self.raw().await.batch_execute(sql).await.unwrap();
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// `SELECT COUNT(*) AS n …`, with `{db}` standing for the database's name.
async fn count(db: &MysqlDb, sql: &str) -> i64 {
    let rows: Vec<Count> =
        diesel::sql_query(sql.replace("{db}", db.db.name())).load(&mut db.raw().await).await.unwrap();
    rows[0].n
}

/// The contract fixture: a fresh migrated database per test, dropped with it.
#[async_trait]
impl StoreFixture for MysqlDb {
    fn repositories(&self) -> Repositories {
        self.store.repositories()
    }

    async fn raw_bytes(&self, sql: &str) -> Vec<Option<Vec<u8>>> {
        let rows: Vec<RawBytes> = diesel::sql_query(sql).load(&mut self.raw().await).await.unwrap();
        rows.into_iter().map(|r| r.v).collect()
    }
}

spotauth_testkit::contract_tests!(MysqlDb::migrated);

mod migrations {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn apply_revert_reapply() {
        let db = MysqlDb::new().await;
        let printed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let p = printed.clone();
        let applied = db.store.run_migrations(move |n| p.lock().unwrap().push(n.to_owned())).await.unwrap();
        assert_eq!(applied.len(), MIGRATION_COUNT);
        assert_eq!(*printed.lock().unwrap(), applied);
        let tables = format!(
            "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{{db}}' AND TABLE_NAME IN {TABLES}"
        );
        let tables = tables.as_str();
        assert_eq!(count(&db, tables).await, 4);
        assert!(db.store.pending_migrations().await.unwrap().is_empty());
        // Idempotent: nothing pending, nothing applied.
        assert!(db.store.run_migrations(|_| {}).await.unwrap().is_empty());

        let reverted = db.store.revert_all_migrations(|_| {}).await.unwrap();
        assert_eq!(reverted.len(), MIGRATION_COUNT);
        let newest_first: Vec<_> = applied.iter().rev().cloned().collect();
        assert_eq!(reverted, newest_first, "newest first");
        assert_eq!(count(&db, tables).await, 0);
        assert_eq!(db.store.pending_migrations().await.unwrap().len(), MIGRATION_COUNT);

        assert_eq!(db.store.run_migrations(|_| {}).await.unwrap(), applied);
        assert_eq!(count(&db, tables).await, 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn schema_is_planetscale_compatible_documented_and_the_sqlite_one() {
        let db = MysqlDb::migrated().await;
        let fks =
            "SELECT COUNT(*) AS n FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = '{db}'";
        assert_eq!(count(&db, fks).await, 0, "no FOREIGN KEY constraints (PlanetScale/Vitess)");
        let ours = "TABLE_SCHEMA = '{db}' AND TABLE_NAME <> '__diesel_schema_migrations'";
        let uncommented =
            format!("SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE {ours} AND COLUMN_COMMENT = ''");
        assert_eq!(count(&db, &uncommented).await, 0, "every column carries a comment");
        let not_utf8mb4 = format!(
            "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE {ours} AND TABLE_COLLATION NOT LIKE 'utf8mb4%'"
        );
        assert_eq!(count(&db, &not_utf8mb4).await, 0);
        // The schema spotauth-sql shares with SQLite: times are BIGINT Unix ms, the version signed.
        let datetimes = format!(
            "SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE {ours} AND DATA_TYPE IN ('datetime', 'timestamp')"
        );
        assert_eq!(count(&db, &datetimes).await, 0, "no DATETIME column is left");
        let millis = format!(
            "SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE {ours} AND DATA_TYPE = 'bigint' AND COLUMN_TYPE NOT LIKE '%unsigned%' AND (COLUMN_NAME LIKE '%\\_at' OR COLUMN_NAME IN ('token_expiry', 'refresh_lease_until', 'last_active', 'backoff_until', 'token_version'))"
        );
        assert_eq!(count(&db, &millis).await, 20, "19 times and token_version as signed BIGINT");
        let jwt_column =
            format!("SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE {ours} AND COLUMN_NAME LIKE '%jwt%'");
        assert_eq!(count(&db, &jwt_column).await, 0, "sessions store a token-id hash, never the JWT");
        let state_column = "SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = 'oauth_login_flows' AND COLUMN_NAME = 'state'";
        assert_eq!(count(&db, state_column).await, 0, "login flows store a state digest, never the state");
        for (idx, columns) in [
            ("uq_spotify_users_account_key", 1),
            ("idx_spotify_users_spotify_id", 1),
            ("idx_spotify_users_token_expiry", 1),
            ("idx_spotify_users_active_last_active", 2),
            ("idx_spotify_users_last_active", 1),
            ("idx_user_sessions_user_liveness", 5),
            ("uq_user_sessions_token_id_hash", 1),
            ("idx_user_sessions_expires_at", 1),
            ("idx_oauth_login_flows_expires_at", 1),
            ("idx_oauth_login_flows_client_pending", 3),
            ("idx_oauth_login_flows_pending", 2),
        ] {
            let q = format!(
                "SELECT COUNT(*) AS n FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = '{{db}}' AND INDEX_NAME = '{idx}'"
            );
            assert_eq!(count(&db, &q).await, columns, "index {idx} on all its columns");
        }
    }
}

/// The migration to Unix milliseconds on a database that holds data: rows of every table are
/// written in the OLD schema (DATETIME(3) columns, by raw SQL), the migration runs, and the
/// repositories read every time back exactly to the millisecond; reverting it restores the
/// DATETIME values exactly.
mod unix_millis_migration {
    use diesel::migration::MigrationSource;
    use diesel::mysql::Mysql;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
    use diesel_migrations::MigrationHarness;
    use spotauth_crypto::Sha256Digests;
    use spotauth_domain::ids::{SessionId, UserId};
    use spotauth_domain::login::{ConsumeOutcome, LoginFlow, ReturnTo};
    use spotauth_domain::ports::{Digests, LeaseOutcome};
    use spotauth_domain::secret::OAuthState;
    use spotauth_domain::session::{Session, SessionMeta, SessionOwner, SessionView, TokenIdHash};
    use spotauth_domain::time::Timestamp;
    use spotauth_domain::token::{EncryptedToken, Scopes, StoredTokens, TokenVersion};
    use spotauth_domain::user::{DisplayName, PremiumSource, SpotifyAccountKey, SpotifyUserId, User};
    use spotauth_mysql::MIGRATIONS;

    use super::*;

    /// The last migration before times became milliseconds.
    const OLD_SCHEMA: &str = "20261127000004";

    /// Distinct instants, each with a millisecond part, around 2027.
    fn t(n: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000 + n * 3_600_123 + 7)
    }

    /// A DATETIME(3) literal of `t` in UTC (what the old store wrote).
    fn dt(t: Timestamp) -> String {
        let at = chrono::DateTime::from_timestamp_millis(t.unix_millis()).unwrap().naive_utc();
        format!("'{}'", at.format("%Y-%m-%d %H:%M:%S%.3f"))
    }

    fn id(n: u8) -> UserId {
        UserId::from_bytes([n; 16])
    }

    fn sid(n: u8) -> SessionId {
        SessionId::from_bytes([n; 16])
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn digest(state: &str) -> spotauth_domain::login::StateDigest {
        Sha256Digests.oauth_state(&OAuthState::new(state).unwrap())
    }

    /// Runs the harness on a connection of its own, on a blocking thread.
    async fn harness<R: Send + 'static>(
        db: &MysqlDb,
        f: impl FnOnce(&mut AsyncConnectionWrapper<AsyncMysqlConnection>) -> R + Send + 'static,
    ) -> R {
        let conn = db.raw().await;
        tokio::task::spawn_blocking(move || f(&mut AsyncConnectionWrapper::from(conn))).await.unwrap()
    }

    /// Applies the migrations up to the old schema only.
    async fn migrate_to_old_schema(db: &MysqlDb) {
        harness(db, |conn| {
            assert!(conn.applied_migrations().unwrap().is_empty(), "a fresh database"); // creates the table
            let mut all = MigrationSource::<Mysql>::migrations(&MIGRATIONS).unwrap();
            all.sort_by_key(|m| m.name().version().to_string());
            for m in all.iter().filter(|m| m.name().version().to_string().as_str() <= OLD_SCHEMA) {
                conn.run_migration(&**m).unwrap();
            }
        })
        .await;
        assert_eq!(db.store.pending_migrations().await.unwrap().len(), 4, "only the conversion and later are pending");
    }

    /// User 1 connected (with a live refresh lease), user 2 disconnected and inactive with an
    /// unknown Premium status, user 3 needing re-authorization; two sessions of user 1 (one
    /// revoked); an unused and a used login flow; one rate-limit backoff.
    async fn write_old_rows(db: &MysqlDb) {
        db.execute(&format!(
            "INSERT INTO spotify_users (id, spotify_account_key, spotify_id, display_name, access_token, refresh_token, \
               token_expiry, refresh_token_expires_at, token_scopes, token_version, reauth_required, \
               refresh_lease_holder, refresh_lease_until, is_active, is_premium, premium_product, premium_source, \
               premium_checked_at, created_at, last_active) VALUES \
             ('{u1}', 'acct-1', 'user1', 'Old Ñame', x'0a0b0c', x'0d0e0f', {t1}, {t2}, 'streaming user-read-email', 3, FALSE, \
               'holder-a', {t3}, TRUE, TRUE, 'premium', 'profile', {t4}, {t5}, {t6}), \
             ('{u2}', 'acct-2', 'user2', NULL, NULL, NULL, NULL, NULL, NULL, 5, FALSE, NULL, NULL, FALSE, NULL, NULL, 'none', \
               NULL, {t7}, {t8}), \
             ('{u3}', 'acct-3', 'user3', NULL, x'01', x'02', {t9}, {t10}, 'streaming', 8, TRUE, NULL, NULL, TRUE, FALSE, \
               'free', 'player_probe', {t11}, {t12}, {t13}); \
             INSERT INTO user_sessions (id, user_id, token_id_hash, created_at, last_active, expires_at, revoked_at, \
               user_agent, ip_address) VALUES \
             ('{s1}', '{u1}', x'{h1}', {t14}, {t15}, {t16}, NULL, 'Mozilla/5.0', '192.0.2.1'), \
             ('{s2}', '{u1}', x'{h2}', {t17}, {t18}, {t19}, {t20}, NULL, NULL); \
             INSERT INTO oauth_login_flows (state_hash, return_to, created_at, expires_at, used_at) VALUES \
             (x'{f1}', '/rooms/7', {t21}, {t22}, NULL), (x'{f2}', NULL, {t23}, {t24}, {t25}); \
             INSERT INTO spotify_rate_limits (client_id, backoff_until, updated_at) VALUES ('client-a', {t26}, {t27})",
            u1 = id(1),
            u2 = id(2),
            u3 = id(3),
            s1 = sid(1),
            s2 = sid(2),
            h1 = hex(&[0x11; 32]),
            h2 = hex(&[0x22; 32]),
            f1 = hex(digest("old-state-1").as_bytes()),
            f2 = hex(digest("old-state-2").as_bytes()),
            t1 = dt(t(1)),
            t2 = dt(t(2)),
            t3 = dt(t(3)),
            t4 = dt(t(4)),
            t5 = dt(t(5)),
            t6 = dt(t(6)),
            t7 = dt(t(7)),
            t8 = dt(t(8)),
            t9 = dt(t(9)),
            t10 = dt(t(10)),
            t11 = dt(t(11)),
            t12 = dt(t(12)),
            t13 = dt(t(13)),
            t14 = dt(t(14)),
            t15 = dt(t(15)),
            t16 = dt(t(16)),
            t17 = dt(t(17)),
            t18 = dt(t(18)),
            t19 = dt(t(19)),
            t20 = dt(t(20)),
            t21 = dt(t(21)),
            t22 = dt(t(22)),
            t23 = dt(t(23)),
            t24 = dt(t(24)),
            t25 = dt(t(25)),
            t26 = dt(t(26)),
            t27 = dt(t(27)),
        ))
        .await;
    }

    fn user(n: u8, display_name: Option<&str>, subscription: Subscription, times: (i64, i64)) -> User {
        User {
            id: id(n),
            account_key: SpotifyAccountKey::new(format!("acct-{n}")).unwrap(),
            spotify_id: SpotifyUserId::new(format!("user{n}")).unwrap(),
            display_name: display_name.map(|d| DisplayName::new(d).unwrap()),
            subscription,
            is_active: n != 2,
            created_at: t(times.0),
            last_active: t(times.1),
            reauth_required: n == 3,
            has_tokens: n != 2,
        }
    }

    /// Every row, read back through the repositories (reads only).
    async fn check_rows_read_back(r: &Repositories) {
        let premium = Subscription {
            status: PremiumStatus::Premium,
            product: Some("premium".into()),
            source: PremiumSource::Profile,
            checked_at: Some(t(4)),
        };
        let u1 = user(1, Some("Old Ñame"), premium, (5, 6));
        assert_eq!(r.users.get(id(1)).await.unwrap().as_ref(), Some(&u1));
        let tokens1 = StoredTokens {
            access_token: EncryptedToken::from_bytes(vec![0x0a, 0x0b, 0x0c]),
            refresh_token: EncryptedToken::from_bytes(vec![0x0d, 0x0e, 0x0f]),
            access_expires_at: t(1),
            refresh_expires_at: t(2),
            scopes: Scopes::parse("streaming user-read-email"),
            version: TokenVersion(3),
            reauth_required: false,
        };
        assert_eq!(r.tokens.load_tokens(id(1)).await.unwrap().as_ref(), Some(&tokens1));

        let u2 = user(2, None, Subscription::unknown(), (7, 8));
        assert_eq!(r.users.get(id(2)).await.unwrap(), Some(u2));
        assert_eq!(r.tokens.load_tokens(id(2)).await.unwrap(), None, "disconnected");

        let free = Subscription {
            status: PremiumStatus::Free,
            product: Some("free".into()),
            source: PremiumSource::PlayerProbe,
            checked_at: Some(t(11)),
        };
        assert_eq!(r.users.get(id(3)).await.unwrap(), Some(user(3, None, free, (12, 13))));
        let tokens3 = r.tokens.load_tokens(id(3)).await.unwrap().unwrap();
        assert_eq!((tokens3.access_expires_at, tokens3.refresh_expires_at), (t(9), t(10)));
        assert!(tokens3.reauth_required);
        assert_eq!(tokens3.version, TokenVersion(8));

        let s1 = Session {
            id: sid(1),
            user_id: id(1),
            token_id_hash: TokenIdHash::from_bytes([0x11; 32]),
            created_at: t(14),
            last_active: t(15),
            expires_at: t(16),
            revoked_at: None,
            previous_token_id_hash: None,
            rotated_at: None,
            token_expires_at: None,
            meta: SessionMeta { user_agent: Some("Mozilla/5.0".into()), ip_address: Some("192.0.2.1".into()) },
        };
        assert_eq!(
            r.sessions.load_view(sid(1), Freshness::Latest).await.unwrap(),
            Some(SessionView { session: s1, owner: Some(SessionOwner { user: u1, tokens: Some(tokens1) }) })
        );
        let s2 = r.sessions.load_view(sid(2), Freshness::Latest).await.unwrap().unwrap().session;
        assert_eq!((s2.created_at, s2.last_active, s2.expires_at, s2.revoked_at), (t(17), t(18), t(19), Some(t(20))));

        assert_eq!(r.rate_limits.backoff_until("client-a").await.unwrap(), Some(t(26)));
        // Both users and their session rows read back whole (the active list is a query over them).
        assert!(r.users.get(id(2)).await.unwrap().is_some());
    }

    /// The times that only writes reveal: lease end, flow expiry (each to the millisecond).
    async fn check_times_writes_reveal(db: &MysqlDb, r: &Repositories) {
        let ms = Duration::from_millis(1);
        let lease = |at: Timestamp| r.tokens.try_acquire_refresh_lease(id(1), "holder-b", at, Duration::from_secs(5));
        assert_eq!(lease(t(3).minus(ms)).await.unwrap(), LeaseOutcome::Busy, "the old lease runs to its end");
        assert_eq!(lease(t(3)).await.unwrap(), LeaseOutcome::Acquired, "and lapses exactly then");

        let flow =
            LoginFlow { return_to: Some(ReturnTo::new("/rooms/7").unwrap()), created_at: t(21), expires_at: t(22) };
        assert_eq!(r.flows.consume(&digest("old-state-1"), t(22)).await.unwrap(), ConsumeOutcome::Expired);
        assert_eq!(
            r.flows.consume(&digest("old-state-1"), t(22).minus(ms)).await.unwrap(),
            ConsumeOutcome::Consumed(flow)
        );
        assert_eq!(r.flows.consume(&digest("old-state-2"), t(23)).await.unwrap(), ConsumeOutcome::AlreadyUsed);
        let used_at = format!("SELECT COUNT(*) AS n FROM oauth_login_flows WHERE used_at = {}", t(25).unix_millis());
        assert_eq!(count(db, &used_at).await, 1);
        let updated =
            format!("SELECT COUNT(*) AS n FROM spotify_rate_limits WHERE updated_at = {}", t(27).unix_millis());
        assert_eq!(count(db, &updated).await, 1);
    }

    /// After reverting the conversion: every DATETIME(3) holds its old value exactly.
    async fn check_old_values_restored(db: &MysqlDb) {
        let (u1, s2, f2) = (id(1), sid(2), hex(digest("old-state-2").as_bytes()));
        for (table, row, columns) in [
            (
                "spotify_users",
                format!("id = '{u1}'"),
                &[
                    (1, "token_expiry"),
                    (2, "refresh_token_expires_at"),
                    (3, "refresh_lease_until"),
                    (4, "premium_checked_at"),
                    (5, "created_at"),
                    (6, "last_active"),
                ][..],
            ),
            (
                "user_sessions",
                format!("id = '{s2}'"),
                &[(17, "created_at"), (18, "last_active"), (19, "expires_at"), (20, "revoked_at")][..],
            ),
            (
                "oauth_login_flows",
                format!("state_hash = x'{f2}'"),
                &[(23, "created_at"), (24, "expires_at"), (25, "used_at")][..],
            ),
            (
                "spotify_rate_limits",
                "client_id = 'client-a'".to_owned(),
                &[(26, "backoff_until"), (27, "updated_at")][..],
            ),
        ] {
            for (n, column) in columns {
                let q = format!("SELECT COUNT(*) AS n FROM {table} WHERE {row} AND {column} = {}", dt(t(*n)));
                assert_eq!(count(db, &q).await, 1, "{table}.{column}");
            }
        }
        let unsigned = "SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{db}' AND COLUMN_NAME = 'token_version' AND COLUMN_TYPE LIKE '%unsigned%'";
        assert_eq!(count(db, unsigned).await, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_of_the_old_schema_keep_every_time_to_the_millisecond() {
        let db = MysqlDb::new().await;
        migrate_to_old_schema(&db).await;
        write_old_rows(&db).await;

        let applied = db.store.run_migrations(|_| {}).await.unwrap();
        assert_eq!(
            applied,
            [
                "2026-12-01-000005_times_as_unix_millis",
                "2026-12-03-000006_rotation_grace_and_login_clients",
                "2026-12-03-000007_room_players_and_changes",
                "2026-12-04-000008_auth_changes"
            ]
        );
        let r = db.store.repositories();
        check_rows_read_back(&r).await;

        // Down (000008, 000007, 000006, then the conversion) and up again: no value moves.
        harness(&db, |conn| {
            for _ in 0..4 {
                conn.revert_last_migration(MIGRATIONS).map(|_| ()).unwrap();
            }
        })
        .await;
        check_old_values_restored(&db).await;
        db.store.run_migrations(|_| {}).await.unwrap();
        check_rows_read_back(&r).await;
        check_times_writes_reveal(&db, &r).await;
    }
}

mod mysql_specific {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_premium_is_stored_as_null() {
        let db = MysqlDb::migrated().await;
        let mut n = new_user(3, PremiumStatus::Unknown);
        n.subscription = Subscription::unknown();
        db.store.repositories().users.insert(n).await.unwrap();
        let q = "SELECT COUNT(*) AS n FROM spotify_users WHERE is_premium IS NULL";
        assert_eq!(count(&db, q).await, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn health_pings_and_describes_the_store_without_the_password() {
        let db = MysqlDb::migrated().await;
        let health = db.store.repositories().health;
        health.ping().await.unwrap();
        assert_eq!(health.describe(), format!("MySQL {}", db.store.url()));
        assert!(health.describe().starts_with("MySQL mysql://"), "{}", health.describe());
        let url = DatabaseUrl::parse("mysql://u:hunter2@127.0.0.1:1/db?ssl-mode=DISABLED").unwrap();
        assert_eq!(url.to_string(), "mysql://u:***@127.0.0.1:1/db", "what describe() shows");
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
        let mut u = url::Url::parse(&TestDb::server_url()).unwrap();
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
        let mut admin = AsyncMysqlConnection::establish(&TestDb::server_url()).await.unwrap();
        let rows: Vec<HaveSsl> = diesel::sql_query("SELECT @@have_ssl AS v").load(&mut admin).await.unwrap();
        let mut u = url::Url::parse(&TestDb::server_url()).unwrap();
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

        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let name = format!("spotauth_tls_{nanos:x}");
        store.execute_admin(&format!("CREATE DATABASE `{name}`")).await.unwrap();
        let url = format!("mysql://tls@127.0.0.1:3307/{name}?ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}");
        let db = MysqlStore::connect(DatabaseUrl::parse(&url).unwrap(), PoolSettings::default()).await.unwrap();
        assert_eq!(db.run_migrations(|_| {}).await.unwrap().len(), MIGRATION_COUNT);
        let users = db.repositories().users;
        let u = users.insert(new_user(1, PremiumStatus::Premium)).await.unwrap();
        assert_eq!(users.get(u.id).await.unwrap(), Some(u));
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
