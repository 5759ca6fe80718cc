//! Spotify Connect as the emulator keeps it: each user's devices (one per Web Playback SDK
//! player) and each user's one stream. The Web API's player endpoints and the fake SDK's own
//! endpoints both act on this model (see `player.rs`).
//!
//! The rules it holds (`shared/spotify/FACTS.md`, "Spotify Connect"):
//! - one account plays one stream: playback belongs to the user and sits on at most one device,
//!   so starting it on a second device of the same account takes it off the first;
//! - a device belongs to the account whose token registered it, and disappears when its player
//!   disconnects or stops polling for [`DEVICE_STALE_AFTER`] (a stale player);
//! - positions advance with the emulator clock while playing; at a track's end the next one of
//!   the list starts, and after the last one playback stops.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A player that has not polled for this long is dropped from the user's devices, as Spotify
/// drops a browser tab that went away without disconnecting.
pub const DEVICE_STALE_AFTER_MS: u64 = 30_000;

/// How many tracks a context (album, playlist…) holds in the emulator's synthetic catalogue.
const CONTEXT_TRACKS: u64 = 10;

/// One Connect device (a Web Playback SDK player).
#[derive(Debug, Clone)]
pub(crate) struct Device {
    pub(crate) user_id: String,
    pub(crate) name: String,
    pub(crate) volume_percent: u8,
    pub(crate) last_seen_ms: u64,
    /// Bumped whenever what this device shows changes (the fake SDK fires
    /// `player_state_changed` on a new version).
    pub(crate) version: u64,
}

/// A user's one stream.
#[derive(Debug, Clone)]
pub(crate) struct Playback {
    /// The device playing it; `None` once that device went away.
    pub(crate) device_id: Option<String>,
    pub(crate) context_uri: Option<String>,
    pub(crate) uris: Vec<String>,
    pub(crate) index: usize,
    pub(crate) is_playing: bool,
    /// Position at `anchor_ms`.
    pub(crate) position_ms: u64,
    pub(crate) anchor_ms: u64,
    /// When playback last changed (play, pause, skip, seek, transfer), Unix ms.
    pub(crate) changed_at_ms: u64,
}

/// Where a play request starts.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct PlayBody {
    pub(crate) context_uri: Option<String>,
    pub(crate) uris: Option<Vec<String>>,
    pub(crate) offset: Option<Offset>,
    pub(crate) position_ms: Option<u64>,
}

/// `offset` of a play request: a position in the list or a track's URI.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Offset {
    Position { position: usize },
    Uri { uri: String },
}

/// Why a player request was refused: the Web API's status, message and optional reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) message: &'static str,
    pub(crate) reason: Option<&'static str>,
}

impl Refusal {
    const fn new(status: u16, message: &'static str, reason: Option<&'static str>) -> Self {
        Refusal { status, message, reason }
    }

    pub(crate) const fn device_not_found() -> Self {
        Self::new(404, "Device not found", None)
    }

    const fn no_active_device() -> Self {
        Self::new(404, "Player command failed: No active device found", Some("NO_ACTIVE_DEVICE"))
    }

    fn bad(message: &'static str) -> Self {
        Self::new(400, message, None)
    }
}

/// A command from a player's own controls (the SDK's `pause()`, `seek()`…).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub(crate) enum SdkCommand {
    Pause,
    Resume,
    Toggle,
    Seek { position_ms: u64 },
    Next,
    Previous,
    Volume { volume: f64 },
    Name { name: String },
}

/// What the control API shows of the Connect model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerSnapshot {
    /// Every device, by id.
    pub devices: BTreeMap<String, DeviceSnapshot>,
    /// Every user's stream, by Spotify user id.
    pub playback: BTreeMap<String, PlaybackSnapshot>,
}

impl PlayerSnapshot {
    /// The users playing right now, with the device each plays on.
    #[must_use]
    pub fn playing(&self) -> BTreeMap<String, String> {
        self.playback
            .iter()
            .filter(|(_, p)| p.is_playing)
            .filter_map(|(user, p)| Some((user.clone(), p.device_id.clone()?)))
            .collect()
    }
}

