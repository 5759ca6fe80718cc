//! What every handler shares.

use std::sync::Arc;

use spotauth_cache::SessionCache;
use spotauth_domain::service::AuthService;
use spotauth_domain::tokens::TokenService;
use spotauth_sql::StoreHealth;
use url::Url;

use super::{Cookies, TrustedOrigins, TrustedProxies};
use crate::rate_limit::Throttle;
use crate::room_feed::RoomFeed;
use crate::routes::BrowserConfig;
use spotauth_domain::room::{RoomError, RoomService};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub service: Arc<AuthService>,
    /// Spotify tokens (the readiness canary).
    pub tokens: Arc<TokenService>,
    /// Cookie names and attributes.
    pub cookies: Cookies,
    /// Where the browser goes after login.
    pub frontend_url: Url,
    /// The database, for `/readyz`.
    pub store: Arc<dyn StoreHealth>,
    /// Settings the Spotify client still needs (development without `SPOTIFY_CLIENT_ID`); while
    /// not empty, login and callback answer 503 `spotify_not_configured`.
    pub spotify_missing: Vec<&'static str>,
    /// The metrics, for `/metrics` and the request middleware.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The proxies whose forwarding headers name the client.
    pub proxies: TrustedProxies,
    /// The rate limits of this instance.
    pub throttle: Arc<Throttle>,
    /// The origins whose pages may make cookie-authenticated changes.
    pub origins: TrustedOrigins,
    /// What pages need to know: the SDK, the Web API, the room's policy.
    pub browser: BrowserConfig,
    /// Whether the listening room is served at `/`.
    pub room_page: bool,
    /// Presence and group playback.
    pub room: Arc<RoomService>,
    /// The room's version on this instance, for the event streams.
    pub feed: Arc<RoomFeed>,
    /// The session cache (`None` in strict mode), for `/metrics`.
    pub cache: Option<Arc<SessionCache>>,
}

impl AppState {
    /// Someone arrived, left or changed how they show: record it and tell this instance's
    /// event streams at once.
    pub async fn room_changed(&self) -> Result<(), RoomError> {
        self.room.changed().await?;
        self.feed.refresh(&self.room).await;
        Ok(())
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store.describe())
            .field("frontend_url", &self.frontend_url.as_str())
            .finish_non_exhaustive()
    }
}
