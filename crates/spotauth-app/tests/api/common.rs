//! The harness: a fresh database, the emulator, the app on port 0, and a cookie-handling client.
#![allow(dead_code)]

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::Value;
use spotauth_app::{Application, Settings};
use spotauth_emulator::{AppMode, Emulator, EmulatorHandle};
pub use spotauth_testkit::emulator::confidential_app;

pub use crate::openapi_check::{Contract, Violations};
pub use spotauth_testkit::{DbProxy, SIGNING_KEY as SIGNING, TOKEN_KEYS as KEYS, TempDir, TestDb};

pub const REDIRECT: &str = "http://127.0.0.1:9/api/auth/spotify/callback";
pub const FRONTEND: &str = "http://127.0.0.1:3000/";

/// The store a test app runs on: the SQLite default, or MariaDB when `TEST_STORE=mysql`
/// (CI runs the suite both ways; the store contract suite proves the two stores equal).
pub enum TestStore {
    Sqlite(TempDir),
    Mysql(TestDb),
}

impl TestStore {
    pub async fn from_env() -> Self {
        match std::env::var("TEST_STORE").as_deref() {
            Ok("mysql") => TestStore::Mysql(TestDb::create().await),
            Ok("sqlite") | Err(_) => TestStore::Sqlite(TempDir::new("spotauth-app")),
            Ok(other) => panic!("TEST_STORE must be sqlite or mysql, not {other}"),
        }
    }

    /// The store's repositories, opened past the app (as another instance would), to look at
    /// what the app stored.
    pub async fn repositories(&self) -> spotauth_sql::Repositories {
        match self {
            TestStore::Sqlite(dir) => {
                let path = dir.path().join("spotauth.db");
                let store = spotauth_sqlite::SqliteStore::open(&path, spotauth_sqlite::SqliteSettings::default());
                store.await.unwrap().repositories()
            }
            TestStore::Mysql(db) => {
                let url = spotauth_mysql::DatabaseUrl::parse(db.url()).unwrap();
                let store = spotauth_mysql::MysqlStore::connect(url, spotauth_mysql::PoolSettings::default());
                store.await.unwrap().repositories()
            }
        }
    }

    /// Every row of every table, one line per row (`table: 'value'|'value'|…`, values as SQL
    /// literals), to search for what must not be stored.
    pub async fn dump(&self) -> String {
        match self {
            TestStore::Sqlite(dir) => {
                use diesel::{Connection, QueryableByName, RunQueryDsl, sql_query, sql_types::Text};
                #[derive(QueryableByName)]
                struct Line {
                    #[diesel(sql_type = Text)]
                    line: String,
                }
                let path = dir.path().join("spotauth.db");
                let mut c = diesel::SqliteConnection::establish(&path.display().to_string()).unwrap();
                let mut lines = |q: String| -> Vec<String> {
                    sql_query(q).load::<Line>(&mut c).unwrap().into_iter().map(|l| l.line).collect()
                };
                let mut out = String::new();
                for table in lines("SELECT name AS line FROM sqlite_master WHERE type = 'table'".into()) {
                    let columns = lines(format!("SELECT name AS line FROM pragma_table_info('{table}')"));
                    let row = columns.iter().map(|c| format!("quote(\"{c}\")")).collect::<Vec<_>>().join(" || '|' || ");
                    for line in lines(format!("SELECT {row} AS line FROM \"{table}\"")) {
                        out.push_str(&format!("{table}: {line}\n"));
                    }
                }
                out
            }
            TestStore::Mysql(db) => {
                use mysql_async::prelude::Queryable;
                let mut c = mysql_async::Conn::from_url(db.url()).await.unwrap();
                let tables: Vec<String> = c.query("SHOW TABLES").await.unwrap();
                let mut out = String::new();
                for table in tables {
                    let rows: Vec<mysql_async::Row> = c.query(format!("SELECT * FROM `{table}`")).await.unwrap();
                    for row in rows {
                        let values: Vec<String> = row.unwrap().iter().map(|v| v.as_sql(false)).collect();
                        out.push_str(&format!("{table}: {}\n", values.join("|")));
                    }
                }
                c.disconnect().await.unwrap();
                out
            }
        }
    }

    /// The settings that select this store.
    pub fn setting(&self) -> (&'static str, String) {
        match self {
            TestStore::Sqlite(dir) => ("SQLITE_PATH", dir.path().join("spotauth.db").display().to_string()),
            TestStore::Mysql(db) => ("DATABASE_URL", db.url().to_owned()),
        }
    }
}