/// One device in a [`PlayerSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSnapshot {
    /// Its owner's Spotify user id.
    pub user_id: String,
    /// The name its player gave.
    pub name: String,
    /// Whether its owner's stream is on it.
    pub is_active: bool,
}

/// One user's stream in a [`PlayerSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaybackSnapshot {
    /// The device it plays on (none once that device went away).
    pub device_id: Option<String>,
    /// Playing (not paused).
    pub is_playing: bool,
    /// The current track's URI.
    pub track_uri: Option<String>,
    /// The context it plays from, if any.
    pub context_uri: Option<String>,
    /// The position now, ms.
    pub progress_ms: u64,
}

/// The Connect model: devices and streams.
#[derive(Debug, Default)]
pub(crate) struct Connect {
    pub(crate) devices: BTreeMap<String, Device>,
    pub(crate) playback: HashMap<String, Playback>,
}

/// A track's length in the synthetic catalogue: 2:30 to 4:30, fixed per URI.
fn duration_of(uri: &str) -> u64 {
    let sum = uri.bytes().fold(0u64, |acc, b| acc.wrapping_mul(31).wrapping_add(u64::from(b)));
    150_000 + (sum % 120) * 1_000
}

/// `spotify:<kind>:<id>` with a base-62 id.
fn parse_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("spotify:")?;
    let (kind, id) = rest.split_once(':')?;
    (!id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())).then_some((kind, id))
}

/// The tracks of a context in the synthetic catalogue.
fn context_tracks(kind: &str, id: &str) -> Vec<String> {
    (1..=CONTEXT_TRACKS).map(|n| format!("spotify:track:{kind}{id}{n:02}")).collect()
}

impl Playback {
    fn current_uri(&self) -> Option<&str> {
        self.uris.get(self.index).map(String::as_str)
    }

    /// Moves position (and track) on to `now_ms`; `true` when the track changed or it stopped.
    fn settle(&mut self, now_ms: u64) -> bool {
        if !self.is_playing {
            return false;
        }
        let mut position = self.position_ms.saturating_add(now_ms.saturating_sub(self.anchor_ms));
        let mut changed = false;
        while let Some(uri) = self.current_uri() {
            let length = duration_of(uri);
            if position < length {
                break;
            }
            position -= length;
            changed = true;
            if self.index + 1 >= self.uris.len() {
                self.is_playing = false;
                position = 0;
                break;
            }
            self.index += 1;
        }
        self.position_ms = position;
        self.anchor_ms = now_ms;
        if changed {
            self.changed_at_ms = now_ms;
        }
        changed
    }
}

