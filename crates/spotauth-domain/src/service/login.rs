//! Logging in: the OAuth start, the callback, and connecting the user.

use std::time::Duration;

use crate::login::{ClientKey, ConsumeOutcome, LOGIN_FLOW_TTL, NewLoginFlow, ReturnTo};
use crate::ports::{AccountPrompt, LoginUpdate, NewUser, PremiumProbe, RepoError, SpotifyError, TokenError, UniqueKey};
use crate::secret::{AccessToken, AuthorizationCode, OAuthState, PkceVerifier};
use crate::session::SessionMeta;
use crate::time::Timestamp;
use crate::token::{NewTokens, REFRESH_TOKEN_LIFETIME, TokenBinding, TokenColumn, TokenGrant};
use crate::user::{PremiumSource, PremiumStatus, SpotifyProfile, Subscription, User};

use super::session::IssuedSession;
use super::{AuthError, AuthService, LoginRejected};

/// The retry hint of `TooManyLogins`: pending attempts lapse over `LOGIN_FLOW_TTL`, and a
/// minute frees some of them under any steady flow.
const TOO_MANY_LOGINS_RETRY: Duration = Duration::from_secs(60);

/// What the OAuth callback brought, and what the browser's login cookie holds.
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
    /// When the attempt began.
    pub started_at: Timestamp,
    /// When the attempt lapses.
    pub expires_at: Timestamp,
}

/// A completed login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    /// The connected user.
    pub user: User,
    /// Their new session.
    pub issued: IssuedSession,
    /// Where the frontend asked to go after login.
    pub return_to: Option<ReturnTo>,
}

impl AuthService {
    /// Starts a login: a fresh state and PKCE pair, the authorize URL, and a login-flow record
    /// (shared by every instance) so the callback can be checked and used once. Refused with
    /// `TooManyLogins` while `client` (or everyone) has as many pending attempts as
    /// [`crate::login::LoginLimits`] allows, so no request rate grows the table without bound.
    /// `prompt` says whether Spotify must show its account chooser (after a logout in this
    /// browser).
    pub async fn begin_login(
        &self,
        return_to: Option<ReturnTo>,
        client: Option<ClientKey>,
        prompt: AccountPrompt,
    ) -> Result<LoginStart, AuthError> {
        let now = self.ports.clock.now();
        let pending = self.ports.flows.count_pending(client.clone(), now).await?;
        let limits = self.policy.login;
        if pending.client >= limits.pending_per_client || pending.total >= limits.pending_total {
            return Err(AuthError::TooManyLogins { retry_after: TOO_MANY_LOGINS_RETRY });
        }
        let start = self.ports.accounts.begin_authorization(prompt);
        let expires_at = now.plus(LOGIN_FLOW_TTL);
        let state = self.ports.digests.oauth_state(&start.state);
        self.ports.flows.create(NewLoginFlow { state, client, return_to, created_at: now, expires_at }).await?;
        Ok(LoginStart {
            authorize_url: start.authorize_url,
            state: start.state,
            pkce_verifier: start.pkce_verifier,
            started_at: now,
            expires_at,
        })
    }

    /// Completes a login from the OAuth callback. The state must be present, equal to the one
    /// bound to this browser, and belong to a live, unused login attempt, which is then spent;
    /// only then is the code exchanged and the user connected.
    pub async fn complete_login(&self, input: CallbackInput) -> Result<LoggedIn, AuthError> {
        let (Some(state), Some((bound_state, verifier))) = (input.state, input.bound) else {
            return Err(LoginRejected::StateMissing.into());
        };
        if state != bound_state {
            return Err(LoginRejected::StateMismatch.into());
        }
        let digest = self.ports.digests.oauth_state(&state);
        let flow = match self.ports.flows.consume(&digest, self.ports.clock.now()).await? {
            ConsumeOutcome::Consumed(flow) => flow,
            ConsumeOutcome::Unknown => return Err(LoginRejected::StateUnknown.into()),
            ConsumeOutcome::Expired => return Err(LoginRejected::Expired.into()),
            ConsumeOutcome::AlreadyUsed => return Err(LoginRejected::AlreadyUsed.into()),
        };
        let code = input.outcome.map_err(AuthError::AuthorizationDeclined)?;
        // Every Spotify call of a login respects (and feeds) the backoff refreshes share, so
        // junk callbacks cannot spend the quota every user's refresh depends on.
        let grant = match self.tokens.under_backoff(self.ports.accounts.exchange_code(&code, &verifier)).await {
            Ok(grant) => grant,
            Err(TokenError::Spotify(SpotifyError::ReauthRequired)) => return Err(LoginRejected::CodeRefused.into()),
            Err(e) => return Err(e.into()),
        };
        let profile = self.tokens.under_backoff(self.ports.profile.current_profile(&grant.access_token)).await?;
        let (user, issued) = self.connect(grant, profile, input.meta).await?;
        Ok(LoggedIn { user, issued, return_to: flow.return_to })
    }

