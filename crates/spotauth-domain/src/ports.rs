//! Ports: the traits adapters implement. Each method's docs say what every adapter MUST return
//! in each case; the use cases in [`crate::service`] rely on exactly that.
//!
//! All ports are `Send + Sync + 'static` so one instance serves every request of every worker.

use std::time::Duration;

use async_trait::async_trait;

use crate::ids::{SessionId, TokenId, UserId};
use crate::login::{ConsumeOutcome, NewLoginFlow};
use crate::secret::{AccessToken, AuthorizationCode, OAuthState, PkceVerifier, RefreshToken, Secret, SessionToken};
use crate::session::{NewSession, Session, SessionClaims, SessionView, TokenIdHash};
use crate::time::Timestamp;
use crate::token::{
    AccessGrant, EncryptedToken, NewTokens, RefreshedTokens, StoredTokens, TokenBinding, TokenGrant, TokenVersion,
};
use crate::user::{
    DisplayName, Page, PageRequest, SpotifyAccountKey, SpotifyProfile, SpotifyUserId, Subscription, User,
};

// ---------------------------------------------------------------------------------------------
// Errors at the seams
// ---------------------------------------------------------------------------------------------

/// What a repository adapter may answer besides success. Adapters map their library's errors
/// into these; the message of `Unavailable` names the cause without any secret or SQL value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    /// The row addressed does not exist.
    #[error("not found")]
    NotFound,
    /// A unique key is already taken (e.g. the Spotify account key, a session id).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// A compare-and-swap write named a version (or token hash) that is no longer current.
    #[error("stale version")]
    StaleVersion,
    /// The store cannot be reached or failed; retrying later may work.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored row could not be read back into domain values (corruption or a bad migration).
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// What the Spotify adapter may answer besides success, mapped at the seam.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpotifyError {
    /// The token endpoint said `invalid_grant`: the code or refresh token is expired, revoked or
    /// used. Never retried: the user must authorize again.
    #[error("Spotify requires re-authorization (invalid_grant)")]
    ReauthRequired,
    /// The Web API answered 401: the access token is expired or invalid.
    #[error("Spotify access token invalid")]
    AccessTokenInvalid,
    /// 403 for a user who is not on a Development Mode app's allow-list.
    #[error("user is not on this Spotify app's allow-list")]
    NotAllowListed,
    /// 403 with `reason: PREMIUM_REQUIRED`.
    #[error("Spotify Premium required")]
    PremiumRequired,
    /// 429: the whole client id must back off this long.
    #[error("Spotify rate limit; retry after {retry_after:?}")]
    RateLimited {
        /// From `Retry-After`.
        retry_after: Duration,
    },
    /// 5xx, timeout, dropped connection: Spotify is not answering properly.
    #[error("Spotify unavailable: {0}")]
    Unavailable(String),
    /// The client is misconfigured (`invalid_client`, `unauthorized_client`, bad redirect URI).
    #[error("Spotify client misconfigured: {0}")]
    Misconfigured(String),
    /// An answer we could not understand (bad JSON, missing field).
    #[error("unexpected answer from Spotify: {0}")]
    Protocol(String),
}

/// What the token cipher may answer besides success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The ciphertext names a key id the keyring does not hold (retired or never known).
    #[error("ciphertext key `{0}` is not in the keyring (retired?)")]
    UnknownKey(String),
    /// Authentication failed: tampered bytes, or a ciphertext moved to another row or column.
    #[error("ciphertext failed authentication")]
    Tampered,
    /// The bytes are not a ciphertext of ours.
    #[error("malformed ciphertext")]
    Malformed,
    /// Encryption itself failed.
    #[error("encryption failed")]
    EncryptFailed,
}

/// Why a session token was refused. Deliberately coarse: callers answer 401 to all of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionTokenError {
    /// Not a well-formed token of ours, or a forbidden header (`alg`, `jku`, `jwk`, `x5u`, `typ`).
    #[error("malformed or forbidden session token")]
    Malformed,
    /// The signature does not verify.
    #[error("bad session token signature")]
    BadSignature,
    /// `iss` or `aud` is not ours.
    #[error("session token for another issuer or audience")]
    WrongAudience,
    /// Past `exp`.
    #[error("session token expired")]
    Expired,
    /// Before `nbf`.
    #[error("session token not yet valid")]
    NotYetValid,
    /// Signing failed.
    #[error("cannot sign session token")]
    SignFailed,
}

