//! Configuration: defaults < optional file (`--config PATH` or `CONFIG_FILE`) < environment.
//!
//! Every setting has one name, used as the environment variable and (lowercased) as the file
//! key: `DATABASE_URL` / `database_url`. A missing or malformed setting is one line naming it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use config::{Config, Environment, File};
use serde::Deserialize;
use spotauth_domain::secret::Secret;
use spotauth_domain::service::ServicePolicy;
use spotauth_domain::session::SessionPolicy;
use spotauth_mysql::DatabaseUrl;
use spotauth_spotify::SpotifyConfig;
use url::Url;

/// Why the settings were refused: one line that names the setting, never its secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

fn missing(name: &str) -> SettingsError {
    SettingsError(format!("{name} is required but not set"))
}

/// The raw settings as strings, before validation. Field names are the lowercased setting names.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RawSettings {
    database_url: Option<String>,
    bind_addr: Option<String>,
    spotify_client_id: Option<String>,
    spotify_client_secret: Option<String>,
    spotify_redirect_uri: Option<String>,
    spotify_accounts_url: Option<String>,
    spotify_api_url: Option<String>,
    spotify_scopes: Option<String>,
    spotify_timeout_ms: Option<String>,
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
}

/// The validated settings [`crate::Application::build`] wires from.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the MySQL/PlanetScale database is.
    pub database_url: DatabaseUrl,
    /// Largest number of pooled database connections.
    pub db_pool_size: usize,
    /// Where to listen.
    pub bind_addr: SocketAddr,
    /// The Spotify client.
    pub spotify: SpotifyConfig,
    /// Where the browser goes after login (`?error=` on failure).
    pub frontend_url: Url,
    /// `TOKEN_ENCRYPTION_KEYS`, validated when the app is built.
    pub token_encryption_keys: Secret,
    /// `SESSION_SIGNING_KEY`, validated when the app is built.
    pub session_signing_key: Secret,
    /// Cookies get `Secure` and the `__Host-` prefix (turn off only for plain-HTTP development).
    pub cookie_secure: bool,
    /// Use-case rules.
    pub policy: ServicePolicy,
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
            builder = builder.add_source(File::from(path.as_path()).required(true));
        }
        let config = builder
            .add_source(Environment::default())
            .build()
            .map_err(|e| SettingsError(format!("CONFIG_FILE: {e}")))?;
        let raw: RawSettings = config.try_deserialize().map_err(|e| SettingsError(format!("configuration: {e}")))?;
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

    /// Validates raw settings.
    pub fn from_raw(raw: RawSettings) -> Result<Self, SettingsError> {
        let required = |v: Option<String>, name: &str| v.filter(|s| !s.trim().is_empty()).ok_or_else(|| missing(name));
        let database_url = DatabaseUrl::parse(&required(raw.database_url, "DATABASE_URL")?)
            .map_err(|e| SettingsError(e.to_string()))?;
        let bind_addr = raw
            .bind_addr
            .as_deref()
            .unwrap_or("127.0.0.1:8080")
            .parse()
            .map_err(|_| SettingsError("BIND_ADDR must be IP:PORT, e.g. 127.0.0.1:8080".into()))?;

        let client_id = required(raw.spotify_client_id, "SPOTIFY_CLIENT_ID")?;
        let secret = raw.spotify_client_secret.filter(|s| !s.is_empty()).map(Secret::new);
        let redirect = required(raw.spotify_redirect_uri, "SPOTIFY_REDIRECT_URI")?;
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

        let frontend_url = Url::parse(&required(raw.frontend_url, "FRONTEND_URL")?)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| SettingsError("FRONTEND_URL must be an absolute http(s) URL".into()))?;

        let token_encryption_keys = Secret::new(required(raw.token_encryption_keys, "TOKEN_ENCRYPTION_KEYS")?);
        let session_signing_key = Secret::new(required(raw.session_signing_key, "SESSION_SIGNING_KEY")?);

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
        };
        let db_pool_size = match raw.db_pool_size {
            Some(v) => usize::try_from(number(&v, "DB_POOL_SIZE")?).unwrap_or(usize::MAX).clamp(1, 256),
            None => 16,
        };
        Ok(Settings {
            database_url,
            db_pool_size,
            bind_addr,
            spotify,
            frontend_url,
            token_encryption_keys,
            session_signing_key,
            cookie_secure: flag(raw.cookie_secure, "COOKIE_SECURE", true)?,
            policy,
        })
    }
}

fn number(v: &str, name: &str) -> Result<u64, SettingsError> {
    v.trim().parse().map_err(|_| SettingsError(format!("{name} must be a whole number, got `{v}`")))
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
    }

    #[test]
    fn each_missing_required_setting_is_named() {
        for name in [
            "DATABASE_URL",
            "SPOTIFY_CLIENT_ID",
            "SPOTIFY_REDIRECT_URI",
            "FRONTEND_URL",
            "TOKEN_ENCRYPTION_KEYS",
            "SESSION_SIGNING_KEY",
        ] {
            let pairs: Vec<_> = base().into_iter().filter(|(k, _)| *k != name).collect();
            let err = Settings::from_pairs(pairs).unwrap_err().to_string();
            assert_eq!(err, format!("{name} is required but not set"));
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
        ] {
            let mut pairs = base();
            pairs.retain(|(k, _)| *k != name);
            pairs.push((name, value));
            let err = Settings::from_pairs(pairs).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
            assert!(!err.contains("hunter2") && !err.contains('\n'), "{err}");
        }
    }
}
