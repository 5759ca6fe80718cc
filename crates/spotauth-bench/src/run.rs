//! One run: a pass per store, each with its own emulator, database and service process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use hyper::Method;
use rand::Rng;
use spotauth_emulator::{Emulator, EmulatorConfig, EmulatorHandle, TestUser};

use crate::error::{Context, Result, bail};
use crate::http::Conn;
use crate::load::{self, Measured, Workload};
use crate::report::{self, CaseResult, CpuUse, PassResult, Revocation, STRICT, SweepPoint};
use crate::room;
use crate::service::{BenchDb, DbCounter, Service, cpu_time_of};
use crate::{Options, Store};

const CLIENT_ID: &str = "bench-client";
const CLIENT_SECRET: &str = "bench-secret";
/// Registered at the emulator and configured in the service; the harness calls the service's
/// callback itself, so nothing listens there.
const REDIRECT: &str = "http://127.0.0.1:9/api/auth/spotify/callback";
const FRONTEND: &str = "http://127.0.0.1:3000/";
/// Access tokens from the emulator live 3600 s. The storm's service wants this much validity
/// left, so every token stored more than `3600 - STORM_MIN_VALIDITY` seconds ago needs a refresh,
/// and a token refreshed during the storm does not for that long.
const STORM_MIN_VALIDITY_SECS: u64 = 3594;
const STORM_MIN_AGE: Duration = Duration::from_secs(8);

