//! The connected Spotify user and the values that describe them.

use std::fmt;

use crate::ids::UserId;
use crate::time::Timestamp;

/// Why a user field was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserFieldError {
    /// The value was empty or only whitespace.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// The value was longer than the column allows.
    #[error("{0} is longer than {1} characters")]
    TooLong(&'static str, usize),
    /// The value held control characters.
    #[error("{0} holds control characters")]
    ControlCharacters(&'static str),
}

fn check_text(label: &'static str, value: &str, max: usize) -> Result<(), UserFieldError> {
    if value.trim().is_empty() {
        return Err(UserFieldError::Empty(label));
    }
    if value.chars().count() > max {
        return Err(UserFieldError::TooLong(label, max));
    }
    if value.chars().any(char::is_control) {
        return Err(UserFieldError::ControlCharacters(label));
    }
    Ok(())
}

/// A validated text newtype: non-empty, at most `MAX_LEN` (255) characters, no control
/// characters. Stores MUST hold 255 characters of any of them.
macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident, $label:literal $(, $derive:ident)*) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq $(, $derive)*)]
        pub struct $name(String);

        impl $name {
            /// Longest value accepted.
            pub const MAX_LEN: usize = 255;

            /// Validates: non-empty, at most 255 characters, no control characters.
            pub fn new(value: impl Into<String>) -> Result<Self, UserFieldError> {
                let value = value.into();
                check_text($label, &value, Self::MAX_LEN)?;
                Ok($name(value))
            }

            /// The value as stored.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_newtype!(
    /// The stable key of a Spotify account: `account_id` when Spotify gives one, else `id`
    /// (Spotify Web API changelog, May 2026: `id` is not guaranteed stable). Unique per user row.
    SpotifyAccountKey, "Spotify account key", Hash
);
text_newtype!(
    /// Spotify's user `id` (shown in URIs; not guaranteed stable, so never the join key).
    SpotifyUserId, "Spotify user id", Hash
);
text_newtype!(
    /// A user's display name, as Spotify reports it.
    DisplayName, "display name"
);

/// Whether a user has Spotify Premium. Three values: since February 2026, apps in Development
/// Mode no longer receive `product`, so the answer can honestly be "unknown".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PremiumStatus {
    /// Premium: the Web Playback SDK will play.
    Premium,
    /// Free (Spotify's `free` or `open`): the Web Playback SDK will not play.
    Free,
    /// No reliable signal yet.
    Unknown,
}

impl PremiumStatus {
    /// `Some(true)` for Premium, `Some(false)` for Free, `None` for Unknown.
    pub fn as_option(self) -> Option<bool> {
        match self {
            PremiumStatus::Premium => Some(true),
            PremiumStatus::Free => Some(false),
            PremiumStatus::Unknown => None,
        }
    }

    /// Reads Spotify's `product` field: `premium` → Premium; `free` and `open` → Free; anything
    /// else (a value Spotify may add later) → Unknown, never a guess.
    pub fn from_product(product: &str) -> Self {
        match product {
            "premium" => PremiumStatus::Premium,
            "free" | "open" => PremiumStatus::Free,
            _ => PremiumStatus::Unknown,
        }
    }
}

/// Where a [`PremiumStatus`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PremiumSource {
    /// The `product` field of `GET /v1/me` (Extended Quota apps).
    Profile,
    /// A player endpoint's answer: 403 `PREMIUM_REQUIRED` means free, success means Premium.
    PlayerProbe,
    /// The browser's Web Playback SDK reported `account_error`.
    PlaybackSdk,
    /// Not checked yet, or every check was inconclusive.
    None,
}

impl PremiumSource {
    /// Stable lowercase name, as stored and as shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PremiumSource::Profile => "profile",
            PremiumSource::PlayerProbe => "player_probe",
            PremiumSource::PlaybackSdk => "playback_sdk",
            PremiumSource::None => "none",
        }
    }

    /// Parses [`PremiumSource::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "profile" => PremiumSource::Profile,
            "player_probe" => PremiumSource::PlayerProbe,
            "playback_sdk" => PremiumSource::PlaybackSdk,
            "none" => PremiumSource::None,
            _ => return None,
        })
    }
}

/// What we know of a user's subscription, with its provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Premium, free or unknown.
    pub status: PremiumStatus,
    /// Spotify's raw `product` value when it sent one.
    pub product: Option<String>,
    /// How the status was learned.
    pub source: PremiumSource,
    /// When it was last checked; `None` if never.
    pub checked_at: Option<Timestamp>,
}

impl Subscription {
    /// Never checked.
    pub fn unknown() -> Self {
        Subscription { status: PremiumStatus::Unknown, product: None, source: PremiumSource::None, checked_at: None }
    }
}

