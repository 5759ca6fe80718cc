//! Spotify Connect in the emulator: devices registered by Web Playback SDK players, transfer,
//! play and pause, one stream per account, the fake SDK's own endpoints, and the account chooser.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

async fn error_of(resp: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(resp.status(), status);
    let body: Value = resp.json().await.unwrap();
    body["error"].clone()
}

async fn sdk_state(emu: &spotauth_emulator::EmulatorHandle, token: &str, device: &str) -> reqwest::Response {
    client().get(format!("{}/sdk/v1/devices/{device}/state", emu.base_url())).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn each_account_plays_its_own_stream_on_its_own_device() {
    let emu = start(config()).await;
    let alice = s(&login(&emu, "alice").await, "access_token");
    let bob = s(&login(&emu, "bob").await, "access_token");
    let a1 = device(&emu, &alice, "Alice's laptop").await;
    let a2 = device(&emu, &alice, "Alice's phone").await;
    let b1 = device(&emu, &bob, "Bob's laptop").await;
    assert_ne!(a1, a2);

    // Each user sees only their own devices.
    let listed: Value = api_get(&emu, "/me/player/devices", &alice).await.json().await.unwrap();
    let ids: Vec<&str> = listed["devices"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&a1.as_str()) && ids.contains(&a2.as_str()));

    // Nothing plays yet: 204 with no body.
    let idle = api_get(&emu, "/me/player", &alice).await;
    assert_eq!(idle.status(), StatusCode::NO_CONTENT);
    assert!(idle.bytes().await.unwrap().is_empty());

    // Both play at once, each on their own device.
    let track = json!({ "uris": ["spotify:track:4uLU6hMCjMI75M1A2tKUQC"] });
    assert_eq!(api_put_json(&emu, &format!("/me/player/play?device_id={a1}"), &alice, &track).await.status(), 204);
    assert_eq!(api_put_json(&emu, &format!("/me/player/play?device_id={b1}"), &bob, &track).await.status(), 204);
    let playing = emu.player().playing();
    assert_eq!(playing.get("alice"), Some(&a1));
    assert_eq!(playing.get("bob"), Some(&b1));

    // Playing on Alice's second device takes her stream off the first; Bob is untouched.
    let album = json!({ "context_uri": "spotify:album:abc", "offset": { "position": 2 }, "position_ms": 1000 });
    assert_eq!(api_put_json(&emu, &format!("/me/player/play?device_id={a2}"), &alice, &album).await.status(), 204);
    let state: Value = api_get(&emu, "/me/player", &alice).await.json().await.unwrap();
    assert_eq!(state["device"]["id"], a2.as_str());
    assert_eq!(state["is_playing"], true);
    assert_eq!(state["context"]["uri"], "spotify:album:abc");
    assert!(state["progress_ms"].as_u64().unwrap() >= 1000);
    let on_a1: Value = sdk_state(&emu, &alice, &a1).await.json().await.unwrap();
    assert!(on_a1["state"].is_null(), "the first device no longer plays: {on_a1}");
    assert_eq!(emu.player().playing().get("bob"), Some(&b1));

    // Pause without a device id targets the active device; play without a body resumes there.
    assert_eq!(api_put(&emu, "/me/player/pause", &alice).await.status(), 204);
    assert!(!emu.player().playback["alice"].is_playing);
    assert_eq!(api_put_json(&emu, "/me/player/play", &alice, &json!({})).await.status(), 204);
    assert_eq!(emu.player().playing().get("alice"), Some(&a2));

    // Transfer to the first device, paused.
    let resp = api_put_json(&emu, "/me/player", &alice, &json!({ "device_ids": [a1], "play": false })).await;
    assert_eq!(resp.status(), 204);
    let snapshot = emu.player();
    assert_eq!(snapshot.playback["alice"].device_id.as_deref(), Some(a1.as_str()));
    assert!(!snapshot.playback["alice"].is_playing);
    assert!(snapshot.devices[&a1].is_active && !snapshot.devices[&a2].is_active);
}

