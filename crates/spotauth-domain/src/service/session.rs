//! App sessions: issuing, authenticating, rotating, logging out, and purging what ended.

use crate::ids::{SessionId, TokenId, UserId};
use crate::ports::{Freshness, RepoError, SessionTokenError};
use crate::secret::SessionToken;
use crate::session::{NewSession, Session, SessionClaims, SessionMeta, SessionOwner, SessionView, TokenIdHash};
use crate::time::Timestamp;
use crate::token::StoredTokens;
use crate::user::User;

use super::account::ServedToken;
use super::{AuthError, AuthService, Unauthenticated};

/// A freshly issued session token and its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedSession {
    /// The session row.
    pub session: Session,
    /// The token to hand to the browser.
    pub token: SessionToken,
    /// When the token was issued.
    pub issued_at: Timestamp,
    /// When the token expires.
    pub token_expires_at: Timestamp,
}

/// A verified request: its user and session, and the user's stored tokens read with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The user.
    pub user: User,
    /// The session.
    pub session: Session,
    /// The user's stored Spotify tokens (encrypted), read with the session; `None` when none.
    pub tokens: Option<StoredTokens>,
    /// The presented token was rotated out moments ago and is accepted within the rotation
    /// grace window; rotating it again yields the session's current token, not a new one.
    pub superseded: bool,
}

/// A rotated session and the Spotify access token handed out with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshedSession {
    /// The new session token: the presented one is dead, so this must reach the client even
    /// when no access token can be had.
    pub issued: IssuedSession,
    /// A valid Spotify access token for the user (whatever their plan), or why there is none.
    pub token: Result<ServedToken, AuthError>,
}

/// What [`AuthService::judge`] made of a view: let the request in, or refuse it (and whether
/// the refusal revokes the session: a timeout or a reused token).
enum Verdict {
    Accept(Box<Authenticated>),
    Refuse(Unauthenticated, bool),
}

/// What one housekeeping pass deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Housekeeping {
    /// Ended sessions past their retention.
    pub sessions: u64,
    /// Lapsed login attempts past their retention.
    pub login_flows: u64,
    /// Users whose Spotify tokens were deleted: no live session for the token retention.
    pub disconnected_users: u64,
}

/// What a logout ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutScope {
    /// Log out this device: only the presented token's session ends. Spotify stays connected
    /// for the user's other sessions (and is disconnected by the data lifecycle once none is
    /// live for the token retention).
    Device,
    /// Disconnect Spotify everywhere: every session of the user ends and the stored Spotify
    /// tokens are deleted at once.
    Everywhere,
}

/// What a logout did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogoutOutcome {
    /// The scope asked for.
    pub scope: LogoutScope,
    /// How many sessions were live and are now ended (0 when the token's session had already
    /// ended).
    pub sessions_ended: u64,
    /// Whether the stored Spotify tokens were deleted.
    pub spotify_disconnected: bool,
}

impl AuthService {
    pub(super) async fn create_session(
        &self,
        user_id: UserId,
        meta: SessionMeta,
        now: Timestamp,
    ) -> Result<IssuedSession, AuthError> {
        let token_id = self.ports.ids.new_token_id();
        let expires_at = now.plus(self.policy.session.absolute_timeout);
        let token_expires_at = self.policy.session.token_expiry(now, expires_at);
        let new = NewSession {
            id: self.ports.ids.new_session_id(),
            user_id,
            token_id_hash: self.ports.digests.token_id(&token_id),
            created_at: now,
            expires_at,
            token_expires_at,
            meta,
        };
        let session = self.ports.sessions.create(new).await?;
        self.issue_token(session, token_id, now, token_expires_at)
    }

