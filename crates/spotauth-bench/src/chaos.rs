//! `--chaos`: faults under load, against the release binary, each scenario printing one line of
//! figures and failing when a promise breaks.
//!
//! Scenario `db-outage`: MariaDB itself is shut down for 20 s (`--smoke`: 4 s) while every user
//! keeps asking for their profile and their Spotify token, then started again. Promised: no
//! request hangs (every answer within [`ANSWER_BOUND`]); nobody is logged out (no 401); while the
//! database is away, answers are served from memory for at most the staleness bound and are a
//! 503 problem after it; `/readyz` says `database`; within 5 s of MariaDB answering again the
//! service serves everyone, without a restart; and every stored Spotify token still decrypts
//! and is the one the emulator last issued to that user.
//!
//! `spotify-faults` and `refresh-kill` (Spotify misbehaving; an instance killed mid-refresh) are
//! in `chaos_spotify.rs`, `sqlite-crash` (the embedded store killed and its disk filled) in
//! `chaos_sqlite.rs`.
//!
//! This stops and starts the MariaDB server of this machine (`mariadb-admin shutdown`,
//! `start-stop-daemon … mariadbd`): run it where nothing else uses that server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::Method;
use spotauth_emulator::Emulator;
use tokio::task::JoinSet;

use crate::Options;
use crate::error::{Context, Error, Result, bail};
use crate::http::Conn;
use crate::load;
use crate::run::{emulator_config, service_env};
use crate::service::{BenchDb, Service};
use crate::{chaos_spotify, chaos_sqlite};

/// No answer may take longer than this, the database away or not.
const ANSWER_BOUND: Duration = Duration::from_secs(2);
/// After MariaDB answers again, everyone is served within this.
const RECOVERY_BOUND: Duration = Duration::from_secs(5);

/// The scenarios, in the order they run.
pub const SCENARIOS: [&str; 4] = ["db-outage", "spotify-faults", "refresh-kill", "sqlite-crash"];

/// Runs every scenario (or the one `--only` names); one line of figures each. Every scenario
/// runs even when an earlier one fails; the run fails if any did.
pub async fn run(opts: &Options) -> Result<()> {
    std::fs::create_dir_all(&opts.out).ctx("create the output directory")?;
    let mut failed = Vec::new();
    for name in SCENARIOS {
        if opts.only.as_deref().is_some_and(|only| only != name) {
            continue;
        }
        let outcome = match name {
            "db-outage" => {
                let outage = db_outage(opts).await;
                // Whatever happened, the machine's MariaDB runs again afterwards.
                start_mariadb().await?;
                outage
            }
            "spotify-faults" => chaos_spotify::spotify_faults(opts).await,
            "refresh-kill" => chaos_spotify::refresh_kill(opts).await,
            _ => chaos_sqlite::sqlite_crash(opts).await,
        };
        match outcome {
            Ok(line) => println!("{line}"),
            Err(e) => {
                println!("FAILED {e}");
                failed.push(name);
            }
        }
    }
    if !failed.is_empty() {
        bail!("chaos: {} failed", failed.join(", "));
    }
    Ok(())
}

/// What the load saw, per phase or per instance.
#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) ok: AtomicU64,
    pub(crate) unavailable: AtomicU64,
    pub(crate) unauthenticated: AtomicU64,
    pub(crate) other: AtomicU64,
    /// No answer at all (connection refused or broken).
    pub(crate) unreachable: AtomicU64,
    pub(crate) slowest_us: AtomicU64,
    /// The statuses counted as `other`, for the failure message.
    pub(crate) other_statuses: std::sync::Mutex<std::collections::BTreeMap<u16, u64>>,
}

