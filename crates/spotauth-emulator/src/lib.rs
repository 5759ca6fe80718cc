//! A strict local emulator of Spotify's accounts service and of the Web API endpoints spotauth
//! uses. Every test and local demo talks to it instead of Spotify.
//!
//! # What it emulates (see `shared/spotify/FACTS.md`)
//! - **Accounts service**: `GET /authorize` and `POST /api/token` (form-encoded only), with
//!   authorization codes (single use, bound to client and exact redirect URI, 10 minutes), PKCE
//!   S256 (verifier 43–128 characters, required for public clients), client authentication by
//!   HTTP Basic or, for PKCE, `client_id` in the body. Errors follow RFC 6749 §5.2.
//! - **Refresh tokens** in three behaviours ([`RefreshMode`]): a new one each time, none in the
//!   response, or single use. They expire 182 days after the user's *original* authorization
//!   (refreshing never extends that) and can be revoked; both answer 400 `invalid_grant`.
//! - **Web API**: `GET /v1/me` (PrivateUserObject, with `account_id`) and Spotify Connect:
//!   `GET /v1/me/player/devices`, `GET`/`PUT /v1/me/player` (state, transfer),
//!   `PUT /v1/me/player/play` and `/pause`, one stream per account, on devices that Web
//!   Playback SDK players register. In **Development Mode** (February 2026) `/v1/me` carries no
//!   `product`, `email`, `country`, `explicit_content` nor `followers`, and users missing from the
//!   allow-list (at most 5) get 403; Premium is then detectable only through the player
//!   endpoints, which answer 403 `PREMIUM_REQUIRED` for non-Premium users in both modes.
//!   Errors are `{"error": {"status": N, "message": "..."}}` (plus `reason` for player errors).
//! - **Faults** ([`Fault`]): 429 with `Retry-After` (optionally `QUOTA_EXCEEDED`), 5xx, slow
//!   answers, dropped TCP connections; forced access-token expiry; refresh-token revocation.
//! - **Web Playback SDK**: a faithful fake of Spotify's browser SDK at `/sdk/spotify-player.js`
//!   (`window.Spotify.Player`: `connect()` registers a device with the page's token, events
//!   `ready`, `player_state_changed`, `account_error`…), talking to the emulator's `/sdk/v1/`.
//! - **Test hooks**: test users, who logs in next (`login_as=<user id>` on `/authorize` or a
//!   queue), an emulator clock offset, request counters and a reset. All are reachable from
//!   [`EmulatorHandle`] methods and from the HTTP control API under `/__control/`.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> Result<(), spotauth_emulator::StartError> {
//! use spotauth_emulator::{Emulator, EmulatorConfig, TestUser};
//! let emu = Emulator::start(EmulatorConfig::default().user(TestUser::premium("alice"))).await?;
//! println!("authorize at {}/authorize, API at {}", emu.accounts_url(), emu.api_url());
//! emu.stop().await;
//! # Ok(()) }
//! ```
//!
//! Tokens, codes and secrets are never logged.

mod accounts;
mod config;
mod connect;
mod control;
mod faults;
mod player;
mod state;
mod web_api;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer, web};

pub use accounts::KNOWN_SCOPES;
pub use config::{
    AUTHORIZATION_CODE_LIFETIME, AppMode, ConfigError, EmulatorConfig, MAX_ALLOW_LIST, Product, REFRESH_TOKEN_LIFETIME,
    RefreshMode, TestUser,
};
pub use connect::{DEVICE_STALE_AFTER_MS, DeviceSnapshot, PlaybackSnapshot, PlayerSnapshot};
pub use control::ClockInfo;
pub use faults::{Fault, FaultKind, FaultTarget};
pub use state::{Counters, EndpointCounters, LoginChoice, RefreshReuse};
pub use web_api::NOT_ALLOW_LISTED_MESSAGE;

