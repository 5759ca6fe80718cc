//! Emulator configuration: the registered Spotify app (client id, secret, redirect URIs), its
//! quota mode, the refresh-token behaviour and the test users.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

/// Most users a Development Mode app may allow-list (FACTS.md: "limited to 5 allow-listed users").
pub const MAX_ALLOW_LIST: usize = 5;

/// Absolute lifetime of a refresh token, counted from the user's ORIGINAL authorization:
/// 182 days (FACTS.md: "Refresh tokens expire 6 months after the user's original authorization;
/// refreshing does not extend that"). The emulator uses a fixed 182 days rather than calendar
/// months so that tests can compute the boundary exactly.
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(182 * 24 * 3600);

/// Lifetime of an authorization code (10 minutes, emulator clock).
pub const AUTHORIZATION_CODE_LIFETIME: Duration = Duration::from_secs(600);

/// The quota mode of the emulated Spotify app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum AppMode {
    /// Extended Quota: `/v1/me` carries `product`, `email`, `country`, `explicit_content` and
    /// `followers` (subject to the granted scopes); every user may use the app.
    ExtendedQuota,
    /// Development Mode (since February 2026): `/v1/me` carries none of `product`, `email`,
    /// `country`, `explicit_content`, `followers`; users not on the allow-list can log in but get
    /// 403 from every Web API call.
    DevelopmentMode {
        /// Spotify user ids allowed to use the app (at most [`MAX_ALLOW_LIST`]).
        allow_list: Vec<String>,
    },
}

impl AppMode {
    /// Checks the allow-list size.
    ///
    /// # Errors
    /// [`ConfigError::AllowListTooLong`] when more than [`MAX_ALLOW_LIST`] users are listed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Self::ExtendedQuota => Ok(()),
            Self::DevelopmentMode { allow_list } if allow_list.len() > MAX_ALLOW_LIST => {
                Err(ConfigError::AllowListTooLong(allow_list.len()))
            }
            Self::DevelopmentMode { .. } => Ok(()),
        }
    }

    /// Whether `user_id` may call the Web API under this mode.
    #[must_use]
    pub fn allows(&self, user_id: &str) -> bool {
        match self {
            Self::ExtendedQuota => true,
            Self::DevelopmentMode { allow_list } => allow_list.iter().any(|u| u == user_id),
        }
    }
}

/// How `grant_type=refresh_token` behaves (FACTS.md: a refresh response may or may not carry a
/// new refresh token; PKCE refresh tokens have been single-use at times).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RefreshMode {
    /// Every refresh answers a NEW `refresh_token`. The used one STAYS valid (until its absolute
    /// expiry or a revocation), as Spotify tolerates clients that keep using an older token.
    #[default]
    Rotate,
    /// The refresh response has NO `refresh_token` field; the used one keeps working.
    Keep,
    /// Every refresh answers a new `refresh_token` and the used one is invalid at once: reusing
    /// it answers `invalid_grant`.
    SingleUse,
}

impl std::str::FromStr for RefreshMode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rotate" => Ok(Self::Rotate),
            "keep" => Ok(Self::Keep),
            "single-use" | "single_use" => Ok(Self::SingleUse),
            other => Err(ConfigError::UnknownRefreshMode(other.to_owned())),
        }
    }
}

/// A test user's subscription level (`product` in `/v1/me`). `open` means the same as `free`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    /// Spotify Premium: player endpoints work.
    Premium,
    /// Spotify Free: player endpoints answer 403 `PREMIUM_REQUIRED`.
    Free,
    /// Legacy "open" level, same as free.
    Open,
}

impl Product {
    /// The `product` string Spotify returns.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Premium => "premium",
            Self::Free => "free",
            Self::Open => "open",
        }
    }

    /// Whether this is Premium.
    #[must_use]
    pub fn is_premium(self) -> bool {
        self == Self::Premium
    }
}

