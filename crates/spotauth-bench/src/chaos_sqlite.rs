//! `--chaos` scenario `sqlite-crash`: the embedded store when the process dies and when the disk
//! fills up.
//!
//! The service runs on SQLite in a small tmpfs. Users log in, rotate their sessions, log out and
//! in again and fetch tokens (which refreshes them: tokens live 10 s), and the process is killed
//! with SIGKILL at a random moment, many times. After each kill, `PRAGMA integrity_check` on the
//! file as the crash left it must say `ok`; after each restart, every session whose login or
//! rotation was answered must still work and every answered logout must still hold (nothing the
//! service acknowledged is lost). Then the disk fills up under the same load: every answer is a
//! problem document or a success, nothing hangs, the process lives on, and once space returns
//! logins work again and the file is still intact.
//!
//! Needs root (it mounts a tmpfs) and the `sqlite3` command-line shell.

use std::ffi::OsStr;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::Method;
use rand::Rng as _;
use spotauth_emulator::Emulator;
use tokio::task::JoinSet;

use crate::Options;
use crate::chaos::command;
use crate::error::{Context, Error, Result, bail};
use crate::http::Conn;
use crate::load::{self, SESSION_COOKIE};
use crate::run::{emulator_config, service_env};
use crate::service::{Service, free_port};

/// The tmpfs the database lives in: small enough to fill in a moment.
const TMPFS_SIZE: &str = "24m";
/// No answer may take longer than this, disk full or not.
const ANSWER_BOUND: Duration = Duration::from_secs(2);

/// What the client was told, per user slot.
#[derive(Debug, Default, Clone)]
struct Slot {
    /// The session cookie of the last answered login or rotation.
    cookie: Option<String>,
    /// The last request did not get its answer (the process died under it): either outcome
    /// is allowed for it, so the slot is left out of the check and logs in afresh.
    unsure: bool,
}

#[derive(Debug, Default)]
struct Book {
    slots: Vec<Slot>,
    /// Cookies whose logout was answered (the most recent ones).
    logged_out: Vec<String>,
    acknowledged: u64,
    wrong: Vec<String>,
}

type Shared = Arc<Mutex<Book>>;

fn book(shared: &Shared) -> std::sync::MutexGuard<'_, Book> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

pub async fn sqlite_crash(opts: &Options) -> Result<String> {
    let out = std::path::absolute(&opts.out).ctx("output path")?;
    let mount = out.join("sqlite-crash-tmpfs");
    std::fs::create_dir_all(&mount).ctx("create the tmpfs mount point")?;
    let _ = command("umount", [&mount]).await;
    let size = format!("size={TMPFS_SIZE}");
    let args =
        [OsStr::new("-t"), OsStr::new("tmpfs"), OsStr::new("-o"), OsStr::new(&size), OsStr::new("spotauth-chaos")];
    if let Err(e) = command("mount", args.into_iter().chain([mount.as_os_str()])).await {
        bail!("sqlite-crash: cannot mount a tmpfs at {} (this scenario needs root): {e}", mount.display());
    }
    let result = crash_and_fill(opts, &out, &mount).await;
    if let Err(e) = command("umount", [&mount]).await {
        eprintln!("warning: {e}");
    }
    result
}

/// `PRAGMA integrity_check` by the `sqlite3` shell, on the file as it is.
async fn integrity(db: &Path) -> Result<String> {
    command("sqlite3", [db.as_os_str(), OsStr::new("PRAGMA integrity_check")]).await
}

