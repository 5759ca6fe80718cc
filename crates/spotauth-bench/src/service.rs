//! The service under test as its own process, its database, and what /proc says about it.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use hyper::Method;
use mysql_async::prelude::Queryable;
use tokio::process::{Child, Command};

use crate::error::{Context, Error, Result, bail};
use crate::http::Conn;

/// A running `spotauth` process.
#[derive(Debug)]
pub struct Service {
    child: Child,
    pid: u32,
    /// Where it listens.
    pub addr: SocketAddr,
    log: PathBuf,
}

/// A free local port (bound, then released).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").ctx("find a free port")?;
    Ok(l.local_addr().ctx("find a free port")?.port())
}

impl Service {
    /// Starts `bin` with exactly `env` (plus `PATH`), output to `log`, and waits for `/healthz`.
    pub async fn start(bin: &Path, env: &[(String, String)], log: &Path) -> Result<Service> {
        Service::start_at(bin, env, log, SocketAddr::from(([127, 0, 0, 1], free_port()?))).await
    }

    /// [`Service::start`] on a given address (a restarted instance keeps its address).
    pub async fn start_at(bin: &Path, env: &[(String, String)], log: &Path, addr: SocketAddr) -> Result<Service> {
        let out = std::fs::File::create(log).ctx(&format!("create {}", log.display()))?;
        let err = out.try_clone().ctx("log file")?;
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("BIND_ADDR", addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        let child = cmd.spawn().ctx(&format!("start {}", bin.display()))?;
        let pid = child.id().ctx("the service exited at once")?;
        let mut service = Service { child, pid, addr, log: log.to_path_buf() };
        service.wait_ready(Duration::from_secs(60)).await?;
        Ok(service)
    }

    async fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let until = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().ctx("service status")? {
                bail!("the service exited ({status}) before it was ready: {}", self.log_tail());
            }
            let mut conn = Conn::new(self.addr)?;
            if let Ok(reply) = conn.send(Method::GET, "/healthz", None).await
                && reply.status == 200
            {
                return Ok(());
            }
            if Instant::now() > until {
                bail!("the service did not answer /healthz within {limit:?}: {}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines of the service's output.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    /// Peak resident set size so far (`VmHWM`), KiB.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        proc_status_kib(self.pid, "VmHWM:")
    }

    /// Resident set size now (`VmRSS`), KiB.
    pub fn rss_kib(&self) -> Result<u64> {
        proc_status_kib(self.pid, "VmRSS:")
    }

    /// File descriptors open now.
    pub fn open_fds(&self) -> Result<usize> {
        Ok(std::fs::read_dir(format!("/proc/{}/fd", self.pid)).ctx("read /proc/PID/fd")?.count())
    }

    /// CPU time used so far (user + system).
    pub fn cpu_time(&self) -> Result<Duration> {
        cpu_time_of(&format!("/proc/{}/stat", self.pid))
    }

    /// Stops the process (SIGKILL: nothing to flush, the database is thrown away).
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

fn proc_status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ctx("read /proc/PID/status")?;
    let line = status.lines().find(|l| l.starts_with(field)).ctx(&format!("{field} not in /proc/PID/status"))?;
    line.strip_prefix(field).unwrap_or(line).trim().trim_end_matches("kB").trim().parse().ctx(field)
}

/// User + system CPU time of a process (`/proc/PID/stat` or `/proc/self/stat`), assuming
/// `USER_HZ` = 100 (Linux on every common architecture).
pub fn cpu_time_of(stat_path: &str) -> Result<Duration> {
    let stat = std::fs::read_to_string(stat_path).ctx(&format!("read {stat_path}"))?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')').ctx("malformed stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> { fields.get(i).ctx("short stat")?.parse::<u64>().ctx("stat field") };
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_millis(total * 10))
}

/// A MariaDB/MySQL database created for one pass and dropped after it.
#[derive(Debug)]
pub struct BenchDb {
    admin_url: String,
    /// The database's name.
    pub name: String,
    /// `DATABASE_URL` for the service.
    pub url: String,
    /// The database server's process when it runs on this machine (`@@pid_file` names a live
    /// process here), so its CPU use can be measured next to the service's.
    pub server_pid: Option<u32>,
}

impl BenchDb {
    /// Creates `spotauth_bench_<time>` on the server of `base_url`.
    pub async fn create(base_url: &str) -> Result<BenchDb> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!("spotauth_bench_{nanos:x}");
        let mut url = url::Url::parse(base_url).ctx("--database-url")?;
        url.set_path("");
        let admin_url = url.to_string();
        admin(&admin_url, &format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4")).await?;
        let server_pid = local_server_pid(&admin_url).await;
        url.set_path(&name);
        Ok(BenchDb { admin_url, name, url: url.to_string(), server_pid })
    }

