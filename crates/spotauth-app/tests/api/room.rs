//! Listening together: players reported and checked, group play and pause for everyone present
//! (each on their own token and device), consent, the shared 429 backoff, the one retry for a
//! device that just appeared, hosts, live updates across instances, and a 50-person fan-out.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use spotauth_emulator::{Fault, FaultTarget, TestUser};

use crate::common::*;

const TRACK: &str = "spotify:track:4uLU6hMCjMI75M1A2tKUQC";

/// A signed-in person whose page opened a Web Playback SDK player (registered at the emulator
/// with the token our API handed out) and reported it.
struct Member {
    browser: Browser,
    device: String,
}

async fn access_token(app: &TestApp, b: &Browser) -> String {
    let body: Value = app.get(b, "/api/auth/spotify/token").await.json().await.unwrap();
    body["accessToken"].as_str().unwrap().to_owned()
}

/// What the fake SDK does on `connect()`: a device for the token's user.
async fn open_player(app: &TestApp, b: &Browser) -> String {
    app.emu.open_player(&access_token(app, b).await, "Test player").unwrap()
}

async fn report(app: &TestApp, b: &Browser, device: &str) -> reqwest::Response {
    app.http
        .put(app.url("/api/room/player"))
        .header("Cookie", &b.session)
        .json(&json!({ "deviceId": device, "name": "Test player", "nowPlaying": null }))
        .send()
        .await
        .unwrap()
}

async fn join(app: &TestApp, user: &str) -> Member {
    let browser = app.login(user).await;
    let device = open_player(app, &browser).await;
    assert_eq!(report(app, &browser, &device).await.status(), StatusCode::NO_CONTENT);
    Member { browser, device }
}

async fn group(app: &TestApp, b: &Browser, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut req = app.http.post(app.url(path)).header("Cookie", &b.session);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

/// `{display name or id → outcome}` of a group command.
async fn outcomes(resp: reqwest::Response) -> std::collections::BTreeMap<String, String> {
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    body["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let who = o["displayName"].as_str().map_or_else(|| o["id"].as_str().unwrap().to_owned(), str::to_owned);
            let mut what = o["outcome"].as_str().unwrap().to_owned();
            if let Some(s) = o["retryAfter"].as_u64() {
                what = format!("{what} {s}");
            }
            (who, what)
        })
        .collect()
}

fn play_body() -> Option<Value> {
    Some(json!({ "uris": [TRACK] }))
}

fn player_calls(app: &TestApp, user: &str) -> u64 {
    app.emu.counters().user(user).player
}

#[tokio::test]
async fn one_call_starts_everyone_present_on_their_own_account_and_device() {
    let app = spawn(Options::default()).await;
    let alice = join(&app, "alice").await;
    let bob = join(&app, "bob").await;
    let carol = app.login("carol").await;
    let dave = app.login("dave").await; // Premium, no player open
    let carol_calls = player_calls(&app, "carol");

    // The active list says who is ready.
    let list = get_json(&app.http, &app.url("/api/users/active"), &carol.session).await;
    let ready: Vec<bool> = list["items"].as_array().unwrap().iter().map(|p| p["ready"].as_bool().unwrap()).collect();
    assert_eq!(ready.iter().filter(|r| **r).count(), 2, "{list}");

    let got = outcomes(group(&app, &alice.browser, "/api/room/play", play_body()).await).await;
    assert_eq!(got["Alice"], "started");
    assert_eq!(got["Bob"], "started");
    assert_eq!(got["Carol"], "premium_required");
    assert_eq!(got.values().filter(|o| *o == "no_player").count(), 1, "dave: {got:?}");
    let playing = app.emu.player().playing();
    assert_eq!(playing.get("alice"), Some(&alice.device));
    assert_eq!(playing.get("bob"), Some(&bob.device));
    assert_eq!(playing.len(), 2);
    assert_eq!(player_calls(&app, "carol"), carol_calls, "no call for the free account");
    assert_eq!(app.emu.player().playback["alice"].track_uri.as_deref(), Some(TRACK));

    // Pause works the same way; a context plays too.
    let got = outcomes(group(&app, &bob.browser, "/api/room/pause", None).await).await;
    assert_eq!((got["Alice"].as_str(), got["Bob"].as_str()), ("paused", "paused"));
    assert!(app.emu.player().playing().is_empty());
    let context = Some(json!({ "contextUri": "spotify:album:abc", "positionMs": 1000 }));
    let got = outcomes(group(&app, &alice.browser, "/api/room/play", context).await).await;
    assert_eq!(got["Bob"], "started");
    assert_eq!(app.emu.player().playback["bob"].context_uri.as_deref(), Some("spotify:album:abc"));

    // Bad targets: a clear 400, nobody controlled.
    for bad in [json!({}), json!({ "uris": [] }), json!({ "uris": ["spotify:album:x"] }), json!({ "contextUri": "x" })]
    {
        let resp = group(&app, &alice.browser, "/api/room/play", Some(bad)).await;
        problem(resp, StatusCode::BAD_REQUEST, "invalid_target").await;
    }
    drop(dave);
}

