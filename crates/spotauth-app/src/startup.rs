//! [`Application::build`]: the one place that wires everything, used by `main` and the tests.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use spotauth_crypto::{JwtCodec, JwtSettings, OsIds, SystemClock, TokenKeyring};
use spotauth_domain::ports::{
    Clock, IdSource, LoginFlowRepository, SessionRepository, SessionTokenCodec, SpotifyAccounts, SpotifyProfilePort,
    TokenCipher, TokenRefresher, UserRepository,
};
use spotauth_domain::refresh::StoreRefresher;
use spotauth_domain::service::{Adapters, AuthService, DynPorts};
use spotauth_mysql::{MysqlStore, PoolSettings};
use spotauth_spotify::SpotifyClient;

use crate::problem::Problem;
use crate::routes;
use crate::settings::Settings;
use crate::web::{AppState, Cookies, StoreHandle};

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
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("port", &self.port).finish_non_exhaustive()
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

    /// As [`Self::build`], on a listener the caller already bound (tests use port 0).
    pub async fn build_with_listener(settings: Settings, listener: TcpListener) -> Result<Self, StartupError> {
        let cipher: Arc<dyn TokenCipher> = Arc::new(
            TokenKeyring::from_config(settings.token_encryption_keys.expose())
                .map_err(|e| StartupError(e.to_string()))?,
        );
        let codec: Arc<dyn SessionTokenCodec> = Arc::new(
            JwtCodec::from_config(settings.session_signing_key.expose(), JwtSettings::default())
                .map_err(|e| StartupError(e.to_string()))?,
        );
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ids: Arc<dyn IdSource> = Arc::new(OsIds);
        let spotify = Arc::new(
            SpotifyClient::new(settings.spotify.clone(), clock.clone()).map_err(|e| StartupError(e.to_string()))?,
        );
        let accounts: Arc<dyn SpotifyAccounts> = spotify.clone();
        let profile: Arc<dyn SpotifyProfilePort> = spotify;

        let pool = PoolSettings { max_size: settings.db_pool_size, ..PoolSettings::default() };
        let store =
            MysqlStore::connect(settings.database_url.clone(), pool).await.map_err(|e| StartupError(e.to_string()))?;
        let applied = store
            .run_migrations(|name| tracing::info!(migration = name, "applying migration"))
            .await
            .map_err(|e| StartupError(e.to_string()))?;
        tracing::info!(applied = applied.len(), database = %store.url(), "database ready");
        let users: Arc<dyn UserRepository> = Arc::new(store.users());
        let sessions: Arc<dyn SessionRepository> = Arc::new(store.sessions());
        let flows: Arc<dyn LoginFlowRepository> = Arc::new(store.login_flows());

        let refresher: Arc<dyn TokenRefresher> =
            Arc::new(StoreRefresher::new(users.clone(), cipher.clone(), accounts.clone(), clock.clone()));
        let adapters: Adapters<DynPorts> =
            Adapters { users, sessions, flows, accounts, profile, cipher, codec, clock, ids, refresher };
        let service = Arc::new(AuthService::new(adapters, settings.policy));
        let state = AppState {
            service,
            cookies: Cookies::new(settings.cookie_secure),
            frontend_url: settings.frontend_url.clone(),
            store: StoreHandle::Mysql(store),
        };
        Self::serve(state, listener)
    }

    fn serve(state: AppState, listener: TcpListener) -> Result<Self, StartupError> {
        let port = listener.local_addr().map_err(|e| StartupError(format!("BIND_ADDR: {e}")))?.port();
        let data = web::Data::new(state);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::JsonConfig::default().limit(JSON_LIMIT).error_handler(json_error))
                .app_data(web::QueryConfig::default().error_handler(query_error))
                .wrap(actix_web::middleware::Logger::new("%a \"%r\" %s %Dms").exclude("/healthz"))
                .configure(routes::configure)
                .default_service(web::to(not_found))
        })
        .shutdown_timeout(10)
        .listen(listener)
        .map_err(|e| StartupError(format!("BIND_ADDR: {e}")))?
        .run();
        Ok(Application { port, server })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM/SIGINT (graceful: in-flight requests finish, up to 10 s).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
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