/// A connected Spotify user, as the service knows them. Holds no token: tokens live in
/// [`crate::token::StoredTokens`] and are loaded only where needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Our id.
    pub id: UserId,
    /// Stable Spotify account key (unique).
    pub account_key: SpotifyAccountKey,
    /// Spotify's user id, for display and URIs.
    pub spotify_id: SpotifyUserId,
    /// Display name, when the user has one.
    pub display_name: Option<DisplayName>,
    /// Premium status with source and check time.
    pub subscription: Subscription,
    /// Whether the user shows in the active-listeners list.
    pub is_active: bool,
    /// Last time the user did anything through the service.
    pub last_active: Timestamp,
    /// When the user first connected.
    pub created_at: Timestamp,
    /// Spotify answered `invalid_grant` (or the refresh token passed its 6-month expiry): the user
    /// must log in again before a Spotify token can be served.
    pub reauth_required: bool,
    /// Whether Spotify tokens are stored (false after a disconnect).
    pub has_tokens: bool,
}

/// The profile fields Spotify's `GET /v1/me` gave us, already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotifyProfile {
    /// `id`.
    pub spotify_id: SpotifyUserId,
    /// `account_id`, when present (the stable key).
    pub account_id: Option<SpotifyAccountKey>,
    /// `display_name`, when set.
    pub display_name: Option<DisplayName>,
    /// `product`, when present (Extended Quota apps only since February 2026).
    pub product: Option<String>,
}

impl SpotifyProfile {
    /// The stable key: `account_id` when present, else `id`.
    pub fn account_key(&self) -> Result<SpotifyAccountKey, UserFieldError> {
        match &self.account_id {
            Some(key) => Ok(key.clone()),
            None => SpotifyAccountKey::new(self.spotify_id.as_str()),
        }
    }
}

/// A page request for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Zero-based offset.
    pub offset: u32,
    /// Page size, 1..=100.
    pub limit: u32,
}

impl PageRequest {
    /// Largest page.
    pub const MAX_LIMIT: u32 = 100;

    /// The largest page from `offset`.
    pub const fn largest(offset: u32) -> Self {
        PageRequest { offset, limit: Self::MAX_LIMIT }
    }

    /// Validates `limit` in 1..=100.
    pub fn new(offset: u32, limit: u32) -> Result<Self, UserFieldError> {
        if limit == 0 {
            return Err(UserFieldError::Empty("page limit"));
        }
        if limit > Self::MAX_LIMIT {
            return Err(UserFieldError::TooLong("page limit", Self::MAX_LIMIT as usize));
        }
        Ok(PageRequest { offset, limit })
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in listing order.
    pub items: Vec<T>,
    /// Total number of items across all pages.
    pub total: u64,
    /// The request this answers.
    pub request: PageRequest,
}

/// What the active list shows of a person to the other signed-in people: only what a party
/// page needs. Never the Spotify id, the plan as such, or a precise activity time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// Our opaque id of the user (a random UUID; it says nothing about the Spotify account).
    pub user_id: UserId,
    /// Their display name, when they have one.
    pub display_name: Option<DisplayName>,
    /// Whether their own player can play: `Some(true)` Premium and connected, `Some(false)`
    /// free or without a usable Spotify connection, `None` not known yet.
    pub can_play: Option<bool>,
    /// When they were last seen, rounded down to [`Presence::LAST_SEEN_GRANULARITY`].
    pub last_seen: Timestamp,
}

impl Presence {
    /// How coarse `last_seen` is.
    pub const LAST_SEEN_GRANULARITY: std::time::Duration = std::time::Duration::from_secs(300);

    /// The presence of a listed user.
    pub fn of(user: &User) -> Self {
        let connected = user.has_tokens && !user.reauth_required;
        let can_play = if connected { user.subscription.status.as_option() } else { Some(false) };
        let step = i64::try_from(Self::LAST_SEEN_GRANULARITY.as_millis()).unwrap_or(1).max(1);
        let ms = user.last_active.unix_millis();
        Presence {
            user_id: user.id,
            display_name: user.display_name.clone(),
            can_play,
            last_seen: Timestamp::from_unix_millis(ms - ms.rem_euclid(step)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_key_prefers_account_id() {
        let p = SpotifyProfile {
            spotify_id: SpotifyUserId::new("alice").unwrap(),
            account_id: Some(SpotifyAccountKey::new("acc-1").unwrap()),
            display_name: None,
            product: None,
        };
        assert_eq!(p.account_key().unwrap().as_str(), "acc-1");
        let p = SpotifyProfile { account_id: None, ..p };
        assert_eq!(p.account_key().unwrap().as_str(), "alice");
    }

    #[test]
    fn product_mapping_never_guesses() {
        assert_eq!(PremiumStatus::from_product("premium"), PremiumStatus::Premium);
        assert_eq!(PremiumStatus::from_product("open"), PremiumStatus::Free);
        assert_eq!(PremiumStatus::from_product("free"), PremiumStatus::Free);
        assert_eq!(PremiumStatus::from_product("premium_duo_v9"), PremiumStatus::Unknown);
    }

    #[test]
    fn fields_validate() {
        assert!(DisplayName::new("  ").is_err());
        assert!(DisplayName::new("a\u{0}b").is_err());
        assert!(SpotifyAccountKey::new("x".repeat(256)).is_err());
        assert!(PageRequest::new(0, 0).is_err());
        assert!(PageRequest::new(0, 101).is_err());
        for s in [PremiumSource::Profile, PremiumSource::PlayerProbe, PremiumSource::PlaybackSdk, PremiumSource::None] {
            assert_eq!(PremiumSource::parse(s.as_str()), Some(s));
        }
    }
}
