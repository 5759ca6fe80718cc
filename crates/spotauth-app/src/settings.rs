//! Configuration: defaults < optional file (`--config PATH` or `CONFIG_FILE`) < environment.
//!
//! Every setting has one name, used as the environment variable and (lowercased) as the file
//! key: `DATABASE_URL` / `database_url`. A missing or malformed setting is one line naming it.
//!
//! `APP_ENV` (`development`, the default, or `production`) decides what a missing setting means.
//! In development everything has a zero-configuration default: SQLite under `DATA_DIR`, keys
//! generated once into `DATA_DIR/keys.env` (mode 0600, see [`Settings::resolve_keys`]), the
//! service's own origin as `FRONTEND_URL` and in `SPOTIFY_REDIRECT_URI`, plain-HTTP cookies, and
//! without `SPOTIFY_CLIENT_ID` the login endpoints answer 503 `spotify_not_configured` while the
//! rest of the service runs. In production the keys, the Spotify client and `FRONTEND_URL` are
//! required and cookies are `Secure`; the database may still be SQLite (one instance).

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File};
use serde::Deserialize;
use spotauth_domain::login::LoginLimits;
use spotauth_domain::room::RoomPolicy;
use spotauth_domain::secret::Secret;
use spotauth_domain::service::ServicePolicy;
use spotauth_domain::session::SessionPolicy;
use spotauth_domain::user::SpotifyUserId;
use spotauth_mysql::DatabaseUrl;
use spotauth_runtime::proactive::ProactiveSettings;
use spotauth_spotify::SpotifyConfig;
use url::Url;

use crate::rate_limit::RateLimits;
use crate::web::{TrustedOrigins, TrustedProxies};

/// Why the settings were refused: one line that names the setting, never its secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

fn missing_in_production(name: &str) -> SettingsError {
    SettingsError(format!("{name} is required but not set (APP_ENV=production)"))
}

/// The default `DATA_DIR`, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// The SQLite file name inside `DATA_DIR` (unless `SQLITE_PATH` says otherwise).
pub const SQLITE_FILE: &str = "spotauth.db";
/// The development key file inside `DATA_DIR`.
pub const KEY_FILE: &str = "keys.env";
/// The key id of a generated token-encryption key.
const GENERATED_KID: &str = "dev1";
/// `SPOTIFY_MAX_BACKOFF_SECS` by default: an hour, the longest Spotify's rate limiter is
/// usually reported to mean.
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// The largest `SPOTIFY_MAX_BACKOFF_SECS`: a day, the longest `Retry-After` Spotify has sent.
const MAX_BACKOFF_SECS: u64 = 86_400;
/// The longest rotation grace window accepted.
const MAX_ROTATION_GRACE: Duration = Duration::from_secs(60);

/// `APP_ENV`: how missing settings are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    /// Zero-configuration defaults (the default).
    Development,
    /// Keys, the Spotify client and `FRONTEND_URL` are required; cookies are `Secure`.
    Production,
}

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum Database {
    /// MySQL / PlanetScale (`DATABASE_URL` set).
    Mysql(DatabaseUrl),
    /// The embedded SQLite file (`DATABASE_URL` unset): `SQLITE_PATH`, else
    /// `DATA_DIR/spotauth.db`.
    Sqlite(PathBuf),
}

/// The raw settings as strings, before validation. Field names are the lowercased setting names.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RawSettings {
    app_env: Option<String>,
    data_dir: Option<String>,
    sqlite_path: Option<String>,
    database_url: Option<String>,
    bind_addr: Option<String>,
    spotify_client_id: Option<String>,
    spotify_client_secret: Option<String>,
    spotify_redirect_uri: Option<String>,
    spotify_accounts_url: Option<String>,
    spotify_api_url: Option<String>,
    spotify_scopes: Option<String>,
    spotify_timeout_ms: Option<String>,
    spotify_max_backoff_secs: Option<String>,
    frontend_url: Option<String>,
    token_encryption_keys: Option<String>,
    session_signing_key: Option<String>,
    cookie_secure: Option<String>,
    require_premium_for_login: Option<String>,
    session_idle_timeout_secs: Option<String>,
    session_absolute_timeout_secs: Option<String>,
    session_token_ttl_secs: Option<String>,
    subscription_ttl_secs: Option<String>,
    access_token_min_validity_secs: Option<String>,
    db_pool_size: Option<String>,
    proactive_refresh: Option<String>,
    proactive_refresh_interval_secs: Option<String>,
    proactive_refresh_lookahead_secs: Option<String>,
    proactive_refresh_concurrency: Option<String>,
    session_rotation_grace_secs: Option<String>,
    ended_session_retention_secs: Option<String>,
    lapsed_login_retention_secs: Option<String>,
    token_retention_secs: Option<String>,
    housekeeping_interval_secs: Option<String>,
    login_pending_per_client: Option<String>,
    login_pending_total: Option<String>,
    rate_limits: Option<String>,
    rate_limit_per_client_burst: Option<String>,
    rate_limit_per_client_per_minute: Option<String>,
    rate_limit_global_burst: Option<String>,
    rate_limit_global_per_second: Option<String>,
    trusted_proxies: Option<String>,
    trusted_proxy_header: Option<String>,
    cors_allowed_origins: Option<String>,
    spotify_sdk_url: Option<String>,
    room_page: Option<String>,
    room_hosts: Option<String>,
    room_player_stale_secs: Option<String>,
    room_concurrency: Option<String>,
    room_events_poll_ms: Option<String>,
    session_cache_staleness_ms: Option<String>,
    session_cache_capacity: Option<String>,
    metrics_addr: Option<String>,
    dev_allow_remote: Option<String>,
}

