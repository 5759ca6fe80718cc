//! The adapter's configuration, validated once at start-up.
//!
//! Every refusal names the setting it comes from (`SPOTIFY_CLIENT_ID`, `SPOTIFY_CLIENT_SECRET`,
//! `SPOTIFY_REDIRECT_URI`, `SPOTIFY_SCOPES`, `SPOTIFY_ACCOUNTS_URL`, `SPOTIFY_API_URL`,
//! `SPOTIFY_TIMEOUT_MS`) and never echoes the client secret.

use std::fmt;
use std::time::Duration;

use spotauth_domain::secret::Secret;
use spotauth_domain::token::Scopes;
use url::{Host, Url};

/// Setting name of the client id.
pub const SETTING_CLIENT_ID: &str = "SPOTIFY_CLIENT_ID";
/// Setting name of the client secret.
pub const SETTING_CLIENT_SECRET: &str = "SPOTIFY_CLIENT_SECRET";
/// Setting name of the redirect URI.
pub const SETTING_REDIRECT_URI: &str = "SPOTIFY_REDIRECT_URI";
/// Setting name of the scopes.
pub const SETTING_SCOPES: &str = "SPOTIFY_SCOPES";
/// Setting name of the accounts service base URL.
pub const SETTING_ACCOUNTS_URL: &str = "SPOTIFY_ACCOUNTS_URL";
/// Setting name of the Web API base URL.
pub const SETTING_API_URL: &str = "SPOTIFY_API_URL";
/// Setting name of the per-call timeout.
pub const SETTING_TIMEOUT: &str = "SPOTIFY_TIMEOUT_MS";

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A setting has a value Spotify (or this adapter) cannot work with.
    #[error("invalid {setting}: {reason}")]
    Invalid {
        /// The setting's name, e.g. `SPOTIFY_REDIRECT_URI`.
        setting: &'static str,
        /// What is wrong (never the secret itself).
        reason: String,
    },
    /// The HTTP client could not be built (TLS backend initialisation).
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
}

impl ConfigError {
    fn invalid(setting: &'static str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid { setting, reason: reason.into() }
    }

    /// The setting this error is about, if any.
    pub fn setting(&self) -> Option<&'static str> {
        match self {
            ConfigError::Invalid { setting, .. } => Some(setting),
            ConfigError::HttpClient(_) => None,
        }
    }
}

/// The Spotify app this service is registered as, and where Spotify lives.
///
/// Build it with [`SpotifyConfig::new`] and adjust it with the `with_*` methods; each one
/// validates its input, so a `SpotifyConfig` in hand is always usable.
#[derive(Clone, PartialEq, Eq)]
pub struct SpotifyConfig {
    client_id: String,
    client_secret: Option<Secret>,
    redirect_uri: String,
    scopes: Scopes,
    accounts_url: String,
    api_url: String,
    timeout: Duration,
    connect_timeout: Duration,
}