/// A Spotify account that can "log in" on the emulated `/authorize` page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestUser {
    /// Spotify user id (`id` in `/v1/me`).
    pub id: String,
    /// Stable account id (`account_id` in `/v1/me`, May 2026); omitted from `/v1/me` when `None`.
    #[serde(default)]
    pub account_id: Option<String>,
    /// Display name.
    pub display_name: String,
    /// Subscription level.
    pub product: Product,
    /// E-mail address (only with `user-read-email`, Extended Quota only).
    pub email: String,
    /// ISO 3166-1 alpha-2 country (only with `user-read-private`, Extended Quota only).
    pub country: String,
}

impl TestUser {
    /// A user with derived defaults: `account_id` `"acct-<id>"`, display name = id,
    /// e-mail `<id>@example.test`, country `SE`.
    #[must_use]
    pub fn new(id: impl Into<String>, product: Product) -> Self {
        let id = id.into();
        Self {
            account_id: Some(format!("acct-{id}")),
            display_name: id.clone(),
            email: format!("{id}@example.test"),
            country: "SE".to_owned(),
            product,
            id,
        }
    }

    /// A Premium user with derived defaults (see [`TestUser::new`]).
    #[must_use]
    pub fn premium(id: impl Into<String>) -> Self {
        Self::new(id, Product::Premium)
    }

    /// A Free user with derived defaults (see [`TestUser::new`]).
    #[must_use]
    pub fn free(id: impl Into<String>) -> Self {
        Self::new(id, Product::Free)
    }

    /// Sets (or with `None` removes) the `account_id`.
    #[must_use]
    pub fn with_account_id(mut self, account_id: Option<String>) -> Self {
        self.account_id = account_id;
        self
    }

    /// Sets the display name.
    #[must_use]
    pub fn with_display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = name.into();
        self
    }

    /// Sets the e-mail address.
    #[must_use]
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = email.into();
        self
    }

    /// Sets the country.
    #[must_use]
    pub fn with_country(mut self, country: impl Into<String>) -> Self {
        self.country = country.into();
        self
    }
}

/// Configuration of one emulator instance (one registered Spotify app).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatorConfig {
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret. `None`: a public PKCE client only. `Some`: the client may
    /// authenticate with HTTP Basic, OR as a public PKCE client with `client_id` in the body.
    pub client_secret: Option<String>,
    /// Registered redirect URIs; `/authorize` and `/api/token` demand an EXACT match.
    pub redirect_uris: Vec<String>,
    /// Quota mode.
    pub app_mode: AppMode,
    /// Refresh-token behaviour (can be overridden per user at run time).
    pub refresh_mode: RefreshMode,
    /// Access token lifetime (`expires_in`), whole seconds.
    pub access_token_lifetime: Duration,
    /// Users present from the start (and after a reset).
    pub users: Vec<TestUser>,
    /// Time stands still (at the start, or the last reset) and moves only with
    /// `advance_clock`: for tests that count to the second.
    pub frozen_clock: bool,
}

impl Default for EmulatorConfig {
    /// Client `emulator-client-id` / `emulator-client-secret`, redirect URI
    /// `http://127.0.0.1:8080/api/auth/spotify/callback`, Extended Quota, [`RefreshMode::Rotate`],
    /// 3600 s access tokens, no users.
    fn default() -> Self {
        Self {
            client_id: "emulator-client-id".to_owned(),
            client_secret: Some("emulator-client-secret".to_owned()),
            redirect_uris: vec!["http://127.0.0.1:8080/api/auth/spotify/callback".to_owned()],
            app_mode: AppMode::ExtendedQuota,
            refresh_mode: RefreshMode::Rotate,
            access_token_lifetime: Duration::from_secs(3600),
            users: Vec::new(),
            frozen_clock: false,
        }
    }
}

impl EmulatorConfig {
    /// Default configuration with the given client id.
    #[must_use]
    pub fn new(client_id: impl Into<String>) -> Self {
        Self { client_id: client_id.into(), ..Self::default() }
    }