/// The proactive refresher's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProactiveConfig {
    /// `PROACTIVE_REFRESH` (default true).
    pub enabled: bool,
    /// Interval, lookahead, concurrency.
    pub settings: ProactiveSettings,
}

/// The validated settings [`crate::Application::build`] wires from.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `APP_ENV`.
    pub env: AppEnv,
    /// `DATA_DIR`: the SQLite file and the development key file live here.
    pub data_dir: PathBuf,
    /// MySQL when `DATABASE_URL` is set, else SQLite.
    pub database: Database,
    /// Largest number of pooled database connections (SQLite: readers, at most 8).
    pub db_pool_size: usize,
    /// Where to listen.
    pub bind_addr: SocketAddr,
    /// The Spotify client.
    pub spotify: SpotifyConfig,
    /// Settings the Spotify client still needs (development only; empty in production). While
    /// not empty, login answers 503 `spotify_not_configured`.
    pub spotify_missing: Vec<&'static str>,
    /// Cap on a 429's `Retry-After` (`SPOTIFY_MAX_BACKOFF_SECS`): no call to Spotify for at most
    /// this long, whatever Spotify asks.
    pub spotify_max_backoff: Duration,
    /// Where the browser goes after login (`?error=` on failure).
    pub frontend_url: Url,
    /// `TOKEN_ENCRYPTION_KEYS` when configured; validated when the app is built.
    pub token_encryption_keys: Option<Secret>,
    /// `SESSION_SIGNING_KEY` when configured; validated when the app is built.
    pub session_signing_key: Option<Secret>,
    /// Cookies get `Secure` and the `__Host-` prefix (off by default only in development).
    pub cookie_secure: bool,
    /// Use-case rules.
    pub policy: ServicePolicy,
    /// The background refresher.
    pub proactive: ProactiveConfig,
    /// How often the data lifecycle runs (`HOUSEKEEPING_INTERVAL_SECS`).
    pub housekeeping_interval: Duration,
    /// Rate limits on login, callback and refresh.
    pub rate_limits: RateLimits,
    /// Proxies whose `Forwarded` / `X-Forwarded-For` name the client (none by default).
    pub trusted_proxies: TrustedProxies,
    /// Origins whose pages may call the API with the session cookie (CORS with credentials)
    /// and make cookie-authenticated changes (the CSRF guard): `FRONTEND_URL`'s and
    /// `CORS_ALLOWED_ORIGINS`.
    pub origins: TrustedOrigins,
    /// The Web Playback SDK script pages load (`SPOTIFY_SDK_URL`; Spotify's by default).
    pub sdk_url: Url,
    /// Serve the listening-room page at `/` (`ROOM_PAGE`; on in development, off in
    /// production unless enabled).
    pub room_page: bool,
    /// Group playback rules (`ROOM_HOSTS`, `ROOM_PLAYER_STALE_SECS`, `ROOM_CONCURRENCY`).
    pub room: RoomPolicy,
    /// How often this instance reads the room's shared version (`ROOM_EVENTS_POLL_MS`).
    pub room_events_poll: Duration,
    /// Where `/metrics` is served instead of the public address (`METRICS_ADDR`).
    pub metrics_addr: Option<SocketAddr>,
    /// The in-memory session cache (`SESSION_CACHE_STALENESS_MS`, `SESSION_CACHE_CAPACITY`).
    pub cache: CacheConfig,
}

/// The session cache's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Longest a change made on another instance may go unseen here; zero is strict mode
    /// (no cache: every request reads the database).
    pub staleness: Duration,
    /// Most sessions kept in memory.
    pub capacity: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { staleness: Duration::from_secs(1), capacity: 100_000 }
    }
}

/// Spotify's Web Playback SDK script.
pub const DEFAULT_SDK_URL: &str = "https://sdk.scdn.co/spotify-player.js";

/// The keys the app runs with, after [`Settings::resolve_keys`].
#[derive(Debug, Clone)]
pub struct Keys {
    /// `TOKEN_ENCRYPTION_KEYS`.
    pub token_encryption_keys: Secret,
    /// `SESSION_SIGNING_KEY`.
    pub session_signing_key: Secret,
}

/// `http://127.0.0.1:PORT` (or `[::1]`) for a bind address: the origin a browser on this
/// machine uses, and the only plain-HTTP redirect URI Spotify accepts (a loopback literal).
fn own_origin(bind: SocketAddr) -> String {
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => IpAddr::V4(ip),
        IpAddr::V6(ip) if ip.is_loopback() => IpAddr::V6(ip),
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    format!("http://{}", SocketAddr::new(ip, bind.port()))
}