pub struct Options {
    pub mode: AppMode,
    pub access_token_lifetime: Duration,
    pub extra: Vec<(&'static str, &'static str)>,
    /// Run on MariaDB whatever `TEST_STORE` says, through a [`DbProxy`] (a statement counter
    /// and a switch that makes the database unreachable).
    pub mysql_through_proxy: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: AppMode::ExtendedQuota,
            access_token_lifetime: Duration::from_secs(3600),
            extra: vec![],
            mysql_through_proxy: false,
        }
    }
}

pub struct TestApp {
    pub base: String,
    /// Where `/metrics` is served when `METRICS_ADDR` is set.
    pub metrics_base: Option<String>,
    pub http: reqwest::Client,
    pub emu: EmulatorHandle,
    pub store: TestStore,
    /// The settings it runs with (for [`TestApp::sibling`]).
    pub pairs: Vec<(String, String)>,
    /// The proxy the app reaches MariaDB through ([`Options::mysql_through_proxy`]).
    pub proxy: Option<DbProxy>,
    /// The served OpenAPI document every answer is checked against (`base` is a checking
    /// proxy in front of the app; see `openapi_check`), and the answers that broke it.
    pub contract: Option<Arc<Contract>>,
    pub violations: Violations,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let broken = self.violations.lock().map(|v| v.clone()).unwrap_or_default();
        if !broken.is_empty() && !std::thread::panicking() {
            panic!("{} answer(s) broke the OpenAPI contract: {broken:#?}", broken.len());
        }
    }
}

/// A logged-in browser: its session cookie (`name=value`).
#[derive(Clone, Debug)]
pub struct Browser {
    pub session: String,
}