    fn issue_token(
        &self,
        session: Session,
        token_id: TokenId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<IssuedSession, AuthError> {
        let claims =
            SessionClaims { session_id: session.id, user_id: session.user_id, token_id, issued_at: now, expires_at };
        let token = self.ports.codec.issue(&claims).map_err(|_| AuthError::SessionIssue)?;
        Ok(IssuedSession { session, token, issued_at: now, token_expires_at: expires_at })
    }

    /// Verifies a session token against its session row: signature and claims, revocation,
    /// idle and absolute timeouts, and reuse of a rotated-out token (which revokes the session)
    /// unless it was rotated out within the grace window. `last_active` of the session and the
    /// user is written at most once per touch interval.
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated, AuthError> {
        Ok(self.verify_session(token, Freshness::Cached).await?.0)
    }

    /// [`Self::authenticate`], also returning the verified claims. A view the store answers from
    /// memory (at most its staleness bound old) may only let a request in: every refusal, and
    /// the revocation a refusal may bring, is decided on the database's latest view, and so is
    /// everything when `freshness` is `Latest` (a rotation: reuse detection stays exact).
    async fn verify_session(
        &self,
        token: &str,
        freshness: Freshness,
    ) -> Result<(Authenticated, SessionClaims), AuthError> {
        let now = self.ports.clock.now();
        let claims = self.ports.codec.verify(token, now).map_err(Unauthenticated::Token)?;
        let view = self.ports.sessions.load_view(claims.session_id, freshness).await?;
        let verdict = match self.judge(view, &claims, now) {
            Verdict::Refuse(..) if freshness == Freshness::Cached => {
                let latest = self.ports.sessions.load_view(claims.session_id, Freshness::Latest).await?;
                self.judge(latest, &claims, now)
            }
            verdict => verdict,
        };
        let auth = match verdict {
            Verdict::Accept(auth) => auth,
            Verdict::Refuse(reason, revoke) => {
                if revoke {
                    self.ports.sessions.revoke(claims.session_id, now).await?;
                }
                return Err(reason.into());
            }
        };
        if now.since(auth.session.last_active) >= self.policy.session.touch_interval {
            self.ports.sessions.touch(auth.session.id, now).await?;
            self.ports.users.touch(auth.user.id, now).await?;
        }
        Ok((*auth, claims))
    }

    /// The rules a session must pass, on one view of it: revoked, timed out, reused.
    fn judge(&self, view: Option<SessionView>, claims: &SessionClaims, now: Timestamp) -> Verdict {
        let Some(SessionView { session, owner }) = view else {
            return Verdict::Refuse(Unauthenticated::UnknownSession, false);
        };
        if session.user_id != claims.user_id {
            return Verdict::Refuse(Unauthenticated::UnknownSession, false);
        }
        if session.revoked_at.is_some() {
            return Verdict::Refuse(Unauthenticated::Revoked, false);
        }
        if !session.is_live(self.policy.session.live_after(now)) {
            return Verdict::Refuse(Unauthenticated::Expired, true);
        }
        let presented = self.ports.digests.token_id(&claims.token_id);
        let superseded = presented != session.token_id_hash;
        if superseded && !self.within_grace(&session, &presented, now) {
            return Verdict::Refuse(Unauthenticated::Reused, true);
        }
        let Some(SessionOwner { user, tokens }) = owner else {
            return Verdict::Refuse(Unauthenticated::UnknownSession, false);
        };
        Verdict::Accept(Box::new(Authenticated { user, session, tokens, superseded }))
    }

    /// Whether `presented` is the token rotated out last, less than the grace window ago.
    fn within_grace(&self, session: &Session, presented: &TokenIdHash, now: Timestamp) -> bool {
        session.previous_token_id_hash.as_ref() == Some(presented)
            && session.rotated_at.is_some_and(|at| now.since(at) < self.policy.session.rotation_grace)
    }

    /// Rotates the session's token (the presented token dies, a new one is issued) and hands
    /// out a Spotify access token with it. The successor's id is derived from the presented
    /// one, so two rotations of one token (racing, or the second within the grace window)
    /// both hand out the session's current token instead of revoking it; any other presentation
    /// of a rotated-out token revokes the whole session.
    pub async fn refresh_session(&self, token: &str) -> Result<RefreshedSession, AuthError> {
        let (auth, claims) = self.verify_session(token, Freshness::Latest).await?;
        let now = self.ports.clock.now();
        let successor = self.ports.digests.successor_token_id(&claims.token_id);
        let successor_hash = self.ports.digests.token_id(&successor);
        let token_expires_at = self.policy.session.token_expiry(now, auth.session.expires_at);
        let session = if auth.superseded {
            self.current_successor(auth.session.clone(), &successor_hash, now).await?
        } else {
            let (id, current) = (auth.session.id, &auth.session.token_id_hash);
            let rotated = self.ports.sessions.rotate(id, current, &successor_hash, now, token_expires_at).await;
            match rotated {
                Ok(session) => session,
                // A concurrent rotation of the same token won; it rotated to the same successor.
                Err(RepoError::StaleVersion) => {
                    let view = self.ports.sessions.load_view(auth.session.id, Freshness::Latest).await?;
                    let current = view.map(|v| v.session).ok_or(Unauthenticated::UnknownSession)?;
                    self.current_successor(current, &successor_hash, now).await?
                }
                Err(e) => return Err(e.into()),
            }
        };
        // The session's current token, as stored: a repeat of a rotation hands out a token that
        // expires when the stored one does, so the row keeps saying when the session ends.
        let expires_at = session.token_expires_at.unwrap_or(token_expires_at);
        let issued = self.issue_token(session, successor, now, expires_at)?;
        let token = self.access_token_given(auth.user.id, auth.tokens).await;
        Ok(RefreshedSession { issued, token })
    }

    /// The session when its current token is `successor` (the presented token's rotation
    /// already happened); otherwise the presented token is reuse and the session is revoked.
    async fn current_successor(
        &self,
        session: Session,
        successor: &TokenIdHash,
        now: Timestamp,
    ) -> Result<Session, AuthError> {
        if session.revoked_at.is_none() && &session.token_id_hash == successor {
            return Ok(session);
        }
        self.ports.sessions.revoke(session.id, now).await?;
        Err(Unauthenticated::Reused.into())
    }

    /// Logs out. Any session token of ours whose signature, issuer, audience and type verify
    /// identifies its user, even when it expired or its session already ended (revoked,
    /// rotated, timed out), as long as it was issued within the absolute session lifetime: a
    /// logout must never silently leave Spotify connected. `Device` ends the token's session;
    /// `Everywhere` ends every session of the user and deletes the stored Spotify tokens.
    /// `Unauthenticated` when no user can be identified: nothing was done.
    pub async fn log_out(&self, token: &str, scope: LogoutScope) -> Result<LogoutOutcome, AuthError> {
        let now = self.ports.clock.now();
        let claims = self.ports.codec.verify_ignoring_time(token).map_err(Unauthenticated::Token)?;
        if now.since(claims.issued_at) >= self.policy.session.absolute_timeout {
            return Err(Unauthenticated::Token(SessionTokenError::Expired).into());
        }
        match scope {
            LogoutScope::Device => {
                let view = self.ports.sessions.load_view(claims.session_id, Freshness::Latest).await?;
                let session = view.map(|v| v.session).filter(|s| s.user_id == claims.user_id);
                let live = session.as_ref().is_some_and(|s| s.is_live(self.policy.session.live_after(now)));
                // Revoked even when it lapsed on its own, as `revoke_all_for_user` does: a
                // rotation that verified its token a moment earlier must find it revoked.
                if session.is_some_and(|s| s.revoked_at.is_none()) {
                    self.ports.sessions.revoke(claims.session_id, now).await?;
                }
                Ok(LogoutOutcome { scope, sessions_ended: u64::from(live), spotify_disconnected: false })
            }
            LogoutScope::Everywhere => {
                let live = self.policy.session.live_after(now);
                let ended = self.ports.sessions.revoke_all_for_user(claims.user_id, live, None).await?;
                let disconnected = match self.ports.tokens.delete_tokens(claims.user_id).await {
                    Ok(()) => true,
                    // The user row is gone: nothing stored to disconnect.
                    Err(RepoError::NotFound) => false,
                    Err(e) => return Err(e.into()),
                };
                Ok(LogoutOutcome { scope, sessions_ended: ended, spotify_disconnected: disconnected })
            }
        }
    }

    /// The caller's live sessions (this one among them), most recently used first, as the
    /// database has them.
    pub async fn sessions_of(&self, auth: &Authenticated) -> Result<Vec<Session>, AuthError> {
        let live = self.policy.session.live_after(self.ports.clock.now());
        Ok(self.ports.sessions.list_for_user(auth.user.id, live).await?)
    }

    /// Ends one of the caller's live sessions (the current one too: that is a logout of this
    /// device). `SessionNotFound` when the caller has no live session with this id: another
    /// user's session answers exactly as an unknown one, so ids cannot be probed.
    pub async fn end_session(&self, auth: &Authenticated, id: SessionId) -> Result<(), AuthError> {
        let now = self.ports.clock.now();
        let view = self.ports.sessions.load_view(id, Freshness::Latest).await?;
        let live = self.policy.session.live_after(now);
        match view.map(|v| v.session) {
            Some(session) if session.user_id == auth.user.id && session.is_live(live) => {
                self.ports.sessions.revoke(id, now).await?;
                Ok(())
            }
            _ => Err(AuthError::SessionNotFound),
        }
    }

    /// Ends every session of the caller but the one making the request ("log out of all other
    /// devices"); Spotify stays connected. Returns how many live sessions ended.
    pub async fn end_other_sessions(&self, auth: &Authenticated) -> Result<u64, AuthError> {
        let live = self.policy.session.live_after(self.ports.clock.now());
        Ok(self.ports.sessions.revoke_all_for_user(auth.user.id, live, Some(auth.session.id)).await?)
    }

    /// Deletes the caller's account and everything stored about them (profile, encrypted
    /// Spotify tokens, every session, room presence) at once; see [`UserRepository::erase`].
    /// Spotify keeps its own record of the grant: the user removes it in their Spotify account
    /// settings (Spotify offers no revocation endpoint).
    ///
    /// [`UserRepository::erase`]: crate::ports::UserRepository::erase
    pub async fn delete_account(&self, auth: &Authenticated) -> Result<(), AuthError> {
        if self.ports.users.erase(auth.user.id).await? { Ok(()) } else { Err(AuthError::UserNotFound) }
    }

    /// The data lifecycle, run periodically by the housekeeping task on every instance (each
    /// delete is one idempotent statement, so instances running it at once only repeat each
    /// other): ended sessions and lapsed login attempts past their retention, and the Spotify
    /// tokens of users without a live session for the token retention (see
    /// [`super::ServicePolicy`]).
    pub async fn housekeeping(&self) -> Result<Housekeeping, AuthError> {
        let now = self.ports.clock.now();
        let ended_before = self.policy.session.live_after(now.minus(self.policy.ended_session_retention));
        let sessions = self.ports.sessions.purge_ended(ended_before).await?;
        let login_flows = self.ports.flows.purge_expired(now.minus(self.policy.lapsed_login_retention)).await?;
        let tokens_kept_for = self.policy.session.live_after(now.minus(self.policy.token_retention));
        let disconnected_users = self.ports.tokens.delete_tokens_of_idle_users(tokens_kept_for).await?;
        Ok(Housekeeping { sessions, login_flows, disconnected_users })
    }
}
