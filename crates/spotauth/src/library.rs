//! [`Spotauth`]: the store, the keyring, the Spotify client and the server's token use case,
//! wired the way the server wires them.

use std::sync::Arc;

use spotauth_crypto::{OsIds, TokenKeyring};
use spotauth_domain::ports::{Clock, IdSource, SpotifyAccounts, TokenCipher, UserRepository};
use spotauth_domain::room::{RoomMember, RoomPolicy, RoomPorts, RoomService, SpotifyPlayerPort};
use spotauth_domain::service::ServicePolicy;
use spotauth_domain::token::AccessGrant;
use spotauth_domain::tokens::{RefreshPolicy, TokenIdentity, TokenPorts, TokenService};
use spotauth_domain::user::{PageRequest, SpotifyAccountKey, User};
use spotauth_domain::{Timestamp, UserId};
use spotauth_mysql::{MysqlStore, PoolSettings};
use spotauth_runtime::{LockMap, RefreshMetrics, SystemClock};
use spotauth_spotify::SpotifyClient;
use spotauth_sql::Repositories;
use spotauth_sqlite::{SqliteSettings, SqliteStore};

use crate::{Config, Error, Store};

/// Which user: our id (the `id` of `/api/users/me`) or their Spotify account key (`/v1/me`'s
/// `account_id` when Spotify sends one, else its `id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// Our user id.
    Id(UserId),
    /// The Spotify account key.
    SpotifyAccount(SpotifyAccountKey),
}

impl UserRef {
    /// By Spotify account key.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty or over-long key.
    pub fn spotify_account(key: &str) -> Result<Self, Error> {
        SpotifyAccountKey::new(key).map(UserRef::SpotifyAccount).map_err(|e| Error::Config(e.to_string()))
    }

    /// Our id when `text` is a UUID, else a Spotify account key.
    ///
    /// # Errors
    /// As [`Self::spotify_account`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        match text.parse::<UserId>() {
            Ok(id) => Ok(UserRef::Id(id)),
            Err(_) => Self::spotify_account(text),
        }
    }
}

impl From<UserId> for UserRef {
    fn from(id: UserId) -> Self {
        UserRef::Id(id)
    }
}

/// A user's public profile: never a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// Our id.
    pub id: UserId,
    /// The Spotify user id, as last seen.
    pub spotify_id: String,
    /// The display name, when they have one.
    pub display_name: Option<String>,
    /// Premium: `Some(true)`, free: `Some(false)`, not known: `None`.
    pub premium: Option<bool>,
    /// Shown in the active list (not opted out).
    pub is_active: bool,
    /// Spotify tokens are stored for them.
    pub spotify_connected: bool,
    /// Spotify refused their grant: they must log in again.
    pub reauth_required: bool,
    /// When they last did anything through the service.
    pub last_active: Timestamp,
}

impl From<&User> for UserInfo {
    fn from(u: &User) -> Self {
        UserInfo {
            id: u.id,
            spotify_id: u.spotify_id.to_string(),
            display_name: u.display_name.as_ref().map(ToString::to_string),
            premium: u.subscription.status.as_option(),
            is_active: u.is_active,
            spotify_connected: u.has_tokens,
            reauth_required: u.reauth_required,
            last_active: u.last_active,
        }
    }
}

/// spotauth as a library: open once, share (it is `Send + Sync`; clone the `Arc` you keep it in).
pub struct Spotauth {
    tokens: Arc<TokenService>,
    users: Arc<dyn UserRepository>,
    room: RoomService,
    min_validity: std::time::Duration,
}

impl std::fmt::Debug for Spotauth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spotauth").field("tokens", &self.tokens).finish_non_exhaustive()
    }
}

async fn open_store(config: &Config) -> Result<Repositories, Error> {
    match &config.store {
        Store::Mysql(url) => {
            let pool = PoolSettings { max_size: config.pool_size, ..PoolSettings::default() };
            let store = MysqlStore::connect(url.clone(), pool).await.map_err(|e| Error::Store(e.to_string()))?;
            // The server owns the schema: the library never migrates, it refuses an old one.
            let pending = store.pending_migrations().await.map_err(|e| Error::Store(e.to_string()))?;
            if !pending.is_empty() {
                return Err(Error::Schema(pending.len()));
            }
            Ok(store.repositories())
        }
        Store::Sqlite(path) => {
            let settings = SqliteSettings { readers: config.pool_size.min(8), ..SqliteSettings::default() };
            let store = SqliteStore::open(path, settings).await.map_err(|e| Error::Store(e.to_string()))?;
            Ok(store.repositories())
        }
    }
}

