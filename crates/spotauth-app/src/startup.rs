//! [`Application::build`]: the one place that wires everything, used by `main` and the tests.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::dev::Server;
use actix_web::error::{JsonPayloadError, QueryPayloadError};
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use spotauth_cache::{CacheSettings, SessionCache, Stores};
use spotauth_crypto::{JwtCodec, JwtSettings, OsIds, Sha256Digests, TokenKeyring};
use spotauth_domain::ports::{
    ChangeFeed, Clock, IdSource, SessionTokenCodec, SpotifyAccounts, SpotifyProfilePort, TokenCipher, UserRepository,
};
use spotauth_domain::room::{RoomPorts, RoomService, SpotifyPlayerPort};
use spotauth_domain::service::{AuthPorts, AuthService};
use spotauth_domain::tokens::{RefreshPolicy, TokenIdentity, TokenPorts, TokenService};
use spotauth_mysql::{MysqlStore, PoolSettings};
use spotauth_runtime::{LockMap, RefreshMetrics, SystemClock, Task, housekeeping, proactive};
use spotauth_spotify::SpotifyClient;
use spotauth_sql::{Repositories, StoreHealth};
use spotauth_sqlite::{SqliteSettings, SqliteStore};

use crate::metrics::Metrics;
use crate::problem::Problem;
use crate::rate_limit::Throttle;
use crate::room_feed::RoomFeed;
use crate::routes;
use crate::settings::{AppEnv, Database, Settings};
use crate::web::{AppState, Cookies};

/// Largest JSON body accepted.
pub const JSON_LIMIT: usize = 16 * 1024;

/// Why the service could not start: one line naming the setting or the resource.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartupError(String);

