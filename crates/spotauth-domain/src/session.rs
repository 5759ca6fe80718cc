//! App sessions: one row per login, one signed token (JWT) at a time per session.

use std::fmt;
use std::time::Duration;

use crate::ids::{SessionId, TokenId, UserId};
use crate::time::Timestamp;
use crate::token::StoredTokens;
use crate::user::User;

/// The hash of a session token's id (`jti`). Only this is stored, never the token: a database
/// leak cannot be replayed as a session.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenIdHash([u8; 32]);

impl TokenIdHash {
    /// Wraps a 32-byte digest.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        TokenIdHash(bytes)
    }

    /// The digest.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses stored bytes; `None` unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(TokenIdHash)
    }
}

impl fmt::Debug for TokenIdHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenIdHash({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

/// Where a session came from (for the user's own "where am I logged in" view and audits).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionMeta {
    /// The `User-Agent` header, cut to 512 characters.
    pub user_agent: Option<String>,
    /// The client's IP address as text (IPv4 or IPv6).
    pub ip_address: Option<String>,
}

impl SessionMeta {
    /// Longest user agent kept.
    pub const MAX_USER_AGENT: usize = 512;

    /// Builds the meta, cutting an overlong user agent and dropping control characters.
    pub fn new(user_agent: Option<&str>, ip_address: Option<String>) -> Self {
        let user_agent =
            user_agent.map(|ua| ua.chars().filter(|c| !c.is_control()).take(Self::MAX_USER_AGENT).collect::<String>());
        SessionMeta { user_agent, ip_address }
    }
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Session id (stable across rotations).
    pub id: SessionId,
    /// Whose session.
    pub user_id: UserId,
    /// Hash of the current token's id; an older token's id no longer matches (reuse detection).
    pub token_id_hash: TokenIdHash,
    /// When the session was created.
    pub created_at: Timestamp,
    /// Last time it was used; the idle timeout counts from here.
    pub last_active: Timestamp,
    /// Absolute end of the session, whatever its use.
    pub expires_at: Timestamp,
    /// When it was revoked (logout, reuse detected, timeout); `None` while live.
    pub revoked_at: Option<Timestamp>,
    /// Hash of the token id rotated out last: it still authenticates within the rotation grace
    /// window after `rotated_at` ([`SessionPolicy::rotation_grace`]).
    pub previous_token_id_hash: Option<TokenIdHash>,
    /// When the token was last rotated; `None` before the first rotation.
    pub rotated_at: Option<Timestamp>,
    /// When the current token expires: past it, nothing can use the session any more (the
    /// browser holds no newer token). `None` for sessions stored before this was recorded.
    pub token_expires_at: Option<Timestamp>,
    /// Where it came from.
    pub meta: SessionMeta,
}

impl Session {
    /// Whether this session is live at some instant at or after `live.at`: the one liveness rule,
    /// which the stores apply in SQL with the same comparisons (see [`LiveAfter`]).
    pub fn is_live(&self, live: LiveAfter) -> bool {
        self.revoked_at.is_none_or(|t| t > live.at)
            && self.expires_at > live.at
            && self.last_active >= live.idle_since
            && self.token_expires_at.is_none_or(|t| t > live.at)
    }
}

/// "A session live at or after `at`": not revoked by then, not past its absolute end by then,
/// used recently enough that the idle timeout had not ended it by then, and its current token
/// not expired by then (an expired token cannot be refreshed: the session is over). With
/// `at = now` it means "live now" (the active list, the proactive refresher); with
/// `at = now - retention` it means "live at some point within the retention" (token deletion,
/// purging ended sessions). Built by [`SessionPolicy::live_after`]; adapters MUST evaluate it
/// exactly as [`Session::is_live`]: `(revoked_at IS NULL OR revoked_at > at) AND expires_at > at
/// AND last_active >= idle_since AND (token_expires_at IS NULL OR token_expires_at > at)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveAfter {
    /// The instant.
    pub at: Timestamp,
    /// `at` minus the idle timeout: a session last used before this was idle-dead by `at`.
    pub idle_since: Timestamp,
}

/// A session, its owner and the owner's stored tokens, as one read returns them
/// ([`crate::ports::SessionRepository::load_view`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// The session.
    pub session: Session,
    /// Its user; `None` when the user row is gone.
    pub owner: Option<SessionOwner>,
}

