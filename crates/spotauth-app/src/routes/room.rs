//! `/api/room/...`: a page reports its player, group playback for everyone present, and the
//! room's live updates (Server-Sent Events).

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use spotauth_domain::room::{DeviceId, GroupPlay, NowPlaying, PlayerReport, RoomFieldError, ShortName, SpotifyUri};

use crate::problem::Problem;
use crate::web::{AppState, Auth, OutcomeDto};

/// What a page says its player plays.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NowPlayingBody {
    uri: String,
    name: String,
    is_playing: bool,
}

/// Body of `PUT /api/room/player`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlayerBody {
    device_id: String,
    name: String,
    #[serde(default)]
    now_playing: Option<NowPlayingBody>,
}

fn invalid(code: &'static str) -> impl Fn(RoomFieldError) -> Problem {
    move |e| Problem::bad_request(code, e.to_string())
}

impl PlayerBody {
    fn into_report(self) -> Result<PlayerReport, Problem> {
        let now_playing = match self.now_playing {
            Some(n) => Some(NowPlaying {
                uri: SpotifyUri::item(&n.uri).map_err(invalid("invalid_track"))?,
                name: ShortName::new(n.name).map_err(invalid("invalid_track"))?,
                is_playing: n.is_playing,
            }),
            None => None,
        };
        Ok(PlayerReport {
            device_id: DeviceId::new(self.device_id).map_err(invalid("invalid_device"))?,
            device_name: ShortName::new(self.name).map_err(invalid("invalid_device"))?,
            now_playing,
        })
    }
}

/// `PUT /api/room/player`: the page's Web Playback SDK player (on `ready`, on a change, and as
/// a heartbeat). A device seen for the first time is checked against the user's own Spotify
/// devices.
pub async fn report_player(
    body: Result<web::Json<PlayerBody>, actix_web::Error>,
    auth: Result<Auth, Problem>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let report = body?.into_inner().into_report()?;
    let Auth(auth) = auth?;
    state.room.report_player(&auth.user, report).await.map_err(Problem::from)?;
    state.feed.refresh(&state.room).await;
    Ok(HttpResponse::NoContent().finish())
}

/// `?deviceId=`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceQuery {
    device_id: String,
}

/// `DELETE /api/room/player?deviceId=`: the page's player went away (idempotent).
pub async fn leave(
    Auth(auth): Auth,
    q: web::Query<DeviceQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let device = DeviceId::new(q.into_inner().device_id).map_err(invalid("invalid_device"))?;
    state.room.leave(auth.user.id, device).await?;
    state.feed.refresh(&state.room).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Body of `POST /api/room/play`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlayBody {
    #[serde(default)]
    uris: Option<Vec<String>>,
    #[serde(default)]
    context_uri: Option<String>,
    #[serde(default)]
    position_ms: u64,
}

impl PlayBody {
    fn into_play(self) -> Result<GroupPlay, Problem> {
        let play = match (self.uris, self.context_uri) {
            (Some(uris), None) => GroupPlay::items(&uris, self.position_ms),
            (None, Some(context)) => GroupPlay::context(&context, self.position_ms),
            _ => return Err(Problem::bad_request("invalid_target", "Give either `uris` or `contextUri`.")),
        };
        play.map_err(invalid("invalid_target"))
    }
}

fn outcomes(list: &[spotauth_domain::room::PersonOutcome]) -> HttpResponse {
    let outcomes: Vec<OutcomeDto> = list.iter().map(OutcomeDto::from).collect();
    HttpResponse::Ok().json(json!({ "outcomes": outcomes }))
}

/// `POST /api/room/play`: the same music for everyone present, each on their own account.
pub async fn play(
    body: Result<web::Json<PlayBody>, actix_web::Error>,
    auth: Result<Auth, Problem>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let what = body?.into_inner().into_play()?;
    let Auth(auth) = auth?;
    let done = state.room.play_for_everyone(&auth.user, &what).await.map_err(Problem::from)?;
    state.feed.refresh(&state.room).await;
    Ok(outcomes(&done))
}

/// `POST /api/room/pause`: pause everyone present.
pub async fn pause(Auth(auth): Auth, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let done = state.room.pause_everyone(&auth.user).await?;
    state.feed.refresh(&state.room).await;
    Ok(outcomes(&done))
}

/// How often an idle event stream says it is still there (proxies close silent streams).
const KEEPALIVE: Duration = Duration::from_secs(15);
/// Every this many idle keep-alives (a minute), the version again: pages re-read the list, so
/// people whose session simply ran out leave it within a minute.
const REMIND_AFTER: u32 = 4;

/// `GET /api/room/events`: `text/event-stream`; an `event: room` with the room's version now,
/// whenever it moves (on this instance at once, from other instances within the poll
/// interval) and once a minute when idle, and a comment every 15 s between.
pub async fn events(_: Auth, state: web::Data<AppState>) -> HttpResponse {
    let versions = state.feed.subscribe();
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(crate::room_feed::event_stream(versions, KEEPALIVE, REMIND_AFTER))
}
