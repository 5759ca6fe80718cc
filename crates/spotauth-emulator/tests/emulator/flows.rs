//! Happy paths: authorize, exchange, /v1/me, refresh in each mode, login queue, denial.

use reqwest::StatusCode;
use serde_json::Value;
use spotauth_emulator::{RefreshMode, TestUser};

use crate::common::*;

#[tokio::test]
async fn full_flow_extended_quota_rotate() {
    let emu = start(config()).await;
    let tokens = login(&emu, "alice").await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], SCOPES);
    let access = s(&tokens, "access_token");
    let refresh1 = s(&tokens, "refresh_token");

    let me = api_get(&emu, "/me", &access).await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["id"], "alice");
    assert_eq!(me["account_id"], "acct-alice");
    assert_eq!(me["display_name"], "Alice");
    assert_eq!(me["type"], "user");
    assert_eq!(me["uri"], "spotify:user:alice");
    assert_eq!(me["product"], "premium");
    assert_eq!(me["email"], "alice@example.test");
    assert_eq!(me["country"], "SE");
    assert!(me["explicit_content"].is_object());
    assert!(me["followers"].is_object());
    assert!(me["images"].is_array());
    assert_eq!(me["href"], format!("{}/users/alice", emu.api_url()));

    // Rotate: a new refresh token each time; the next refresh uses it.
    let r = refresh(&emu, &refresh1).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r: Value = r.json().await.unwrap();
    let refresh2 = s(&r, "refresh_token");
    assert_ne!(refresh2, refresh1);
    assert_ne!(s(&r, "access_token"), access);
    assert_eq!(r["scope"], SCOPES);
    let r = refresh(&emu, &refresh2).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r: Value = r.json().await.unwrap();
    assert_eq!(api_get(&emu, "/me", &s(&r, "access_token")).await.status(), StatusCode::OK);
    // Documented choice: in Rotate mode an older refresh token stays valid.
    assert_eq!(refresh(&emu, &refresh1).await.status(), StatusCode::OK);
    // The first access token is still valid too.
    assert_eq!(api_get(&emu, "/me", &access).await.status(), StatusCode::OK);

    let c = emu.counters();
    assert_eq!(c.total.authorize, 1);
    assert_eq!(c.total.token_authorization_code, 1);
    assert_eq!(c.total.token_refresh_token, 3);
    assert_eq!(c.user("alice").me, 3);
    // The third refresh presented a replaced token: one reuse, its successor (refresh2) used.
    assert_eq!(c.user("alice").token_refresh_reused, 1);
    let reuses = emu.refresh_reuses();
    assert_eq!(reuses.len(), 1);
    assert_eq!(reuses[0].user_id, "alice");
    assert!(reuses[0].successor_presented);
    assert!(reuses[0].replaced_at <= reuses[0].reused_at);
    emu.stop().await;
}

