//! The embedded migrations of `migrations/mysql`, run over diesel's sync migration harness
//! through `AsyncConnectionWrapper` on a blocking thread.

use diesel::migration::{Migration, MigrationSource};
use diesel::mysql::Mysql;
use diesel_async::AsyncMysqlConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::store::{MysqlStore, StoreError, establish};

/// Every migration, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/mysql");

/// A migration step failed. The message names the migration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MigrationError(String);

type Wrapper = AsyncConnectionWrapper<AsyncMysqlConnection>;

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Apply every pending migration.
    Up,
    /// Revert every applied migration.
    DownAll,
}

impl MysqlStore {
    /// Applies pending migrations, calling `on_step` with each name before it runs. Returns the
    /// names applied.
    pub async fn run_migrations(&self, on_step: impl Fn(&str) + Send + 'static) -> Result<Vec<String>, StoreError> {
        self.migrate(Direction::Up, on_step).await
    }

    /// Reverts every applied migration (newest first), calling `on_step` with each name.
    pub async fn revert_all_migrations(
        &self,
        on_step: impl Fn(&str) + Send + 'static,
    ) -> Result<Vec<String>, StoreError> {
        self.migrate(Direction::DownAll, on_step).await
    }

    /// Names of the migrations not yet applied.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, StoreError> {
        let conn = establish(self.url().opts().clone()).await.map_err(|e| StoreError::Migration(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let mut wrapper = Wrapper::from(conn);
            wrapper
                .pending_migrations(MIGRATIONS)
                .map(|m| m.iter().map(|m| m.name().to_string()).collect())
                .map_err(|e| StoreError::Migration(e.to_string()))
        })
        .await
        .map_err(|e| StoreError::Migration(e.to_string()))?
    }

    async fn migrate(
        &self,
        dir: Direction,
        on_step: impl Fn(&str) + Send + 'static,
    ) -> Result<Vec<String>, StoreError> {
        let conn = establish(self.url().opts().clone()).await.map_err(|e| StoreError::Migration(e.to_string()))?;
        tokio::task::spawn_blocking(move || run(Wrapper::from(conn), dir, on_step))
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))?
    }
}

fn run(mut conn: Wrapper, dir: Direction, on_step: impl Fn(&str)) -> Result<Vec<String>, StoreError> {
    let mut done = Vec::new();
    match dir {
        Direction::Up => {
            let pending = conn.pending_migrations(MIGRATIONS).map_err(|e| StoreError::Migration(e.to_string()))?;
            for m in pending {
                let name = m.name().to_string();
                on_step(&name);
                conn.run_migration(&*m).map_err(|e| StoreError::Migration(format!("{name}: {e}")))?;
                done.push(name);
            }
        }
        Direction::DownAll => {
            let all: Vec<Box<dyn Migration<Mysql>>> =
                MigrationSource::<Mysql>::migrations(&MIGRATIONS).map_err(|e| StoreError::Migration(e.to_string()))?;
            let applied = conn.applied_migrations().map_err(|e| StoreError::Migration(e.to_string()))?;
            for version in applied {
                let Some(m) = all.iter().find(|m| m.name().version() == version) else {
                    return Err(StoreError::Migration(format!("applied migration {version} is not embedded")));
                };
                let name = m.name().to_string();
                on_step(&name);
                conn.revert_migration(&**m).map_err(|e| StoreError::Migration(format!("{name}: {e}")))?;
                done.push(name);
            }
        }
    }
    Ok(done)
}
