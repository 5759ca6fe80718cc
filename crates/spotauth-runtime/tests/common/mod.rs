//! Setup shared by this crate's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use spotauth_domain::ports::Clock;
use spotauth_domain::secret::Secret;
use spotauth_emulator::EmulatorHandle;
use spotauth_spotify::{SpotifyClient, SpotifyConfig};
use spotauth_sql::Repositories;
use spotauth_testkit::TempDir;

/// The redirect URI every test's Spotify app is registered with.
pub const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// The Spotify adapter for the confidential app `client_id` (secret `secret`) at the emulator.
pub fn spotify_client(
    emu: &EmulatorHandle,
    client_id: &str,
    timeout: Duration,
    clock: Arc<dyn Clock>,
) -> Arc<SpotifyClient> {
    let config = SpotifyConfig::new(client_id, Some(Secret::new("secret")), REDIRECT)
        .unwrap()
        .with_accounts_url(emu.accounts_url())
        .unwrap()
        .with_api_url(&emu.api_url())
        .unwrap()
        .with_timeout(timeout)
        .unwrap();
    Arc::new(SpotifyClient::new(config, clock).unwrap())
}

/// A fresh, migrated SQLite store in `dir`.
pub async fn sqlite_repositories(dir: &TempDir) -> Repositories {
    let settings = spotauth_sqlite::SqliteSettings::default();
    spotauth_sqlite::SqliteStore::open(&dir.path().join("db.sqlite"), settings).await.unwrap().repositories()
}
