//! The library against the real server on one MariaDB database: another OS process (the
//! `now_playing` example) and the server ask for an expiring token at the same moment → one
//! upstream refresh and the same token; a user marked for reconnection → the typed error and
//! no call; lookups by id and Spotify account key; the public surface as listed in the docs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use spotauth::{Config, Error, Spotauth, UserRef};
use spotauth_app::{Application, Settings};
use spotauth_emulator::{Emulator, EmulatorHandle};
use spotauth_testkit::emulator::confidential_app;
use spotauth_testkit::{SIGNING_KEY, TOKEN_KEYS, TempDir, TestDb};

const REDIRECT: &str = "http://127.0.0.1:9/api/auth/spotify/callback";
/// Tokens live 20 s at the emulator and are refreshed when less than 12 s are left: a token is
/// fresh for its first 8 s, then due; a token refreshed by the first caller stays fresh for the
/// second one for 8 s, however slowly a busy machine starts the other process.
const LIFETIME: Duration = Duration::from_secs(20);
const MIN_VALIDITY: &str = "12";
/// Until a token issued now is due.
const UNTIL_DUE: Duration = Duration::from_millis(8_500);

/// Where the server keeps its data: a fresh MariaDB database or a SQLite file.
enum Db {
    Mysql(TestDb),
    Sqlite(TempDir),
}

struct World {
    emu: EmulatorHandle,
    db: Db,
    base: String,
    http: reqwest::Client,
}

impl World {
    /// The settings both the server and the library read, by the same names.
    fn settings(&self) -> Vec<(&'static str, String)> {
        let store = match &self.db {
            Db::Mysql(db) => ("DATABASE_URL", db.url().to_owned()),
            Db::Sqlite(dir) => ("SQLITE_PATH", dir.path().join("spotauth.db").display().to_string()),
        };
        vec![
            store,
            ("TOKEN_ENCRYPTION_KEYS", TOKEN_KEYS.to_owned()),
            ("SPOTIFY_CLIENT_ID", "test-client".to_owned()),
            ("SPOTIFY_CLIENT_SECRET", "test-secret".to_owned()),
            ("SPOTIFY_REDIRECT_URI", REDIRECT.to_owned()),
            ("SPOTIFY_ACCOUNTS_URL", self.emu.accounts_url().to_owned()),
            ("SPOTIFY_API_URL", self.emu.api_url()),
            ("ACCESS_TOKEN_MIN_VALIDITY_SECS", MIN_VALIDITY.to_owned()),
        ]
    }

    async fn start() -> World {
        Self::start_on(Db::Mysql(TestDb::create().await)).await
    }

    async fn start_on(db: Db) -> World {
        let emu =
            Emulator::start(confidential_app("test-client", "test-secret", REDIRECT).access_token_lifetime(LIFETIME))
                .await
                .unwrap();
        let mut world = World { emu, db, base: String::new(), http: reqwest::Client::new() };
        let mut pairs = world.settings();
        pairs.extend([
            ("APP_ENV", "production".to_owned()),
            ("FRONTEND_URL", "http://127.0.0.1:3000/".to_owned()),
            ("SESSION_SIGNING_KEY", SIGNING_KEY.to_owned()),
            // The background refresher would refresh the due token before the test asks.
            ("PROACTIVE_REFRESH", "false".to_owned()),
        ]);
        let settings = Settings::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
        let app = Application::build_with_listener(settings, TcpListener::bind("127.0.0.1:0").unwrap()).await.unwrap();
        world.base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        world.http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        world
    }