impl Settings {
    /// Loads defaults < file < environment. `file` (or `CONFIG_FILE`) is a TOML file whose keys
    /// are the lowercased setting names.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        let file = file.map(Path::to_path_buf).or_else(|| std::env::var_os("CONFIG_FILE").map(Into::into));
        let mut builder = Config::builder();
        if let Some(path) = &file {
            if !path.is_file() {
                return Err(SettingsError(format!("CONFIG_FILE: {} does not exist", path.display())));
            }
            check_toml(path)?;
            builder = builder.add_source(File::from(path.as_path()).required(true));
        }
        let config = builder.add_source(Environment::default()).build().map_err(|e| config_error("CONFIG_FILE", &e))?;
        let raw: RawSettings = config.try_deserialize().map_err(|e| config_error("configuration", &e))?;
        Self::from_raw(raw)
    }

    /// Validates settings given as `NAME → value` pairs (environment-variable names), as tests
    /// and embedding services do.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, SettingsError> {
        let map: HashMap<String, String> =
            pairs.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned())).collect();
        let value = serde_json::to_value(map).map_err(|e| SettingsError(format!("configuration: {e}")))?;
        let raw: RawSettings =
            serde_json::from_value(value).map_err(|e| SettingsError(format!("configuration: {e}")))?;
        Self::from_raw(raw)
    }

    /// Validates raw settings. Does no IO: development keys are read or generated by
    /// [`Settings::resolve_keys`] when the app is built.
    pub fn from_raw(raw: RawSettings) -> Result<Self, SettingsError> {
        let env = match nonempty(raw.app_env).map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("development") => AppEnv::Development,
            Some("production") => AppEnv::Production,
            Some(_) => return Err(SettingsError("APP_ENV must be `development` or `production`".into())),
        };
        let production = env == AppEnv::Production;
        // Required in production; `None` in development (the caller supplies the default).
        let in_production = |v: Option<String>, name: &str| -> Result<Option<String>, SettingsError> {
            match nonempty(v) {
                Some(v) => Ok(Some(v)),
                None if production => Err(missing_in_production(name)),
                None => Ok(None),
            }
        };

        let data_dir = PathBuf::from(nonempty(raw.data_dir).unwrap_or_else(|| DEFAULT_DATA_DIR.to_owned()));
        let database = match (nonempty(raw.database_url), nonempty(raw.sqlite_path)) {
            (Some(_), Some(_)) => {
                return Err(SettingsError(
                    "SQLITE_PATH is set together with DATABASE_URL; set one (DATABASE_URL selects MySQL)".into(),
                ));
            }
            (Some(url), None) => Database::Mysql(DatabaseUrl::parse(&url).map_err(|e| SettingsError(e.to_string()))?),
            (None, Some(path)) => Database::Sqlite(PathBuf::from(path)),
            (None, None) => Database::Sqlite(data_dir.join(SQLITE_FILE)),
        };
        let bind_addr: SocketAddr = raw
            .bind_addr
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or("127.0.0.1:8080")
            .parse()
            .map_err(|_| SettingsError("BIND_ADDR must be IP:PORT, e.g. 127.0.0.1:8080".into()))?;
        if !production && !bind_addr.ip().is_loopback() && !flag(raw.dev_allow_remote, "DEV_ALLOW_REMOTE", false)? {
            return Err(SettingsError(format!(
                "BIND_ADDR {bind_addr} is reachable from other machines but APP_ENV=development: cookies are not Secure and the keys sit in DATA_DIR; set APP_ENV=production, or DEV_ALLOW_REMOTE=true to insist"
            )));
        }
        let origin = own_origin(bind_addr);

        let mut spotify_missing = Vec::new();
        let client_id = in_production(raw.spotify_client_id, "SPOTIFY_CLIENT_ID")?.unwrap_or_else(|| {
            spotify_missing.push("SPOTIFY_CLIENT_ID");
            "spotify-not-configured".to_owned()
        });
        let secret = raw.spotify_client_secret.filter(|s| !s.is_empty()).map(Secret::new);
        let redirect = in_production(raw.spotify_redirect_uri, "SPOTIFY_REDIRECT_URI")?
            .unwrap_or_else(|| format!("{origin}/api/auth/spotify/callback"));
        let err = |e: spotauth_spotify::ConfigError| SettingsError(e.to_string());
        let mut spotify = SpotifyConfig::new(client_id, secret, &redirect).map_err(err)?;
        if let Some(u) = raw.spotify_accounts_url.filter(|s| !s.is_empty()) {
            spotify = spotify.with_accounts_url(&u).map_err(err)?;
        }
        if let Some(u) = raw.spotify_api_url.filter(|s| !s.is_empty()) {
            spotify = spotify.with_api_url(&u).map_err(err)?;
        }
        if let Some(s) = raw.spotify_scopes.filter(|s| !s.is_empty()) {
            spotify = spotify.with_scopes(&s).map_err(err)?;
        }
        if let Some(ms) = raw.spotify_timeout_ms {
            spotify = spotify.with_timeout(Duration::from_millis(number(&ms, "SPOTIFY_TIMEOUT_MS")?)).map_err(err)?;
        }

        let frontend_url = in_production(raw.frontend_url, "FRONTEND_URL")?.unwrap_or_else(|| format!("{origin}/"));
        let frontend_url = Url::parse(&frontend_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| SettingsError("FRONTEND_URL must be an absolute http(s) URL".into()))?;

        let token_encryption_keys = in_production(raw.token_encryption_keys, "TOKEN_ENCRYPTION_KEYS")?.map(Secret::new);
        let session_signing_key = in_production(raw.session_signing_key, "SESSION_SIGNING_KEY")?.map(Secret::new);

        let cookie_secure = flag(raw.cookie_secure, "COOKIE_SECURE", production)?;
        if production && !cookie_secure {
            return Err(SettingsError("COOKIE_SECURE cannot be false with APP_ENV=production".into()));
        }

        let defaults = ServicePolicy::default();
        let secs = |v: Option<String>, name: &str, default: Duration| -> Result<Duration, SettingsError> {
            match v {
                Some(v) => Ok(Duration::from_secs(number(&v, name)?)),
                None => Ok(default),
            }
        };
        let session = SessionPolicy {
            idle_timeout: secs(
                raw.session_idle_timeout_secs,
                "SESSION_IDLE_TIMEOUT_SECS",
                defaults.session.idle_timeout,
            )?,
            absolute_timeout: secs(
                raw.session_absolute_timeout_secs,
                "SESSION_ABSOLUTE_TIMEOUT_SECS",
                defaults.session.absolute_timeout,
            )?,
            token_ttl: secs(raw.session_token_ttl_secs, "SESSION_TOKEN_TTL_SECS", defaults.session.token_ttl)?,
            touch_interval: defaults.session.touch_interval,
            rotation_grace: secs(
                raw.session_rotation_grace_secs,
                "SESSION_ROTATION_GRACE_SECS",
                defaults.session.rotation_grace,
            )?,
        };
        if session.rotation_grace > MAX_ROTATION_GRACE {
            return Err(SettingsError(format!(
                "SESSION_ROTATION_GRACE_SECS must be at most {}: a longer window lets a stolen rotated-out token live longer",
                MAX_ROTATION_GRACE.as_secs()
            )));
        }
        let count = |v: Option<String>, name: &str, default: u64| -> Result<u64, SettingsError> {
            match v {
                Some(v) => match number(&v, name)? {
                    0 => Err(SettingsError(format!("{name} must be at least 1"))),
                    n => Ok(n),
                },
                None => Ok(default),
            }
        };
        let small = |v: Option<String>, name: &str, default: u32| -> Result<u32, SettingsError> {
            let n = count(v, name, u64::from(default))?;
            u32::try_from(n).map_err(|_| SettingsError(format!("{name} must be at most {}", u32::MAX)))
        };
        let policy = ServicePolicy {
            session,
            require_premium_for_login: flag(raw.require_premium_for_login, "REQUIRE_PREMIUM_FOR_LOGIN", false)?,
            subscription_ttl: secs(raw.subscription_ttl_secs, "SUBSCRIPTION_TTL_SECS", defaults.subscription_ttl)?,
            access_token_min_validity: secs(
                raw.access_token_min_validity_secs,
                "ACCESS_TOKEN_MIN_VALIDITY_SECS",
                defaults.access_token_min_validity,
            )?,
            ended_session_retention: secs(
                raw.ended_session_retention_secs,
                "ENDED_SESSION_RETENTION_SECS",
                defaults.ended_session_retention,
            )?,
            lapsed_login_retention: secs(
                raw.lapsed_login_retention_secs,
                "LAPSED_LOGIN_RETENTION_SECS",
                defaults.lapsed_login_retention,
            )?,
            token_retention: secs(raw.token_retention_secs, "TOKEN_RETENTION_SECS", defaults.token_retention)?,
            login: LoginLimits {
                pending_per_client: count(
                    raw.login_pending_per_client,
                    "LOGIN_PENDING_PER_CLIENT",
                    defaults.login.pending_per_client,
                )?,
                pending_total: count(raw.login_pending_total, "LOGIN_PENDING_TOTAL", defaults.login.pending_total)?,
            },
        };
        let rdefaults = RateLimits::default();
        let rate_limits = RateLimits {
            enabled: flag(raw.rate_limits, "RATE_LIMITS", rdefaults.enabled)?,
            per_client_burst: small(
                raw.rate_limit_per_client_burst,
                "RATE_LIMIT_PER_CLIENT_BURST",
                rdefaults.per_client_burst,
            )?,
            per_client_per_minute: small(
                raw.rate_limit_per_client_per_minute,
                "RATE_LIMIT_PER_CLIENT_PER_MINUTE",
                rdefaults.per_client_per_minute,
            )?,
            global_burst: small(raw.rate_limit_global_burst, "RATE_LIMIT_GLOBAL_BURST", rdefaults.global_burst)?,
            global_per_second: small(
                raw.rate_limit_global_per_second,
                "RATE_LIMIT_GLOBAL_PER_SECOND",
                rdefaults.global_per_second,
            )?,
        };
        let trusted_proxies = TrustedProxies::parse(
            &raw.trusted_proxies.unwrap_or_default(),
            &raw.trusted_proxy_header.unwrap_or_default(),
        )
        .map_err(|e| SettingsError(e.to_string()))?;
        let allowed = nonempty(raw.cors_allowed_origins).unwrap_or_default();
        let origins =
            TrustedOrigins::new(&frontend_url, allowed.split(',')).map_err(|e| SettingsError(e.to_string()))?;
        let sdk_url = match nonempty(raw.spotify_sdk_url) {
            Some(u) => Url::parse(u.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| {
                    SettingsError("SPOTIFY_SDK_URL must be an absolute http(s) URL of the SDK script".into())
                })?,
            None => Url::parse(DEFAULT_SDK_URL).map_err(|e| SettingsError(format!("SPOTIFY_SDK_URL: {e}")))?,
        };
        let room_page = flag(raw.room_page, "ROOM_PAGE", env == AppEnv::Development)?;
        let mut room = RoomPolicy::new(policy.session, policy.access_token_min_validity);
        if let Some(hosts) = nonempty(raw.room_hosts) {
            let ids = hosts
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(|h| {
                    SpotifyUserId::new(h).map_err(|_| {
                        SettingsError("ROOM_HOSTS must be a comma-separated list of Spotify user ids".into())
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            room.hosts = Some(ids);
        }
        room.player_stale_after = secs(raw.room_player_stale_secs, "ROOM_PLAYER_STALE_SECS", room.player_stale_after)?;
        if room.player_stale_after < Duration::from_secs(35) {
            return Err(SettingsError("ROOM_PLAYER_STALE_SECS must be at least 35 (pages report every 30 s)".into()));
        }
        if let Some(n) = raw.room_concurrency {
            room.concurrency = usize::try_from(number(&n, "ROOM_CONCURRENCY")?).unwrap_or(64).clamp(1, 64);
        }
        let room_events_poll = match raw.room_events_poll_ms {
            Some(ms) => Duration::from_millis(number(&ms, "ROOM_EVENTS_POLL_MS")?.clamp(100, 60_000)),
            None => Duration::from_secs(1),
        };
        let mut cache = CacheConfig::default();
        if let Some(ms) = raw.session_cache_staleness_ms {
            let ms = number(&ms, "SESSION_CACHE_STALENESS_MS")?;
            if ms > 60_000 {
                return Err(SettingsError("SESSION_CACHE_STALENESS_MS must be at most 60000 (0 = strict mode)".into()));
            }
            cache.staleness = Duration::from_millis(ms);
        }
        if let Some(n) = raw.session_cache_capacity {
            let n = number(&n, "SESSION_CACHE_CAPACITY")?;
            if !(1..=10_000_000).contains(&n) {
                return Err(SettingsError("SESSION_CACHE_CAPACITY must be between 1 and 10000000".into()));
            }
            cache.capacity = usize::try_from(n).unwrap_or(usize::MAX);
        }
        let metrics_addr = match nonempty(raw.metrics_addr) {
            Some(a) => Some(
                a.trim()
                    .parse::<SocketAddr>()
                    .map_err(|_| SettingsError("METRICS_ADDR must be IP:PORT, e.g. 127.0.0.1:9100".into()))?,
            ),
            None => None,
        };
        let housekeeping_interval = secs(
            raw.housekeeping_interval_secs,
            "HOUSEKEEPING_INTERVAL_SECS",
            spotauth_runtime::housekeeping::DEFAULT_INTERVAL,
        )?;
        if housekeeping_interval.is_zero() {
            return Err(SettingsError("HOUSEKEEPING_INTERVAL_SECS must be at least 1".into()));
        }
        let db_pool_size = match raw.db_pool_size {
            Some(v) => usize::try_from(number(&v, "DB_POOL_SIZE")?).unwrap_or(usize::MAX).clamp(1, 256),
            None => 16,
        };
        let pdefaults = ProactiveSettings::default();
        let proactive = ProactiveConfig {
            enabled: flag(raw.proactive_refresh, "PROACTIVE_REFRESH", true)?,
            settings: ProactiveSettings {
                interval: secs(
                    raw.proactive_refresh_interval_secs,
                    "PROACTIVE_REFRESH_INTERVAL_SECS",
                    pdefaults.interval,
                )?,
                lookahead: secs(
                    raw.proactive_refresh_lookahead_secs,
                    "PROACTIVE_REFRESH_LOOKAHEAD_SECS",
                    pdefaults.lookahead,
                )?,
                concurrency: match raw.proactive_refresh_concurrency {
                    Some(v) => usize::try_from(number(&v, "PROACTIVE_REFRESH_CONCURRENCY")?).unwrap_or(64).clamp(1, 64),
                    None => pdefaults.concurrency,
                },
                batch: pdefaults.batch,
            },
        };
        let spotify_max_backoff = match raw.spotify_max_backoff_secs {
            Some(v) => match number(&v, "SPOTIFY_MAX_BACKOFF_SECS")? {
                n @ 1..=MAX_BACKOFF_SECS => Duration::from_secs(n),
                _ => {
                    return Err(SettingsError(format!(
                        "SPOTIFY_MAX_BACKOFF_SECS must be between 1 and {MAX_BACKOFF_SECS}"
                    )));
                }
            },
            None => DEFAULT_MAX_BACKOFF,
        };
        if proactive.enabled && proactive.settings.lookahead <= proactive.settings.interval {
            return Err(SettingsError(
                "PROACTIVE_REFRESH_LOOKAHEAD_SECS must exceed PROACTIVE_REFRESH_INTERVAL_SECS".into(),
            ));
        }
        Ok(Settings {
            env,
            data_dir,
            database,
            db_pool_size,
            bind_addr,
            spotify,
            spotify_missing,
            spotify_max_backoff,
            frontend_url,
            token_encryption_keys,
            session_signing_key,
            cookie_secure,
            policy,
            proactive,
            housekeeping_interval,
            rate_limits,
            trusted_proxies,
            origins,
            sdk_url,
            room_page,
            room,
            room_events_poll,
            metrics_addr,
            cache,
        })
    }

    /// The keys to run with. Configured keys win. In development, a key that is not configured
    /// comes from `DATA_DIR/keys.env`, which is generated on the first start (mode 0600, created
    /// atomically so concurrent first starts agree) and reused afterwards; a key file that group
    /// or others may read is refused. One log line says which file, never a key.
    pub fn resolve_keys(&self) -> Result<Keys, SettingsError> {
        if let (Some(t), Some(s)) = (&self.token_encryption_keys, &self.session_signing_key) {
            return Ok(Keys { token_encryption_keys: t.clone(), session_signing_key: s.clone() });
        }
        if self.env == AppEnv::Production {
            let name =
                if self.token_encryption_keys.is_none() { "TOKEN_ENCRYPTION_KEYS" } else { "SESSION_SIGNING_KEY" };
            return Err(missing_in_production(name));
        }
        let path = self.data_dir.join(KEY_FILE);
        let (file, created) = match read_key_file(&path)? {
            Some(file) => (file, false),
            None => (create_key_file(&self.data_dir, &path)?, true),
        };
        if created {
            tracing::info!(
                "development mode: generated TOKEN_ENCRYPTION_KEYS and SESSION_SIGNING_KEY into {} (mode 0600); later starts reuse them",
                path.display()
            );
        } else {
            tracing::info!("development mode: using the keys in {}", path.display());
        }
        Ok(Keys {
            token_encryption_keys: self.token_encryption_keys.clone().unwrap_or(file.token_encryption_keys),
            session_signing_key: self.session_signing_key.clone().unwrap_or(file.session_signing_key),
        })
    }
}

/// Refuses a configuration file that is not TOML, naming the line but never showing it: the
/// TOML parser's own message quotes the offending line, which may hold a key.
fn check_toml(path: &Path) -> Result<(), SettingsError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SettingsError(format!("CONFIG_FILE: cannot read {}: {}", path.display(), e.kind())))?;
    toml::from_str::<toml::Table>(&text).map(|_| ()).map_err(|e| {
        let line = e.span().map(|span| {
            let before = text.as_bytes().get(..span.start).unwrap_or(text.as_bytes());
            before.iter().filter(|&&b| b == b'\n').count() + 1
        });
        let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
        SettingsError(format!(
            "CONFIG_FILE: {} is not valid TOML{at} (the line is not shown: it may hold a secret)",
            path.display()
        ))
    })
}