async fn crash_and_fill(opts: &Options, out: &Path, mount: &Path) -> Result<String> {
    let kills = if opts.smoke { 3 } else { 20 };
    let users: Vec<String> = (1..=if opts.smoke { 12 } else { 40 }).map(|i| format!("lite{i:04}")).collect();
    let emulator = Emulator::start(emulator_config(&users).access_token_lifetime(Duration::from_secs(10)))
        .await
        .ctx("start the emulator")?;
    let data = mount.join("data");
    let mut env = service_env(&emulator);
    env.extend([
        ("DATA_DIR".into(), data.to_string_lossy().into_owned()),
        ("RUST_LOG".into(), "warn".into()),
        ("ACCESS_TOKEN_MIN_VALIDITY_SECS".into(), "5".into()),
        // A rotation whose answer died with the process leaves the client holding the old
        // token; the longest grace keeps that token good through the restart, whatever the
        // machine's speed.
        ("SESSION_ROTATION_GRACE_SECS".into(), "60".into()),
    ]);
    let run = Run {
        bin: opts.service_bin.clone(),
        env,
        out: out.to_path_buf(),
        addr: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
        db: data.join("spotauth.db"),
        emulator: emulator.addr(),
        users,
        kills,
    };
    let result = run.go(mount).await;
    emulator.stop().await;
    result
}

struct Run {
    bin: PathBuf,
    env: Vec<(String, String)>,
    out: PathBuf,
    addr: SocketAddr,
    db: PathBuf,
    emulator: SocketAddr,
    users: Vec<String>,
    /// Kills before the full-disk phase (whose service's log is number `kills`).
    kills: usize,
}

impl Run {
    async fn start(&self, n: usize) -> Result<Service> {
        let log = self.out.join(format!("service-chaos-sqlite-crash-{n}.log"));
        Service::start_at(&self.bin, &self.env, &log, self.addr).await
    }

    async fn go(&self, mount: &Path) -> Result<String> {
        let kills = self.kills;
        let shared: Shared =
            Arc::new(Mutex::new(Book { slots: vec![Slot::default(); self.users.len()], ..Book::default() }));
        let mut checked = 0;
        for n in 0..kills {
            let service = self.start(n).await?;
            checked += self.check(&shared).await?;
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let workers = self.load(&shared, &stop);
            let alive = Duration::from_millis(rand::thread_rng().gen_range(300..1500));
            tokio::time::sleep(alive).await;
            service.stop().await;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            join(workers).await?;
            let verdict = integrity(&self.db).await?;
            if verdict != "ok" {
                bail!("sqlite-crash: after kill {}: integrity_check says {verdict}", n + 1);
            }
        }
        let service = self.start(kills).await?;
        checked += self.check(&shared).await?;
        let (acknowledged, wrong) = {
            let b = book(&shared);
            (b.acknowledged, b.wrong.clone())
        };
        let kill_line = format!(
            "killed {kills} times during writes: integrity_check ok after every kill, {acknowledged} answered writes, \
             {checked} sessions and logouts checked after restarts, all as answered"
        );
        if !wrong.is_empty() {
            service.stop().await;
            bail!("sqlite-crash: {kill_line}; but: {}", wrong.join("; "));
        }
        let fill = self.full_disk(&shared, mount).await;
        service.stop().await;
        Ok(format!("sqlite-crash: {kill_line}; {}", fill?))
    }

    /// Every answered session works, every answered logout holds.
    async fn check(&self, shared: &Shared) -> Result<usize> {
        let (slots, logged_out) = {
            let b = book(shared);
            (b.slots.clone(), b.logged_out.clone())
        };
        let mut conn = Conn::new(self.addr)?;
        let mut wrong = Vec::new();
        let mut checked = 0;
        for (i, slot) in slots.iter().enumerate() {
            if let (Some(cookie), false) = (&slot.cookie, slot.unsure) {
                let status = conn.send(Method::GET, "/api/users/me", Some(cookie)).await?.status;
                checked += 1;
                if status != 200 {
                    wrong.push(format!("{}: an answered session got {status}", self.users[i]));
                }
            }
        }
        for cookie in &logged_out {
            let status = conn.send(Method::GET, "/api/users/me", Some(cookie)).await?.status;
            checked += 1;
            if status != 401 {
                wrong.push(format!("a logged-out session got {status}"));
            }
        }
        let mut b = book(shared);
        b.wrong.extend(wrong);
        for slot in &mut b.slots {
            if slot.unsure {
                *slot = Slot::default();
            }
        }
        Ok(checked)
    }

