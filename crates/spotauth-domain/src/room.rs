//! Listening together: who is present with a live player, and one call that starts (or
//! pauses) the same music for everyone, each person on their own account and device.
//!
//! Spotify plays one stream per account, so "several people play at once" means each person's
//! own account playing on their own device (a Web Playback SDK player in their browser). This
//! service holds everyone's token and keeps it fresh, so it can start the same tracks on every
//! present person's device at once, fairly and safely:
//!
//! - **Consent.** Only people present are controlled: a live session, not opted out of the
//!   list, and a player their own page reported within [`RoomPolicy::player_stale_after`]. A
//!   person who opted out, logged out or closed the page is never controlled.
//! - **Who controls.** Anyone present, or only the accounts named in [`RoomPolicy::hosts`].
//! - **Each on their own token**, fresh before the call ([`TokenService`]: single flight, lease,
//!   shared 429 backoff), in parallel with bounded concurrency; a 429 on one call backs off the
//!   rest of the batch and later calls ([`TokenService::under_backoff`]).
//! - **Devices that just appeared** (Spotify answers 404 once): wait, transfer, play again, once.
//! - **Outcomes, not tokens:** each person's outcome is reported without naming any token.
//!
//! Player reports are verified against Spotify's device list with the reporter's own token the
//! first time a device id is seen, so nobody can register a device that is not theirs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt as _;

use crate::ids::UserId;
use crate::ports::{Clock, RepoError, SpotifyError, TokenError, UserRepository};
use crate::secret::AccessToken;
use crate::session::SessionPolicy;
use crate::time::Timestamp;
use crate::tokens::TokenService;
use crate::user::{DisplayName, PageRequest, PremiumStatus, Presence, SpotifyUserId, User};

/// Why a room value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomFieldError {
    /// A device id: 1 to 128 characters of `A-Z a-z 0-9 - _`.
    #[error("a device id is 1 to 128 letters, digits, '-' or '_'")]
    DeviceId,
    /// A device or track name: 1 to 200 characters, no control characters.
    #[error("a name is 1 to 200 characters without control characters")]
    Name,
    /// A Spotify URI of the wrong kind or shape.
    #[error("{0}")]
    Uri(&'static str),
    /// More tracks than one call may start.
    #[error("at most {} track URIs at once", GroupPlay::MAX_URIS)]
    TooManyUris,
}

/// A Spotify Connect device id (a Web Playback SDK player's `device_id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceId(String);

