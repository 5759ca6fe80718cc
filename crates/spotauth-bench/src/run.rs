//! One run: a pass per store, each with its own emulator, database and service process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use rand::Rng;
use spotauth_emulator::{Emulator, EmulatorConfig, EmulatorHandle, TestUser};

use crate::error::{Context, Result, bail};
use crate::load::{self, Measured, Workload};
use crate::report::{self, CaseResult, CpuUse, PassResult, SweepPoint};
use crate::room;
use crate::service::{BenchDb, Service, cpu_time_of};
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
    let mut config = EmulatorConfig::new(CLIENT_ID).client_secret(Some(CLIENT_SECRET.into())).redirect_uris([REDIRECT]);
    for u in users.iter().chain(&storm_users).chain(&fan_users) {
        config = config.user(TestUser::premium(u.clone()));
    }
    let emulator = Emulator::start(config).await.ctx("start the emulator")?;
    let mut env: Vec<(String, String)> = vec![
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
    ];
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
    let result = pass_body(store, opts, &emulator, &env, (&users, &storm_users, &fan_users), db_pid).await;
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

struct Ctx<'a> {
    store: Store,
    opts: &'a Options,
    service: &'a Service,
    db_pid: Option<u32>,
}

impl Ctx<'_> {
    async fn case(
        &self,
        name: &str,
        workload: &Workload,
        connections: usize,
        duration: Duration,
    ) -> Result<CaseResult> {
        let cpu = Cpu::now(self.service, self.db_pid)?;
        let m = load::drive(self.service.addr, workload, connections, self.opts.warmup, duration).await?;
        let used = cpu.since(self.service, self.db_pid)?;
        let result = CaseResult::from_measured(self.store, name, connections, &m, used);
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
    db_pid: Option<u32>,
) -> Result<PassResult> {
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
    let ctx = Ctx { store, opts, service: &service, db_pid };
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
    eprintln!("service peak RSS: {:.1} MiB", peak_rss_kib as f64 / 1024.0);
    // Group playback last: its people join the room (the cases above never see them).
    let fan_cookies = load::seed(service.addr, emulator.addr(), fan_users, 8).await?;
    let rounds = if opts.smoke { 4 } else { 10 };
    let fan_out = room::fan_out(service.addr, emulator, fan_cookies, &fan_out_sizes(opts), rounds).await?;
    service.stop().await;

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
    Ok(pass)
}

/// How many people group playback is measured with (issue #15: 50 and 500).
fn fan_out_sizes(opts: &Options) -> Vec<usize> {
    if opts.smoke { vec![50] } else { vec![50, 500] }
}

fn sqlite_unsupported(log: &std::path::Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|t| t.contains("DATABASE_URL is required"))
}
