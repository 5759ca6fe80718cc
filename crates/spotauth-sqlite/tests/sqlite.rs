//! The SQLite store: the shared repository contract of `spotauth-testkit` (one fresh
//! database file in a temporary directory per test, removed at its end), plus what is
//! SQLite-specific: concurrent writers, opening, reopening and bad paths.
// Test code: a failed expectation must panic the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use spotauth_domain::token::TokenVersion;
use spotauth_domain::user::{PageRequest, PremiumStatus};
use spotauth_sqlite::{Repositories, SqliteSettings, SqliteStore, StoreError};
use spotauth_testkit::contract::{RawBytes, new_session, new_user, refreshed};
use spotauth_testkit::{StoreFixture, TempDir};

/// A fresh migrated database in its own directory. Field order: the store closes before the
/// directory goes.
struct SqliteDb {
    store: SqliteStore,
    file: PathBuf,
    _dir: TempDir,
}

impl SqliteDb {
    async fn new() -> Self {
        let dir = TempDir::new("spotauth-sqlite");
        let file = dir.path().join("spotauth.sqlite3");
        let store = SqliteStore::open(&file, SqliteSettings::default()).await.unwrap();
        SqliteDb { store, file, _dir: dir }
    }

    /// A raw connection of our own, for looking at what is stored.
    fn raw(&self) -> SqliteConnection {
        SqliteConnection::establish(self.file.to_str().unwrap()).unwrap()
    }
}

#[async_trait]
impl StoreFixture for SqliteDb {
    fn repositories(&self) -> Repositories {
        self.store.repositories()
    }

    async fn raw_bytes(&self, sql: &str) -> Vec<Option<Vec<u8>>> {
        diesel::sql_query(sql).load::<RawBytes>(&mut self.raw()).unwrap().into_iter().map(|r| r.v).collect()
    }
}

spotauth_testkit::contract_tests!(SqliteDb::new);