    /// Four workers, each on its own users, until `stop` or the first failed connection.
    fn load(&self, shared: &Shared, stop: &Arc<std::sync::atomic::AtomicBool>) -> JoinSet<Result<()>> {
        let mut set = JoinSet::new();
        for w in 0..4 {
            let (shared, stop) = (shared.clone(), stop.clone());
            let (addr, emulator, users) = (self.addr, self.emulator, self.users.clone());
            set.spawn(async move {
                let mut conn = Conn::new(addr)?;
                let mut emu = Conn::new(emulator)?;
                let mut i = w;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let slot = i % users.len();
                    i += 4;
                    if !act(&mut conn, &mut emu, &users[slot], slot, &shared).await {
                        break;
                    }
                }
                Ok::<_, Error>(())
            });
        }
        set
    }

    async fn full_disk(&self, shared: &Shared, mount: &Path) -> Result<String> {
        let filler = mount.join("filler");
        let filled = fill(&filler)?;
        let began = Instant::now();
        let mut conn = Conn::new(self.addr)?;
        let mut emu = Conn::new(self.emulator)?;
        let (mut ok, mut problems, mut slowest, mut not_problem) = (0u64, 0u64, Duration::ZERO, Vec::new());
        let mut n = 0usize;
        let mut codes = std::collections::BTreeSet::new();
        while began.elapsed() < Duration::from_secs(3) {
            let user = &self.users[n % self.users.len()];
            n += 1;
            let t = Instant::now();
            // New logins write the most: a login attempt, a user, tokens and a session.
            let login = load::login(&mut conn, &mut emu, user).await;
            slowest = slowest.max(t.elapsed());
            match login {
                Ok(_) => ok += 1,
                Err(e) => match refusal(&e.0) {
                    Some(code) => {
                        problems += 1;
                        codes.insert(code);
                    }
                    None if answered_wrong(&e.0).is_some() => not_problem.push(e.0),
                    None => bail!("sqlite-crash: no answer with the disk full: {e}"),
                },
            }
        }
        let alive = conn.send(Method::GET, "/healthz", None).await.is_ok_and(|r| r.status == 200);
        let during = integrity(&self.db).await?;
        std::fs::remove_file(&filler).ctx("remove the filler")?;
        let freed = Instant::now();
        let recovered = loop {
            if load::login(&mut conn, &mut emu, &self.users[0]).await.is_ok() {
                break freed.elapsed();
            }
            if freed.elapsed() > Duration::from_secs(10) {
                bail!("sqlite-crash: logins failed still 10 s after the disk had space again");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let after = integrity(&self.db).await?;
        let checked = self.check(shared).await?;
        let wrong = book(shared).wrong.clone();
        let log = std::fs::read_to_string(self.out.join(format!("service-chaos-sqlite-crash-{}.log", self.kills)))
            .unwrap_or_default();
        let named = log.contains("full");
        let line = format!(
            "disk full ({filled} MiB of filler): {ok} logins done, {problems} refused with a problem ({}), slowest {:.0} ms \
             (bound {} ms), still alive: {alive}, the log names the full disk: {named}, integrity_check {during}; \
             logins again {:.2} s after space returned, integrity_check {after}, {checked} sessions and logouts as answered",
            codes.into_iter().collect::<Vec<_>>().join(", "),
            slowest.as_secs_f64() * 1000.0,
            ANSWER_BOUND.as_millis(),
            recovered.as_secs_f64(),
        );
        if !not_problem.is_empty() || !alive || slowest > ANSWER_BOUND || problems == 0 {
            bail!("{line}: {}", not_problem.join("; "));
        }
        if during != "ok" || after != "ok" || !wrong.is_empty() {
            bail!("{line}: {}", wrong.join("; "));
        }
        Ok(line)
    }
}

/// One action of a user; `false` when the service stopped answering (the worker stops).
async fn act(conn: &mut Conn, emu: &mut Conn, user: &str, slot: usize, shared: &Shared) -> bool {
    let current = book(shared).slots.get(slot).and_then(|s| s.cookie.clone());
    let Some(cookie) = current else {
        return match load::login(conn, emu, user).await {
            Ok(cookie) => {
                let mut b = book(shared);
                b.slots[slot] = Slot { cookie: Some(cookie), unsure: false };
                b.acknowledged += 1;
                true
            }
            Err(e) => {
                if let Some(wrong) = answered_wrong(&e.0) {
                    book(shared).wrong.push(format!("{user}: login: {wrong}"));
                }
                false
            }
        };
    };
    let roll = rand::thread_rng().gen_range(0..100);
    let (method, path) = match roll {
        0..50 => (Method::GET, "/api/auth/spotify/token"),
        50..80 => (Method::POST, "/api/auth/spotify/refresh"),
        _ => (Method::POST, "/api/auth/spotify/logout?scope=device"),
    };
    let reply = match conn.send(method, path, Some(&cookie)).await {
        Ok(reply) => reply,
        Err(_) => {
            // No answer: the write may or may not have happened.
            book(shared).slots[slot].unsure = true;
            return false;
        }
    };
    let mut b = book(shared);
    if !(200..300).contains(&reply.status) {
        b.wrong.push(format!("{user}: {path}: HTTP {}", reply.status));
        return true;
    }
    match roll {
        0..50 => {}
        50..80 => {
            if let Some(rotated) = reply.cookie(SESSION_COOKIE) {
                b.slots[slot].cookie = Some(rotated);
                b.acknowledged += 1;
            }
        }
        _ => {
            b.slots[slot] = Slot::default();
            b.logged_out.push(cookie);
            let excess = b.logged_out.len().saturating_sub(50);
            b.logged_out.drain(..excess);
            b.acknowledged += 1;
        }
    }
    true
}

/// `Some(what)` when a failed login was a wrong answer of a live service, `None` when the
/// service had stopped answering.
fn answered_wrong(message: &str) -> Option<String> {
    (message.contains(": HTTP ") || message.contains("failed: redirected")).then(|| message.to_owned())
}

/// How a login refused with the disk full was refused, when clearly: `503 store_unavailable`
/// for a problem document (status and code), or `error=server_error` for the browser sent
/// back to the frontend. `None` for anything else.
fn refusal(message: &str) -> Option<String> {
    let plain = |rest: &str| rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    if let Some((_, rest)) = message.split_once("\"code\":\"") {
        let status = message.split_once(": HTTP ").map(|(_, s)| plain(s)).unwrap_or_default();
        return Some(format!("{status} {}", plain(rest)));
    }
    message.split_once("error=").map(|(_, rest)| format!("error={}", plain(rest)))
}

async fn join(mut workers: JoinSet<Result<()>>) -> Result<()> {
    while let Some(done) = workers.join_next().await {
        done.ctx("load worker")??;
    }
    Ok(())
}

/// Fills the file system of `path` (1 MiB at a time until it refuses); MiB written.
fn fill(path: &Path) -> Result<u64> {
    let mut file = std::fs::File::create(path).ctx("create the filler")?;
    let chunk = vec![0x5a_u8; 1 << 20];
    let mut written = 0;
    while file.write_all(&chunk).is_ok() {
        written += 1;
    }
    // Whatever fits of a last partial MiB.
    for _ in 0..256 {
        if file.write_all(&chunk[..4096]).is_err() {
            break;
        }
    }
    let _ = file.sync_all();
    Ok(written)
}
