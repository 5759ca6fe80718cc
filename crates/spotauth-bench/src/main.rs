//! `spotauth-bench`: benchmarks the `spotauth` binary as its own process.
//!
//! For each store (MariaDB, then SQLite when the binary supports it) it starts the Spotify
//! emulator (in this process, on its own thread), creates a fresh database, starts the service,
//! logs users in through the real flow, then drives keep-alive load from this process and
//! measures every case against `/healthz` measured by the same run. A refresh storm runs last, on
//! a restarted service that considers every stored Spotify token near expiry, with the upstream
//! refresh calls counted by the emulator. Results go to `results.json`; with `--docs` the table
//! section of `docs/benchmarks.md` is regenerated.
//!
//! ```text
//! spotauth-bench --service-bin PATH [--smoke] [--out DIR] [--docs FILE] [--svg FILE]
//!                [--stores mysql,sqlite] [--database-url URL] [--duration SECS]
//!                [--connections N] [--users N] [--storm-users N] [--storm-per-user M]
//! ```
//! Usually run through `cargo xtask bench [--smoke]`. Two more modes: `--soak MINUTES` (a long
//! mixed load, resources sampled: `soak.rs`) and `--chaos` (faults under load: `chaos.rs`),
//! through `cargo xtask soak` and `cargo xtask chaos`.

mod chaos;
mod chaos_spotify;
mod chaos_sqlite;
mod error;
mod http;
mod load;
mod report;
mod room;
mod run;
mod service;
mod soak;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::error::{Context, Error, Result, bail};

const USAGE: &str = "usage: spotauth-bench --service-bin PATH [--smoke] [--out DIR] [--docs FILE] [--svg FILE] \
[--stores mysql,sqlite] [--database-url URL] [--duration SECS] [--connections N] [--users N] \
[--storm-users N] [--storm-per-user M] [--soak MINUTES | --chaos [--only SCENARIO]]";

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The benchmark passes.
    Bench,
    /// A soak of this many minutes.
    Soak(u64),
    /// The fault scenarios.
    Chaos,
}

/// Which store a pass runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// MariaDB/MySQL through `DATABASE_URL`.
    Mysql,
    /// SQLite in `DATA_DIR` (no `DATABASE_URL`).
    Sqlite,
}