impl Connect {
    /// Drops stale devices and moves every stream on to `now_ms`.
    pub(crate) fn settle(&mut self, now_ms: u64) {
        let stale: Vec<String> = self
            .devices
            .iter()
            .filter(|(_, d)| now_ms.saturating_sub(d.last_seen_ms) > DEVICE_STALE_AFTER_MS)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            self.remove_device(&id, now_ms);
        }
        let changed: Vec<String> = self
            .playback
            .values_mut()
            .filter_map(|p| p.settle(now_ms).then(|| p.device_id.clone()).flatten())
            .collect();
        for device in changed {
            self.bump(Some(&device));
        }
    }

    fn bump(&mut self, device_id: Option<&str>) {
        if let Some(d) = device_id.and_then(|id| self.devices.get_mut(id)) {
            d.version = d.version.wrapping_add(1);
        }
    }

    pub(crate) fn register(&mut self, user_id: &str, name: &str, volume: f64, device_id: String, now_ms: u64) {
        let volume_percent = percent(volume);
        let device = Device {
            user_id: user_id.to_owned(),
            name: name.to_owned(),
            volume_percent,
            last_seen_ms: now_ms,
            version: 1,
        };
        self.devices.insert(device_id, device);
    }

    /// The device, when it is this user's.
    pub(crate) fn device_of(&self, user_id: &str, device_id: &str) -> Option<&Device> {
        self.devices.get(device_id).filter(|d| d.user_id == user_id)
    }

    pub(crate) fn seen(&mut self, device_id: &str, now_ms: u64) {
        if let Some(d) = self.devices.get_mut(device_id) {
            d.last_seen_ms = now_ms;
        }
    }

    /// Removes a device; a stream on it stops (it has nowhere to play).
    pub(crate) fn remove_device(&mut self, device_id: &str, now_ms: u64) -> bool {
        let Some(device) = self.devices.remove(device_id) else {
            return false;
        };
        if let Some(p) = self.playback.get_mut(&device.user_id)
            && p.device_id.as_deref() == Some(device_id)
        {
            p.settle(now_ms);
            p.device_id = None;
            p.is_playing = false;
            p.changed_at_ms = now_ms;
        }
        true
    }

    /// The device the user's stream is on, while that device exists.
    pub(crate) fn active_device(&self, user_id: &str) -> Option<&str> {
        let id = self.playback.get(user_id)?.device_id.as_deref()?;
        self.devices.contains_key(id).then_some(id)
    }

    /// The device a command targets: the one named (it must be the user's) or the active one.
    fn target(&self, user_id: &str, device_id: Option<&str>) -> Result<String, Refusal> {
        match device_id {
            Some(id) => self.device_of(user_id, id).map(|_| id.to_owned()).ok_or_else(Refusal::device_not_found),
            None => self.active_device(user_id).map(str::to_owned).ok_or_else(Refusal::no_active_device),
        }
    }

    /// Puts the user's stream on `device` (taking it off any other device of theirs).
    fn move_to(&mut self, user_id: &str, device: &str, now_ms: u64) {
        let previous = self.playback.get(user_id).and_then(|p| p.device_id.clone());
        if let Some(p) = self.playback.get_mut(user_id) {
            p.settle(now_ms);
            p.device_id = Some(device.to_owned());
            p.changed_at_ms = now_ms;
        }
        self.bump(previous.as_deref());
        self.bump(Some(device));
    }

    /// `PUT /v1/me/player/play`.
    pub(crate) fn play(
        &mut self,
        user_id: &str,
        device_id: Option<&str>,
        body: Option<PlayBody>,
        now_ms: u64,
    ) -> Result<(), Refusal> {
        let device = self.target(user_id, device_id)?;
        let resume_at = body.as_ref().and_then(|b| b.position_ms);
        let Some(body) = body.filter(|b| b.context_uri.is_some() || b.uris.is_some()) else {
            // Resume what the user last played, on this device.
            let offset = resume_at;
            if !self.playback.contains_key(user_id) {
                return Err(Refusal::no_active_device());
            }
            self.move_to(user_id, &device, now_ms);
            if let Some(p) = self.playback.get_mut(user_id) {
                p.is_playing = true;
                if let Some(ms) = offset {
                    p.position_ms = ms;
                }
                p.anchor_ms = now_ms;
            }
            return Ok(());
        };
        let (context_uri, uris) = match (body.context_uri, body.uris) {
            (Some(_), Some(_)) => return Err(Refusal::bad("Only one of context_uri and uris may be given")),
            (Some(context), None) => match parse_uri(&context) {
                Some((kind @ ("album" | "playlist" | "artist" | "show"), id)) => {
                    let tracks = context_tracks(kind, id);
                    (Some(context), tracks)
                }
                _ => return Err(Refusal::bad("Invalid context uri")),
            },
            (None, Some(uris)) => {
                if uris.is_empty() || uris.iter().any(|u| !matches!(parse_uri(u), Some(("track", _)))) {
                    return Err(Refusal::bad("Invalid track uri"));
                }
                (None, uris)
            }
            (None, None) => return Err(Refusal::bad("Malformed json")),
        };
        let index = match body.offset {
            None => 0,
            Some(Offset::Position { position }) if position < uris.len() => position,
            Some(Offset::Uri { uri }) => uris.iter().position(|u| *u == uri).ok_or(Refusal::bad("Invalid offset"))?,
            Some(Offset::Position { .. }) => return Err(Refusal::bad("Invalid offset")),
        };
        let previous = self.playback.get(user_id).and_then(|p| p.device_id.clone());
        let position_ms = body.position_ms.unwrap_or(0).min(uris.get(index).map_or(0, |u| duration_of(u)));
        self.playback.insert(
            user_id.to_owned(),
            Playback {
                device_id: Some(device.clone()),
                context_uri,
                uris,
                index,
                is_playing: true,
                position_ms,
                anchor_ms: now_ms,
                changed_at_ms: now_ms,
            },
        );
        self.bump(previous.as_deref());
        self.bump(Some(&device));
        Ok(())
    }

    /// `PUT /v1/me/player/pause` (pausing a paused stream is a no-op).
    pub(crate) fn pause(&mut self, user_id: &str, device_id: Option<&str>, now_ms: u64) -> Result<(), Refusal> {
        let device = self.target(user_id, device_id)?;
        if self.active_device(user_id) != Some(device.as_str()) {
            return Err(Refusal::no_active_device());
        }
        self.set_playing(user_id, false, now_ms);
        Ok(())
    }

    /// `PUT /v1/me/player`: one device id; `play` true starts it, otherwise the state carries over.
    pub(crate) fn transfer(
        &mut self,
        user_id: &str,
        device_ids: &[String],
        play: Option<bool>,
        now_ms: u64,
    ) -> Result<(), Refusal> {
        let [device] = device_ids else {
            return Err(Refusal::bad("Can't have more than one device_id, or none"));
        };
        self.target(user_id, Some(device))?;
        if !self.playback.contains_key(user_id) {
            // Nothing played yet: Spotify would pick up the user's last context; the emulator
            // starts its first catalogue track, paused unless `play`.
            let body = PlayBody { uris: Some(vec![DEFAULT_TRACK.to_owned()]), ..PlayBody::default() };
            self.play(user_id, Some(device), Some(body), now_ms)?;
            self.set_playing(user_id, play.unwrap_or(false), now_ms);
            return Ok(());
        }
        self.move_to(user_id, device, now_ms);
        if let Some(play) = play {
            self.set_playing(user_id, play, now_ms);
        }
        Ok(())
    }

    fn set_playing(&mut self, user_id: &str, playing: bool, now_ms: u64) {
        let Some(p) = self.playback.get_mut(user_id) else {
            return;
        };
        p.settle(now_ms);
        if p.is_playing != playing {
            p.is_playing = playing;
            p.anchor_ms = now_ms;
            p.changed_at_ms = now_ms;
            let device = p.device_id.clone();
            self.bump(device.as_deref());
        }
    }

    /// A player's own control, on its own device.
    pub(crate) fn command(&mut self, device_id: &str, command: SdkCommand, now_ms: u64) -> Result<(), Refusal> {
        let user = self.devices.get(device_id).map(|d| d.user_id.clone()).ok_or_else(Refusal::device_not_found)?;
        match command {
            SdkCommand::Volume { volume } => {
                if let Some(d) = self.devices.get_mut(device_id) {
                    d.volume_percent = percent(volume);
                }
                return Ok(());
            }
            SdkCommand::Name { name } => {
                if let Some(d) = self.devices.get_mut(device_id) {
                    d.name = name;
                }
                return Ok(());
            }
            _ => {}
        }
        if self.active_device(&user) != Some(device_id) {
            return Err(Refusal::no_active_device());
        }
        match command {
            SdkCommand::Pause => self.set_playing(&user, false, now_ms),
            SdkCommand::Resume => self.set_playing(&user, true, now_ms),
            SdkCommand::Toggle => {
                let playing = self.playback.get(&user).is_some_and(|p| p.is_playing);
                self.set_playing(&user, !playing, now_ms);
            }
            SdkCommand::Seek { position_ms } => self.jump(&user, None, Some(position_ms), now_ms),
            SdkCommand::Next => self.jump(&user, Some(1), Some(0), now_ms),
            SdkCommand::Previous => self.jump(&user, Some(-1), Some(0), now_ms),
            SdkCommand::Volume { .. } | SdkCommand::Name { .. } => {}
        }
        Ok(())
    }

    fn jump(&mut self, user: &str, step: Option<isize>, position_ms: Option<u64>, now_ms: u64) {
        let Some(p) = self.playback.get_mut(user) else {
            return;
        };
        p.settle(now_ms);
        if let Some(step) = step {
            let last = p.uris.len().saturating_sub(1);
            p.index = p.index.saturating_add_signed(step).min(last);
        }
        if let Some(ms) = position_ms {
            p.position_ms = ms.min(p.current_uri().map_or(0, duration_of));
        }
        p.anchor_ms = now_ms;
        p.changed_at_ms = now_ms;
        let device = p.device_id.clone();
        self.bump(device.as_deref());
    }

    /// The `DeviceObject` of a device.
    pub(crate) fn device_object(&self, device_id: &str) -> Option<Value> {
        let d = self.devices.get(device_id)?;
        Some(json!({
            "id": device_id,
            "is_active": self.active_device(&d.user_id) == Some(device_id),
            "is_private_session": false,
            "is_restricted": false,
            "name": d.name,
            "type": "Computer",
            "volume_percent": d.volume_percent,
            "supports_volume": true,
        }))
    }

    /// `{"devices": [DeviceObject]}` of a user.
    pub(crate) fn devices_of(&self, user_id: &str) -> Value {
        let devices: Vec<Value> = self
            .devices
            .iter()
            .filter(|(_, d)| d.user_id == user_id)
            .filter_map(|(id, _)| self.device_object(id))
            .collect();
        json!({ "devices": devices })
    }

    /// The `CurrentlyPlayingContextObject` of a user; `None` when nothing is on a device.
    pub(crate) fn playback_state(&self, user_id: &str, api_url: &str) -> Option<Value> {
        let device_id = self.active_device(user_id)?;
        let p = self.playback.get(user_id)?;
        let uri = p.current_uri()?;
        let mut state = json!({
            "device": self.device_object(device_id)?,
            "repeat_state": "off",
            "shuffle_state": false,
            "timestamp": p.changed_at_ms,
            "progress_ms": p.position_ms,
            "is_playing": p.is_playing,
            "item": track_object(uri, api_url),
            "currently_playing_type": "track",
            "actions": { "disallows": { "resuming": p.is_playing, "pausing": !p.is_playing } },
        });
        if let Some(context) = &p.context_uri {
            state["context"] = context_object(context, api_url);
        }
        Some(state)
    }

    /// The SDK's `WebPlaybackState` as a device sees it: `None` unless the stream is on it.
    pub(crate) fn sdk_state(&self, device_id: &str) -> Option<Value> {
        let d = self.devices.get(device_id)?;
        if self.active_device(&d.user_id) != Some(device_id) {
            return None;
        }
        let p = self.playback.get(&d.user_id)?;
        let uri = p.current_uri()?;
        let track = |u: &str| sdk_track(u);
        Some(json!({
            "context": { "uri": p.context_uri, "metadata": {} },
            "disallows": {
                "pausing": !p.is_playing,
                "resuming": p.is_playing,
                "peeking_next": false,
                "peeking_prev": false,
                "seeking": false,
                "skipping_next": p.index + 1 >= p.uris.len(),
                "skipping_prev": p.index == 0,
            },
            "paused": !p.is_playing,
            "position": p.position_ms,
            "duration": duration_of(uri),
            "repeat_mode": 0,
            "shuffle": false,
            "timestamp": p.anchor_ms,
            "track_window": {
                "current_track": track(uri),
                "previous_tracks": p.uris.get(..p.index).unwrap_or_default().iter().rev().take(2).map(|u| track(u)).collect::<Vec<_>>(),
                "next_tracks": p.uris.get(p.index + 1..).unwrap_or_default().iter().take(2).map(|u| track(u)).collect::<Vec<_>>(),
            },
        }))
    }

    pub(crate) fn snapshot(&self) -> PlayerSnapshot {
        let devices = self
            .devices
            .iter()
            .map(|(id, d)| {
                let is_active = self.active_device(&d.user_id) == Some(id.as_str());
                (id.clone(), DeviceSnapshot { user_id: d.user_id.clone(), name: d.name.clone(), is_active })
            })
            .collect();
        let playback = self
            .playback
            .iter()
            .map(|(user, p)| {
                let snapshot = PlaybackSnapshot {
                    device_id: p.device_id.clone(),
                    is_playing: p.is_playing,
                    track_uri: p.current_uri().map(str::to_owned),
                    context_uri: p.context_uri.clone(),
                    progress_ms: p.position_ms,
                };
                (user.clone(), snapshot)
            })
            .collect();
        PlayerSnapshot { devices, playback }
    }
}