/// One line for a `config` error, naming the setting but never echoing a value (serde's
/// messages quote what they were given).
fn config_error(context: &str, e: &config::ConfigError) -> SettingsError {
    match e {
        config::ConfigError::Type { key: Some(key), expected, .. } => {
            SettingsError(format!("{context}: {} must be {expected}", key.to_ascii_uppercase()))
        }
        config::ConfigError::At { key: Some(key), .. } => {
            SettingsError(format!("{context}: {} has a value of the wrong kind", key.to_ascii_uppercase()))
        }
        config::ConfigError::NotFound(what) => SettingsError(format!("{context}: {what} not found")),
        _ => SettingsError(format!(
            "{context}: a setting has a value of the wrong kind (every setting is a string, a number or a boolean)"
        )),
    }
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

fn key_file_error(path: &Path, what: impl std::fmt::Display) -> SettingsError {
    SettingsError(format!("DATA_DIR: key file {}: {what}", path.display()))
}

/// Reads `keys.env` (`NAME=value` lines, `#` comments). `None` when it does not exist.
fn read_key_file(path: &Path) -> Result<Option<Keys>, SettingsError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(key_file_error(path, e)),
    };
    if !meta.is_file() {
        return Err(key_file_error(path, "is not a regular file"));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(key_file_error(
            path,
            format_args!(
                "mode {mode:04o} lets group or others read it; run `chmod 600 {}` (or set TOKEN_ENCRYPTION_KEYS and SESSION_SIGNING_KEY)",
                path.display()
            ),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| key_file_error(path, e))?;
    let mut values: HashMap<&str, &str> = HashMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (name, value) = line.split_once('=').ok_or_else(|| key_file_error(path, "a line is not NAME=value"))?;
        values.insert(name.trim(), value.trim());
    }
    let get = |name: &str| {
        values
            .get(name)
            .filter(|v| !v.is_empty())
            .map(|v| Secret::new((*v).to_owned()))
            .ok_or_else(|| key_file_error(path, format_args!("{name} is missing")))
    };
    Ok(Some(Keys {
        token_encryption_keys: get("TOKEN_ENCRYPTION_KEYS")?,
        session_signing_key: get("SESSION_SIGNING_KEY")?,
    }))
}