#[tokio::test]
async fn player_errors_are_spotifys() {
    let emu = start(config()).await;
    let alice = s(&login(&emu, "alice").await, "access_token");
    let bob = s(&login(&emu, "bob").await, "access_token");
    let carol = s(&login(&emu, "carol").await, "access_token");
    let a1 = device(&emu, &alice, "A1").await;
    let a2 = device(&emu, &alice, "A2").await;
    let track = json!({ "uris": ["spotify:track:abc"] });

    // More than one device id.
    let e = error_of(
        api_put_json(&emu, "/me/player", &alice, &json!({ "device_ids": [a1, a2] })).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(e["status"], 400);
    // Another user's device, or an unknown one.
    let e = error_of(
        api_put_json(&emu, &format!("/me/player/play?device_id={a1}"), &bob, &track).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(e["message"], "Device not found");
    // No active device.
    let e = error_of(api_put_json(&emu, "/me/player/play", &bob, &track).await, StatusCode::NOT_FOUND).await;
    assert_eq!(e["reason"], "NO_ACTIVE_DEVICE");
    let e = error_of(api_put(&emu, "/me/player/pause", &bob).await, StatusCode::NOT_FOUND).await;
    assert_eq!(e["reason"], "NO_ACTIVE_DEVICE");
    // Malformed bodies and URIs.
    let bad = client()
        .put(format!("{}/me/player/play?device_id={a1}", emu.api_url()))
        .bearer_auth(&alice)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(bad, StatusCode::BAD_REQUEST).await["message"], "Malformed json");
    let e = error_of(
        api_put_json(&emu, &format!("/me/player/play?device_id={a1}"), &alice, &json!({ "uris": ["spotify:album:x"] }))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(e["status"], 400);
    // Free users: every player endpoint and the SDK refuse with PREMIUM_REQUIRED.
    for resp in [
        api_get(&emu, "/me/player/devices", &carol).await,
        api_put_json(&emu, "/me/player", &carol, &json!({ "device_ids": [a1] })).await,
        api_put(&emu, "/me/player/pause", &carol).await,
        sdk_register(&emu, &carol, "Carol's laptop").await,
    ] {
        assert_eq!(error_of(resp, StatusCode::FORBIDDEN).await["reason"], "PREMIUM_REQUIRED");
    }
    // Faults reach the new endpoints too, and every call is counted.
    emu.inject_fault(spotauth_emulator::Fault::rate_limited(spotauth_emulator::FaultTarget::Player, 1)).unwrap();
    assert_eq!(api_get(&emu, "/me/player/devices", &alice).await.status(), StatusCode::TOO_MANY_REQUESTS);
    let counters = emu.counters();
    assert!(counters.user("alice").player >= 4, "{counters:?}");
    assert!(counters.user("alice").sdk >= 2, "{counters:?}");
}

#[tokio::test]
async fn the_sdk_protocol_polls_commands_and_disconnects() {
    let emu = start(config()).await;
    let alice = s(&login(&emu, "alice").await, "access_token");
    let bob = s(&login(&emu, "bob").await, "access_token");
    let resp = sdk_register(&emu, &alice, "A1").await;
    let registered: Value = resp.json().await.unwrap();
    let a1 = s(&registered, "device_id");
    assert!(registered["token_expires_in"].as_u64().unwrap() > 3000);

    let first: Value = sdk_state(&emu, &alice, &a1).await.json().await.unwrap();
    assert!(first["state"].is_null());
    let track = json!({ "uris": ["spotify:track:abc", "spotify:track:def"] });
    api_put_json(&emu, &format!("/me/player/play?device_id={a1}"), &alice, &track).await;
    let playing: Value = sdk_state(&emu, &alice, &a1).await.json().await.unwrap();
    assert_ne!(playing["version"], first["version"], "a change bumps the version");
    assert_eq!(playing["state"]["paused"], false);
    assert_eq!(playing["state"]["track_window"]["current_track"]["uri"], "spotify:track:abc");
    assert_eq!(playing["state"]["track_window"]["next_tracks"][0]["uri"], "spotify:track:def");

    // The player's own controls.
    let command = |body: Value| {
        client().post(format!("{}/sdk/v1/devices/{a1}/commands", emu.base_url())).bearer_auth(&alice).json(&body).send()
    };
    assert_eq!(command(json!({ "command": "toggle" })).await.unwrap().status(), 204);
    let paused: Value = sdk_state(&emu, &alice, &a1).await.json().await.unwrap();
    assert_eq!(paused["state"]["paused"], true);
    assert_eq!(command(json!({ "command": "next" })).await.unwrap().status(), 204);
    assert_eq!(emu.player().playback["alice"].track_uri.as_deref(), Some("spotify:track:def"));

    // Another user's token cannot see or remove the device; an expired token is a 401.
    assert_eq!(sdk_state(&emu, &bob, &a1).await.status(), StatusCode::NOT_FOUND);
    emu.expire_access_tokens("alice");
    assert_eq!(sdk_state(&emu, &alice, &a1).await.status(), StatusCode::UNAUTHORIZED);
    let alice = s(&login(&emu, "alice").await, "access_token");
    assert_eq!(sdk_state(&emu, &alice, &a1).await.status(), StatusCode::OK, "a fresh token keeps the device");

    // Disconnect: the device leaves the list and the stream stops.
    let gone =
        client().delete(format!("{}/sdk/v1/devices/{a1}", emu.base_url())).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(gone.status(), 204);
    assert_eq!(sdk_state(&emu, &alice, &a1).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(api_get(&emu, "/me/player", &alice).await.status(), StatusCode::NO_CONTENT);
    let listed: Value = api_get(&emu, "/me/player/devices", &alice).await.json().await.unwrap();
    assert_eq!(listed["devices"], json!([]));

    // A stale player (dropped through the control API) is gone the same way.
    let a2 = device(&emu, &alice, "A2").await;
    let dropped = client().post(format!("{}/devices/{a2}/drop", emu.control_url())).send().await.unwrap();
    assert_eq!(dropped.status(), 204);
    assert_eq!(sdk_state(&emu, &alice, &a2).await.status(), StatusCode::NOT_FOUND);
    let snapshot: Value =
        client().get(format!("{}/player", emu.control_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(snapshot["devices"], json!({}));
}

#[tokio::test]
async fn pages_of_any_origin_may_call_the_web_api_and_load_the_sdk() {
    let emu = start(config()).await;
    let preflight = client()
        .request(reqwest::Method::OPTIONS, format!("{}/me/player/play", emu.api_url()))
        .header("Origin", "http://127.0.0.1:3000")
        .header("Access-Control-Request-Method", "PUT")
        .header("Access-Control-Request-Headers", "authorization, content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let allowed = preflight.headers().get("access-control-allow-origin").unwrap().to_str().unwrap();
    assert!(allowed == "*" || allowed == "http://127.0.0.1:3000", "{allowed}");
    assert!(preflight.headers().get("access-control-allow-credentials").is_none(), "no cookies cross-origin");

    let script = client().get(format!("{}/sdk/spotify-player.js", emu.base_url())).send().await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(script.text().await.unwrap().contains("onSpotifyWebPlaybackSDKReady"));
}

#[tokio::test]
async fn the_browser_login_is_reused_unless_show_dialog() {
    let emu = start(config()).await;
    let (_, challenge) = pkce();
    // No remembered login: the chooser.
    let page = get_authorize(&emu, &authorize_params(Some(&challenge), &[])).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("account-chooser") && html.contains("chooser=1"), "{html}");

    // Picking on the chooser remembers the user for this browser.
    let picked =
        get_authorize(&emu, &authorize_params(Some(&challenge), &[("login_as", "bob"), ("chooser", "1")])).await;
    assert_eq!(picked.status(), StatusCode::FOUND);
    let cookie = picked.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert_eq!(cookie, "sp_emulator_login=bob");

    let with_cookie = |extra: &[(&str, &str)]| {
        client()
            .get(emu.authorize_url())
            .query(&authorize_params(Some(&challenge), extra))
            .header("cookie", &cookie)
            .send()
    };
    // Next time Spotify logs the browser in silently...
    let silent = with_cookie(&[]).await.unwrap();
    assert_eq!(silent.status(), StatusCode::FOUND);
    assert!(param(&location_params(&silent), "code").is_some());
    // ...unless show_dialog=true, which shows the chooser with "Not you?".
    let dialog = with_cookie(&[("show_dialog", "true")]).await.unwrap();
    assert_eq!(dialog.status(), 200);
    let html = dialog.text().await.unwrap();
    assert!(html.contains("account-chooser") && html.contains("Not you?") && html.contains("bob"), "{html}");
}