use state::Shared;

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error("invalid emulator configuration: {0}")]
    Config(#[from] ConfigError),
    /// Binding or starting the server failed.
    #[error("cannot start the emulator server: {0}")]
    Io(#[from] std::io::Error),
    /// The server thread ended before it was ready.
    #[error("the emulator server thread ended before it was ready")]
    ThreadEnded,
}

/// Starts emulators.
#[derive(Debug, Clone, Copy)]
pub struct Emulator;

impl Emulator {
    /// Starts an emulator on `127.0.0.1` with a free port.
    ///
    /// # Errors
    /// See [`StartError`].
    pub async fn start(config: EmulatorConfig) -> Result<EmulatorHandle, StartError> {
        Self::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts an emulator on `addr` (port 0: any free port).
    ///
    /// The server runs on its own thread with its own actix system, so it works under any tokio
    /// runtime flavour (including `#[tokio::test]`'s current-thread runtime).
    ///
    /// # Errors
    /// See [`StartError`].
    pub async fn start_on(config: EmulatorConfig, addr: SocketAddr) -> Result<EmulatorHandle, StartError> {
        config.validate()?;
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        let base_url = format!("http://{local}");
        let shared = Arc::new(Shared::new(config, base_url.clone()));
        let data = web::Data::from(Arc::clone(&shared));
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new().name(format!("spotify-emulator-{}", local.port())).spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(routes))
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .on_connect(faults::on_connect)
                    .listen(listener);
                let server = match server {
                    Ok(s) => s.run(),
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let _ = tx.send(Ok(server.handle()));
                if let Err(e) = server.await {
                    tracing::warn!(error = %e, "spotify emulator server ended with an error");
                }
            });
        })?;
        let server = rx.await.map_err(|_| StartError::ThreadEnded)??;
        tracing::debug!(%base_url, "spotify emulator started");
        Ok(EmulatorHandle { shared, addr: local, server })
    }
}

/// Spotify's Web API answers CORS for any origin (pages call it with a Bearer token, never a
/// cookie); so do the emulator's Web API and its fake SDK's endpoints.
fn any_origin() -> actix_cors::Cors {
    actix_cors::Cors::default()
        .allow_any_origin()
        .allowed_methods(["GET", "POST", "PUT", "DELETE"])
        .allowed_headers([actix_web::http::header::AUTHORIZATION, actix_web::http::header::CONTENT_TYPE])
        .expose_headers([actix_web::http::header::RETRY_AFTER])
        .max_age(3600)
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/authorize").route(web::get().to(accounts::authorize)))
        .service(web::resource("/api/token").route(web::post().to(accounts::token)))
        .service(
            web::scope("/v1")
                .wrap(any_origin())
                .route("/me", web::get().to(web_api::me))
                .route("/me/player", web::get().to(player::state))
                .route("/me/player", web::put().to(player::transfer))
                .route("/me/player/devices", web::get().to(player::devices))
                .route("/me/player/play", web::put().to(player::play))
                .route("/me/player/pause", web::put().to(player::pause))
                .default_service(web::to(web_api::not_found)),
        )
        .route("/sdk/spotify-player.js", web::get().to(player::sdk_script))
        .service(
            web::scope("/sdk/v1")
                .wrap(any_origin())
                .route("/devices", web::post().to(player::sdk_register))
                .route("/devices/{id}", web::delete().to(player::sdk_disconnect))
                .route("/devices/{id}/state", web::get().to(player::sdk_state))
                .route("/devices/{id}/commands", web::post().to(player::sdk_command)),
        )
        .configure(control::routes);
}

/// A running emulator. Dropping it stops the server (without waiting); prefer
/// [`EmulatorHandle::stop`].
///
/// The methods act directly on the emulator's state, exactly like the `/__control` HTTP API.
#[derive(Debug)]
pub struct EmulatorHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: actix_web::dev::ServerHandle,
}

impl EmulatorHandle {
    /// The socket address the emulator listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// Base of the accounts service (same as [`Self::base_url`]; paths `/authorize` and
    /// `/api/token`, like `https://accounts.spotify.com`).
    #[must_use]
    pub fn accounts_url(&self) -> &str {
        &self.shared.base_url
    }

