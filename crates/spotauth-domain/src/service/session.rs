//! App sessions: issuing, authenticating, rotating, logging out, and purging what ended.

use crate::ids::{TokenId, UserId};
use crate::ports::RepoError;
use crate::secret::SessionToken;
use crate::session::{NewSession, Session, SessionClaims, SessionMeta, SessionOwner, SessionView};
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

/// What one housekeeping pass deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Housekeeping {
    /// Ended sessions past their retention.
    pub sessions: u64,
    /// Lapsed login attempts past their retention.
    pub login_flows: u64,
}

impl AuthService {
    pub(super) async fn create_session(
        &self,
        user_id: UserId,
        meta: SessionMeta,
        now: Timestamp,
    ) -> Result<IssuedSession, AuthError> {
        let token_id = self.ports.ids.new_token_id();
        let new = NewSession {
            id: self.ports.ids.new_session_id(),
            user_id,
            token_id_hash: self.ports.digests.token_id(&token_id),
            created_at: now,
            expires_at: now.plus(self.policy.session.absolute_timeout),
            meta,
        };
        let session = self.ports.sessions.create(new).await?;
        self.issue_token(session, token_id, now)
    }

    fn issue_token(&self, session: Session, token_id: TokenId, now: Timestamp) -> Result<IssuedSession, AuthError> {
        let expires_at = now.plus(self.policy.session.token_ttl).min(session.expires_at);
        let claims =
            SessionClaims { session_id: session.id, user_id: session.user_id, token_id, issued_at: now, expires_at };
        let token = self.ports.codec.issue(&claims).map_err(|_| AuthError::SessionIssue)?;
        Ok(IssuedSession { session, token, issued_at: now, token_expires_at: expires_at })
    }

    /// Verifies a session token against its session row: signature and claims, revocation,
    /// idle and absolute timeouts, and reuse of a rotated-out token (which revokes the session).
    /// `last_active` of the session and the user is written at most once per touch interval.
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated, AuthError> {
        let now = self.ports.clock.now();
        let claims = self.ports.codec.verify(token, now).map_err(Unauthenticated::Token)?;
        let SessionView { session, owner } =
            self.ports.sessions.load_view(claims.session_id).await?.ok_or(Unauthenticated::UnknownSession)?;
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
        if self.ports.digests.token_id(&claims.token_id) != session.token_id_hash {
            self.ports.sessions.revoke(session.id, now).await?;
            return Err(Unauthenticated::Reused.into());
        }
        let SessionOwner { user, tokens } = owner.ok_or(Unauthenticated::UnknownSession)?;
        if now.since(session.last_active) >= self.policy.session.touch_interval {
            self.ports.sessions.touch(session.id, now).await?;
            self.ports.users.touch(user.id, now).await?;
        }
        Ok(Authenticated { user, session, tokens })
    }

    /// Rotates the session's token (the presented token dies, a new one is issued) and hands
    /// out a Spotify access token with it. A token that was already rotated out (or loses a
    /// concurrent rotation) revokes the whole session.
    pub async fn refresh_session(&self, token: &str) -> Result<RefreshedSession, AuthError> {
        let auth = self.authenticate(token).await?;
        let now = self.ports.clock.now();
        let token_id = self.ports.ids.new_token_id();
        let new_hash = self.ports.digests.token_id(&token_id);
        let session =
            match self.ports.sessions.rotate(auth.session.id, &auth.session.token_id_hash, &new_hash, now).await {
                Ok(session) => session,
                Err(RepoError::StaleVersion) => {
                    self.ports.sessions.revoke(auth.session.id, now).await?;
                    return Err(Unauthenticated::Reused.into());
                }
                Err(e) => return Err(e.into()),
            };
        let issued = self.issue_token(session, token_id, now)?;
        let token = self.access_token_given(auth.user.id, auth.tokens).await;
        Ok(RefreshedSession { issued, token })
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
        self.ports.tokens.delete_tokens(auth.user.id).await?;
        match self.ports.users.set_active(auth.user.id, false, now).await {
            Ok(_) | Err(RepoError::NotFound) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes ended sessions and lapsed login attempts past their retention (see
    /// [`super::ServicePolicy`]). Run periodically by the housekeeping task.
    pub async fn housekeeping(&self) -> Result<Housekeeping, AuthError> {
        let now = self.ports.clock.now();
        let sessions = self.ports.sessions.purge_ended(now.minus(self.policy.ended_session_retention)).await?;
        let login_flows = self.ports.flows.purge_expired(now.minus(self.policy.lapsed_login_retention)).await?;
        Ok(Housekeeping { sessions, login_flows })
    }
}