/// 50 tasks at once, each inserting a user, creating a session and doing a guarded token write:
/// every one succeeds (no "database is locked"), through one store and through two stores on
/// the same file (as two app processes would be).
async fn fifty_writers(stores: &[SqliteStore]) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (1..=50u8)
        .map(|n| {
            let store = stores[usize::from(n) % stores.len()].clone();
            tokio::spawn(async move {
                let r = store.repositories();
                let u = r.users.insert(new_user(n, PremiumStatus::Premium)).await?;
                r.sessions.create(new_session(n, n)).await?;
                let v = r.tokens.store_refreshed(u.id, TokenVersion(1), refreshed(&n.to_string(), None)).await?;
                assert_eq!(v, TokenVersion(2));
                let t = r.tokens.load_tokens(u.id).await?.unwrap();
                assert_eq!(t.access_token.as_bytes(), format!("AT-{n}").as_bytes());
                Ok::<_, spotauth_domain::ports::RepoError>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_writers_all_succeed() {
    // Every writer's user is listed: its user and its session were written.
    async fn listed(store: &SqliteStore) -> u64 {
        let page = PageRequest::new(0, 100).unwrap();
        store.repositories().users.list_active(page, spotauth_testkit::contract::live()).await.unwrap().total
    }
    let db = SqliteDb::new().await;
    let one = fifty_writers(std::slice::from_ref(&db.store)).await;
    assert_eq!(listed(&db.store).await, 50);

    let db2 = SqliteDb::new().await;
    let other = SqliteStore::open(&db2.file, SqliteSettings::default()).await.unwrap();
    assert!(other.migrations_applied_at_open().is_empty());
    let two = fifty_writers(&[db2.store.clone(), other]).await;
    assert_eq!(listed(&db2.store).await, 50);
    println!("50 concurrent writers: {one:?} through one store, {two:?} through two stores on one file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_creates_the_directory_and_the_file_in_wal_mode() {
    let dir = TempDir::new("spotauth-sqlite");
    let file = dir.path().join("a/b/c/spotauth.sqlite3");
    let store = SqliteStore::open(&file, SqliteSettings::default()).await.unwrap();
    assert!(file.is_file());
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "owner-only database file");
    assert_eq!(store.path(), file);
    let embedded = SqliteStore::embedded_migrations().unwrap();
    assert_eq!(embedded.len(), 7);
    assert_eq!(store.migrations_applied_at_open().len(), 7, "{:?}", store.migrations_applied_at_open());
    store.ping().await.unwrap();
    let health = store.repositories().health;
    health.ping().await.unwrap();
    assert_eq!(health.describe(), format!("SQLite {}", file.display()));

    #[derive(QueryableByName)]
    struct Text {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    let mut raw = SqliteConnection::establish(file.to_str().unwrap()).unwrap();
    let mode: Vec<Text> =
        diesel::sql_query("SELECT journal_mode AS v FROM pragma_journal_mode()").load(&mut raw).unwrap();
    assert_eq!(mode[0].v, "wal");
    let tables: Vec<Text> = diesel::sql_query(
        "SELECT name AS v FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite%' ORDER BY name",
    )
    .load(&mut raw)
    .unwrap();
    let tables: Vec<_> = tables.into_iter().map(|t| t.v).collect();
    assert_eq!(
        tables,
        [
            "auth_changes",
            "oauth_login_flows",
            "room_changes",
            "room_players",
            "spotify_rate_limits",
            "spotify_users",
            "user_sessions"
        ]
    );
    let fks: Vec<Text> =
        diesel::sql_query("SELECT sql AS v FROM sqlite_master WHERE sql LIKE '%REFERENCES%'").load(&mut raw).unwrap();
    assert!(fks.is_empty(), "no FOREIGN KEYs, as on MySQL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_keeps_the_data_and_applies_nothing() {
    let dir = TempDir::new("spotauth-sqlite");
    let file = dir.path().join("spotauth.sqlite3");
    let store = SqliteStore::open(&file, SqliteSettings::default()).await.unwrap();
    let u = store.repositories().users.insert(new_user(1, PremiumStatus::Premium)).await.unwrap();
    drop(store);

    let again = SqliteStore::open(&file, SqliteSettings::default()).await.unwrap();
    assert!(again.migrations_applied_at_open().is_empty(), "{:?}", again.migrations_applied_at_open());
    assert_eq!(again.repositories().users.get(u.id).await.unwrap(), Some(u));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_paths_are_one_clear_line_naming_the_setting() {
    let dir = TempDir::new("spotauth-sqlite");
    let plain = dir.path().join("plain-file");
    std::fs::write(&plain, b"not a directory").unwrap();

    let err = SqliteStore::open(&plain.join("db.sqlite3"), SqliteSettings::default()).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");
    assert!(msg.starts_with(&format!("{}: cannot create directory ", spotauth_sqlite::SETTING_NAME)), "{msg}");
    assert!(msg.contains("plain-file") && !msg.contains('\n'), "{msg}");

    let err = SqliteStore::open(&plain.join("x/db.sqlite3"), SqliteSettings::default()).await.unwrap_err();
    assert!(err.to_string().starts_with("SQLITE_PATH: cannot create directory "), "{err}");

    let err = SqliteStore::open(dir.path(), SqliteSettings::default()).await.unwrap_err();
    assert!(err.to_string().starts_with("SQLITE_PATH: cannot open ") && err.to_string().ends_with("is a directory"));

    // A file that is not a database.
    let err = SqliteStore::open(&plain, SqliteSettings::default()).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("SQLITE_PATH: cannot open ") && !msg.contains('\n'), "{msg}");
}

/// actix workers are current-thread runtimes, and a handler's future is dropped when its client
/// goes away or a sibling extractor fails. A query dropped mid-flight must not take the worker
/// down (diesel-async's SQLite wrapper blocks in place when its query future is dropped, which
/// panics on such a runtime), and the store must keep answering.
#[tokio::test(flavor = "current_thread")]
async fn a_read_dropped_mid_flight_on_a_current_thread_runtime_is_harmless() {
    let dir = TempDir::new("spotauth-sqlite-cancel");
    let store = SqliteStore::open(&dir.path().join("db.sqlite"), SqliteSettings::default()).await.unwrap();
    let repos = store.repositories();
    for n in 0..20 {
        repos.users.insert(new_user(n, PremiumStatus::Premium)).await.unwrap();
    }
    spotauth_testkit::contract::sign_in(&repos, 0..20).await;
    for _ in 0..20 {
        let read = repos.users.list_active(PageRequest::new(0, 100).unwrap(), spotauth_testkit::contract::live());
        tokio::select! {
            biased;
            () = tokio::task::yield_now() => {}
            _ = read => {}
        }
    }
    let page =
        repos.users.list_active(PageRequest::new(0, 100).unwrap(), spotauth_testkit::contract::live()).await.unwrap();
    assert_eq!(page.total, 20);
}