    /// `<base>/authorize`.
    #[must_use]
    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.shared.base_url)
    }

    /// `<base>/api/token`.
    #[must_use]
    pub fn token_url(&self) -> String {
        format!("{}/api/token", self.shared.base_url)
    }

    /// Base of the Web API: `<base>/v1` (like `https://api.spotify.com/v1`).
    #[must_use]
    pub fn api_url(&self) -> String {
        self.shared.api_url()
    }

    /// Base of the control API: `<base>/__control`.
    #[must_use]
    pub fn control_url(&self) -> String {
        format!("{}/__control", self.shared.base_url)
    }

    /// Adds (or replaces, by id) a test user.
    pub fn add_user(&self, user: TestUser) {
        self.shared.add_user(user);
    }

    /// All test users.
    #[must_use]
    pub fn users(&self) -> Vec<TestUser> {
        self.shared.users()
    }

    /// Queues the user who logs in at the next `/authorize` without `login_as` (and agrees).
    ///
    /// # Errors
    /// [`ConfigError::UnknownUser`].
    pub fn push_next_login(&self, user_id: &str) -> Result<(), ConfigError> {
        self.shared.push_next_login(LoginChoice { user_id: user_id.to_owned(), deny: false })
    }

    /// Queues a user who logs in at the next `/authorize` and declines (`access_denied`).
    ///
    /// # Errors
    /// [`ConfigError::UnknownUser`].
    pub fn push_next_login_denied(&self, user_id: &str) -> Result<(), ConfigError> {
        self.shared.push_next_login(LoginChoice { user_id: user_id.to_owned(), deny: true })
    }

    /// Empties the login queue.
    pub fn clear_next_logins(&self) {
        self.shared.clear_next_logins();
    }

    /// Switches the app mode.
    ///
    /// # Errors
    /// [`ConfigError::AllowListTooLong`].
    pub fn set_app_mode(&self, mode: AppMode) -> Result<(), ConfigError> {
        self.shared.set_app_mode(mode)
    }

    /// Sets the emulator-wide refresh mode.
    pub fn set_refresh_mode(&self, mode: RefreshMode) {
        self.shared.set_refresh_mode(mode);
    }

    /// Overrides (or with `None` clears the override of) one user's refresh mode.
    ///
    /// # Errors
    /// [`ConfigError::UnknownUser`].
    pub fn set_user_refresh_mode(&self, user_id: &str, mode: Option<RefreshMode>) -> Result<(), ConfigError> {
        self.shared.set_user_refresh_mode(user_id, mode)
    }

    /// Adds a fault rule (rules apply in the order added, first match wins).
    ///
    /// # Errors
    /// A message when the rule is invalid (see [`Fault::validate`]).
    pub fn inject_fault(&self, fault: Fault) -> Result<(), String> {
        self.shared.inject_fault(fault)
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.shared.clear_faults();
    }

    /// Revokes every refresh token of a user (the user removed the app at spotify.com). Access
    /// tokens stay valid until they expire, as on Spotify. Returns how many were revoked.
    pub fn revoke_refresh_tokens(&self, user_id: &str) -> usize {
        self.shared.revoke(user_id)
    }

    /// Makes every access token issued so far to a user answer 401 "The access token expired".
    /// Returns how many.
    pub fn expire_access_tokens(&self, user_id: &str) -> usize {
        self.shared.expire_access(user_id)
    }

    /// Devices and streams (Spotify Connect) as they stand now.
    #[must_use]
    pub fn player(&self) -> PlayerSnapshot {
        self.shared.player()
    }

    /// Opens a Web Playback SDK player for the owner of `access_token`, as the fake SDK's
    /// `connect()` does over HTTP: the new device's id.
    ///
    /// # Errors
    /// A message for an unknown or expired token, or a user without Premium.
    pub fn open_player(&self, access_token: &str, name: &str) -> Result<String, String> {
        self.shared.open_player(access_token, name)
    }

    /// Drops a device as if its player went stale (its page vanished without disconnecting):
    /// it leaves the device list, and a stream on it stops. `false` when there is no such device.
    pub fn drop_device(&self, device_id: &str) -> bool {
        self.shared.drop_device(device_id)
    }

    /// Moves the emulator clock forward; returns the total offset in seconds.
    pub fn advance_clock(&self, by: Duration) -> u64 {
        self.shared.advance(by)
    }

    /// The emulator clock.
    #[must_use]
    pub fn clock(&self) -> ClockInfo {
        self.shared.clock()
    }

    /// A snapshot of the request counters.
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.shared.counters()
    }

    /// Every presentation so far of a refresh token that a refresh had already replaced.
    #[must_use]
    pub fn refresh_reuses(&self) -> Vec<RefreshReuse> {
        self.shared.lock().reuses()
    }

    /// Zeroes the counters.
    pub fn reset_counters(&self) {
        self.shared.reset_counters();
    }

    /// Back to the state right after start: initial config and users; no codes, tokens, faults,
    /// queued logins, counters nor clock offset.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops the server, waiting (at most about a second) for requests in flight.
    pub async fn stop(self) {
        self.server.stop(true).await;
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        // Sends the stop command at once; the returned future only waits for completion.
        drop(self.server.stop(false));
    }
}