/// Runs every pass, writes the results.
pub async fn run(opts: &Options) -> Result<()> {
    if !opts.service_bin.is_file() {
        bail!("no service binary at {} (cargo build -p spotauth-app)", opts.service_bin.display());
    }
    std::fs::create_dir_all(&opts.out).ctx(&format!("create {}", opts.out.display()))?;
    let started = Instant::now();
    let mut passes = Vec::new();
    for store in &opts.stores {
        passes.push(run_pass(*store, opts).await?);
    }
    let report = report::Report::new(opts, passes);
    let json = opts.out.join("results.json");
    report.write_json(&json)?;
    println!("{}", report.table());
    println!("{}", report.targets_table());
    eprintln!("wrote {} ({:.0} s)", json.display(), started.elapsed().as_secs_f64());
    if let Some(svg) = &opts.svg
        && let Some(plot) = report.svg()
    {
        std::fs::write(svg, plot).ctx(&format!("write {}", svg.display()))?;
        eprintln!("wrote {}", svg.display());
    }
    if let Some(docs) = &opts.docs {
        report.update_docs(docs)?;
        eprintln!("updated {}", docs.display());
    }
    if report.passes.iter().all(|p| p.skipped.is_some()) {
        bail!("every pass was skipped");
    }
    if let Some(dead) = report.cases().find(|c| c.requests == 0 || c.errors == c.requests) {
        bail!(
            "case {} ({}) had no successful request: {}",
            dead.name,
            dead.store,
            dead.first_error.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

/// The emulator every mode runs: our Spotify app, with these users (Premium).
pub(crate) fn emulator_config<'a>(users: impl IntoIterator<Item = &'a String>) -> EmulatorConfig {
    let config = EmulatorConfig::new(CLIENT_ID).client_secret(Some(CLIENT_SECRET.into())).redirect_uris([REDIRECT]);
    users.into_iter().fold(config, |config, u| config.user(TestUser::premium(u.clone())))
}

/// The service's settings for `emulator`, with fresh keys; the store's settings come on top.
pub(crate) fn service_env(emulator: &EmulatorHandle) -> Vec<(String, String)> {
    vec![
        ("SPOTIFY_CLIENT_ID".into(), CLIENT_ID.into()),
        ("SPOTIFY_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
        ("SPOTIFY_REDIRECT_URI".into(), REDIRECT.into()),
        ("SPOTIFY_ACCOUNTS_URL".into(), emulator.accounts_url().to_owned()),
        ("SPOTIFY_API_URL".into(), emulator.api_url()),
        ("FRONTEND_URL".into(), FRONTEND.into()),
        ("TOKEN_ENCRYPTION_KEYS".into(), format!("k1:{}", random_key())),
        ("SESSION_SIGNING_KEY".into(), random_key()),
        ("COOKIE_SECURE".into(), "false".into()),
        // The load generator is one client on one address, thousands of requests a second: the
        // per-client limits (which stop exactly that) would measure the limiter, not the service.
        ("RATE_LIMITS".into(), "false".into()),
        ("LOGIN_PENDING_PER_CLIENT".into(), "100000".into()),
    ]
}

fn random_key() -> String {
    let bytes: [u8; 32] = rand::thread_rng().r#gen();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn run_pass(store: Store, opts: &Options) -> Result<PassResult> {
    eprintln!("\n==> {} pass", store.name());
    let users: Vec<String> = (1..=opts.users).map(|i| format!("bench{i:04}")).collect();
    let storm_users: Vec<String> = (1..=opts.storm_users).map(|i| format!("storm{i:04}")).collect();
    let fan_users: Vec<String> =
        (1..=fan_out_sizes(opts).last().copied().unwrap_or(0)).map(|i| format!("fan{i:04}")).collect();
    let emulator = Emulator::start(emulator_config(users.iter().chain(&storm_users).chain(&fan_users)))
        .await
        .ctx("start the emulator")?;
    let mut env = service_env(&emulator);
    // The service's access log is off by default here (at these rates a load balancer logs
    // requests); `RUST_LOG=info cargo xtask bench` measures with it.
    env.push(("RUST_LOG".into(), std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into())));
    let mut db = None;
    let mut data_dir = None;
    match store {
        Store::Mysql => {
            let created = BenchDb::create(&opts.database_url).await?;
            env.push(("DATABASE_URL".into(), created.url.clone()));
            db = Some(created);
        }
        Store::Sqlite => {
            let dir = std::path::absolute(opts.out.join(format!("sqlite-data-{}", std::process::id())))
                .ctx("sqlite data dir")?;
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).ctx(&format!("create {}", dir.display()))?;
            env.push(("DATA_DIR".into(), dir.to_string_lossy().into_owned()));
            data_dir = Some(dir);
        }
    }
    let db_pid = db.as_ref().and_then(|d| d.server_pid);
    let counter = match &db {
        Some(db) => Some(DbCounter::new(db).await?),
        None => None,
    };
    let dbs = Dbs { pid: db_pid, counter: counter.as_ref() };
    let result = pass_body(store, opts, &emulator, &env, (&users, &storm_users, &fan_users), dbs).await;
    if let Some(counter) = counter {
        counter.close().await;
    }
    emulator.stop().await;
    if let Some(db) = db
        && let Err(e) = db.drop_db().await
    {
        eprintln!("warning: {e}");
    }
    if let Some(dir) = data_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

/// CPU used by the service, by this process (generator + in-process emulator) and, when it
/// runs here, by the database server during `f`.
struct Cpu {
    service: Duration,
    generator: Duration,
    database: Option<Duration>,
    at: Instant,
}

impl Cpu {
    fn now(service: &Service, db_pid: Option<u32>) -> Result<Cpu> {
        Ok(Cpu {
            service: service.cpu_time()?,
            generator: cpu_time_of("/proc/self/stat")?,
            database: db_pid.and_then(|pid| cpu_time_of(&format!("/proc/{pid}/stat")).ok()),
            at: Instant::now(),
        })
    }

    /// Percent of one core since `self`.
    fn since(&self, service: &Service, db_pid: Option<u32>) -> Result<CpuUse> {
        let now = Cpu::now(service, db_pid)?;
        let wall = now.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let pct = |later: Duration, earlier: Duration| 100.0 * later.saturating_sub(earlier).as_secs_f64() / wall;
        Ok(CpuUse {
            service: pct(now.service, self.service),
            generator: pct(now.generator, self.generator),
            database: now.database.zip(self.database).map(|(later, earlier)| pct(later, earlier)),
        })
    }
}

/// The database server of a pass, when it is MariaDB: its process and its statement counter.
#[derive(Clone, Copy)]
struct Dbs<'a> {
    pid: Option<u32>,
    counter: Option<&'a DbCounter>,
}

struct Ctx<'a> {
    store: Store,
    opts: &'a Options,
    service: &'a Service,
    db: Dbs<'a>,
}

