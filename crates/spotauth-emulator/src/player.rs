//! The player endpoints of the Web API (`/v1/me/player...`) and the fake Web Playback SDK's own
//! endpoints (`/sdk/...`), both on the Connect model of `connect.rs`.
//!
//! The SDK endpoints stand in for the private protocol between Spotify's SDK and Spotify: the
//! script served at `/sdk/spotify-player.js` registers a device with the token the page handed
//! it, polls the state of its device, sends its own controls and disconnects. They are not part
//! of Spotify's public API.

// Admission helpers return the finished error answer; it goes straight back to actix, once per
// refused request, so its size does not matter.
#![allow(clippy::result_large_err)]

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use rand::RngCore as _;
use serde::Deserialize;
use serde_json::json;

use crate::connect::{Connect, PlayBody, Refusal, SdkCommand};
use crate::faults::Endpoint;
use crate::state::{Counted, Shared};
use crate::web_api::{Caller, admit, api_error, check_token, count};

/// The fake SDK, served as Spotify serves `https://sdk.scdn.co/spotify-player.js`.
const SDK_SCRIPT: &str = include_str!("../sdk/spotify-player.js");

/// Scope every player read needs.
const READ: &str = "user-read-playback-state";
/// Scope every player command needs.
const MODIFY: &str = "user-modify-playback-state";

/// Scope, then Premium. `Err` is the answer.
fn player_checks(caller: &Caller, scope: &str) -> Result<(), HttpResponse> {
    if !caller.has_scope(scope) {
        return Err(api_error(StatusCode::FORBIDDEN, "Insufficient client scope", None));
    }
    if !caller.user.product.is_premium() {
        return Err(premium_required());
    }
    Ok(())
}

fn premium_required() -> HttpResponse {
    api_error(StatusCode::FORBIDDEN, "Player command failed: Premium required", Some("PREMIUM_REQUIRED"))
}

/// Admission of a Web API player call: counters, faults, token, allow-list, scope, Premium.
async fn player_caller(req: &HttpRequest, shared: &Shared, scope: &str) -> Result<Caller, HttpResponse> {
    let caller = admit(req, shared, Endpoint::Player, Counted::Player).await?;
    player_checks(&caller, scope)?;
    Ok(caller)
}

fn refused(r: &Refusal) -> HttpResponse {
    api_error(StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST), r.message, r.reason)
}

fn done(result: Result<(), Refusal>) -> HttpResponse {
    match result {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(r) => refused(&r),
    }
}

/// An optional JSON body: empty is `None`, malformed is Spotify's 400.
fn json_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<Option<T>, HttpResponse> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body).map(Some).map_err(|_| api_error(StatusCode::BAD_REQUEST, "Malformed json", None))
}

/// `?device_id=`.
#[derive(Debug, Deserialize)]
pub(crate) struct DeviceQuery {
    device_id: Option<String>,
}

/// `GET /v1/me/player/devices`.
pub(crate) async fn devices(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let caller = match player_caller(&req, &shared, READ).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let mut st = shared.lock();
    let (connect, _) = st.connect_now();
    HttpResponse::Ok().json(connect.devices_of(&caller.user.id))
}

/// `GET /v1/me/player`: the `CurrentlyPlayingContextObject`, or 204 when nothing plays on a
/// device.
pub(crate) async fn state(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let caller = match player_caller(&req, &shared, READ).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let api_url = shared.api_url();
    let mut st = shared.lock();
    let (connect, _) = st.connect_now();
    match connect.playback_state(&caller.user.id, &api_url) {
        Some(state) => HttpResponse::Ok().json(state),
        None => HttpResponse::NoContent().finish(),
    }
}

/// Body of `PUT /v1/me/player`.
#[derive(Debug, Deserialize)]
struct TransferBody {
    device_ids: Vec<String>,
    play: Option<bool>,
}

/// `PUT /v1/me/player`: transfer playback to one device.
pub(crate) async fn transfer(req: HttpRequest, shared: web::Data<Shared>, body: web::Bytes) -> HttpResponse {
    let caller = match player_caller(&req, &shared, MODIFY).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let body = match json_body::<TransferBody>(&body) {
        Ok(Some(b)) => b,
        Ok(None) => return api_error(StatusCode::BAD_REQUEST, "Missing required field: device_ids", None),
        Err(resp) => return resp,
    };
    let mut st = shared.lock();
    let (connect, now) = st.connect_now();
    done(connect.transfer(&caller.user.id, &body.device_ids, body.play, now))
}

/// `PUT /v1/me/player/play?device_id=`.
pub(crate) async fn play(
    req: HttpRequest,
    shared: web::Data<Shared>,
    q: web::Query<DeviceQuery>,
    body: web::Bytes,
) -> HttpResponse {
    let caller = match player_caller(&req, &shared, MODIFY).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let body = match json_body::<PlayBody>(&body) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let mut st = shared.lock();
    let (connect, now) = st.connect_now();
    done(connect.play(&caller.user.id, q.device_id.as_deref(), body, now))
}

