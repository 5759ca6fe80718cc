//! The browser-facing pieces, tried as a browser and as an attacker would: CORS for exactly the
//! trusted origins, the public config, the client module and the room page with their
//! policies, the replacement of a token the SDK refused, and the account chooser after a logout.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION};
use serde_json::{Value, json};

use crate::common::*;

const FRONTEND_ORIGIN: &str = "http://127.0.0.1:3000";

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, app.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_grants_exactly_the_trusted_origins_with_credentials() {
    let opts = Options { extra: vec![("CORS_ALLOWED_ORIGINS", "https://app.example.com")], ..Options::default() };
    let app = spawn(opts).await;
    let b = app.login("alice").await;

    for origin in [FRONTEND_ORIGIN, "https://app.example.com"] {
        let pre = preflight(&app, "/api/users/me/active", origin, "PUT").await;
        assert!(pre.status().is_success(), "{origin}: {}", pre.status());
        let h = pre.headers();
        assert_eq!(header(h, "access-control-allow-origin"), Some(origin));
        assert_eq!(header(h, "access-control-allow-credentials"), Some("true"));
        assert_eq!(header(h, "access-control-max-age"), Some("600"), "preflights are cached");
        let methods = header(h, "access-control-allow-methods").unwrap();
        for m in ["GET", "POST", "PUT", "DELETE"] {
            assert!(methods.contains(m), "{methods}");
        }
        assert!(!methods.contains("PATCH") && !methods.contains("OPTIONS,"), "only what the API uses: {methods}");
        let read = app.http.get(app.url("/api/users/me")).header("Origin", origin).header("Cookie", &b.session);
        let read = read.send().await.unwrap();
        assert_eq!(read.status(), StatusCode::OK);
        assert_eq!(header(read.headers(), "access-control-allow-origin"), Some(origin));
        assert!(header(read.headers(), "vary").unwrap_or_default().to_ascii_lowercase().contains("origin"));
    }

    // Any other origin, including look-alikes: no grant at all, never a reflection or `*`.
    for origin in [
        "https://evil.example",
        "https://app.example.com.evil.example",
        "http://app.example.com",
        "https://app.example.com:444",
        "http://127.0.0.1:3001",
        "null",
    ] {
        let read = app.http.get(app.url("/api/users/me")).header("Origin", origin).header("Cookie", &b.session);
        let read = read.send().await.unwrap();
        // (actix-cors still says `Allow-Credentials: true`; without a matching `Allow-Origin`
        // a browser hands the page nothing, which the Chromium test shows.)
        assert_eq!(header(read.headers(), "access-control-allow-origin"), None, "{origin}");
        let pre = preflight(&app, "/api/auth/spotify/logout", origin, "POST").await;
        assert_eq!(header(pre.headers(), "access-control-allow-origin"), None, "{origin}");
        // And a change from there is still refused by the CSRF guard, with the same list.
        let change = app.http.post(app.url("/api/auth/spotify/logout")).header("Origin", origin);
        let change = change.header("Sec-Fetch-Site", "cross-site").header("Cookie", &b.session);
        problem(change.send().await.unwrap(), StatusCode::FORBIDDEN, "cross_origin_refused").await;
    }
    assert_eq!(app.get(&b, "/api/users/me").await.status(), StatusCode::OK, "nothing was logged out");
}