/// What the token-refresh port may answer besides a valid access token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The user has no stored Spotify tokens (disconnected).
    #[error("user has no Spotify connection")]
    NotConnected,
    /// Spotify refused the refresh token, or it passed its 6-month expiry: log in again.
    #[error("Spotify re-authorization required")]
    ReauthRequired,
    /// Spotify is rate limiting this client id; no valid token is at hand meanwhile.
    #[error("Spotify rate limited; retry after {retry_after:?}")]
    RateLimited {
        /// How long callers should wait.
        retry_after: Duration,
    },
    /// Spotify is unavailable and the stored access token has expired.
    #[error("Spotify unavailable")]
    Unavailable {
        /// A hint for callers, if any.
        retry_after: Option<Duration>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] RepoError),
    /// A stored token could not be decrypted (key retired, tampering).
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// Spotify answered something else unexpected.
    #[error(transparent)]
    Spotify(#[from] SpotifyError),
}

// ---------------------------------------------------------------------------------------------
// Storage ports
// ---------------------------------------------------------------------------------------------

/// A user row to insert at first login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Fresh id (the tokens are already encrypted for it).
    pub id: UserId,
    /// Stable Spotify key; unique.
    pub account_key: SpotifyAccountKey,
    /// Spotify user id.
    pub spotify_id: SpotifyUserId,
    /// Display name.
    pub display_name: Option<DisplayName>,
    /// Premium status as settled at login.
    pub subscription: Subscription,
    /// The tokens.
    pub tokens: NewTokens,
    /// Now.
    pub now: Timestamp,
}

/// Fields to write at a repeat login of a known user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginUpdate {
    /// Spotify user id (may have changed).
    pub spotify_id: SpotifyUserId,
    /// Display name.
    pub display_name: Option<DisplayName>,
    /// Premium status as settled at this login.
    pub subscription: Subscription,
    /// The new tokens (a new authorization: the 6-month clock restarts).
    pub tokens: NewTokens,
    /// Now.
    pub now: Timestamp,
}

/// Outcome of asking for a user's refresh lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The caller holds the lease until the given instant.
    Acquired {
        /// Lease end.
        until: Timestamp,
    },
    /// Another holder's lease is live until the given instant.
    Busy {
        /// Their lease end.
        until: Timestamp,
    },
}

/// The user repository: Spotify users and their encrypted tokens.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync + 'static {
    /// The user with this id. MUST return `Ok(None)` when no row has it; `Unavailable` when the
    /// store cannot answer; `Corrupt` when the row cannot be read back.
    async fn get(&self, id: UserId) -> Result<Option<User>, RepoError>;

    /// The user with this Spotify account key. MUST return `Ok(None)` when none.
    async fn find_by_account_key(&self, key: &SpotifyAccountKey) -> Result<Option<User>, RepoError>;

    /// Inserts a new user with tokens, active, not needing re-authorization, token version 1.
    /// MUST return `Conflict("account key")` when a row already has the account key (a concurrent
    /// first login), and `Conflict("user id")` if the id is taken; nothing is written then.
    async fn insert(&self, user: NewUser) -> Result<User, RepoError>;

    /// A repeat login: writes profile, subscription and the new tokens, sets the user active,
    /// clears `reauth_required`, sets `last_active`, bumps the token version and clears any
    /// refresh lease, in one atomic update. MUST return `NotFound` when the id has no row.
    async fn update_on_login(&self, id: UserId, update: LoginUpdate) -> Result<User, RepoError>;

    /// Active users, most recently active first, then by id. MUST return an empty page (with
    /// the true `total`) past the end, never an error.
    async fn list_active(&self, page: PageRequest) -> Result<Page<User>, RepoError>;

    /// Sets the active flag (and `last_active` to `now`). MUST return `NotFound` for an unknown id.
    async fn set_active(&self, id: UserId, active: bool, now: Timestamp) -> Result<User, RepoError>;

    /// Records a subscription check. MUST return `NotFound` for an unknown id.
    async fn record_subscription(&self, id: UserId, subscription: Subscription) -> Result<User, RepoError>;

    /// Sets `last_active`. MUST return `NotFound` for an unknown id.
    async fn touch(&self, id: UserId, now: Timestamp) -> Result<(), RepoError>;

    /// The stored tokens with their version. MUST return `Err(NotFound)` for an unknown id and
    /// `Ok(None)` for a known user without tokens (disconnected).
    async fn load_tokens(&self, id: UserId) -> Result<Option<StoredTokens>, RepoError>;

    /// After a refresh: writes the new access token, its expiry, the scopes and, only when
    /// `Some`, the new refresh token, bumping the version, in ONE atomic update guarded by
    /// `expected`. MUST return `StaleVersion` (and write nothing) when the stored version is not
    /// `expected` or the tokens were deleted meanwhile; `NotFound` for an unknown id. Returns the
    /// new version.
    async fn store_refreshed(
        &self,
        id: UserId,
        expected: TokenVersion,
        tokens: RefreshedTokens,
    ) -> Result<TokenVersion, RepoError>;

    /// Marks the user as needing re-authorization (Spotify said `invalid_grant`, or the refresh
    /// token passed its absolute expiry), guarded by `expected` like [`Self::store_refreshed`].
    /// MUST return `StaleVersion` when the version moved on (a new login won the race).
    async fn mark_reauth_required(&self, id: UserId, expected: TokenVersion) -> Result<(), RepoError>;

    /// Deletes the stored tokens (disconnect), bumping the version. Idempotent: MUST return
    /// `Ok(())` for a user without tokens; `NotFound` for an unknown id.
    async fn delete_tokens(&self, id: UserId) -> Result<(), RepoError>;

    /// Takes the user's refresh lease for `holder` until `now + ttl` if it is free or expired
    /// (or already `holder`'s). MUST return `Busy` with the other holder's end otherwise, and
    /// `NotFound` for an unknown id. The lease makes app instances sharing the database do one
    /// upstream refresh per user at a time; its expiry stops a crashed holder blocking forever.
    async fn try_acquire_refresh_lease(
        &self,
        id: UserId,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<LeaseOutcome, RepoError>;

    /// Releases `holder`'s lease. Idempotent: MUST return `Ok(())` when `holder` holds no lease.
    async fn release_refresh_lease(&self, id: UserId, holder: &str) -> Result<(), RepoError>;

    /// Users whose access token expires before `expiring_before`, soonest first, at most
    /// `limit`: active users with stored tokens that do not need re-authorization. For the
    /// proactive refresher. MUST return an empty list, not an error, when there are none.
    async fn list_refresh_candidates(&self, expiring_before: Timestamp, limit: u32) -> Result<Vec<UserId>, RepoError>;
}