    /// Logs `user` in through the server; their session cookie.
    async fn log_in(&self, user: &str) -> String {
        let resp = self.http.post(format!("{}/api/auth/spotify/login", self.base)).send().await.unwrap();
        let login = resp.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let url = resp.json::<Value>().await.unwrap()["authorizeUrl"].as_str().unwrap().to_owned();
        let at_spotify = self.http.get(format!("{url}&login_as={user}")).send().await.unwrap();
        let back = at_spotify.headers()["location"].to_str().unwrap().to_owned();
        let query = back.split_once('?').unwrap().1;
        let done = self
            .http
            .get(format!("{}/api/auth/spotify/callback?{query}", self.base))
            .header("Cookie", login)
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 303);
        done.headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .find(|c| c.starts_with("__Host-spotauth_session="))
            .unwrap()
    }

    async fn get(&self, path: &str, cookie: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .header("Cookie", cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn library(&self) -> Spotauth {
        Spotauth::open(Config::from_pairs(self.settings()).unwrap()).await.unwrap()
    }
}

fn fingerprint(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The `now_playing` example's binary (built by `cargo test`/`cargo build --examples`; built
/// here when missing).
fn example_binary() -> PathBuf {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let bin = deps.parent().unwrap().join("examples").join("now_playing");
    if !bin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--package", "spotauth", "--example", "now_playing"])
            .status()
            .unwrap();
        assert!(status.success(), "cargo build --example now_playing");
    }
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_and_the_server_refresh_an_expiring_token_once_and_share_it() {
    let world = World::start().await;
    let cookie = world.log_in("alice").await;
    let me = world.get("/api/users/me", &cookie).await;
    let id = me["id"].as_str().unwrap().to_owned();
    // Wait until the login's token is due.
    tokio::time::sleep(UNTIL_DUE).await;
    let before = world.emu.counters().user("alice").token_refresh_token;

    // At the same moment: the example in its own OS process, and the server.
    let mut example = tokio::process::Command::new(example_binary());
    example.arg("--fingerprint").arg(&id).env_clear().envs(world.settings());
    let (out, served) = tokio::join!(example.output(), world.get("/api/auth/spotify/token", &cookie));
    let out = out.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).unwrap();
    let theirs = printed.split_whitespace().nth(1).unwrap().to_owned();
    let ours = fingerprint(served["accessToken"].as_str().unwrap());
    assert_eq!(theirs, ours, "both got the same token");
    assert_eq!(world.emu.counters().user("alice").token_refresh_token, before + 1, "exactly one upstream refresh");
    assert!(!printed.contains(served["accessToken"].as_str().unwrap()), "the example never prints a token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_profiles_presence_and_the_reconnect_state() {
    let world = World::start().await;
    let cookie = world.log_in("alice").await;
    let me = world.get("/api/users/me", &cookie).await;
    let lib = world.library().await;

    let by_key = UserRef::spotify_account("acct-alice").unwrap(); // `/v1/me` account_id
    let profile = lib.user(&by_key).await.unwrap();
    assert_eq!(profile.id.to_string(), me["id"].as_str().unwrap());
    assert_eq!(profile.display_name.as_deref(), Some("Alice"));
    assert!(profile.spotify_connected && !profile.reauth_required);
    let grant = lib.access_token(&UserRef::parse(me["id"].as_str().unwrap()).unwrap()).await.unwrap();
    let served = world.get("/api/auth/spotify/token", &cookie).await;
    assert_eq!(grant.access_token.expose(), served["accessToken"].as_str().unwrap(), "the token the server serves");
    assert!(format!("{grant:?}").contains("redacted") || !format!("{grant:?}").contains(grant.access_token.expose()));
    assert!(matches!(lib.user(&UserRef::spotify_account("nobody").unwrap()).await, Err(Error::UnknownUser)));
    assert!(matches!(lib.access_token(&UserRef::spotify_account("nobody").unwrap()).await, Err(Error::UnknownUser)));
    let present = lib.present().await.unwrap();
    assert_eq!(present.len(), 1);
    assert!(!present[0].ready, "no player reported");

    // Alice revoked the app at Spotify; the server's next refresh marks her. From then on the
    // library answers ReauthRequired at once, with no call to Spotify.
    world.emu.revoke_refresh_tokens("alice");
    tokio::time::sleep(UNTIL_DUE).await;
    let answer = world.http.get(format!("{}/api/auth/spotify/token", world.base)).header("Cookie", &cookie);
    assert_eq!(answer.send().await.unwrap().status(), 401);
    let calls = world.emu.counters().total.token_total();
    assert!(matches!(lib.access_token(&by_key).await, Err(Error::ReauthRequired)));
    assert!(lib.user(&by_key).await.unwrap().reauth_required);
    assert_eq!(world.emu.counters().total.token_total(), calls, "no call for a user marked for reconnection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_says_what_a_user_is_playing_on_the_sqlite_store() {
    let world = World::start_on(Db::Sqlite(TempDir::new("spotauth-lib"))).await;
    let cookie = world.log_in("alice").await;
    // Alice's page opened a player and started a track on it (what the room does).
    let token = world.get("/api/auth/spotify/token", &cookie).await["accessToken"].as_str().unwrap().to_owned();
    let device = world.emu.open_player(&token, "Alice's laptop").unwrap();
    let play = world
        .http
        .put(format!("{}/me/player/play?device_id={device}", world.emu.api_url()))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "uris": ["spotify:track:4uLU6hMCjMI75M1A2tKUQC"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(play.status(), 204);

    let out = tokio::process::Command::new(example_binary())
        .arg("acct-alice")
        .env_clear()
        .envs(world.settings())
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(printed.trim(), "Alice is playing “Emulated track 4uLU6h” on Alice's laptop");
    // An unknown user: exit code 4 and one line.
    let out = tokio::process::Command::new(example_binary())
        .arg("nobody")
        .env_clear()
        .envs(world.settings())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "now_playing: no such user");
}

#[test]
fn the_public_surface_is_the_documented_one() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let exported: Vec<String> =
        lib.lines().filter(|l| l.starts_with("pub use ")).map(|l| l.trim_end_matches(';').to_owned()).collect();
    let docs = std::fs::read_to_string(root.join("../../docs/library.md")).unwrap();
    for line in &exported {
        assert!(
            docs.contains(line.as_str()),
            "docs/library.md does not list `{line}`: announce changes of the public API there"
        );
    }
    let listed = docs.lines().filter(|l| l.trim_start().starts_with("pub use ")).count();
    assert_eq!(listed, exported.len(), "docs/library.md lists exports that src/lib.rs no longer has");
}