    /// Connects a user from a code exchange: settles Premium, upserts the user with encrypted
    /// tokens (a new authorization: the 6-month refresh clock restarts and any
    /// re-authorization mark clears), and creates a session.
    pub(crate) async fn connect(
        &self,
        grant: TokenGrant,
        profile: SpotifyProfile,
        meta: SessionMeta,
    ) -> Result<(User, IssuedSession), AuthError> {
        let refresh_token = grant.refresh_token.clone().ok_or_else(|| {
            AuthError::Spotify(SpotifyError::Protocol("code exchange returned no refresh_token".into()))
        })?;
        let account_key = profile.account_key()?;
        let subscription = self.settle_premium(&profile, &grant.access_token).await;
        if self.policy.require_premium_for_login && subscription.status == PremiumStatus::Free {
            return Err(AuthError::PremiumRequired);
        }
        let now = self.ports.clock.now();
        let cipher = &self.ports.cipher;
        // Two attempts: a concurrent first login of the same account may insert between our
        // lookup and our insert; then we update the row it made.
        for _ in 0..2 {
            let existing = self.ports.users.find_by_account_key(&account_key).await?;
            let id = existing.as_ref().map(|u| u.id).unwrap_or_else(|| self.ports.ids.new_user_id());
            let bind = |column| TokenBinding { user_id: id, column };
            let tokens = NewTokens {
                access_token: cipher.encrypt(grant.access_token.expose(), bind(TokenColumn::Access))?,
                refresh_token: cipher.encrypt(refresh_token.expose(), bind(TokenColumn::Refresh))?,
                access_expires_at: grant.access_expires_at,
                refresh_expires_at: now.plus(REFRESH_TOKEN_LIFETIME),
                scopes: grant.scopes.clone(),
            };
            let spotify_id = profile.spotify_id.clone();
            let display_name = profile.display_name.clone();
            let subscription = subscription.clone();
            let written = match existing {
                Some(_) => {
                    let update = LoginUpdate { spotify_id, display_name, subscription, tokens, now };
                    self.ports.users.update_on_login(id, update).await
                }
                None => {
                    let account_key = account_key.clone();
                    let new = NewUser { id, account_key, spotify_id, display_name, subscription, tokens, now };
                    self.ports.users.insert(new).await
                }
            };
            match written {
                Ok(user) => {
                    let issued = self.create_session(user.id, meta, now).await?;
                    return Ok((user, issued));
                }
                Err(RepoError::Conflict(_) | RepoError::NotFound) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AuthError::Store(RepoError::Conflict(UniqueKey::AccountKey)))
    }

    /// Premium from `product` when Spotify sent it; else from a player probe; else unknown.
    pub(super) async fn settle_premium(&self, profile: &SpotifyProfile, access: &AccessToken) -> Subscription {
        let now = self.ports.clock.now();
        if let Some(product) = &profile.product {
            return Subscription {
                status: PremiumStatus::from_product(product),
                product: Some(product.clone()),
                source: PremiumSource::Profile,
                checked_at: Some(now),
            };
        }
        let (status, source) = match self.tokens.under_backoff(self.ports.profile.probe_premium(access)).await {
            Ok(PremiumProbe::Premium) => (PremiumStatus::Premium, PremiumSource::PlayerProbe),
            Ok(PremiumProbe::Free) => (PremiumStatus::Free, PremiumSource::PlayerProbe),
            // No conclusion is not an answer: stay unknown, never guess.
            Ok(PremiumProbe::Inconclusive) | Err(_) => (PremiumStatus::Unknown, PremiumSource::None),
        };
        Subscription { status, product: None, source, checked_at: Some(now) }
    }
}
