//! `spotauth-migrate [up|down|status]`: applies (or reverts) the embedded MySQL migrations to
//! `DATABASE_URL`, printing each one as it runs. Used by `cargo xtask migrate`.

use std::process::ExitCode;

use spotauth_mysql::{DatabaseUrl, MysqlStore, PoolSettings};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let cmd = std::env::args().nth(1).unwrap_or_else(|| "up".into());
    match run(&cmd).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cmd: &str) -> Result<(), String> {
    let raw = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set".to_string())?;
    let url = DatabaseUrl::parse(&raw).map_err(|e| e.to_string())?;
    let store = MysqlStore::connect(url, PoolSettings { max_size: 1, ..PoolSettings::default() })
        .await
        .map_err(|e| e.to_string())?;
    match cmd {
        "up" => {
            let done = store.run_migrations(|name| println!("applying {name}")).await.map_err(|e| e.to_string())?;
            println!("{} migration(s) applied to {}", done.len(), store.url());
        }
        "down" => {
            let done =
                store.revert_all_migrations(|name| println!("reverting {name}")).await.map_err(|e| e.to_string())?;
            println!("{} migration(s) reverted on {}", done.len(), store.url());
        }
        "status" => {
            let pending = store.pending_migrations().await.map_err(|e| e.to_string())?;
            for name in &pending {
                println!("pending {name}");
            }
            println!("{} pending on {}", pending.len(), store.url());
        }
        other => return Err(format!("unknown command `{other}` (expected up, down or status)")),
    }
    Ok(())
}
