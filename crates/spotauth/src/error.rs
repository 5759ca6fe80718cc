//! [`Error`]: every way a library call can fail, typed.

use std::time::Duration;

/// Why a call failed. Messages never hold a token, a key or a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is missing or malformed; the message names it.
    #[error("{0}")]
    Config(String),
    /// The store could not be opened or does not answer.
    #[error("store: {0}")]
    Store(String),
    /// The database schema is behind this library: run the server (it applies its migrations)
    /// or `cargo xtask migrate up`.
    #[error(
        "the database has {0} pending migrations; start the spotauth server once (or run `cargo xtask migrate up`)"
    )]
    Schema(usize),
    /// No user has this id or Spotify account key.
    #[error("no such user")]
    UnknownUser,
    /// The user disconnected Spotify (no stored tokens): they must log in again.
    #[error("the user has no Spotify connection")]
    NotConnected,
    /// Spotify refused the user's grant (revoked, or past its 6 months): they must log in
    /// again. No call was made.
    #[error("Spotify re-authorization required")]
    ReauthRequired,
    /// Spotify asked this client id to wait; no valid token is at hand meanwhile.
    #[error("Spotify is rate limiting this app; retry after {retry_after:?}")]
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
    /// Spotify is unavailable (or another process holds the refresh for too long) and the
    /// stored token has expired.
    #[error("Spotify unavailable")]
    Unavailable {
        /// A hint, when there is one.
        retry_after: Option<Duration>,
    },
    /// Something else went wrong (an unexpected Spotify answer, a token that does not decrypt
    /// under the configured keys).
    #[error("{0}")]
    Other(String),
}

impl From<spotauth_domain::ports::TokenError> for Error {
    fn from(e: spotauth_domain::ports::TokenError) -> Self {
        use spotauth_domain::ports::TokenError as T;
        match e {
            T::NotConnected => Error::NotConnected,
            T::ReauthRequired => Error::ReauthRequired,
            T::RateLimited { retry_after } => Error::RateLimited { retry_after },
            T::Unavailable { retry_after } => Error::Unavailable { retry_after },
            T::Store(spotauth_domain::ports::RepoError::NotFound) => Error::UnknownUser,
            T::Store(e) => Error::Store(e.to_string()),
            other => Error::Other(other.to_string()),
        }
    }
}

impl From<spotauth_domain::ports::RepoError> for Error {
    fn from(e: spotauth_domain::ports::RepoError) -> Self {
        match e {
            spotauth_domain::ports::RepoError::NotFound => Error::UnknownUser,
            other => Error::Store(other.to_string()),
        }
    }
}

impl From<spotauth_domain::room::RoomError> for Error {
    fn from(e: spotauth_domain::room::RoomError) -> Self {
        use spotauth_domain::room::RoomError as R;
        match e {
            R::Token(t) => t.into(),
            R::Store(s) => s.into(),
            other => Error::Other(other.to_string()),
        }
    }
}
