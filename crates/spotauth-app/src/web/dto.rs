//! The JSON shapes of our REST API. Only this crate knows them; domain types never derive
//! `Serialize`.

use chrono::{DateTime, SecondsFormat};
use serde::Serialize;
use spotauth_domain::room::{Outcome, PersonOutcome, RoomMember};
use spotauth_domain::service::{LogoutOutcome, LogoutScope, ServedToken};
use spotauth_domain::session::Session;
use spotauth_domain::time::Timestamp;
use spotauth_domain::user::{Presence, User};
use utoipa::ToSchema;

/// RFC 3339 UTC with milliseconds.
pub fn iso(t: Timestamp) -> String {
    rfc3339(t, SecondsFormat::Millis)
}

fn rfc3339(t: Timestamp, precision: SecondsFormat) -> String {
    DateTime::from_timestamp_millis(t.unix_millis()).unwrap_or_default().to_rfc3339_opts(precision, true)
}

/// A user's public fields. Never a token.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserDto {
    #[schema(format = "uuid")]
    id: String,
    spotify_id: String,
    display_name: Option<String>,
    is_active: bool,
    is_premium: Option<bool>,
    premium_source: &'static str,
    #[schema(format = DateTime)]
    last_active: String,
    #[schema(format = DateTime)]
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

/// A person in the active list, as the other signed-in people see them: an opaque id, a
/// display name, whether they can play, a coarse last-seen time (whole minutes, already
/// rounded down to five by the domain), whether their player is ready, and what it plays.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Presence)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PresenceDto {
    #[schema(format = "uuid")]
    id: String,
    display_name: Option<String>,
    can_play: Option<bool>,
    #[schema(format = DateTime)]
    last_seen: String,
    ready: bool,
    now_playing: Option<NowPlayingDto>,
}

/// A page of the active list (`GET /api/users/active`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ActiveUsers)]
#[serde(deny_unknown_fields)]
pub struct ActivePageDto {
    /// The people on this page.
    pub items: Vec<PresenceDto>,
    /// How many people are listed in all.
    pub total: u64,
    /// The page's offset.
    pub offset: u32,
    /// The page's size.
    pub limit: u32,
}

/// What a person's player plays, as their page said.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = NowPlaying)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NowPlayingDto {
    uri: String,
    name: String,
    is_playing: bool,
}

impl From<&RoomMember> for PresenceDto {
    fn from(m: &RoomMember) -> Self {
        let p: &Presence = &m.presence;
        PresenceDto {
            id: p.user_id.to_string(),
            display_name: p.display_name.as_ref().map(ToString::to_string),
            can_play: p.can_play,
            last_seen: rfc3339(p.last_seen, SecondsFormat::Secs),
            ready: m.ready,
            now_playing: m.now_playing.as_ref().map(|n| NowPlayingDto {
                uri: n.uri.as_str().to_owned(),
                name: n.name.as_str().to_owned(),
                is_playing: n.is_playing,
            }),
        }
    }
}

/// One person's outcome of a group command. Never a token.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = GroupOutcome)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutcomeDto {
    #[schema(format = "uuid")]
    id: String,
    display_name: Option<String>,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

impl From<&PersonOutcome> for OutcomeDto {
    fn from(o: &PersonOutcome) -> Self {
        let (outcome, retry_after) = match o.outcome {
            Outcome::Started => ("started", None),
            Outcome::Paused => ("paused", None),
            Outcome::PremiumRequired => ("premium_required", None),
            Outcome::NoPlayer => ("no_player", None),
            Outcome::ReconnectSpotify => ("reconnect_spotify", None),
            Outcome::RateLimited { retry_after } => ("rate_limited", Some(retry_after.as_secs().max(1))),
            Outcome::Failed => ("failed", None),
        };
        OutcomeDto {
            id: o.user_id.to_string(),
            display_name: o.display_name.as_ref().map(ToString::to_string),
            outcome,
            retry_after,
        }
    }
}

/// What `POST /logout` did.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = LogoutResult)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogoutDto {
    scope: &'static str,
    sessions_ended: u64,
    spotify_disconnected: bool,
}

/// A logout scope's name in our API (`?scope=` and the answer's `scope`).
fn logout_scope_name(scope: LogoutScope) -> &'static str {
    match scope {
        LogoutScope::Device => "device",
        LogoutScope::Everywhere => "everywhere",
    }
}

/// The scope a `?scope=` value names.
pub fn logout_scope(name: &str) -> Option<LogoutScope> {
    [LogoutScope::Device, LogoutScope::Everywhere].into_iter().find(|s| logout_scope_name(*s) == name)
}

impl From<LogoutOutcome> for LogoutDto {
    fn from(o: LogoutOutcome) -> Self {
        LogoutDto {
            scope: logout_scope_name(o.scope),
            sessions_ended: o.sessions_ended,
            spotify_disconnected: o.spotify_disconnected,
        }
    }
}

/// One of the caller's sessions (`GET /api/users/me/sessions`): where and when, never a token.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Session)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionDto {
    #[schema(format = "uuid")]
    id: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    last_seen_at: String,
    #[schema(format = DateTime)]
    expires_at: String,
    device: String,
    user_agent: Option<String>,
    ip_address: Option<String>,
    current: bool,
}

