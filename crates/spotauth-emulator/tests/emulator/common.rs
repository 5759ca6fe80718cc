//! Shared helpers: a configured emulator, a reqwest client that does not follow redirects, and
//! the authorization-code + PKCE flow.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use spotauth_emulator::{AppMode, Emulator, EmulatorConfig, EmulatorHandle, TestUser};

pub const CLIENT_ID: &str = "test-client";
pub const CLIENT_SECRET: &str = "test-secret";
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/api/auth/spotify/callback";
pub const SCOPES: &str =
    "user-read-private user-read-email streaming user-read-playback-state user-modify-playback-state";

pub fn config() -> EmulatorConfig {
    EmulatorConfig::new(CLIENT_ID)
        .client_secret(Some(CLIENT_SECRET.to_owned()))
        .redirect_uris([REDIRECT_URI])
        .user(TestUser::premium("alice").with_display_name("Alice"))
        .user(TestUser::premium("bob").with_account_id(None))
        .user(TestUser::free("carol"))
}

pub fn dev_config(allow: &[&str]) -> EmulatorConfig {
    config().app_mode(AppMode::DevelopmentMode { allow_list: allow.iter().map(|s| (*s).to_owned()).collect() })
}

pub async fn start(config: EmulatorConfig) -> EmulatorHandle {
    Emulator::start(config).await.expect("emulator starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A PKCE verifier (64 chars) and its S256 challenge.
pub fn pkce() -> (String, String) {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    let mut rng = rand::thread_rng();
    let verifier: String = (0..64).map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char).collect();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// Query parameters of a `Location` header.
pub fn location_params(resp: &reqwest::Response) -> Vec<(String, String)> {
    let loc = resp.headers().get("location").expect("a Location header").to_str().unwrap();
    let url = url::Url::parse(loc).unwrap();
    assert!(loc.starts_with(REDIRECT_URI), "redirects to the registered URI: {loc}");
    url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Builds `/authorize` parameters; `extra` overrides or adds.
pub fn authorize_params(challenge: Option<&str>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = vec![
        ("client_id".into(), CLIENT_ID.into()),
        ("response_type".into(), "code".into()),
        ("redirect_uri".into(), REDIRECT_URI.into()),
        ("scope".into(), SCOPES.into()),
        ("state".into(), "st-123".into()),
    ];
    if let Some(c) = challenge {
        p.push(("code_challenge".into(), c.into()));
        p.push(("code_challenge_method".into(), "S256".into()));
    }
    for (k, v) in extra {
        p.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            p.push(((*k).into(), (*v).into()));
        }
    }
    p
}

pub async fn get_authorize(emu: &EmulatorHandle, params: &[(String, String)]) -> reqwest::Response {
    client().get(emu.authorize_url()).query(params).send().await.unwrap()
}

/// Runs `/authorize` as `user` with PKCE; returns (code, verifier).
pub async fn authorize(emu: &EmulatorHandle, user: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let resp = get_authorize(emu, &authorize_params(Some(&challenge), &[("login_as", user)])).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let params = location_params(&resp);
    assert_eq!(param(&params, "state"), Some("st-123"));
    let code = param(&params, "code").expect("a code").to_owned();
    (code, verifier)
}

/// Posts a form to the token endpoint, with HTTP Basic when `basic`.
pub async fn token_request(emu: &EmulatorHandle, basic: bool, form: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client().post(emu.token_url()).form(form);
    if basic {
        req = req.basic_auth(CLIENT_ID, Some(CLIENT_SECRET));
    }
    req.send().await.unwrap()
}

pub async fn exchange(emu: &EmulatorHandle, code: &str, verifier: &str) -> reqwest::Response {
    token_request(
        emu,
        true,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// Authorizes `user` and exchanges the code; returns the token response JSON.
pub async fn login(emu: &EmulatorHandle, user: &str) -> Value {
    let (code, verifier) = authorize(emu, user).await;
    let resp = exchange(emu, &code, &verifier).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

pub async fn refresh(emu: &EmulatorHandle, refresh_token: &str) -> reqwest::Response {
    token_request(emu, true, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
}

pub fn s(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or_else(|| panic!("{field} in {v}")).to_owned()
}

/// Asserts an RFC 6749 error answer.
pub async fn assert_oauth_error(resp: reqwest::Response, status: StatusCode, error: &str) -> Value {
    assert_eq!(resp.status(), status);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    body
}

pub async fn api_get(emu: &EmulatorHandle, path: &str, token: &str) -> reqwest::Response {
    client().get(format!("{}{path}", emu.api_url())).bearer_auth(token).send().await.unwrap()
}

pub async fn api_put(emu: &EmulatorHandle, path: &str, token: &str) -> reqwest::Response {
    client()
        .put(format!("{}{path}", emu.api_url()))
        .bearer_auth(token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
}

/// Registers a Web Playback SDK player of the token's user, as the fake SDK does on
/// `connect()`; returns the answer.
pub async fn sdk_register(emu: &EmulatorHandle, token: &str, name: &str) -> reqwest::Response {
    client()
        .post(format!("{}/sdk/v1/devices", emu.base_url()))
        .bearer_auth(token)
        .json(&serde_json::json!({ "name": name, "volume": 0.5 }))
        .send()
        .await
        .unwrap()
}

/// A registered device's id (the user must be Premium).
pub async fn device(emu: &EmulatorHandle, token: &str, name: &str) -> String {
    let resp = sdk_register(emu, token, name).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    s(&body, "device_id")
}

/// `PUT <api><path>` with a JSON body.
pub async fn api_put_json(emu: &EmulatorHandle, path: &str, token: &str, body: &Value) -> reqwest::Response {
    client().put(format!("{}{path}", emu.api_url())).bearer_auth(token).json(body).send().await.unwrap()
}
