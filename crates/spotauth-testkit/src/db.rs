//! A fresh MariaDB/MySQL database per test.

use std::sync::atomic::{AtomicU32, Ordering};

use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl};

/// A database created for one test on the server of `TEST_DATABASE_URL` (default
/// `mysql://root@127.0.0.1:3306`), dropped when the guard goes, even when the test panics.
/// Fails the test loudly, never skips it, when no server answers.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    /// The server's URL (its path, if any, is replaced by each test database's name).
    pub fn server_url() -> String {
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
    }

    /// Creates a database of its own (utf8mb4), `spotauth_t_…`, unique within and across
    /// processes.
    pub async fn create() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let name = format!("spotauth_t_{nanos:x}_{:x}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        admin(&format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4")).await;
        let mut url = url::Url::parse(&Self::server_url()).unwrap();
        url.set_path(&name);
        TestDb { name, url: url.to_string() }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of this database (for `DATABASE_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Runs one statement on the server, panicking with a clear message when it cannot.
async fn admin(sql: &str) {
    let mut conn = AsyncMysqlConnection::establish(&TestDb::server_url())
        .await
        .unwrap_or_else(|e| panic!("TEST_DATABASE_URL must reach a MariaDB/MySQL server ({e})"));
    diesel::sql_query(sql).execute(&mut conn).await.unwrap();
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS `{}`", self.name);
        // Drop cannot await: a thread of its own with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(admin(&sql));
        })
        .join();
    }
}
