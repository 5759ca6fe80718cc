//! Ports: the traits adapters implement. Each method's docs say what every adapter MUST return
//! in each case; the use cases in [`crate::service`] rely on exactly that.
//!
//! All ports are `Send + Sync + 'static` so one instance serves every request of every worker.

use std::time::Duration;

use async_trait::async_trait;

use crate::ids::{SessionId, TokenId, UserId};
use crate::login::{ClientKey, ConsumeOutcome, NewLoginFlow, PendingLogins, StateDigest};
use crate::secret::{AccessToken, AuthorizationCode, OAuthState, PkceVerifier, RefreshToken, Secret, SessionToken};
use crate::session::{LiveAfter, NewSession, Session, SessionClaims, SessionView, TokenIdHash};
use crate::time::Timestamp;
use crate::token::{EncryptedToken, NewTokens, RefreshedTokens, StoredTokens, TokenBinding, TokenGrant, TokenVersion};
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
    #[error("conflict: {0} already taken")]
    Conflict(UniqueKey),
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

/// The unique keys a write can collide on ([`RepoError::Conflict`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UniqueKey {
    /// A user's Spotify account key (a concurrent first login of the same account).
    AccountKey,
    /// A user id.
    UserId,
    /// A session id.
    SessionId,
    /// A session's token-id hash.
    TokenIdHash,
    /// A login flow's state digest.
    State,
}

impl std::fmt::Display for UniqueKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UniqueKey::AccountKey => "account key",
            UniqueKey::UserId => "user id",
            UniqueKey::SessionId => "session id",
            UniqueKey::TokenIdHash => "token id hash",
            UniqueKey::State => "login state",
        })
    }
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

/// What the token use case ([`crate::tokens::TokenService`]) may answer besides a valid access
/// token.
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
    /// The time of the login: `created_at` and `last_active`.
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
    /// The time of the login: `last_active`.
    pub now: Timestamp,
}

/// Outcome of asking for a user's refresh lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The caller holds the lease (until `now + ttl`).
    Acquired,
    /// Another holder's lease is live.
    Busy,
}

/// Spotify users: profile, Premium status and activity. The login writes (`insert`,
/// `update_on_login`) also write the user's new tokens, in the same row and the same statement.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync + 'static {
    /// The user with this id. MUST return `Ok(None)` when no row has it; `Unavailable` when the
    /// store cannot answer; `Corrupt` when the row cannot be read back.
    async fn get(&self, id: UserId) -> Result<Option<User>, RepoError>;

    /// The user with this Spotify account key. MUST return `Ok(None)` when none.
    async fn find_by_account_key(&self, key: &SpotifyAccountKey) -> Result<Option<User>, RepoError>;

    /// Inserts a new user with tokens, active, not needing re-authorization, token version 1,
    /// and returns it as [`Self::get`] would read it afterwards (in the same transaction).
    /// MUST return `Conflict(AccountKey)` when a row already has the account key (a concurrent
    /// first login), and `Conflict(UserId)` if the id is taken; nothing is written then.
    async fn insert(&self, user: NewUser) -> Result<User, RepoError>;

    /// A repeat login: writes profile, subscription and the new tokens, clears
    /// `reauth_required`, sets `last_active`, bumps the token version and clears any refresh
    /// lease, in one atomic update, and returns the user as written. MUST leave `is_active`
    /// as it is (an opt-out of the active list survives later logins). MUST return `NotFound`
    /// when the id has no row.
    async fn update_on_login(&self, id: UserId, update: LoginUpdate) -> Result<User, RepoError>;

    /// The users to show in the active list: `is_active` (not opted out) and with at least one
    /// session live after `live` ([`LiveAfter`], evaluated exactly as its docs say), most
    /// recently active first, then by id, with their number from the same snapshot. MUST return
    /// an empty page (with the true `total`) past the end, never an error.
    async fn list_active(&self, page: PageRequest, live: LiveAfter) -> Result<Page<User>, RepoError>;

    /// Every user [`Self::list_active`] would list under `live`, in the same order, in ONE
    /// statement (no count, no pages): what a command to everyone present needs. MUST return an
    /// empty list, not an error, when nobody is present.
    async fn list_present(&self, live: LiveAfter) -> Result<Vec<User>, RepoError>;

    /// Sets the active flag (whether the user may be listed; `false` is an opt-out that
    /// survives later logins) and `last_active` to `now`, and returns the user as written.
    /// MUST return `NotFound` for an unknown id.
    async fn set_active(&self, id: UserId, active: bool, now: Timestamp) -> Result<User, RepoError>;

    /// Records a subscription check (its time is `subscription.checked_at`) and returns the user
    /// as written. MUST return `NotFound` for an unknown id.
    async fn record_subscription(&self, id: UserId, subscription: Subscription) -> Result<User, RepoError>;

    /// Sets `last_active`. MUST return `NotFound` for an unknown id. A caching adapter MAY
    /// record it and write it later with [`Self::touch_many`].
    async fn touch(&self, id: UserId, now: Timestamp) -> Result<(), RepoError>;

    /// Sets `last_active` to `now` on each of these users whose `last_active` is earlier;
    /// unknown ids are skipped. Returns how many rows changed.
    async fn touch_many(&self, ids: &[UserId], now: Timestamp) -> Result<u64, RepoError>;

    /// Every user whose id sorts after `after` (from the first when `None`), by id, at most
    /// `limit`, as `get` returns them: for operators, who page through all of them. MUST
    /// return an empty list, not an error, past the last one.
    async fn page(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, RepoError>;

    /// Erases the user and everything stored about them, in one transaction: the user row
    /// (profile and encrypted Spotify tokens), every session, their room player, and their
    /// entries in the change journal (rewritten as erasures, `Change { user: None }`, and one
    /// more erasure appended so instances that cache sessions forget them). Afterwards no table
    /// holds the user's id. Returns whether the user existed; MUST return `Ok(false)`, not an
    /// error, for an unknown id.
    async fn erase(&self, id: UserId) -> Result<bool, RepoError>;
}

