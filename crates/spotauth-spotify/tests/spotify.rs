#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The Spotify adapter against the project's Spotify emulator, over real HTTP.

use std::sync::Arc;
use std::time::Duration;

use spotauth_domain::Timestamp;
use spotauth_domain::ports::{AccountPrompt, PremiumProbe, SpotifyAccounts, SpotifyError, SpotifyProfilePort};
use spotauth_domain::secret::{AuthorizationCode, OAuthState, PkceVerifier, RefreshToken, Secret};
use spotauth_domain::token::{Scopes, TokenGrant};
use spotauth_emulator::{
    AppMode, Emulator, EmulatorConfig, EmulatorHandle, Fault, FaultTarget, REFRESH_TOKEN_LIFETIME, RefreshMode,
    TestUser,
};
use spotauth_spotify::config::{SETTING_ACCOUNTS_URL, SETTING_API_URL, SETTING_CLIENT_ID, SETTING_REDIRECT_URI};
use spotauth_spotify::{ConfigError, SpotifyClient, SpotifyConfig};
use spotauth_testkit::ManualClock;

const CLIENT_ID: &str = "test-client-id";
const CLIENT_SECRET: &str = "test-client-SECRET-0123456789";
const REDIRECT: &str = "http://127.0.0.1:9/api/auth/spotify/callback";
const NOW: i64 = 1_780_000_000;
const SCOPES_WITH_PROBE: &str = "streaming user-read-email user-read-private user-read-playback-state";

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::at(Timestamp::from_unix_seconds(NOW)))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Confidential,
    Public,
}

struct Env {
    emu: EmulatorHandle,
    client: SpotifyClient,
    kind: Kind,
    /// Every secret value seen in the test; no error may contain any of them.
    secrets: Vec<String>,
}

fn emulator_config(kind: Kind) -> EmulatorConfig {
    EmulatorConfig::new(CLIENT_ID)
        .client_secret((kind == Kind::Confidential).then(|| CLIENT_SECRET.to_owned()))
        .redirect_uris([REDIRECT])
        .user(TestUser::premium("alice"))
        .user(TestUser::free("carol"))
        .user(TestUser::premium("bob").with_account_id(None))
}

fn config_for(emu: &EmulatorHandle, kind: Kind) -> SpotifyConfig {
    let secret = (kind == Kind::Confidential).then(|| Secret::new(CLIENT_SECRET));
    SpotifyConfig::new(CLIENT_ID, secret, REDIRECT)
        .unwrap()
        .with_accounts_url(emu.accounts_url())
        .unwrap()
        .with_api_url(&emu.api_url())
        .unwrap()
        .with_scopes(SCOPES_WITH_PROBE)
        .unwrap()
}

async fn env(kind: Kind) -> Env {
    env_with(kind, |c| c).await
}

async fn env_with(kind: Kind, adjust: impl FnOnce(SpotifyConfig) -> SpotifyConfig) -> Env {
    let emu = Emulator::start(emulator_config(kind)).await.unwrap();
    let client = SpotifyClient::new(adjust(config_for(&emu, kind)), clock()).unwrap();
    Env { emu, client, kind, secrets: vec![CLIENT_SECRET.to_owned()] }
}

impl Env {
    /// Another adapter instance against the same emulator.
    fn client_with(&self, adjust: impl FnOnce(SpotifyConfig) -> SpotifyConfig) -> SpotifyClient {
        SpotifyClient::new(adjust(config_for(&self.emu, self.kind)), clock()).unwrap()
    }