#[tokio::test]
async fn refresh_mode_keep_omits_refresh_token() {
    let emu = start(config().refresh_mode(RefreshMode::Keep)).await;
    let tokens = login(&emu, "alice").await;
    let rt = s(&tokens, "refresh_token");
    for _ in 0..2 {
        let r = refresh(&emu, &rt).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert!(body.get("refresh_token").is_none(), "no refresh_token field: {body}");
        assert_eq!(api_get(&emu, "/me", &s(&body, "access_token")).await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn refresh_mode_single_use_rejects_reuse() {
    let emu = start(config().refresh_mode(RefreshMode::SingleUse)).await;
    let tokens = login(&emu, "alice").await;
    let rt1 = s(&tokens, "refresh_token");
    let r = refresh(&emu, &rt1).await;
    assert_eq!(r.status(), StatusCode::OK);
    let rt2 = s(&r.json::<Value>().await.unwrap(), "refresh_token");
    assert_ne!(rt1, rt2);
    assert_oauth_error(refresh(&emu, &rt1).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(refresh(&emu, &rt2).await.status(), StatusCode::OK);
    assert_oauth_error(refresh(&emu, &rt2).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // Both refused presentations were reuses; rt3 (rt2's successor) was never presented.
    assert_eq!(emu.counters().user("alice").token_refresh_reused, 2);
    let fates: Vec<bool> = emu.refresh_reuses().iter().map(|r| r.successor_presented).collect();
    assert_eq!(fates, [true, false]);
    emu.reset_counters();
    assert!(emu.refresh_reuses().is_empty());
}

#[tokio::test]
async fn per_user_refresh_mode_override() {
    let emu = start(config()).await;
    emu.set_user_refresh_mode("bob", Some(RefreshMode::Keep)).unwrap();
    assert!(emu.set_user_refresh_mode("nobody", Some(RefreshMode::Keep)).is_err());
    let alice = login(&emu, "alice").await;
    let bob = login(&emu, "bob").await;
    let a: Value = refresh(&emu, &s(&alice, "refresh_token")).await.json().await.unwrap();
    let b: Value = refresh(&emu, &s(&bob, "refresh_token")).await.json().await.unwrap();
    assert!(a.get("refresh_token").is_some());
    assert!(b.get("refresh_token").is_none());
    // Per-user override through the control API.
    let r = client()
        .put(format!("{}/users/alice/refresh_mode", emu.control_url()))
        .json(&serde_json::json!({"mode": "single_use"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let rt = s(&a, "refresh_token");
    assert_eq!(refresh(&emu, &rt).await.status(), StatusCode::OK);
    assert_oauth_error(refresh(&emu, &rt).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // Emulator-wide mode through the control API.
    let r = client()
        .put(format!("{}/refresh_mode", emu.control_url()))
        .json(&serde_json::json!({"mode": "keep"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let c = login(&emu, "carol").await;
    let r: Value = refresh(&emu, &s(&c, "refresh_token")).await.json().await.unwrap();
    assert!(r.get("refresh_token").is_none());
}

#[tokio::test]
async fn public_pkce_client_without_secret() {
    let emu = start(config().client_secret(None)).await;
    let (code, verifier) = authorize(&emu, "alice").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", CLIENT_ID),
        ("code_verifier", verifier.as_str()),
    ];
    let r = token_request(&emu, false, &form).await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    let r = token_request(
        &emu,
        false,
        &[("grant_type", "refresh_token"), ("refresh_token", &s(&t, "refresh_token")), ("client_id", CLIENT_ID)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    // HTTP Basic cannot work without a secret.
    let (code, verifier) = authorize(&emu, "alice").await;
    assert_oauth_error(exchange(&emu, &code, &verifier).await, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

#[tokio::test]
async fn confidential_client_may_also_use_pkce_without_basic() {
    let emu = start(config()).await;
    let (code, verifier) = authorize(&emu, "carol").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", CLIENT_ID),
        ("code_verifier", verifier.as_str()),
    ];
    assert_eq!(token_request(&emu, false, &form).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn confidential_client_without_pkce() {
    let emu = start(config()).await;
    let resp = get_authorize(&emu, &authorize_params(None, &[("login_as", "alice")])).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let code = param(&location_params(&resp), "code").unwrap().to_owned();
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT_URI)];
    assert_eq!(token_request(&emu, true, &form).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn login_queue_and_denial() {
    let emu = start(config()).await;
    let (_, challenge) = pkce();
    let params = authorize_params(Some(&challenge), &[]);
    emu.push_next_login("bob").unwrap();
    emu.push_next_login_denied("carol").unwrap();
    assert!(emu.push_next_login("nobody").is_err());

    let r = get_authorize(&emu, &params).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(param(&location_params(&r), "code").is_some());

    let r = get_authorize(&emu, &params).await;
    let p = location_params(&r);
    assert_eq!(param(&p, "error"), Some("access_denied"));
    assert_eq!(param(&p, "state"), Some("st-123"));
    assert!(param(&p, "code").is_none());

    // deny=1 with login_as.
    let r = get_authorize(&emu, &authorize_params(Some(&challenge), &[("login_as", "alice"), ("deny", "1")])).await;
    assert_eq!(param(&location_params(&r), "error"), Some("access_denied"));

    // Queue empty and no login_as: an HTML page to pick a user.
    let r = get_authorize(&emu, &params).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("login_as=alice"));

    // Through the control API.
    let r = client()
        .post(format!("{}/next_login", emu.control_url()))
        .json(&serde_json::json!({"user_id": "carol"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = get_authorize(&emu, &params).await;
    assert!(param(&location_params(&r), "code").is_some());
    assert_eq!(emu.counters().user("carol").authorize, 2);
}

#[tokio::test]
async fn users_added_via_control_api_and_scope_gating() {
    let emu = start(config()).await;
    let user = TestUser::free("dave").with_email("d@example.test").with_country("DE");
    let r = client().post(format!("{}/users", emu.control_url())).json(&user).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(emu.users().contains(&user));
    let (verifier, challenge) = pkce();
    let resp =
        get_authorize(&emu, &authorize_params(Some(&challenge), &[("login_as", "dave"), ("scope", "streaming")])).await;
    let code = param(&location_params(&resp), "code").unwrap().to_owned();
    let t: Value = exchange(&emu, &code, &verifier).await.json().await.unwrap();
    assert_eq!(t["scope"], "streaming");
    let me: Value = api_get(&emu, "/me", &s(&t, "access_token")).await.json().await.unwrap();
    assert_eq!(me["id"], "dave");
    // Without user-read-private / user-read-email: no product, country, email.
    assert!(me.get("product").is_none() && me.get("email").is_none() && me.get("country").is_none(), "{me}");
    // bob has no account_id.
    let bob = login(&emu, "bob").await;
    let me: Value = api_get(&emu, "/me", &s(&bob, "access_token")).await.json().await.unwrap();
    assert!(me.get("account_id").is_none());
}

#[tokio::test]
async fn reset_restores_initial_state() {
    let emu = start(config()).await;
    let t = login(&emu, "alice").await;
    emu.add_user(TestUser::free("zed"));
    emu.advance_clock(std::time::Duration::from_secs(100));
    emu.reset();
    assert_eq!(emu.counters().total.token_total(), 0);
    assert_eq!(emu.clock().offset_seconds, 0);
    assert!(!emu.users().iter().any(|u| u.id == "zed"));
    assert_oauth_error(refresh(&emu, &s(&t, "refresh_token")).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let r = client().post(format!("{}/reset", emu.control_url())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}