/// What a transfer to a user who never played starts.
const DEFAULT_TRACK: &str = "spotify:track:4uLU6hMCjMI75M1A2tKUQC";

fn percent(volume: f64) -> u8 {
    // Clamped to 0..=1 first, so the product fits a u8.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let p = (volume.clamp(0.0, 1.0) * 100.0).round() as u8;
    p
}

fn track_name(uri: &str) -> String {
    let id = parse_uri(uri).map_or(uri, |(_, id)| id);
    format!("Emulated track {}", id.get(..6).unwrap_or(id))
}

/// A `TrackObject` of the synthetic catalogue.
fn track_object(uri: &str, api_url: &str) -> Value {
    let id = parse_uri(uri).map_or("", |(_, id)| id);
    let album_id = format!("al{}", id.get(..8).unwrap_or(id));
    let artist = json!({
        "external_urls": { "spotify": "https://open.spotify.com/artist/emulated" },
        "href": format!("{api_url}/artists/emulated"),
        "id": "emulated",
        "name": "The Emulators",
        "type": "artist",
        "uri": "spotify:artist:emulated",
    });
    json!({
        "album": {
            "album_type": "album",
            "total_tracks": CONTEXT_TRACKS,
            "available_markets": [],
            "external_urls": { "spotify": format!("https://open.spotify.com/album/{album_id}") },
            "href": format!("{api_url}/albums/{album_id}"),
            "id": album_id,
            "images": [],
            "name": "Emulated album",
            "release_date": "2026",
            "release_date_precision": "year",
            "type": "album",
            "uri": format!("spotify:album:{album_id}"),
            "artists": [artist.clone()],
        },
        "artists": [artist],
        "disc_number": 1,
        "duration_ms": duration_of(uri),
        "explicit": false,
        "external_urls": { "spotify": format!("https://open.spotify.com/track/{id}") },
        "href": format!("{api_url}/tracks/{id}"),
        "id": id,
        "is_local": false,
        "is_playable": true,
        "name": track_name(uri),
        "track_number": 1,
        "type": "track",
        "uri": uri,
    })
}

