//! Fault injection and counters.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use spotauth_emulator::{Fault, FaultTarget};

use crate::common::*;

#[tokio::test]
async fn rate_limit_on_web_api_and_token_endpoint() {
    let emu = start(config()).await;
    let t = login(&emu, "alice").await;
    let at = s(&t, "access_token");
    emu.inject_fault(Fault::rate_limited(FaultTarget::Me, 7)).unwrap();
    let r = api_get(&emu, "/me", &at).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "7");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"error": {"status": 429, "message": "API rate limit exceeded"}}));
    // Only once.
    assert_eq!(api_get(&emu, "/me", &at).await.status(), StatusCode::OK);

    emu.inject_fault(Fault::quota_exceeded(FaultTarget::Player, 86_400)).unwrap();
    let r = api_get(&emu, "/me/player", &at).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "86400");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["reason"], "QUOTA_EXCEEDED");

    emu.inject_fault(Fault::rate_limited(FaultTarget::Token, 3).times(2)).unwrap();
    for _ in 0..2 {
        let r = refresh(&emu, &s(&t, "refresh_token")).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], "3");
    }
    assert_eq!(refresh(&emu, &s(&t, "refresh_token")).await.status(), StatusCode::OK);
    let c = emu.counters();
    assert_eq!(c.total.token_refresh_token, 3);
    assert_eq!(c.user("alice").token_refresh_token, 3);
    assert_eq!(c.total.me, 2);
    assert_eq!(c.total.player, 1);
}

#[tokio::test]
async fn server_errors() {
    let emu = start(config()).await;
    let t = login(&emu, "alice").await;
    for status in [500u16, 502, 503] {
        emu.inject_fault(Fault::server_error(FaultTarget::Token, status)).unwrap();
        let r = refresh(&emu, &s(&t, "refresh_token")).await;
        assert_eq!(r.status().as_u16(), status);
        emu.inject_fault(Fault::server_error(FaultTarget::Me, status)).unwrap();
        let r = api_get(&emu, "/me", &s(&t, "access_token")).await;
        assert_eq!(r.status().as_u16(), status);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["status"], status);
    }
    assert_eq!(refresh(&emu, &s(&t, "refresh_token")).await.status(), StatusCode::OK);
    assert!(emu.inject_fault(Fault::server_error(FaultTarget::Me, 200)).is_err());
    assert!(emu.inject_fault(Fault::server_error(FaultTarget::Me, 500).times(0)).is_err());
}