/// How current a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// An answer at most the deployment's staleness bound old is good enough: what accepting a
    /// request needs (a cache MAY answer).
    Cached,
    /// The database's answer: what every refusal, revocation and write decision needs.
    Latest,
}

/// One entry of the change journal: a write that changed what a request of `user` sees (their
/// sessions, profile, opt-out, stored tokens), recorded by the store in the same transaction as
/// the write. App instances that keep sessions in memory read the journal to forget them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Its position; positions grow with time, but a later position MAY commit (become
    /// visible) a moment before an earlier one, and a position MAY be skipped (a write rolled
    /// back).
    pub seq: u64,
    /// Whose view changed; `None` when an account was erased ([`UserRepository::erase`]): the
    /// erased user's id is stored nowhere any more, so every instance forgets every user.
    pub user: Option<UserId>,
}

/// The change journal, shared by every instance through the database.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait ChangeFeed: Send + Sync + 'static {
    /// The largest position written so far; 0 when the journal is empty. `Unavailable` when
    /// the store cannot answer.
    async fn head(&self) -> Result<u64, RepoError>;

    /// The changes after position `after`, by position, at most `limit`, in ONE statement.
    /// MUST return an empty list, not an error, when there are none.
    async fn changes_after(&self, after: u64, limit: u32) -> Result<Vec<Change>, RepoError>;

    /// Deletes the changes at or before `through`, always keeping the largest one (the
    /// position counter must not restart below it). Returns how many rows went.
    async fn purge_through(&self, through: u64) -> Result<u64, RepoError>;
}