/// A built, bound, not yet running service.
pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` alone on `METRICS_ADDR`, when set.
    metrics: Option<(u16, Server)>,
    tasks: Vec<Task>,
    /// The session cache, when not in strict mode: its queued writes are flushed at shutdown.
    cache: Option<Arc<SessionCache>>,
}

/// How long the room's change records are kept (only the latest matters; the rest is history).
pub(crate) const ROOM_CHANGES_KEPT: Duration = Duration::from_secs(3600);

/// How often the rate limiter forgets clients whose budget is full again.
const FORGET_IDLE_CLIENTS: Duration = Duration::from_secs(60);

/// Every answer: no content sniffing, no URL (the callback's carries a code) in a Referer, and
/// a policy under which nothing an answer holds can run or be framed (our API is JSON; an HTML
/// page served later sets its own, as restrictive as it can).
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::CONTENT_SECURITY_POLICY, "default-src 'none'; frame-ancestors 'none'"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("port", &self.port).finish_non_exhaustive()
    }
}

/// Everything the service runs on, wired from the settings: the store (migrated), the keys,
/// the Spotify client, the use cases. The server and the operator commands share it.
pub struct Core {
    /// Sessions, logins, accounts.
    pub service: Arc<AuthService>,
    /// Spotify tokens: serving, refreshing, keys.
    pub token_service: Arc<TokenService>,
    /// Presence and group playback.
    pub room: Arc<RoomService>,
    /// The database's health.
    pub health: Arc<dyn StoreHealth>,
    /// The change journal.
    pub changes: Arc<dyn ChangeFeed>,
    /// The session cache (`None` in strict mode).
    pub cache: Option<Arc<SessionCache>>,
    /// Refresh counters.
    pub refresh_metrics: Arc<RefreshMetrics>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// The users, for operators.
    pub users: Arc<dyn UserRepository>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").field("store", &self.health.describe()).finish_non_exhaustive()
    }
}

impl Core {
    /// Opens the store (applying pending migrations) and builds every adapter and use case.
    pub async fn build(settings: &Settings) -> Result<Self, StartupError> {
        let keys = settings.resolve_keys().map_err(|e| StartupError(e.to_string()))?;
        let cipher: Arc<dyn TokenCipher> = Arc::new(
            TokenKeyring::from_config(keys.token_encryption_keys.expose()).map_err(|e| StartupError(e.to_string()))?,
        );
        let codec: Arc<dyn SessionTokenCodec> = Arc::new(
            JwtCodec::from_config(keys.session_signing_key.expose(), JwtSettings::default())
                .map_err(|e| StartupError(e.to_string()))?,
        );
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ids: Arc<dyn IdSource> = Arc::new(OsIds);
        let Repositories { users, tokens, sessions, flows, rate_limits, players, health, changes } =
            open_store(settings).await?;
        let stores = Stores { users, tokens, sessions, players };
        let (cache, Stores { users, tokens, sessions, players }) = match settings.cache.staleness.is_zero() {
            true => (None, stores),
            false => {
                let cache_settings = CacheSettings {
                    staleness: settings.cache.staleness,
                    capacity: settings.cache.capacity,
                    // One process owns an SQLite file; MySQL is shared by every instance.
                    shared: matches!(settings.database, Database::Mysql(_)),
                };
                let (cache, stores) = SessionCache::wrap(stores, cache_settings);
                (Some(cache), stores)
            }
        };
        let refresh_metrics = Arc::new(RefreshMetrics::default());
        let metrics = Arc::new(Metrics::new(refresh_metrics.clone(), cache.clone(), health.clone()));
        let spotify = Arc::new(
            SpotifyClient::new(settings.spotify.clone(), clock.clone())
                .map_err(|e| StartupError(e.to_string()))?
                .with_observer(metrics.clone()),
        );
        let accounts: Arc<dyn SpotifyAccounts> = spotify.clone();
        let player: Arc<dyn SpotifyPlayerPort> = spotify.clone();
        let profile: Arc<dyn SpotifyProfilePort> = spotify;
        let token_ports = TokenPorts {
            tokens: tokens.clone(),
            limits: rate_limits,
            cipher: cipher.clone(),
            accounts: accounts.clone(),
            clock: clock.clone(),
            ids: ids.clone(),
            locks: Arc::new(LockMap::default()),
            events: refresh_metrics.clone(),
        };
        let identity = TokenIdentity {
            client_id: settings.spotify.client_id().to_owned(),
            instance: format!("i-{}", ids.new_session_id()),
        };
        let refresh_policy = RefreshPolicy {
            max_backoff: settings.spotify_max_backoff,
            ..RefreshPolicy::for_timeout(settings.spotify.timeout())
        };
        let token_service = Arc::new(TokenService::new(token_ports, refresh_policy, identity));
        let room_ports = RoomPorts { users: users.clone(), players, spotify: player, clock: clock.clone() };
        let room = Arc::new(RoomService::new(room_ports, token_service.clone(), settings.room.clone()));
        let digests = Arc::new(Sha256Digests);
        let operator_users = users.clone();
        let ports = AuthPorts { users, tokens, sessions, flows, accounts, profile, cipher, codec, digests, clock, ids };
        let service = Arc::new(AuthService::new(ports, token_service.clone(), settings.policy));

        Ok(Core {
            service,
            token_service,
            room,
            health,
            changes,
            cache,
            refresh_metrics,
            metrics,
            users: operator_users,
        })
    }
}

impl Application {
    /// Connects the store (applying pending migrations), builds every adapter, binds
    /// `BIND_ADDR`.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(settings.bind_addr)
            .map_err(|e| StartupError(format!("BIND_ADDR: cannot listen on {}: {e}", settings.bind_addr)))?;
        Self::build_with_listener(settings, listener).await
    }

    /// The listener for `METRICS_ADDR`, when set.
    fn metrics_listener(settings: &Settings) -> Result<Option<TcpListener>, StartupError> {
        settings
            .metrics_addr
            .map(|addr| {
                TcpListener::bind(addr).map_err(|e| StartupError(format!("METRICS_ADDR: cannot listen on {addr}: {e}")))
            })
            .transpose()
    }

    /// As [`Self::build`], on a listener the caller already bound (tests use port 0).
    pub async fn build_with_listener(settings: Settings, listener: TcpListener) -> Result<Self, StartupError> {
        let Core { service, token_service, room, health, changes, cache, refresh_metrics, metrics, users: _ } =
            Core::build(&settings).await?;
        if !settings.spotify_missing.is_empty() {
            tracing::warn!(
                "{} not set: login answers 503 spotify_not_configured (development mode; `cargo xtask dev` runs the Spotify emulator)",
                settings.spotify_missing.join(", ")
            );
        }

        if settings.env == AppEnv::Development && !settings.bind_addr.ip().is_loopback() {
            tracing::warn!(
                "DEV_ALLOW_REMOTE: listening on {} in development mode: cookies are not Secure and the keys sit in {}; use APP_ENV=production for anything others can reach",
                settings.bind_addr,
                settings.data_dir.display()
            );
        }
        let feed = Arc::new(RoomFeed::default());
        let keys_canary = token_service.clone();
        let throttle = Arc::new(Throttle::new(settings.rate_limits));
        let forget = throttle.clone();
        let mut tasks = vec![
            housekeeping::spawn_reporting(
                service.clone(),
                settings.housekeeping_interval,
                housekeeping_report(&metrics),
            ),
            Task::every(FORGET_IDLE_CLIENTS, move || {
                forget.forget_idle_clients();
                std::future::ready(())
            }),
        ];
        let (poll_room, poll_feed) = (room.clone(), feed.clone());
        tasks.push(Task::every(settings.room_events_poll, move || {
            let (room, feed) = (poll_room.clone(), poll_feed.clone());
            async move { feed.refresh(&room).await }
        }));
        let (tidy_room, tidy_metrics) = (room.clone(), metrics.clone());
        tasks.push(Task::every(settings.housekeeping_interval, move || {
            let (room, metrics) = (tidy_room.clone(), tidy_metrics.clone());
            async move {
                let pass = room.housekeeping(ROOM_CHANGES_KEPT).await;
                metrics.purge_pass("room", "room_rows", &pass);
                match pass {
                    Ok(n) => tracing::debug!(rows = n, "room housekeeping"),
                    Err(e) => tracing::warn!(error = %e, "room housekeeping failed"),
                }
            }
        }));
        tasks.extend(cache_tasks(cache.clone(), changes, settings.housekeeping_interval, metrics.clone()));
        if settings.proactive.enabled && settings.spotify_missing.is_empty() {
            let sessions = settings.policy.session;
            tasks.push(proactive::spawn(token_service, refresh_metrics.clone(), settings.proactive.settings, sessions));
        }
        let metrics_listener = Self::metrics_listener(&settings)?;
        let state = AppState {
            service,
            tokens: keys_canary,
            cookies: Cookies::new(settings.cookie_secure),
            frontend_url: settings.frontend_url.clone(),
            store: health,
            spotify_missing: settings.spotify_missing.clone(),
            metrics,
            proxies: settings.trusted_proxies.clone(),
            throttle,
            origins: settings.origins.clone(),
            browser: routes::BrowserConfig::new(&settings.sdk_url, settings.spotify.api_url()),
            room_page: settings.room_page,
            room,
            feed,
            cache: cache.clone(),
        };
        Self::serve(state, listener, metrics_listener, tasks, cache)
    }

    fn serve(
        state: AppState,
        listener: TcpListener,
        metrics_listener: Option<TcpListener>,
        tasks: Vec<Task>,
        cache: Option<Arc<SessionCache>>,
    ) -> Result<Self, StartupError> {
        let port = listener.local_addr().map_err(|e| StartupError(format!("BIND_ADDR: {e}")))?.port();
        let spotify_configured = state.spotify_missing.is_empty();
        let routes_state = state.clone();
        let data = web::Data::new(state);
        let metrics_public = metrics_listener.is_none();
        let metrics = match metrics_listener {
            Some(listener) => {
                let metrics_port =
                    listener.local_addr().map_err(|e| StartupError(format!("METRICS_ADDR: {e}")))?.port();
                let data = data.clone();
                let server = HttpServer::new(move || {
                    App::new().app_data(data.clone()).wrap(security_headers()).configure(routes::metrics_route)
                })
                .workers(1)
                .shutdown_timeout(10)
                .listen(listener)
                .map_err(|e| StartupError(format!("METRICS_ADDR: {e}")))?
                .run();
                Some((metrics_port, server))
            }
            None => None,
        };
        // The access log costs CPU even when its lines are filtered out (docs/benchmarks.md);
        // written only when `info` can be logged at all (`RUST_LOG=warn` turns it off).
        let access_log = tracing::level_filters::LevelFilter::current() >= tracing::Level::INFO;
        let counted = data.metrics.clone();
        let server = HttpServer::new(move || {
            let metrics = counted.clone();
            App::new()
                .app_data(data.clone())
                .app_data(web::JsonConfig::default().limit(JSON_LIMIT).error_handler(json_error))
                .app_data(web::QueryConfig::default().error_handler(query_error))
                .wrap(security_headers())
                // Outermost: every answer, and every log line of the request, has its id.
                .wrap(actix_web::middleware::from_fn(move |req, next| {
                    crate::request_id::middleware(access_log, metrics.clone(), req, next)
                }))
                .configure(|cfg| {
                    // Registered first, so these win over the real handlers.
                    if !spotify_configured {
                        cfg.route("/api/auth/spotify/login", web::post().to(spotify_not_configured))
                            .route("/api/auth/spotify/callback", web::get().to(spotify_not_configured));
                    }
                })
                .configure(|cfg| routes::configure(cfg, &routes_state))
                .configure(|cfg| {
                    if metrics_public {
                        routes::metrics_route(cfg);
                    }
                })
                .default_service(web::to(not_found))
        })
        .shutdown_timeout(10)
        .listen(listener)
        .map_err(|e| StartupError(format!("BIND_ADDR: {e}")))?
        .run();
        Ok(Application { port, server, metrics, tasks, cache })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on when `METRICS_ADDR` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// Serves until SIGTERM/SIGINT (graceful: in-flight requests finish, up to 10 s).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let metrics = async {
            match self.metrics {
                Some((_, server)) => server.await,
                None => Ok(()),
            }
        };
        let (served, metrics_served) = tokio::join!(self.server, metrics);
        let served = served.and(metrics_served);
        // The server stopped (SIGTERM/SIGINT): let the passes in flight (refreshes) finish.
        for task in self.tasks {
            task.shutdown().await;
        }
        if let Some(cache) = self.cache
            && let Err(e) = cache.flush_touches().await
        {
            tracing::warn!(error = %e, "last-active times not written at shutdown");
        }
        served
    }
}

/// How long the change journal keeps a row at least (the purge runs with housekeeping).
const JOURNAL_KEPT: Duration = Duration::from_secs(600);

/// How often queued last-active times are written (they only need minute precision: the
/// idle timeout is counted in hours, and `touch` is asked at most once a minute per session).
const TOUCH_FLUSH: Duration = Duration::from_secs(5);

/// The session cache's background work: following the journal about four times per staleness
/// bound (shared stores only), writing queued last-active times, and purging the journal (on
/// every instance, cached or strict: the writes journal either way) of rows older than
/// [`JOURNAL_KEPT`].
fn cache_tasks(
    cache: Option<Arc<SessionCache>>,
    changes: Arc<dyn ChangeFeed>,
    housekeeping: Duration,
    metrics: Arc<Metrics>,
) -> Vec<Task> {
    let mut tasks = Vec::new();
    if let Some(cache) = cache {
        if cache.settings().shared {
            let (follow, feed) = (cache.clone(), changes.clone());
            let failing = Arc::new(AtomicBool::new(false));
            let every = (cache.settings().staleness / 4).max(Duration::from_millis(10));
            tasks.push(Task::every(every, move || {
                let (cache, feed, failing) = (follow.clone(), feed.clone(), failing.clone());
                async move {
                    match cache.follow_journal(feed.as_ref()).await {
                        Ok(_) if failing.swap(false, Ordering::Relaxed) => {
                            tracing::info!("change journal readable again: cached sessions served")
                        }
                        Ok(_) => {}
                        Err(e) if !failing.swap(true, Ordering::Relaxed) => {
                            tracing::warn!(error = %e, "change journal unreadable: every request reads the database")
                        }
                        Err(_) => {}
                    }
                }
            }));
        }
        tasks.push(Task::every(TOUCH_FLUSH, move || {
            let cache = cache.clone();
            async move {
                if let Err(e) = cache.flush_touches().await {
                    tracing::warn!(error = %e, "last-active times not written; kept for the next try");
                }
            }
        }));
    }
    // The head noted at one pass is purged through at the first pass at least JOURNAL_KEPT
    // later: far longer than any staleness bound (60 s at most), so no instance that is still
    // trusted can find a row it has not read gone.
    let noted: Arc<std::sync::Mutex<Option<(std::time::Instant, u64)>>> = Arc::default();
    tasks.push(Task::every(housekeeping, move || {
        let (changes, noted, metrics) = (changes.clone(), noted.clone(), metrics.clone());
        async move {
            let due = noted.lock().ok().and_then(|n| *n).filter(|(at, _)| at.elapsed() >= JOURNAL_KEPT);
            if let Some((_, through)) = due {
                let purged = changes.purge_through(through).await;
                metrics.purge_pass("journal_purge", "journal_rows", &purged);
                match purged {
                    Ok(n) => tracing::debug!(rows = n, "change journal purged"),
                    Err(e) => tracing::warn!(error = %e, "change journal not purged"),
                }
            }
            let unnoted = noted.lock().map(|n| n.is_none()).unwrap_or(false);
            if (due.is_some() || unnoted)
                && let Ok(head) = changes.head().await
                && let Ok(mut n) = noted.lock()
            {
                *n = Some((std::time::Instant::now(), head));
            }
        }
    }));
    tasks
}

/// Counts each housekeeping pass and the rows it deleted.
fn housekeeping_report(metrics: &Arc<Metrics>) -> housekeeping::Report {
    let metrics = metrics.clone();
    Arc::new(move |pass| {
        metrics.task_run("housekeeping", pass.is_ok());
        if let Ok(done) = pass {
            metrics.purged("sessions", done.sessions);
            metrics.purged("login_flows", done.login_flows);
            metrics.purged("disconnected_users", done.disconnected_users);
        }
    })
}

/// The repositories on the chosen store: MySQL/PlanetScale when `DATABASE_URL` is set, else
/// the SQLite file (`SQLITE_PATH`, default `DATA_DIR/spotauth.db`; created on first run).
/// Pending migrations are applied either way.
pub async fn open_store(settings: &Settings) -> Result<Repositories, StartupError> {
    let fail = |e: &dyn std::fmt::Display| StartupError(e.to_string());
    let repositories = match &settings.database {
        Database::Mysql(url) => {
            let pool = PoolSettings { max_size: settings.db_pool_size, ..PoolSettings::default() };
            let store = MysqlStore::connect(url.clone(), pool).await.map_err(|e| fail(&e))?;
            let applied = store
                .run_migrations(|name| tracing::info!(migration = name, "applying migration"))
                .await
                .map_err(|e| fail(&e))?;
            tracing::info!(applied = applied.len(), "migrations applied");
            store.repositories()
        }
        Database::Sqlite(path) => {
            let sqlite = SqliteSettings { readers: settings.db_pool_size.min(8), ..SqliteSettings::default() };
            let store = SqliteStore::open(path, sqlite).await.map_err(|e| fail(&e))?;
            for name in store.migrations_applied_at_open() {
                tracing::info!(migration = %name, "applied migration");
            }
            tracing::info!(applied = store.migrations_applied_at_open().len(), "migrations applied");
            store.repositories()
        }
    };
    tracing::info!(database = %repositories.health.describe(), "database ready");
    Ok(repositories)
}

async fn spotify_not_configured(state: web::Data<AppState>) -> HttpResponse {
    let problem = Problem::new(StatusCode::SERVICE_UNAVAILABLE, "spotify_not_configured", "Spotify is not configured")
        .detail(format!(
            "Set {} (see README), or run `cargo xtask dev` to use the Spotify emulator.",
            state.spotify_missing.join(", ")
        ));
    actix_web::ResponseError::error_response(&problem)
}

fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let problem = match &err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Request body too large")
                .detail(format!("JSON bodies are limited to {JSON_LIMIT} bytes."))
        }
        JsonPayloadError::ContentType => {
            Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Unsupported media type")
                .detail("Send Content-Type: application/json.")
        }
        JsonPayloadError::Deserialize(e) => Problem::bad_request("invalid_json", format!("Malformed JSON body: {e}")),
        _ => Problem::bad_request("invalid_json", "Malformed JSON body."),
    };
    problem.into()
}

fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    Problem::bad_request("invalid_query", format!("Malformed query string: {err}")).into()
}

async fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&Problem::new(StatusCode::NOT_FOUND, "not_found", "Not found"))
}
