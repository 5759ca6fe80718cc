//! The use cases, as one service generic over the ports.

use std::sync::Arc;
use std::time::Duration;

use crate::ids::UserId;
use crate::login::{ConsumeOutcome, LOGIN_FLOW_TTL, NewLoginFlow, ReturnTo};
use crate::ports::{
    CipherError, Clock, IdSource, LoginFlowRepository, LoginUpdate, NewUser, PremiumProbe, RepoError,
    SessionRepository, SessionTokenCodec, SessionTokenError, SpotifyAccounts, SpotifyError, SpotifyProfilePort,
    TokenCipher, TokenError, TokenRefresher, UserRepository,
};
use crate::secret::{AccessToken, AuthorizationCode, OAuthState, PkceVerifier, SessionToken};
use crate::session::{NewSession, Session, SessionClaims, SessionMeta, SessionOwner, SessionPolicy, SessionView};
use crate::time::Timestamp;
use crate::token::{
    AccessGrant, NewTokens, REFRESH_TOKEN_LIFETIME, StoredTokens, TokenBinding, TokenColumn, TokenGrant,
};
use crate::user::{
    Page, PageRequest, PremiumSource, PremiumStatus, SpotifyProfile, Subscription, User, UserFieldError,
};

/// The set of adapters a service runs on. Associated types may be `dyn` ports (the app) or
/// mocks (unit tests).
pub trait Ports: Send + Sync + 'static {
    /// User repository.
    type Users: UserRepository + ?Sized;
    /// Session repository.
    type Sessions: SessionRepository + ?Sized;
    /// Login attempts in flight.
    type Flows: LoginFlowRepository + ?Sized;
    /// Spotify accounts service.
    type Accounts: SpotifyAccounts + ?Sized;
    /// Spotify Web API.
    type Profile: SpotifyProfilePort + ?Sized;
    /// Token encryption.
    type Cipher: TokenCipher + ?Sized;
    /// Session JWTs.
    type Codec: SessionTokenCodec + ?Sized;
    /// Time.
    type Clock: Clock + ?Sized;
    /// Identifiers.
    type Ids: IdSource + ?Sized;
    /// Token refresh.
    type Refresher: TokenRefresher + ?Sized;
}

/// Every port as a trait object: what the app wires.
#[derive(Debug, Clone, Copy)]
pub struct DynPorts;

impl Ports for DynPorts {
    type Users = dyn UserRepository;
    type Sessions = dyn SessionRepository;
    type Flows = dyn LoginFlowRepository;
    type Accounts = dyn SpotifyAccounts;
    type Profile = dyn SpotifyProfilePort;
    type Cipher = dyn TokenCipher;
    type Codec = dyn SessionTokenCodec;
    type Clock = dyn Clock;
    type Ids = dyn IdSource;
    type Refresher = dyn TokenRefresher;
}

/// The adapters themselves.
pub struct Adapters<P: Ports> {
    /// User repository.
    pub users: Arc<P::Users>,
    /// Session repository.
    pub sessions: Arc<P::Sessions>,
    /// Login attempts in flight.
    pub flows: Arc<P::Flows>,
    /// Spotify accounts service.
    pub accounts: Arc<P::Accounts>,
    /// Spotify Web API.
    pub profile: Arc<P::Profile>,
    /// Token encryption.
    pub cipher: Arc<P::Cipher>,
    /// Session JWTs.
    pub codec: Arc<P::Codec>,
    /// Time.
    pub clock: Arc<P::Clock>,
    /// Identifiers.
    pub ids: Arc<P::Ids>,
    /// Token refresh.
    pub refresher: Arc<P::Refresher>,
}

impl<P: Ports> std::fmt::Debug for Adapters<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapters").finish_non_exhaustive()
    }
}

impl<P: Ports> Clone for Adapters<P> {
    fn clone(&self) -> Self {
        Adapters {
            users: self.users.clone(),
            sessions: self.sessions.clone(),
            flows: self.flows.clone(),
            accounts: self.accounts.clone(),
            profile: self.profile.clone(),
            cipher: self.cipher.clone(),
            codec: self.codec.clone(),
            clock: self.clock.clone(),
            ids: self.ids.clone(),
            refresher: self.refresher.clone(),
        }
    }
}

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
}

