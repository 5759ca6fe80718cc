//! `--chaos` scenarios where Spotify misbehaves or an instance dies, on two instances of the
//! release binary sharing one MariaDB database, under load on both.
//!
//! `spotify-faults`: Spotify's token endpoint answers 503, then hangs past the service's timeout,
//! then drops connections, then answers burst 429s; last, a quota 429 (`QUOTA_EXCEEDED`,
//! `Retry-After: 3600`) on the Web API and the token endpoint. Access tokens live 20 s, so
//! tokens run out during the faults. Promised: no 401 (no session lost); every `/token` 200 is a
//! token Spotify accepts (still-valid tokens are served); every failure is a 503 problem
//! `spotify_unavailable` or `spotify_rate_limited` with `Retry-After`; after the quota 429 no
//! instance calls Spotify again (the backoff is shared through the database); afterwards nobody
//! must reconnect Spotify (no `invalid_grant` caused by us), no refresh token that had been
//! replaced is presented again, except answers that never arrived (a timed-out call Spotify
//! completed: the old token is then the only one the service ever saw); and once the backoff
//! is over everyone is served a fresh token.
//!
//! `refresh-kill`: every user's token expires at the same moment, so both instances'
//! proactive refreshers and request paths refresh in storms (Spotify takes 400 ms per refresh).
//! During storms instance A is killed with SIGKILL and restarted, several times. Promised: at
//! most one upstream refresh per user per expiry (per-user counts within the bound that the
//! tokens' lifetime allows; a refresh whose answer died with A is the one exception, and
//! counted); no refresh token presented again after its replacement reached the database; no
//! 401, B never fails, and afterwards every user is served on both instances with the token
//! Spotify last issued.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use hyper::Method;
use spotauth_emulator::{Emulator, EmulatorHandle, Fault, FaultTarget, RefreshReuse};
use tokio::task::JoinSet;

use crate::Options;
use crate::chaos::{Seen, slowest, sum};
use crate::error::{Context, Error, Result, bail};
use crate::http::{Auth, Conn, Reply};
use crate::load;
use crate::run::{emulator_config, service_env};
use crate::service::{BenchDb, Service};

/// Two instances on one database; A can be killed and restarted at its address.
struct Pair {
    bin: PathBuf,
    env: Vec<(String, String)>,
    out: PathBuf,
    name: &'static str,
    a: Option<Service>,
    a_addr: SocketAddr,
    b: Service,
    starts: u32,
}

impl Pair {
    async fn start(opts: &Options, name: &'static str, env: Vec<(String, String)>) -> Result<Pair> {
        let out = std::path::absolute(&opts.out).ctx("output path")?;
        let log = |who: &str| out.join(format!("service-chaos-{name}-{who}.log"));
        let a = Service::start(&opts.service_bin, &env, &log("a1")).await?;
        let b = Service::start(&opts.service_bin, &env, &log("b")).await?;
        let a_addr = a.addr;
        Ok(Pair { bin: opts.service_bin.clone(), env, out, name, a: Some(a), a_addr, b, starts: 1 })
    }

    fn addrs(&self) -> [SocketAddr; 2] {
        [self.a_addr, self.b.addr]
    }

    /// SIGKILL, no warning: whatever A was doing stops between two instructions.
    async fn kill_a(&mut self) {
        if let Some(a) = self.a.take() {
            a.stop().await;
        }
    }

    async fn restart_a(&mut self) -> Result<()> {
        self.starts += 1;
        let log = self.out.join(format!("service-chaos-{}-a{}.log", self.name, self.starts));
        self.a = Some(Service::start_at(&self.bin, &self.env, &log, self.a_addr).await?);
        Ok(())
    }

    async fn stop(self) {
        if let Some(a) = self.a {
            a.stop().await;
        }
        self.b.stop().await;
    }
}

/// Load on both instances: `/token` (3 in 5), `/me` and `/subscription`, round robin over the
/// users, each answer recorded under its instance.
struct Load {
    seen: Arc<[Seen; 2]>,
    stop: Arc<AtomicBool>,
    workers: JoinSet<Result<()>>,
}

