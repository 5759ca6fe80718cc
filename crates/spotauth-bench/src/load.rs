//! The load generator: a fixed number of keep-alive connections, each sending its next request
//! as soon as the previous answer is read (closed loop), for a fixed time after a warm-up. Every
//! request's latency is kept (microseconds), so percentiles are exact.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::Method;
use tokio::task::JoinSet;

use crate::error::{Context, Error, Result, bail};
use crate::http::Conn;

/// The session cookie's name with `COOKIE_SECURE=false`.
pub const SESSION_COOKIE: &str = "spotauth_session";
/// The login-flow cookie's name with `COOKIE_SECURE=false`.
pub const LOGIN_COOKIE: &str = "spotauth_login";

/// What each request of a case does.
#[derive(Debug, Clone)]
pub enum Workload {
    /// `GET path`, with the sessions' cookies round-robin (none for `/healthz`).
    Get {
        /// Path and query.
        path: &'static str,
        /// `name=value` session cookies; empty for anonymous requests.
        cookies: Arc<Vec<String>>,
    },
    /// `POST /api/auth/spotify/refresh`: connection `i` owns session `i` and keeps the rotated
    /// cookie from each answer.
    Refresh {
        /// One session cookie per connection.
        cookies: Arc<Vec<String>>,
    },
    /// The whole login: `POST /login`, the emulator's `/authorize` with `login_as`, then the
    /// callback with the login cookie; one "request" is the round trip.
    Login {
        /// The emulator.
        emulator: SocketAddr,
        /// Emulator users to log in, round-robin.
        users: Arc<Vec<String>>,
    },
}

/// What one case measured.
#[derive(Debug, Default, Clone)]
pub struct Measured {
    /// Requests completed inside the measured window (successes and errors).
    pub requests: u64,
    /// Non-2xx answers (or unexpected statuses in the login flow) and transport failures.
    pub errors: u64,
    /// The measured window.
    pub elapsed: Duration,
    /// Latencies in microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
}

impl Measured {
    /// Counts one finished request; returns whether it failed.
    fn record(&mut self, took: Duration, outcome: Result<()>) -> bool {
        self.requests += 1;
        self.latencies_us.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
        let Err(e) = outcome else { return false };
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.0);
        }
        true
    }

    /// Requests per second.
    pub fn rps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.requests as f64 / secs } else { 0.0 }
    }

    /// The `p`-th percentile (0–100) in milliseconds (nearest rank).
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let n = self.latencies_us.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        let idx = rank.clamp(1, n) - 1;
        f64::from(self.latencies_us[idx]) / 1000.0
    }

    /// The slowest request in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.latencies_us.last().map_or(0.0, |v| f64::from(*v) / 1000.0)
    }

    fn merge(&mut self, other: Measured) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Runs `workload` on `connections` connections to `service`: `warmup` unmeasured, then