/// Spotify's rate-limit backoff, shared by every app instance: Spotify limits per client id
/// (a rolling 30 s window), so one 429 must pause the calls of every user of that client id.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait RateLimitRepository: Send + Sync + 'static {
    /// When the backoff of `client` ends. MUST return `Ok(None)` when none was ever recorded
    /// (a past instant means it is over).
    async fn backoff_until(&self, client: &str) -> Result<Option<Timestamp>, RepoError>;

    /// Extends the backoff of `client` to at least `until`, atomically; it never shortens a
    /// longer backoff another instance recorded. MUST return the end now in force.
    async fn extend_backoff(&self, client: &str, until: Timestamp) -> Result<Timestamp, RepoError>;
}

/// The session repository.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait SessionRepository: Send + Sync + 'static {
    /// Creates a session. MUST return `Conflict("session id")` when the id exists.
    async fn create(&self, session: NewSession) -> Result<Session, RepoError>;

    /// The session with this id, revoked or not. MUST return `Ok(None)` when none.
    async fn get(&self, id: SessionId) -> Result<Option<Session>, RepoError>;

    /// The session with this id, its owner and the owner's stored tokens, in one read: the hot
    /// path of every authenticated request. MUST return `Ok(None)` when no session has this id,
    /// and `owner: None` when its user row is gone; the user as `UserRepository::get` and the
    /// tokens as `UserRepository::load_tokens` would return them.
    async fn get_with_user(&self, id: SessionId) -> Result<Option<SessionView>, RepoError>;

    /// Rotation: replaces the token-id hash `expected` by `new`, sets `last_active`, atomically.
    /// MUST return `StaleVersion` (and write nothing) when the current hash is not `expected` or
    /// the session is revoked; `NotFound` for an unknown id.
    async fn rotate(
        &self,
        id: SessionId,
        expected: &TokenIdHash,
        new: &TokenIdHash,
        now: Timestamp,
    ) -> Result<Session, RepoError>;

    /// Sets `last_active`. MUST return `Ok(())` for a revoked session (no effect) and `NotFound`
    /// for an unknown id.
    async fn touch(&self, id: SessionId, now: Timestamp) -> Result<(), RepoError>;

    /// Revokes one session. Idempotent: MUST return `Ok(())` when already revoked or unknown.
    async fn revoke(&self, id: SessionId, now: Timestamp) -> Result<(), RepoError>;

    /// Revokes every live session of a user; returns how many were live.
    async fn revoke_all_for_user(&self, user_id: UserId, now: Timestamp) -> Result<u64, RepoError>;

    /// Deletes sessions that ended (revoked, or past their absolute expiry) before `before`;
    /// returns how many rows went.
    async fn purge_ended(&self, before: Timestamp) -> Result<u64, RepoError>;
}

