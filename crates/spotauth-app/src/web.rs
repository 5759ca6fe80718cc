//! HTTP plumbing shared by the handlers: state, cookies, the session token, JSON shapes.

use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::header;
use chrono::{DateTime, SecondsFormat};
use serde::Serialize;
use spotauth_domain::ports::RepoError;
use spotauth_domain::secret::{OAuthState, PkceVerifier};
use spotauth_domain::service::{AuthService, DynPorts};
use spotauth_domain::session::SessionMeta;
use spotauth_domain::time::Timestamp;
use spotauth_domain::token::AccessGrant;
use spotauth_domain::user::User;
use spotauth_mysql::MysqlStore;
use spotauth_sqlite::SqliteStore;
use url::Url;

/// The store behind the repositories, for readiness checks.
#[derive(Debug, Clone)]
pub enum StoreHandle {
    /// MySQL / PlanetScale.
    Mysql(MysqlStore),
    /// The embedded SQLite file (one instance).
    Sqlite(SqliteStore),
}

impl StoreHandle {
    /// `Ok` when the database answers.
    pub async fn ping(&self) -> Result<(), RepoError> {
        match self {
            StoreHandle::Mysql(s) => s.ping().await,
            StoreHandle::Sqlite(s) => s.ping().await,
        }
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The use cases.
    pub service: Arc<AuthService<DynPorts>>,
    /// Cookie names and attributes.
    pub cookies: Cookies,
    /// Where the browser goes after login.
    pub frontend_url: Url,
    /// The store, for `/readyz`.
    pub store: StoreHandle,
    /// Settings the Spotify client still needs (development without `SPOTIFY_CLIENT_ID`); while
    /// not empty, login and callback answer 503 `spotify_not_configured`.
    pub spotify_missing: Vec<&'static str>,
    /// Token-refresh metrics, for `/metrics`.
    pub refresh_metrics: Arc<spotauth_refresh::RefreshMetrics>,
}

/// Cookie policy: `__Host-` prefix and `Secure` unless turned off for plain-HTTP development.
#[derive(Debug, Clone, Copy)]
pub struct Cookies {
    secure: bool,
}

impl Cookies {
    /// The policy.
    pub fn new(secure: bool) -> Self {
        Cookies { secure }
    }

    /// The session cookie's name.
    pub fn session_name(&self) -> &'static str {
        if self.secure { "__Host-spotauth_session" } else { "spotauth_session" }
    }

    /// The login-flow cookie's name.
    pub fn login_name(&self) -> &'static str {
        if self.secure { "__Host-spotauth_login" } else { "spotauth_login" }
    }

    fn build(&self, name: &'static str, value: String, max_age: CookieDuration) -> String {
        Cookie::build(name, value)
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .path("/")
            .max_age(max_age)
            .finish()
            .to_string()
    }

    /// `Set-Cookie` for a session token valid until `expires_at`.
    pub fn session(&self, token: &str, now: Timestamp, expires_at: Timestamp) -> String {
        let secs = expires_at.since(now).as_secs();
        self.build(self.session_name(), token.to_owned(), CookieDuration::seconds(i64::try_from(secs).unwrap_or(0)))
    }

    /// `Set-Cookie` that deletes the session cookie.
    pub fn clear_session(&self) -> String {
        self.build(self.session_name(), String::new(), CookieDuration::ZERO)
    }

    /// `Set-Cookie` binding a login attempt (state and PKCE verifier) to this browser.
    pub fn login(&self, state: &OAuthState, verifier: &PkceVerifier, now: Timestamp, expires_at: Timestamp) -> String {
        let secs = i64::try_from(expires_at.since(now).as_secs()).unwrap_or(0);
        self.build(
            self.login_name(),
            format!("{}.{}", state.expose(), verifier.expose()),
            CookieDuration::seconds(secs),
        )
    }

    /// `Set-Cookie` that deletes the login cookie.
    pub fn clear_login(&self) -> String {
        self.build(self.login_name(), String::new(), CookieDuration::ZERO)
    }

    /// The login attempt bound to this browser, if its cookie is present and well-formed.
    pub fn read_login(&self, req: &HttpRequest) -> Option<(OAuthState, PkceVerifier)> {
        let cookie = req.cookie(self.login_name())?;
        let (state, verifier) = cookie.value().split_once('.')?;
        Some((OAuthState::new(state).ok()?, PkceVerifier::new(verifier).ok()?))
    }
}

/// How the caller presented its session token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer`.
    Bearer,
    /// The session cookie.
    Cookie,
}

/// The session token from `Authorization: Bearer` or the session cookie.
pub fn session_token(req: &HttpRequest, cookies: &Cookies) -> Option<(String, TokenSource)> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| (token.trim().to_owned(), TokenSource::Bearer));
    }
    req.cookie(cookies.session_name())
        .map(|c| (c.value().to_owned(), TokenSource::Cookie))
        .filter(|(t, _)| !t.is_empty())
}

/// Where a request comes from, for the session row.
pub fn session_meta(req: &HttpRequest) -> SessionMeta {
    let ua = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    SessionMeta::new(ua, req.peer_addr().map(|a| a.ip().to_string()))
}

/// RFC 3339 UTC with milliseconds.
pub fn iso(t: Timestamp) -> String {
    DateTime::from_timestamp_millis(t.unix_millis()).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A user's public fields. Never a token.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDto {
    id: String,
    spotify_id: String,
    display_name: Option<String>,
    is_active: bool,
    is_premium: Option<bool>,
    premium_source: &'static str,
    last_active: String,
    created_at: String,
    spotify_connected: bool,
    reauth_required: bool,
}

impl From<&User> for UserDto {
    fn from(u: &User) -> Self {
        UserDto {
            id: u.id.to_string(),
            spotify_id: u.spotify_id.to_string(),
            display_name: u.display_name.as_ref().map(ToString::to_string),
            is_active: u.is_active,
            is_premium: u.subscription.status.as_option(),
            premium_source: u.subscription.source.as_str(),
            last_active: iso(u.last_active),
            created_at: iso(u.created_at),
            spotify_connected: u.has_tokens,
            reauth_required: u.reauth_required,
        }
    }
}

/// A user in the active list: fewer fields.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveUserDto {
    id: String,
    spotify_id: String,
    display_name: Option<String>,
    is_premium: Option<bool>,
    last_active: String,
}

impl From<&User> for ActiveUserDto {
    fn from(u: &User) -> Self {
        ActiveUserDto {
            id: u.id.to_string(),
            spotify_id: u.spotify_id.to_string(),
            display_name: u.display_name.as_ref().map(ToString::to_string),
            is_premium: u.subscription.status.as_option(),
            last_active: iso(u.last_active),
        }
    }
}

/// A Spotify access token for the Web Playback SDK.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessTokenDto {
    access_token: String,
    expires_at: String,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_token: Option<String>,
}

impl AccessTokenDto {
    /// From a grant; `session_token` only for Bearer clients after a rotation.
    pub fn new(grant: &AccessGrant, now: Timestamp, session_token: Option<String>) -> Self {
        AccessTokenDto {
            access_token: grant.access_token.expose().to_owned(),
            expires_at: iso(grant.expires_at),
            expires_in: grant.expires_at.since(now).as_secs(),
            session_token,
        }
    }
}