impl Seen {
    pub(crate) fn record(&self, status: Option<u16>, took: Duration) {
        let counter = match status {
            Some(200..=299) => &self.ok,
            Some(503) => &self.unavailable,
            Some(401) => &self.unauthenticated,
            Some(status) => {
                *self
                    .other_statuses
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entry(status)
                    .or_default() += 1;
                &self.other
            }
            None => &self.unreachable,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.slowest_us.fetch_max(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// `HTTP 404 ×3, HTTP 599 ×1` for the `other` answers.
    pub(crate) fn others(&self) -> String {
        let statuses = self.other_statuses.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        statuses.iter().map(|(s, n)| format!("HTTP {s} ×{n}")).collect::<Vec<_>>().join(", ")
    }

    pub(crate) fn total(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
            + self.unavailable.load(Ordering::Relaxed)
            + self.unauthenticated.load(Ordering::Relaxed)
            + self.other.load(Ordering::Relaxed)
            + self.unreachable.load(Ordering::Relaxed)
    }
}

/// One counter summed over several [`Seen`] (phases, or instances).
pub(crate) fn sum(seen: &[Seen], counter: impl Fn(&Seen) -> &AtomicU64) -> u64 {
    seen.iter().map(|s| counter(s).load(Ordering::Relaxed)).sum()
}

/// The slowest answer any of them saw.
pub(crate) fn slowest(seen: &[Seen]) -> Duration {
    Duration::from_micros(seen.iter().map(|s| s.slowest_us.load(Ordering::Relaxed)).max().unwrap_or(0))
}

async fn db_outage(opts: &Options) -> Result<String> {
    let outage = if opts.smoke { Duration::from_secs(4) } else { Duration::from_secs(20) };
    let users: Vec<String> = (1..=if opts.smoke { 8 } else { 50 }).map(|i| format!("chaos{i:04}")).collect();
    let emulator = Emulator::start(emulator_config(&users)).await.ctx("start the emulator")?;
    let db = BenchDb::create(&opts.database_url).await?;
    let mut env = service_env(&emulator);
    env.extend([("DATABASE_URL".into(), db.url.clone()), ("RUST_LOG".into(), "warn".into())]);
    let log = std::path::absolute(opts.out.join("service-chaos-db-outage.log")).ctx("log path")?;
    let service = Service::start(&opts.service_bin, &env, &log).await?;
    let result = outage_body(&service, &emulator, &users, outage).await;
    service.stop().await;
    emulator.stop().await;
    start_mariadb().await?;
    if let Err(e) = db.drop_db().await {
        eprintln!("warning: {e}");
    }
    result
}

async fn outage_body(
    service: &Service,
    emulator: &spotauth_emulator::EmulatorHandle,
    users: &[String],
    outage: Duration,
) -> Result<String> {
    let cookies = Arc::new(load::seed(service.addr, emulator.addr(), users, 8).await?);
    let phases: Arc<[Seen; 3]> = Arc::new(Default::default());
    let phase = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = JoinSet::new();
    for w in 0..8 {
        let (cookies, phases, phase, stop) = (cookies.clone(), phases.clone(), phase.clone(), stop.clone());
        let addr = service.addr;
        workers.spawn(async move {
            let mut conn = Conn::new(addr)?;
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                let cookie = &cookies[i % cookies.len()];
                let path = if i % 2 == 0 { "/api/users/me" } else { "/api/auth/spotify/token" };
                let began = Instant::now();
                let status = conn.send(Method::GET, path, Some(cookie)).await.ok().map(|r| r.status);
                let at = usize::try_from(phase.load(Ordering::Relaxed)).unwrap_or(2).min(2);
                phases[at].record(status, began.elapsed());
                if status.is_none() {
                    conn = Conn::new(addr)?;
                }
                i += 8;
            }
            Ok::<_, Error>(())
        });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    stop_mariadb().await?;
    let down_at = Instant::now();
    phase.store(1, Ordering::Relaxed);
    let mut readyz_said = None;
    while down_at.elapsed() < outage {
        if readyz_said.is_none() {
            let mut probe = Conn::new(service.addr)?;
            let reply = probe.send(Method::GET, "/readyz", None).await?;
            let body = String::from_utf8_lossy(&reply.body).into_owned();
            if reply.status == 503 && body.contains("not_ready") && body.contains("database") {
                readyz_said = Some(down_at.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start_mariadb().await?;
    let back_at = Instant::now();
    phase.store(2, Ordering::Relaxed);
    // Recovered: a whole round of every user's profile answered 200.
    let recovered = loop {
        let mut conn = Conn::new(service.addr)?;
        let mut all = true;
        for cookie in cookies.iter() {
            all &= conn.send(Method::GET, "/api/users/me", Some(cookie)).await.is_ok_and(|r| r.status == 200);
        }
        if all {
            break back_at.elapsed();
        }
        if back_at.elapsed() > Duration::from_secs(30) {
            bail!("db-outage: the service did not serve everyone within 30 s of MariaDB's return");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.store(true, Ordering::Relaxed);
    while let Some(done) = workers.join_next().await {
        done.ctx("load worker")??;
    }
    let matched = chaos_spotify::census(service.addr, emulator, users, &cookies).await?.valid;

    let [before, during, after] = &*phases;
    let slowest = slowest(&phases[..]);
    let line = format!(
        "db-outage: MariaDB down {:.0} s under load: {} answers during it ({} from memory, {} 503, {} 401, {} other), \
         slowest answer {:.0} ms (bound {} ms), /readyz 503 `database` after {}, everyone served {:.2} s after MariaDB \
         answered (bound {} s), {}/{} tokens decrypt and are the emulator's latest; before {} ok, after {} answers",
        outage.as_secs_f64(),
        during.total(),
        during.ok.load(Ordering::Relaxed),
        during.unavailable.load(Ordering::Relaxed),
        during.unauthenticated.load(Ordering::Relaxed),
        during.other.load(Ordering::Relaxed),
        slowest.as_secs_f64() * 1000.0,
        ANSWER_BOUND.as_millis(),
        readyz_said.map_or("never".to_owned(), |d| format!("{:.2} s", d.as_secs_f64())),
        recovered.as_secs_f64(),
        RECOVERY_BOUND.as_secs(),
        matched,
        users.len(),
        before.ok.load(Ordering::Relaxed),
        after.total(),
    );
    let unauthenticated = sum(&phases[..], |p| &p.unauthenticated);
    let other = sum(&phases[..], |p| &p.other) + sum(&phases[..], |p| &p.unreachable);
    if unauthenticated > 0 || other > 0 {
        bail!(
            "{line}: someone was logged out or answered unexpectedly ({})",
            phases.iter().map(Seen::others).collect::<Vec<_>>().join(" ")
        );
    }
    if slowest > ANSWER_BOUND {
        bail!("{line}: an answer took longer than the bound");
    }
    if readyz_said.is_none() || during.unavailable.load(Ordering::Relaxed) == 0 {
        bail!("{line}: the outage was not reported");
    }
    if recovered > RECOVERY_BOUND || matched != users.len() {
        bail!("{line}: not recovered whole");
    }
    Ok(line)
}

/// Runs a program of this machine to its end: its output, or an error naming its exit status
/// and what it wrote to stderr.
pub(crate) async fn command<S: AsRef<std::ffi::OsStr>>(
    program: &str,
    args: impl IntoIterator<Item = S>,
) -> Result<String> {
    let output = tokio::process::Command::new(program).args(args).output().await.ctx(program)?;
    if !output.status.success() {
        bail!("{program}: {} {}", output.status, String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

async fn mariadb(args: &[&str]) -> bool {
    let server = ["--protocol=tcp", "-h", "127.0.0.1", "-u", "root"];
    command("mariadb-admin", server.iter().chain(args)).await.is_ok()
}

/// The main server's pid file (the TLS test server has its own).
const PID_FILE: &str = "/run/mysqld/mysqld.pid";

/// Shuts this machine's MariaDB down and waits until its process is gone.
async fn stop_mariadb() -> Result<()> {
    let pid = std::fs::read_to_string(PID_FILE).ok().and_then(|p| p.trim().parse::<u32>().ok());
    if !mariadb(&["shutdown"]).await {
        bail!("could not shut MariaDB down (mariadb-admin shutdown)");
    }
    for _ in 0..600 {
        if pid.is_none_or(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("MariaDB was still running 60 s after its shutdown")
}

/// Starts this machine's MariaDB unless it answers, and waits until it does.
async fn start_mariadb() -> Result<()> {
    if mariadb(&["ping"]).await {
        return Ok(());
    }
    let started = tokio::process::Command::new("start-stop-daemon")
        // By its pid file: the TLS test server runs the same binary.
        .args(["--start", "--oknodo", "--background", "--pidfile", PID_FILE])
        .args(["--exec", "/usr/sbin/mariadbd", "--", "--user=mysql"])
        .status()
        .await
        .ctx("start-stop-daemon")?;
    if !started.success() {
        bail!("could not start MariaDB ({started})");
    }
    for _ in 0..600 {
        if mariadb(&["ping"]).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("MariaDB did not answer within 60 s of its start")
}