/// A user's stored Spotify tokens, the refresh lease that serializes refreshes across
/// instances, and the list the proactive refresher works from. Every token write is a
/// compare-and-swap on the token version.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait TokenRepository: Send + Sync + 'static {
    /// The stored tokens with their version. MUST return `Err(NotFound)` for an unknown id and
    /// `Ok(None)` for a known user without tokens (disconnected).
    async fn load_tokens(&self, id: UserId) -> Result<Option<StoredTokens>, RepoError>;

    /// After a refresh: writes the new access token, its expiry and the scopes, and only when
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
    /// (or already `holder`'s). MUST return `Busy` otherwise, and `NotFound` for an unknown id.
    /// The lease makes app instances sharing the database do one upstream refresh per user at
    /// a time; its expiry stops a crashed holder blocking forever.
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
    /// `limit`: users with stored tokens that do not need re-authorization and who have a
    /// session live after `live` (nobody is refreshed for a user who is not signed in). For the
    /// proactive refresher. MUST return an empty list, not an error, when there are none.
    async fn list_refresh_candidates(
        &self,
        expiring_before: Timestamp,
        live: LiveAfter,
        limit: u32,
    ) -> Result<Vec<UserId>, RepoError>;

    /// Data lifecycle: deletes the stored tokens (as [`Self::delete_tokens`] does, bumping the
    /// version and clearing any lease) of every user who has tokens, whose `last_active` is
    /// before `live.at`, and who has no session live after `live`; returns how many users.
    /// One statement: a login or session created meanwhile keeps its tokens.
    async fn delete_tokens_of_idle_users(&self, live: LiveAfter) -> Result<u64, RepoError>;

    /// The users with stored tokens whose ids sort after `after` (from the first when `None`),
    /// by id, at most `limit`, each with the tokens `load_tokens` would return: for key audits
    /// and re-encryption, which page through every row. MUST return an empty list, not an
    /// error, past the last one.
    async fn page_tokens(&self, after: Option<UserId>, limit: u32) -> Result<Vec<(UserId, StoredTokens)>, RepoError>;

    /// The tokens written last that still serve (the latest access expiry among rows not marked
    /// for re-authorization), for the readiness canary; `None` when no user has any.
    async fn newest_tokens(&self) -> Result<Option<(UserId, StoredTokens)>, RepoError>;
}

/// Spotify's rate-limit backoff, shared by every app instance: Spotify limits per client id
/// (a rolling 30 s window), so one 429 must pause the calls of every user of that client id.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait RateLimitRepository: Send + Sync + 'static {
    /// When the backoff of `client` ends. MUST return `Ok(None)` when none was ever recorded
    /// (a past instant means it is over).
    async fn backoff_until(&self, client: &str) -> Result<Option<Timestamp>, RepoError>;

    /// Extends the backoff of `client` to at least `until`, atomically, at `now` (kept as the
    /// row's `updated_at`); it never shortens a longer backoff another instance recorded. MUST
    /// return the end now in force.
    async fn extend_backoff(&self, client: &str, until: Timestamp, now: Timestamp) -> Result<Timestamp, RepoError>;
}

/// The session repository.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait SessionRepository: Send + Sync + 'static {
    /// Creates a session and returns it as stored. MUST return `Conflict(SessionId)` when the id
    /// exists and `Conflict(TokenIdHash)` when the token-id hash does.
    async fn create(&self, session: NewSession) -> Result<Session, RepoError>;

    /// The session with this id (revoked or not), its owner and the owner's stored tokens, in
    /// one read: the hot path of every authenticated request. MUST return `Ok(None)` when no
    /// session has this id, and `owner: None` when its user row is gone; the user as
    /// `UserRepository::get` and the tokens as `TokenRepository::load_tokens` would return them.
    /// With [`Freshness::Latest`] it MUST read the database; with [`Freshness::Cached`] an
    /// adapter MAY answer from memory a view at most its staleness bound old (see
    /// docs/design/session-tokens.md), and MUST read the database otherwise.
    async fn load_view(&self, id: SessionId, freshness: Freshness) -> Result<Option<SessionView>, RepoError>;

    /// Rotation: replaces the token-id hash `expected` by `new` (whose token expires at
    /// `token_expires_at`), keeps `expected` as the previous hash with `rotated_at = now` (the
    /// grace window), sets `last_active`, atomically. MUST return `StaleVersion` (and write
    /// nothing) when the current hash is not `expected` or the session is revoked; `NotFound`
    /// for an unknown id.
    async fn rotate(
        &self,
        id: SessionId,
        expected: &TokenIdHash,
        new: &TokenIdHash,
        now: Timestamp,
        token_expires_at: Timestamp,
    ) -> Result<Session, RepoError>;

    /// Sets `last_active`. MUST return `Ok(())` for a revoked session (no effect) and `NotFound`
    /// for an unknown id. A caching adapter MAY record it and write it later with
    /// [`Self::touch_many`] (last-active times are coalesced, not written per request).
    async fn touch(&self, id: SessionId, now: Timestamp) -> Result<(), RepoError>;

    /// Sets `last_active` to `now` on each of these sessions whose `last_active` is earlier, in
    /// as few statements as the store allows; unknown ids are skipped. Returns how many rows
    /// changed.
    async fn touch_many(&self, ids: &[SessionId], now: Timestamp) -> Result<u64, RepoError>;

    /// Revokes one session. Idempotent: MUST return `Ok(())` when already revoked or unknown.
    async fn revoke(&self, id: SessionId, now: Timestamp) -> Result<(), RepoError>;

    /// Revokes (at `live.at`) every unrevoked session of the user but `keep` (when given), live
    /// or lapsed (a request that verified a token just before it lapsed, or on an instance whose
    /// clock runs behind, could still rotate a lapsed one), and returns how many of them were
    /// live after `live` ([`LiveAfter`], evaluated as its docs say), counted in the same
    /// transaction.
    async fn revoke_all_for_user(
        &self,
        user_id: UserId,
        live: LiveAfter,
        keep: Option<SessionId>,
    ) -> Result<u64, RepoError>;

    /// The user's sessions live after `live` ([`LiveAfter`], evaluated as its docs say), most
    /// recently used first (then newest first), read from the database (never from memory:
    /// the user is deciding which to end). MUST return an empty list for an unknown user.
    async fn list_for_user(&self, user_id: UserId, live: LiveAfter) -> Result<Vec<Session>, RepoError>;

    /// Deletes the sessions that are not live after `ended_before` ([`LiveAfter`], evaluated as
    /// its docs say): revoked, past their absolute end, idle past the timeout or with their
    /// token expired, all before `ended_before.at`. Returns how many rows went. Run by the
    /// housekeeping task.
    async fn purge_ended(&self, ended_before: LiveAfter) -> Result<u64, RepoError>;
}

