//! The session cache's consistency rule (docs/design/session-tokens.md, "The cache"): changes
//! made on one instance reach another within the staleness bound, the instance that made them
//! sees them at once, strict mode reads the database on every request, and an unreachable
//! database is served from memory for at most the bound, then refused, with nothing lost.
//! Always on MariaDB through a [`DbProxy`] (a shared store is what the rule is about).

use std::str::FromStr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use spotauth_domain::ids::UserId;

use crate::common::*;

/// The bound these tests run with.
const BOUND: Duration = Duration::from_millis(400);
const BOUND_MS: &str = "400";
/// What a change may take beyond the bound before a test fails: the polling here and one
/// request's round trip on a busy machine. (The bound itself holds by construction: a cached
/// answer needs a journal read that started less than the bound ago, and that read saw every
/// change committed before it.)
const MARGIN: Duration = Duration::from_millis(1000);

async fn cached_app(extra: Vec<(&'static str, &'static str)>) -> TestApp {
    let mut extra = extra;
    extra.extend([("SESSION_CACHE_STALENESS_MS", BOUND_MS), ("RATE_LIMITS", "false")]);
    spawn(Options { extra, mysql_through_proxy: true, ..Options::default() }).await
}

fn on(base: &str, path: &str) -> String {
    format!("{base}{path}")
}

async fn status(app: &TestApp, url: &str, b: &Browser) -> StatusCode {
    app.http.get(url).header("Cookie", &b.session).send().await.unwrap().status()
}

