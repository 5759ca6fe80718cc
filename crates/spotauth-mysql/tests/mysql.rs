//! The MySQL adapter against the real MariaDB/MySQL at `TEST_DATABASE_URL`
//! (default `mysql://root@127.0.0.1:3306/test`). Each test creates a fresh database and drops it.
//!
//! The repository semantics are the shared contract of `spotauth-store-contract` (run here by
//! `contract_tests!` over a MySQL fixture, and by the SQLite adapter over its own); this file
//! adds only what is MySQL-specific: migrations, the information_schema, TLS, bad URLs.
// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl};
use spotauth_domain::ids::UserId;
use spotauth_domain::ports::UserRepository;
use spotauth_domain::user::{PremiumStatus, Subscription};
use spotauth_mysql::{
    DatabaseUrl, MysqlLoginFlows, MysqlRateLimits, MysqlSessions, MysqlStore, MysqlUsers, PoolSettings, StoreError,
};
use spotauth_store_contract::{StoreFixture, new_user};

/// Every migration in `migrations/mysql`.
const MIGRATION_COUNT: usize = 4;
/// Every table the migrations create.
const TABLES: &str = "('spotify_users','user_sessions','oauth_login_flows','spotify_rate_limits')";

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

/// The contract fixture: a fresh migrated database per test, dropped with it.
#[async_trait]
impl StoreFixture for TestDb {
    type Users = MysqlUsers;
    type Sessions = MysqlSessions;
    type Flows = MysqlLoginFlows;
    type RateLimits = MysqlRateLimits;

    fn users(&self) -> Arc<MysqlUsers> {
        Arc::new(self.store.users())
    }

    fn sessions(&self) -> Arc<MysqlSessions> {
        Arc::new(self.store.sessions())
    }

    fn login_flows(&self) -> Arc<MysqlLoginFlows> {
        Arc::new(self.store.login_flows())
    }

    fn rate_limits(&self) -> Arc<MysqlRateLimits> {
        Arc::new(self.store.rate_limits())
    }

    async fn raw_token_columns(&self, id: UserId) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Binary>)]
            access_token: Option<Vec<u8>>,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Binary>)]
            refresh_token: Option<Vec<u8>>,
        }
        let mut conn = AsyncMysqlConnection::establish(&self.url).await.unwrap();
        let rows: Vec<Row> = diesel::sql_query("SELECT access_token, refresh_token FROM spotify_users WHERE id = ?")
            .bind::<diesel::sql_types::Text, _>(id.to_string())
            .load(&mut conn)
            .await
            .unwrap();
        let row = rows.into_iter().next().unwrap();
        (row.access_token, row.refresh_token)
    }

    async fn raw_login_flow_keys(&self) -> Vec<Vec<u8>> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Binary)]
            state_hash: Vec<u8>,
        }
        let mut conn = AsyncMysqlConnection::establish(&self.url).await.unwrap();
        let rows: Vec<Row> =
            diesel::sql_query("SELECT state_hash FROM oauth_login_flows").load(&mut conn).await.unwrap();
        rows.into_iter().map(|r| r.state_hash).collect()
    }
}

spotauth_store_contract::contract_tests!(TestDb::migrated);

mod migrations {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn apply_revert_reapply() {
        let db = TestDb::new().await;
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
        let state_column = "SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = 'oauth_login_flows' AND COLUMN_NAME = 'state'";
        assert_eq!(count(&db, state_column).await, 0, "login flows store a state digest, never the state");
        for idx in [
            "uq_spotify_users_account_key",
            "idx_spotify_users_spotify_id",
            "idx_spotify_users_token_expiry",
            "idx_spotify_users_active_last_active",
            "idx_user_sessions_user_id",
            "uq_user_sessions_token_id_hash",
            "idx_user_sessions_expires_at",
            "idx_oauth_login_flows_expires_at",
        ] {
            let q = format!(
                "SELECT COUNT(*) AS n FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = '{{db}}' AND INDEX_NAME = '{idx}'"
            );
            assert!(count(&db, &q).await > 0, "index {idx}");
        }
    }
}

mod mysql_specific {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_premium_is_stored_as_null() {
        let db = TestDb::migrated().await;
        let mut n = new_user(3, PremiumStatus::Unknown);
        n.subscription = Subscription::unknown();
        db.store.users().insert(n).await.unwrap();
        let q = "SELECT COUNT(*) AS n FROM spotify_users WHERE is_premium IS NULL";
        assert_eq!(count(&db, q).await, 1);
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
        assert_eq!(db.run_migrations(|_| {}).await.unwrap().len(), MIGRATION_COUNT);
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