/// Login attempts in flight (OAuth `state` → where to go after), shared by every app instance.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait LoginFlowRepository: Send + Sync + 'static {
    /// Remembers a flow, keyed by a one-way digest of its state (the state itself is never
    /// stored). MUST return `Conflict("state")` when a flow with this state exists.
    async fn create(&self, flow: NewLoginFlow) -> Result<(), RepoError>;

    /// Marks the flow with this state used and returns it, atomically: of any number of
    /// concurrent calls with one state, at most one gets `Consumed`. MUST return `Unknown` when no
    /// flow has the state, `Expired` when `now >= expires_at` (whether used or not), and
    /// `AlreadyUsed` when it was consumed before.
    async fn consume(&self, state: &OAuthState, now: Timestamp) -> Result<ConsumeOutcome, RepoError>;

    /// Deletes flows that expired before `before`; returns how many.
    async fn purge_expired(&self, before: Timestamp) -> Result<u64, RepoError>;
}

// ---------------------------------------------------------------------------------------------
// Spotify ports
// ---------------------------------------------------------------------------------------------

/// The start of one login: where to send the browser, and what to remember for the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationStart {
    /// Spotify's authorize URL with client id, redirect URI, scopes, state and PKCE challenge.
    pub authorize_url: String,
    /// The state (at least 128 random bits) to check at the callback.
    pub state: OAuthState,
    /// The PKCE verifier to send with the code.
    pub pkce_verifier: PkceVerifier,
}

/// Spotify's accounts service (OAuth 2.0 authorization code + PKCE).
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait SpotifyAccounts: Send + Sync + 'static {
    /// A fresh state and PKCE pair (S256) and the authorize URL carrying them. No IO.
    fn begin_authorization(&self) -> AuthorizationStart;

    /// Exchanges an authorization code. MUST return `ReauthRequired` for `invalid_grant` (bad,
    /// used or expired code; wrong verifier), `Misconfigured` for `invalid_client` and
    /// redirect mismatches, `RateLimited`/`Unavailable` as named.
    async fn exchange_code(
        &self,
        code: &AuthorizationCode,
        verifier: &PkceVerifier,
    ) -> Result<TokenGrant, SpotifyError>;

    /// Refreshes. MUST return `refresh_token: None` when Spotify sent none (keep the old one),
    /// `ReauthRequired` for `invalid_grant`, `RateLimited` with `Retry-After` for 429, and
    /// `Unavailable` for 5xx, timeouts and dropped connections.
    async fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenGrant, SpotifyError>;
}

/// What a player-endpoint probe says about Premium.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PremiumProbe {
    /// The player endpoint answered as it does for Premium users.
    Premium,
    /// 403 `PREMIUM_REQUIRED`.
    Free,
    /// Neither (e.g. a 404, or a 403 for a missing scope): no conclusion. Transport errors, 5xx
    /// and 429 are errors, not `Inconclusive`.
    Inconclusive,
}

/// Spotify's Web API, as far as this service reads it.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait SpotifyProfilePort: Send + Sync + 'static {
    /// `GET /v1/me`. MUST return `AccessTokenInvalid` for 401, `NotAllowListed` for a 403 of a
    /// Development Mode app, `RateLimited` for 429, `Unavailable` for 5xx/timeouts, and
    /// `product: None` when the field is absent (Development Mode since February 2026).
    async fn current_profile(&self, access_token: &AccessToken) -> Result<SpotifyProfile, SpotifyError>;

    /// Asks a player endpoint whether the user can play. MUST return `Ok(Free)` for 403
    /// `PREMIUM_REQUIRED`, `Ok(Premium)` for an answer only Premium users get, `Ok(Inconclusive)`
    /// otherwise; errors as [`Self::current_profile`].
    async fn probe_premium(&self, access_token: &AccessToken) -> Result<PremiumProbe, SpotifyError>;
}

// ---------------------------------------------------------------------------------------------
// Crypto ports
// ---------------------------------------------------------------------------------------------