/// Generates the key file: written to a private temporary file (0600), then hard-linked into
/// place, so a concurrent first start either wins or reads the winner's complete file.
fn create_key_file(dir: &Path, path: &Path) -> Result<Keys, SettingsError> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| SettingsError(format!("DATA_DIR: cannot create {}: {e}", dir.display())))?;
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{KEY_FILE}.{}.{seq}.tmp", std::process::id()));
    let contents = format!(
        "# Generated by spotauth in development mode (APP_ENV=development). Keep it private (mode 0600).\n\
         # Production: set TOKEN_ENCRYPTION_KEYS and SESSION_SIGNING_KEY instead.\n\
         TOKEN_ENCRYPTION_KEYS={GENERATED_KID}:{}\nSESSION_SIGNING_KEY={}\n",
        spotauth_crypto::keys::generate_key_base64(),
        spotauth_crypto::keys::generate_key_base64()
    );
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(contents.as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| match std::fs::hard_link(&tmp, path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        });
    let _ = std::fs::remove_file(&tmp);
    written.map_err(|e| key_file_error(path, format_args!("cannot create: {e}")))?;
    read_key_file(path)?.ok_or_else(|| key_file_error(path, "vanished after creation"))
}

fn number(v: &str, name: &str) -> Result<u64, SettingsError> {
    // The value is not echoed: a mistyped secret must not reach the logs, nor a newline forge a line.
    v.trim().parse().map_err(|_| SettingsError(format!("{name} must be a whole number")))
}