impl Store {
    /// Its name in the results.
    pub fn name(self) -> &'static str {
        match self {
            Store::Mysql => "mysql",
            Store::Sqlite => "sqlite",
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Benchmark, soak or chaos.
    pub mode: Mode,
    /// A few-second pass that only checks that everything works.
    pub smoke: bool,
    /// The `spotauth` binary.
    pub service_bin: PathBuf,
    /// Where `results.json` and the service logs go.
    pub out: PathBuf,
    /// The Markdown file whose table section is regenerated.
    pub docs: Option<PathBuf>,
    /// Where the latency-vs-concurrency SVG goes.
    pub svg: Option<PathBuf>,
    /// Stores to run, in order.
    pub stores: Vec<Store>,
    /// Server for the bench databases (`mysql://root@127.0.0.1:3306`).
    pub database_url: String,
    /// Measured time per case.
    pub duration: Duration,
    /// Unmeasured time before each case.
    pub warmup: Duration,
    /// Connections per case.
    pub connections: usize,
    /// Users logged in for the request cases.
    pub users: usize,
    /// Users in the refresh storm.
    pub storm_users: usize,
    /// Simultaneous `/token` requests per storm user.
    pub storm_per_user: usize,
    /// Connection counts of the `/token` latency sweep (empty: no sweep).
    pub sweep: Vec<usize>,
    /// `--only`: the one chaos scenario to run.
    pub only: Option<String>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options> {
    let mut it = args.into_iter();
    let mut smoke = false;
    let mut service_bin = None;
    let mut out = PathBuf::from("target/bench");
    let mut docs = None;
    let mut svg = None;
    let mut stores = vec![Store::Mysql, Store::Sqlite];
    let mut database_url = std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let mut duration = None;
    let mut connections = None;
    let mut users = None;
    let mut storm_users = None;
    let mut storm_per_user = None;
    let mut mode = Mode::Bench;
    let mut only = None;
    let number =
        |v: String, name: &str| v.parse::<usize>().map_err(|_| Error(format!("{name} needs a number, got {v:?}")));
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ctx(&format!("{name} needs a value"));
        match arg.as_str() {
            "--smoke" => smoke = true,
            "--service-bin" => service_bin = Some(PathBuf::from(value("--service-bin")?)),
            "--out" => out = PathBuf::from(value("--out")?),
            "--docs" => docs = Some(PathBuf::from(value("--docs")?)),
            "--svg" => svg = Some(PathBuf::from(value("--svg")?)),
            "--database-url" => database_url = value("--database-url")?,
            "--stores" => {
                stores = value("--stores")?
                    .split(',')
                    .map(|s| match s.trim() {
                        "mysql" => Ok(Store::Mysql),
                        "sqlite" => Ok(Store::Sqlite),
                        other => Err(Error(format!("unknown store {other:?} (mysql, sqlite)"))),
                    })
                    .collect::<Result<_>>()?;
            }
            "--duration" => duration = Some(number(value("--duration")?, "--duration")?),
            "--connections" => connections = Some(number(value("--connections")?, "--connections")?),
            "--users" => users = Some(number(value("--users")?, "--users")?),
            "--storm-users" => storm_users = Some(number(value("--storm-users")?, "--storm-users")?),
            "--storm-per-user" => storm_per_user = Some(number(value("--storm-per-user")?, "--storm-per-user")?),
            "--soak" => mode = Mode::Soak(number(value("--soak")?, "--soak")? as u64),
            "--chaos" => mode = Mode::Chaos,
            "--only" => {
                let name = value("--only")?;
                if !chaos::SCENARIOS.contains(&name.as_str()) {
                    bail!("unknown scenario {name:?} ({})", chaos::SCENARIOS.join(", "));
                }
                only = Some(name);
            }
            "-h" | "--help" => bail!("{USAGE}"),
            other => bail!("unknown argument {other:?}; {USAGE}"),
        }
    }
    let service_bin = match service_bin {
        Some(p) => p,
        None => std::env::current_exe().ctx("current_exe")?.with_file_name("spotauth"),
    };
    let connections = connections.unwrap_or(if smoke { 8 } else { 32 }).max(1);
    // Issue #14 measures memory with 10,000 sessions.
    let users = users.unwrap_or(if smoke { 16 } else { 10_000 }).max(connections);
    let duration = Duration::from_secs(duration.unwrap_or(if smoke { 1 } else { 5 }) as u64);
    Ok(Options {
        mode,
        smoke,
        service_bin,
        out,
        docs,
        svg,
        stores,
        database_url,
        warmup: if smoke { Duration::from_millis(200) } else { Duration::from_secs(1) },
        duration,
        connections,
        users,
        storm_users: storm_users.unwrap_or(if smoke { 10 } else { 100 }).max(1),
        storm_per_user: storm_per_user.unwrap_or(4).max(1),
        sweep: if smoke { Vec::new() } else { vec![1, 8, 32, 64] },
        only,
    })
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("spotauth-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    // One thread drives the load (and the orchestration); the emulator has its own thread.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("spotauth-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let done = match opts.mode {
        Mode::Bench => runtime.block_on(run::run(&opts)),
        Mode::Soak(minutes) => runtime.block_on(soak::run(&opts, minutes)),
        Mode::Chaos => runtime.block_on(chaos::run(&opts)),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spotauth-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn args(list: &[&str]) -> Result<Options> {
        parse_args(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn smoke_is_short_and_full_is_not() {
        let smoke = args(&["--smoke", "--service-bin", "/x/spotauth"]).unwrap();
        assert!(smoke.smoke && smoke.duration <= Duration::from_secs(1) && smoke.sweep.is_empty());
        let full = args(&["--service-bin", "/x/spotauth", "--stores", "mysql"]).unwrap();
        assert_eq!(full.connections, 32);
        assert_eq!(full.stores, vec![Store::Mysql]);
        assert!(full.users >= full.connections);
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(args(&["--stores", "postgres"]).is_err());
        assert!(args(&["--duration", "x"]).is_err());
        assert!(args(&["--bogus"]).is_err());
        assert!(args(&["--chaos", "--only", "meteor"]).is_err());
        assert_eq!(args(&["--chaos", "--only", "refresh-kill"]).unwrap().only.as_deref(), Some("refresh-kill"));
    }
}