/// Asks `check` every 10 ms until it holds; when the check that held was asked (panics after
/// 10 s).
async fn until<F, Fut>(mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        let asked = started.elapsed();
        if check().await {
            return asked;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never happened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn worst(delays: &[Duration]) -> Duration {
    delays.iter().copied().max().unwrap_or_default()
}

/// `spotauth_session_cache_journal_age_seconds` of the instance at `base`.
async fn journal_age(base: &str, http: &reqwest::Client) -> f64 {
    let text = http.get(on(base, "/metrics")).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with("spotauth_session_cache_journal_age_seconds ")).unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

async fn memory_reads(base: &str, http: &reqwest::Client) -> u64 {
    let text = http.get(on(base, "/metrics")).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with("spotauth_session_cache_reads_total{from=\"memory\"}")).unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_opt_out_and_a_reauthorization_mark_reach_another_instance_within_the_bound() {
    let app = cached_app(vec![]).await;
    let b = app.sibling().await;
    let bob = app.login("bob").await;

    // Logout on A: B refuses the session within the bound, trial after trial.
    let mut logout = Vec::new();
    for _ in 0..6 {
        let alice = app.login("alice").await;
        for _ in 0..3 {
            assert_eq!(status(&app, &on(&b, "/api/users/me"), &alice).await, StatusCode::OK);
        }
        assert_eq!(app.post(&alice, "/api/auth/spotify/logout?scope=device").await.status(), StatusCode::OK);
        let url = on(&b, "/api/users/me");
        logout.push(until(|| async { status(&app, &url, &alice).await == StatusCode::UNAUTHORIZED }).await);
    }
    assert!(memory_reads(&b, &app.http).await > 0, "B answered from memory");
    let age = journal_age(&b, &app.http).await;
    assert!(age < BOUND.as_secs_f64(), "B follows the journal: its last read started {age} s ago");

    // Opt-out on A: Bob's list on B drops Alice within the bound.
    let alice = app.login("alice").await;
    let listed = |base: String| {
        let (http, bob) = (app.http.clone(), bob.clone());
        async move {
            let list = get_json(&http, &on(&base, "/api/users/active"), &bob.session).await;
            list["items"].as_array().unwrap().iter().any(|i| i["displayName"] == "Alice")
        }
    };
    let mut opt_out = Vec::new();
    for _ in 0..4 {
        let put = |active: bool| {
            app.http
                .put(app.url("/api/users/me/active"))
                .header("Cookie", &alice.session)
                .json(&json!({"isActive": active}))
        };
        assert_eq!(put(true).send().await.unwrap().status(), StatusCode::OK);
        until(|| listed(b.clone())).await;
        assert_eq!(put(false).send().await.unwrap().status(), StatusCode::OK);
        opt_out.push(until(|| async { !listed(b.clone()).await }).await);
    }

    // A re-authorization mark written by another instance: B stops serving the cached token.
    let me = get_json(&app.http, &app.url("/api/users/me"), &alice.session).await;
    let id = UserId::from_str(me["id"].as_str().unwrap()).unwrap();
    assert_eq!(status(&app, &on(&b, "/api/auth/spotify/token"), &alice).await, StatusCode::OK);
    let store = app.store.repositories().await;
    let version = store.tokens.load_tokens(id).await.unwrap().unwrap().version;
    store.tokens.mark_reauth_required(id, version).await.unwrap();
    let url = on(&b, "/api/auth/spotify/token");
    let reauth = until(|| async {
        let resp = app.http.get(&url).header("Cookie", &alice.session).send().await.unwrap();
        resp.status() == StatusCode::UNAUTHORIZED
            && resp.json::<Value>().await.unwrap()["code"] == "spotify_reauth_required"
    })
    .await;

    eprintln!(
        "bound {BOUND:?}: logout → B {logout:?} (worst {:?}); opt-out → B {opt_out:?}; reauth mark → B {reauth:?}",
        worst(&logout)
    );
    for d in logout.iter().chain(&opt_out).chain([&reauth]) {
        assert!(*d <= BOUND + MARGIN, "{d:?} > {:?}", BOUND + MARGIN);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_deleted_elsewhere_is_refused_within_the_bound() {
    let app = cached_app(vec![]).await;
    let b = app.sibling().await;
    let bob = app.login("bob").await;
    let mut gone = Vec::new();
    for _ in 0..3 {
        let alice = app.login("alice").await;
        for who in [&alice, &bob] {
            assert_eq!(status(&app, &on(&b, "/api/users/me"), who).await, StatusCode::OK);
        }
        let deleted = app.http.delete(app.url("/api/users/me")).header("Cookie", &alice.session).send().await.unwrap();
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        // The journal names no erased user: B forgets everyone, and only reads them again.
        let url = on(&b, "/api/users/me");
        gone.push(until(|| async { status(&app, &url, &alice).await == StatusCode::UNAUTHORIZED }).await);
        assert_eq!(status(&app, &url, &bob).await, StatusCode::OK, "the others stay signed in");
    }
    eprintln!("bound {BOUND:?}: account deleted on A → refused on B {gone:?}");
    for d in &gone {
        assert!(*d <= BOUND + MARGIN, "{d:?} > {:?}", BOUND + MARGIN);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_elsewhere_is_reuse_on_refresh_at_once_and_everywhere_after_the_bound() {
    let app = cached_app(vec![("SESSION_ROTATION_GRACE_SECS", "0")]).await;
    let b = app.sibling().await;

    // Rotated on A; the rotated-out token presented to B's /refresh is reuse at once (rotation
    // never trusts a cached view): the whole session ends.
    let old = app.login("alice").await;
    assert_eq!(status(&app, &on(&b, "/api/users/me"), &old).await, StatusCode::OK);
    let rotated = app.post(&old, "/api/auth/spotify/refresh").await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let new = Browser { session: cookie_pair(rotated.headers(), "__Host-spotauth_session").unwrap() };
    let resp = app.http.post(on(&b, "/api/auth/spotify/refresh")).header("Cookie", &old.session).send().await.unwrap();
    problem(resp, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(app.get(&new, "/api/users/me").await.status(), StatusCode::UNAUTHORIZED, "session revoked");

    // Rotated on A; past the bound, B refuses the rotated-out token (and, it being reuse, the
    // session ends); within it B may still have accepted it.
    let old = app.login("alice").await;
    assert_eq!(status(&app, &on(&b, "/api/users/me"), &old).await, StatusCode::OK);
    assert_eq!(app.post(&old, "/api/auth/spotify/refresh").await.status(), StatusCode::OK);
    tokio::time::sleep(BOUND + MARGIN).await;
    assert_eq!(status(&app, &on(&b, "/api/users/me"), &old).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_instance_that_made_a_change_sees_it_on_the_very_next_request() {
    let app = cached_app(vec![("SESSION_ROTATION_GRACE_SECS", "0")]).await;
    let bob = app.login("bob").await;
    for _ in 0..10 {
        let alice = app.login("alice").await;
        for _ in 0..3 {
            assert_eq!(app.get(&alice, "/api/users/me").await.status(), StatusCode::OK);
        }
        let put = app.http.put(app.url("/api/users/me/active")).header("Cookie", &alice.session);
        assert_eq!(put.json(&json!({"isActive": false})).send().await.unwrap().status(), StatusCode::OK);
        let list = get_json(&app.http, &app.url("/api/users/active"), &bob.session).await;
        assert!(!list["items"].as_array().unwrap().iter().any(|i| i["displayName"] == "Alice"), "{list}");
        let put = app.http.put(app.url("/api/users/me/active")).header("Cookie", &alice.session);
        assert_eq!(put.json(&json!({"isActive": true})).send().await.unwrap().status(), StatusCode::OK);
        let list = get_json(&app.http, &app.url("/api/users/active"), &bob.session).await;
        assert!(list["items"].as_array().unwrap().iter().any(|i| i["displayName"] == "Alice"), "{list}");

        let rotated = app.post(&alice, "/api/auth/spotify/refresh").await;
        let alice_now = Browser { session: cookie_pair(rotated.headers(), "__Host-spotauth_session").unwrap() };
        assert_eq!(app.get(&alice_now, "/api/users/me").await.status(), StatusCode::OK);
        assert_eq!(app.post(&alice_now, "/api/auth/spotify/logout?scope=device").await.status(), StatusCode::OK);
        assert_eq!(app.get(&alice_now, "/api/users/me").await.status(), StatusCode::UNAUTHORIZED, "no window");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mode_reads_the_database_on_every_request_and_the_cache_almost_never() {
    const N: u64 = 200;
    let mut per_request = Vec::new();
    // A wide bound for the cached leg: this test counts statements; a busy machine delaying the
    // journal reads past a tight bound would (rightly) send requests to the database.
    for bound in ["0", "3000"] {
        let app = spawn(Options {
            extra: vec![("SESSION_CACHE_STALENESS_MS", bound), ("RATE_LIMITS", "false")],
            mysql_through_proxy: true,
            ..Options::default()
        })
        .await;
        let alice = app.login("alice").await;
        assert_eq!(app.get(&alice, "/api/users/me").await.status(), StatusCode::OK);
        if bound != "0" {
            until(|| async {
                app.get(&alice, "/api/users/me").await;
                memory_reads(&app.base, &app.http).await > 0
            })
            .await;
        }
        let proxy = app.proxy.as_ref().unwrap();
        let before = proxy.commands();
        for _ in 0..N {
            assert_eq!(app.get(&alice, "/api/users/me").await.status(), StatusCode::OK);
        }
        per_request.push((proxy.commands() - before) as f64 / N as f64);
    }
    eprintln!("database commands per /me: strict {:.3}, cached {:.3}", per_request[0], per_request[1]);
    assert!(per_request[0] >= 1.0, "strict: every request reads the session ({})", per_request[0]);
    // What remains is the instance's own polling (journal, room version) while the loop runs.
    assert!(per_request[1] < 0.2, "cached: {}", per_request[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_served_from_memory_for_at_most_the_bound_then_refused() {
    let app = cached_app(vec![]).await;
    let alice = app.login("alice").await;
    // Warm: the journal followed, Alice's session in memory.
    until(|| async {
        memory_reads(&app.base, &app.http).await > 0
            || app.get(&alice, "/api/users/me").await.status() != StatusCode::OK
    })
    .await;
    let proxy = app.proxy.as_ref().unwrap();

    proxy.go_down();
    let down = Instant::now();
    let mut last_ok = None;
    let mut refused = None;
    while down.elapsed() < BOUND + MARGIN + Duration::from_secs(1) {
        let (asked, sent) = (Instant::now(), down.elapsed());
        let resp = app.get(&alice, "/api/users/me").await;
        assert!(asked.elapsed() < Duration::from_secs(5), "an answer, not a hang");
        match resp.status() {
            // Served from memory: decided between `sent` and now.
            StatusCode::OK => last_ok = Some(sent),
            StatusCode::SERVICE_UNAVAILABLE => {
                refused.get_or_insert(down.elapsed());
            }
            other => panic!("{other}: never 401 because the database is away (nobody is logged out)"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("database away: last served from memory at {last_ok:?}, refused (503) from {refused:?}");
    assert!(last_ok.is_none_or(|t| t <= BOUND + MARGIN), "{last_ok:?}");
    assert!(refused.is_some(), "fail-safe after the bound");

    proxy.come_back();
    let back = until(|| async {
        let resp = app.get(&alice, "/api/users/me").await;
        let ok = resp.status() == StatusCode::OK;
        if !ok {
            eprintln!("{}: {}", resp.status(), resp.text().await.unwrap());
        }
        ok
    })
    .await;
    eprintln!("database back: served again after {back:?}");
    assert!(back < Duration::from_secs(5));
    // Nothing stored was lost: the session, the user and the tokens are all there.
    let token = app.get(&alice, "/api/auth/spotify/token").await;
    assert_eq!(token.status(), StatusCode::OK);
    let token: Value = token.json().await.unwrap();
    assert_eq!(app.spotify_user_of(token["accessToken"].as_str().unwrap()).await, "alice");
}
