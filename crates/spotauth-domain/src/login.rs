//! Login attempts in flight: the OAuth `state` each one is bound to, and where to go after.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
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

/// Who a request comes from, for rate limits and the bound on pending logins: an IPv4 address,
/// or the /64 prefix of an IPv6 address (one subscriber usually holds a whole /64, so keying on
/// the full address would let one client spread over 2^64 keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey(String);

impl ClientKey {
    /// The key of a client address (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn from_ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => ClientKey(v4.to_string()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(v4.to_string()),
                None => ClientKey(format!("{}/64", Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64)))),
            },
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many login attempts may be pending (begun, not used, not lapsed) at once, so that no
/// request rate can make the login-flow table grow without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Per client ([`ClientKey`]). A real page starts one login per person; people behind one
    /// NAT (a party venue) share it.
    pub pending_per_client: u64,
    /// For the whole service: bounds the table (a row is about 200 bytes) while leaving an
    /// attacker who would refuse everyone's login the work of 2,000 distinct clients.
    pub pending_total: u64,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits { pending_per_client: 50, pending_total: 100_000 }
    }
}

/// The pending login attempts a store counted ([`crate::ports::LoginFlowRepository::count_pending`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PendingLogins {
    /// Of the client asked about.
    pub client: u64,
    /// Of everyone.
    pub total: u64,
}

/// A login attempt to remember until its callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLoginFlow {
    /// The digest of the OAuth state sent to Spotify (the state itself is never stored).
    pub state: StateDigest,
    /// Who began it (`None` when the address is unknown); counted against
    /// [`LoginLimits::pending_per_client`], deleted with the row.
    pub client: Option<ClientKey>,
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
    fn client_keys_are_ipv4_addresses_or_ipv6_prefixes() {
        let key = |s: &str| ClientKey::from_ip(s.parse().unwrap()).to_string();
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff::1"), key("2001:db8:1:2::9"), "one /64, one client");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert!(key("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").len() <= 64);
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

    proptest::proptest! {
        /// Whatever the frontend sends, an accepted `returnTo` is a same-origin path: one leading
        /// slash, no second slash or backslash after it, no backslash, whitespace or control
        /// character anywhere, at most 512 bytes.
        #[test]
        fn an_accepted_return_to_is_always_a_same_origin_path(value in "\\PC{0,40}|/[ -~]{0,40}|//[ -~]{0,10}") {
            if let Ok(r) = ReturnTo::new(value.clone()) {
                let s = r.as_str();
                proptest::prop_assert!(s.starts_with('/') && !s.starts_with("//") && !s.starts_with("/\\"));
                proptest::prop_assert!(!s.contains('\\') && !s.chars().any(|c| c.is_control() || c.is_whitespace()));
                proptest::prop_assert!(s.len() <= ReturnTo::MAX_LEN);
            }
        }

        /// Every address maps to a key of at most 64 ASCII bytes; an IPv6 address maps to its /64.
        #[test]
        fn client_keys_are_short_ascii_and_ipv6_keys_are_prefixes(
            v6 in proptest::prelude::any::<std::net::Ipv6Addr>(),
            v4 in proptest::prelude::any::<std::net::Ipv4Addr>(),
        ) {
            for ip in [IpAddr::V6(v6), IpAddr::V4(v4)] {
                let key = ClientKey::from_ip(ip);
                proptest::prop_assert!(key.as_str().len() <= 64 && key.as_str().is_ascii());
            }
            let mut s = v6.segments();
            s[4..].copy_from_slice(&[1, 2, 3, 4]);
            let same_prefix = std::net::Ipv6Addr::from(s);
            if v6.to_ipv4_mapped().is_none() && same_prefix.to_ipv4_mapped().is_none() {
                proptest::prop_assert_eq!(ClientKey::from_ip(IpAddr::V6(v6)), ClientKey::from_ip(IpAddr::V6(same_prefix)));
            }
        }
    }
}