#[tokio::test]
async fn config_client_module_and_room_page() {
    let sdk = "https://sdk.example/spotify-player.js";
    let app =
        spawn(Options { extra: vec![("SPOTIFY_SDK_URL", sdk), ("ROOM_PAGE", "true")], ..Options::default() }).await;
    let config: Value = app.http.get(app.url("/api/config")).send().await.unwrap().json().await.unwrap();
    assert_eq!(config, json!({ "sdkUrl": sdk, "spotifyApiUrl": app.emu.api_url() }));

    // The client module: JavaScript, readable by the frontend's origin (module scripts are
    // fetched with CORS), with its types beside it.
    let js = app.http.get(app.url("/client/spotauth.js")).header("Origin", FRONTEND_ORIGIN).send().await.unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert!(header(js.headers(), "content-type").unwrap().starts_with("text/javascript"));
    assert_eq!(header(js.headers(), "access-control-allow-origin"), Some(FRONTEND_ORIGIN));
    assert!(js.text().await.unwrap().contains("export function createClient"));
    let types = app.http.get(app.url("/client/spotauth.d.ts")).send().await.unwrap().text().await.unwrap();
    assert!(types.contains("createClient"));

    // The room: its own policy, exactly itself, the SDK's origin and the Web API's.
    let page = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = header(page.headers(), "content-security-policy").unwrap().to_owned();
    let api_origin = url::Url::parse(&app.emu.api_url()).unwrap().origin().ascii_serialization();
    assert!(csp.contains("script-src 'self' https://sdk.example;"), "{csp}");
    assert!(csp.contains(&format!("connect-src 'self' https://sdk.example {api_origin};")), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe"), "{csp}");
    assert!(page.text().await.unwrap().contains("data-testid=\"login\""));
    for asset in ["/room/room.js", "/room/room.css"] {
        assert_eq!(app.http.get(app.url(asset)).send().await.unwrap().status(), StatusCode::OK, "{asset}");
    }

    // Production without ROOM_PAGE: no page; the client module and config stay.
    let app = spawn(Options::default()).await;
    assert_eq!(app.http.get(app.url("/")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(app.http.get(app.url("/client/spotauth.js")).send().await.unwrap().status(), StatusCode::OK);
    let config: Value = app.http.get(app.url("/api/config")).send().await.unwrap().json().await.unwrap();
    assert_eq!(config["sdkUrl"], "https://sdk.scdn.co/spotify-player.js");
}

async fn token_of(resp: reqwest::Response) -> String {
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    body["accessToken"].as_str().unwrap().to_owned()
}

async fn report_refused(app: &TestApp, b: &Browser, refused: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/auth/spotify/token"))
        .header("Cookie", &b.session)
        .json(&json!({ "refused": refused }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_refused_token_is_replaced_once_however_many_tabs_report_it() {
    let app = spawn(Options::default()).await;
    let b = app.login("alice").await;
    let first = token_of(app.get(&b, "/api/auth/spotify/token").await).await;
    app.emu.expire_access_tokens("alice");
    let before = app.emu.counters().user("alice").token_refresh_token;

    // Five tabs report the same refused token at once: one refresh, one new token for all.
    let report = || report_refused(&app, &b, &first);
    let (r1, r2, r3, r4, r5) = tokio::join!(report(), report(), report(), report(), report());
    let mut tokens = Vec::new();
    for resp in [r1, r2, r3, r4, r5] {
        tokens.push(token_of(resp).await);
    }
    assert!(tokens.iter().all(|t| *t == tokens[0] && *t != first), "one replacement for all");
    assert_eq!(app.emu.counters().user("alice").token_refresh_token, before + 1);
    assert_eq!(app.spotify_user_of(&tokens[0]).await, "alice");
    // A late report of the old token gets the current one, without another refresh; GET agrees.
    assert_eq!(token_of(report_refused(&app, &b, &first).await).await, tokens[0]);
    assert_eq!(token_of(app.get(&b, "/api/auth/spotify/token").await).await, tokens[0]);
    assert_eq!(app.emu.counters().user("alice").token_refresh_token, before + 1);

    // Bad input: a clear 400, never a refresh; no session: 401.
    let bad = app.http.post(app.url("/api/auth/spotify/token")).header("Cookie", &b.session).json(&json!({}));
    problem(bad.send().await.unwrap(), StatusCode::BAD_REQUEST, "invalid_json").await;
    problem(report_refused(&app, &b, "").await, StatusCode::BAD_REQUEST, "invalid_token").await;
    let anon = app.http.post(app.url("/api/auth/spotify/token")).json(&json!({ "refused": first }));
    problem(anon.send().await.unwrap(), StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(app.emu.counters().user("alice").token_refresh_token, before + 1);

    // A free user gets no playback token this way either.
    let carol = app.login("carol").await;
    problem(report_refused(&app, &carol, &first).await, StatusCode::FORBIDDEN, "premium_required").await;
}

#[tokio::test]
async fn after_a_logout_the_next_login_asks_spotify_for_the_account_chooser() {
    let app = spawn(Options::default()).await;
    let asks = |url: &str| url::Url::parse(url).unwrap().query_pairs().any(|(k, v)| k == "show_dialog" && v == "true");
    let (url, _) = app.start_login(None).await;
    assert!(!asks(&url), "a first login may reuse the browser's Spotify login");

    let b = app.login("alice").await;
    let out = app.post(&b, "/api/auth/spotify/logout?scope=device").await;
    assert_eq!(out.status(), StatusCode::OK);
    let mark = cookie_pair(out.headers(), "__Host-spotauth_switch").expect("the logged-out mark");
    assert!(set_cookie_attrs(out.headers(), "__Host-spotauth_switch").contains("HttpOnly"));

    // The browser's next login carries the mark: Spotify must show its chooser.
    let resp = app.http.post(app.url("/api/auth/spotify/login")).header("Cookie", &mark).send().await.unwrap();
    let login_cookie = cookie_pair(resp.headers(), "__Host-spotauth_login").unwrap();
    let url = resp.json::<Value>().await.unwrap()["authorizeUrl"].as_str().unwrap().to_owned();
    assert!(asks(&url), "{url}");
    // The login completes (as bob: the chooser let the next person pick) and clears the mark.
    let query = app.authorize(&url, "bob", false).await;
    let done = app.http.get(app.url(&format!("/api/auth/spotify/callback?{query}")));
    let done = done.header("Cookie", format!("{login_cookie}; {mark}")).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(done.headers()[LOCATION], FRONTEND);
    assert!(set_cookie_attrs(done.headers(), "__Host-spotauth_switch").contains("Max-Age=0"));
}