fn flag(v: Option<String>, name: &str, default: bool) -> Result<bool, SettingsError> {
    match v.as_deref().map(str::trim).map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(_) => Err(SettingsError(format!("{name} must be true or false"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &str = "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("APP_ENV", "production"),
            ("DATABASE_URL", "mysql://root:hunter2@127.0.0.1:3306/spotauth"),
            ("SPOTIFY_CLIENT_ID", "client"),
            ("SPOTIFY_REDIRECT_URI", "http://127.0.0.1:8080/api/auth/spotify/callback"),
            ("FRONTEND_URL", "http://127.0.0.1:3000/"),
            ("TOKEN_ENCRYPTION_KEYS", KEYS),
            ("SESSION_SIGNING_KEY", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="),
        ]
    }

    #[test]
    fn defaults_fill_the_rest() {
        let s = Settings::from_pairs(base()).unwrap();
        assert_eq!(s.bind_addr.to_string(), "127.0.0.1:8080");
        assert!(s.cookie_secure);
        assert!(s.spotify.is_public_client());
        assert!(matches!(s.database, Database::Mysql(_)));
        assert!(s.spotify_missing.is_empty());
    }

    #[test]
    fn development_needs_nothing() {
        let s = Settings::from_pairs([]).unwrap();
        assert_eq!(s.env, AppEnv::Development);
        assert!(matches!(&s.database, Database::Sqlite(p) if p == Path::new("./data/spotauth.db")), "{:?}", s.database);
        assert_eq!(s.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.frontend_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(s.spotify.redirect_uri(), "http://127.0.0.1:8080/api/auth/spotify/callback");
        assert_eq!(s.spotify_missing, vec!["SPOTIFY_CLIENT_ID"]);
        assert!(!s.cookie_secure);
        assert!(s.token_encryption_keys.is_none() && s.session_signing_key.is_none());

        let s =
            Settings::from_pairs([("DATA_DIR", "/tmp/x"), ("BIND_ADDR", "0.0.0.0:9000"), ("DEV_ALLOW_REMOTE", "true")])
                .unwrap();
        assert!(matches!(&s.database, Database::Sqlite(p) if p == Path::new("/tmp/x/spotauth.db")), "{:?}", s.database);
        assert_eq!(s.frontend_url.as_str(), "http://127.0.0.1:9000/");
        let s = Settings::from_pairs([("SQLITE_PATH", "/tmp/y.db")]).unwrap();
        assert!(matches!(&s.database, Database::Sqlite(p) if p == Path::new("/tmp/y.db")), "{:?}", s.database);
    }

    #[test]
    fn production_may_use_sqlite_but_neither_generated_keys_nor_plain_http_cookies() {
        let pairs: Vec<_> = base().into_iter().filter(|(k, _)| *k != "DATABASE_URL").collect();
        let s = Settings::from_pairs(pairs).unwrap();
        assert!(matches!(&s.database, Database::Sqlite(p) if p == Path::new("./data/spotauth.db")), "{:?}", s.database);
        // Without keys, production refuses to start instead of generating them into DATA_DIR.
        let data_dir = std::env::temp_dir().join(format!("spotauth-settings-{}", std::process::id()));
        let data = data_dir.display().to_string();
        let no_keys: Vec<(&str, &str)> = base()
            .into_iter()
            .filter(|(k, _)| !matches!(*k, "DATABASE_URL" | "TOKEN_ENCRYPTION_KEYS"))
            .chain([("DATA_DIR", data.as_str())])
            .collect();
        let err = Settings::from_pairs(no_keys).map(|_| ()).unwrap_err().to_string();
        assert_eq!(err, "TOKEN_ENCRYPTION_KEYS is required but not set (APP_ENV=production)");
        assert!(!data_dir.join(KEY_FILE).exists(), "no key file generated");
        assert_eq!(
            Settings::from_pairs([("APP_ENV", "production"), ("COOKIE_SECURE", "false")].into_iter().chain(base()))
                .map(|_| ())
                .unwrap_err()
                .to_string(),
            "COOKIE_SECURE cannot be false with APP_ENV=production"
        );
    }

    #[test]
    fn each_missing_required_setting_is_named() {
        for name in [
            "SPOTIFY_CLIENT_ID",
            "SPOTIFY_REDIRECT_URI",
            "FRONTEND_URL",
            "TOKEN_ENCRYPTION_KEYS",
            "SESSION_SIGNING_KEY",
        ] {
            let pairs: Vec<_> = base().into_iter().filter(|(k, _)| *k != name).collect();
            let err = Settings::from_pairs(pairs).unwrap_err().to_string();
            assert_eq!(err, format!("{name} is required but not set (APP_ENV=production)"));
        }
    }

    #[test]
    fn malformed_settings_are_named_without_secrets() {
        for (name, value) in [
            ("DATABASE_URL", "postgres://root:hunter2@h/db"),
            ("BIND_ADDR", "everywhere"),
            ("SPOTIFY_REDIRECT_URI", "http://localhost:8080/cb"),
            ("FRONTEND_URL", "/relative"),
            ("COOKIE_SECURE", "maybe"),
            ("SESSION_IDLE_TIMEOUT_SECS", "-1"),
            ("APP_ENV", "staging"),
            ("SQLITE_PATH", "/tmp/both.db"),
        ] {
            let mut pairs = base();
            pairs.retain(|(k, _)| *k != name);
            pairs.push((name, value));
            let err = Settings::from_pairs(pairs).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
            assert!(!err.contains("hunter2") && !err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn development_refuses_an_address_others_can_reach_unless_insisted() {
        let err = Settings::from_pairs([("BIND_ADDR", "0.0.0.0:8080")]).map(|_| ()).unwrap_err().to_string();
        assert!(err.starts_with("BIND_ADDR 0.0.0.0:8080") && err.contains("DEV_ALLOW_REMOTE") && !err.contains('\n'));
        assert!(Settings::from_pairs([("BIND_ADDR", "0.0.0.0:8080"), ("DEV_ALLOW_REMOTE", "true")]).is_ok());
        assert!(Settings::from_pairs([("BIND_ADDR", "[::1]:8080")]).is_ok(), "loopback is fine");
        let production: Vec<_> = base().into_iter().chain([("BIND_ADDR", "0.0.0.0:8080")]).collect();
        assert!(Settings::from_pairs(production).is_ok());
    }

    #[test]
    fn a_malformed_config_file_is_named_by_line_without_its_value() {
        let dir = std::env::temp_dir().join(format!("spotauth-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bad.toml");
        std::fs::write(&file, "app_env = \"production\"\nsession_signing_key = \"hunter2-secret\n").unwrap();
        let err = Settings::load(Some(&file)).map(|_| ()).unwrap_err().to_string();
        assert!(err.starts_with("CONFIG_FILE: ") && err.contains("line 2"), "{err}");
        assert!(!err.contains("hunter2") && !err.contains('\n'), "{err}");
        std::fs::write(&file, "session_signing_key = [\"hunter2-secret\"]\n").unwrap();
        let err = Settings::load(Some(&file)).map(|_| ()).unwrap_err().to_string();
        assert!(!err.contains("hunter2") && !err.contains('\n'), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn abuse_settings_have_defaults_and_are_checked() {
        let s = Settings::from_pairs(base()).unwrap();
        assert_eq!(s.rate_limits, RateLimits::default());
        assert_eq!(s.policy.session.rotation_grace, Duration::from_secs(5));
        assert!(s.trusted_proxies.is_empty() && s.metrics_addr.is_none());
        assert_eq!(s.spotify_max_backoff, Duration::from_secs(3600));
        let pairs: Vec<_> = base().into_iter().chain([("SPOTIFY_MAX_BACKOFF_SECS", "86400")]).collect();
        assert_eq!(Settings::from_pairs(pairs).unwrap().spotify_max_backoff, Duration::from_secs(86_400));
        for (name, value) in [
            ("SESSION_ROTATION_GRACE_SECS", "61"),
            ("RATE_LIMIT_PER_CLIENT_BURST", "0"),
            ("LOGIN_PENDING_TOTAL", "lots"),
            ("TRUSTED_PROXIES", "proxy.internal"),
            ("TRUSTED_PROXY_HEADER", "x-real-ip"),
            ("CORS_ALLOWED_ORIGINS", "https://app.example.com/path"),
            ("METRICS_ADDR", "metrics"),
            ("HOUSEKEEPING_INTERVAL_SECS", "0"),
            ("RATE_LIMITS", "sometimes"),
            ("SPOTIFY_MAX_BACKOFF_SECS", "0"),
            ("SPOTIFY_MAX_BACKOFF_SECS", "86401"),
        ] {
            let pairs: Vec<_> = base().into_iter().chain([(name, value)]).collect();
            let err = Settings::from_pairs(pairs).map(|_| ()).unwrap_err().to_string();
            assert!(err.contains(name), "{name}: {err}");
        }
    }

    proptest::proptest! {
        /// A refused value of any numeric or boolean setting is named by the setting, on one
        /// line, and never echoed (it may be a secret pasted into the wrong variable).
        #[test]
        fn refused_values_are_never_echoed(value in "[a-zA-Z!@#%^&*+=~][ -~]{5,40}", pick in 0usize..9) {
            let names = [
                "SESSION_IDLE_TIMEOUT_SECS",
                "SESSION_ROTATION_GRACE_SECS",
                "TOKEN_RETENTION_SECS",
                "LOGIN_PENDING_PER_CLIENT",
                "RATE_LIMIT_PER_CLIENT_BURST",
                "DB_POOL_SIZE",
                "COOKIE_SECURE",
                "SESSION_CACHE_STALENESS_MS",
                "RATE_LIMITS",
            ];
            let name = names[pick];
            let pairs: Vec<_> = base().into_iter().chain([(name, value.as_str())]).collect();
            if let Err(e) = Settings::from_pairs(pairs) {
                let e = e.to_string();
                proptest::prop_assert!(e.contains(name) && !e.contains('\n'), "{e}");
                proptest::prop_assert!(!e.contains(value.trim()), "{e}");
            }
        }
    }
}