/// Login attempts in flight (OAuth `state` → where to go after), shared by every app instance.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait LoginFlowRepository: Send + Sync + 'static {
    /// Remembers a flow, keyed by the digest of its state (the state itself is never stored).
    /// MUST return `Conflict(State)` when a flow with this digest exists.
    async fn create(&self, flow: NewLoginFlow) -> Result<(), RepoError>;

    /// Marks the flow with this state digest used and returns it, atomically: of any number of
    /// concurrent calls with one state, at most one gets `Consumed`. MUST return `Unknown` when
    /// no flow has the digest, `Expired` when `now >= expires_at` (whether used or not), and
    /// `AlreadyUsed` when it was consumed before.
    async fn consume(&self, state: &StateDigest, now: Timestamp) -> Result<ConsumeOutcome, RepoError>;

    /// Counts pending flows (not used, `expires_at > now`): those begun by `client` (0 when
    /// `None`) and all of them. MUST count in one statement per figure, never an error for none.
    async fn count_pending(&self, client: Option<ClientKey>, now: Timestamp) -> Result<PendingLogins, RepoError>;

    /// Deletes flows that expired before `before`; returns how many. Run by the housekeeping
    /// task.
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

/// Whether Spotify may log the browser in silently with the Spotify account it already knows,
/// or must show its account chooser (`show_dialog`): after a logout on a shared computer, the
/// next person must be able to pick their own account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccountPrompt {
    /// Spotify may reuse the browser's Spotify login without asking.
    #[default]
    Silent,
    /// Spotify shows its consent page with "Not you?", even to a user who approved the app.
    ChooseAccount,
}

/// Spotify's accounts service (OAuth 2.0 authorization code + PKCE).
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait SpotifyAccounts: Send + Sync + 'static {
    /// A fresh state and PKCE pair (S256) and the authorize URL carrying them, asking Spotify
    /// for its account chooser when `prompt` says so. No IO.
    fn begin_authorization(&self, prompt: AccountPrompt) -> AuthorizationStart;

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

    /// The id of the key `ciphertext` names (in the keyring or not); `None` for bytes that are
    /// not a ciphertext of ours.
    fn key_id_of(&self, ciphertext: &EncryptedToken) -> Option<String>;

    /// The id of the key [`Self::encrypt`] seals under.
    fn primary_key_id(&self) -> String;
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

    /// As [`Self::verify`] but without the time checks: the token is ours and untampered,
    /// whenever it was valid. Only for logout, which bounds the token's age itself.
    fn verify_ignoring_time(&self, token: &str) -> Result<SessionClaims, SessionTokenError>;
}

