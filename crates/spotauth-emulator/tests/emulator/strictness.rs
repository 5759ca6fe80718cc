//! Every way a request can be wrong is answered as Spotify (RFC 6749 / RFC 7636) answers it.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

const BAD: StatusCode = StatusCode::BAD_REQUEST;

#[tokio::test]
async fn wrong_code_verifier() {
    let emu = start(config()).await;
    let (code, _) = authorize(&emu, "alice").await;
    let (other_verifier, _) = pkce();
    let body = assert_oauth_error(exchange(&emu, &code, &other_verifier).await, BAD, "invalid_grant").await;
    assert_eq!(body["error_description"], "code_verifier was incorrect");
    // Missing verifier.
    let (code, _) = authorize(&emu, "alice").await;
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT_URI)];
    assert_oauth_error(token_request(&emu, true, &form).await, BAD, "invalid_request").await;
    // Malformed (too short) verifier.
    let (code, _) = authorize(&emu, "alice").await;
    assert_oauth_error(exchange(&emu, &code, "short").await, BAD, "invalid_request").await;
}

#[tokio::test]
async fn reused_code_is_rejected_and_revokes_its_tokens() {
    let emu = start(config()).await;
    let (code, verifier) = authorize(&emu, "alice").await;
    let first = exchange(&emu, &code, &verifier).await;
    assert_eq!(first.status(), StatusCode::OK);
    let tokens: Value = first.json().await.unwrap();
    assert_oauth_error(exchange(&emu, &code, &verifier).await, BAD, "invalid_grant").await;
    // Tokens issued from the replayed code are revoked.
    assert_eq!(api_get(&emu, "/me", &s(&tokens, "access_token")).await.status(), StatusCode::UNAUTHORIZED);
    assert_oauth_error(refresh(&emu, &s(&tokens, "refresh_token")).await, BAD, "invalid_grant").await;
}

#[tokio::test]
async fn unknown_and_expired_codes() {
    let emu = start(config()).await;
    let (_, verifier) = authorize(&emu, "alice").await;
    assert_oauth_error(exchange(&emu, "AQnot-a-code", &verifier).await, BAD, "invalid_grant").await;
    let (code, verifier) = authorize(&emu, "alice").await;
    emu.advance_clock(std::time::Duration::from_secs(601));
    assert_oauth_error(exchange(&emu, &code, &verifier).await, BAD, "invalid_grant").await;
}

#[tokio::test]
async fn wrong_redirect_uri_at_token_time() {
    let emu = start(config().redirect_uris([REDIRECT_URI, "https://app.example/callback"])).await;
    let (code, verifier) = authorize(&emu, "alice").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "https://app.example/callback"),
        ("code_verifier", verifier.as_str()),
    ];
    assert_oauth_error(token_request(&emu, true, &form).await, BAD, "invalid_grant").await;
    // Missing redirect_uri.
    let (code, verifier) = authorize(&emu, "alice").await;
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("code_verifier", verifier.as_str())];
    assert_oauth_error(token_request(&emu, true, &form).await, BAD, "invalid_request").await;
}

#[tokio::test]
async fn wrong_redirect_uri_or_client_at_authorize_never_redirects() {
    let emu = start(config()).await;
    let (_, challenge) = pkce();
    for extra in [
        [("redirect_uri", "http://127.0.0.1:9/api/auth/spotify/callback/"), ("login_as", "alice")],
        [("redirect_uri", "http://127.0.0.1:9/api/auth/spotify/callback?x=1"), ("login_as", "alice")],
        [("redirect_uri", "https://evil.example/cb"), ("login_as", "alice")],
        [("redirect_uri", ""), ("login_as", "alice")],
        [("client_id", "unknown-client"), ("login_as", "alice")],
        [("client_id", ""), ("login_as", "alice")],
    ] {
        let r = get_authorize(&emu, &authorize_params(Some(&challenge), &extra)).await;
        assert_eq!(r.status(), BAD, "{extra:?}");
        assert!(r.headers().get("location").is_none(), "{extra:?}");
        let body: Value = r.json().await.unwrap();
        assert!(body["error"] == "invalid_client" || body["error"] == "invalid_request", "{body}");
    }
    // Unknown login user: 400, documented.
    let r = get_authorize(&emu, &authorize_params(Some(&challenge), &[("login_as", "nobody")])).await;
    assert_eq!(r.status(), BAD);
    assert!(r.headers().get("location").is_none());
}