#[tokio::test]
async fn people_who_opted_out_or_logged_out_are_not_controlled() {
    let app = spawn(Options::default()).await;
    let alice = join(&app, "alice").await;
    let bob = join(&app, "bob").await;
    let dave = join(&app, "dave").await;
    let put = app.http.put(app.url("/api/users/me/active")).header("Cookie", &bob.browser.session);
    assert_eq!(put.json(&json!({ "isActive": false })).send().await.unwrap().status(), StatusCode::OK);
    let out = app.post(&dave.browser, "/api/auth/spotify/logout?scope=everywhere").await;
    assert_eq!(out.status(), StatusCode::OK);
    let (bob_calls, dave_calls) = (player_calls(&app, "bob"), player_calls(&app, "dave"));

    let got = outcomes(group(&app, &alice.browser, "/api/room/play", play_body()).await).await;
    assert_eq!(got.keys().collect::<Vec<_>>(), ["Alice"], "only the present: {got:?}");
    assert_eq!((player_calls(&app, "bob"), player_calls(&app, "dave")), (bob_calls, dave_calls));
    // Someone who opted out cannot start group playback either.
    let resp = group(&app, &bob.browser, "/api/room/play", play_body()).await;
    problem(resp, StatusCode::FORBIDDEN, "not_host").await;
}

#[tokio::test]
async fn a_429_backs_off_the_rest_of_the_batch_and_later_calls() {
    let opts = Options { extra: vec![("ROOM_CONCURRENCY", "1")], ..Options::default() };
    let app = spawn(opts).await;
    let alice = join(&app, "alice").await;
    join(&app, "bob").await;
    join(&app, "dave").await;
    app.emu.inject_fault(Fault::rate_limited(FaultTarget::Player, 30)).unwrap();
    let before = app.emu.counters().total.player;

    let got = outcomes(group(&app, &alice.browser, "/api/room/play", play_body()).await).await;
    assert_eq!(got.len(), 3);
    assert!(got.values().all(|o| o.starts_with("rate_limited ")), "{got:?}");
    assert_eq!(app.emu.counters().total.player, before + 1, "one call got the 429; no call after it");
    // Later calls too, while the backoff lasts: no call at all.
    let got = outcomes(group(&app, &alice.browser, "/api/room/pause", None).await).await;
    assert!(got.values().all(|o| o.starts_with("rate_limited")), "{got:?}");
    assert_eq!(app.emu.counters().total.player, before + 1);
}

#[tokio::test]
async fn a_device_that_answers_404_once_is_retried_once_and_starts() {
    let app = spawn(Options::default()).await;
    let alice = join(&app, "alice").await;
    app.emu.inject_fault(Fault::device_not_found()).unwrap();
    let before = player_calls(&app, "alice");
    let got = outcomes(group(&app, &alice.browser, "/api/room/play", play_body()).await).await;
    assert_eq!(got["Alice"], "started");
    assert_eq!(player_calls(&app, "alice"), before + 3, "play (404), transfer, play");
    assert_eq!(app.emu.player().playing().get("alice"), Some(&alice.device));

    // A player that vanished (stale at Spotify) is "no player" after its one retry.
    assert!(app.emu.drop_device(&alice.device));
    let got = outcomes(group(&app, &alice.browser, "/api/room/play", play_body()).await).await;
    assert_eq!(got["Alice"], "no_player");
}

#[tokio::test]
async fn reported_players_must_be_the_reporters_own_devices() {
    let app = spawn(Options::default()).await;
    let alice = join(&app, "alice").await;
    let bob = app.login("bob").await;
    problem(report(&app, &bob, &alice.device).await, StatusCode::NOT_FOUND, "device_not_found").await;
    problem(report(&app, &bob, "0123456789abcdef").await, StatusCode::NOT_FOUND, "device_not_found").await;
    problem(report(&app, &bob, "not a device id!").await, StatusCode::BAD_REQUEST, "invalid_device").await;
    let carol = app.login("carol").await;
    problem(report(&app, &carol, "abc").await, StatusCode::FORBIDDEN, "premium_required").await;
    // Leaving is idempotent; then the person has no player.
    for _ in 0..2 {
        let url = app.url(&format!("/api/room/player?deviceId={}", alice.device));
        let gone = app.http.delete(url).header("Cookie", &alice.browser.session).send().await.unwrap();
        assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    }
    let got = outcomes(group(&app, &alice.browser, "/api/room/play", play_body()).await).await;
    assert_eq!(got["Alice"], "no_player");
}