    /// Sets (or with `None` removes) the client secret.
    #[must_use]
    pub fn client_secret(mut self, secret: Option<String>) -> Self {
        self.client_secret = secret;
        self
    }

    /// Replaces the registered redirect URIs.
    #[must_use]
    pub fn redirect_uris<I, S>(mut self, uris: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.redirect_uris = uris.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the app mode.
    #[must_use]
    pub fn app_mode(mut self, mode: AppMode) -> Self {
        self.app_mode = mode;
        self
    }

    /// Sets the refresh mode.
    #[must_use]
    pub fn refresh_mode(mut self, mode: RefreshMode) -> Self {
        self.refresh_mode = mode;
        self
    }

    /// Freezes the clock (see [`EmulatorConfig::frozen_clock`]).
    #[must_use]
    pub fn frozen_clock(mut self) -> Self {
        self.frozen_clock = true;
        self
    }

    /// Sets the access token lifetime.
    #[must_use]
    pub fn access_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.access_token_lifetime = lifetime;
        self
    }

    /// Adds a test user present from the start.
    #[must_use]
    pub fn user(mut self, user: TestUser) -> Self {
        self.users.push(user);
        self
    }

    /// Checks the configuration as Spotify's dashboard would.
    ///
    /// # Errors
    /// An empty client id or secret, no or invalid redirect URIs (Spotify accepts only HTTPS or a
    /// loopback IP literal; `localhost` is refused), an allow-list longer than 5, a zero access
    /// token lifetime.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.client_id.trim().is_empty() {
            return Err(ConfigError::EmptyClientId);
        }
        if self.client_secret.as_deref().is_some_and(str::is_empty) {
            return Err(ConfigError::EmptyClientSecret);
        }
        if self.redirect_uris.is_empty() {
            return Err(ConfigError::NoRedirectUri);
        }
        for uri in &self.redirect_uris {
            validate_redirect_uri(uri)?;
        }
        self.app_mode.validate()?;
        if self.access_token_lifetime.as_secs() == 0 {
            return Err(ConfigError::ZeroTokenLifetime);
        }
        Ok(())
    }
}

/// Spotify's redirect URI rules (2025): HTTPS, or HTTP on a loopback IP literal; never
/// `localhost`; no fragment.
fn validate_redirect_uri(uri: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| ConfigError::InvalidRedirectUri(uri.to_owned(), why.to_owned());
    let parsed = Url::parse(uri).map_err(|e| bad(&e.to_string()))?;
    if parsed.fragment().is_some() {
        return Err(bad("a redirect URI must not have a fragment"));
    }
    match parsed.host() {
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => {
            Err(bad("`localhost` is not allowed, use 127.0.0.1 or [::1]"))
        }
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() && parsed.scheme() == "http" => Ok(()),
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() && parsed.scheme() == "http" => Ok(()),
        Some(_) if parsed.scheme() == "https" => Ok(()),
        _ => Err(bad("must be https, or http on a loopback IP literal")),
    }
}

/// An invalid emulator configuration or control request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The client id is empty.
    #[error("client id must not be empty")]
    EmptyClientId,
    /// The client secret is `Some("")`.
    #[error("client secret must not be empty (use None for a public client)")]
    EmptyClientSecret,
    /// No redirect URI registered.
    #[error("at least one redirect URI must be registered")]
    NoRedirectUri,
    /// A redirect URI Spotify would refuse.
    #[error("invalid redirect URI {0:?}: {1}")]
    InvalidRedirectUri(String, String),
    /// Development Mode allow-list longer than 5.
    #[error("a Development Mode allow-list holds at most 5 users, got {0}")]
    AllowListTooLong(usize),
    /// Access token lifetime of zero.
    #[error("access token lifetime must be at least one second")]
    ZeroTokenLifetime,
    /// Unknown refresh mode name.
    #[error("unknown refresh mode {0:?} (expected rotate, keep or single-use)")]
    UnknownRefreshMode(String),
    /// A control request named a user that does not exist.
    #[error("unknown test user {0:?}")]
    UnknownUser(String),
}