    /// begin_authorization → the browser's trip to /authorize (as `user`) → code and state
    /// from the redirect. Checks the state round-trips.
    async fn authorize(&mut self, user: &str) -> (AuthorizationCode, PkceVerifier) {
        let start = self.client.begin_authorization(AccountPrompt::Silent);
        let url = format!("{}&login_as={user}", start.authorize_url);
        let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let resp = browser.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::FOUND, "authorize answered {}", resp.status());
        let location = resp.headers()[reqwest::header::LOCATION].to_str().unwrap().to_owned();
        assert!(location.starts_with(REDIRECT), "{location}");
        let location = url::Url::parse(&location).unwrap();
        let param = |k: &str| location.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
        assert_eq!(param("error"), None);
        let state = OAuthState::new(param("state").unwrap()).unwrap();
        assert_eq!(state, start.state, "state must round-trip");
        let code = param("code").unwrap();
        self.secrets.push(code.clone());
        self.secrets.push(start.pkce_verifier.expose().to_owned());
        self.secrets.push(start.state.expose().to_owned());
        (AuthorizationCode::new(code).unwrap(), start.pkce_verifier)
    }

    fn remember(&mut self, grant: &TokenGrant) {
        self.secrets.push(grant.access_token.expose().to_owned());
        if let Some(r) = &grant.refresh_token {
            self.secrets.push(r.expose().to_owned());
        }
    }

    /// A full login: authorize and exchange the code.
    async fn login(&mut self, user: &str) -> (TokenGrant, RefreshToken) {
        let (code, verifier) = self.authorize(user).await;
        let grant = self.client.exchange_code(&code, &verifier).await.unwrap();
        self.remember(&grant);
        let refresh = grant.refresh_token.clone().expect("a code exchange returns a refresh token");
        (grant, refresh)
    }

    /// Asserts the error is `expected`-shaped and names no secret seen so far.
    fn check_err(&self, err: &SpotifyError) {
        let text = format!("{err:?} {err}");
        for s in &self.secrets {
            assert!(!text.contains(s.as_str()), "error {text:?} leaks a secret");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Full login
// ---------------------------------------------------------------------------------------------

async fn full_login(kind: Kind) {
    let mut env = env(kind).await;
    let (grant, _) = env.login("alice").await;
    assert_eq!(grant.access_expires_at, Timestamp::from_unix_seconds(NOW + 3600));
    assert_eq!(grant.scopes, Scopes::parse(SCOPES_WITH_PROBE));

    let profile = env.client.current_profile(&grant.access_token).await.unwrap();
    assert_eq!(profile.spotify_id.as_str(), "alice");
    assert_eq!(profile.account_id.as_ref().map(|a| a.as_str()), Some("acct-alice"));
    assert_eq!(profile.display_name.as_ref().map(|d| d.as_str()), Some("alice"));
    assert_eq!(profile.product.as_deref(), Some("premium"), "Extended Quota carries product");
    assert_eq!(env.client.probe_premium(&grant.access_token).await.unwrap(), PremiumProbe::Premium);

    let (grant, _) = env.login("carol").await;
    let profile = env.client.current_profile(&grant.access_token).await.unwrap();
    assert_eq!(profile.product.as_deref(), Some("free"));
    assert_eq!(env.client.probe_premium(&grant.access_token).await.unwrap(), PremiumProbe::Free);

    // A user without account_id: the key falls back to the id.
    let (grant, _) = env.login("bob").await;
    let profile = env.client.current_profile(&grant.access_token).await.unwrap();
    assert_eq!(profile.account_id, None);
    assert_eq!(profile.account_key().unwrap().as_str(), "bob");

    let c = env.emu.counters().total;
    assert_eq!(c.authorize, 3);
    assert_eq!(c.token_authorization_code, 3);
}

#[tokio::test]
async fn full_login_confidential_client_with_http_basic() {
    full_login(Kind::Confidential).await;
}

#[tokio::test]
async fn full_login_public_pkce_client_with_client_id_in_body() {
    full_login(Kind::Public).await;
}

#[tokio::test]
async fn development_mode_has_no_product_and_probe_decides() {
    let mut env = env(Kind::Public).await;
    env.emu
        .set_app_mode(AppMode::DevelopmentMode { allow_list: vec!["alice".to_owned(), "carol".to_owned()] })
        .unwrap();
    let (alice, _) = env.login("alice").await;
    let profile = env.client.current_profile(&alice.access_token).await.unwrap();
    assert_eq!(profile.product, None, "Development Mode: no product");
    assert_eq!(profile.account_id.as_ref().map(|a| a.as_str()), Some("acct-alice"));
    assert_eq!(env.client.probe_premium(&alice.access_token).await.unwrap(), PremiumProbe::Premium);

    let (carol, _) = env.login("carol").await;
    assert_eq!(env.client.current_profile(&carol.access_token).await.unwrap().product, None);
    assert_eq!(env.client.probe_premium(&carol.access_token).await.unwrap(), PremiumProbe::Free);

    // bob is not allow-listed: he can log in, but every Web API call is 403.
    let (bob, _) = env.login("bob").await;
    let err = env.client.current_profile(&bob.access_token).await.unwrap_err();
    assert_eq!(err, SpotifyError::NotAllowListed);
    env.check_err(&err);
    let err = env.client.probe_premium(&bob.access_token).await.unwrap_err();
    assert_eq!(err, SpotifyError::NotAllowListed);
}

#[tokio::test]
async fn probe_without_playback_scope_is_inconclusive() {
    let mut env = env_with(Kind::Confidential, |c| c.with_scopes(SpotifyConfig::SDK_SCOPES).unwrap()).await;
    let (grant, _) = env.login("alice").await;
    assert_eq!(grant.scopes, Scopes::parse(SpotifyConfig::SDK_SCOPES));
    assert_eq!(env.client.probe_premium(&grant.access_token).await.unwrap(), PremiumProbe::Inconclusive);
    let (grant, _) = env.login("carol").await;
    assert_eq!(env.client.probe_premium(&grant.access_token).await.unwrap(), PremiumProbe::Inconclusive);
}

// ---------------------------------------------------------------------------------------------
// Refresh modes
// ---------------------------------------------------------------------------------------------

async fn refresh_modes(kind: Kind) {
    let mut env = env(kind).await;

    env.emu.set_refresh_mode(RefreshMode::Rotate);
    let (_, r0) = env.login("alice").await;
    let g1 = env.client.refresh(&r0).await.unwrap();
    env.remember(&g1);
    assert_eq!(g1.access_expires_at, Timestamp::from_unix_seconds(NOW + 3600));
    let r1 = g1.refresh_token.clone().expect("Rotate: a new refresh token");
    assert_ne!(r1, r0);
    let g2 = env.client.refresh(&r1).await.unwrap();
    env.remember(&g2);
    assert!(g2.refresh_token.is_some());
    env.client.current_profile(&g2.access_token).await.unwrap();

    env.emu.set_refresh_mode(RefreshMode::Keep);
    let (_, k0) = env.login("alice").await;
    let g = env.client.refresh(&k0).await.unwrap();
    env.remember(&g);
    assert_eq!(g.refresh_token, None, "Keep: no refresh_token field → None");
    let g = env.client.refresh(&k0).await.unwrap();
    env.remember(&g);
    assert_eq!(g.refresh_token, None, "Keep: the old one works again");
    env.client.current_profile(&g.access_token).await.unwrap();

    env.emu.set_refresh_mode(RefreshMode::SingleUse);
    let (_, s0) = env.login("alice").await;
    let g = env.client.refresh(&s0).await.unwrap();
    env.remember(&g);
    let s1 = g.refresh_token.clone().expect("SingleUse: a new refresh token");
    let err = env.client.refresh(&s0).await.unwrap_err();
    assert_eq!(err, SpotifyError::ReauthRequired, "SingleUse: reusing the old one is invalid_grant");
    env.check_err(&err);
    let g = env.client.refresh(&s1).await.unwrap();
    env.remember(&g);
    assert!(g.refresh_token.is_some());
}

#[tokio::test]
async fn refresh_modes_confidential() {
    refresh_modes(Kind::Confidential).await;
}

#[tokio::test]
async fn refresh_modes_public() {
    refresh_modes(Kind::Public).await;
}

#[tokio::test]
async fn a_refresh_is_exactly_one_token_call() {
    let mut env = env(Kind::Confidential).await;
    let (_, r) = env.login("alice").await;
    env.emu.reset_counters();
    let g = env.client.refresh(&r).await.unwrap();
    env.remember(&g);
    let c = env.emu.counters();
    assert_eq!(c.total.token_refresh_token, 1);
    assert_eq!(c.total.token_authorization_code, 0);
    assert_eq!(c.total.token_other, 0);
    assert_eq!(c.total.me + c.total.player + c.total.authorize, 0);
    assert_eq!(c.user("alice").token_refresh_token, 1);

    // A refused refresh is not retried either.
    env.emu.revoke_refresh_tokens("alice");
    env.emu.reset_counters();
    assert_eq!(env.client.refresh(&r).await.unwrap_err(), SpotifyError::ReauthRequired);
    assert_eq!(env.emu.counters().total.token_refresh_token, 1);
}

// ---------------------------------------------------------------------------------------------
// invalid_grant and misconfiguration
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn revoked_refresh_token_requires_reauth() {
    let mut env = env(Kind::Confidential).await;
    let (_, r) = env.login("alice").await;
    assert!(env.emu.revoke_refresh_tokens("alice") > 0);
    let err = env.client.refresh(&r).await.unwrap_err();
    assert_eq!(err, SpotifyError::ReauthRequired);
    env.check_err(&err);
}

#[tokio::test]
async fn refresh_token_dies_six_months_after_authorization() {
    let mut env = env(Kind::Public).await;
    let (_, r) = env.login("alice").await;
    env.emu.advance_clock(REFRESH_TOKEN_LIFETIME - Duration::from_secs(3600));
    let g = env.client.refresh(&r).await.unwrap();
    env.remember(&g);
    let r = g.refresh_token.unwrap();
    env.emu.advance_clock(Duration::from_secs(2 * 3600));
    let err = env.client.refresh(&r).await.unwrap_err();
    assert_eq!(err, SpotifyError::ReauthRequired, "refreshing never extends the 6 months");
    env.check_err(&err);
}

#[tokio::test]
async fn wrong_verifier_and_reused_code_require_reauth() {
    for kind in [Kind::Confidential, Kind::Public] {
        let mut env = env(kind).await;
        let (code, _verifier) = env.authorize("alice").await;
        let other = env.client.begin_authorization(AccountPrompt::Silent).pkce_verifier;
        env.secrets.push(other.expose().to_owned());
        let err = env.client.exchange_code(&code, &other).await.unwrap_err();
        assert_eq!(err, SpotifyError::ReauthRequired, "wrong verifier is invalid_grant");
        env.check_err(&err);

        let (code, verifier) = env.authorize("alice").await;
        let g = env.client.exchange_code(&code, &verifier).await.unwrap();
        env.remember(&g);
        let err = env.client.exchange_code(&code, &verifier).await.unwrap_err();
        assert_eq!(err, SpotifyError::ReauthRequired, "a code is single use");
        env.check_err(&err);

        // A verifier that cannot be ours is refused before any call.
        let (code, _) = env.authorize("alice").await;
        env.emu.reset_counters();
        let short = PkceVerifier::new("too-short").unwrap();
        assert_eq!(env.client.exchange_code(&code, &short).await.unwrap_err(), SpotifyError::ReauthRequired);
        assert_eq!(env.emu.counters().total.token_total(), 0);
    }
}

#[tokio::test]
async fn wrong_redirect_uri_is_misconfigured() {
    // The emulator (like Spotify) answers a redirect_uri differing from the authorization's with
    // 400 `invalid_grant` "Invalid redirect URI"; the adapter maps that to Misconfigured, as the
    // port asks for redirect mismatches.
    let mut env = env(Kind::Confidential).await;
    let (code, verifier) = env.authorize("alice").await;
    let other = env.client_with(|c| {
        let c2 =
            SpotifyConfig::new(CLIENT_ID, Some(Secret::new(CLIENT_SECRET)), "http://127.0.0.1:9/elsewhere").unwrap();
        c2.with_accounts_url(c.accounts_url()).unwrap().with_api_url(c.api_url()).unwrap()
    });
    let err = other.exchange_code(&code, &verifier).await.unwrap_err();
    assert!(matches!(err, SpotifyError::Misconfigured(ref m) if m.contains("redirect")), "{err:?}");
    env.check_err(&err);
}

#[tokio::test]
async fn wrong_client_credentials_are_misconfigured() {
    let mut env = env(Kind::Confidential).await;
    let (code, verifier) = env.authorize("alice").await;
    let wrong_secret = "wrong-SECRET-value-42";
    env.secrets.push(wrong_secret.to_owned());
    let bad = env.client_with(|c| {
        SpotifyConfig::new(CLIENT_ID, Some(Secret::new(wrong_secret)), REDIRECT)
            .unwrap()
            .with_accounts_url(c.accounts_url())
            .unwrap()
    });
    let err = bad.exchange_code(&code, &verifier).await.unwrap_err();
    assert!(matches!(err, SpotifyError::Misconfigured(_)), "{err:?}");
    env.check_err(&err);

    let (_, r) = env.login("alice").await;
    let bad_id = env.client_with(|c| {
        SpotifyConfig::new("someone-else", None, REDIRECT).unwrap().with_accounts_url(c.accounts_url()).unwrap()
    });
    let err = bad_id.refresh(&r).await.unwrap_err();
    assert!(matches!(err, SpotifyError::Misconfigured(_)), "{err:?}");
    env.check_err(&err);
}

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rate_limits_carry_retry_after() {
    let mut env = env(Kind::Confidential).await;
    let (grant, r) = env.login("alice").await;

    env.emu.inject_fault(Fault::rate_limited(FaultTarget::Token, 30)).unwrap();
    let err = env.client.refresh(&r).await.unwrap_err();
    assert_eq!(err, SpotifyError::RateLimited { retry_after: Duration::from_secs(30) });
    env.check_err(&err);

    env.emu.inject_fault(Fault::quota_exceeded(FaultTarget::Me, 86_400)).unwrap();
    let err = env.client.current_profile(&grant.access_token).await.unwrap_err();
    assert_eq!(err, SpotifyError::RateLimited { retry_after: Duration::from_secs(86_400) });

    env.emu.inject_fault(Fault::rate_limited(FaultTarget::Player, 5)).unwrap();
    let err = env.client.probe_premium(&grant.access_token).await.unwrap_err();
    assert_eq!(err, SpotifyError::RateLimited { retry_after: Duration::from_secs(5) });

    env.emu.inject_fault(Fault::rate_limited(FaultTarget::Token, 2)).unwrap();
    let (code, verifier) = env.authorize("alice").await;
    let err = env.client.exchange_code(&code, &verifier).await.unwrap_err();
    assert_eq!(err, SpotifyError::RateLimited { retry_after: Duration::from_secs(2) });
    env.check_err(&err);

    // After the fault, things work again (the refresh token was never consumed).
    let g = env.client.refresh(&r).await.unwrap();
    env.remember(&g);
}

#[tokio::test]
async fn server_errors_are_unavailable() {
    let mut env = env(Kind::Public).await;
    let (grant, r) = env.login("alice").await;
    for status in [500, 502, 503] {
        env.emu.inject_fault(Fault::server_error(FaultTarget::Token, status)).unwrap();
        let err = env.client.refresh(&r).await.unwrap_err();
        assert!(matches!(err, SpotifyError::Unavailable(ref m) if m.contains(&status.to_string())), "{err:?}");
        env.check_err(&err);

        env.emu.inject_fault(Fault::server_error(FaultTarget::Me, status)).unwrap();
        let err = env.client.current_profile(&grant.access_token).await.unwrap_err();
        assert!(matches!(err, SpotifyError::Unavailable(_)), "{err:?}");
        env.check_err(&err);

        env.emu.inject_fault(Fault::server_error(FaultTarget::Player, status)).unwrap();
        let err = env.client.probe_premium(&grant.access_token).await.unwrap_err();
        assert!(matches!(err, SpotifyError::Unavailable(_)), "{err:?}");
    }
    let g = env.client.refresh(&r).await.unwrap();
    env.remember(&g);
}

#[tokio::test]
async fn slow_answers_time_out_as_unavailable() {
    let mut env = env_with(Kind::Confidential, |c| c.with_timeout(Duration::from_millis(300)).unwrap()).await;
    let (grant, r) = env.login("alice").await;

    env.emu.inject_fault(Fault::slow(FaultTarget::Token, Duration::from_millis(1500))).unwrap();
    let started = std::time::Instant::now();
    let err = env.client.refresh(&r).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(1200), "timeout honoured: {:?}", started.elapsed());
    assert!(matches!(err, SpotifyError::Unavailable(ref m) if m.contains("timed out")), "{err:?}");
    env.check_err(&err);

    env.emu.inject_fault(Fault::slow(FaultTarget::Me, Duration::from_millis(1500))).unwrap();
    let err = env.client.current_profile(&grant.access_token).await.unwrap_err();
    assert!(matches!(err, SpotifyError::Unavailable(_)), "{err:?}");
    env.check_err(&err);

    // A slow answer within the timeout is fine.
    env.emu.inject_fault(Fault::slow(FaultTarget::Me, Duration::from_millis(50))).unwrap();
    env.client.current_profile(&grant.access_token).await.unwrap();
}

#[tokio::test]
async fn dropped_connections_are_unavailable() {
    let mut env = env(Kind::Confidential).await;
    let (grant, r) = env.login("alice").await;

    env.emu.inject_fault(Fault::drop_connection(FaultTarget::Token)).unwrap();
    let err = env.client.refresh(&r).await.unwrap_err();
    assert!(matches!(err, SpotifyError::Unavailable(_)), "{err:?}");
    env.check_err(&err);

    env.emu.inject_fault(Fault::drop_connection(FaultTarget::Me)).unwrap();
    let err = env.client.current_profile(&grant.access_token).await.unwrap_err();
    assert!(matches!(err, SpotifyError::Unavailable(_)), "{err:?}");
    env.check_err(&err);

    env.emu.inject_fault(Fault::drop_connection(FaultTarget::Player)).unwrap();
    let err = env.client.probe_premium(&grant.access_token).await.unwrap_err();
    assert!(matches!(err, SpotifyError::Unavailable(_)), "{err:?}");

    let (code, verifier) = env.authorize("alice").await;
    env.emu.inject_fault(Fault::drop_connection(FaultTarget::Token)).unwrap();
    let err = env.client.exchange_code(&code, &verifier).await.unwrap_err();
    assert!(matches!(err, SpotifyError::Unavailable(_)), "{err:?}");
    env.check_err(&err);
}

#[tokio::test]
async fn unreachable_spotify_is_unavailable() {
    // Nothing listens on the port of a stopped emulator.
    let mut env = env(Kind::Public).await;
    let (grant, r) = env.login("alice").await;
    let Env { emu, client, secrets, .. } = env;
    emu.stop().await;
    let err = client.refresh(&r).await.unwrap_err();
    assert!(matches!(err, SpotifyError::Unavailable(_)), "{err:?}");
    let err2 = client.current_profile(&grant.access_token).await.unwrap_err();
    assert!(matches!(err2, SpotifyError::Unavailable(_)), "{err2:?}");
    for e in [err, err2] {
        let text = format!("{e:?} {e}");
        assert!(!text.contains("127.0.0.1"), "no URL in {text}");
        for s in &secrets {
            assert!(!text.contains(s.as_str()));
        }
    }
}

#[tokio::test]
async fn expired_access_token_is_invalid() {
    let mut env = env(Kind::Confidential).await;
    let (grant, r) = env.login("alice").await;
    assert!(env.emu.expire_access_tokens("alice") > 0);
    let err = env.client.current_profile(&grant.access_token).await.unwrap_err();
    assert_eq!(err, SpotifyError::AccessTokenInvalid);
    env.check_err(&err);
    assert_eq!(env.client.probe_premium(&grant.access_token).await.unwrap_err(), SpotifyError::AccessTokenInvalid);
    // A refresh brings a working token.
    let g = env.client.refresh(&r).await.unwrap();
    env.remember(&g);
    env.client.current_profile(&g.access_token).await.unwrap();
    // A token Spotify never issued is invalid too.
    let bogus = spotauth_domain::secret::AccessToken::new("BQD-never-issued").unwrap();
    assert_eq!(env.client.current_profile(&bogus).await.unwrap_err(), SpotifyError::AccessTokenInvalid);
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

fn setting_of(err: ConfigError) -> &'static str {
    let text = err.to_string();
    let setting = err.setting().unwrap();
    assert!(text.contains(setting), "{text} names {setting}");
    setting
}

#[test]
fn config_validation() {
    let new = |redirect: &str| SpotifyConfig::new(CLIENT_ID, None, redirect);
    assert_eq!(setting_of(new("http://localhost:8080/callback").unwrap_err()), SETTING_REDIRECT_URI);
    assert_eq!(setting_of(new("https://localhost/callback").unwrap_err()), SETTING_REDIRECT_URI);
    assert_eq!(setting_of(new("http://example.com/callback").unwrap_err()), SETTING_REDIRECT_URI);
    assert_eq!(setting_of(new("http://10.0.0.1:8080/callback").unwrap_err()), SETTING_REDIRECT_URI);
    assert_eq!(setting_of(new("::not a url::").unwrap_err()), SETTING_REDIRECT_URI);
    assert_eq!(setting_of(new("").unwrap_err()), SETTING_REDIRECT_URI);
    assert!(new("http://127.0.0.1:8080/callback").is_ok());
    assert!(new("http://[::1]:8080/callback").is_ok());
    assert!(new("https://spotauth.example/api/auth/spotify/callback").is_ok());

    assert_eq!(setting_of(SpotifyConfig::new("", None, REDIRECT).unwrap_err()), SETTING_CLIENT_ID);
    assert_eq!(setting_of(SpotifyConfig::new("a b", None, REDIRECT).unwrap_err()), SETTING_CLIENT_ID);

    let ok = new(REDIRECT).unwrap();
    assert_eq!(ok.accounts_url(), "https://accounts.spotify.com");
    assert_eq!(ok.api_url(), "https://api.spotify.com/v1");
    assert_eq!(
        ok.scopes().to_string(),
        "streaming user-modify-playback-state user-read-email user-read-playback-state user-read-private"
    );
    assert_eq!(ok.timeout(), Duration::from_secs(10));
    assert!(ok.is_public_client());
    assert_eq!(setting_of(ok.clone().with_accounts_url("accounts.spotify.com").unwrap_err()), SETTING_ACCOUNTS_URL);
    assert_eq!(
        setting_of(ok.clone().with_accounts_url("ftp://accounts.spotify.com").unwrap_err()),
        SETTING_ACCOUNTS_URL
    );
    assert_eq!(setting_of(ok.clone().with_api_url("not a url").unwrap_err()), SETTING_API_URL);
    assert_eq!(setting_of(ok.clone().with_api_url("https://u:p@api.spotify.com/v1").unwrap_err()), SETTING_API_URL);

    let secret = "very-SECRET-value";
    let c = SpotifyConfig::new(CLIENT_ID, Some(Secret::new(secret)), REDIRECT).unwrap();
    let client = SpotifyClient::new(c, clock()).unwrap();
    assert!(!format!("{client:?}").contains(secret));
}

#[test]
fn client_is_shareable() {
    fn assert_shareable<T: Send + Sync + 'static>() {}
    assert_shareable::<SpotifyClient>();
    let c = SpotifyConfig::new(CLIENT_ID, None, REDIRECT).unwrap();
    let client: Arc<dyn SpotifyAccounts> = Arc::new(SpotifyClient::new(c, clock()).unwrap());
    let start = client.begin_authorization(AccountPrompt::Silent);
    assert!(start.authorize_url.starts_with("https://accounts.spotify.com/authorize?client_id=test-client-id&"));
}
