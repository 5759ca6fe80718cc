//! What the use cases answer besides success.

use std::time::Duration;

use crate::ports::{CipherError, RepoError, SessionTokenError, SpotifyError, TokenError};
use crate::user::UserFieldError;

/// Why a request is not authenticated. All of them are a 401 to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unauthenticated {
    /// The token failed verification.
    #[error(transparent)]
    Token(#[from] SessionTokenError),
    /// No such session (or it belongs to another user, or its user is gone).
    #[error("unknown session")]
    UnknownSession,
    /// The session was revoked.
    #[error("session revoked")]
    Revoked,
    /// The session passed its idle or absolute timeout.
    #[error("session expired")]
    Expired,
    /// A rotated-out token was presented again: the whole session is now revoked.
    #[error("session token reused; session revoked")]
    Reused,
}

/// Why a login callback was refused before any request to Spotify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoginRejected {
    /// The callback carries no `state`, or the browser has no login cookie.
    #[error("login state missing")]
    StateMissing,
    /// The callback's state is not the one this browser's login started with.
    #[error("login state does not match this browser")]
    StateMismatch,
    /// No login attempt has this state.
    #[error("unknown login state")]
    StateUnknown,
    /// The login attempt lapsed.
    #[error("login attempt expired")]
    Expired,
    /// The callback was already used.
    #[error("login callback already used")]
    AlreadyUsed,
    /// Spotify refused the authorization code (expired, already exchanged, or made up): an
    /// expected outcome of a replayed or forged callback, not a fault of the service.
    #[error("authorization code refused by Spotify")]
    CodeRefused,
}

/// What a use case may answer besides success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No valid session.
    #[error("unauthenticated: {0}")]
    Unauthenticated(#[from] Unauthenticated),
    /// The login callback was refused before any request to Spotify.
    #[error("login refused: {0}")]
    LoginRejected(#[from] LoginRejected),
    /// The user declined at Spotify (`error=access_denied`) or Spotify sent another error.
    #[error("Spotify authorization declined: {0}")]
    AuthorizationDeclined(String),
    /// The user is known to be on a free plan and this needs Premium.
    #[error("Spotify Premium required")]
    PremiumRequired,
    /// Spotify refused our refresh token: the user must log in again.
    #[error("Spotify re-authorization required")]
    ReauthRequired,
    /// The user has disconnected Spotify.
    #[error("no Spotify connection")]
    NotConnected,
    /// The user is not on the Spotify app's allow-list (Development Mode).
    #[error("not on the Spotify app's allow-list")]
    NotAllowListed,
    /// The user does not exist.
    #[error("user not found")]
    UserNotFound,
    /// The caller has no live session with this id (another user's session is reported the
    /// same way as an unknown one).
    #[error("session not found")]
    SessionNotFound,
    /// Spotify rate limiting.
    #[error("Spotify rate limited; retry after {retry_after:?}")]
    RateLimited {
        /// Wait this long.
        retry_after: Duration,
    },
    /// Spotify unavailable.
    #[error("Spotify unavailable")]
    Unavailable {
        /// A hint for callers, if any.
        retry_after: Option<Duration>,
    },
    /// Spotify sent a profile we cannot accept.
    #[error("invalid Spotify profile: {0}")]
    InvalidProfile(#[from] UserFieldError),
    /// Store failure.
    #[error(transparent)]
    Store(#[from] RepoError),
    /// Cipher failure.
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// Other Spotify failure.
    #[error(transparent)]
    Spotify(SpotifyError),
    /// Signing a session token failed.
    #[error("cannot issue session token")]
    SessionIssue,
    /// Too many login attempts are pending (for this client, or in all); no new one is begun.
    #[error("too many pending logins; retry after {retry_after:?}")]
    TooManyLogins {
        /// When the oldest pending attempts will have lapsed, at the latest.
        retry_after: Duration,
    },
}

impl From<SpotifyError> for AuthError {
    fn from(e: SpotifyError) -> Self {
        match e {
            SpotifyError::ReauthRequired => AuthError::ReauthRequired,
            SpotifyError::NotAllowListed => AuthError::NotAllowListed,
            SpotifyError::PremiumRequired => AuthError::PremiumRequired,
            SpotifyError::RateLimited { retry_after } => AuthError::RateLimited { retry_after },
            SpotifyError::Unavailable(_) => AuthError::Unavailable { retry_after: None },
            other => AuthError::Spotify(other),
        }
    }
}

impl From<TokenError> for AuthError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::NotConnected => AuthError::NotConnected,
            TokenError::ReauthRequired => AuthError::ReauthRequired,
            TokenError::RateLimited { retry_after } => AuthError::RateLimited { retry_after },
            TokenError::Unavailable { retry_after } => AuthError::Unavailable { retry_after },
            TokenError::Store(RepoError::NotFound) => AuthError::UserNotFound,
            TokenError::Store(e) => AuthError::Store(e),
            TokenError::Cipher(e) => AuthError::Cipher(e),
            TokenError::Spotify(e) => e.into(),
        }
    }
}
