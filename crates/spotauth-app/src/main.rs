//! `spotauth [--config PATH]`: runs the service.

use std::path::PathBuf;
use std::process::ExitCode;

use spotauth_app::settings::{AppEnv, Database};
use spotauth_app::{Application, Settings};

fn usage() -> &'static str {
    "usage: spotauth [--config PATH]   runs the service (settings: see README; environment overrides the \
     file; with no settings at all it runs in development mode on SQLite under ./data)\n       \
     spotauth openapi            prints the OpenAPI document it serves at /openapi.json"
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

#[tokio::main]
async fn main() -> ExitCode {
    let json = match log_format() {
        Ok(json) => json,
        Err(e) => return fail(&e),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,actix_server=warn"));
    // Colour only for a person at a terminal: escape codes in a file or a log shipper are noise.
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    if json {
        fmt.json().init();
    } else {
        fmt.init();
    }
    let mut args = std::env::args().skip(1);
    let mut config: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => match args.next() {
                Some(p) => config = Some(p.into()),
                None => return fail("--config needs a PATH"),
            },
            "openapi" => {
                // The document the service serves at /openapi.json, for tools and CI.
                println!("{}", spotauth_app::routes::openapi_json());
                return ExitCode::SUCCESS;
            }
            "--help" | "-h" => {
                println!("{}", usage());
                return ExitCode::SUCCESS;
            }
            other => return fail(&format!("unknown argument `{other}`; {}", usage())),
        }
    }
    let settings = match Settings::load(config.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
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
