//! The zero-configuration quick start: development mode on SQLite from an empty data directory,
//! generated keys, logins against the emulator, production refusing to start without keys, and
//! the built binary serving `/readyz` with no environment at all.

use std::net::TcpListener;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::Value;
use spotauth_app::settings::{AppEnv, Database};
use spotauth_app::{Application, Settings};
use spotauth_emulator::{Emulator, EmulatorConfig, EmulatorHandle, TestUser};

use crate::common::{TempDir, cookie_pair, get_json, problem};

fn free_listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A public (PKCE) client whose redirect URI is the development default for `port`.
async fn emulator(port: u16, users: impl IntoIterator<Item = TestUser>) -> EmulatorHandle {
    let mut config = EmulatorConfig::new("dev-client")
        .client_secret(None)
        .redirect_uris([format!("http://127.0.0.1:{port}/api/auth/spotify/callback")]);
    for user in users {
        config = config.user(user);
    }
    Emulator::start(config).await.unwrap()
}

/// Development settings: only the data directory, the port and the Spotify client (here, the
/// emulator). No `DATABASE_URL`, no keys, no `FRONTEND_URL`, no redirect URI.
fn dev_settings(data_dir: &Path, port: u16, emu: &EmulatorHandle) -> Settings {
    dev_settings_with(data_dir, port, emu, &[])
}

/// [`dev_settings`] plus `extra`.
fn dev_settings_with(data_dir: &Path, port: u16, emu: &EmulatorHandle, extra: &[(&str, &str)]) -> Settings {
    let bind = format!("127.0.0.1:{port}");
    let api = emu.api_url();
    let mut pairs = vec![
        ("DATA_DIR", data_dir.to_str().unwrap()),
        ("BIND_ADDR", bind.as_str()),
        ("SPOTIFY_CLIENT_ID", "dev-client"),
        ("SPOTIFY_ACCOUNTS_URL", emu.accounts_url()),
        ("SPOTIFY_API_URL", api.as_str()),
    ];
    pairs.extend_from_slice(extra);
    Settings::from_pairs(pairs).unwrap()
}

async fn start(settings: Settings, listener: TcpListener) -> String {
    let app = Application::build_with_listener(settings, listener).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    base
}

