//! `--soak MINUTES`: the service under a mixed, steady load for a long time (logins, token
//! requests, refreshes and rotations, logouts, the active list), on MariaDB, with access tokens
//! that expire every two minutes so upstream refreshes never stop. Every sample interval it
//! prints the service's RSS, open file descriptors, the database's connections and the
//! window's requests and errors. Passes when there was no error and, for runs of three minutes
//! or more, RSS grew at most 10 % between minute 2 and the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::Method;
use rand::Rng;
use spotauth_emulator::Emulator;
use tokio::sync::Mutex;
use tokio::task::JoinSet;

use crate::Options;
use crate::error::{Context, Result, bail};
use crate::http::Conn;
use crate::load::{self, SESSION_COOKIE};
use crate::run::{emulator_config, service_env};
use crate::service::{BenchDb, DbCounter, Service};

/// One sample of the service's resources.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    fds: usize,
    db_connections: u64,
    requests: u64,
    errors: u64,
}

#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    errors: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Tally {
    fn record(&self, outcome: Result<()>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = outcome {
            self.errors.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut first) = self.first_error.lock() {
                first.get_or_insert(e.0);
            }
        }
    }
}

/// Runs the soak for `minutes` (`--smoke`: 20 seconds, sampled every 2).
pub async fn run(opts: &Options, minutes: u64) -> Result<()> {
    let (length, every) = match opts.smoke {
        true => (Duration::from_secs(20), Duration::from_secs(2)),
        false => (Duration::from_secs(minutes.max(1) * 60), Duration::from_secs(30)),
    };
    let users: Vec<String> = (1..=opts.users.min(200)).map(|i| format!("soak{i:04}")).collect();
    let emulator = Emulator::start(emulator_config(&users).access_token_lifetime(Duration::from_secs(120)))
        .await
        .ctx("start the emulator")?;
    let db = BenchDb::create(&opts.database_url).await?;
    let mut env = service_env(&emulator);
    env.extend([
        ("DATABASE_URL".into(), db.url.clone()),
        ("RUST_LOG".into(), "warn".into()),
        // Refresh when less than a minute is left: with two-minute tokens, about once a minute.
        ("ACCESS_TOKEN_MIN_VALIDITY_SECS".into(), "60".into()),
        ("PROACTIVE_REFRESH_INTERVAL_SECS".into(), "15".into()),
    ]);
    std::fs::create_dir_all(&opts.out).ctx("create the output directory")?;
    let log = std::path::absolute(opts.out.join("service-soak.log")).ctx("log path")?;
    let service = Service::start(&opts.service_bin, &env, &log).await?;
    let counter = DbCounter::new(&db).await?;
    let result = soak(opts, &service, &emulator, &counter, &users, length, every).await;
    counter.close().await;
    service.stop().await;
    emulator.stop().await;
    if let Err(e) = db.drop_db().await {
        eprintln!("warning: {e}");
    }
    result
}

