//! [`SpotifyClient`]: the domain's [`SpotifyAccounts`] and [`SpotifyProfilePort`] over HTTP.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use openidconnect::core::CoreTokenType;
use openidconnect::{
    CsrfToken, EmptyExtraTokenFields, OAuth2TokenResponse as _, PkceCodeChallenge, StandardTokenResponse,
};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, HeaderMap};
use spotauth_domain::ports::{
    AccountPrompt, AuthorizationStart, Clock, PremiumProbe, SpotifyAccounts, SpotifyError, SpotifyProfilePort,
};
use spotauth_domain::room::{DeviceId, GroupPlay, PlayTarget, PlayerAnswer, SpotifyPlayerPort};
use spotauth_domain::secret::{AccessToken, AuthorizationCode, OAuthState, PkceVerifier, RefreshToken};
use spotauth_domain::token::{Scopes, TokenGrant};
use spotauth_domain::user::{DisplayName, SpotifyAccountKey, SpotifyProfile, SpotifyUserId};
use url::Url;

use crate::config::{ConfigError, SpotifyConfig};
use crate::mapping;
use crate::observe::{self, CallObserver, SpotifyCall};

/// Random bytes in the OAuth `state`: 256 bits (the port asks for at least 128;
/// `CsrfToken::new_random()` gives exactly 128).
const STATE_BYTES: u32 = 32;
/// Random bytes in the PKCE verifier: 64 bytes → 86 base64url characters (RFC 7636: 43–128).
const VERIFIER_BYTES: u32 = 64;
/// `expires_in` assumed when a token response lacks it (Spotify documents 3600).
const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(3600);
/// Longest answer body read into memory.
const MAX_BODY: usize = 256 * 1024;

/// Spotify's token response, read with openidconnect's (oauth2's) standard type: it checks
/// `token_type` is `bearer` (case-insensitively) and parses the space-delimited `scope`.
type SpotifyTokenResponse = StandardTokenResponse<EmptyExtraTokenFields, CoreTokenType>;

/// Which grant a token request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    AuthorizationCode,
    RefreshToken,
}

impl Grant {
    fn as_str(self) -> &'static str {
        match self {
            Grant::AuthorizationCode => "authorization_code",
            Grant::RefreshToken => "refresh_token",
        }
    }
}

/// The Spotify adapter. One instance (cheap to share behind an `Arc`) serves every user: it
/// holds one pooled `reqwest::Client` with a connect timeout and a total timeout on every call.
pub struct SpotifyClient {
    config: SpotifyConfig,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    observer: Option<Arc<dyn CallObserver>>,
}

impl fmt::Debug for SpotifyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpotifyClient").field("config", &self.config).finish_non_exhaustive()
    }
}

impl SpotifyClient {
    /// Builds the client and its HTTP connection pool. Redirects are never followed (neither
    /// endpoint redirects; following one could carry a bearer token elsewhere).
    ///
    /// # Errors
    /// [`ConfigError::HttpClient`] when the TLS backend cannot be initialised.
    pub fn new(config: SpotifyConfig, clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout())
            .connect_timeout(config.connect_timeout())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("spotauth-spotify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::HttpClient(e.without_url().to_string()))?;
        Ok(SpotifyClient { config, http, clock, observer: None })
    }