impl fmt::Debug for SpotifyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpotifyConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[redacted]"))
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes.to_string())
            .field("accounts_url", &self.accounts_url)
            .field("api_url", &self.api_url)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl SpotifyConfig {
    /// The scopes the Web Playback SDK needs (FACTS.md).
    pub const SDK_SCOPES: &'static str = "streaming user-read-email user-read-private";
    /// The default: the SDK's scopes, [`Self::PROBE_SCOPE`] (so Premium can be settled in
    /// Development Mode, where `/v1/me` carries no `product` since February 2026) and
    /// `user-modify-playback-state` (a page starts playback on its own player).
    pub const DEFAULT_SCOPES: &'static str =
        "streaming user-read-email user-read-private user-read-playback-state user-modify-playback-state";
    /// The scope `GET /v1/me/player` (the Premium probe) needs. Without it the probe can only
    /// answer `Inconclusive`; add it to the scopes when `product` is not available (Development
    /// Mode apps).
    pub const PROBE_SCOPE: &'static str = "user-read-playback-state";
    /// Spotify's accounts service.
    pub const DEFAULT_ACCOUNTS_URL: &'static str = "https://accounts.spotify.com";
    /// Spotify's Web API.
    pub const DEFAULT_API_URL: &'static str = "https://api.spotify.com/v1";
    /// Default total time limit of one call (connect, send, receive the whole body).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Longest connect timeout; it is also never longer than the total timeout.
    pub const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

    /// A configuration with the default scopes, Spotify's real URLs and a 10 s timeout.
    ///
    /// `client_secret: None` makes a public PKCE client (`client_id` in the token request body);
    /// `Some` makes a confidential client (HTTP Basic).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `SPOTIFY_CLIENT_ID` (empty, whitespace, control characters
    /// or `:`), `SPOTIFY_CLIENT_SECRET` (empty or whitespace) or `SPOTIFY_REDIRECT_URI` (not
    /// HTTPS nor `http` on a loopback IP literal, `localhost`, a fragment, unparseable).
    pub fn new(
        client_id: impl Into<String>,
        client_secret: Option<Secret>,
        redirect_uri: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let client_id = client_id.into();
        let client_id = client_id.trim().to_owned();
        if client_id.is_empty() {
            return Err(ConfigError::invalid(SETTING_CLIENT_ID, "must not be empty"));
        }
        if !client_id.bytes().all(|b| b.is_ascii_graphic()) || client_id.contains(':') {
            return Err(ConfigError::invalid(
                SETTING_CLIENT_ID,
                "must be printable ASCII without spaces or `:` (it is sent in HTTP Basic authentication)",
            ));
        }
        if let Some(secret) = &client_secret
            && (secret.expose().trim().is_empty() || !secret.expose().bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(ConfigError::invalid(
                SETTING_CLIENT_SECRET,
                "must be non-empty printable ASCII without spaces (leave it unset for a public PKCE client)",
            ));
        }
        let redirect_uri = validate_redirect_uri(redirect_uri.into().trim())?;
        let timeout = Self::DEFAULT_TIMEOUT;
        Ok(SpotifyConfig {
            client_id,
            client_secret,
            redirect_uri,
            scopes: Scopes::parse(Self::DEFAULT_SCOPES),
            accounts_url: Self::DEFAULT_ACCOUNTS_URL.to_owned(),
            api_url: Self::DEFAULT_API_URL.to_owned(),
            timeout,
            connect_timeout: timeout.min(Self::MAX_CONNECT_TIMEOUT),
        })
    }

    /// Replaces the requested scopes (space separated).
    ///
    /// # Errors
    /// `SPOTIFY_SCOPES` when no scope is left.
    pub fn with_scopes(mut self, scopes: &str) -> Result<Self, ConfigError> {
        let parsed = Scopes::parse(scopes);
        if parsed.iter().next().is_none() {
            return Err(ConfigError::invalid(SETTING_SCOPES, "must name at least one scope"));
        }
        self.scopes = parsed;
        Ok(self)
    }

    /// Replaces the accounts service base URL (`/authorize` and `/api/token` are appended).
    ///
    /// # Errors
    /// `SPOTIFY_ACCOUNTS_URL` when it is not an absolute `http(s)` URL without credentials,
    /// query or fragment.
    pub fn with_accounts_url(mut self, url: &str) -> Result<Self, ConfigError> {
        self.accounts_url = validate_base_url(SETTING_ACCOUNTS_URL, url)?;
        Ok(self)
    }

    /// Replaces the Web API base URL (`/me` and `/me/player` are appended).
    ///
    /// # Errors
    /// `SPOTIFY_API_URL`, as for [`Self::with_accounts_url`].
    pub fn with_api_url(mut self, url: &str) -> Result<Self, ConfigError> {
        self.api_url = validate_base_url(SETTING_API_URL, url)?;
        Ok(self)
    }

    /// Sets the total time limit of every call; the connect timeout is the smaller of this and
    /// [`Self::MAX_CONNECT_TIMEOUT`].
    ///
    /// # Errors
    /// `SPOTIFY_TIMEOUT_MS` when zero or longer than 5 minutes.
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        if timeout.is_zero() || timeout > Duration::from_secs(300) {
            return Err(ConfigError::invalid(SETTING_TIMEOUT, "must be between 1 ms and 5 minutes"));
        }
        self.timeout = timeout;
        self.connect_timeout = timeout.min(Self::MAX_CONNECT_TIMEOUT);
        Ok(self)
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The client secret; `None` for a public PKCE client.
    pub fn client_secret(&self) -> Option<&Secret> {
        self.client_secret.as_ref()
    }

    /// Whether this is a public PKCE client (no secret).
    pub fn is_public_client(&self) -> bool {
        self.client_secret.is_none()
    }

    /// The redirect URI, exactly as configured (Spotify compares it byte for byte).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The requested scopes.
    pub fn scopes(&self) -> &Scopes {
        &self.scopes
    }

    /// The accounts service base URL, without a trailing slash.
    pub fn accounts_url(&self) -> &str {
        &self.accounts_url
    }

    /// The Web API base URL, without a trailing slash.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// Total time limit of one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Connect time limit of one call.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
}