impl Load {
    fn start(addrs: [SocketAddr; 2], cookies: Arc<Vec<String>>, workers: usize) -> Load {
        let seen: Arc<[Seen; 2]> = Arc::new(Default::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut set = JoinSet::new();
        for w in 0..workers {
            let (seen, stop, cookies) = (seen.clone(), stop.clone(), cookies.clone());
            set.spawn(async move {
                let mut conns = [Conn::new(addrs[0])?, Conn::new(addrs[1])?];
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let at = i % 2;
                    let cookie = &cookies[(i / 2) % cookies.len()];
                    let path = match i % 5 {
                        0 => "/api/users/me",
                        1 => "/api/auth/spotify/subscription",
                        _ => "/api/auth/spotify/token",
                    };
                    let began = Instant::now();
                    match conns[at].send(Method::GET, path, Some(cookie)).await {
                        Ok(reply) => seen[at].record(Some(verdict(&reply)), began.elapsed()),
                        Err(_) => {
                            seen[at].record(None, began.elapsed());
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    i += workers;
                }
                Ok::<_, Error>(())
            });
        }
        Load { seen, stop, workers: set }
    }

    async fn finish(mut self) -> Result<Arc<[Seen; 2]>> {
        self.stop.store(true, Ordering::Relaxed);
        while let Some(done) = self.workers.join_next().await {
            done.ctx("load worker")??;
        }
        Ok(self.seen)
    }
}

/// The status to record: a 503 counts as one only when it is a Spotify problem that says when
/// to come back; anything else becomes 599 (counted as "other").
fn verdict(reply: &Reply) -> u16 {
    if reply.status != 503 {
        return reply.status;
    }
    let body = String::from_utf8_lossy(&reply.body);
    let spotify =
        body.contains("\"code\":\"spotify_unavailable\"") || body.contains("\"code\":\"spotify_rate_limited\"");
    if spotify && reply.headers.contains_key("retry-after") { 503 } else { 599 }
}

/// What every user's `/token` on `addr` says now.
#[derive(Debug, Default)]
pub(crate) struct Census {
    /// 200 with a token Spotify accepts as the user's.
    pub(crate) valid: usize,
    /// 503 `spotify_unavailable` / `spotify_rate_limited` with `Retry-After`.
    pub(crate) waiting: usize,
    /// Anything else, described.
    pub(crate) bad: Vec<String>,
}

pub(crate) async fn census(
    addr: SocketAddr,
    emulator: &EmulatorHandle,
    users: &[String],
    cookies: &[String],
) -> Result<Census> {
    let mut conn = Conn::new(addr)?;
    let mut spotify = Conn::new(emulator.addr())?;
    let mut census = Census::default();
    for (user, cookie) in users.iter().zip(cookies) {
        let reply = conn.send(Method::GET, "/api/auth/spotify/token", Some(cookie)).await?;
        match verdict(&reply) {
            200 => {
                let body: serde_json::Value = serde_json::from_slice(&reply.body).ctx("/token body")?;
                let token = body["accessToken"].as_str().ctx("no accessToken")?;
                let me = spotify.send_with(Method::GET, "/v1/me", Auth::Bearer(token), None).await?;
                let me: serde_json::Value = serde_json::from_slice(&me.body).unwrap_or_default();
                if me["id"] == user.as_str() {
                    census.valid += 1;
                } else {
                    census.bad.push(format!("{user}: served a token Spotify refuses"));
                }
            }
            503 => census.waiting += 1,
            status => census.bad.push(format!("{user}: HTTP {status} {}", String::from_utf8_lossy(&reply.body))),
        }
    }
    Ok(census)
}

/// Users whose profile says they must reconnect Spotify (what an `invalid_grant` leaves).
async fn reconnect_required(addr: SocketAddr, cookies: &[String]) -> Result<usize> {
    let mut conn = Conn::new(addr)?;
    let mut n = 0;
    for cookie in cookies {
        let reply = conn.send(Method::GET, "/api/users/me", Some(cookie)).await?.expect(200, "/api/users/me")?;
        let body: serde_json::Value = serde_json::from_slice(&reply.body).ctx("/me body")?;
        n += usize::from(body["reauthRequired"] != false);
    }
    Ok(n)
}

/// The different refresh tokens the reuses presented, by owner and replacement time (one lost
/// answer leaves one replaced token, presented again at every later attempt until one succeeds).
fn distinct<'a>(reuses: &[&'a RefreshReuse]) -> BTreeSet<(&'a str, SystemTime)> {
    reuses.iter().map(|r| (r.user_id.as_str(), r.replaced_at)).collect()
}

