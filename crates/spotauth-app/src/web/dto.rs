//! The JSON shapes of our REST API. Only this crate knows them; domain types never derive
//! `Serialize`.

use chrono::{DateTime, SecondsFormat};
use serde::Serialize;
use spotauth_domain::service::ServedToken;
use spotauth_domain::time::Timestamp;
use spotauth_domain::user::User;

/// RFC 3339 UTC with milliseconds.
pub fn iso(t: Timestamp) -> String {
    DateTime::from_timestamp_millis(t.unix_millis()).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A user's public fields. Never a token.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDto {
    id: String,
    spotify_id: String,
    display_name: Option<String>,
    is_active: bool,
    is_premium: Option<bool>,
    premium_source: &'static str,
    last_active: String,
    created_at: String,
    spotify_connected: bool,
    reauth_required: bool,
}

impl From<&User> for UserDto {
    fn from(u: &User) -> Self {
        UserDto {
            id: u.id.to_string(),
            spotify_id: u.spotify_id.to_string(),
            display_name: u.display_name.as_ref().map(ToString::to_string),
            is_active: u.is_active,
            is_premium: u.subscription.status.as_option(),
            premium_source: u.subscription.source.as_str(),
            last_active: iso(u.last_active),
            created_at: iso(u.created_at),
            spotify_connected: u.has_tokens,
            reauth_required: u.reauth_required,
        }
    }
}

/// A user in the active list: fewer fields.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveUserDto {
    id: String,
    spotify_id: String,
    display_name: Option<String>,
    is_premium: Option<bool>,
    last_active: String,
}

impl From<&User> for ActiveUserDto {
    fn from(u: &User) -> Self {
        ActiveUserDto {
            id: u.id.to_string(),
            spotify_id: u.spotify_id.to_string(),
            display_name: u.display_name.as_ref().map(ToString::to_string),
            is_premium: u.subscription.status.as_option(),
            last_active: iso(u.last_active),
        }
    }
}

/// A Spotify access token for the Web Playback SDK.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessTokenDto {
    access_token: String,
    expires_at: String,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_token: Option<String>,
}

impl AccessTokenDto {
    /// From a served token; `session_token` only for Bearer clients after a rotation.
    pub fn new(served: &ServedToken, session_token: Option<String>) -> Self {
        let ServedToken { grant, served_at } = served;
        AccessTokenDto {
            access_token: grant.access_token.expose().to_owned(),
            expires_at: iso(grant.expires_at),
            expires_in: grant.expires_at.since(*served_at).as_secs(),
            session_token,
        }
    }
}