    /// Drops the database.
    pub async fn drop_db(self) -> Result<()> {
        admin(&self.admin_url, &format!("DROP DATABASE IF EXISTS `{}`", self.name)).await
    }
}

/// The database server's statement counter (MariaDB's global `Questions`: every statement any
/// client sent; nothing else should use the server during a bench).
#[derive(Debug)]
pub struct DbCounter {
    pool: mysql_async::Pool,
    name: String,
}

impl DbCounter {
    /// A connection to the server of `db`.
    pub async fn new(db: &BenchDb) -> Result<DbCounter> {
        let opts = mysql_async::Opts::from_url(&db.admin_url)
            .map_err(|_| Error("--database-url is not a mysql:// URL".into()))?;
        let counter = DbCounter { pool: mysql_async::Pool::new(opts), name: db.name.clone() };
        counter.statements().await?;
        Ok(counter)
    }

    /// Statements received so far (this read counts as one).
    pub async fn statements(&self) -> Result<u64> {
        let mut conn = self.pool.get_conn().await.ctx("connect to MariaDB (--database-url)")?;
        let row: Option<(String, String)> =
            conn.query_first("SHOW GLOBAL STATUS LIKE 'Questions'").await.ctx("SHOW GLOBAL STATUS")?;
        row.ctx("no Questions status")?.1.parse().ctx("Questions")
    }

    /// Connections to the bench database now (the service's pool, not this counter's).
    pub async fn connections(&self) -> Result<u64> {
        let mut conn = self.pool.get_conn().await.ctx("connect to MariaDB (--database-url)")?;
        let n: Option<u64> = conn
            .exec_first("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ?", (self.name.as_str(),))
            .await
            .ctx("PROCESSLIST")?;
        Ok(n.unwrap_or(0))
    }

    /// Closes the connection.
    pub async fn close(self) {
        let _ = self.pool.disconnect().await;
    }
}

/// The pid in the server's `@@pid_file` when that file is readable here and the process is
/// alive; `None` for a remote server (its CPU then goes unmeasured).
async fn local_server_pid(url: &str) -> Option<u32> {
    let opts = mysql_async::Opts::from_url(url).ok()?;
    let pool = mysql_async::Pool::new(opts);
    let pid_file: Option<String> =
        async { pool.get_conn().await.ok()?.query_first("SELECT @@pid_file").await.ok()? }.await;
    let _ = pool.disconnect().await;
    let pid: u32 = std::fs::read_to_string(pid_file?).ok()?.trim().parse().ok()?;
    std::path::Path::new(&format!("/proc/{pid}/stat")).exists().then_some(pid)
}

async fn admin(url: &str, sql: &str) -> Result<()> {
    let opts = mysql_async::Opts::from_url(url).map_err(|_| Error("--database-url is not a mysql:// URL".into()))?;
    let pool = mysql_async::Pool::new(opts);
    let result = async {
        let mut conn = pool.get_conn().await.ctx("connect to MariaDB (--database-url)")?;
        conn.query_drop(sql).await.ctx(sql)
    }
    .await;
    let _ = pool.disconnect().await;
    result
}