pub fn cookie_pair(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

pub fn set_cookie_attrs(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

pub async fn spawn(opts: Options) -> TestApp {
    let config = confidential_app("test-client", "test-secret", REDIRECT)
        .app_mode(opts.mode)
        .access_token_lifetime(opts.access_token_lifetime);
    let emu = Emulator::start(config).await.unwrap();
    let (store, proxy) = match opts.mysql_through_proxy {
        true => {
            let db = TestDb::create().await;
            let proxy = DbProxy::start(&db).await;
            (TestStore::Mysql(db), Some(proxy))
        }
        false => (TestStore::from_env().await, None),
    };
    let (store_setting, mut store_value) = store.setting();
    if let Some(proxy) = &proxy {
        store_value = proxy.url().to_owned();
    }
    let accounts = emu.accounts_url().to_owned();
    let api = emu.api_url();
    let mut pairs: Vec<(&str, &str)> = vec![
        // Production rules: everything configured, `Secure` `__Host-` cookies.
        ("APP_ENV", "production"),
        (store_setting, &store_value),
        ("SPOTIFY_CLIENT_ID", "test-client"),
        ("SPOTIFY_CLIENT_SECRET", "test-secret"),
        ("SPOTIFY_REDIRECT_URI", REDIRECT),
        ("SPOTIFY_ACCOUNTS_URL", &accounts),
        ("SPOTIFY_API_URL", &api),
        ("FRONTEND_URL", FRONTEND),
        ("TOKEN_ENCRYPTION_KEYS", KEYS),
        ("SESSION_SIGNING_KEY", SIGNING),
    ];
    pairs.extend(opts.extra.iter().copied());
    let (direct, metrics_base) = start_instance(&pairs).await;
    let pairs = pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let served: Value = http.get(format!("{direct}/openapi.json")).send().await.unwrap().json().await.unwrap();
    let contract = Arc::new(Contract::new(served));
    let violations = Violations::default();
    let base = crate::openapi_check::start(direct, contract.clone(), violations.clone()).await;
    TestApp { base, metrics_base, http, emu, store, pairs, proxy, contract: Some(contract), violations }
}

/// Builds and runs one instance on a free port: its base URL and metrics URL.
async fn start_instance(pairs: &[(&str, &str)]) -> (String, Option<String>) {
    let settings = Settings::from_pairs(pairs.iter().copied()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let app = Application::build_with_listener(settings, listener).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let metrics_base = app.metrics_port().map(|p| format!("http://127.0.0.1:{p}"));
    tokio::spawn(app.run_until_stopped());
    (base, metrics_base)
}

impl TestApp {
    /// A second instance of the same service: same settings, same database, same Spotify.
    pub async fn sibling(&self) -> String {
        self.sibling_with(&[]).await
    }

    /// [`Self::sibling`] with some settings replaced (e.g. another keyring).
    pub async fn sibling_with(&self, replaced: &[(&str, &str)]) -> String {
        let pairs = self.pairs_with(replaced);
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let direct = start_instance(&pairs).await.0;
        match &self.contract {
            Some(contract) => crate::openapi_check::start(direct, contract.clone(), self.violations.clone()).await,
            None => direct,
        }
    }
}

impl TestApp {
    /// The settings this app runs with, some replaced: what an operator command of the same
    /// deployment is run with.
    pub fn pairs_with(&self, replaced: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> =
            self.pairs.iter().filter(|(k, _)| !replaced.iter().any(|(r, _)| r == k)).cloned().collect();
        pairs.extend(replaced.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        pairs
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Starts a login: the authorize URL and the login cookie.
    pub async fn start_login(&self, body: Option<Value>) -> (String, String) {
        let mut req = self.http.post(self.url("/api/auth/spotify/login"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let cookie = cookie_pair(resp.headers(), "__Host-spotauth_login").expect("login cookie");
        let body: Value = resp.json().await.unwrap();
        (body["authorizeUrl"].as_str().unwrap().to_owned(), cookie)
    }

    /// The user "logs in" at the emulator; returns the callback query Spotify redirects with.
    pub async fn authorize(&self, authorize_url: &str, user: &str, deny: bool) -> String {
        let url = format!("{authorize_url}&login_as={user}{}", if deny { "&deny=1" } else { "" });
        let resp = self.http.get(url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND);
        let location = resp.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(location.starts_with(REDIRECT), "{location}");
        location.split_once('?').unwrap().1.to_owned()
    }

    pub async fn callback(&self, query: &str, login_cookie: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(self.url(&format!("/api/auth/spotify/callback?{query}")));
        if let Some(c) = login_cookie {
            req = req.header("Cookie", c);
        }
        req.send().await.unwrap()
    }

    pub async fn login(&self, user: &str) -> Browser {
        self.login_from(user, None).await
    }

    /// [`Self::login`] from a browser that sends this `User-Agent`.
    pub async fn login_from(&self, user: &str, user_agent: Option<&str>) -> Browser {
        let (authorize_url, login_cookie) = self.start_login(None).await;
        let query = self.authorize(&authorize_url, user, false).await;
        let mut req =
            self.http.get(self.url(&format!("/api/auth/spotify/callback?{query}"))).header("Cookie", &login_cookie);
        if let Some(ua) = user_agent {
            req = req.header("User-Agent", ua);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(resp.headers()[LOCATION], FRONTEND);
        let session = cookie_pair(resp.headers(), "__Host-spotauth_session").expect("session cookie");
        Browser { session }
    }

    pub async fn get(&self, b: &Browser, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).header("Cookie", &b.session).send().await.unwrap()
    }

    pub async fn post(&self, b: &Browser, path: &str) -> reqwest::Response {
        self.http.post(self.url(path)).header("Cookie", &b.session).send().await.unwrap()
    }

    pub async fn delete(&self, b: &Browser, path: &str) -> reqwest::Response {
        self.http.delete(self.url(path)).header("Cookie", &b.session).send().await.unwrap()
    }

    /// Asks the emulator whose token this is.
    pub async fn spotify_user_of(&self, access_token: &str) -> String {
        let me: Value = self
            .http
            .get(format!("{}/me", self.emu.api_url()))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        me["id"].as_str().unwrap().to_owned()
    }
}

pub async fn problem(resp: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let request_id = resp.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16());
    // Every problem names its request, as the answer's header does.
    assert!(request_id.is_some(), "X-Request-Id on every answer");
    assert_eq!(body["requestId"].as_str(), request_id.as_deref(), "{body}");
    body
}

pub fn error_redirect(resp: &reqwest::Response) -> String {
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let location = resp.headers()[LOCATION].to_str().unwrap();
    let url = url::Url::parse(location).unwrap();
    assert_eq!(format!("{}://{}/", url.scheme(), url.authority()), FRONTEND);
    assert!(cookie_pair(resp.headers(), "__Host-spotauth_session").is_none(), "no session on a failed login");
    url.query_pairs().find(|(k, _)| k == "error").map(|(_, v)| v.into_owned()).expect("error=")
}

/// `GET url` with a session cookie, as JSON.
pub async fn get_json(http: &reqwest::Client, url: &str, cookie: &str) -> Value {
    http.get(url).header("Cookie", cookie).send().await.unwrap().json().await.unwrap()
}
