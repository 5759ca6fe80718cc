//! [`Config`]: the server's settings, by the same names, as far as the library needs them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use spotauth_domain::secret::Secret;
use spotauth_mysql::DatabaseUrl;
use spotauth_spotify::SpotifyConfig;

use crate::Error;

/// Which store the server keeps its data in.
#[derive(Debug, Clone)]
pub enum Store {
    /// MySQL / PlanetScale: `DATABASE_URL`.
    Mysql(DatabaseUrl),
    /// The embedded SQLite file: `SQLITE_PATH`, else `DATA_DIR/spotauth.db`.
    Sqlite(PathBuf),
}

/// What [`crate::Spotauth::open`] needs: the store, the token keys and the Spotify client,
/// read from the server's own setting names.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`, `SQLITE_PATH` or `DATA_DIR`.
    pub store: Store,
    /// `TOKEN_ENCRYPTION_KEYS`: the keyring the server encrypts tokens with.
    pub token_encryption_keys: Secret,
    /// `SPOTIFY_CLIENT_ID`, `SPOTIFY_CLIENT_SECRET`, `SPOTIFY_REDIRECT_URI`,
    /// `SPOTIFY_ACCOUNTS_URL`, `SPOTIFY_API_URL`, `SPOTIFY_TIMEOUT_MS`.
    pub spotify: SpotifyConfig,
    /// `ACCESS_TOKEN_MIN_VALIDITY_SECS` (default 300): a token is refreshed when it has less left.
    pub access_token_min_validity: Duration,
    /// `DB_POOL_SIZE` (default 4): connections this process holds.
    pub pool_size: usize,
}

fn bad(setting: &str, why: impl std::fmt::Display) -> Error {
    Error::Config(format!("{setting}: {why}"))
}

impl Config {
    /// From the process environment.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first missing or malformed setting (never its value).
    pub fn from_env() -> Result<Self, Error> {
        Self::from_pairs(std::env::vars())
    }

    /// From `(name, value)` pairs (tests, or a service with its own configuration source).
    /// Empty values count as unset.
    ///
    /// # Errors
    /// As [`Self::from_env`].
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, Error> {
        let vars: HashMap<String, String> =
            pairs.into_iter().map(|(k, v)| (k.into(), v.into())).filter(|(_, v)| !v.trim().is_empty()).collect();
        let get = |name: &str| vars.get(name).map(|v| v.trim().to_owned());
        let required = |name: &str| get(name).ok_or_else(|| Error::Config(format!("{name} is required but not set")));
        let store = match (get("DATABASE_URL"), get("SQLITE_PATH")) {
            (Some(_), Some(_)) => return Err(Error::Config("set DATABASE_URL or SQLITE_PATH, not both".into())),
            (Some(url), None) => Store::Mysql(DatabaseUrl::parse(&url).map_err(|e| Error::Config(e.to_string()))?),
            (None, Some(path)) => Store::Sqlite(PathBuf::from(path)),
            (None, None) => {
                Store::Sqlite(PathBuf::from(get("DATA_DIR").unwrap_or_else(|| "./data".into())).join("spotauth.db"))
            }
        };
        let token_encryption_keys = Secret::new(required("TOKEN_ENCRYPTION_KEYS")?);
        let secret = get("SPOTIFY_CLIENT_SECRET").map(Secret::new);
        let mut spotify = SpotifyConfig::new(required("SPOTIFY_CLIENT_ID")?, secret, required("SPOTIFY_REDIRECT_URI")?)
            .map_err(|e| Error::Config(e.to_string()))?;
        if let Some(url) = get("SPOTIFY_ACCOUNTS_URL") {
            spotify = spotify.with_accounts_url(&url).map_err(|e| Error::Config(e.to_string()))?;
        }
        if let Some(url) = get("SPOTIFY_API_URL") {
            spotify = spotify.with_api_url(&url).map_err(|e| Error::Config(e.to_string()))?;
        }
        let number = |name: &str| -> Result<Option<u64>, Error> {
            get(name).map(|v| v.parse::<u64>().map_err(|_| bad(name, "must be a whole number"))).transpose()
        };
        if let Some(ms) = number("SPOTIFY_TIMEOUT_MS")? {
            spotify = spotify.with_timeout(Duration::from_millis(ms)).map_err(|e| Error::Config(e.to_string()))?;
        }
        let default_validity = spotauth_domain::service::ServicePolicy::default().access_token_min_validity;
        let access_token_min_validity =
            number("ACCESS_TOKEN_MIN_VALIDITY_SECS")?.map_or(default_validity, Duration::from_secs);
        let pool_size = number("DB_POOL_SIZE")?.map_or(4, |n| usize::try_from(n).unwrap_or(256).clamp(1, 256));
        Ok(Config { store, token_encryption_keys, spotify, access_token_min_validity, pool_size })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BASE: [(&str, &str); 3] = [
        ("TOKEN_ENCRYPTION_KEYS", "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        ("SPOTIFY_CLIENT_ID", "client"),
        ("SPOTIFY_REDIRECT_URI", "https://app.example/api/auth/spotify/callback"),
    ];

    #[test]
    fn the_servers_names_and_one_line_errors() {
        let c = Config::from_pairs(BASE).unwrap();
        assert!(matches!(&c.store, Store::Sqlite(p) if p.ends_with("data/spotauth.db")));
        assert_eq!(c.access_token_min_validity, Duration::from_secs(300));
        let mut pairs = BASE.to_vec();
        pairs.push(("DATABASE_URL", "mysql://root:hunter2@127.0.0.1:3306/test"));
        assert!(matches!(Config::from_pairs(pairs.clone()).unwrap().store, Store::Mysql(_)));
        pairs.push(("SQLITE_PATH", "/tmp/x.db"));
        assert!(Config::from_pairs(pairs).is_err());
        let err = Config::from_pairs(BASE.into_iter().filter(|(k, _)| *k != "TOKEN_ENCRYPTION_KEYS")).unwrap_err();
        assert_eq!(err.to_string(), "TOKEN_ENCRYPTION_KEYS is required but not set");
        let mut pairs = BASE.to_vec();
        pairs.push(("ACCESS_TOKEN_MIN_VALIDITY_SECS", "soon"));
        let err = Config::from_pairs(pairs).unwrap_err().to_string();
        assert_eq!(err, "ACCESS_TOKEN_MIN_VALIDITY_SECS: must be a whole number");
        let mut pairs = BASE.to_vec();
        pairs.push(("DATABASE_URL", "postgres://root:hunter2@x/y"));
        let err = Config::from_pairs(pairs).unwrap_err().to_string();
        assert!(err.contains("DATABASE_URL") && !err.contains("hunter2"), "{err}");
    }
}
