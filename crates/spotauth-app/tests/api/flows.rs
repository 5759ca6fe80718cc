//! The login, session and user flows of the REST API.

use std::net::TcpListener;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{LOCATION, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use spotauth_app::{Application, Settings};
use spotauth_emulator::AppMode;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_users_log_in_at_once_and_each_gets_their_own_spotify_token() {
    let app = spawn(Options::default()).await;
    let (a, b, d) = tokio::join!(app.login("alice"), app.login("bob"), app.login("dave"));
    let mut tokens = Vec::new();
    for (browser, user) in [(&a, "alice"), (&b, "bob"), (&d, "dave")] {
        let resp = app.get(browser, "/api/auth/spotify/token").await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let body: Value = resp.json().await.unwrap();
        let token = body["accessToken"].as_str().unwrap().to_owned();
        assert!(body["expiresIn"].as_u64().unwrap() > 3000);
        assert_eq!(app.spotify_user_of(&token).await, user);
        tokens.push(token);
    }
    let distinct: std::collections::HashSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), 3, "every user has their own token");
    // Fresh tokens are served without a refresh.
    let _ = app.get(&a, "/api/auth/spotify/token").await;
    assert_eq!(app.emu.counters().total.token_refresh_token, 0);

    let me: Value = app.get(&a, "/api/users/me").await.json().await.unwrap();
    assert_eq!(me["spotifyId"], "alice");
    assert_eq!(me["displayName"], "Alice");
    assert_eq!(me["isPremium"], true);
    let text = me.to_string();
    assert!(!text.contains(&tokens[0]) && !text.to_lowercase().contains("token\":"), "no token in the user: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_list_and_toggling() {
    let app = spawn(Options::default()).await;
    let a = app.login("alice").await;
    let _b = app.login("bob").await;
    let _c = app.login("carol").await;
    let list: Value = app.get(&a, "/api/users/active?limit=2").await.json().await.unwrap();
    assert_eq!(list["total"], 3);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(list["items"][0]["displayName"], "Carol", "most recently active first");
    assert!(list["items"][0].get("accessToken").is_none());

    let resp = app
        .http
        .put(app.url("/api/users/me/active"))
        .header("Cookie", &a.session)
        .json(&json!({"isActive": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["isActive"], false);
    let list: Value = app.get(&a, "/api/users/active").await.json().await.unwrap();
    assert_eq!(list["total"], 2);
    assert!(list["items"].as_array().unwrap().iter().all(|u| u["displayName"] != "Alice"));
    problem(app.get(&a, "/api/users/active?limit=1000").await, StatusCode::BAD_REQUEST, "invalid_page").await;
    problem(app.get(&a, "/api/users/active?limit=abc").await, StatusCode::BAD_REQUEST, "invalid_query").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_in_extended_quota_and_a_free_user() {
    let app = spawn(Options::default()).await;
    let a = app.login("alice").await;
    let sub: Value = app.get(&a, "/api/auth/spotify/subscription").await.json().await.unwrap();
    assert_eq!(
        (sub["isPremium"].clone(), sub["product"].clone(), sub["source"].clone()),
        (json!(true), json!("premium"), json!("profile"))
    );
    assert!(sub["checkedAt"].as_str().unwrap().ends_with('Z'));

    // A free user logs in and sees their account, but gets no playback token.
    let c = app.login("carol").await;
    let me: Value = app.get(&c, "/api/users/me").await.json().await.unwrap();
    assert_eq!(me["isPremium"], false);
    let sub: Value = app.get(&c, "/api/auth/spotify/subscription").await.json().await.unwrap();
    assert_eq!(sub["isPremium"], false);
    problem(app.get(&c, "/api/auth/spotify/token").await, StatusCode::FORBIDDEN, "premium_required").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_in_development_mode_uses_the_player_probe() {
    let app = spawn(Options {
        mode: AppMode::DevelopmentMode { allow_list: vec!["alice".into(), "carol".into()] },
        ..Options::default()
    })
    .await;
    let a = app.login("alice").await;
    let sub: Value = app.get(&a, "/api/auth/spotify/subscription").await.json().await.unwrap();
    assert_eq!(
        (sub["isPremium"].clone(), sub["product"].clone(), sub["source"].clone()),
        (json!(true), Value::Null, json!("player_probe"))
    );
    let c = app.login("carol").await;
    let sub: Value = app.get(&c, "/api/auth/spotify/subscription").await.json().await.unwrap();
    assert_eq!((sub["isPremium"].clone(), sub["source"].clone()), (json!(false), json!("player_probe")));

    // bob is not on the allow-list: Spotify answers 403 to /v1/me.
    let (authorize_url, login_cookie) = app.start_login(None).await;
    let query = app.authorize(&authorize_url, "bob", false).await;
    let resp = app.callback(&query, Some(&login_cookie)).await;
    assert_eq!(error_redirect(&resp), "not_allow_listed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn premium_only_setting_refuses_the_login_of_a_free_user() {
    let app = spawn(Options { extra: vec![("REQUIRE_PREMIUM_FOR_LOGIN", "true")], ..Options::default() }).await;
    let (authorize_url, login_cookie) = app.start_login(None).await;
    let query = app.authorize(&authorize_url, "carol", false).await;
    assert_eq!(error_redirect(&app.callback(&query, Some(&login_cookie)).await), "premium_required");
    app.login("alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_then_401_and_logout_says_what_it_did() {
    let app = spawn(Options::default()).await;
    let a = app.login("alice").await;
    let resp = app.post(&a, "/api/auth/spotify/logout").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(set_cookie_attrs(resp.headers(), "__Host-spotauth_session").contains("Max-Age=0"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"scope": "everywhere", "sessionsEnded": 1, "spotifyDisconnected": true}));
    let resp = app.get(&a, "/api/users/me").await;
    assert_eq!(resp.headers()[WWW_AUTHENTICATE], r#"Bearer realm="spotauth""#);
    problem(resp, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // Again with the same (now ended) session: still identifies alice, nothing left to end.
    let again: Value = app.post(&a, "/api/auth/spotify/logout").await.json().await.unwrap();
    assert_eq!(again, json!({"scope": "everywhere", "sessionsEnded": 0, "spotifyDisconnected": true}));
    // Nothing to identify: an honest 401, and the cookie is cleared anyway.
    let resp = app.http.post(app.url("/api/auth/spotify/logout")).send().await.unwrap();
    assert!(set_cookie_attrs(resp.headers(), "__Host-spotauth_session").contains("Max-Age=0"));
    let body = problem(resp, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert!(body["detail"].as_str().unwrap().contains("nothing was logged out"), "{body}");
    problem(app.post(&a, "/api/auth/spotify/logout?scope=sideways").await, StatusCode::BAD_REQUEST, "invalid_scope")
        .await;
    // Logging in again reconnects.
    let a = app.login("alice").await;
    assert_eq!(app.get(&a, "/api/auth/spotify/token").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_or_missing_session_is_401_and_bearer_works() {
    let app = spawn(Options::default()).await;
    let a = app.login("alice").await;
    let (name, value) = a.session.split_once('=').unwrap();
    let mut chars: Vec<char> = value.chars().collect();
    let i = chars.len() - 5;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered = Browser { session: format!("{name}={}", chars.into_iter().collect::<String>()) };
    problem(app.get(&tampered, "/api/users/me").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let resp = app.http.get(app.url("/api/users/me")).send().await.unwrap();
    problem(resp, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // The same token works as a Bearer token.
    let resp = app.http.get(app.url("/api/users/me")).bearer_auth(value).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_missing_wrong_or_reused_never_reaches_spotify() {
    let app = spawn(Options::default()).await;
    let (authorize_url, login_cookie) = app.start_login(None).await;
    let query = app.authorize(&authorize_url, "alice", false).await;
    let code = query.split('&').find(|p| p.starts_with("code=")).unwrap().to_owned();

    // No state at all.
    assert_eq!(error_redirect(&app.callback(&code, Some(&login_cookie)).await), "state_missing");
    // No login cookie (another browser).
    assert_eq!(error_redirect(&app.callback(&query, None).await), "state_missing");
    // A state that is not this browser's.
    let (_, other_cookie) = app.start_login(None).await;
    assert_eq!(error_redirect(&app.callback(&query, Some(&other_cookie)).await), "state_mismatch");
    // A forged cookie and state that match each other but no login attempt.
    let forged = "__Host-spotauth_login=forgedstate.vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv";
    assert_eq!(
        error_redirect(&app.callback(&format!("{code}&state=forgedstate"), Some(forged)).await),
        "state_unknown"
    );
    assert_eq!(app.emu.counters().total.token_authorization_code, 0, "no token request for a bad state");

    // The real callback works once...
    let resp = app.callback(&query, Some(&login_cookie)).await;
    assert!(cookie_pair(resp.headers(), "__Host-spotauth_session").is_some());
    assert!(set_cookie_attrs(resp.headers(), "__Host-spotauth_login").contains("Max-Age=0"), "login cookie cleared");
    assert_eq!(app.emu.counters().total.token_authorization_code, 1);
    // ...and a replay is refused before Spotify.
    assert_eq!(error_redirect(&app.callback(&query, Some(&login_cookie)).await), "state_reused");
    assert_eq!(app.emu.counters().total.token_authorization_code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_authenticated_answer_is_no_store_and_nosniff() {
    let app = spawn(Options::default()).await;
    let a = app.login("alice").await;
    let with_cookie = |req: reqwest::RequestBuilder| req.header("Cookie", a.session.clone());
    let requests = [
        ("GET /me", with_cookie(app.http.get(app.url("/api/users/me")))),
        ("GET /active", with_cookie(app.http.get(app.url("/api/users/active")))),
        ("PUT /me/active", with_cookie(app.http.put(app.url("/api/users/me/active"))).json(&json!({"isActive": true}))),
        ("GET /token", with_cookie(app.http.get(app.url("/api/auth/spotify/token")))),
        ("GET /subscription", with_cookie(app.http.get(app.url("/api/auth/spotify/subscription")))),
        ("GET /me without a session", app.http.get(app.url("/api/users/me"))),
    ];
    for (what, req) in requests {
        let resp = req.send().await.unwrap();
        let h = resp.headers();
        assert_eq!(h.get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"), "{what}");
        assert_eq!(h.get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"), "{what}");
        assert_eq!(h.get("referrer-policy").map(|v| v.to_str().unwrap()), Some("no-referrer"), "{what}");
        let csp = h.get("content-security-policy").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    }
}

/// Browsers protect only cookie names that literally start with `__Host-`: a sibling subdomain
/// can plant `__%48ost-…`, which a percent-decoding reader would take for ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alike_and_duplicate_cookies_are_refused() {
    let app = spawn(Options::default()).await;
    let alice = app.login("alice").await;
    let token = alice.session.strip_prefix("__Host-spotauth_session=").unwrap().to_owned();
    let me = |cookie: String| app.http.get(app.url("/api/users/me")).header("Cookie", cookie).send();
    assert_eq!(me(alice.session.clone()).await.unwrap().status(), StatusCode::OK);
    for cookie in [
        format!("__%48ost-spotauth_session={token}"),
        format!("__host-spotauth_session={token}"),
        format!("__%48ost-spotauth_session=planted; __Host-spotauth_session={token}"),
        format!("__Host-spotauth_session={token}; __Host-spotauth_session={token}"),
    ] {
        problem(me(cookie.clone()).await.unwrap(), StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    // Logout and refresh refuse them too, and leave the session alone.
    let planted = format!("__%48ost-spotauth_session={token}");
    for path in ["/api/auth/spotify/logout", "/api/auth/spotify/refresh"] {
        let resp = app.http.post(app.url(path)).header("Cookie", &planted).send().await.unwrap();
        problem(resp, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    assert_eq!(me(alice.session.clone()).await.unwrap().status(), StatusCode::OK);

    // A planted login cookie binds nothing: the callback refuses before any token request.
    let (authorize_url, login_cookie) = app.start_login(None).await;
    let query = app.authorize(&authorize_url, "bob", false).await;
    let planted_login = login_cookie.replace("__Host-", "__%48ost-");
    let before = app.emu.counters().total.token_authorization_code;
    assert_eq!(error_redirect(&app.callback(&query, Some(&planted_login)).await), "state_missing");
    let both = format!("{planted_login}; {login_cookie}");
    assert_eq!(error_redirect(&app.callback(&query, Some(&both)).await), "state_missing");
    assert_eq!(app.emu.counters().total.token_authorization_code, before, "no token request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_authorization_redirects_with_access_denied() {
    let app = spawn(Options::default()).await;
    let (authorize_url, login_cookie) = app.start_login(None).await;
    let query = app.authorize(&authorize_url, "alice", true).await;
    assert!(query.contains("error=access_denied"));
    assert_eq!(error_redirect(&app.callback(&query, Some(&login_cookie)).await), "access_denied");
    assert_eq!(app.emu.counters().total.token_authorization_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_to_is_same_origin_only() {
    let app = spawn(Options::default()).await;
    for evil in ["https://evil.example", "//evil.example", "/\\evil.example", "evil"] {
        let resp =
            app.http.post(app.url("/api/auth/spotify/login")).json(&json!({"returnTo": evil})).send().await.unwrap();
        problem(resp, StatusCode::BAD_REQUEST, "invalid_return_to").await;
    }
    let (authorize_url, login_cookie) = app.start_login(Some(json!({"returnTo": "/rooms/42?tab=queue"}))).await;
    let query = app.authorize(&authorize_url, "alice", false).await;
    let resp = app.callback(&query, Some(&login_cookie)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[LOCATION], "http://127.0.0.1:3000/rooms/42?tab=queue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_rotation_and_reuse_detection() {
    // No grace window: a rotated-out token is reuse at once (the window has its own test).
    let opts = Options { extra: vec![("SESSION_ROTATION_GRACE_SECS", "0")], ..Options::default() };
    let app = spawn(opts).await;
    let old = app.login("alice").await;
    let resp = app.post(&old, "/api/auth/spotify/refresh").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let attrs = set_cookie_attrs(resp.headers(), "__Host-spotauth_session");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure"] {
        assert!(attrs.contains(attr), "{attr} missing in {attrs}");
    }
    let new = Browser { session: cookie_pair(resp.headers(), "__Host-spotauth_session").unwrap() };
    assert_ne!(new.session, old.session);
    let body: Value = resp.json().await.unwrap();
    assert!(body["accessToken"].is_string());
    assert!(body.get("sessionToken").is_none(), "cookie clients get the token in the cookie only");
    assert_eq!(app.get(&new, "/api/users/me").await.status(), StatusCode::OK);

    // The rotated-out token is presented again: the whole session dies.
    problem(app.get(&old, "/api/users/me").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    problem(app.get(&new, "/api/users/me").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    // A Bearer client gets its rotated token in the body.
    let b = app.login("bob").await;
    let bearer = b.session.split_once('=').unwrap().1.to_owned();
    let resp = app.http.post(app.url("/api/auth/spotify/refresh")).bearer_auth(&bearer).send().await.unwrap();
    let body: Value = resp.json().await.unwrap();
    let rotated = body["sessionToken"].as_str().unwrap();
    assert_eq!(
        app.http.get(app.url("/api/users/me")).bearer_auth(rotated).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_tokens_are_refreshed_and_invalid_grant_means_reauthorization() {
    // Spotify tokens live 60 s here and are refreshed when they expire within 300 s.
    let app = spawn(Options { access_token_lifetime: Duration::from_secs(60), ..Options::default() }).await;
    let a = app.login("alice").await;
    let first: Value = app.get(&a, "/api/auth/spotify/token").await.json().await.unwrap();
    assert_eq!(app.emu.counters().total.token_refresh_token, 1);
    assert_eq!(app.spotify_user_of(first["accessToken"].as_str().unwrap()).await, "alice");

    app.emu.revoke_refresh_tokens("alice");
    let resp = app.get(&a, "/api/auth/spotify/token").await;
    problem(resp, StatusCode::UNAUTHORIZED, "spotify_reauth_required").await;
    // Known: no further call to Spotify.
    let calls = app.emu.counters().total.token_refresh_token;
    problem(app.get(&a, "/api/auth/spotify/token").await, StatusCode::UNAUTHORIZED, "spotify_reauth_required").await;
    assert_eq!(app.emu.counters().total.token_refresh_token, calls);
    let me: Value = app.get(&a, "/api/users/me").await.json().await.unwrap();
    assert_eq!(me["reauthRequired"], true, "the session stays; the Spotify link needs a new login");

    let a = app.login("alice").await;
    assert_eq!(app.get(&a, "/api/auth/spotify/token").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_bodies_are_problems() {
    let app = spawn(Options::default()).await;
    let a = app.login("alice").await;
    let put_active = |body: &'static str, cookie: Option<&str>| {
        let mut req = app.http.put(app.url("/api/users/me/active")).header("Content-Type", "application/json");
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        req.body(body).send()
    };
    let resp = put_active("{\"isActive\": tru", Some(&a.session)).await.unwrap();
    problem(resp, StatusCode::BAD_REQUEST, "invalid_json").await;
    // The body is refused before the session is looked at, signed in or not.
    let resp = put_active("{\"isActive\": tru", None).await.unwrap();
    problem(resp, StatusCode::BAD_REQUEST, "invalid_json").await;
    let resp = put_active("{\"isActive\": \"yes\"}", Some(&a.session)).await.unwrap();
    problem(resp, StatusCode::BAD_REQUEST, "invalid_json").await;
    let big = json!({"returnTo": format!("/{}", "a".repeat(20_000))});
    let resp = app.http.post(app.url("/api/auth/spotify/login")).json(&big).send().await.unwrap();
    problem(resp, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let resp = app.http.get(app.url("/nope")).send().await.unwrap();
    problem(resp, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_openapi() {
    let app = spawn(Options::default()).await;
    assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
    let ready: Value = app.http.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    let doc: Value = app.http.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/auth/spotify/login",
        "/api/auth/spotify/callback",
        "/api/auth/spotify/refresh",
        "/api/auth/spotify/token",
        "/api/auth/spotify/logout",
        "/api/auth/spotify/subscription",
        "/api/users/me",
        "/api/users/active",
        "/api/users/me/active",
        "/api/config",
        "/client/spotauth.js",
        "/healthz",
        "/readyz",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing from openapi.json");
    }
    assert!(doc["paths"]["/api/auth/spotify/token"].get("post").is_some(), "POST /token missing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_errors_name_the_setting() {
    let err = Settings::from_pairs([("APP_ENV", "production"), ("DATABASE_URL", "mysql://root@127.0.0.1:3306/test")])
        .unwrap_err();
    assert_eq!(err.to_string(), "SPOTIFY_CLIENT_ID is required but not set (APP_ENV=production)");
    let settings = Settings::from_pairs([
        ("DATABASE_URL", "mysql://root:hunter2@127.0.0.1:1/nope"),
        ("SPOTIFY_CLIENT_ID", "c"),
        ("SPOTIFY_REDIRECT_URI", REDIRECT),
        ("FRONTEND_URL", FRONTEND),
        ("TOKEN_ENCRYPTION_KEYS", "k1:c2hvcnQ="),
        ("SESSION_SIGNING_KEY", SIGNING),
    ])
    .unwrap();
    let err = Application::build_with_listener(settings.clone(), TcpListener::bind("127.0.0.1:0").unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "TOKEN_ENCRYPTION_KEYS: key `k1` is 5 bytes, expected 32");
    let mut settings = settings;
    settings.token_encryption_keys = Some(spotauth_domain::secret::Secret::new(KEYS));
    let err = Application::build_with_listener(settings, TcpListener::bind("127.0.0.1:0").unwrap()).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("DATABASE_URL: cannot connect") && !msg.contains("hunter2"), "{msg}");
}