/// Encryption of tokens at rest.
#[cfg_attr(test, mockall::automock)]
pub trait TokenCipher: Send + Sync + 'static {
    /// Encrypts with the primary key and a fresh nonce, bound to `binding` (row and column) and
    /// the key id. Two encryptions of one plaintext MUST differ.
    fn encrypt(&self, plaintext: &str, binding: TokenBinding) -> Result<EncryptedToken, CipherError>;

    /// Decrypts with the key the ciphertext names. MUST return `UnknownKey` when that key is not
    /// in the keyring, `Tampered` when authentication fails (any changed byte; another row or
    /// column), `Malformed` for bytes that are not a ciphertext of ours.
    fn decrypt(&self, ciphertext: &EncryptedToken, binding: TokenBinding) -> Result<Secret, CipherError>;
}

/// Issuing and verifying the service's session tokens (JWTs).
#[cfg_attr(test, mockall::automock)]
pub trait SessionTokenCodec: Send + Sync + 'static {
    /// Signs the claims. MUST only fail with `SignFailed`.
    fn issue(&self, claims: &SessionClaims) -> Result<SessionToken, SessionTokenError>;

    /// Verifies signature, algorithm, headers, issuer, audience, type and time (against `now`).
    /// MUST reject `alg=none`, any algorithm but the key's one, `jku`/`jwk`/`x5u` headers, a wrong
    /// `iss`/`aud`/`typ`, `exp <= now` (`Expired`), `nbf > now` (`NotYetValid`).
    fn verify(&self, token: &str, now: Timestamp) -> Result<SessionClaims, SessionTokenError>;

    /// The hash of a token id as stored in the session row (a one-way digest).
    fn hash_token_id(&self, token_id: &TokenId) -> TokenIdHash;
}

// ---------------------------------------------------------------------------------------------
// Environment ports
// ---------------------------------------------------------------------------------------------

/// The time.
#[cfg_attr(test, mockall::automock)]
pub trait Clock: Send + Sync + 'static {
    /// Now, in UTC.
    fn now(&self) -> Timestamp;
}

/// Fresh identifiers from a cryptographically secure source.
#[cfg_attr(test, mockall::automock)]
pub trait IdSource: Send + Sync + 'static {
    /// A new user id.
    fn new_user_id(&self) -> UserId;
    /// A new session id.
    fn new_session_id(&self) -> SessionId;
    /// A new session token id (122 random bits at least; it is what rotation changes).
    fn new_token_id(&self) -> TokenId;
}

// ---------------------------------------------------------------------------------------------
// The token-refresh port
// ---------------------------------------------------------------------------------------------

/// Hands out a valid Spotify access token for a user, refreshing it when it expires within
/// `min_validity`. The domain's [`crate::refresh::StoreRefresher`] implements it over the other
/// ports; wrappers add single flight, leases and backoff.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait TokenRefresher: Send + Sync + 'static {
    /// MUST return a token valid for at least `min_validity` when one can be had; the stored
    /// token while still valid when Spotify is unavailable or rate limiting; `ReauthRequired`
    /// when Spotify said `invalid_grant` or the refresh token is past its absolute expiry (never
    /// retrying); `NotConnected` when no tokens are stored; `Store(NotFound)` for an unknown user.
    async fn valid_access_token(&self, user: UserId, min_validity: Duration) -> Result<AccessGrant, TokenError>;

    /// [`Self::valid_access_token`] when the caller already read the user's token row (`None`:
    /// the user exists and has no tokens), e.g. in the same query as the session: the hot path
    /// of `GET /token`. MUST return what `valid_access_token` would return for that row, with
    /// the same errors (`NotConnected` for `None`); MAY serve a fresh token from it without
    /// reading the store again, and MUST read the store again before any refresh.
    async fn valid_access_token_preloaded(
        &self,
        user: UserId,
        stored: Option<StoredTokens>,
        min_validity: Duration,
    ) -> Result<AccessGrant, TokenError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_port<T: ?Sized + Send + Sync + 'static>() {}

    #[test]
    fn ports_are_object_safe_and_shareable() {
        assert_port::<dyn UserRepository>();
        assert_port::<dyn SessionRepository>();
        assert_port::<dyn LoginFlowRepository>();
        assert_port::<dyn RateLimitRepository>();
        assert_port::<dyn SpotifyAccounts>();
        assert_port::<dyn SpotifyProfilePort>();
        assert_port::<dyn TokenCipher>();
        assert_port::<dyn SessionTokenCodec>();
        assert_port::<dyn Clock>();
        assert_port::<dyn IdSource>();
        assert_port::<dyn TokenRefresher>();
    }
}