/// The whole browser login against the emulator, with the development cookie names; returns
/// the session cookie (`name=value`).
async fn login(http: &reqwest::Client, base: &str, user: &str) -> String {
    let resp = http.post(format!("{base}/api/auth/spotify/login")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let login_cookie = cookie_pair(resp.headers(), "spotauth_login").expect("login cookie");
    let body: Value = resp.json().await.unwrap();
    let authorize = body["authorizeUrl"].as_str().unwrap();
    let resp = http.get(format!("{authorize}&login_as={user}")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND, "{user}");
    let callback = resp.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(callback.starts_with(&format!("{base}/api/auth/spotify/callback?")), "{callback}");
    let resp = http.get(callback).header("Cookie", login_cookie).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{user}");
    assert_eq!(resp.headers()[LOCATION].to_str().unwrap(), format!("{base}/"), "FRONTEND_URL defaults to our origin");
    cookie_pair(resp.headers(), "spotauth_session").expect("session cookie")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_data_dir_starts_generates_private_keys_and_a_login_completes_on_sqlite() {
    let dir = TempDir::new("fresh");
    let data = dir.path().join("data");
    let (listener, port) = free_listener();
    let emu = emulator(port, [TestUser::premium("alice").with_display_name("Alice")]).await;
    let settings = dev_settings(&data, port, &emu);
    assert_eq!(settings.env, AppEnv::Development);
    assert!(matches!(&settings.database, Database::Sqlite(p) if *p == data.join("spotauth.db")));
    assert!(!settings.cookie_secure);
    let base = start(settings, listener).await;
    let http = http();

    let resp = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["database"], "ok");
    assert!(data.join("spotauth.db").is_file());
    let key_file = data.join("keys.env");
    assert_eq!(mode(&key_file), 0o600);
    let keys_before = std::fs::read_to_string(&key_file).unwrap();
    assert!(keys_before.contains("TOKEN_ENCRYPTION_KEYS=dev1:") && keys_before.contains("SESSION_SIGNING_KEY="));

    let session = login(&http, &base, "alice").await;
    let resp = http.get(format!("{base}/api/auth/spotify/token")).header("Cookie", &session).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let token = resp.json::<Value>().await.unwrap()["accessToken"].as_str().unwrap().to_owned();
    let me: Value =
        http.get(format!("{}/me", emu.api_url())).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["id"], "alice");

    // A second instance on the same data directory (a restart) reuses the keys: the session
    // issued by the first still authenticates, and the stored Spotify tokens still decrypt.
    let (listener2, port2) = free_listener();
    let base2 = start(dev_settings(&data, port2, &emu), listener2).await;
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), keys_before, "keys are generated once");
    let me: Value = get_json(&http, &format!("{base2}/api/users/me"), &session).await;
    assert_eq!(me["spotifyId"], "alice", "{me}");
    let resp = http.get(format!("{base2}/api/auth/spotify/token")).header("Cookie", &session).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["accessToken"], token.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_logins_on_sqlite_all_succeed() {
    let dir = TempDir::new("fifty");
    let (listener, port) = free_listener();
    let users: Vec<String> = (0..50).map(|i| format!("user{i:02}")).collect();
    let emu = emulator(port, users.iter().map(TestUser::premium)).await;
    // Fifty people behind one address (a party venue's NAT): room for their hundred requests.
    let room = [("RATE_LIMIT_PER_CLIENT_BURST", "100"), ("LOGIN_PENDING_PER_CLIENT", "100")];
    let base = start(dev_settings_with(dir.path(), port, &emu, &room), listener).await;
    let http = http();

    let tasks: Vec<_> = users
        .iter()
        .cloned()
        .map(|user| {
            let (http, base) = (http.clone(), base.clone());
            tokio::spawn(async move { login(&http, &base, &user).await })
        })
        .collect();
    let mut sessions = Vec::new();
    for task in tasks {
        sessions.push(task.await.expect("every login succeeds"));
    }
    assert_eq!(sessions.len(), 50);
    let list: Value = get_json(&http, &format!("{base}/api/users/active"), &sessions[0]).await;
    assert_eq!(list["total"], 50, "{list}");
}

#[tokio::test]
async fn production_without_keys_refuses_to_start_naming_the_setting() {
    let dir = TempDir::new("prod");
    let data = dir.path().to_str().unwrap();
    let production = [
        ("APP_ENV", "production"),
        ("DATA_DIR", data),
        ("SPOTIFY_CLIENT_ID", "client"),
        ("SPOTIFY_REDIRECT_URI", "https://auth.example.com/api/auth/spotify/callback"),
        ("FRONTEND_URL", "https://app.example.com/"),
    ];
    let err = Settings::from_pairs(production).unwrap_err().to_string();
    assert_eq!(err, "TOKEN_ENCRYPTION_KEYS is required but not set (APP_ENV=production)");
    let with_one_key = production.into_iter().chain([("TOKEN_ENCRYPTION_KEYS", crate::common::KEYS)]);
    let err = Settings::from_pairs(with_one_key).unwrap_err().to_string();
    assert_eq!(err, "SESSION_SIGNING_KEY is required but not set (APP_ENV=production)");

    // The binary: exit code 1, one line on stderr, no key file written.
    let out = Command::new(env!("CARGO_BIN_EXE_spotauth")).env_clear().envs(production).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr, "error: TOKEN_ENCRYPTION_KEYS is required but not set (APP_ENV=production)\n");
    assert!(!dir.path().join("keys.env").exists());
}