impl Ctx<'_> {
    async fn case(
        &self,
        name: &str,
        workload: &Workload,
        connections: usize,
        duration: Duration,
    ) -> Result<CaseResult> {
        let cpu = Cpu::now(self.service, self.db.pid)?;
        // Statements are counted in the measured window only (steady state): the warm-up is
        // where each session is read into the cache once.
        let load = load::drive(self.service.addr, workload, connections, self.opts.warmup, duration);
        let mark = async {
            let counter = self.db.counter?;
            tokio::time::sleep(self.opts.warmup).await;
            Some((counter.statements().await, Instant::now()))
        };
        let (m, mark) = tokio::join!(load, mark);
        let m = m?;
        let after = match self.db.counter {
            Some(c) => Some((c.statements().await?, Instant::now())),
            None => None,
        };
        let used = cpu.since(self.service, self.db.pid)?;
        let mut result = CaseResult::from_measured(self.store, name, connections, &m, used);
        if let (Some((before, from)), Some((after, to))) = (mark, after)
            && m.rps() > 0.0
        {
            // The counter's own read counts once.
            let wall = to.duration_since(from).as_secs_f64().max(1e-9);
            let per_second = after.saturating_sub(before?).saturating_sub(1) as f64 / wall;
            result.db_statements_per_request = Some((per_second / m.rps() * 1e4).round() / 1e4);
        }
        eprintln!("{}", result.line());
        Ok(result)
    }
}