impl SessionDto {
    /// `current`: whether this is the session making the request.
    pub fn new(s: &Session, current: bool) -> Self {
        SessionDto {
            id: s.id.to_string(),
            created_at: iso(s.created_at),
            last_seen_at: iso(s.last_active),
            // The session ends at its absolute end or when its current token expires unused.
            expires_at: iso(s.token_expires_at.map_or(s.expires_at, |t| t.min(s.expires_at))),
            device: device(s.meta.user_agent.as_deref()),
            user_agent: s.meta.user_agent.clone(),
            ip_address: s.meta.ip_address.clone(),
            current,
        }
    }
}

/// A readable device from a user agent: "Firefox on Linux", "Safari on iPhone", or what is known.
pub fn device(user_agent: Option<&str>) -> String {
    let parsed = user_agent.and_then(|ua| woothee::parser::Parser::new().parse(ua));
    let known = |v: &str| (!v.is_empty() && v != woothee::woothee::VALUE_UNKNOWN).then(|| v.to_owned());
    let (browser, os) = parsed.map_or((None, None), |p| (known(p.name), known(p.os)));
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => "Unknown device".to_owned(),
    }
}

/// The caller's sessions.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Sessions)]
#[serde(deny_unknown_fields)]
pub struct SessionListDto {
    /// Live sessions, most recently used first.
    pub items: Vec<SessionDto>,
}

/// What ending sessions did (`DELETE /api/users/me/sessions`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SessionsEnded)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionsEndedDto {
    /// How many live sessions ended.
    pub sessions_ended: u64,
}

/// A Spotify access token for the Web Playback SDK.
#[derive(Serialize, ToSchema)]
#[schema(as = AccessToken)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessTokenDto {
    access_token: String,
    #[schema(format = DateTime)]
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

impl std::fmt::Debug for AccessTokenDto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokenDto")
            .field("access_token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("expires_in", &self.expires_in)
            .field("session_token", &self.session_token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// `POST /api/auth/spotify/login`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = LoginResponse)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginResponseDto {
    /// Spotify's authorize page, to navigate to.
    #[schema(format = "uri")]
    pub authorize_url: String,
}

/// `GET /api/auth/spotify/subscription`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Subscription)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriptionDto {
    /// null while unknown (Development Mode apps get no `product`, see `source`).
    pub is_premium: Option<bool>,
    /// Spotify's `product` when it sent one.
    pub product: Option<String>,
    /// When Premium was last checked.
    #[schema(format = DateTime)]
    pub checked_at: Option<String>,
    /// How it was learned: `profile`, `player_probe`, `playback_sdk` or `none`.
    pub source: &'static str,
}

/// `POST /api/room/play` and `/pause`: each person's outcome; never a token.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = GroupOutcomes)]
#[serde(deny_unknown_fields)]
pub struct GroupOutcomesDto {
    /// One per person present.
    pub outcomes: Vec<OutcomeDto>,
}

/// `GET /api/config`: what a page needs to know (public; the same for everyone).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ClientConfig)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientConfigDto<'a> {
    /// The Web Playback SDK script to load (`SPOTIFY_SDK_URL`).
    #[schema(format = "uri")]
    pub sdk_url: &'a str,
    /// Spotify's Web API base.
    #[schema(format = "uri")]
    pub spotify_api_url: &'a str,
}

/// `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Health)]
#[serde(deny_unknown_fields)]
pub struct HealthDto {
    /// `ok`.
    pub status: &'static str,
}

/// `GET /readyz`: what serving needs, each checked.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Readiness)]
#[serde(deny_unknown_fields)]
pub struct ReadyDto {
    /// `ready`.
    pub status: &'static str,
    /// `ok`: the database answered.
    pub database: &'static str,
    /// `ok`: the newest stored Spotify token decrypts with the configured keys.
    pub keys: &'static str,
}

#[cfg(test)]
mod tests {
    use spotauth_domain::secret::AccessToken;
    use spotauth_domain::token::AccessGrant;

    use super::*;

    #[test]
    fn devices_are_readable_whatever_the_user_agent() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(device(Some(firefox)), "Firefox on Linux");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        assert_eq!(device(Some(iphone)), "Safari on iPhone");
        for unknown in [None, Some(""), Some("curl/8.5.0 \u{0}"), Some("\u{1f600}")] {
            assert!(!device(unknown).is_empty(), "{unknown:?}");
        }
        assert_eq!(device(None), "Unknown device");
    }

    #[test]
    fn debug_never_prints_the_tokens() {
        let grant = AccessGrant {
            access_token: AccessToken::new("BQ-secret-access").unwrap(),
            expires_at: Timestamp::from_unix_seconds(1_800_003_600),
        };
        let served = ServedToken { grant, served_at: Timestamp::from_unix_seconds(1_800_000_000) };
        let dto = AccessTokenDto::new(&served, Some("eyJ.session.token".into()));
        let printed = format!("{dto:?}");
        assert!(!printed.contains("BQ-secret-access") && !printed.contains("eyJ.session"), "{printed}");
        assert!(printed.contains("expires_in: 3600"), "{printed}");
    }
}