/// `PUT /v1/me/player/pause?device_id=`.
pub(crate) async fn pause(req: HttpRequest, shared: web::Data<Shared>, q: web::Query<DeviceQuery>) -> HttpResponse {
    let caller = match player_caller(&req, &shared, MODIFY).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let mut st = shared.lock();
    let (connect, now) = st.connect_now();
    done(connect.pause(&caller.user.id, q.device_id.as_deref(), now))
}

/// `GET /sdk/spotify-player.js`.
pub(crate) async fn sdk_script() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/javascript; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(SDK_SCRIPT)
}

/// Admission of an SDK call: counted, token checked (no faults: those target the Web API).
/// The SDK needs the `streaming` scope and Premium.
fn sdk_caller(req: &HttpRequest, shared: &Shared) -> Result<Caller, HttpResponse> {
    count(req, shared, Counted::Sdk);
    let caller = check_token(req, shared)?;
    sdk_checks(&caller)?;
    Ok(caller)
}

/// What the SDK demands of a token's user: the `streaming` scope and Premium.
pub(crate) fn sdk_checks(caller: &Caller) -> Result<(), HttpResponse> {
    if !caller.has_scope("streaming") {
        return Err(api_error(StatusCode::FORBIDDEN, "Invalid token scopes.", None));
    }
    if !caller.user.product.is_premium() {
        return Err(premium_required());
    }
    Ok(())
}

/// Registers a player of an admitted caller: its new device id.
pub(crate) fn register(shared: &Shared, caller: &Caller, name: &str, volume: f64) -> Result<String, HttpResponse> {
    let name = name.trim();
    if name.is_empty() || name.len() > 256 {
        return Err(api_error(StatusCode::BAD_REQUEST, "A player needs a name", None));
    }
    let id = device_id();
    let mut st = shared.lock();
    let (connect, now) = st.connect_now();
    connect.register(&caller.user.id, name, volume, id.clone(), now);
    Ok(id)
}

/// Body of `POST /sdk/v1/devices`.
#[derive(Debug, Deserialize)]
pub(crate) struct RegisterBody {
    name: String,
    #[serde(default = "full_volume")]
    volume: f64,
}

fn full_volume() -> f64 {
    1.0
}

/// A Connect device id: 40 hex digits, as Spotify's.
fn device_id() -> String {
    let mut bytes = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `POST /sdk/v1/devices`: a player connects with its user's token and becomes a device.
pub(crate) async fn sdk_register(
    req: HttpRequest,
    shared: web::Data<Shared>,
    body: web::Json<RegisterBody>,
) -> HttpResponse {
    let registered = sdk_caller(&req, &shared).and_then(|caller| {
        let id = register(&shared, &caller, &body.name, body.volume)?;
        Ok((id, caller.token_expires_in))
    });
    match registered {
        Ok((id, expires_in)) => HttpResponse::Ok().json(json!({ "device_id": id, "token_expires_in": expires_in })),
        Err(resp) => resp,
    }
}

/// Admits an SDK call about one device, which must be the token's user's (else 404, as for a
/// device that is gone), marks the device seen, and runs `act` on the Connect model with the
/// emulator time.
fn on_own_device(
    req: &HttpRequest,
    shared: &Shared,
    device: &str,
    act: impl FnOnce(&mut Connect, u64, &Caller) -> HttpResponse,
) -> HttpResponse {
    let caller = match sdk_caller(req, shared) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let mut st = shared.lock();
    let (connect, now) = st.connect_now();
    if connect.device_of(&caller.user.id, device).is_none() {
        return refused(&Refusal::device_not_found());
    }
    connect.seen(device, now);
    act(connect, now, &caller)
}

/// `GET /sdk/v1/devices/{id}/state`: what the player shows, with a version that changes when
/// it does. 404 when the device is gone or is not this token's user's.
pub(crate) async fn sdk_state(req: HttpRequest, shared: web::Data<Shared>, path: web::Path<String>) -> HttpResponse {
    on_own_device(&req, &shared, &path, |connect, _, caller| {
        HttpResponse::Ok().json(json!({
            "state": connect.sdk_state(&path),
            "version": connect.devices.get(path.as_str()).map_or(0, |d| d.version),
            "token_expires_in": caller.token_expires_in,
        }))
    })
}

/// `POST /sdk/v1/devices/{id}/commands`: the player's own controls.
pub(crate) async fn sdk_command(
    req: HttpRequest,
    shared: web::Data<Shared>,
    path: web::Path<String>,
    body: web::Json<SdkCommand>,
) -> HttpResponse {
    on_own_device(&req, &shared, &path, |connect, now, _| done(connect.command(&path, body.into_inner(), now)))
}

/// `DELETE /sdk/v1/devices/{id}`: the player disconnected.
pub(crate) async fn sdk_disconnect(
    req: HttpRequest,
    shared: web::Data<Shared>,
    path: web::Path<String>,
) -> HttpResponse {
    on_own_device(&req, &shared, &path, |connect, now, _| {
        connect.remove_device(&path, now);
        HttpResponse::NoContent().finish()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn device_ids_look_like_spotify_ones() {
        let id = device_id();
        assert_eq!(id.len(), 40);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, device_id());
    }
}