/// `duration` measured.
pub async fn drive(
    service: SocketAddr,
    workload: &Workload,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<Measured> {
    if let Workload::Refresh { cookies } = workload
        && cookies.len() < connections
    {
        bail!("the refresh case needs one session per connection ({} < {connections})", cookies.len());
    }
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let measure_from = start + warmup;
    let deadline = measure_from + duration;
    let mut set = JoinSet::new();
    for i in 0..connections {
        let workload = workload.clone();
        let next = Arc::clone(&next);
        set.spawn(async move { worker(service, workload, i, next, measure_from, deadline).await });
    }
    let mut total = Measured::default();
    while let Some(joined) = set.join_next().await {
        total.merge(joined.ctx("load worker")??);
    }
    total.elapsed = Instant::now().saturating_duration_since(measure_from);
    total.latencies_us.sort_unstable();
    Ok(total)
}

async fn worker(
    service: SocketAddr,
    workload: Workload,
    index: usize,
    next: Arc<AtomicUsize>,
    measure_from: Instant,
    deadline: Instant,
) -> Result<Measured> {
    let mut conn = Conn::new(service)?;
    let mut emulator = match &workload {
        Workload::Login { emulator, .. } => Some(Conn::new(*emulator)?),
        _ => None,
    };
    let mut own_cookie = match &workload {
        Workload::Refresh { cookies } => cookies.get(index).cloned(),
        _ => None,
    };
    // Connect before the clock starts counting.
    if let Err(e) = conn.connect().await {
        return Ok(Measured { requests: 1, errors: 1, first_error: Some(e.0), ..Measured::default() });
    }
    let mut out = Measured::default();
    loop {
        let began = Instant::now();
        if began >= deadline {
            break;
        }
        let outcome: Result<()> = match &workload {
            Workload::Get { path, cookies } => {
                let cookie = if cookies.is_empty() {
                    None
                } else {
                    cookies.get(next.fetch_add(1, Ordering::Relaxed) % cookies.len()).map(String::as_str)
                };
                conn.send(Method::GET, path, cookie).await.and_then(|r| ok_2xx(r.status, path))
            }
            Workload::Refresh { .. } => refresh_once(&mut conn, &mut own_cookie).await,
            Workload::Login { users, .. } => match (emulator.as_mut(), users.is_empty()) {
                (Some(emu), false) => {
                    let user = &users[next.fetch_add(1, Ordering::Relaxed) % users.len()];
                    login(&mut conn, emu, user).await.map(|_| ())
                }
                _ => Err(Error("login workload without users or emulator".into())),
            },
        };
        if began < measure_from {
            continue;
        }
        if out.record(began.elapsed(), outcome) {
            // A dead server must not turn into a busy loop.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    Ok(out)
}

pub(crate) fn ok_2xx(status: u16, what: &str) -> Result<()> {
    if (200..300).contains(&status) { Ok(()) } else { Err(Error(format!("{what}: HTTP {status}"))) }
}

async fn refresh_once(conn: &mut Conn, cookie: &mut Option<String>) -> Result<()> {
    let current = cookie.as_deref().ctx("no session for this connection")?;
    let reply = conn.send(Method::POST, "/api/auth/spotify/refresh", Some(current)).await?;
    if let Some(rotated) = reply.cookie(SESSION_COOKIE) {
        *cookie = Some(rotated);
    }
    ok_2xx(reply.status, "POST /api/auth/spotify/refresh")
}

/// The browser's login round trip; returns the session cookie (`name=value`).
pub async fn login(service: &mut Conn, emulator: &mut Conn, user: &str) -> Result<String> {
    let reply = service
        .send(Method::POST, "/api/auth/spotify/login", None)
        .await?
        .expect(200, "POST /api/auth/spotify/login")?;
    let login_cookie = reply.cookie(LOGIN_COOKIE).ctx("POST /login set no login cookie")?;
    let body: serde_json::Value = serde_json::from_slice(&reply.body).ctx("POST /login body")?;
    let authorize = body["authorizeUrl"].as_str().ctx("POST /login: no authorizeUrl")?;
    let authorize = url::Url::parse(authorize).ctx("authorizeUrl")?;
    let target = format!("{}?{}&login_as={user}", authorize.path(), authorize.query().unwrap_or(""));
    let reply = emulator.send(Method::GET, &target, None).await?.expect(302, "emulator /authorize")?;
    let location = reply.location().ctx("emulator /authorize: no Location")?;
    let (_, query) = location.split_once('?').ctx("emulator /authorize: redirect without a query")?;
    let reply = service
        .send(Method::GET, &format!("/api/auth/spotify/callback?{query}"), Some(&login_cookie))
        .await?
        .expect(303, "GET /api/auth/spotify/callback")?;
    if reply.location().is_some_and(|l| l.contains("error=")) {
        bail!("login of {user} failed: redirected to {}", reply.location().unwrap_or_default());
    }
    reply.cookie(SESSION_COOKIE).ctx("the callback set no session cookie")
}

/// Logs every user in, `parallel` at a time; the session cookies in the users' order.
pub async fn seed(service: SocketAddr, emulator: SocketAddr, users: &[String], parallel: usize) -> Result<Vec<String>> {
    let users = Arc::new(users.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for _ in 0..parallel.max(1) {
        let users = Arc::clone(&users);
        let next = Arc::clone(&next);
        set.spawn(async move {
            let mut svc = Conn::new(service)?;
            let mut emu = Conn::new(emulator)?;
            let mut got = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(user) = users.get(i) else { break };
                let cookie =
                    login(&mut svc, &mut emu, user).await.map_err(|e| Error(format!("seeding {user}: {e}")))?;
                got.push((i, cookie));
            }
            Ok::<_, Error>(got)
        });
    }
    let mut cookies = vec![String::new(); users.len()];
    while let Some(joined) = set.join_next().await {
        for (i, cookie) in joined.ctx("seeding task")?? {
            if let Some(slot) = cookies.get_mut(i) {
                *slot = cookie;
            }
        }
    }
    Ok(cookies)
}

/// A refresh storm: `per_user` simultaneous `GET /token` for every session, each on its own
/// connection, all released at once.
pub async fn storm(service: SocketAddr, cookies: &[String], per_user: usize) -> Result<Measured> {
    let total = cookies.len() * per_user;
    let mut conns = Vec::with_capacity(total);
    for cookie in cookies {
        for _ in 0..per_user {
            let mut conn = Conn::new(service)?;
            conn.connect().await?;
            conns.push((conn, cookie.clone()));
        }
    }
    let gate = Arc::new(tokio::sync::Barrier::new(total + 1));
    let mut set = JoinSet::new();
    for (mut conn, cookie) in conns {
        let gate = Arc::clone(&gate);
        set.spawn(async move {
            gate.wait().await;
            let began = Instant::now();
            let outcome = conn
                .send(Method::GET, "/api/auth/spotify/token", Some(&cookie))
                .await
                .and_then(|r| ok_2xx(r.status, "GET /api/auth/spotify/token"));
            (began.elapsed(), outcome)
        });
    }
    let started = Instant::now();
    gate.wait().await;
    let mut out = Measured::default();
    while let Some(joined) = set.join_next().await {
        let (took, outcome) = joined.ctx("storm task")?;
        out.record(took, outcome);
    }
    out.elapsed = started.elapsed();
    out.latencies_us.sort_unstable();
    Ok(out)
}