/// Token-endpoint calls Spotify has received so far.
fn token_calls(emulator: &EmulatorHandle) -> u64 {
    emulator.counters().total.token_refresh_token
}

/// The common start: emulator, database, the pair, every user logged in (on A).
async fn setup(
    opts: &Options,
    name: &'static str,
    users: &[String],
    lifetime: Duration,
    extra: &[(&str, &str)],
) -> Result<(EmulatorHandle, BenchDb, Pair, Arc<Vec<String>>)> {
    let emulator =
        Emulator::start(emulator_config(users).access_token_lifetime(lifetime)).await.ctx("start the emulator")?;
    let db = BenchDb::create(&opts.database_url).await?;
    let mut env = service_env(&emulator);
    env.extend([("DATABASE_URL".into(), db.url.clone()), ("RUST_LOG".into(), "warn".into())]);
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    std::fs::create_dir_all(&opts.out).ctx("create the output directory")?;
    let pair = match Pair::start(opts, name, env).await {
        Ok(pair) => pair,
        Err(e) => {
            emulator.stop().await;
            let _ = db.drop_db().await;
            return Err(e);
        }
    };
    let cookies = match load::seed(pair.a_addr, emulator.addr(), users, 8).await {
        Ok(c) => Arc::new(c),
        Err(e) => {
            pair.stop().await;
            emulator.stop().await;
            let _ = db.drop_db().await;
            return Err(e);
        }
    };
    Ok((emulator, db, pair, cookies))
}

async fn teardown(emulator: EmulatorHandle, db: BenchDb, pair: Pair) {
    pair.stop().await;
    emulator.stop().await;
    if let Err(e) = db.drop_db().await {
        eprintln!("warning: {e}");
    }
}

/// The service's Spotify timeout in these scenarios (its lease is this + 5 s).
const SPOTIFY_TIMEOUT_MS: u64 = 1500;

pub async fn spotify_faults(opts: &Options) -> Result<String> {
    let phase = if opts.smoke { Duration::from_secs(3) } else { Duration::from_secs(8) };
    let users: Vec<String> = (1..=if opts.smoke { 10 } else { 60 }).map(|i| format!("fault{i:04}")).collect();
    let timeout = SPOTIFY_TIMEOUT_MS.to_string();
    // Spotify's hour-long Retry-After, capped by the service's setting to twice a phase, so the
    // run sees the backoff end.
    let cap = (phase * 2).as_secs().to_string();
    let extra = [
        ("SPOTIFY_MAX_BACKOFF_SECS", cap.as_str()),
        // Refresh when less than 5 s is left (the request path) or 14 s (the proactive pass,
        // every 2 s): 20-s tokens are refreshed 6 s after they are issued, and a failed refresh
        // is tried again at every pass, so every phase meets refreshes; tokens run out during
        // the faults.
        ("ACCESS_TOKEN_MIN_VALIDITY_SECS", "5"),
        ("PROACTIVE_REFRESH_INTERVAL_SECS", "2"),
        ("PROACTIVE_REFRESH_LOOKAHEAD_SECS", "14"),
        ("SPOTIFY_TIMEOUT_MS", timeout.as_str()),
        // A Premium re-check (a Web API call) every 10 s per user.
        ("SUBSCRIPTION_TTL_SECS", "10"),
    ];
    let (emulator, db, pair, cookies) = setup(opts, "spotify-faults", &users, Duration::from_secs(20), &extra).await?;
    let result = faults_body(&pair, &emulator, &users, &cookies, phase).await;
    teardown(emulator, db, pair).await;
    result
}