async fn soak(
    opts: &Options,
    service: &Service,
    emulator: &spotauth_emulator::EmulatorHandle,
    counter: &DbCounter,
    users: &[String],
    length: Duration,
    every: Duration,
) -> Result<()> {
    let cookies = load::seed(service.addr, emulator.addr(), users, 8).await?;
    let sessions: Arc<Vec<Mutex<String>>> = Arc::new(cookies.into_iter().map(Mutex::new).collect());
    let users = Arc::new(users.to_vec());
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let deadline = started + length;
    let mut workers = JoinSet::new();
    for _ in 0..opts.connections.min(16) {
        let (sessions, users, tally) = (Arc::clone(&sessions), Arc::clone(&users), Arc::clone(&tally));
        let (svc, emu) = (service.addr, emulator.addr());
        workers.spawn(async move {
            let (mut conn, mut emu) = (Conn::new(svc)?, Conn::new(emu)?);
            while Instant::now() < deadline {
                let i = rand::thread_rng().gen_range(0..users.len());
                let mut cookie = sessions[i].lock().await;
                let outcome = act(&mut conn, &mut emu, &users[i], &mut cookie).await;
                tally.record(outcome);
            }
            Ok::<_, crate::error::Error>(())
        });
    }
    eprintln!("soak: {} users, {} connections, {:?}, a sample every {:?}", users.len(), workers.len(), length, every);
    println!("| minute | RSS (MiB) | open fds | DB connections | requests | errors |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut samples: Vec<Sample> = Vec::new();
    let (mut last_requests, mut last_errors) = (0, 0);
    while Instant::now() < deadline {
        tokio::time::sleep(every.min(deadline.saturating_duration_since(Instant::now()))).await;
        let (requests, errors) = (tally.requests.load(Ordering::Relaxed), tally.errors.load(Ordering::Relaxed));
        let s = Sample {
            at: started.elapsed(),
            rss_kib: service.rss_kib()?,
            fds: service.open_fds()?,
            db_connections: counter.connections().await?,
            requests: requests - last_requests,
            errors: errors - last_errors,
        };
        (last_requests, last_errors) = (requests, errors);
        println!(
            "| {:.1} | {:.1} | {} | {} | {} | {} |",
            s.at.as_secs_f64() / 60.0,
            s.rss_kib as f64 / 1024.0,
            s.fds,
            s.db_connections,
            s.requests,
            s.errors
        );
        samples.push(s);
    }
    while let Some(done) = workers.join_next().await {
        done.ctx("soak worker")??;
    }
    verdict(&samples, &tally, length)
}

/// One user action, chosen at random: mostly what a page does all evening (its user, a token
/// for the SDK, the active list), sometimes a session rotation, now and then a logout and a new
/// login.
async fn act(conn: &mut Conn, emu: &mut Conn, user: &str, cookie: &mut String) -> Result<()> {
    let roll = rand::thread_rng().gen_range(0..100);
    let (method, path) = match roll {
        0..45 => (Method::GET, "/api/users/me"),
        45..75 => (Method::GET, "/api/auth/spotify/token"),
        75..88 => (Method::GET, "/api/users/active?limit=20"),
        88..98 => (Method::POST, "/api/auth/spotify/refresh"),
        _ => {
            let reply = conn.send(Method::POST, "/api/auth/spotify/logout?scope=device", Some(cookie)).await?;
            load::ok_2xx(reply.status, "POST /logout")?;
            *cookie = load::login(conn, emu, user).await?;
            return Ok(());
        }
    };
    let reply = conn.send(method, path, Some(cookie)).await?;
    if let Some(rotated) = reply.cookie(SESSION_COOKIE) {
        *cookie = rotated;
    }
    load::ok_2xx(reply.status, path)
}

fn verdict(samples: &[Sample], tally: &Tally, length: Duration) -> Result<()> {
    let requests = tally.requests.load(Ordering::Relaxed);
    let errors = tally.errors.load(Ordering::Relaxed);
    let first = tally.first_error.lock().ok().and_then(|f| f.clone());
    println!("\nrequests {requests}, errors {errors}{}", first.map(|e| format!(" (first: {e})")).unwrap_or_default());
    if errors > 0 {
        bail!("the soak saw {errors} errors");
    }
    let (Some(last), Some(peak_fds)) = (samples.last(), samples.iter().map(|s| s.fds).max()) else {
        bail!("no sample was taken");
    };
    println!(
        "open fds: max {peak_fds}; DB connections: max {}",
        samples.iter().map(|s| s.db_connections).max().unwrap_or(0)
    );
    if length >= Duration::from_secs(180) {
        let warm = samples.iter().find(|s| s.at >= Duration::from_secs(120)).unwrap_or(last);
        let growth = 100.0 * (last.rss_kib as f64 - warm.rss_kib as f64) / warm.rss_kib.max(1) as f64;
        println!(
            "RSS: {:.1} MiB at minute {:.1}, {:.1} MiB at the end: {growth:+.1} % (limit +10 %)",
            warm.rss_kib as f64 / 1024.0,
            warm.at.as_secs_f64() / 60.0,
            last.rss_kib as f64 / 1024.0
        );
        if growth > 10.0 {
            bail!("RSS grew {growth:.1} % after warm-up");
        }
    }
    Ok(())
}
