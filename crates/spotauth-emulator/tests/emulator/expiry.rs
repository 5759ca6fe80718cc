//! Token lifetimes on the emulator clock: 6-month absolute refresh expiry, revocation, access
//! token expiry.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use spotauth_emulator::{REFRESH_TOKEN_LIFETIME, RefreshMode};

use crate::common::*;

const DAY: u64 = 24 * 3600;

#[tokio::test]
async fn refresh_tokens_expire_six_months_after_original_authorization() {
    for mode in [RefreshMode::Rotate, RefreshMode::Keep, RefreshMode::SingleUse] {
        // A frozen clock: "one second before expiry" must not cross a real second boundary.
        let emu = start(config().refresh_mode(mode).frozen_clock()).await;
        let t = login(&emu, "alice").await;
        let mut rt = s(&t, "refresh_token");
        // Refresh every 30 days: it never extends the absolute expiry.
        for _ in 0..6 {
            emu.advance_clock(Duration::from_secs(30 * DAY));
            let r = refresh(&emu, &rt).await;
            assert_eq!(r.status(), StatusCode::OK, "{mode:?}");
            let body: Value = r.json().await.unwrap();
            if let Some(new) = body["refresh_token"].as_str() {
                rt = new.to_owned();
            }
        }
        // Day 180 now; 182 days is the limit.
        emu.advance_clock(Duration::from_secs(REFRESH_TOKEN_LIFETIME.as_secs() - 180 * DAY - 1));
        // One second before expiry it still works; a token issued now expires at the same instant.
        let r = refresh(&emu, &rt).await;
        assert_eq!(r.status(), StatusCode::OK, "{mode:?}: one second before expiry");
        let body: Value = r.json().await.unwrap();
        if let Some(new) = body["refresh_token"].as_str() {
            rt = new.to_owned();
        }
        emu.advance_clock(Duration::from_secs(1));
        let body = assert_oauth_error(refresh(&emu, &rt).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert_eq!(body["error_description"], "Refresh token expired", "{mode:?}");
        // A new authorization starts a new 6 months.
        let t = login(&emu, "alice").await;
        assert_eq!(refresh(&emu, &s(&t, "refresh_token")).await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn revoked_refresh_tokens_answer_invalid_grant() {
    let emu = start(config()).await;
    let alice = login(&emu, "alice").await;
    let bob = login(&emu, "bob").await;
    assert_eq!(emu.revoke_refresh_tokens("alice"), 1);
    assert_oauth_error(refresh(&emu, &s(&alice, "refresh_token")).await, StatusCode::BAD_REQUEST, "invalid_grant")
        .await;
    // Access tokens already issued stay valid (Spotify: up to an hour).
    assert_eq!(api_get(&emu, "/me", &s(&alice, "access_token")).await.status(), StatusCode::OK);
    // Other users are unaffected.
    assert_eq!(refresh(&emu, &s(&bob, "refresh_token")).await.status(), StatusCode::OK);
    // Through the control API.
    let r = client().post(format!("{}/users/bob/revoke", emu.control_url())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["revoked"], 2);
    assert_oauth_error(refresh(&emu, &s(&bob, "refresh_token")).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

async fn assert_401(resp: reqwest::Response, message: &str) {
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().get("www-authenticate").is_some());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["status"], 401);
    assert_eq!(body["error"]["message"], message);
}

#[tokio::test]
async fn access_tokens_expire() {
    let emu = start(config().frozen_clock()).await;
    let t = login(&emu, "alice").await;
    let at = s(&t, "access_token");
    emu.advance_clock(Duration::from_secs(3599));
    assert_eq!(api_get(&emu, "/me", &at).await.status(), StatusCode::OK);
    emu.advance_clock(Duration::from_secs(1));
    assert_401(api_get(&emu, "/me", &at).await, "The access token expired").await;
    assert_401(api_get(&emu, "/me/player", &at).await, "The access token expired").await;
    let r: Value = refresh(&emu, &s(&t, "refresh_token")).await.json().await.unwrap();
    assert_eq!(api_get(&emu, "/me", &s(&r, "access_token")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn forced_access_token_expiry_and_bad_tokens() {
    let emu = start(config().access_token_lifetime(Duration::from_secs(60))).await;
    let t = login(&emu, "alice").await;
    assert_eq!(t["expires_in"], 60);
    let bob = login(&emu, "bob").await;
    let at = s(&t, "access_token");
    assert_eq!(emu.expire_access_tokens("alice"), 1);
    assert_401(api_get(&emu, "/me", &at).await, "The access token expired").await;
    assert_eq!(api_get(&emu, "/me", &s(&bob, "access_token")).await.status(), StatusCode::OK);
    // Through the control API.
    let r = client().post(format!("{}/users/bob/expire_access_tokens", emu.control_url())).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["expired"], 1);
    assert_401(api_get(&emu, "/me", &s(&bob, "access_token")).await, "The access token expired").await;
    // New tokens work.
    let r: Value = refresh(&emu, &s(&t, "refresh_token")).await.json().await.unwrap();
    assert_eq!(api_get(&emu, "/me", &s(&r, "access_token")).await.status(), StatusCode::OK);
    // Unknown and missing tokens.
    assert_401(api_get(&emu, "/me", "BQnot-a-token").await, "Invalid access token").await;
    assert_401(client().get(format!("{}/me", emu.api_url())).send().await.unwrap(), "No token provided").await;
    // Clock through the control API.
    let r = client()
        .post(format!("{}/clock/advance", emu.control_url()))
        .json(&serde_json::json!({"seconds": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["offset_seconds"], 10);
    let c: Value = client().get(format!("{}/clock", emu.control_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(c["offset_seconds"], 10);
}