fn context_object(uri: &str, api_url: &str) -> Value {
    let (kind, id) = parse_uri(uri).unwrap_or(("playlist", ""));
    json!({
        "type": kind,
        "href": format!("{api_url}/{kind}s/{id}"),
        "external_urls": { "spotify": format!("https://open.spotify.com/{kind}/{id}") },
        "uri": uri,
    })
}

/// A `WebPlaybackTrack` (the SDK's own track shape).
fn sdk_track(uri: &str) -> Value {
    let id = parse_uri(uri).map_or("", |(_, id)| id);
    json!({
        "uri": uri,
        "id": id,
        "type": "track",
        "media_type": "audio",
        "name": track_name(uri),
        "is_playable": true,
        "duration_ms": duration_of(uri),
        "album": { "uri": format!("spotify:album:al{}", id.get(..8).unwrap_or(id)), "name": "Emulated album", "images": [] },
        "artists": [{ "uri": "spotify:artist:emulated", "name": "The Emulators" }],
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn with_devices() -> Connect {
        let mut c = Connect::default();
        c.register("alice", "A1", 1.0, "d1".into(), 0);
        c.register("alice", "A2", 0.5, "d2".into(), 0);
        c.register("bob", "B1", 1.0, "d3".into(), 0);
        c
    }

    fn track(uri: &str) -> Option<PlayBody> {
        Some(PlayBody { uris: Some(vec![uri.to_owned()]), ..PlayBody::default() })
    }

    #[test]
    fn one_stream_per_account() {
        let mut c = with_devices();
        c.play("alice", Some("d1"), track("spotify:track:abc"), 0).unwrap();
        c.play("bob", Some("d3"), track("spotify:track:def"), 0).unwrap();
        c.play("alice", Some("d2"), track("spotify:track:abc"), 10).unwrap();
        let snap = c.snapshot();
        assert_eq!(snap.playing().get("alice").map(String::as_str), Some("d2"));
        assert_eq!(snap.playing().get("bob").map(String::as_str), Some("d3"));
        assert!(c.sdk_state("d1").is_none(), "the first device of the account stopped");
        assert!(c.sdk_state("d2").is_some());
    }

    #[test]
    fn devices_of_others_are_not_found_and_no_device_is_no_active_device() {
        let mut c = with_devices();
        assert_eq!(c.play("bob", Some("d1"), track("spotify:track:abc"), 0), Err(Refusal::device_not_found()));
        assert_eq!(c.play("alice", None, track("spotify:track:abc"), 0).unwrap_err().reason, Some("NO_ACTIVE_DEVICE"));
        assert_eq!(c.transfer("alice", &["d1".into(), "d2".into()], None, 0).unwrap_err().status, 400);
        assert_eq!(c.play("alice", Some("d1"), track("spotify:album:x"), 0).unwrap_err().status, 400);
    }

    #[test]
    fn positions_advance_and_lists_end() {
        let mut c = with_devices();
        let body = PlayBody { context_uri: Some("spotify:album:abc".into()), ..PlayBody::default() };
        c.play("alice", Some("d1"), Some(body), 0).unwrap();
        c.settle(1_000);
        assert_eq!(c.snapshot().playback["alice"].progress_ms, 1_000);
        c.seen("d1", 10_000_000);
        c.settle(10_000_000);
        let p = &c.snapshot().playback["alice"];
        assert!(!p.is_playing, "ten tracks of at most 4:30 end within 10,000 s");
    }

    #[test]
    fn stale_and_removed_devices_stop_their_stream() {
        let mut c = with_devices();
        c.play("alice", Some("d1"), track("spotify:track:abc"), 0).unwrap();
        c.seen("d2", DEVICE_STALE_AFTER_MS + 1);
        c.settle(DEVICE_STALE_AFTER_MS + 1);
        assert!(!c.devices.contains_key("d1") && c.devices.contains_key("d2"));
        assert!(c.playback_state("alice", "http://x").is_none());
        assert_eq!(c.snapshot().playing().get("alice"), None);
    }

    #[test]
    fn commands_bump_the_version_of_the_device() {
        let mut c = with_devices();
        c.play("alice", Some("d1"), track("spotify:track:abc"), 0).unwrap();
        let v = c.devices["d1"].version;
        c.command("d1", SdkCommand::Toggle, 5).unwrap();
        assert!(c.devices["d1"].version > v);
        assert_eq!(c.sdk_state("d1").unwrap()["paused"], true);
        assert_eq!(c.command("d2", SdkCommand::Resume, 6), Err(Refusal::no_active_device()));
    }
}
