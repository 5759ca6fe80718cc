//! Login attempts in flight: the OAuth `state` each one is bound to, and where to go after.

use std::fmt;
use std::time::Duration;

use crate::secret::OAuthState;
use crate::time::Timestamp;

/// How long a login attempt may take between `begin_login` and the callback.
pub const LOGIN_FLOW_TTL: Duration = Duration::from_secs(600);

/// Why a `returnTo` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("returnTo must be a same-origin relative path such as /rooms/42")]
pub struct ReturnToError;

/// Where the frontend wants the browser after login: a same-origin relative path only, so the
/// login can never become an open redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(String);

impl ReturnTo {
    /// Longest path accepted.
    pub const MAX_LEN: usize = 512;

    /// Accepts `/path?query#fragment` forms only: starts with one `/` (not `//`, not `/\`), no
    /// backslash, no control or whitespace characters, at most 512 bytes.
    pub fn new(value: impl Into<String>) -> Result<Self, ReturnToError> {
        let value = value.into();
        let bytes = value.as_bytes();
        let ok = bytes.first() == Some(&b'/')
            && !matches!(bytes.get(1), Some(b'/') | Some(b'\\'))
            && value.len() <= Self::MAX_LEN
            && !value.contains('\\')
            && !value.chars().any(|c| c.is_control() || c.is_whitespace());
        if ok { Ok(ReturnTo(value)) } else { Err(ReturnToError) }
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReturnTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A login attempt to remember until its callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLoginFlow {
    /// The OAuth state sent to Spotify. Stores keep only a one-way digest of it.
    pub state: OAuthState,
    /// Where to send the browser after login.
    pub return_to: Option<ReturnTo>,
    /// Now.
    pub created_at: Timestamp,
    /// When the attempt lapses.
    pub expires_at: Timestamp,
}

/// A login attempt, as consumed at the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFlow {
    /// Where to send the browser after login.
    pub return_to: Option<ReturnTo>,
    /// When it began.
    pub created_at: Timestamp,
    /// When it lapses.
    pub expires_at: Timestamp,
}

/// What consuming a state found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumeOutcome {
    /// The flow was live and is now used.
    Consumed(LoginFlow),
    /// No flow has this state.
    Unknown,
    /// The flow lapsed before its callback.
    Expired,
    /// The flow was consumed before (a replayed callback).
    AlreadyUsed,
}

impl ConsumeOutcome {
    /// The outcome of a store's atomic consume: `consumed` tells whether its conditional update
    /// (`used_at IS NULL AND expires_at > now`) took the flow; `found` is the flow as read after
    /// it, with whether it is marked used. One rule for every store: expired whether used or
    /// not, else used, else unknown (the row appeared after the update looked).
    pub fn after_update(consumed: bool, found: Option<(LoginFlow, bool)>, now: Timestamp) -> Self {
        match found {
            // Consumed and purged in between: the row is gone, report it unknown.
            None => ConsumeOutcome::Unknown,
            Some((flow, _)) if consumed => ConsumeOutcome::Consumed(flow),
            Some((flow, _)) if now >= flow.expires_at => ConsumeOutcome::Expired,
            Some((_, true)) => ConsumeOutcome::AlreadyUsed,
            Some((_, false)) => ConsumeOutcome::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consume_outcomes() {
        let now = Timestamp::from_unix_seconds(100);
        let flow =
            |exp: i64| LoginFlow { return_to: None, created_at: now, expires_at: Timestamp::from_unix_seconds(exp) };
        assert_eq!(
            ConsumeOutcome::after_update(true, Some((flow(200), true)), now),
            ConsumeOutcome::Consumed(flow(200))
        );
        assert_eq!(ConsumeOutcome::after_update(false, Some((flow(100), false)), now), ConsumeOutcome::Expired);
        assert_eq!(ConsumeOutcome::after_update(false, Some((flow(50), true)), now), ConsumeOutcome::Expired);
        assert_eq!(ConsumeOutcome::after_update(false, Some((flow(200), true)), now), ConsumeOutcome::AlreadyUsed);
        assert_eq!(ConsumeOutcome::after_update(false, Some((flow(200), false)), now), ConsumeOutcome::Unknown);
        assert_eq!(ConsumeOutcome::after_update(true, None, now), ConsumeOutcome::Unknown);
    }

    #[test]
    fn return_to_accepts_relative_paths_only() {
        for ok in ["/", "/rooms/42", "/a?b=c#d", "/%2F%2Fevil"] {
            assert!(ReturnTo::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "rooms",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "/a\\b",
            "/a b",
            "/a\nb",
            "javascript:alert(1)",
            &format!("/{}", "a".repeat(512)),
        ] {
            assert!(ReturnTo::new(bad).is_err(), "{bad}");
        }
    }
}