async fn faults_body(
    pair: &Pair,
    emulator: &EmulatorHandle,
    users: &[String],
    cookies: &Arc<Vec<String>>,
    phase: Duration,
) -> Result<String> {
    let load = Load::start(pair.addrs(), cookies.clone(), 8);
    // The faults begin when the tokens are due for refresh.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let token = FaultTarget::Token;
    let faults: [(&str, Vec<Fault>); 4] = [
        ("5xx", vec![Fault::server_error(token, 503).always()]),
        ("timeouts", vec![Fault::slow(token, Duration::from_millis(SPOTIFY_TIMEOUT_MS + 1000)).always()]),
        ("dropped", vec![Fault::drop_connection(token).always()]),
        ("burst-429", vec![Fault::rate_limited(token, 4).always()]),
    ];
    let mut lines = Vec::new();
    let mut bad = Vec::new();
    for (name, rules) in faults {
        for rule in rules {
            emulator.inject_fault(rule).map_err(Error)?;
        }
        let calls = token_calls(emulator);
        tokio::time::sleep(phase).await;
        let census = census(pair.b.addr, emulator, users, cookies).await?;
        emulator.clear_faults();
        lines.push(format!(
            "{name}: {} calls, then {} served a valid token, {} 503",
            token_calls(emulator) - calls,
            census.valid,
            census.waiting
        ));
        bad.extend(census.bad);
    }
    // The quota 429 with an hour's Retry-After, on the Web API and the token endpoint.
    emulator.inject_fault(Fault::quota_exceeded(FaultTarget::Any, 3600).always()).map_err(Error)?;
    let quota_at = Instant::now();
    let calls = || token_calls(emulator) + emulator.counters().total.me;
    let began = calls();
    // The first call (once the burst's backoff is over) meets the quota 429; calls already on
    // their way land within a second; after that, no instance may call Spotify at all.
    while calls() == began {
        if quota_at.elapsed() > Duration::from_secs(15) {
            bail!("spotify-faults: nobody called Spotify within 15 s of the quota phase");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first_after = quota_at.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let in_flight = calls() - began;
    tokio::time::sleep(phase).await;
    let during_backoff = calls() - began - in_flight;
    // Spotify would answer again; the service waits out its backoff all the same.
    emulator.clear_faults();
    let during = census(pair.b.addr, emulator, users, cookies).await?;
    bad.extend(during.bad);
    lines.push(format!(
        "quota-429 (Retry-After 3600, capped at {} s): first call after {:.1} s, {in_flight} calls within a second of \
         it, {during_backoff} in the {:.0} s after; {} served a valid token, {} 503",
        (phase * 2).as_secs(),
        first_after.as_secs_f64(),
        phase.as_secs_f64(),
        during.valid,
        during.waiting
    ));
    let seen = load.finish().await?;

    // Once the backoff is over, everyone is served a fresh token.
    let after = loop {
        let census = census(pair.b.addr, emulator, users, cookies).await?;
        if census.valid == users.len() || quota_at.elapsed() > phase * 3 + Duration::from_secs(20) {
            break census;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let recovered = quota_at.elapsed().saturating_sub(first_after);
    bad.extend(after.bad);
    let reauth = reconnect_required(pair.b.addr, cookies).await?;
    let reuses = emulator.refresh_reuses();
    let (lost, twice): (Vec<&RefreshReuse>, Vec<&RefreshReuse>) = reuses.iter().partition(|r| !r.successor_presented);

    let unauthenticated = sum(&seen[..], |s| &s.unauthenticated);
    let other = sum(&seen[..], |s| &s.other);
    let unreachable = sum(&seen[..], |s| &s.unreachable);
    let line = format!(
        "spotify-faults: {} users on 2 instances, {} answers ({} ok, {} 503 with Retry-After, {} 401, {} other, {} \
         unreachable), slowest {:.0} ms; {}; everyone served {:.1} s after the first quota 429 ({}/{} valid); {} must \
         reconnect Spotify; replaced refresh tokens presented again: {} (and {} refresh answers that never arrived, \
         Spotify having replaced the token after the service gave up: their tokens presented again {} times)",
        users.len(),
        seen.iter().map(Seen::total).sum::<u64>(),
        sum(&seen[..], |s| &s.ok),
        sum(&seen[..], |s| &s.unavailable),
        unauthenticated,
        other,
        unreachable,
        slowest(&seen[..]).as_secs_f64() * 1000.0,
        lines.join("; "),
        recovered.as_secs_f64(),
        after.valid,
        users.len(),
        reauth,
        twice.len(),
        distinct(&lost).len(),
        lost.len(),
    );
    if unauthenticated > 0 || other > 0 || unreachable > 0 || !bad.is_empty() {
        bail!("{line}: wrong answers: {} {}; {}", seen[0].others(), seen[1].others(), bad.join("; "));
    }
    if during_backoff > 0 {
        bail!("{line}: Spotify was called during the shared backoff");
    }
    if after.valid != users.len() || reauth > 0 || !twice.is_empty() {
        bail!("{line}: not everyone came through whole");
    }
    Ok(line)
}

pub async fn refresh_kill(opts: &Options) -> Result<String> {
    let kills = if opts.smoke { 2 } else { 6 };
    let users: Vec<String> = (1..=if opts.smoke { 12 } else { 50 }).map(|i| format!("kill{i:04}")).collect();
    let timeout = SPOTIFY_TIMEOUT_MS.to_string();
    let lookahead = LOOKAHEAD_SECS.to_string();
    let extra = [
        // Tokens of 20 s refreshed by the proactive pass when 12 s are left: one storm of every
        // user about every 8 s (all logged in together, so all expire together).
        ("ACCESS_TOKEN_MIN_VALIDITY_SECS", "5"),
        ("PROACTIVE_REFRESH_INTERVAL_SECS", "1"),
        ("PROACTIVE_REFRESH_LOOKAHEAD_SECS", lookahead.as_str()),
        ("PROACTIVE_REFRESH_CONCURRENCY", "16"),
        ("SPOTIFY_TIMEOUT_MS", timeout.as_str()),
    ];
    let (emulator, db, mut pair, cookies) = setup(opts, "refresh-kill", &users, LIFETIME, &extra).await?;
    let result = kill_body(&mut pair, &emulator, &users, &cookies, kills).await;
    teardown(emulator, db, pair).await;
    result
}

const LIFETIME_SECS: u64 = 20;
const LIFETIME: Duration = Duration::from_secs(LIFETIME_SECS);
/// The proactive pass refreshes a token this long before it expires.
const LOOKAHEAD_SECS: u64 = 12;
/// The youngest a token may be when it is refreshed: its lifetime minus the proactive lookahead.
const MIN_AGE: Duration = Duration::from_secs(LIFETIME_SECS - LOOKAHEAD_SECS);

async fn kill_body(
    pair: &mut Pair,
    emulator: &EmulatorHandle,
    users: &[String],
    cookies: &Arc<Vec<String>>,
    kills: usize,
) -> Result<String> {
    let began = Instant::now();
    // Every refresh takes Spotify 400 ms: storms last long enough to be interrupted.
    emulator.inject_fault(Fault::slow(FaultTarget::Token, Duration::from_millis(400)).always()).map_err(Error)?;
    let load = Load::start(pair.addrs(), cookies.clone(), 8);
    let mut killed_at: Vec<SystemTime> = Vec::new();
    let mut down = Duration::ZERO;
    while killed_at.len() < kills {
        // A storm: refreshes arriving at Spotify. Kill A 200 ms into it.
        let before = token_calls(emulator);
        let waited = Instant::now();
        while token_calls(emulator) < before + 3 {
            if waited.elapsed() > Duration::from_secs(30) {
                bail!("refresh-kill: no refresh storm within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        pair.kill_a().await;
        killed_at.push(SystemTime::now());
        let dead = Instant::now();
        tokio::time::sleep(Duration::from_millis(500)).await;
        pair.restart_a().await?;
        down += dead.elapsed();
        // Let the storm end before waiting for the next one.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    // One more full lifetime: every lease A held has lapsed and every user has been refreshed
    // since the last kill.
    tokio::time::sleep(LIFETIME).await;
    let seen = load.finish().await?;
    emulator.clear_faults();
    let elapsed = began.elapsed();

    let mut bad = Vec::new();
    let mut served_on_both = users.len();
    for addr in pair.addrs() {
        let census = census(addr, emulator, users, cookies).await?;
        served_on_both = served_on_both.min(census.valid);
        bad.extend(census.bad);
        if census.waiting > 0 {
            bad.push(format!("{} users not served on {addr}", census.waiting));
        }
    }
    let reuses = emulator.refresh_reuses();
    // A reuse is the kill's when the refresh that replaced the token was answered around a kill
    // and its answer never reached the database (its successor was never presented).
    let near_kill = |r: &RefreshReuse| {
        killed_at.iter().any(|k| {
            let gap = match r.replaced_at.duration_since(*k) {
                Ok(after) => after,
                Err(before) => before.duration(),
            };
            gap < Duration::from_secs(1)
        })
    };
    let (lost, ours): (Vec<&RefreshReuse>, Vec<&RefreshReuse>) =
        reuses.iter().partition(|r| !r.successor_presented && near_kill(r));
    let lost_answers = distinct(&lost);
    let mut lost_per_user: BTreeMap<&str, u64> = BTreeMap::new();
    for (user, _) in &lost_answers {
        *lost_per_user.entry(user).or_default() += 1;
    }
    // At most one refresh per expiry: a token is refreshed no younger than MIN_AGE, so over the
    // run a user can have been refreshed at most elapsed / MIN_AGE + 1 times, plus once more for
    // each refresh whose answer died with A.
    let counters = emulator.counters();
    let bound = elapsed.as_secs() / MIN_AGE.as_secs() + 1;
    let mut over = Vec::new();
    let mut per_user = Vec::new();
    for user in users {
        let n = counters.user(user).token_refresh_token;
        per_user.push(n);
        let allowed = bound + lost_per_user.get(user.as_str()).copied().unwrap_or(0);
        if n > allowed {
            over.push(format!("{user}: {n} refreshes (at most {allowed})"));
        }
    }
    let unauthenticated = sum(&seen[..], |s| &s.unauthenticated);
    let other = sum(&seen[..], |s| &s.other);
    let line = format!(
        "refresh-kill: {} users on 2 instances, A killed {} times during refresh storms (down {:.1} s in all), {:.0} s: \
         {} upstream refreshes, per user {}–{} (one per expiry allows {}); replaced refresh tokens presented again: {} \
         (and {} refresh answers that died with A: their tokens presented again {} times); answers: A {} ok / {} unreachable, B {} ok, {} 401, {} other, slowest {:.0} \
         ms; afterwards {} of {} users served on both with Spotify's latest token",
        users.len(),
        killed_at.len(),
        down.as_secs_f64(),
        elapsed.as_secs_f64(),
        counters.total.token_refresh_token,
        per_user.iter().min().copied().unwrap_or(0),
        per_user.iter().max().copied().unwrap_or(0),
        bound,
        ours.len(),
        lost_answers.len(),
        lost.len(),
        seen[0].ok.load(Ordering::Relaxed),
        seen[0].unreachable.load(Ordering::Relaxed),
        seen[1].ok.load(Ordering::Relaxed),
        unauthenticated,
        other,
        slowest(&seen[..]).as_secs_f64() * 1000.0,
        served_on_both,
        users.len(),
    );
    if unauthenticated > 0 || other > 0 || seen[1].unreachable.load(Ordering::Relaxed) > 0 || !bad.is_empty() {
        bail!("{line}: wrong answers: {} {}; {}", seen[0].others(), seen[1].others(), bad.join("; "));
    }
    if !ours.is_empty() || !over.is_empty() {
        bail!("{line}: refreshed more than once per expiry: {}", over.join("; "));
    }
    Ok(line)
}