impl DeviceId {
    /// Validates.
    pub fn new(id: impl Into<String>) -> Result<Self, RoomFieldError> {
        let id = id.into();
        let ok =
            (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok { Ok(DeviceId(id)) } else { Err(RoomFieldError::DeviceId) }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A short human text (a device's or a track's name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortName(String);

impl ShortName {
    /// Validates (trimmed, 1 to 200 characters, no control characters).
    pub fn new(name: impl Into<String>) -> Result<Self, RoomFieldError> {
        let name = name.into().trim().to_owned();
        let ok = (1..=200).contains(&name.chars().count()) && !name.chars().any(char::is_control);
        if ok { Ok(ShortName(name)) } else { Err(RoomFieldError::Name) }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Spotify URI `spotify:<kind>:<base-62 id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotifyUri(String);

impl SpotifyUri {
    fn parse(uri: &str, kinds: &[&str], what: &'static str) -> Result<Self, RoomFieldError> {
        let mut parts = uri.split(':');
        let ok = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("spotify"), Some(kind), Some(id), None) => {
                kinds.contains(&kind) && (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
            }
            _ => false,
        };
        if ok { Ok(SpotifyUri(uri.to_owned())) } else { Err(RoomFieldError::Uri(what)) }
    }

    /// A track or episode URI.
    pub fn item(uri: &str) -> Result<Self, RoomFieldError> {
        Self::parse(uri, &["track", "episode"], "a track URI is spotify:track:<id> or spotify:episode:<id>")
    }

    /// A context URI (album, playlist, artist or show).
    pub fn context(uri: &str) -> Result<Self, RoomFieldError> {
        Self::parse(
            uri,
            &["album", "playlist", "artist", "show"],
            "a context URI is spotify:album|playlist|artist|show:<id>",
        )
    }

    /// The URI.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a group play starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayTarget {
    /// These tracks (or episodes), in order.
    Items(Vec<SpotifyUri>),
    /// A context (album, playlist, artist, show) from its start.
    Context(SpotifyUri),
}

/// One group play: what, and from where in the first item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPlay {
    /// What everyone plays.
    pub target: PlayTarget,
    /// Where in the first item, in ms.
    pub position_ms: u64,
}

impl GroupPlay {
    /// Most item URIs one call takes.
    pub const MAX_URIS: usize = 50;

    /// Items to play (1 to [`Self::MAX_URIS`] URIs).
    pub fn items(uris: &[String], position_ms: u64) -> Result<Self, RoomFieldError> {
        if uris.is_empty() {
            return Err(RoomFieldError::Uri("give at least one track URI"));
        }
        if uris.len() > Self::MAX_URIS {
            return Err(RoomFieldError::TooManyUris);
        }
        let items = uris.iter().map(|u| SpotifyUri::item(u)).collect::<Result<_, _>>()?;
        Ok(GroupPlay { target: PlayTarget::Items(items), position_ms })
    }

    /// A context to play.
    pub fn context(uri: &str, position_ms: u64) -> Result<Self, RoomFieldError> {
        Ok(GroupPlay { target: PlayTarget::Context(SpotifyUri::context(uri)?), position_ms })
    }
}

/// What a person's player is playing, as their page last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NowPlaying {
    /// The item's URI.
    pub uri: SpotifyUri,
    /// Its name.
    pub name: ShortName,
    /// Playing (not paused).
    pub is_playing: bool,
}

/// A person's player, as stored: one per person (an account plays one stream anyway; the
/// latest page to report wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Player {
    /// Whose.
    pub user_id: UserId,
    /// The SDK player's Connect device.
    pub device_id: DeviceId,
    /// The name the player shows in Spotify Connect.
    pub device_name: ShortName,
    /// What it plays, when known.
    pub now_playing: Option<NowPlaying>,
    /// When its page last reported it.
    pub seen_at: Timestamp,
}

/// A page's report of its player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerReport {
    /// The SDK's `device_id`.
    pub device_id: DeviceId,
    /// The player's name.
    pub device_name: ShortName,
    /// What it plays, when known.
    pub now_playing: Option<NowPlaying>,
}

/// A person in the room: their presence, and whether they are ready to play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomMember {
    /// What the active list shows of them.
    pub presence: Presence,
    /// Premium (or not known to be free), connected, and a live player.
    pub ready: bool,
    /// What their player plays, when their page said.
    pub now_playing: Option<NowPlaying>,
}

/// How a group command went for one person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Their player started (a play).
    Started,
    /// Their player paused (a pause).
    Paused,
    /// They are on a free plan: no call was made.
    PremiumRequired,
    /// No live player is open for them (or it vanished): no call, or none that could land.
    NoPlayer,
    /// Their Spotify connection needs a new login.
    ReconnectSpotify,
    /// Spotify is rate limiting the app: no call was made for them.
    RateLimited {
        /// When to try again.
        retry_after: Duration,
    },
    /// Spotify failed otherwise (unavailable, refused).
    Failed,
}

/// One person's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonOutcome {
    /// Who.
    pub user_id: UserId,
    /// Their display name.
    pub display_name: Option<DisplayName>,
    /// What happened.
    pub outcome: Outcome,
}

/// How a player command of Spotify's Web API was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayerAnswer {
    /// Done (2xx).
    Done,
    /// 404: "Device not found", or `NO_ACTIVE_DEVICE` (a device that only just appeared
    /// answers this once).
    DeviceNotFound,
}

/// Spotify Connect, as this service uses it, with one user's access token.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait SpotifyPlayerPort: Send + Sync + 'static {
    /// `GET /v1/me/player/devices`: the ids of the user's devices. Errors as
    /// [`crate::ports::SpotifyProfilePort::current_profile`], plus `PremiumRequired` for 403
    /// `PREMIUM_REQUIRED`.
    async fn devices(&self, access_token: &AccessToken) -> Result<Vec<DeviceId>, SpotifyError>;

    /// `PUT /v1/me/player/play?device_id=`. MUST return `Ok(DeviceNotFound)` for 404, and the
    /// errors of [`Self::devices`].
    async fn play(
        &self,
        access_token: &AccessToken,
        device: &DeviceId,
        what: &GroupPlay,
    ) -> Result<PlayerAnswer, SpotifyError>;

    /// `PUT /v1/me/player/pause?device_id=`; as [`Self::play`].
    async fn pause(&self, access_token: &AccessToken, device: &DeviceId) -> Result<PlayerAnswer, SpotifyError>;

    /// `PUT /v1/me/player` with this one device (`play: false`); as [`Self::play`].
    async fn transfer(&self, access_token: &AccessToken, device: &DeviceId) -> Result<PlayerAnswer, SpotifyError>;
}

/// Players, and a version of the room that moves on each change (shared by every instance).
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait PlayerRepository: Send + Sync + 'static {
    /// Stores the user's player, replacing the one stored before.
    async fn upsert(&self, player: Player) -> Result<(), RepoError>;

    /// Forgets the user's player when it is `device` (any player when `None`); whether one was.
    async fn remove(&self, user: UserId, device: Option<DeviceId>) -> Result<bool, RepoError>;

    /// The user's stored player, however old.
    async fn player_of(&self, user: UserId) -> Result<Option<Player>, RepoError>;

    /// Every player reported at or after `seen_after`.
    async fn live(&self, seen_after: Timestamp) -> Result<Vec<Player>, RepoError>;

    /// Deletes players last reported before `seen_before`; how many.
    async fn purge(&self, seen_before: Timestamp) -> Result<u64, RepoError>;

    /// Records that the room changed (someone came, left, or their player did); MUST make
    /// [`Self::version`] larger on every instance.
    async fn bump(&self, now: Timestamp) -> Result<(), RepoError>;

    /// The room's version (0 before any change). Cheap: instances poll it.
    async fn version(&self) -> Result<u64, RepoError>;

    /// Deletes the change records older than `before` except the latest; how many.
    async fn purge_changes(&self, before: Timestamp) -> Result<u64, RepoError>;
}

/// Rules of the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomPolicy {
    /// A player not reported for this long is gone (the page sends a heartbeat every 30 s).
    pub player_stale_after: Duration,
    /// At most this many people's Spotify calls at once.
    pub concurrency: usize,
    /// Who may start or pause group playback: `None`, anyone present; else these accounts.
    pub hosts: Option<Vec<SpotifyUserId>>,
    /// How long to wait before retrying a device that answered 404.
    pub device_retry_delay: Duration,
    /// Sessions, for "present".
    pub sessions: SessionPolicy,
    /// A token must stay valid this long to be used.
    pub token_min_validity: Duration,
}

impl RoomPolicy {
    /// Defaults: players stale after 90 s, 8 calls at once, anyone present may start, a 500 ms
    /// wait before the one retry.
    pub fn new(sessions: SessionPolicy, token_min_validity: Duration) -> Self {
        RoomPolicy {
            player_stale_after: Duration::from_secs(90),
            concurrency: 8,
            hosts: None,
            device_retry_delay: Duration::from_millis(500),
            sessions,
            token_min_validity,
        }
    }
}

/// Why a room request failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    /// The device is not among the user's Spotify devices (yet).
    #[error("the device is not one of this account's Spotify devices")]
    DeviceNotFound,
    /// The user is on a free plan: no player of theirs can play.
    #[error("Spotify Premium required")]
    PremiumRequired,
    /// Group playback is limited to the configured hosts.
    #[error("only the room's hosts may start or pause group playback")]
    NotHost,
    /// A token problem (re-authorization, rate limit, unavailable, store).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] RepoError),
}

/// The ports of the room.
#[derive(Clone)]
pub struct RoomPorts {
    /// Users (the present list).
    pub users: Arc<dyn UserRepository>,
    /// Players and the room's version.
    pub players: Arc<dyn PlayerRepository>,
    /// Spotify Connect.
    pub spotify: Arc<dyn SpotifyPlayerPort>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RoomPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomPorts").finish_non_exhaustive()
    }
}

/// The room's use cases.
pub struct RoomService {
    ports: RoomPorts,
    tokens: Arc<TokenService>,
    policy: RoomPolicy,
}

impl std::fmt::Debug for RoomService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomService").field("policy", &self.policy).finish_non_exhaustive()
    }
}

/// A group command.
#[derive(Debug, Clone, Copy)]
enum Command<'a> {
    Play(&'a GroupPlay),
    Pause,
}

impl RoomService {
    /// The room on its ports, with `tokens` for every access token.
    pub fn new(ports: RoomPorts, tokens: Arc<TokenService>, policy: RoomPolicy) -> Self {
        RoomService { ports, tokens, policy }
    }

    /// The rules in force.
    pub fn policy(&self) -> &RoomPolicy {
        &self.policy
    }

    fn live_players_since(&self, now: Timestamp) -> Timestamp {
        now.minus(self.policy.player_stale_after)
    }

    /// A page reports its player (on `ready`, on a change, as a heartbeat). A device id not
    /// stored for this user yet is checked against the user's Spotify devices first, with their
    /// own token; the room's version moves when the player or what it plays changed.
    pub async fn report_player(&self, user: &User, report: PlayerReport) -> Result<(), RoomError> {
        if user.subscription.status == PremiumStatus::Free {
            return Err(RoomError::PremiumRequired);
        }
        let previous = self.ports.players.player_of(user.id).await?;
        if previous.as_ref().is_none_or(|p| p.device_id != report.device_id) {
            let grant = self.tokens.valid_access_token(user.id, self.policy.token_min_validity).await?;
            let devices = match self.tokens.under_backoff(self.ports.spotify.devices(&grant.access_token)).await {
                Err(TokenError::Spotify(SpotifyError::PremiumRequired)) => return Err(RoomError::PremiumRequired),
                other => other?,
            };
            if !devices.contains(&report.device_id) {
                return Err(RoomError::DeviceNotFound);
            }
        }
        let now = self.ports.clock.now();
        let changed = previous.as_ref().is_none_or(|p| {
            p.device_id != report.device_id
                || p.now_playing != report.now_playing
                || p.seen_at < self.live_players_since(now)
        });
        let player = Player {
            user_id: user.id,
            device_id: report.device_id,
            device_name: report.device_name,
            now_playing: report.now_playing,
            seen_at: now,
        };
        self.ports.players.upsert(player).await?;
        if changed {
            self.ports.players.bump(now).await?;
        }
        Ok(())
    }

    /// A page's player went away.
    pub async fn leave(&self, user: UserId, device: DeviceId) -> Result<(), RoomError> {
        if self.ports.players.remove(user, Some(device)).await? {
            self.ports.players.bump(self.ports.clock.now()).await?;
        }
        Ok(())
    }

    /// A user's player is gone with them (logout, opt-out): forget it and tell the room.
    pub async fn forget(&self, user: UserId) -> Result<(), RoomError> {
        if self.ports.players.remove(user, None).await? {
            self.ports.players.bump(self.ports.clock.now()).await?;
        }
        Ok(())
    }

    /// Someone arrived or changed how they show (logged in, opted in or out): tell the room.
    pub async fn changed(&self) -> Result<(), RoomError> {
        Ok(self.ports.players.bump(self.ports.clock.now()).await?)
    }

    /// The room's version: it moves on every change (pages re-read the list then).
    pub async fn version(&self) -> Result<u64, RoomError> {
        Ok(self.ports.players.version().await?)
    }

    /// One page of the people present, each with whether they are ready and what they play.
    pub async fn members(&self, page: PageRequest) -> Result<(Vec<RoomMember>, u64), RoomError> {
        let now = self.ports.clock.now();
        let users = self.ports.users.list_active(page, self.policy.sessions.live_after(now)).await?;
        let players = self.players_by_user(now).await?;
        let members = users
            .items
            .iter()
            .map(|u| {
                let player = players.get(&u.id);
                RoomMember {
                    presence: Presence::of(u),
                    ready: player.is_some() && can_be_controlled(u),
                    now_playing: player.and_then(|p| p.now_playing.clone()),
                }
            })
            .collect();
        Ok((members, users.total))
    }

    async fn players_by_user(&self, now: Timestamp) -> Result<HashMap<UserId, Player>, RepoError> {
        let live = self.ports.players.live(self.live_players_since(now)).await?;
        Ok(live.into_iter().map(|p| (p.user_id, p)).collect())
    }

    /// Everyone present (live session, not opted out), in one read: paging through a room of
    /// thousands would cost a count and an offset scan per page.
    async fn present(&self, now: Timestamp) -> Result<Vec<User>, RoomError> {
        Ok(self.ports.users.list_present(self.policy.sessions.live_after(now)).await?)
    }

    fn may_control(&self, host: &User) -> Result<(), RoomError> {
        match &self.policy.hosts {
            Some(hosts) if !hosts.contains(&host.spotify_id) => Err(RoomError::NotHost),
            _ if !host.is_active => Err(RoomError::NotHost),
            _ => Ok(()),
        }
    }

    /// Starts the same music for everyone present, each on their own device and token.
    pub async fn play_for_everyone(&self, host: &User, what: &GroupPlay) -> Result<Vec<PersonOutcome>, RoomError> {
        self.for_everyone(host, Command::Play(what)).await
    }

    /// Pauses everyone present.
    pub async fn pause_everyone(&self, host: &User) -> Result<Vec<PersonOutcome>, RoomError> {
        self.for_everyone(host, Command::Pause).await
    }

    async fn for_everyone(&self, host: &User, command: Command<'_>) -> Result<Vec<PersonOutcome>, RoomError> {
        self.may_control(host)?;
        let now = self.ports.clock.now();
        let people = self.present(now).await?;
        let players = self.players_by_user(now).await?;
        let concurrency = self.policy.concurrency.max(1);
        let outcomes: Vec<PersonOutcome> = futures_util::stream::iter(people.iter())
            .map(|person| {
                let player = players.get(&person.id);
                async move {
                    PersonOutcome {
                        user_id: person.id,
                        display_name: person.display_name.clone(),
                        outcome: self.command_one(person, player, command).await,
                    }
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        self.ports.players.bump(self.ports.clock.now()).await?;
        Ok(outcomes)
    }

    /// One person: the checks that need no call, a fresh token, the command, and one retry
    /// (transfer, then the command again) for a device that just appeared.
    async fn command_one(&self, person: &User, player: Option<&Player>, command: Command<'_>) -> Outcome {
        if person.subscription.status == PremiumStatus::Free {
            return Outcome::PremiumRequired;
        }
        if !person.has_tokens || person.reauth_required {
            return Outcome::ReconnectSpotify;
        }
        let Some(player) = player else {
            return Outcome::NoPlayer;
        };
        let grant = match self.tokens.valid_access_token(person.id, self.policy.token_min_validity).await {
            Ok(grant) => grant,
            Err(e) => return failed(&e),
        };
        let token = &grant.access_token;
        let device = &player.device_id;
        let send = || async {
            let call = async {
                match command {
                    Command::Play(what) => self.ports.spotify.play(token, device, what).await,
                    Command::Pause => self.ports.spotify.pause(token, device).await,
                }
            };
            self.tokens.under_backoff(call).await
        };
        let done = match command {
            Command::Play(_) => Outcome::Started,
            Command::Pause => Outcome::Paused,
        };
        match send().await {
            Ok(PlayerAnswer::Done) => return done,
            Ok(PlayerAnswer::DeviceNotFound) => {}
            Err(e) => return failed(&e),
        }
        // A device that only just appeared answers 404 once: wait, make it active, try again.
        self.ports.clock.sleep(self.policy.device_retry_delay).await;
        match self.tokens.under_backoff(self.ports.spotify.transfer(token, device)).await {
            Ok(_) => {}
            Err(e) => return failed(&e),
        }
        match send().await {
            Ok(PlayerAnswer::Done) => done,
            Ok(PlayerAnswer::DeviceNotFound) => Outcome::NoPlayer,
            Err(e) => failed(&e),
        }
    }

    /// Forgets players not reported for a long time and old change records (housekeeping).
    pub async fn housekeeping(&self, keep_changes: Duration) -> Result<u64, RoomError> {
        let now = self.ports.clock.now();
        let players = self.ports.players.purge(self.live_players_since(now)).await?;
        let changes = self.ports.players.purge_changes(now.minus(keep_changes)).await?;
        Ok(players + changes)
    }
}

/// Premium or not known to be free, and connected: the service may start their player.
fn can_be_controlled(user: &User) -> bool {
    user.subscription.status != PremiumStatus::Free && user.has_tokens && !user.reauth_required
}

/// The outcome of a token or Spotify error.
fn failed(e: &TokenError) -> Outcome {
    match e {
        TokenError::RateLimited { retry_after } => Outcome::RateLimited { retry_after: *retry_after },
        TokenError::ReauthRequired | TokenError::NotConnected => Outcome::ReconnectSpotify,
        TokenError::Spotify(SpotifyError::PremiumRequired) => Outcome::PremiumRequired,
        TokenError::Spotify(SpotifyError::ReauthRequired | SpotifyError::AccessTokenInvalid) => {
            Outcome::ReconnectSpotify
        }
        _ => Outcome::Failed,
    }
}

#[cfg(test)]
mod tests;
