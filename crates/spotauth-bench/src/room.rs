//! Group playback's fan-out: N present people with a player each (registered at the emulator
//! with the token the service handed out, then reported), one `POST /api/room/play` (or
//! `/pause`) per round, timed from the host's side, with the emulator's player-call count.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use hyper::Method;
use serde::Serialize;
use serde_json::json;
use spotauth_emulator::EmulatorHandle;
use tokio::task::JoinSet;

use crate::error::{Context, Error, Result, bail};
use crate::http::{Auth, Conn};

const TRACK: &str = "spotify:track:4uLU6hMCjMI75M1A2tKUQC";

/// One fan-out size's figures.
#[derive(Debug, Clone, Serialize)]
pub struct FanOut {
    /// People with a player, each controlled per round.
    pub players: usize,
    /// Rounds (play, pause, play, ...).
    pub rounds: usize,
    /// The whole call, host's view.
    pub p50_ms: f64,
    /// The whole call, host's view.
    pub p99_ms: f64,
    /// Slowest round.
    pub max_ms: f64,
    /// Player calls at the emulator per player per round (1.0: one call each, no retries).
    pub calls_per_player: f64,
}

/// Opens and reports a player for `cookies[from..to]`, `parallel` at a time.
async fn open_players(
    service: SocketAddr,
    emulator: SocketAddr,
    cookies: &Arc<Vec<String>>,
    from: usize,
    to: usize,
) -> Result<()> {
    let next = Arc::new(AtomicUsize::new(from));
    let mut set = JoinSet::new();
    for _ in 0..8 {
        let (cookies, next) = (Arc::clone(cookies), Arc::clone(&next));
        set.spawn(async move {
            let (mut svc, mut emu) = (Conn::new(service)?, Conn::new(emulator)?);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= to {
                    return Ok::<_, Error>(());
                }
                let cookie = cookies.get(i).ctx("cookie")?;
                let token = svc.send(Method::GET, "/api/auth/spotify/token", Some(cookie)).await?;
                let token: serde_json::Value =
                    serde_json::from_slice(&token.expect(200, "GET /token")?.body).ctx("token")?;
                let token = token["accessToken"].as_str().ctx("accessToken")?;
                let body = json!({ "name": format!("bench player {i}") });
                let reply = emu.send_with(Method::POST, "/sdk/v1/devices", Auth::Bearer(token), Some(&body)).await?;
                let device: serde_json::Value =
                    serde_json::from_slice(&reply.expect(200, "register a device")?.body).ctx("device")?;
                let device = device["device_id"].as_str().ctx("device_id")?;
                let report = json!({ "deviceId": device, "name": format!("bench player {i}") });
                svc.send_with(Method::PUT, "/api/room/player", Auth::Cookie(cookie), Some(&report))
                    .await?
                    .expect(204, "PUT /api/room/player")?;
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.ctx("player task")??;
    }
    Ok(())
}

/// For each size (ascending, at most `cookies.len()`): players for that many people, then
/// `rounds` group commands from the first person.
pub async fn fan_out(
    service: SocketAddr,
    emulator: &EmulatorHandle,
    cookies: Vec<String>,
    sizes: &[usize],
    rounds: usize,
) -> Result<Vec<FanOut>> {
    let cookies = Arc::new(cookies);
    let mut host = Conn::new(service)?;
    let mut opened = 0;
    let mut results = Vec::new();
    for &size in sizes {
        let size = size.min(cookies.len());
        open_players(service, emulator.addr(), &cookies, opened, size).await?;
        opened = size;
        let before = emulator.counters().total.player;
        let mut took = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let (path, body, done) = if round % 2 == 0 {
                ("/api/room/play", Some(json!({ "uris": [TRACK] })), "started")
            } else {
                ("/api/room/pause", None, "paused")
            };
            let cookie = cookies.first().ctx("a host")?;
            let started = Instant::now();
            let reply = host.send_with(Method::POST, path, Auth::Cookie(cookie), body.as_ref()).await?;
            took.push(started.elapsed().as_secs_f64() * 1000.0);
            let answer: serde_json::Value = serde_json::from_slice(&reply.expect(200, path)?.body).ctx(path)?;
            let ok = answer["outcomes"].as_array().map_or(0, |o| o.iter().filter(|x| x["outcome"] == done).count());
            if ok != size {
                let mut kinds = std::collections::BTreeMap::new();
                for o in answer["outcomes"].as_array().into_iter().flatten() {
                    *kinds.entry(o["outcome"].as_str().unwrap_or("?").to_owned()).or_insert(0) += 1;
                }
                bail!("{path} with {size} players: {ok} {done}; outcomes {kinds:?}");
            }
        }
        let calls = emulator.counters().total.player.saturating_sub(before);
        took.sort_by(f64::total_cmp);
        let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
        let figures = FanOut {
            players: size,
            rounds,
            p50_ms: (at(0.5) * 10.0).round() / 10.0,
            p99_ms: (at(0.99) * 10.0).round() / 10.0,
            max_ms: (took[took.len() - 1] * 10.0).round() / 10.0,
            calls_per_player: calls as f64 / (size * rounds) as f64,
        };
        eprintln!(
            "group fan-out to {size} players: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {rounds} rounds; {:.2} player calls per player per round",
            figures.p50_ms, figures.p99_ms, figures.max_ms, figures.calls_per_player
        );
        results.push(figures);
    }
    Ok(results)
}