#[tokio::test]
async fn authorize_request_errors_redirect_with_error() {
    let emu = start(config().client_secret(None)).await;
    let (_, challenge) = pkce();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("code_challenge", ""), ("code_challenge_method", "")], "invalid_request"), // public client: PKCE required
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge", "too-short")], "invalid_request"),
        (vec![("response_type", "token")], "unsupported_response_type"),
        (vec![("scope", "user-read-private not-a-scope")], "invalid_scope"),
        (vec![("state", "")], "invalid_request"),
    ];
    for (mut extra, error) in cases {
        extra.push(("login_as", "alice"));
        let params = authorize_params(Some(&challenge), &extra);
        let r = get_authorize(&emu, &params).await;
        assert_eq!(r.status(), StatusCode::FOUND, "{extra:?}");
        let p = location_params(&r);
        assert_eq!(param(&p, "error"), Some(error), "{extra:?}");
        assert!(param(&p, "code").is_none());
    }
    // A repeated parameter: 400, no redirect.
    let mut params = authorize_params(Some(&challenge), &[("login_as", "alice")]);
    params.push(("state".into(), "again".into()));
    assert_eq!(get_authorize(&emu, &params).await.status(), BAD);
}

#[tokio::test]
async fn bad_client_credentials() {
    let emu = start(config()).await;
    let (code, verifier) = authorize(&emu, "alice").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier.as_str()),
    ];
    let r = client().post(emu.token_url()).basic_auth(CLIENT_ID, Some("wrong")).form(&form).send().await.unwrap();
    assert!(r.headers().get("www-authenticate").is_some());
    assert_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let r = client().post(emu.token_url()).basic_auth("unknown", Some(CLIENT_SECRET)).form(&form).send().await.unwrap();
    assert_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    // Unknown client id in the body (public client).
    let mut body_form = form.to_vec();
    body_form.push(("client_id", "unknown"));
    assert_oauth_error(token_request(&emu, false, &body_form).await, BAD, "invalid_client").await;
    // No client authentication at all.
    assert_oauth_error(token_request(&emu, false, &form).await, BAD, "invalid_client").await;
    // client_secret in the body is refused (Spotify documents HTTP Basic).
    let mut post_form = form.to_vec();
    post_form.push(("client_id", CLIENT_ID));
    post_form.push(("client_secret", CLIENT_SECRET));
    assert_oauth_error(token_request(&emu, false, &post_form).await, BAD, "invalid_client").await;
    // The code was not consumed by failed client authentication.
    assert_eq!(exchange(&emu, &code, &verifier).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn non_form_body_and_bad_grants() {
    let emu = start(config()).await;
    let r = client()
        .post(emu.token_url())
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .json(&serde_json::json!({"grant_type": "refresh_token", "refresh_token": "x"}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(r, BAD, "invalid_request").await;
    assert_oauth_error(
        token_request(&emu, true, &[("grant_type", "client_credentials")]).await,
        BAD,
        "unsupported_grant_type",
    )
    .await;
    assert_oauth_error(token_request(&emu, true, &[("code", "x")]).await, BAD, "invalid_request").await;
    assert_oauth_error(refresh(&emu, "AQunknown").await, BAD, "invalid_grant").await;
    assert_oauth_error(token_request(&emu, true, &[("grant_type", "refresh_token")]).await, BAD, "invalid_request")
        .await;
    // A repeated parameter.
    let r = client()
        .post(emu.token_url())
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=refresh_token&refresh_token=a&refresh_token=b")
        .send()
        .await
        .unwrap();
    assert_oauth_error(r, BAD, "invalid_request").await;
    // GET is not allowed.
    let r = client().get(emu.token_url()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let c = emu.counters();
    // A body that cannot be parsed (JSON, repeated parameter) counts as "other".
    assert_eq!(c.total.token_refresh_token, 2);
    assert_eq!(c.total.token_other, 4);
}

#[tokio::test]
async fn invalid_configurations_are_refused() {
    use spotauth_emulator::{AppMode, Emulator, StartError};
    let six = AppMode::DevelopmentMode { allow_list: (0..6).map(|i| format!("u{i}")).collect() };
    assert!(matches!(Emulator::start(config().app_mode(six.clone())).await, Err(StartError::Config(_))));
    for uri in ["http://localhost:8080/cb", "http://example.com/cb", "not a url"] {
        assert!(Emulator::start(config().redirect_uris([uri])).await.is_err(), "{uri}");
    }
    assert!(Emulator::start(config().redirect_uris(["http://[::1]:8080/cb", "https://x.example/cb"])).await.is_ok());
    let emu = start(config()).await;
    assert!(emu.set_app_mode(six.clone()).is_err());
    let r = client().put(format!("{}/app_mode", emu.control_url())).json(&six).send().await.unwrap();
    assert_eq!(r.status(), BAD);
}