impl Default for ServicePolicy {
    fn default() -> Self {
        ServicePolicy {
            session: SessionPolicy::default(),
            require_premium_for_login: false,
            subscription_ttl: Duration::from_secs(24 * 3600),
            access_token_min_validity: Duration::from_secs(300),
        }
    }
}

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
}

impl LoginRejected {
    /// Stable code for the frontend.
    pub fn code(self) -> &'static str {
        match self {
            LoginRejected::StateMissing => "state_missing",
            LoginRejected::StateMismatch => "state_mismatch",
            LoginRejected::StateUnknown => "state_unknown",
            LoginRejected::Expired => "login_expired",
            LoginRejected::AlreadyUsed => "state_reused",
        }
    }
}

/// What the OAuth callback carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackInput {
    /// The `state` query parameter.
    pub state: Option<OAuthState>,
    /// The code, or Spotify's `error` value (e.g. `access_denied`).
    pub outcome: Result<AuthorizationCode, String>,
    /// The state and PKCE verifier this browser's login cookie holds.
    pub bound: Option<(OAuthState, PkceVerifier)>,
    /// Where the session comes from.
    pub meta: SessionMeta,
}

/// A started login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginStart {
    /// Where to send the browser.
    pub authorize_url: String,
    /// The state to bind to the browser.
    pub state: OAuthState,
    /// The PKCE verifier to bind to the browser.
    pub pkce_verifier: PkceVerifier,
    /// When the attempt lapses.
    pub expires_at: Timestamp,
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

/// A freshly issued session token and its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedSession {
    /// The session row.
    pub session: Session,
    /// The token to hand to the browser.
    pub token: SessionToken,
    /// When the token expires.
    pub token_expires_at: Timestamp,
}

/// A completed login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    /// The connected user.
    pub user: User,
    /// Their new session.
    pub issued: IssuedSession,
}

/// A verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The user.
    pub user: User,
    /// The session.
    pub session: Session,
    /// The verified claims.
    pub claims: SessionClaims,
    /// The user's stored Spotify tokens (encrypted), read with the session; `None` when none.
    pub tokens: Option<StoredTokens>,
}

/// The use cases of the service.
pub struct AuthService<P: Ports> {
    ports: Adapters<P>,
    policy: ServicePolicy,
}

impl<P: Ports> std::fmt::Debug for AuthService<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl<P: Ports> AuthService<P> {
    /// Wires the service.
    pub fn new(ports: Adapters<P>, policy: ServicePolicy) -> Self {
        AuthService { ports, policy }
    }

    /// The rules in force.
    pub fn policy(&self) -> &ServicePolicy {
        &self.policy
    }

    /// The adapters (for callers that need a port directly, e.g. the clock).
    pub fn adapters(&self) -> &Adapters<P> {
        &self.ports
    }

    /// Starts a login: a fresh state and PKCE pair, the authorize URL, and a login-flow record
    /// (shared by every instance) so the callback can be checked and used once.
    pub async fn begin_login(&self, return_to: Option<ReturnTo>) -> Result<LoginStart, AuthError> {
        let start = self.ports.accounts.begin_authorization();
        let now = self.ports.clock.now();
        let expires_at = now.plus(LOGIN_FLOW_TTL);
        let flow = NewLoginFlow { state: start.state.clone(), return_to, created_at: now, expires_at };
        self.ports.flows.create(flow).await?;
        Ok(LoginStart {
            authorize_url: start.authorize_url,
            state: start.state,
            pkce_verifier: start.pkce_verifier,
            expires_at,
        })
    }