#[tokio::test]
async fn a_key_file_others_can_read_is_refused() {
    let dir = TempDir::new("perm");
    let key_file = dir.path().join("keys.env");
    let secret = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=";
    let contents = format!("TOKEN_ENCRYPTION_KEYS=dev1:{secret}\nSESSION_SIGNING_KEY={secret}\n");
    std::fs::write(&key_file, &contents).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let settings = Settings::from_pairs([("DATA_DIR", dir.path().to_str().unwrap())]).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let err = Application::build_with_listener(settings.clone(), listener).await.unwrap_err().to_string();
    assert!(err.starts_with("DATA_DIR: key file ") && err.contains("keys.env"), "{err}");
    assert!(err.contains("mode 0644") && err.contains("chmod 600"), "{err}");
    assert!(!err.contains('\n') && !err.contains(secret), "{err}");

    // Fixed permissions: the same file is accepted and used as is.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let keys = settings.resolve_keys().unwrap();
    assert_eq!(keys.session_signing_key.expose(), secret);

    // A malformed file is refused without echoing it.
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(broken.join("keys.env"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("SESSION_SIGNING_KEY={secret}\n").as_bytes()))
        .unwrap();
    let settings = Settings::from_pairs([("DATA_DIR", broken.to_str().unwrap())]).unwrap();
    let err = settings.resolve_keys().unwrap_err().to_string();
    assert!(err.ends_with("TOKEN_ENCRYPTION_KEYS is missing") && !err.contains(secret), "{err}");
}

/// `cargo run -p spotauth-app` with nothing set: the built binary, an empty environment (only
/// `BIND_ADDR`, to avoid a fixed port) and an empty working directory.
#[tokio::test]
async fn the_binary_serves_readyz_with_no_configuration_and_stops_cleanly_on_sigterm() {
    let dir = TempDir::new("bin");
    let port = free_listener().1;
    let mut child = Command::new(env!("CARGO_BIN_EXE_spotauth"))
        .env_clear()
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let http = http();
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        match http.get(format!("http://127.0.0.1:{port}/readyz")).send().await {
            Ok(resp) => break resp.status(),
            Err(_) if Instant::now() < deadline && child.try_wait().unwrap().is_none() => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                let _ = child.kill();
                panic!("the service did not come up: {e}; {:?}", child.wait_with_output().unwrap());
            }
        }
    };
    assert_eq!(ready, StatusCode::OK);
    let data = dir.path().join("data");
    assert!(data.join("spotauth.db").is_file());
    assert_eq!(mode(&data.join("keys.env")), 0o600);

    // Without a Spotify client, login says what is missing; the rest of the service runs.
    let resp = http.post(format!("http://127.0.0.1:{port}/api/auth/spotify/login")).send().await.unwrap();
    let body = problem(resp, StatusCode::SERVICE_UNAVAILABLE, "spotify_not_configured").await;
    assert!(body["detail"].as_str().unwrap().contains("SPOTIFY_CLIENT_ID"), "{body}");
    let resp = http.get(format!("http://127.0.0.1:{port}/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no exit within 15 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let generated: Vec<_> = log.lines().filter(|l| l.contains("generated TOKEN_ENCRYPTION_KEYS")).collect();
    assert_eq!(generated.len(), 1, "{log}");
    assert!(generated[0].contains("keys.env"), "{log}");
    assert!(log.contains(&format!("listening on http://127.0.0.1:{port}")), "{log}");
    assert!(!log.contains('\u{1b}'), "no colour codes when the output is not a terminal: {log}");
    let keys = std::fs::read_to_string(data.join("keys.env")).unwrap();
    for line in keys.lines().filter(|l| !l.starts_with('#')) {
        let value = line.split_once('=').unwrap().1;
        let key = value.rsplit(':').next().unwrap();
        assert!(!log.contains(key), "a key reached the log");
    }
}

/// `LOG_FORMAT=json`: every line the binary logs is one JSON object with its time, level and
/// message; a value it does not know is one line naming the setting.
#[tokio::test]
async fn the_binary_logs_json_lines_when_asked() {
    let dir = TempDir::new("json-logs");
    let bad = Command::new(env!("CARGO_BIN_EXE_spotauth"))
        .env_clear()
        .env("LOG_FORMAT", "yaml")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&bad.stderr), "error: LOG_FORMAT must be `json` or `text`\n");

    let port = free_listener().1;
    let mut child = Command::new(env!("CARGO_BIN_EXE_spotauth"))
        .env_clear()
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("LOG_FORMAT", "json")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http().get(format!("http://127.0.0.1:{port}/readyz")).send().await.is_err() {
        assert!(Instant::now() < deadline && child.try_wait().unwrap().is_none(), "the service did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 3, "{stdout}");
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{line}");
        assert!(v["fields"]["message"].is_string(), "{line}");
    }
    assert!(lines.iter().any(|l| l.contains("listening on http://127.0.0.1")), "{stdout}");
}