/// The user behind a session and their stored Spotify tokens (still encrypted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOwner {
    /// The user.
    pub user: User,
    /// The stored tokens; `None` when the user has none.
    pub tokens: Option<StoredTokens>,
}

/// A session to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// Fresh session id.
    pub id: SessionId,
    /// Whose session.
    pub user_id: UserId,
    /// Hash of the first token's id.
    pub token_id_hash: TokenIdHash,
    /// When the session began (also its first `last_active`).
    pub created_at: Timestamp,
    /// Absolute end.
    pub expires_at: Timestamp,
    /// When the first token expires.
    pub token_expires_at: Timestamp,
    /// Where it came from.
    pub meta: SessionMeta,
}

/// The claims of a session token, as issued and as verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClaims {
    /// `sid`.
    pub session_id: SessionId,
    /// `sub`.
    pub user_id: UserId,
    /// `jti`: changes at each rotation.
    pub token_id: TokenId,
    /// `iat` (and `nbf`).
    pub issued_at: Timestamp,
    /// `exp`.
    pub expires_at: Timestamp,
}

/// Session lifetimes, enforced on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused this long is dead.
    pub idle_timeout: Duration,
    /// A session this old is dead, however used.
    pub absolute_timeout: Duration,
    /// Lifetime of one session token; the client rotates before it ends.
    pub token_ttl: Duration,
    /// `last_active` is written at most this often (keeps writes off the hot path).
    pub touch_interval: Duration,
    /// How long a token rotated out still authenticates, and yields its successor again when
    /// rotated again (a parallel request or a second tab racing the rotation). Past it, a
    /// rotated-out token is reuse and revokes the session. Zero turns the window off.
    pub rotation_grace: Duration,
}

impl SessionPolicy {
    /// When a token issued at `now` for a session ending at `session_end` expires.
    pub fn token_expiry(&self, now: Timestamp, session_end: Timestamp) -> Timestamp {
        now.plus(self.token_ttl).min(session_end)
    }

    /// [`LiveAfter`] for the instant `at` under this policy's idle timeout.
    pub fn live_after(&self, at: Timestamp) -> LiveAfter {
        LiveAfter { at, idle_since: at.minus(self.idle_timeout) }
    }
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle_timeout: Duration::from_secs(7 * 24 * 3600),
            absolute_timeout: Duration::from_secs(30 * 24 * 3600),
            token_ttl: Duration::from_secs(24 * 3600),
            touch_interval: Duration::from_secs(60),
            rotation_grace: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_live_until_the_first_of_its_ends() {
        let policy = SessionPolicy::default();
        let t0 = Timestamp::from_unix_seconds(1_800_000_000);
        let session = Session {
            id: SessionId::from_bytes([1; 16]),
            user_id: UserId::from_bytes([2; 16]),
            token_id_hash: TokenIdHash::from_bytes([3; 32]),
            created_at: t0,
            last_active: t0,
            expires_at: t0.plus(policy.absolute_timeout),
            revoked_at: None,
            previous_token_id_hash: None,
            rotated_at: None,
            token_expires_at: Some(t0.plus(policy.token_ttl)),
            meta: SessionMeta::default(),
        };
        let live_at = |s: &Session, t: Timestamp| s.is_live(policy.live_after(t));
        assert!(live_at(&session, t0));
        // The token's expiry ends it first here (a day, before the 7-day idle timeout).
        let token_end = t0.plus(policy.token_ttl);
        assert!(live_at(&session, token_end.minus(Duration::from_millis(1))));
        assert!(!live_at(&session, token_end));
        // Without a recorded token expiry: the idle timeout.
        let old = Session { token_expires_at: None, ..session.clone() };
        let idle_end = t0.plus(policy.idle_timeout);
        assert!(live_at(&old, idle_end) && !live_at(&old, idle_end.plus(Duration::from_millis(1))));
        // The absolute end, and a revocation.
        let short = Session { expires_at: t0.plus(Duration::from_secs(60)), ..session.clone() };
        assert!(!live_at(&short, t0.plus(Duration::from_secs(60))));
        let revoked = Session { revoked_at: Some(t0.plus(Duration::from_secs(5))), ..session };
        assert!(
            live_at(&revoked, t0.plus(Duration::from_secs(4))) && !live_at(&revoked, t0.plus(Duration::from_secs(5)))
        );
    }
}
