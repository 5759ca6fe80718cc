//! Login attempts in flight: the OAuth `state` each one is bound to, and where to go after.

use std::fmt;
use std::time::Duration;

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

/// The one-way digest of an OAuth `state` ([`crate::ports::Digests::oauth_state`]): the key of
/// a login flow in the store, so a database leak cannot complete anyone's login.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StateDigest([u8; 32]);

impl StateDigest {
    /// Wraps a 32-byte digest.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        StateDigest(bytes)
    }

    /// The digest.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for StateDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateDigest({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

/// A login attempt to remember until its callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLoginFlow {
    /// The digest of the OAuth state sent to Spotify (the state itself is never stored).
    pub state: StateDigest,
    /// Where to send the browser after login.
    pub return_to: Option<ReturnTo>,
    /// When the login began.
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

#[cfg(test)]
mod tests {
    use super::*;

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