async fn pass_body(
    store: Store,
    opts: &Options,
    emulator: &EmulatorHandle,
    env: &[(String, String)],
    (users, storm_users, fan_users): (&[String], &[String], &[String]),
    db: Dbs<'_>,
) -> Result<PassResult> {
    let db_pid = db.pid;
    let log = std::path::absolute(opts.out.join(format!("service-{}.log", store.name()))).ctx("log path")?;
    let service = match Service::start(&opts.service_bin, env, &log).await {
        Ok(s) => s,
        Err(e) if store == Store::Sqlite && sqlite_unsupported(&log) => {
            let why = format!("the service binary has no SQLite default yet (it requires DATABASE_URL): {e}");
            eprintln!("skipped: {why}");
            return Ok(PassResult::skipped(store, why));
        }
        Err(e) => return Err(e),
    };
    let seeding = Instant::now();
    let cookies = load::seed(service.addr, emulator.addr(), users, 8).await?;
    let storm_cookies = load::seed(service.addr, emulator.addr(), storm_users, 8).await?;
    let storm_seeded = Instant::now();
    eprintln!(
        "seeded {} + {} users through the login flow in {:.1} s",
        users.len(),
        storm_users.len(),
        seeding.elapsed().as_secs_f64()
    );
    let ctx = Ctx { store, opts, service: &service, db };
    let conns = opts.connections;
    let cookies = Arc::new(cookies);
    let get = |path: &'static str, cookies: &Arc<Vec<String>>| Workload::Get { path, cookies: Arc::clone(cookies) };
    let none = Arc::new(Vec::new());
    let mut cases = Vec::new();
    cases.push(ctx.case("GET /healthz", &get("/healthz", &none), conns, opts.duration).await?);
    cases.push(ctx.case("GET /api/users/me", &get("/api/users/me", &cookies), conns, opts.duration).await?);
    cases.push(ctx.case("GET /api/users/active", &get("/api/users/active", &cookies), conns, opts.duration).await?);
    cases.push(
        ctx.case("GET /api/auth/spotify/token", &get("/api/auth/spotify/token", &cookies), conns, opts.duration)
            .await?,
    );
    let mut sweep = Vec::new();
    let sweep_duration = (opts.duration * 3 / 5).max(Duration::from_secs(1));
    for &c in &opts.sweep {
        let r = ctx
            .case("sweep GET /api/auth/spotify/token", &get("/api/auth/spotify/token", &cookies), c, sweep_duration)
            .await?;
        sweep.push(SweepPoint { connections: c, rps: r.rps, p50_ms: r.p50_ms, p99_ms: r.p99_ms, errors: r.errors });
    }
    let own: Vec<String> = cookies.iter().take(conns).cloned().collect();
    cases.push(
        ctx.case("POST /api/auth/spotify/refresh", &Workload::Refresh { cookies: Arc::new(own) }, conns, opts.duration)
            .await?,
    );
    let login = Workload::Login { emulator: emulator.addr(), users: Arc::new(users.to_vec()) };
    cases.push(ctx.case("login + callback round trip", &login, conns, opts.duration).await?);
    let peak_rss_kib = service.peak_rss_kib()?;
    eprintln!("service peak RSS: {:.1} MiB with {} sessions seeded", peak_rss_kib as f64 / 1024.0, users.len());
    let (mut idle, mut revocation) = (None, None);
    if let Some(counter) = db.counter {
        idle = Some(idle_statements(counter).await?);
        let log = std::path::absolute(opts.out.join(format!("service-{}-b.log", store.name()))).ctx("log path")?;
        let other = Service::start(&opts.service_bin, env, &log).await?;
        // Until its first journal read, an instance serves nothing from memory (every request
        // reads the database, so a logout would reach it at once and measure nothing).
        tokio::time::sleep(BOUND * 2).await;
        let trials = if opts.smoke { 5 } else { 20 };
        let measured = revocation_delays(&service, &other, emulator.addr(), users, trials).await;
        other.stop().await;
        revocation = Some(measured?);
    }
    // Group playback last: its people join the room (the cases above never see them).
    let fan_cookies = load::seed(service.addr, emulator.addr(), fan_users, 8).await?;
    let rounds = if opts.smoke { 4 } else { 10 };
    let fan_out = room::fan_out(service.addr, emulator, fan_cookies, &fan_out_sizes(opts), rounds).await?;
    service.stop().await;

    // Strict mode, side by side: the same cases on a service that reads the database on every
    // request (the sessions seeded above are still there).
    let mut strict_env = env.to_vec();
    strict_env.push(("SESSION_CACHE_STALENESS_MS".into(), "0".into()));
    let strict_log =
        std::path::absolute(opts.out.join(format!("service-{}-strict.log", store.name()))).ctx("log path")?;
    let strict = Service::start(&opts.service_bin, &strict_env, &strict_log).await?;
    let sctx = Ctx { store, opts, service: &strict, db };
    // The refresh case rotated the first sessions' tokens (their old cookies are reuse now).
    let untouched = Arc::new(cookies.iter().skip(conns).cloned().collect::<Vec<_>>());
    let cookies = if untouched.is_empty() { cookies } else { untouched };
    for (path, with_cookies) in
        [("/healthz", false), ("/api/users/me", true), ("/api/users/active", true), ("/api/auth/spotify/token", true)]
    {
        let workload = get(path, if with_cookies { &cookies } else { &none });
        cases.push(sctx.case(&format!("GET {path}{STRICT}"), &workload, conns, opts.duration).await?);
    }
    strict.stop().await;

    // The storm: a restarted service that wants more validity than any stored token has left.
    let age = storm_seeded.elapsed();
    if age < STORM_MIN_AGE {
        tokio::time::sleep(STORM_MIN_AGE - age).await;
    }
    let mut storm_env = env.to_vec();
    storm_env.push(("ACCESS_TOKEN_MIN_VALIDITY_SECS".into(), STORM_MIN_VALIDITY_SECS.to_string()));
    let storm_log =
        std::path::absolute(opts.out.join(format!("service-{}-storm.log", store.name()))).ctx("log path")?;
    let storm_service = Service::start(&opts.service_bin, &storm_env, &storm_log).await?;
    emulator.reset_counters();
    let cpu = Cpu::now(&storm_service, db_pid)?;
    let m: Measured = load::storm(storm_service.addr, &storm_cookies, opts.storm_per_user).await?;
    let used = cpu.since(&storm_service, db_pid)?;
    let counters = emulator.counters();
    let upstream = counters.total.token_refresh_token;
    let max_per_user = counters.per_user.values().map(|c| c.token_refresh_token).max().unwrap_or(0);
    let storm_rss_kib = storm_service.peak_rss_kib()?;
    storm_service.stop().await;
    let mut storm = CaseResult::from_measured(
        store,
        "refresh storm: GET /api/auth/spotify/token",
        storm_cookies.len() * opts.storm_per_user,
        &m,
        used,
    );
    storm.upstream_refresh_calls = Some(upstream);
    storm.upstream_refresh_calls_max_per_user = Some(max_per_user);
    storm.storm_users = Some(storm_cookies.len());
    storm.requests_per_user = Some(opts.storm_per_user);
    eprintln!(
        "{} | upstream refresh calls {upstream} for {} users (max {max_per_user} per user)",
        storm.line(),
        storm_cookies.len()
    );
    cases.push(storm);

    let mut pass = PassResult::measured(store, cases, sweep, peak_rss_kib, storm_rss_kib);
    pass.fan_out = fan_out;
    pass.seeded_sessions = users.len();
    pass.idle_statements_per_s = idle;
    pass.revocation = revocation;
    Ok(pass)
}