#[tokio::test]
async fn only_hosts_start_group_playback_when_hosts_are_set() {
    let app = spawn(Options { extra: vec![("ROOM_HOSTS", "alice")], ..Options::default() }).await;
    let alice = join(&app, "alice").await;
    let bob = join(&app, "bob").await;
    problem(group(&app, &bob.browser, "/api/room/play", play_body()).await, StatusCode::FORBIDDEN, "not_host").await;
    let got = outcomes(group(&app, &alice.browser, "/api/room/play", play_body()).await).await;
    assert_eq!((got["Alice"].as_str(), got["Bob"].as_str()), ("started", "started"));
}

/// Reads `event: room` versions from an event stream until `want` holds, within `bound`.
async fn next_version(
    stream: &mut reqwest::Response,
    buffer: &mut String,
    bound: Duration,
    want: impl Fn(u64) -> bool,
) -> Option<u64> {
    let deadline = Instant::now() + bound;
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(v) = event
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .and_then(|d| serde_json::from_str::<Value>(d).ok().and_then(|v| v["version"].as_u64()))
                && want(v)
            {
                return Some(v);
            }
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.chunk()).await {
            Ok(Ok(Some(chunk))) => buffer.push_str(&String::from_utf8_lossy(&chunk)),
            _ => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arrival_on_one_instance_reaches_pages_on_another_within_the_poll_interval() {
    let opts = Options { extra: vec![("ROOM_EVENTS_POLL_MS", "200")], ..Options::default() };
    let app = spawn(opts).await;
    let b_base = app.sibling().await;
    let bob = app.login("bob").await;
    let mut stream =
        app.http.get(format!("{b_base}/api/room/events")).header("Cookie", &bob.session).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut buffer = String::new();
    let first = next_version(&mut stream, &mut buffer, Duration::from_secs(10), |_| true).await.unwrap();

    // Alice's player arrives through instance A; the page on B hears it.
    let mut delays = Vec::new();
    let mut seen = first;
    for user in ["alice", "dave"] {
        let started = Instant::now();
        join(&app, user).await;
        let v = next_version(&mut stream, &mut buffer, Duration::from_secs(5), |v| v > seen).await;
        seen = v.expect("B's page heard of the arrival within 5 s");
        delays.push(started.elapsed());
    }
    eprintln!("room change A → page on B: {delays:?} (poll interval 200 ms)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_people_one_play_call_each() {
    let opts = Options {
        extra: vec![("RATE_LIMITS", "false"), ("ROOM_CONCURRENCY", "16"), ("LOGIN_PENDING_PER_CLIENT", "1000")],
        ..Options::default()
    };
    let app = spawn(opts).await;
    let mut members = Vec::new();
    for i in 0..50 {
        let id = format!("listener{i:02}");
        app.emu.add_user(TestUser::premium(&id).with_display_name(&id));
        members.push(join(&app, &id).await);
    }
    let before: Vec<u64> = (0..50).map(|i| player_calls(&app, &format!("listener{i:02}"))).collect();
    let mut took = Vec::new();
    for round in 0..5 {
        let started = Instant::now();
        let path = if round % 2 == 0 { "/api/room/play" } else { "/api/room/pause" };
        let body = (round % 2 == 0).then(|| json!({ "uris": [TRACK] }));
        let got = outcomes(group(&app, &members[0].browser, path, body).await).await;
        took.push(started.elapsed());
        let done = if round % 2 == 0 { "started" } else { "paused" };
        assert_eq!(got.values().filter(|o| *o == done).count(), 50, "{got:?}");
    }
    for (i, b) in before.iter().enumerate() {
        assert_eq!(player_calls(&app, &format!("listener{i:02}")), b + 5, "exactly one call per person per command");
    }
    took.sort();
    eprintln!("fan-out to 50 people: min {:?}, median {:?}, max {:?}", took[0], took[2], took[4]);
    assert!(took[4] < Duration::from_secs(20), "bounded: {took:?}");
}
