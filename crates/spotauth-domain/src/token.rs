//! A user's Spotify tokens: in the clear (only in memory, briefly) and encrypted (at rest).

use std::fmt;
use std::time::Duration;

use crate::ids::UserId;
use crate::secret::{AccessToken, RefreshToken};
use crate::time::Timestamp;

/// How long a Spotify refresh token lives: 6 months after the user's ORIGINAL authorization;
/// refreshing does not extend it (Spotify developer blog, 2026-06-18). We count 184 days, the
/// longest 6-month span, so we never declare a token dead before Spotify does; a token Spotify
/// kills a day earlier answers `invalid_grant`, which leads to the same re-authorization.
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(184 * 24 * 3600);

/// OAuth scopes, space separated on the wire. Kept sorted and de-duplicated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Parses a space separated scope string; empty parts are ignored.
    pub fn parse(s: &str) -> Self {
        let mut v: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
        v.sort();
        v.dedup();
        Scopes(v)
    }

    /// Whether `scope` was granted.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// What Spotify's token endpoint answered, to a code exchange or a refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// The new access token.
    pub access_token: AccessToken,
    /// When it expires (computed from `expires_in` at receipt).
    pub access_expires_at: Timestamp,
    /// A new refresh token, when Spotify sent one. `None` means: keep using the old one.
    pub refresh_token: Option<RefreshToken>,
    /// Granted scopes.
    pub scopes: Scopes,
}

/// Which token column a ciphertext belongs to; part of the encryption's associated data, so a
/// ciphertext moved to the other column fails to decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenColumn {
    /// The access token column.
    Access,
    /// The refresh token column.
    Refresh,
}

impl TokenColumn {
    /// Stable name used in associated data.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenColumn::Access => "access_token",
            TokenColumn::Refresh => "refresh_token",
        }
    }
}

/// The binding of one ciphertext: whose row and which column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBinding {
    /// The row's user id.
    pub user_id: UserId,
    /// The column.
    pub column: TokenColumn,
}

/// An encrypted token as stored. Opaque to everyone but the [`crate::ports::TokenCipher`].
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptedToken(Vec<u8>);

impl EncryptedToken {
    /// Wraps stored bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        EncryptedToken(bytes)
    }

    /// The stored bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Consumes into the stored bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for EncryptedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptedToken({} bytes)", self.0.len())
    }
}

/// Optimistic-concurrency version of a user's token columns. Every token write must name the
/// version it read; the store bumps it, so two concurrent writers cannot both win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenVersion(pub u64);

/// A user's tokens as stored: ciphertexts plus the clear metadata the refresh logic needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTokens {
    /// Encrypted access token.
    pub access_token: EncryptedToken,
    /// Encrypted refresh token.
    pub refresh_token: EncryptedToken,
    /// When the access token expires.
    pub access_expires_at: Timestamp,
    /// When the refresh token dies for good (original authorization + 6 months).
    pub refresh_expires_at: Timestamp,
    /// Granted scopes.
    pub scopes: Scopes,
    /// Version of these columns, for compare-and-swap writes.
    pub version: TokenVersion,
    /// Set when Spotify refused the refresh token; cleared by a new login.
    pub reauth_required: bool,
}

impl StoredTokens {
    /// Whether the refresh token can still be used at `now`: not refused by Spotify, and within
    /// its absolute lifetime ([`REFRESH_TOKEN_LIFETIME`] after the authorization).
    pub fn refreshable_at(&self, now: Timestamp) -> bool {
        !self.reauth_required && self.refresh_expires_at > now
    }
}

/// Tokens to store after a login: both tokens, fresh authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTokens {
    /// Encrypted access token.
    pub access_token: EncryptedToken,
    /// Encrypted refresh token.
    pub refresh_token: EncryptedToken,
    /// When the access token expires.
    pub access_expires_at: Timestamp,
    /// Authorization time + 6 months.
    pub refresh_expires_at: Timestamp,
    /// Granted scopes.
    pub scopes: Scopes,
}

/// Tokens to store after a refresh. `refresh_token: None` keeps the stored one (Spotify sent no
/// new one); the refresh token's absolute expiry never changes on refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshedTokens {
    /// Encrypted new access token.
    pub access_token: EncryptedToken,
    /// When it expires.
    pub access_expires_at: Timestamp,
    /// Encrypted new refresh token, only when Spotify returned one.
    pub refresh_token: Option<EncryptedToken>,
    /// Granted scopes.
    pub scopes: Scopes,
}

/// A Spotify access token ready to hand to the Web Playback SDK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGrant {
    /// The token.
    pub access_token: AccessToken,
    /// When it expires.
    pub expires_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_normalised() {
        let s = Scopes::parse(" user-read-private streaming  streaming user-read-email ");
        assert_eq!(s.to_string(), "streaming user-read-email user-read-private");
        assert!(s.contains("streaming"));
        assert!(!s.contains("playlist-read-private"));
    }

    #[test]
    fn ciphertext_debug_hides_bytes() {
        assert_eq!(format!("{:?}", EncryptedToken::from_bytes(vec![1, 2, 3])), "EncryptedToken(3 bytes)");
    }
}
