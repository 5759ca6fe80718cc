//! The caller's sessions and account: listed with readable devices, one ended, all others
//! ended, everywhere, and the account deleted with nothing of the user left in any table.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

async fn sessions(app: &TestApp, b: &Browser) -> Vec<Value> {
    let resp = app.get(b, "/api/users/me/sessions").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

async fn current_id(app: &TestApp, b: &Browser) -> String {
    let mine = sessions(app, b).await;
    let current: Vec<&Value> = mine.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "exactly one current session: {mine:?}");
    current[0]["id"].as_str().unwrap().to_owned()
}

async fn status_of_me(app: &TestApp, b: &Browser) -> StatusCode {
    app.get(b, "/api/users/me").await.status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_are_listed_and_either_can_end_the_other() {
    let app = spawn(Options::default()).await;
    let laptop = app.login_from("alice", Some(FIREFOX)).await;
    let phone = app.login_from("alice", Some(IPHONE)).await;
    let listed = sessions(&app, &laptop).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let devices: Vec<&str> = listed.iter().map(|s| s["device"].as_str().unwrap()).collect();
    assert!(devices.contains(&"Firefox on Linux") && devices.contains(&"Safari on iPhone"), "{devices:?}");
    for s in &listed {
        for field in ["id", "createdAt", "lastSeenAt", "expiresAt", "device", "current"] {
            assert!(!s[field].is_null(), "{field} in {s}");
        }
    }
    let text = serde_json::to_string(&listed).unwrap();
    for secret in [&laptop.session, &phone.session] {
        assert!(!text.contains(secret.split_once('=').unwrap().1), "no session token in the list");
    }
    let (laptop_id, phone_id) = (current_id(&app, &laptop).await, current_id(&app, &phone).await);
    assert_ne!(laptop_id, phone_id);

    // Another user cannot see or end them: the same 404 as for an unknown or malformed id.
    let bob = app.login("bob").await;
    assert_eq!(sessions(&app, &bob).await.len(), 1);
    for id in [phone_id.as_str(), "00000000-0000-4000-8000-000000000000", "not-a-session"] {
        let resp = app.delete(&bob, &format!("/api/users/me/sessions/{id}")).await;
        problem(resp, StatusCode::NOT_FOUND, "session_not_found").await;
    }
    assert_eq!(status_of_me(&app, &phone).await, StatusCode::OK);

    // A cross-site page cannot end them with the cookie.
    let resp = app
        .http
        .delete(app.url(&format!("/api/users/me/sessions/{phone_id}")))
        .header("Cookie", &laptop.session)
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    problem(resp, StatusCode::FORBIDDEN, "cross_origin_refused").await;
    assert_eq!(status_of_me(&app, &phone).await, StatusCode::OK);

    // The laptop ends the phone's session: the phone is out at once, the laptop stays.
    let resp = app.delete(&laptop, &format!("/api/users/me/sessions/{phone_id}")).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(cookie_pair(resp.headers(), "__Host-spotauth_session").is_none(), "another session's end keeps mine");
    problem(app.get(&phone, "/api/users/me").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let resp = app.post(&phone, "/api/auth/spotify/refresh").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "nor can it rotate its way back");
    assert_eq!(status_of_me(&app, &laptop).await, StatusCode::OK);
    assert_eq!(sessions(&app, &laptop).await.len(), 1);
    let again = app.delete(&laptop, &format!("/api/users/me/sessions/{phone_id}")).await;
    problem(again, StatusCode::NOT_FOUND, "session_not_found").await;

    // Ending the current session is a logout of this device: its cookie is cleared.
    let resp = app.delete(&laptop, &format!("/api/users/me/sessions/{laptop_id}")).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(cookie_pair(resp.headers(), "__Host-spotauth_session").as_deref(), Some("__Host-spotauth_session="));
    assert_eq!(status_of_me(&app, &laptop).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_of_me(&app, &bob).await, StatusCode::OK, "bob never noticed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_out_of_all_others_then_everywhere() {
    let app = spawn(Options::default()).await;
    let here = app.login_from("alice", Some(FIREFOX)).await;
    let others = [app.login("alice").await, app.login_from("alice", Some(IPHONE)).await];
    let resp = app.delete(&here, "/api/users/me/sessions").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"sessionsEnded": 2}));
    for other in &others {
        assert_eq!(status_of_me(&app, other).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(status_of_me(&app, &here).await, StatusCode::OK);
    assert_eq!(app.get(&here, "/api/auth/spotify/token").await.status(), StatusCode::OK, "Spotify stays connected");
    let resp = app.delete(&here, "/api/users/me/sessions").await;
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"sessionsEnded": 0}));

    // Everywhere: this one and a new one both end.
    let there = app.login("alice").await;
    let resp = app.post(&here, "/api/auth/spotify/logout?scope=everywhere").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["sessionsEnded"], 2);
    for b in [&here, &there] {
        assert_eq!(status_of_me(&app, b).await, StatusCode::UNAUTHORIZED);
    }
    // Without a session, nothing is listed or ended.
    for resp in [app.get(&here, "/api/users/me/sessions").await, app.delete(&here, "/api/users/me/sessions").await] {
        problem(resp, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_account_leaves_no_row_of_the_user_in_any_table() {
    let app = spawn(Options::default()).await;
    let alice = app.login_from("alice", Some(FIREFOX)).await;
    let alice_phone = app.login_from("alice", Some(IPHONE)).await;
    let bob = app.login("bob").await;
    // Alice is present in the room with a player, has refreshed her session, and opted out once.
    let token: Value = app.get(&alice, "/api/auth/spotify/token").await.json().await.unwrap();
    let device = app.emu.open_player(token["accessToken"].as_str().unwrap(), "Alice's laptop").unwrap();
    let report = app
        .http
        .put(app.url("/api/room/player"))
        .header("Cookie", &alice.session)
        .json(&json!({ "deviceId": device, "name": "Alice's laptop", "nowPlaying": null }))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), StatusCode::NO_CONTENT);
    let put = |on: bool| {
        app.http
            .put(app.url("/api/users/me/active"))
            .header("Cookie", &alice_phone.session)
            .json(&json!({"isActive": on}))
    };
    assert_eq!(put(false).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(put(true).send().await.unwrap().status(), StatusCode::OK);
    let me: Value = app.get(&alice, "/api/users/me").await.json().await.unwrap();
    let alice_id = me["id"].as_str().unwrap().to_owned();
    let bob_me: Value = app.get(&bob, "/api/users/me").await.json().await.unwrap();
    let bob_id = bob_me["id"].as_str().unwrap().to_owned();
    let session_ids: Vec<String> =
        sessions(&app, &alice).await.iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect();
    let before = app.store.dump().await;
    for trace in [alice_id.as_str(), "'alice'", "Mozilla/5.0 (iPhone", &device, &session_ids[0], &session_ids[1]] {
        assert!(before.contains(trace), "the dump finds {trace} while it is stored");
    }

    let resp = app.delete(&alice, "/api/users/me").await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(cookie_pair(resp.headers(), "__Host-spotauth_session").as_deref(), Some("__Host-spotauth_session="));
    for b in [&alice, &alice_phone] {
        problem(app.get(b, "/api/users/me").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let dump = app.store.dump().await;
    for trace in [alice_id.as_str(), "'alice'", "Mozilla/5.0", "Alice", &device, &session_ids[0], &session_ids[1]] {
        let left: Vec<&str> = dump.lines().filter(|l| l.contains(trace)).collect();
        assert!(left.is_empty(), "{trace} is still stored: {left:?}");
    }
    assert!(dump.contains(&bob_id), "bob keeps everything");
    assert_eq!(status_of_me(&app, &bob).await, StatusCode::OK);
    let list: Value = app.get(&bob, "/api/users/active").await.json().await.unwrap();
    assert!(list["items"].as_array().unwrap().iter().all(|p| p["id"] != alice_id.as_str()), "{list}");

    // She can connect again, as a new user.
    let again = app.login("alice").await;
    let me: Value = app.get(&again, "/api/users/me").await.json().await.unwrap();
    assert_ne!(me["id"], alice_id.as_str());
    assert_eq!(me["spotifyConnected"], true);
}