    /// Completes a login from the OAuth callback. The state must be present, equal to the one
    /// bound to this browser, and belong to a live, unused login attempt, which is then spent;
    /// only then is the code exchanged and the user connected (see [`Self::connect`]).
    pub async fn complete_login(&self, input: CallbackInput) -> Result<(LoggedIn, Option<ReturnTo>), AuthError> {
        let (Some(state), Some((bound_state, verifier))) = (input.state, input.bound) else {
            return Err(LoginRejected::StateMissing.into());
        };
        if state != bound_state {
            return Err(LoginRejected::StateMismatch.into());
        }
        let flow = match self.ports.flows.consume(&state, self.ports.clock.now()).await? {
            ConsumeOutcome::Consumed(flow) => flow,
            ConsumeOutcome::Unknown => return Err(LoginRejected::StateUnknown.into()),
            ConsumeOutcome::Expired => return Err(LoginRejected::Expired.into()),
            ConsumeOutcome::AlreadyUsed => return Err(LoginRejected::AlreadyUsed.into()),
        };
        let code = input.outcome.map_err(AuthError::AuthorizationDeclined)?;
        let grant = self.ports.accounts.exchange_code(&code, &verifier).await?;
        let profile = self.ports.profile.current_profile(&grant.access_token).await?;
        let logged_in = self.connect(grant, profile, input.meta).await?;
        Ok((logged_in, flow.return_to))
    }

