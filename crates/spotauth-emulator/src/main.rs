//! `spotauth-emulator`: runs the Spotify emulator on a local port for demos and manual tests.
//!
//! ```text
//! spotauth-emulator [--port 8888] [--host 127.0.0.1] [--client-id X] [--client-secret Y | --public]
//!                   [--redirect-uri URI]... [--dev-mode] [--refresh-mode rotate|keep|single-use]
//! ```
//! Every option can also come from an environment variable: `EMULATOR_PORT`, `EMULATOR_HOST`,
//! `EMULATOR_CLIENT_ID`, `EMULATOR_CLIENT_SECRET`, `EMULATOR_REDIRECT_URI` (comma separated),
//! `EMULATOR_DEV_MODE` (`1`/`true`), `EMULATOR_REFRESH_MODE`. Flags win over variables.
//! Seeds the demo users `alice` (premium), `bob` (premium) and `carol` (free); in Development
//! Mode all three are allow-listed.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use spotauth_emulator::{AppMode, Emulator, EmulatorConfig, RefreshMode, TestUser};

const USAGE: &str = "usage: spotauth-emulator [--port N] [--host IP] [--client-id ID] \
[--client-secret SECRET | --public] [--redirect-uri URI]... [--dev-mode] \
[--refresh-mode rotate|keep|single-use]";

#[derive(Debug)]
struct Args {
    addr: SocketAddr,
    config: EmulatorConfig,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut port: u16 = 8888;
    let mut host: IpAddr = IpAddr::from([127, 0, 0, 1]);
    let mut config = EmulatorConfig::default();
    let mut redirect_uris: Vec<String> = Vec::new();
    let mut dev_mode = false;

    if let Some(p) = env("EMULATOR_PORT") {
        port = p.parse().map_err(|_| format!("invalid EMULATOR_PORT {p:?}"))?;
    }
    if let Some(h) = env("EMULATOR_HOST") {
        host = h.parse().map_err(|_| format!("invalid EMULATOR_HOST {h:?}"))?;
    }
    if let Some(id) = env("EMULATOR_CLIENT_ID") {
        config.client_id = id;
    }
    if let Some(secret) = env("EMULATOR_CLIENT_SECRET") {
        config.client_secret = Some(secret);
    }
    if let Some(uris) = env("EMULATOR_REDIRECT_URI") {
        redirect_uris.extend(uris.split(',').map(|s| s.trim().to_owned()));
    }
    if let Some(d) = env("EMULATOR_DEV_MODE") {
        dev_mode = matches!(d.as_str(), "1" | "true" | "yes");
    }
    if let Some(m) = env("EMULATOR_REFRESH_MODE") {
        config.refresh_mode = m.parse::<RefreshMode>().map_err(|e| e.to_string())?;
    }

    let mut from_flags: Vec<String> = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => {
                let v = value("--port")?;
                port = v.parse().map_err(|_| format!("invalid --port {v:?}"))?;
            }
            "--host" => {
                let v = value("--host")?;
                host = v.parse().map_err(|_| format!("invalid --host {v:?}"))?;
            }
            "--client-id" => config.client_id = value("--client-id")?,
            "--client-secret" => config.client_secret = Some(value("--client-secret")?),
            "--public" => config.client_secret = None,
            "--redirect-uri" => from_flags.push(value("--redirect-uri")?),
            "--dev-mode" => dev_mode = true,
            "--refresh-mode" => {
                config.refresh_mode = value("--refresh-mode")?.parse::<RefreshMode>().map_err(|e| e.to_string())?;
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !from_flags.is_empty() {
        redirect_uris = from_flags;
    }
    if !redirect_uris.is_empty() {
        config.redirect_uris = redirect_uris;
    }
    let users = [
        TestUser::premium("alice").with_display_name("Alice"),
        TestUser::premium("bob").with_display_name("Bob"),
        TestUser::free("carol").with_display_name("Carol"),
    ];
    if dev_mode {
        config.app_mode = AppMode::DevelopmentMode { allow_list: users.iter().map(|u| u.id.clone()).collect() };
    }
    config.users.extend(users);
    config.validate().map_err(|e| e.to_string())?;
    Ok(Args { addr: SocketAddr::new(host, port), config })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("spotauth-emulator: {msg}");
            return ExitCode::FAILURE;
        }
    };
    let mode = match &args.config.app_mode {
        AppMode::ExtendedQuota => "extended-quota",
        AppMode::DevelopmentMode { .. } => "dev-mode",
    };
    let handle = match Emulator::start_on(args.config, args.addr).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("spotauth-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("spotauth-emulator listening on {} ({mode}; users alice, bob: premium, carol: free)", handle.base_url());
    shutdown_signal().await;
    handle.stop().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn parses_flags() {
        let a = args(&[
            "--port",
            "9999",
            "--client-id",
            "X",
            "--client-secret",
            "Y",
            "--redirect-uri",
            "http://127.0.0.1:8080/cb",
            "--dev-mode",
            "--refresh-mode",
            "single-use",
        ])
        .unwrap();
        assert_eq!(a.addr.port(), 9999);
        assert_eq!(a.config.client_id, "X");
        assert_eq!(a.config.refresh_mode, RefreshMode::SingleUse);
        assert!(matches!(a.config.app_mode, AppMode::DevelopmentMode { .. }));
        assert_eq!(a.config.users.len(), 3);
    }

    #[test]
    fn rejects_bad_args() {
        assert!(args(&["--port", "x"]).is_err());
        assert!(args(&["--bogus"]).is_err());
        assert!(args(&["--refresh-mode", "sometimes"]).is_err());
        assert!(args(&["--redirect-uri", "http://localhost:8080/cb"]).is_err());
        assert!(args(&["--port"]).is_err());
    }
}