/// The one-way digests under which secrets are looked up in the store, so that a database leak
/// cannot be replayed (the secret itself is never stored).
#[cfg_attr(test, mockall::automock)]
pub trait Digests: Send + Sync + 'static {
    /// The digest of a session token id (`jti`), as kept in the session row. MUST be
    /// deterministic and differ for different ids.
    fn token_id(&self, token_id: &TokenId) -> TokenIdHash;

    /// The digest of an OAuth `state`, as kept in the login-flow row. MUST be deterministic and
    /// differ for different states.
    fn oauth_state(&self, state: &OAuthState) -> StateDigest;

    /// The id of the token that replaces `token_id` at rotation. MUST be deterministic (two
    /// rotations of one token, racing or within the grace window, name the same successor)
    /// and one-way. A token id alone is no credential: a token needs our signature.
    fn successor_token_id(&self, token_id: &TokenId) -> TokenId;
}

// ---------------------------------------------------------------------------------------------
// Environment ports
// ---------------------------------------------------------------------------------------------

/// The time, and waiting.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Clock: Send + Sync + 'static {
    /// Now, in UTC.
    fn now(&self) -> Timestamp;

    /// Returns after `duration` has passed (on this clock: a test clock MAY advance itself
    /// instead of waiting).
    async fn sleep(&self, duration: Duration);
}

/// Fresh identifiers and random draws from a cryptographically secure source.
#[cfg_attr(test, mockall::automock)]
pub trait IdSource: Send + Sync + 'static {
    /// A new user id.
    fn new_user_id(&self) -> UserId;
    /// A new session id.
    fn new_session_id(&self) -> SessionId;
    /// A new session token id (122 random bits at least; it is what rotation changes).
    fn new_token_id(&self) -> TokenId;
    /// A uniformly random duration in `[0, max]` (to spread out retries and polls).
    fn jitter(&self, max: Duration) -> Duration;
}

/// A held per-user lock; dropping it releases the lock.
pub struct UserLock {
    /// Whether another caller held the lock first (this caller waited: a single-flight join).
    pub joined: bool,
    /// Whatever the adapter needs to release the lock on drop.
    pub guard: Box<dyn Send>,
}

impl std::fmt::Debug for UserLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserLock").field("joined", &self.joined).finish_non_exhaustive()
    }
}

/// Per-user mutual exclusion inside one process: single flight for token refreshes, so the
/// callers for one user queue behind the first instead of each calling Spotify.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait UserLocks: Send + Sync + 'static {
    /// Waits until no other holder of `user`'s lock in this process remains, then holds it
    /// until the returned value is dropped. MUST set `joined` when it had to wait.
    async fn lock(&self, user: UserId) -> UserLock;
}

/// What the token use case reports as it works, for metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshEvent {
    /// An upstream refresh succeeded.
    Refreshed,
    /// An upstream refresh was answered `invalid_grant` (the user is marked for
    /// re-authorization).
    Reauth(UserId),
    /// An upstream refresh was answered 429.
    RateLimited,
    /// An upstream refresh failed with 5xx, a timeout or a dropped connection.
    Unavailable(UserId),
    /// An upstream refresh failed otherwise.
    Failed,
    /// The old, still valid token was served because Spotify could not refresh it.
    ServedStale,
    /// A refresh was not attempted because the client id is backing off.
    BackoffBlocked,
    /// A caller waited for another caller's refresh in this process.
    SingleFlightJoin,
    /// A caller polled while another instance held the user's refresh lease.
    LeaseWait,
    /// The client id's backoff (known to this instance) now ends at this instant.
    BackoffUntil(Timestamp),
    /// A refresh lease could not be released (it lapses by itself at its expiry), and why.
    LeaseNotReleased(UserId, RepoError),
}

/// Receives [`RefreshEvent`]s. MUST NOT block: it is called on the request path.
#[cfg_attr(test, mockall::automock)]
pub trait RefreshEvents: Send + Sync + 'static {
    /// Records one event.
    fn record(&self, event: RefreshEvent);
}

// Every port is usable as `Arc<dyn Port>` shared across threads (checked at compile time).
const _: fn() = || {
    fn port<T: ?Sized + Send + Sync + 'static>() {}
    port::<dyn UserRepository>();
    port::<dyn TokenRepository>();
    port::<dyn SessionRepository>();
    port::<dyn LoginFlowRepository>();
    port::<dyn RateLimitRepository>();
    port::<dyn SpotifyAccounts>();
    port::<dyn SpotifyProfilePort>();
    port::<dyn TokenCipher>();
    port::<dyn SessionTokenCodec>();
    port::<dyn Digests>();
    port::<dyn Clock>();
    port::<dyn IdSource>();
    port::<dyn UserLocks>();
    port::<dyn RefreshEvents>();
};