    /// Connects a user from an OAuth callback result: settles Premium, upserts the user with
    /// encrypted tokens (a new authorization: the 6-month refresh clock restarts and any
    /// re-authorization mark clears), and creates a session.
    pub async fn connect(
        &self,
        grant: TokenGrant,
        profile: SpotifyProfile,
        meta: SessionMeta,
    ) -> Result<LoggedIn, AuthError> {
        let refresh_token = grant.refresh_token.clone().ok_or_else(|| {
            AuthError::Spotify(SpotifyError::Protocol("code exchange returned no refresh_token".into()))
        })?;
        let account_key = profile.account_key()?;
        let subscription = self.settle_premium(&profile, &grant.access_token).await;
        if self.policy.require_premium_for_login && subscription.status == PremiumStatus::Free {
            return Err(AuthError::PremiumRequired);
        }
        let now = self.ports.clock.now();
        // Two attempts: a concurrent first login of the same account may insert between our
        // lookup and our insert; then we update the row it made.
        let mut user = None;
        for _ in 0..2 {
            let existing = self.ports.users.find_by_account_key(&account_key).await?;
            let id = existing.as_ref().map(|u| u.id).unwrap_or_else(|| self.ports.ids.new_user_id());
            let tokens = NewTokens {
                access_token: self
                    .ports
                    .cipher
                    .encrypt(grant.access_token.expose(), TokenBinding { user_id: id, column: TokenColumn::Access })?,
                refresh_token: self
                    .ports
                    .cipher
                    .encrypt(refresh_token.expose(), TokenBinding { user_id: id, column: TokenColumn::Refresh })?,
                access_expires_at: grant.access_expires_at,
                refresh_expires_at: now.plus(REFRESH_TOKEN_LIFETIME),
                scopes: grant.scopes.clone(),
            };
            let result = match existing {
                Some(_) => {
                    let update = LoginUpdate {
                        spotify_id: profile.spotify_id.clone(),
                        display_name: profile.display_name.clone(),
                        subscription: subscription.clone(),
                        tokens,
                        now,
                    };
                    self.ports.users.update_on_login(id, update).await
                }
                None => {
                    let new = NewUser {
                        id,
                        account_key: account_key.clone(),
                        spotify_id: profile.spotify_id.clone(),
                        display_name: profile.display_name.clone(),
                        subscription: subscription.clone(),
                        tokens,
                        now,
                    };
                    self.ports.users.insert(new).await
                }
            };
            match result {
                Ok(u) => {
                    user = Some(u);
                    break;
                }
                Err(RepoError::Conflict(_) | RepoError::NotFound) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let user = user.ok_or(AuthError::Store(RepoError::Conflict("account key")))?;
        let issued = self.create_session(user.id, meta, now).await?;
        Ok(LoggedIn { user, issued })
    }

    /// Premium from `product` when Spotify sent it; else from a player probe; else unknown.
    async fn settle_premium(&self, profile: &SpotifyProfile, access: &AccessToken) -> Subscription {
        let now = self.ports.clock.now();
        if let Some(product) = &profile.product {
            return Subscription {
                status: PremiumStatus::from_product(product),
                product: Some(product.clone()),
                source: PremiumSource::Profile,
                checked_at: Some(now),
            };
        }
        let (status, source) = match self.ports.profile.probe_premium(access).await {
            Ok(PremiumProbe::Premium) => (PremiumStatus::Premium, PremiumSource::PlayerProbe),
            Ok(PremiumProbe::Free) => (PremiumStatus::Free, PremiumSource::PlayerProbe),
            // No conclusion is not an answer: stay unknown, never guess.
            Ok(PremiumProbe::Inconclusive) | Err(_) => (PremiumStatus::Unknown, PremiumSource::None),
        };
        Subscription { status, product: None, source, checked_at: Some(now) }
    }

    async fn create_session(
        &self,
        user_id: UserId,
        meta: SessionMeta,
        now: Timestamp,
    ) -> Result<IssuedSession, AuthError> {
        let token_id = self.ports.ids.new_token_id();
        let new = NewSession {
            id: self.ports.ids.new_session_id(),
            user_id,
            token_id_hash: self.ports.codec.hash_token_id(&token_id),
            created_at: now,
            expires_at: now.plus(self.policy.session.absolute_timeout),
            meta,
        };
        let session = self.ports.sessions.create(new).await?;
        self.issue_token(session, token_id, now)
    }

    fn issue_token(
        &self,
        session: Session,
        token_id: crate::ids::TokenId,
        now: Timestamp,
    ) -> Result<IssuedSession, AuthError> {
        let expires_at = now.plus(self.policy.session.token_ttl).min(session.expires_at);
        let claims =
            SessionClaims { session_id: session.id, user_id: session.user_id, token_id, issued_at: now, expires_at };
        let token = self.ports.codec.issue(&claims).map_err(|_| AuthError::SessionIssue)?;
        Ok(IssuedSession { session, token, token_expires_at: expires_at })
    }

    /// Verifies a session token against its session row: signature and claims, revocation,
    /// idle and absolute timeouts, and reuse of a rotated-out token (which revokes the session).
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated, AuthError> {
        let now = self.ports.clock.now();
        let claims = self.ports.codec.verify(token, now).map_err(Unauthenticated::Token)?;
        let SessionView { session, owner } =
            self.ports.sessions.get_with_user(claims.session_id).await?.ok_or(Unauthenticated::UnknownSession)?;
        if session.user_id != claims.user_id {
            return Err(Unauthenticated::UnknownSession.into());
        }
        if session.revoked_at.is_some() {
            return Err(Unauthenticated::Revoked.into());
        }
        if now >= session.expires_at || now.since(session.last_active) > self.policy.session.idle_timeout {
            self.ports.sessions.revoke(session.id, now).await?;
            return Err(Unauthenticated::Expired.into());
        }
        if self.ports.codec.hash_token_id(&claims.token_id) != session.token_id_hash {
            self.ports.sessions.revoke(session.id, now).await?;
            return Err(Unauthenticated::Reused.into());
        }
        let SessionOwner { user, tokens } = owner.ok_or(Unauthenticated::UnknownSession)?;
        if now.since(session.last_active) >= self.policy.session.touch_interval {
            self.ports.sessions.touch(session.id, now).await?;
            self.ports.users.touch(user.id, now).await?;
        }
        Ok(Authenticated { user, session, claims, tokens })
    }

    /// Rotates the session's token: the presented token dies, a new one is issued. A token that
    /// was already rotated out (or loses a concurrent rotation) revokes the whole session.
    pub async fn rotate_session(&self, token: &str) -> Result<(User, IssuedSession), AuthError> {
        let auth = self.authenticate(token).await?;
        let now = self.ports.clock.now();
        let token_id = self.ports.ids.new_token_id();
        let new_hash = self.ports.codec.hash_token_id(&token_id);
        match self.ports.sessions.rotate(auth.session.id, &auth.session.token_id_hash, &new_hash, now).await {
            Ok(session) => Ok((auth.user, self.issue_token(session, token_id, now)?)),
            Err(RepoError::StaleVersion) => {
                self.ports.sessions.revoke(auth.session.id, now).await?;
                Err(Unauthenticated::Reused.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Logs out and disconnects: revokes every session of the user, deletes the stored Spotify
    /// tokens and clears the active flag. Idempotent: a token that no longer authenticates is
    /// already logged out.
    pub async fn log_out(&self, token: &str) -> Result<(), AuthError> {
        let auth = match self.authenticate(token).await {
            Ok(auth) => auth,
            Err(AuthError::Unauthenticated(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let now = self.ports.clock.now();
        self.ports.sessions.revoke_all_for_user(auth.user.id, now).await?;
        self.ports.users.delete_tokens(auth.user.id).await?;
        match self.ports.users.set_active(auth.user.id, false, now).await {
            Ok(_) | Err(RepoError::NotFound) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A user by id.
    pub async fn user(&self, id: UserId) -> Result<User, AuthError> {
        self.ports.users.get(id).await?.ok_or(AuthError::UserNotFound)
    }

    /// Active users, most recently active first.
    pub async fn list_active_users(&self, page: PageRequest) -> Result<Page<User>, AuthError> {
        Ok(self.ports.users.list_active(page).await?)
    }

    /// Sets a user's active flag.
    pub async fn set_active(&self, id: UserId, active: bool) -> Result<User, AuthError> {
        let now = self.ports.clock.now();
        match self.ports.users.set_active(id, active, now).await {
            Err(RepoError::NotFound) => Err(AuthError::UserNotFound),
            other => Ok(other?),
        }
    }

    /// The user's subscription; re-checked with Spotify when older than the policy's TTL or
    /// when `force` is set.
    pub async fn check_subscription(&self, id: UserId, force: bool) -> Result<Subscription, AuthError> {
        let user = self.user(id).await?;
        self.subscription_of(user, force).await
    }

    /// [`Self::check_subscription`] for an authenticated request, whose user was read with the
    /// session: a fresh subscription costs no further read.
    pub async fn check_subscription_for(&self, auth: Authenticated, force: bool) -> Result<Subscription, AuthError> {
        self.subscription_of(auth.user, force).await
    }

    async fn subscription_of(&self, user: User, force: bool) -> Result<Subscription, AuthError> {
        let id = user.id;
        let now = self.ports.clock.now();
        let fresh = user.subscription.checked_at.is_some_and(|t| now.since(t) < self.policy.subscription_ttl);
        if fresh && !force {
            return Ok(user.subscription);
        }
        let grant = self.ports.refresher.valid_access_token(id, self.policy.access_token_min_validity).await?;
        let profile = self.ports.profile.current_profile(&grant.access_token).await?;
        let subscription = self.settle_premium(&profile, &grant.access_token).await;
        match self.ports.users.record_subscription(id, subscription).await {
            Ok(user) => Ok(user.subscription),
            Err(RepoError::NotFound) => Err(AuthError::UserNotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// A valid Spotify access token for the user's Web Playback SDK. Refused with
    /// `PremiumRequired` for a user known to be free; refreshed only when near expiry.
    pub async fn playback_token(&self, id: UserId) -> Result<AccessGrant, AuthError> {
        let user = self.user(id).await?;
        if user.subscription.status == PremiumStatus::Free {
            return Err(AuthError::PremiumRequired);
        }
        self.access_token(user.id).await
    }

    /// [`Self::playback_token`] for an authenticated request: the user and their token row were
    /// read with the session, so a fresh token costs no further read (and the row is moved, not
    /// copied).
    pub async fn playback_token_for(&self, auth: Authenticated) -> Result<AccessGrant, AuthError> {
        if auth.user.subscription.status == PremiumStatus::Free {
            return Err(AuthError::PremiumRequired);
        }
        let min_validity = self.policy.access_token_min_validity;
        Ok(self.ports.refresher.valid_access_token_preloaded(auth.user.id, auth.tokens, min_validity).await?)
    }

    /// A valid Spotify access token for the user, whatever their plan.
    pub async fn access_token(&self, id: UserId) -> Result<AccessGrant, AuthError> {
        Ok(self.ports.refresher.valid_access_token(id, self.policy.access_token_min_validity).await?)
    }
}
