//! The service as an attacker sees it (docs/design/threats.md): floods, quota spending, logout
//! that must always disconnect, cross-origin writes, over-sharing presence, rotation races.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{LOCATION, RETRY_AFTER};
use serde_json::{Value, json};
use spotauth_crypto::{JwtCodec, JwtSettings};
use spotauth_domain::ports::{Clock as _, SessionTokenCodec as _};
use spotauth_domain::time::Timestamp;
use spotauth_runtime::SystemClock;

use crate::common::*;

/// The user a session cookie names, read with the service's own codec and key (no request has
/// to beat the token's expiry).
fn user_of(b: &Browser) -> spotauth_domain::ids::UserId {
    let codec = JwtCodec::from_config(SIGNING, JwtSettings::default()).unwrap();
    codec.verify_ignoring_time(b.session.split_once('=').unwrap().1).unwrap().user_id
}

fn now() -> Timestamp {
    SystemClock.now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_from_one_address_is_cut_off_after_the_burst_and_leaves_bounded_rows() {
    let app = spawn(Options::default()).await;
    let started = Instant::now();
    let (mut ok, mut limited) = (0u32, 0u32);
    let mut retry_after = None;
    for _ in 0..200 {
        let resp = app.http.post(app.url("/api/auth/spotify/login")).send().await.unwrap();
        match resp.status() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                retry_after = resp.headers().get(RETRY_AFTER).map(|v| v.to_str().unwrap().to_owned());
                // The rate limit; on a machine slow enough to spread the loop over many seconds,
                // the pending-login bound may answer first.
                let body: Value = resp.json().await.unwrap();
                assert!(matches!(body["code"].as_str(), Some("rate_limited" | "too_many_logins")), "{body}");
            }
            other => panic!("unexpected {other}"),
        }
    }
    let elapsed = started.elapsed().as_secs();
    // The default burst is 30, then 60 a minute: one a second.
    let bound = 30 + u32::try_from(elapsed).unwrap() + 1;
    assert!(ok >= 30 && ok <= bound, "{ok} logins began in {elapsed} s; at most {bound}");
    assert_eq!(ok + limited, 200);
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() >= 1), "429 carries Retry-After");
    let pending = app.store.repositories().await.flows.count_pending(None, now()).await.unwrap();
    assert_eq!(u64::from(ok), pending.total, "one row per begun login, none for a refused one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_logins_are_bounded_whatever_the_request_rate() {
    let opts =
        Options { extra: vec![("RATE_LIMITS", "false"), ("LOGIN_PENDING_PER_CLIENT", "5")], ..Options::default() };
    let app = spawn(opts).await;
    for _ in 0..5 {
        app.start_login(None).await;
    }
    let resp = app.http.post(app.url("/api/auth/spotify/login")).send().await.unwrap();
    assert!(resp.headers().contains_key(RETRY_AFTER));
    problem(resp, StatusCode::TOO_MANY_REQUESTS, "too_many_logins").await;
    let pending = app.store.repositories().await.flows.count_pending(None, now()).await.unwrap();
    assert_eq!(pending.total, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_recorded_spotify_backoff_a_login_makes_no_token_request() {
    let app = spawn(Options::default()).await;
    let repos = app.store.repositories().await;
    let t = now();
    repos.rate_limits.extend_backoff("test-client", t.plus(Duration::from_secs(120)), t).await.unwrap();
    let (authorize_url, login_cookie) = app.start_login(None).await;
    let query = app.authorize(&authorize_url, "alice", false).await;
    let resp = app.callback(&query, Some(&login_cookie)).await;
    assert_eq!(error_redirect(&resp), "spotify_rate_limited");
    let location = url::Url::parse(resp.headers()[LOCATION].to_str().unwrap()).unwrap();
    let wait: u64 = location.query_pairs().find(|(k, _)| k == "retryAfter").unwrap().1.parse().unwrap();
    assert!((1..=120).contains(&wait), "{wait}");
    let counters = app.emu.counters().total;
    assert_eq!((counters.token_authorization_code, counters.token_refresh_token, counters.me), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_junk_code_is_refused_as_an_expected_outcome() {
    let app = spawn(Options::default()).await;
    let (authorize_url, login_cookie) = app.start_login(None).await;
    let query = app.authorize(&authorize_url, "alice", false).await;
    let state = query.split('&').find(|p| p.starts_with("state=")).unwrap().to_owned();
    let resp = app.callback(&format!("code=made-up-code&{state}"), Some(&login_cookie)).await;
    assert_eq!(error_redirect(&resp), "code_refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_with_an_expired_session_token_still_disconnects_spotify() {
    let opts = Options { extra: vec![("SESSION_TOKEN_TTL_SECS", "1")], ..Options::default() };
    let app = spawn(opts).await;
    let a = app.login("alice").await;
    let alice = user_of(&a);
    let repos = app.store.repositories().await;
    assert!(repos.tokens.load_tokens(alice).await.unwrap().is_some());
    // The session token's lifetime passes: it no longer authenticates...
    tokio::time::sleep(Duration::from_millis(2100)).await;
    problem(app.get(&a, "/api/users/me").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // ...but it still logs alice out everywhere and disconnects her Spotify.
    let resp = app.post(&a, "/api/auth/spotify/logout").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["spotifyDisconnected"], true, "{body}");
    assert_eq!(repos.tokens.load_tokens(alice).await.unwrap(), None, "no Spotify token stored");
    let alice_row = repos.users.get(alice).await.unwrap().unwrap();
    assert!(!alice_row.has_tokens);
    // Bob signs in and does not see her.
    let bob = app.login("bob").await;
    let list: Value = app.get(&bob, "/api/users/active").await.json().await.unwrap();
    assert!(list["items"].as_array().unwrap().iter().all(|p| p["id"] != alice.to_string()), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_writes_with_the_cookie_are_refused_before_anything_happens() {
    let opts = Options { extra: vec![("CORS_ALLOWED_ORIGINS", "http://localhost:5173")], ..Options::default() };
    let app = spawn(opts).await;
    let a = app.login("alice").await;
    let post = |path: &str| app.http.post(app.url(path)).header("Cookie", &a.session);
    for (origin, site) in [("https://evil.example", None), ("https://evil.example", Some("cross-site"))] {
        for path in ["/api/auth/spotify/logout", "/api/auth/spotify/refresh"] {
            let mut req = post(path).header("Origin", origin);
            if let Some(site) = site {
                req = req.header("Sec-Fetch-Site", site);
            }
            problem(req.send().await.unwrap(), StatusCode::FORBIDDEN, "cross_origin_refused").await;
        }
        let put = app.http.put(app.url("/api/users/me/active")).header("Cookie", &a.session).header("Origin", origin);
        let resp = put.json(&json!({"isActive": false})).send().await.unwrap();
        problem(resp, StatusCode::FORBIDDEN, "cross_origin_refused").await;
    }
    // Nothing happened: alice is still signed in, connected and listed.
    assert_eq!(app.get(&a, "/api/auth/spotify/token").await.status(), StatusCode::OK);
    let me: Value = app.get(&a, "/api/users/me").await.json().await.unwrap();
    assert_eq!((me["isActive"].clone(), me["spotifyConnected"].clone()), (json!(true), json!(true)));
    // The frontend, an allowed origin, the service's own origin, and Bearer clients pass.
    let own = app.base.clone();
    for origin in [FRONTEND.trim_end_matches('/'), "http://localhost:5173", own.as_str()] {
        let put = app.http.put(app.url("/api/users/me/active")).header("Cookie", &a.session).header("Origin", origin);
        assert_eq!(put.json(&json!({"isActive": true})).send().await.unwrap().status(), StatusCode::OK, "{origin}");
    }
    let bearer = a.session.split_once('=').unwrap().1.to_owned();
    let resp = app
        .http
        .post(app.url("/api/auth/spotify/logout?scope=device"))
        .bearer_auth(&bearer)
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "Bearer requests carry no ambient credential");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opt_out_survives_logout_and_login_and_the_list_shares_only_what_a_party_needs() {
    let app = spawn(Options::default()).await;
    let a = app.login("alice").await;
    let b = app.login("bob").await;
    let put = app.http.put(app.url("/api/users/me/active")).header("Cookie", &a.session);
    assert_eq!(put.json(&json!({"isActive": false})).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(app.post(&a, "/api/auth/spotify/logout?scope=device").await.status(), StatusCode::OK);
    let a = app.login("alice").await;
    let list: Value = app.get(&b, "/api/users/active").await.json().await.unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(items[0]["displayName"], "Bob");
    let me: Value = app.get(&a, "/api/users/me").await.json().await.unwrap();
    assert_eq!(me["isActive"], false, "still opted out after logging in again");
    for item in items {
        let mut fields: Vec<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["canPlay", "displayName", "id", "lastSeen", "nowPlaying", "ready"], "{item}");
        assert!(item.get("spotifyId").is_none() && item.get("isPremium").is_none());
        let seen = item["lastSeen"].as_str().unwrap();
        let t = chrono::DateTime::parse_from_rfc3339(seen).unwrap();
        assert!(!seen.contains('.') && t.timestamp() % 300 == 0, "coarse: {seen}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_racing_other_requests_with_the_same_cookie_never_locks_the_user_out() {
    // The default window (5 s): a round's racing requests arrive well within it even on a busy
    // machine.
    let opts = Options { extra: vec![("RATE_LIMIT_PER_CLIENT_BURST", "200")], ..Options::default() };
    let app = spawn(opts).await;
    let mut current = app.login("alice").await;
    let mut rotated_out = Vec::new();
    for round in 0..20 {
        let (refreshed, me, second) = tokio::join!(
            app.post(&current, "/api/auth/spotify/refresh"),
            app.get(&current, "/api/users/me"),
            app.post(&current, "/api/auth/spotify/refresh"),
        );
        assert_eq!(me.status(), StatusCode::OK, "round {round}: a request racing the rotation");
        let mut newest = Vec::new();
        for resp in [refreshed, second] {
            let (status, session) = (resp.status(), cookie_pair(resp.headers(), "__Host-spotauth_session"));
            let body = resp.text().await.unwrap();
            assert_eq!(status, StatusCode::OK, "round {round}: a second rotation gets the successor: {body}");
            newest.push(Browser { session: session.unwrap() });
        }
        rotated_out.push(current);
        // Whichever cookie the browser kept last, it works.
        for browser in &newest {
            assert_eq!(app.get(browser, "/api/users/me").await.status(), StatusCode::OK, "round {round}");
        }
        current = newest.pop().unwrap();
    }
    // Past the window, a rotated-out token is theft: the whole session is revoked.
    tokio::time::sleep(Duration::from_millis(5100)).await;
    let stale = &rotated_out[rotated_out.len() - 1];
    problem(app.get(stale, "/api/users/me").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    problem(app.get(&current, "/api/users/me").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_leave_the_public_address() {
    let opts = Options { extra: vec![("METRICS_ADDR", "127.0.0.1:0")], ..Options::default() };
    let app = spawn(opts).await;
    problem(app.http.get(app.url("/metrics")).send().await.unwrap(), StatusCode::NOT_FOUND, "not_found").await;
    let metrics = app.metrics_base.as_ref().unwrap();
    let resp = app.http.get(format!("{metrics}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("spotauth_token_refreshes_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_callback_sends_the_browser_to_the_frontend_with_the_reason() {
    let opts = Options {
        extra: vec![("RATE_LIMIT_PER_CLIENT_BURST", "2"), ("RATE_LIMIT_PER_CLIENT_PER_MINUTE", "1")],
        ..Options::default()
    };
    let app = spawn(opts).await;
    for _ in 0..2 {
        assert_eq!(error_redirect(&app.callback("code=x&state=y", None).await), "state_missing");
    }
    let resp = app.callback("code=x&state=y", None).await;
    assert_eq!(error_redirect(&resp), "rate_limited");
    let location = url::Url::parse(resp.headers()[LOCATION].to_str().unwrap()).unwrap();
    assert!(location.query_pairs().any(|(k, v)| k == "retryAfter" && v.parse::<u64>().unwrap() >= 1));
    assert_eq!(app.emu.counters().total.token_authorization_code, 0);
}
