//! Request ids and logs: every answer has an `X-Request-Id` (the caller's plain one, or a new
//! one), every problem carries it, the log lines of a request carry it (a 500's error line
//! included), JSON log lines parse, and no token, code, key or cookie value is ever logged.

use std::io::Write;
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

/// The log lines the app writes in this test process.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_accepted_or_generated_and_answered() {
    let app = spawn(Options::default()).await;
    let get = |id: Option<&str>| {
        let mut req = app.http.get(app.url("/api/users/me"));
        if let Some(id) = id {
            req = req.header("X-Request-Id", id);
        }
        req.send()
    };
    let resp = get(Some("support-ticket-42")).await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "support-ticket-42");
    let body = problem(resp, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(body["requestId"], "support-ticket-42");
    let mut seen = std::collections::HashSet::new();
    for id in [None, Some("two words"), Some("<script>alert(1)</script>"), Some(&*"x".repeat(129))] {
        let resp = get(id).await.unwrap();
        let answered = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(answered.len(), 36, "a new UUID instead of {id:?}: {answered}");
        assert!(seen.insert(answered.clone()), "each request its own");
        problem(resp, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    // Successes and the routes outside the API have one too.
    for path in ["/healthz", "/openapi.json", "/nowhere"] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        assert!(resp.headers().contains_key("x-request-id"), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_carry_the_request_id_and_never_a_secret() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug,actix_server=warn,h2=warn,hyper=warn,reqwest=warn"))
        .with_writer(logs.clone())
        .finish();
    // nextest runs each test in its own process; under `cargo test` another test may have set
    // one first, and this test then has nothing to read.
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        return;
    }
    // Strict mode: the row written below past the app is read at once.
    let app = spawn(Options { extra: vec![("SESSION_CACHE_STALENESS_MS", "0")], ..Options::default() }).await;

    // A login by hand, keeping every secret that passes: the state, the code, the cookies.
    let (authorize_url, login_cookie) = app.start_login(None).await;
    let query = app.authorize(&authorize_url, "alice", false).await;
    let resp = app.callback(&query, Some(&login_cookie)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let session = cookie_pair(resp.headers(), "__Host-spotauth_session").unwrap();
    let alice = Browser { session: session.clone() };
    let token: Value = app.get(&alice, "/api/auth/spotify/token").await.json().await.unwrap();
    let access = token["accessToken"].as_str().unwrap().to_owned();
    let resp = app.post(&alice, "/api/auth/spotify/refresh").await;
    let rotated = cookie_pair(resp.headers(), "__Host-spotauth_session").unwrap();
    let alice = Browser { session: rotated.clone() };
    // A replayed callback and a made-up session are refused (and logged at debug).
    app.callback(&query, Some(&login_cookie)).await;
    app.http.get(app.url("/api/users/me")).bearer_auth("eyJhbGciOiJFZERTQSJ9.e30.c2ln").send().await.unwrap();

    // A stored token that no longer decrypts: a 500 whose request id is in its error line.
    let me: Value = app.get(&alice, "/api/users/me").await.json().await.unwrap();
    let id: spotauth_domain::ids::UserId = me["id"].as_str().unwrap().parse().unwrap();
    let repos = app.store.repositories().await;
    let version = repos.tokens.load_tokens(id).await.unwrap().unwrap().version;
    repos.tokens.store_refreshed(id, version, spotauth_testkit::contract::refreshed("garbage", None)).await.unwrap();
    let resp = app.get(&alice, "/api/auth/spotify/token").await;
    let body = problem(resp, StatusCode::INTERNAL_SERVER_ERROR, "internal").await;
    let failed = body["requestId"].as_str().unwrap().to_owned();
    app.post(&alice, "/api/auth/spotify/logout?scope=everywhere").await;

    let text = logs.text();
    let lines: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    assert!(lines.len() > 10, "{text}");
    let of_failed: Vec<&Value> = lines.iter().filter(|l| l["span"]["id"] == failed.as_str()).collect();
    assert!(
        of_failed.iter().any(|l| l["level"] == "ERROR" && l["fields"]["message"] == "internal error"),
        "the 500's cause is logged under its request id: {of_failed:?}"
    );
    assert!(of_failed.iter().any(|l| l["fields"]["status"] == 500), "and its access line: {of_failed:?}");
    let access_lines = lines.iter().filter(|l| l["fields"]["status"].is_number()).count();
    assert!(access_lines >= 8, "one access line per request: {access_lines}");
    assert!(
        lines.iter().filter(|l| l["fields"]["status"].is_number()).all(|l| l["span"]["id"].is_string()),
        "every access line names its request"
    );

    let value = |pair: &str| pair.split_once('=').unwrap().1.to_owned();
    let code = query.split('&').find_map(|kv| kv.strip_prefix("code=")).unwrap().to_owned();
    let state = query.split('&').find_map(|kv| kv.strip_prefix("state=")).unwrap().to_owned();
    let keys = KEYS.split(',').map(|k| k.split_once(':').unwrap().1.to_owned());
    let secrets: Vec<(String, String)> = [
        ("session token", value(&session)),
        ("rotated session token", value(&rotated)),
        ("login cookie", value(&login_cookie)),
        ("authorization code", code),
        ("OAuth state", state),
        ("Spotify access token", access),
        ("client secret", "test-secret".to_owned()),
        ("signing key", SIGNING.to_owned()),
    ]
    .into_iter()
    .map(|(what, v)| (what.to_owned(), v))
    .chain(keys.map(|k| ("token encryption key".to_owned(), k)))
    .collect();
    for (what, secret) in &secrets {
        assert!(secret.len() >= 8, "{what} is a real value");
        assert!(!text.contains(secret.as_str()), "the {what} is in the logs");
    }
}
