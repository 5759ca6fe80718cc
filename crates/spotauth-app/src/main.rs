//! `spotauth [--config PATH] [COMMAND]`: runs the service, or one operator command (`spotauth --help`).

use std::path::PathBuf;
use std::process::ExitCode;

use spotauth_app::settings::{AppEnv, Database};
use spotauth_app::{Application, Settings};

fn usage() -> String {
    format!(
        "usage: spotauth [--config PATH] [COMMAND]\n\
         \n  spotauth [--config PATH]           runs the service (settings: see README; environment overrides \
         the file;\n                                     with no settings at all: development mode on SQLite under ./data)\n  \
         spotauth openapi                   prints the OpenAPI document served at /openapi.json\n{}",
        spotauth_app::ops::USAGE
    )
}

/// `LOG_FORMAT`: `text` (the default) or `json` (one object per line: timestamp, level,
/// fields, for log shippers).
fn log_format() -> Result<bool, String> {
    match std::env::var("LOG_FORMAT").as_deref().map(str::trim) {
        Err(_) | Ok("" | "text") => Ok(false),
        Ok("json") => Ok(true),
        Ok(_) => Err("LOG_FORMAT must be `json` or `text`".to_owned()),
    }
}

/// Logs: to stdout for the server; to stderr, warnings only by default, for a command (its
/// answer is stdout).
fn init_logs(json: bool, command: bool) {
    let default = if command { "warn" } else { "info,actix_server=warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let writer = if command {
        std::io::IsTerminal::is_terminal(&std::io::stderr())
    } else {
        std::io::IsTerminal::is_terminal(&std::io::stdout())
    };
    // Colour only for a person at a terminal: escape codes in a file or a log shipper are noise.
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(writer);
    match (json, command) {
        (true, true) => fmt.json().with_writer(std::io::stderr).init(),
        (true, false) => fmt.json().init(),
        (false, true) => fmt.with_writer(std::io::stderr).init(),
        (false, false) => fmt.init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let json = match log_format() {
        Ok(json) => json,
        Err(e) => return fail(&e),
    };
    let mut args = std::env::args().skip(1);
    let mut config: Option<PathBuf> = None;
    let mut words: Vec<String> = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => match args.next() {
                Some(p) => config = Some(p.into()),
                None => return usage_error("--config needs a PATH"),
            },
            "--help" | "-h" => {
                println!("{}", usage());
                return ExitCode::SUCCESS;
            }
            _ => words.push(arg),
        }
    }
    if words == ["openapi"] {
        // The document the service serves at /openapi.json, for tools and CI.
        println!("{}", spotauth_app::routes::openapi_json());
        return ExitCode::SUCCESS;
    }
    let command = match words.is_empty() {
        true => None,
        false => match spotauth_app::ops::Command::parse(&words) {
            Ok(command) => Some(command),
            Err(e) => return usage_error(&e.to_string()),
        },
    };
    init_logs(json, command.is_some());
    let settings = match Settings::load(config.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    if let Some(command) = command {
        return match spotauth_app::ops::run(command, &settings).await {
            Ok(answer) => {
                print!("{answer}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string()),
        };
    }
    let bind = settings.bind_addr;
    let env = match settings.env {
        AppEnv::Development => "development",
        AppEnv::Production => "production",
    };
    let database = match &settings.database {
        Database::Mysql(_) => "MySQL".to_owned(),
        Database::Sqlite(path) => format!("SQLite {}", path.display()),
    };
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => return fail(&e.to_string()),
    };
    tracing::info!("spotauth listening on http://{}:{} ({env}, {database})", bind.ip(), app.port());
    match app.run_until_stopped().await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("server error: {e}")),
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}

/// A command line that does not parse: exit code 2, as command-line tools do.
fn usage_error(msg: &str) -> ExitCode {
    eprintln!("error: {msg} (spotauth --help)");
    ExitCode::from(2)
}
