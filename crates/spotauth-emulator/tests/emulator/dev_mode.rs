//! Development Mode (February 2026) and Premium detection through the player endpoints.

use reqwest::StatusCode;
use serde_json::Value;
use spotauth_emulator::{AppMode, NOT_ALLOW_LISTED_MESSAGE};

use crate::common::*;

async fn error_body(resp: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(resp.status(), status);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["status"], status.as_u16(), "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body
}

#[tokio::test]
async fn dev_mode_profile_lacks_private_fields() {
    let emu = start(dev_config(&["alice", "carol"])).await;
    let t = login(&emu, "alice").await;
    let me: Value = api_get(&emu, "/me", &s(&t, "access_token")).await.json().await.unwrap();
    assert_eq!(me["id"], "alice");
    assert_eq!(me["account_id"], "acct-alice");
    for field in ["product", "email", "country", "explicit_content", "followers"] {
        assert!(me.get(field).is_none(), "{field} must be absent in Development Mode: {me}");
    }
    for field in ["display_name", "external_urls", "href", "images", "type", "uri"] {
        assert!(me.get(field).is_some(), "{field} present: {me}");
    }
}

#[tokio::test]
async fn dev_mode_non_allow_listed_users_get_403() {
    let emu = start(dev_config(&["alice"])).await;
    // Bob can log in and get tokens...
    let t = login(&emu, "bob").await;
    let at = s(&t, "access_token");
    // ...but every API call is 403, without a PREMIUM_REQUIRED reason.
    let body = error_body(api_get(&emu, "/me", &at).await, StatusCode::FORBIDDEN).await;
    assert_eq!(body["error"]["message"], NOT_ALLOW_LISTED_MESSAGE);
    assert!(body["error"].get("reason").is_none());
    let body = error_body(api_get(&emu, "/me/player", &at).await, StatusCode::FORBIDDEN).await;
    assert!(body["error"].get("reason").is_none());
    let body = error_body(api_put(&emu, "/me/player/play", &at).await, StatusCode::FORBIDDEN).await;
    assert!(body["error"].get("reason").is_none());
    // Allow-listing bob at run time lets him in.
    emu.set_app_mode(AppMode::DevelopmentMode { allow_list: vec!["alice".into(), "bob".into()] }).unwrap();
    assert_eq!(api_get(&emu, "/me", &at).await.status(), StatusCode::OK);
    // Switching to Extended Quota over HTTP brings `product` back.
    let r = client()
        .put(format!("{}/app_mode", emu.control_url()))
        .json(&serde_json::json!({"mode": "extended_quota"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let me: Value = api_get(&emu, "/me", &at).await.json().await.unwrap();
    assert_eq!(me["product"], "premium");
}

async fn check_premium_detection(emu: &spotauth_emulator::EmulatorHandle) {
    let free = login(emu, "carol").await;
    let premium = login(emu, "alice").await;
    for resp in [
        api_get(emu, "/me/player", &s(&free, "access_token")).await,
        api_put(emu, "/me/player/play", &s(&free, "access_token")).await,
    ] {
        let body = error_body(resp, StatusCode::FORBIDDEN).await;
        assert_eq!(body["error"]["reason"], "PREMIUM_REQUIRED");
        assert_eq!(body["error"]["message"], "Player command failed: Premium required");
    }
    assert_eq!(api_get(emu, "/me/player", &s(&premium, "access_token")).await.status(), StatusCode::NO_CONTENT);
    let body =
        error_body(api_put(emu, "/me/player/play", &s(&premium, "access_token")).await, StatusCode::NOT_FOUND).await;
    assert_eq!(body["error"]["reason"], "NO_ACTIVE_DEVICE");
}

#[tokio::test]
async fn premium_detection_in_dev_mode() {
    let emu = start(dev_config(&["alice", "carol"])).await;
    check_premium_detection(&emu).await;
}

#[tokio::test]
async fn premium_detection_in_extended_quota() {
    let emu = start(config()).await;
    check_premium_detection(&emu).await;
}

#[tokio::test]
async fn player_needs_its_scope() {
    let emu = start(config()).await;
    let (verifier, challenge) = pkce();
    let resp = get_authorize(
        &emu,
        &authorize_params(Some(&challenge), &[("login_as", "carol"), ("scope", "user-read-private")]),
    )
    .await;
    let code = param(&location_params(&resp), "code").unwrap().to_owned();
    let t: Value = exchange(&emu, &code, &verifier).await.json().await.unwrap();
    let body = error_body(api_get(&emu, "/me/player", &s(&t, "access_token")).await, StatusCode::FORBIDDEN).await;
    assert!(body["error"].get("reason").is_none(), "missing scope is not PREMIUM_REQUIRED: {body}");
    let body = error_body(api_get(&emu, "/nope", &s(&t, "access_token")).await, StatusCode::NOT_FOUND).await;
    assert!(body["error"]["message"].is_string());
}