impl Spotauth {
    /// Opens the store and wires the token use case as the server does (one lock map for this
    /// process, the database lease and backoff shared with every other process).
    ///
    /// # Errors
    /// [`Error::Config`] for unusable keys or Spotify settings, [`Error::Store`] when the store
    /// cannot be opened, [`Error::Schema`] when its schema is behind.
    pub async fn open(config: Config) -> Result<Self, Error> {
        let cipher: Arc<dyn TokenCipher> = Arc::new(
            TokenKeyring::from_config(config.token_encryption_keys.expose())
                .map_err(|e| Error::Config(format!("TOKEN_ENCRYPTION_KEYS: {e}")))?,
        );
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ids: Arc<dyn IdSource> = Arc::new(OsIds);
        let spotify = Arc::new(
            SpotifyClient::new(config.spotify.clone(), clock.clone()).map_err(|e| Error::Config(e.to_string()))?,
        );
        let accounts: Arc<dyn SpotifyAccounts> = spotify.clone();
        let player: Arc<dyn SpotifyPlayerPort> = spotify;
        let repos = open_store(&config).await?;
        let ports = TokenPorts {
            tokens: repos.tokens,
            limits: repos.rate_limits,
            cipher,
            accounts,
            clock: clock.clone(),
            ids: ids.clone(),
            locks: Arc::new(LockMap::default()),
            events: Arc::new(RefreshMetrics::default()),
        };
        let identity = TokenIdentity {
            client_id: config.spotify.client_id().to_owned(),
            instance: format!("lib-{}", ids.new_session_id()),
        };
        let policy = RefreshPolicy::for_timeout(config.spotify.timeout());
        let tokens = Arc::new(TokenService::new(ports, policy, identity));
        let room_ports = RoomPorts { users: repos.users.clone(), players: repos.players, spotify: player, clock };
        let room_policy = RoomPolicy::new(ServicePolicy::default().session, config.access_token_min_validity);
        let room = RoomService::new(room_ports, tokens.clone(), room_policy);
        Ok(Spotauth { tokens, users: repos.users, room, min_validity: config.access_token_min_validity })
    }

    async fn find(&self, user: &UserRef) -> Result<User, Error> {
        let found = match user {
            UserRef::Id(id) => self.users.get(*id).await?,
            UserRef::SpotifyAccount(key) => self.users.find_by_account_key(key).await?,
        };
        found.ok_or(Error::UnknownUser)
    }

    /// A Spotify access token of `user`, valid for at least `ACCESS_TOKEN_MIN_VALIDITY_SECS`
    /// when one can be had (refreshed once, whoever else asks at the same moment, in this
    /// process or any other); the still-valid stored token while Spotify is unavailable or
    /// rate limiting.
    ///
    /// # Errors
    /// [`Error::UnknownUser`], [`Error::NotConnected`], [`Error::ReauthRequired`] (no call is
    /// made), [`Error::RateLimited`], [`Error::Unavailable`], [`Error::Store`].
    pub async fn access_token(&self, user: &UserRef) -> Result<AccessGrant, Error> {
        let id = match user {
            UserRef::Id(id) => *id,
            UserRef::SpotifyAccount(_) => self.find(user).await?.id,
        };
        Ok(self.tokens.valid_access_token(id, self.min_validity).await?)
    }

    /// A user's public profile.
    ///
    /// # Errors
    /// [`Error::UnknownUser`], [`Error::Store`].
    pub async fn user(&self, user: &UserRef) -> Result<UserInfo, Error> {
        Ok(UserInfo::from(&self.find(user).await?))
    }

    /// The people present in the listening room now (signed in, not opted out), most recently
    /// active first, at most 100, each with whether their player is ready and what it plays.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn present(&self) -> Result<Vec<RoomMember>, Error> {
        Ok(self.room.members(PageRequest::largest(0)).await?.0)
    }
}