/// The staleness bound the services run with (the default).
const BOUND: Duration = Duration::from_secs(1);

/// Statements per second an idle service sends the database, over 5 s.
async fn idle_statements(counter: &DbCounter) -> Result<f64> {
    let window = Duration::from_secs(5);
    let before = counter.statements().await?;
    tokio::time::sleep(window).await;
    let after = counter.statements().await?;
    let per_second = after.saturating_sub(before).saturating_sub(1) as f64 / window.as_secs_f64();
    eprintln!("idle service: {per_second:.1} database statements/s");
    Ok(per_second)
}

/// Session reads a service answered from memory so far (its `/metrics`).
async fn memory_reads(conn: &mut Conn) -> Result<u64> {
    let reply = conn.send(Method::GET, "/metrics", None).await?.expect(200, "GET /metrics")?;
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with("spotauth_session_cache_reads_total{from=\"memory\"}"))
        .ctx("no session cache in /metrics")?;
    line.rsplit(' ').next().unwrap_or_default().parse().ctx("cache reads")
}

/// Logs a user in on `a`, has `b` serve the session (cached there), logs out on `a`, and times
/// until `b` refuses it; `trials` times.
async fn revocation_delays(
    a: &Service,
    b: &Service,
    emulator: std::net::SocketAddr,
    users: &[String],
    trials: usize,
) -> Result<Revocation> {
    let (mut on_a, mut on_b, mut emu) = (Conn::new(a.addr)?, Conn::new(b.addr)?, Conn::new(emulator)?);
    let served_from_memory_before = memory_reads(&mut on_b).await?;
    let mut delays = Vec::with_capacity(trials);
    for user in users.iter().cycle().take(trials) {
        let cookie = load::login(&mut on_a, &mut emu, user).await?;
        for _ in 0..3 {
            on_b.send(Method::GET, "/api/users/me", Some(&cookie)).await?.expect(200, "GET /me on B")?;
        }
        on_a.send(Method::POST, "/api/auth/spotify/logout?scope=device", Some(&cookie))
            .await?
            .expect(200, "logout on A")?;
        let started = Instant::now();
        loop {
            let reply = on_b.send(Method::GET, "/api/users/me", Some(&cookie)).await?;
            if reply.status == 401 {
                break;
            }
            if started.elapsed() > Duration::from_secs(10) {
                bail!("B still served a logged-out session after 10 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        delays.push(started.elapsed());
    }
    if memory_reads(&mut on_b).await? <= served_from_memory_before {
        bail!("the second instance served nothing from memory: the delays measure no cache");
    }
    delays.sort_unstable();
    let ms = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
    let r = Revocation {
        trials,
        bound_ms: ms(BOUND),
        p50_ms: ms(delays[delays.len() / 2]),
        max_ms: ms(delays[delays.len() - 1]),
    };
    eprintln!("logout on A → refused on B: p50 {} ms, worst {} ms ({trials} logouts)", r.p50_ms, r.max_ms);
    Ok(r)
}

/// How many people group playback is measured with (issue #15: 50 and 500).
fn fan_out_sizes(opts: &Options) -> Vec<usize> {
    if opts.smoke { vec![50] } else { vec![50, 500] }
}

fn sqlite_unsupported(log: &std::path::Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|t| t.contains("DATABASE_URL is required"))
}
