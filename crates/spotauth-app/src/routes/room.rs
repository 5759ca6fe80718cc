//! `/api/room/...`: a page reports its player, group playback for everyone present, and the
//! room's live updates (Server-Sent Events).

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use spotauth_domain::room::{DeviceId, GroupPlay, NowPlaying, PlayerReport, RoomFieldError, ShortName, SpotifyUri};
use utoipa::{IntoParams, ToSchema};

use crate::problem::Problem;
use crate::web::{AppState, Auth, GroupOutcomesDto, OutcomeDto};

/// What a page says its player plays.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NowPlayingReport)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NowPlayingBody {
    uri: String,
    name: String,
    is_playing: bool,
}

/// Body of `PUT /api/room/player`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PlayerReport)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlayerBody {
    /// The SDK's device id.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,128}$")]
    device_id: String,
    /// The name the player shows in Spotify Connect.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// What it plays, as the page knows it.
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
#[utoipa::path(
    put,
    path = "/api/room/player",
    tag = "room",
    security(("sessionCookie" = []), ("bearer" = [])),
    request_body(content = PlayerBody),
    responses(
        (status = 204, description = "Stored; a player not reported for ROOM_PLAYER_STALE_SECS is gone"),
        (status = 400, description = "invalid_json, invalid_device or invalid_track", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated, or spotify_reauth_required", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 403, description = "premium_required, or cross_origin_refused", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 404, description = "device_not_found: not (yet) one of this account's Spotify devices; retry in a moment", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 409, description = "spotify_not_connected", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 503, description = "spotify_unavailable or spotify_rate_limited, with Retry-After", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
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
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct DeviceQuery {
    /// The SDK's device id.
    device_id: String,
}

/// `DELETE /api/room/player?deviceId=`: the page's player went away (idempotent).
#[utoipa::path(
    delete,
    path = "/api/room/player",
    tag = "room",
    security(("sessionCookie" = []), ("bearer" = [])),
    params(DeviceQuery),
    responses(
        (status = 204, description = "Forgotten (idempotent)"),
        (status = 400, description = "invalid_device", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
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
///
/// Exactly one of `uris` (tracks or episodes) and `contextUri` (album, playlist, artist, show).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = GroupPlay)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlayBody {
    /// Spotify URIs of tracks or episodes, 1 to 50.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 50)]
    uris: Option<Vec<String>>,
    /// A Spotify URI of an album, playlist, artist or show.
    #[serde(default)]
    context_uri: Option<String>,
    /// Where to start, in milliseconds.
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
    HttpResponse::Ok().json(GroupOutcomesDto { outcomes: list.iter().map(OutcomeDto::from).collect() })
}

/// `POST /api/room/play`: the same music for everyone present, each on their own account.
#[utoipa::path(
    post,
    path = "/api/room/play",
    tag = "room",
    security(("sessionCookie" = []), ("bearer" = [])),
    request_body(content = PlayBody),
    responses(
        (status = 200, description = "Each person's outcome; never a token", body = crate::web::GroupOutcomesDto),
        (status = 400, description = "invalid_target or invalid_json", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 403, description = "not_host, premium_required or cross_origin_refused", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
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
#[utoipa::path(
    post,
    path = "/api/room/pause",
    tag = "room",
    security(("sessionCookie" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Each person's outcome", body = crate::web::GroupOutcomesDto),
        (status = 401, description = "unauthenticated", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 403, description = "not_host, premium_required or cross_origin_refused", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
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
#[utoipa::path(
    get,
    path = "/api/room/events",
    tag = "room",
    security(("sessionCookie" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`event: room` with `data: {\"version\": N}` at once and whenever presence or players change (at once on this instance, within ROOM_EVENTS_POLL_MS from other instances, once a minute when idle); `: keepalive` every 15 s between. Pages re-read /api/users/active on each event", content_type = "text/event-stream", body = String),
        (status = 401, description = "unauthenticated", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn events(_: Auth, state: web::Data<AppState>) -> HttpResponse {
    let versions = state.feed.subscribe();
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(crate::room_feed::event_stream(versions, KEEPALIVE, REMIND_AFTER))
}
