//! The use cases of the service, as one [`AuthService`] over `Arc<dyn Port>` fields:
//! `login` (begin and complete an OAuth login), `session` (authenticate, rotate, log out,
//! housekeeping), `account` (profile, active list, Premium, the playback token). Token refresh
//! is its own use case, [`crate::tokens::TokenService`], which this one calls.

mod account;
mod errors;
mod login;
mod session;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

pub use account::ServedToken;
pub use errors::{AuthError, LoginRejected, Unauthenticated};
pub use login::{CallbackInput, LoggedIn, LoginStart};
pub use session::{Authenticated, Housekeeping, IssuedSession, LogoutOutcome, LogoutScope, RefreshedSession};

use crate::login::LoginLimits;
use crate::ports::{
    Clock, Digests, IdSource, LoginFlowRepository, SessionRepository, SessionTokenCodec, SpotifyAccounts,
    SpotifyProfilePort, TokenCipher, TokenRepository, UserRepository,
};
use crate::session::SessionPolicy;
use crate::tokens::TokenService;

/// Rules the use cases follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServicePolicy {
    /// Session lifetimes.
    pub session: SessionPolicy,
    /// Refuse the login of a user known to be free (else they log in but get no playback token).
    pub require_premium_for_login: bool,
    /// A stored subscription answer older than this is re-checked with Spotify.
    pub subscription_ttl: Duration,
    /// An access token is refreshed before it is handed out when it expires within this.
    pub access_token_min_validity: Duration,
    /// Ended sessions (revoked or past their absolute timeout) are deleted this long after they
    /// ended, with their user agent and IP address.
    pub ended_session_retention: Duration,
    /// Lapsed login attempts are deleted this long after they lapsed (until then a late
    /// callback is told "expired" rather than "unknown").
    pub lapsed_login_retention: Duration,
    /// A user with no live session for this long has their Spotify tokens deleted (they
    /// reconnect at their next login); until then a new login finds them connected.
    pub token_retention: Duration,
    /// Bounds on pending login attempts.
    pub login: LoginLimits,
}

impl Default for ServicePolicy {
    fn default() -> Self {
        ServicePolicy {
            session: SessionPolicy::default(),
            require_premium_for_login: false,
            subscription_ttl: Duration::from_secs(24 * 3600),
            access_token_min_validity: Duration::from_secs(300),
            ended_session_retention: Duration::from_secs(7 * 24 * 3600),
            lapsed_login_retention: Duration::from_secs(24 * 3600),
            token_retention: Duration::from_secs(30 * 24 * 3600),
            login: LoginLimits::default(),
        }
    }
}

/// The ports the use cases run on (token refresh aside: see [`crate::tokens::TokenPorts`]).
#[derive(Clone)]
pub struct AuthPorts {
    /// Users: profile, Premium, activity.
    pub users: Arc<dyn UserRepository>,
    /// Stored Spotify tokens (deleted at logout).
    pub tokens: Arc<dyn TokenRepository>,
    /// App sessions.
    pub sessions: Arc<dyn SessionRepository>,
    /// Login attempts in flight.
    pub flows: Arc<dyn LoginFlowRepository>,
    /// Spotify's accounts service (authorize URL, code exchange).
    pub accounts: Arc<dyn SpotifyAccounts>,
    /// Spotify's Web API (profile, Premium probe).
    pub profile: Arc<dyn SpotifyProfilePort>,
    /// Encryption of tokens at rest.
    pub cipher: Arc<dyn TokenCipher>,
    /// Session JWTs.
    pub codec: Arc<dyn SessionTokenCodec>,
    /// Digests of session token ids and OAuth states.
    pub digests: Arc<dyn Digests>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// Fresh ids.
    pub ids: Arc<dyn IdSource>,
}

impl std::fmt::Debug for AuthPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthPorts").finish_non_exhaustive()
    }
}

/// The use cases of the service.
pub struct AuthService {
    ports: AuthPorts,
    tokens: Arc<TokenService>,
    policy: ServicePolicy,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl AuthService {
    /// The service on its ports, calling `tokens` for every Spotify access token it needs.
    pub fn new(ports: AuthPorts, tokens: Arc<TokenService>, policy: ServicePolicy) -> Self {
        AuthService { ports, tokens, policy }
    }

    /// The rules in force.
    pub fn policy(&self) -> &ServicePolicy {
        &self.policy
    }
}