#[tokio::test]
async fn faults_until_cleared_and_any_target() {
    let emu = start(config()).await;
    let t = login(&emu, "alice").await;
    emu.inject_fault(Fault::server_error(FaultTarget::Any, 503).always()).unwrap();
    for _ in 0..3 {
        assert_eq!(api_get(&emu, "/me", &s(&t, "access_token")).await.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refresh(&emu, &s(&t, "refresh_token")).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let r = get_authorize(&emu, &authorize_params(None, &[("login_as", "alice")])).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    emu.clear_faults();
    assert_eq!(api_get(&emu, "/me", &s(&t, "access_token")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn slow_answers() {
    let emu = start(config()).await;
    let t = login(&emu, "alice").await;
    emu.inject_fault(Fault::slow(FaultTarget::Me, Duration::from_millis(400))).unwrap();
    let started = Instant::now();
    let r = api_get(&emu, "/me", &s(&t, "access_token")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(400));
    // A client timeout shorter than the delay fires.
    emu.inject_fault(Fault::slow(FaultTarget::Token, Duration::from_millis(2000))).unwrap();
    let err = client()
        .post(emu.token_url())
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &s(&t, "refresh_token"))])
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

fn assert_transport_error(err: &reqwest::Error) {
    assert!(err.status().is_none(), "no HTTP status: {err:?}");
    assert!(err.is_request() || err.is_connect() || err.is_body(), "a transport error: {err:?}");
    assert!(!err.is_timeout(), "not a timeout: {err:?}");
}

#[tokio::test]
async fn dropped_connections() {
    let emu = start(config()).await;
    let t = login(&emu, "alice").await;
    let started = Instant::now();
    emu.inject_fault(Fault::drop_connection(FaultTarget::Token)).unwrap();
    let err = client()
        .post(emu.token_url())
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &s(&t, "refresh_token"))])
        .send()
        .await
        .unwrap_err();
    assert_transport_error(&err);
    emu.inject_fault(Fault::drop_connection(FaultTarget::Me)).unwrap();
    let err =
        client().get(format!("{}/me", emu.api_url())).bearer_auth(s(&t, "access_token")).send().await.unwrap_err();
    assert_transport_error(&err);
    assert!(started.elapsed() < Duration::from_secs(5), "dropped at once, not timed out");
    // The same client keeps working afterwards.
    let c = client();
    emu.inject_fault(Fault::drop_connection(FaultTarget::Player)).unwrap();
    let url = format!("{}/me/player", emu.api_url());
    assert_transport_error(&c.get(&url).bearer_auth(s(&t, "access_token")).send().await.unwrap_err());
    assert_eq!(c.get(&url).bearer_auth(s(&t, "access_token")).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    // The token was not used by the dropped request.
    assert_eq!(refresh(&emu, &s(&t, "refresh_token")).await.status(), StatusCode::OK);
    let counters = emu.counters();
    assert_eq!(counters.total.token_refresh_token, 2);
    assert_eq!(counters.total.me, 1);
    assert_eq!(counters.total.player, 2);
}

#[tokio::test]
async fn counters_and_control_api() {
    let emu = start(config()).await;
    let alice = login(&emu, "alice").await;
    let carol = login(&emu, "carol").await;
    refresh(&emu, &s(&alice, "refresh_token")).await;
    api_get(&emu, "/me", &s(&alice, "access_token")).await;
    api_get(&emu, "/me", &s(&carol, "access_token")).await;
    api_get(&emu, "/me/player", &s(&carol, "access_token")).await;
    api_put(&emu, "/me/player/play", &s(&carol, "access_token")).await;

    let c = emu.counters();
    assert_eq!(c.total.authorize, 2);
    assert_eq!(c.total.token_authorization_code, 2);
    assert_eq!(c.total.token_refresh_token, 1);
    assert_eq!(c.total.token_total(), 3);
    assert_eq!(c.total.me, 2);
    assert_eq!(c.total.player, 2);
    assert_eq!(c.user("alice").token_refresh_token, 1);
    assert_eq!(c.user("alice").token_authorization_code, 1);
    assert_eq!(c.user("carol").player, 2);
    assert_eq!(c.user("bob"), Default::default());

    let json: Value =
        client().get(format!("{}/counters", emu.control_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(json["total"]["token_refresh_token"], 1);
    assert_eq!(json["per_user"]["carol"]["me"], 1);

    let r = client().delete(format!("{}/counters", emu.control_url())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(emu.counters(), Default::default());

    // Faults over HTTP.
    let r = client()
        .post(format!("{}/faults", emu.control_url()))
        .json(&serde_json::json!({"target": "me", "kind": "rate_limited", "retry_after_secs": 2, "times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = api_get(&emu, "/me", &s(&alice, "access_token")).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = client()
        .post(format!("{}/faults", emu.control_url()))
        .json(&serde_json::json!({"target": "any", "kind": "drop_connection"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = client().delete(format!("{}/faults", emu.control_url())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(api_get(&emu, "/me", &s(&alice, "access_token")).await.status(), StatusCode::OK);
    // Bad control input: 400 with a JSON error.
    let r = client()
        .post(format!("{}/faults", emu.control_url()))
        .json(&serde_json::json!({"target": "nowhere", "kind": "drop_connection"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
}