    /// Reports every call to `observer` (metrics).
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    fn observe(&self, call: SpotifyCall<'_>) {
        if let Some(observer) = &self.observer {
            observer.observe(&call);
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &SpotifyConfig {
        &self.config
    }

    fn token_url(&self) -> String {
        format!("{}/api/token", self.config.accounts_url())
    }

    /// `POST /api/token`, form-encoded. Confidential clients authenticate with HTTP Basic
    /// (`client_id:client_secret`, Spotify's documented form); public PKCE clients send
    /// `client_id` in the body. The secret never goes into the body: Spotify documents Basic
    /// only, and the emulator refuses it there.
    async fn token_request(&self, grant: Grant, params: &[(&str, &str)]) -> Result<TokenGrant, SpotifyError> {
        let mut form: Vec<(&str, &str)> = vec![("grant_type", grant.as_str())];
        form.extend_from_slice(params);
        let mut request = self.http.post(self.token_url()).header(ACCEPT, "application/json");
        match self.config.client_secret() {
            Some(secret) => request = request.basic_auth(self.config.client_id(), Some(secret.expose())),
            None => form.push(("client_id", self.config.client_id())),
        }
        let endpoint = "POST /api/token";
        let (status, headers, body) = self.send(endpoint, request.form(&form)).await?;
        if !status.is_success() {
            let err = mapping::token_error(status, &headers, &body);
            tracing::debug!(endpoint, grant = grant.as_str(), error = %err, "spotify token request refused");
            return Err(err);
        }
        self.grant_from_body(&body)
    }

    /// Turns a 200 token response into a [`TokenGrant`].
    ///
    /// - `expires_in` absent → 3600 s (Spotify's documented value); the expiry is
    ///   `clock.now() + expires_in`, taken when the answer arrived.
    /// - `scope` absent → the configured (requested) scopes, as RFC 6749 §5.1 says an omitted
    ///   scope means "identical to the scope requested".
    /// - `refresh_token` absent → `None` (keep the old one).
    fn grant_from_body(&self, body: &[u8]) -> Result<TokenGrant, SpotifyError> {
        let parsed: SpotifyTokenResponse = serde_json::from_slice(body).map_err(|e| {
            // serde's message may quote a value (a token); report only where parsing failed.
            SpotifyError::Protocol(format!(
                "token response is not a valid OAuth token response (line {}, column {}, {:?})",
                e.line(),
                e.column(),
                e.classify()
            ))
        })?;
        if *parsed.token_type() != CoreTokenType::Bearer {
            return Err(SpotifyError::Protocol("token response has a token_type other than Bearer".into()));
        }
        let access_token = AccessToken::new(parsed.access_token().secret().as_str())
            .map_err(|_| SpotifyError::Protocol("token response has an unusable access_token".into()))?;
        let refresh_token = match parsed.refresh_token() {
            Some(t) => Some(
                RefreshToken::new(t.secret().as_str())
                    .map_err(|_| SpotifyError::Protocol("token response has an unusable refresh_token".into()))?,
            ),
            None => None,
        };
        let expires_in = parsed.expires_in().unwrap_or(DEFAULT_EXPIRES_IN);
        let scopes = match parsed.scopes() {
            Some(scopes) => Scopes::parse(&scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
            None => self.config.scopes().clone(),
        };
        Ok(TokenGrant { access_token, access_expires_at: self.clock.now().plus(expires_in), refresh_token, scopes })
    }

    /// `GET {api_url}{path}` with the bearer token; transport errors mapped to `Unavailable`.
    async fn api_get(
        &self,
        endpoint: &'static str,
        path: &str,
        access_token: &AccessToken,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), SpotifyError> {
        let request = self
            .http
            .get(format!("{}{path}", self.config.api_url()))
            .bearer_auth(access_token.expose())
            .header(ACCEPT, "application/json");
        self.send(endpoint, request).await
    }

    /// `PUT <api><path>` with a JSON body (Spotify's player commands).
    async fn api_put(
        &self,
        endpoint: &'static str,
        path: &str,
        access_token: &AccessToken,
        body: &serde_json::Value,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), SpotifyError> {
        let request = self
            .http
            .put(format!("{}{path}", self.config.api_url()))
            .bearer_auth(access_token.expose())
            .header(ACCEPT, "application/json")
            .json(body);
        self.send(endpoint, request).await
    }

    /// A player command's answer: 2xx done, 404 the device is not (yet) there, else an error.
    async fn command(
        &self,
        endpoint: &'static str,
        path: &str,
        access_token: &AccessToken,
        body: &serde_json::Value,
    ) -> Result<PlayerAnswer, SpotifyError> {
        let (status, headers, answer) = self.api_put(endpoint, path, access_token, body).await?;
        match status {
            s if s.is_success() => Ok(PlayerAnswer::Done),
            StatusCode::NOT_FOUND => Ok(PlayerAnswer::DeviceNotFound),
            s => Err(mapping::api_error(endpoint, s, &headers, &answer)),
        }
    }

    /// Sends and reads the whole answer (bounded); every reqwest error becomes `Unavailable`
    /// with a description free of URL and secrets. Logs each call's status and latency.
    async fn send(
        &self,
        endpoint: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), SpotifyError> {
        let started = Instant::now();
        let fail = |e: reqwest::Error| {
            let err = mapping::transport_error(endpoint, &e);
            tracing::debug!(endpoint, latency_ms = started.elapsed().as_millis() as u64, error = %err, "spotify call failed");
            let failure = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect"
            } else {
                "other"
            };
            let status = e.status().map(|s| s.as_u16());
            self.observe(SpotifyCall {
                endpoint,
                status,
                failure: Some(failure),
                elapsed: started.elapsed(),
                rate_limit: None,
            });
            err
        };
        let mut response = request.send().await.map_err(fail)?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fail)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(SpotifyError::Protocol(format!("{endpoint} answered more than {MAX_BODY} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(
            endpoint,
            status = status.as_u16(),
            latency_ms = started.elapsed().as_millis() as u64,
            "spotify call"
        );
        if self.observer.is_some() {
            let reason = (status == StatusCode::TOO_MANY_REQUESTS).then(|| mapping::api_error_parts(&body).0).flatten();
            let rate_limit = (status == StatusCode::TOO_MANY_REQUESTS)
                .then(|| (reason.as_deref().and_then(observe::label_fit), mapping::retry_after(&headers)));
            self.observe(SpotifyCall {
                endpoint,
                status: Some(status.as_u16()),
                failure: None,
                elapsed: started.elapsed(),
                rate_limit,
            });
        }
        Ok((status, headers, body))
    }
}

/// Whether `v` is a verifier RFC 7636 allows (43–128 unreserved characters).
fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

#[derive(Debug, serde::Deserialize)]
struct MeBody {
    id: String,
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    product: Option<String>,
}

#[async_trait]
impl SpotifyAccounts for SpotifyClient {
    fn begin_authorization(&self, prompt: AccountPrompt) -> AuthorizationStart {
        let (state, csrf) = fresh_state();
        let (pkce_verifier, challenge) = fresh_pkce();
        let scope = self.config.scopes().to_string();
        let base = format!("{}/authorize", self.config.accounts_url());
        // The base URL was validated in the config, so parsing cannot fail; no panic either way.
        let authorize_url = match Url::parse(&base) {
            Ok(mut url) => {
                url.query_pairs_mut()
                    .append_pair("client_id", self.config.client_id())
                    .append_pair("response_type", "code")
                    .append_pair("redirect_uri", self.config.redirect_uri())
                    .append_pair("scope", &scope)
                    .append_pair("state", csrf.secret())
                    .append_pair("code_challenge_method", challenge.method().as_str())
                    .append_pair("code_challenge", challenge.as_str());
                if prompt == AccountPrompt::ChooseAccount {
                    url.query_pairs_mut().append_pair("show_dialog", "true");
                }
                url.to_string()
            }
            Err(_) => base,
        };
        AuthorizationStart { authorize_url, state, pkce_verifier }
    }

    async fn exchange_code(
        &self,
        code: &AuthorizationCode,
        verifier: &PkceVerifier,
    ) -> Result<TokenGrant, SpotifyError> {
        if !valid_verifier(verifier.expose()) {
            // Not a verifier we made: Spotify would refuse it and consume the code; the login
            // must start again.
            return Err(SpotifyError::ReauthRequired);
        }
        self.token_request(
            Grant::AuthorizationCode,
            &[
                ("code", code.expose()),
                ("redirect_uri", self.config.redirect_uri()),
                ("code_verifier", verifier.expose()),
            ],
        )
        .await
    }

    async fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenGrant, SpotifyError> {
        self.token_request(Grant::RefreshToken, &[("refresh_token", refresh_token.expose())]).await
    }
}

/// A fresh `state` of [`STATE_BYTES`] random bytes, from oauth2's [`CsrfToken`]. Base64url of
/// random bytes is always a valid [`OAuthState`]; the loop only avoids an `expect`.
fn fresh_state() -> (OAuthState, CsrfToken) {
    loop {
        let csrf = CsrfToken::new_random_len(STATE_BYTES);
        if let Ok(state) = OAuthState::new(csrf.secret().as_str()) {
            return (state, csrf);
        }
    }
}

/// A fresh S256 PKCE pair from oauth2's [`PkceCodeChallenge`] (verifier of [`VERIFIER_BYTES`]
/// random bytes); always a valid [`PkceVerifier`], the loop only avoids an `expect`.
fn fresh_pkce() -> (PkceVerifier, PkceCodeChallenge) {
    loop {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256_len(VERIFIER_BYTES);
        if let Ok(v) = PkceVerifier::new(verifier.secret().as_str()) {
            return (v, challenge);
        }
    }
}

#[async_trait]
impl SpotifyProfilePort for SpotifyClient {
    async fn current_profile(&self, access_token: &AccessToken) -> Result<SpotifyProfile, SpotifyError> {
        let endpoint = "GET /me";
        let (status, headers, body) = self.api_get(endpoint, "/me", access_token).await?;
        if !status.is_success() {
            return Err(mapping::api_error(endpoint, status, &headers, &body));
        }
        let me: MeBody = serde_json::from_slice(&body).map_err(|e| {
            SpotifyError::Protocol(format!(
                "{endpoint} answer is not a user object ({:?} at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        let spotify_id = SpotifyUserId::new(me.id).map_err(|e| SpotifyError::Protocol(format!("{endpoint}: {e}")))?;
        let account_id = match me.account_id {
            Some(a) => Some(SpotifyAccountKey::new(a).map_err(|e| SpotifyError::Protocol(format!("{endpoint}: {e}")))?),
            None => None,
        };
        // A missing, empty or unstorable display name is not worth refusing a login over.
        let display_name = me.display_name.and_then(|n| match DisplayName::new(n) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::debug!(endpoint, error = %e, "ignoring display name");
                None
            }
        });
        let product = me.product.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty());
        Ok(SpotifyProfile { spotify_id, account_id, display_name, product })
    }

    async fn probe_premium(&self, access_token: &AccessToken) -> Result<PremiumProbe, SpotifyError> {
        let (status, headers, body) = self.api_get("GET /me/player", "/me/player", access_token).await?;
        mapping::probe_answer(status, &headers, &body)
    }
}

/// `GET /v1/me/player/devices`.
#[derive(serde::Deserialize)]
struct DevicesBody {
    devices: Vec<DeviceBody>,
}

#[derive(serde::Deserialize)]
struct DeviceBody {
    id: Option<String>,
}

/// `?device_id=` (ids are `A-Za-z0-9-_`, validated by [`DeviceId`]; nothing to escape).
fn on_device(path: &str, device: &DeviceId) -> String {
    format!("{path}?device_id={}", device.as_str())
}

#[async_trait]
impl SpotifyPlayerPort for SpotifyClient {
    async fn devices(&self, access_token: &AccessToken) -> Result<Vec<DeviceId>, SpotifyError> {
        let endpoint = "GET /me/player/devices";
        let (status, headers, body) = self.api_get(endpoint, "/me/player/devices", access_token).await?;
        if !status.is_success() {
            return Err(mapping::api_error(endpoint, status, &headers, &body));
        }
        let list: DevicesBody = serde_json::from_slice(&body)
            .map_err(|_| SpotifyError::Protocol(format!("{endpoint} answer is not a device list")))?;
        // A device without an id (restricted ones may have none) cannot be targeted: skipped.
        Ok(list.devices.into_iter().filter_map(|d| d.id.and_then(|id| DeviceId::new(id).ok())).collect())
    }

    async fn play(
        &self,
        access_token: &AccessToken,
        device: &DeviceId,
        what: &GroupPlay,
    ) -> Result<PlayerAnswer, SpotifyError> {
        let mut body = match &what.target {
            PlayTarget::Items(uris) => {
                serde_json::json!({ "uris": uris.iter().map(|u| u.as_str()).collect::<Vec<_>>() })
            }
            PlayTarget::Context(uri) => serde_json::json!({ "context_uri": uri.as_str() }),
        };
        if what.position_ms > 0 {
            body["position_ms"] = what.position_ms.into();
        }
        self.command("PUT /me/player/play", &on_device("/me/player/play", device), access_token, &body).await
    }

    async fn pause(&self, access_token: &AccessToken, device: &DeviceId) -> Result<PlayerAnswer, SpotifyError> {
        let path = on_device("/me/player/pause", device);
        self.command("PUT /me/player/pause", &path, access_token, &serde_json::json!({})).await
    }

    async fn transfer(&self, access_token: &AccessToken, device: &DeviceId) -> Result<PlayerAnswer, SpotifyError> {
        let body = serde_json::json!({ "device_ids": [device.as_str()], "play": false });
        self.command("PUT /me/player", "/me/player", access_token, &body).await
    }
}

#[cfg(test)]
mod tests {
    use spotauth_domain::Timestamp;
    use spotauth_testkit::ManualClock;

    use super::*;

    fn client(secret: Option<&str>) -> SpotifyClient {
        let config =
            SpotifyConfig::new("my-client", secret.map(spotauth_domain::secret::Secret::new), "https://app.example/cb")
                .unwrap();
        SpotifyClient::new(config, Arc::new(ManualClock::at(Timestamp::from_unix_seconds(1_000)))).unwrap()
    }

    #[test]
    fn authorize_url_carries_everything() {
        let c = client(None);
        let start = c.begin_authorization(AccountPrompt::Silent);
        let url = Url::parse(&start.authorize_url).unwrap();
        assert_eq!(url.path(), "/authorize");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "my-client");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["redirect_uri"], "https://app.example/cb");
        assert_eq!(
            q["scope"],
            "streaming user-modify-playback-state user-read-email user-read-playback-state user-read-private"
        );
        assert_eq!(q["state"], start.state.expose());
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"].len(), 43);
        assert!(start.state.expose().len() >= 43, "state carries 256 bits");
        assert!(valid_verifier(start.pkce_verifier.expose()));
        assert!(!q.contains_key("show_dialog"));
        let again = c.begin_authorization(AccountPrompt::ChooseAccount);
        let chooser = Url::parse(&again.authorize_url).unwrap();
        assert!(chooser.query_pairs().any(|(k, v)| k == "show_dialog" && v == "true"));
        assert_ne!(again.state, start.state);
        assert_ne!(again.pkce_verifier, start.pkce_verifier);
    }

    #[test]
    fn grant_parsing() {
        let c = client(Some("s"));
        let g = c
            .grant_from_body(br#"{"access_token":"AT","token_type":"Bearer","expires_in":3600,"scope":"b a"}"#)
            .unwrap();
        assert_eq!(g.access_token.expose(), "AT");
        assert_eq!(g.access_expires_at, Timestamp::from_unix_seconds(4_600));
        assert_eq!(g.refresh_token, None);
        assert_eq!(g.scopes.to_string(), "a b");
        let g = c.grant_from_body(br#"{"access_token":"AT","token_type":"bearer","refresh_token":"RT"}"#).unwrap();
        assert_eq!(g.refresh_token.unwrap().expose(), "RT");
        assert_eq!(g.scopes, Scopes::parse(SpotifyConfig::DEFAULT_SCOPES));
        assert_eq!(g.access_expires_at, Timestamp::from_unix_seconds(4_600));
        let e =
            c.grant_from_body(br#"{"access_token":"SECRETTOKEN","token_type":"Bearer","expires_in":"x"}"#).unwrap_err();
        assert!(matches!(e, SpotifyError::Protocol(_)));
        assert!(!format!("{e:?}").contains("SECRETTOKEN"));
        let e = c.grant_from_body(br#"{"access_token":"AT","token_type":"mac"}"#).unwrap_err();
        assert!(matches!(e, SpotifyError::Protocol(_)));
        assert!(matches!(c.grant_from_body(b"not json"), Err(SpotifyError::Protocol(_))));
    }

    #[test]
    fn verifier_rules() {
        assert!(valid_verifier(&"a".repeat(43)));
        assert!(!valid_verifier(&"a".repeat(42)));
        assert!(!valid_verifier(&"a".repeat(129)));
        assert!(!valid_verifier(&format!("{}!", "a".repeat(43))));
    }
}