/// Spotify's redirect URI rules (2025): HTTPS, or `http` on a loopback IP literal
/// (`127.0.0.1`, `[::1]`); never `localhost`; no fragment. Returns the URI as given.
fn validate_redirect_uri(uri: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| ConfigError::invalid(SETTING_REDIRECT_URI, why);
    if uri.is_empty() {
        return Err(bad("must not be empty"));
    }
    let parsed = Url::parse(uri).map_err(|e| bad(&format!("not an absolute URL ({e})")))?;
    if parsed.fragment().is_some() {
        return Err(bad("must not have a fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    match (parsed.scheme(), parsed.host()) {
        (_, Some(Host::Domain(d))) if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") => {
            Err(bad("`localhost` is refused by Spotify; use http://127.0.0.1:PORT/... or http://[::1]:PORT/..."))
        }
        ("http", Some(Host::Ipv4(ip))) if ip.is_loopback() => Ok(uri.to_owned()),
        ("http", Some(Host::Ipv6(ip))) if ip.is_loopback() => Ok(uri.to_owned()),
        ("https", Some(_)) => Ok(uri.to_owned()),
        _ => Err(bad("must be https, or http on a loopback IP literal (127.0.0.1 or [::1])")),
    }
}

/// An absolute `http(s)` base URL without credentials, query or fragment; returned without a
/// trailing slash.
fn validate_base_url(setting: &'static str, url: &str) -> Result<String, ConfigError> {
    let url = url.trim();
    let parsed = Url::parse(url).map_err(|e| ConfigError::invalid(setting, format!("not an absolute URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ConfigError::invalid(setting, "must be an http or https URL"));
    }
    if parsed.host().is_none() {
        return Err(ConfigError::invalid(setting, "must name a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ConfigError::invalid(setting, "must not carry credentials"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(ConfigError::invalid(setting, "must not have a query or fragment"));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(redirect: &str) -> Result<SpotifyConfig, ConfigError> {
        SpotifyConfig::new("client", None, redirect)
    }

    #[test]
    fn redirect_rules() {
        assert!(cfg("https://example.com/cb").is_ok());
        assert!(cfg("http://127.0.0.1:8080/cb").is_ok());
        assert!(cfg("http://[::1]:8080/cb").is_ok());
        for bad in ["http://localhost:8080/cb", "https://localhost/cb", "http://example.com/cb", "ftp://127.0.0.1/cb"] {
            let err = cfg(bad).unwrap_err();
            assert_eq!(err.setting(), Some(SETTING_REDIRECT_URI), "{bad}");
        }
        assert!(cfg("https://example.com/cb#frag").is_err());
        assert!(cfg("not a url").unwrap_err().to_string().contains("SPOTIFY_REDIRECT_URI"));
    }

    #[test]
    fn base_urls_are_normalised_and_checked() {
        let c = cfg("https://example.com/cb").unwrap().with_api_url("http://127.0.0.1:9/v1/").unwrap();
        assert_eq!(c.api_url(), "http://127.0.0.1:9/v1");
        let c = c.with_accounts_url("http://127.0.0.1:9").unwrap();
        assert_eq!(c.accounts_url(), "http://127.0.0.1:9");
        let e = cfg("https://example.com/cb").unwrap().with_accounts_url("nope").unwrap_err();
        assert_eq!(e.setting(), Some(SETTING_ACCOUNTS_URL));
        let e = cfg("https://example.com/cb").unwrap().with_api_url("https://x/v1?a=b").unwrap_err();
        assert_eq!(e.setting(), Some(SETTING_API_URL));
    }

    #[test]
    fn secret_never_in_debug_or_errors() {
        let c = SpotifyConfig::new("client", Some(Secret::new("s3cr3t-value")), "https://example.com/cb").unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let e = SpotifyConfig::new("client", Some(Secret::new(" ")), "https://example.com/cb").unwrap_err();
        assert_eq!(e.setting(), Some(SETTING_CLIENT_SECRET));
        assert_eq!(
            SpotifyConfig::new(" ", None, "https://example.com/cb").unwrap_err().setting(),
            Some(SETTING_CLIENT_ID)
        );
    }

    #[test]
    fn timeout_bounds() {
        let c = cfg("https://example.com/cb").unwrap();
        assert_eq!(c.timeout(), Duration::from_secs(10));
        assert_eq!(c.connect_timeout(), Duration::from_secs(5));
        let c = c.with_timeout(Duration::from_millis(300)).unwrap();
        assert_eq!(c.connect_timeout(), Duration::from_millis(300));
        let err = c.with_timeout(Duration::ZERO).unwrap_err();
        assert!(err.to_string().contains("SPOTIFY_TIMEOUT_MS"), "{err}");
    }
}
