//! The REST endpoints.

use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::web;

use crate::web::{AppState, cors::cors, csrf};

mod account;
mod auth;
mod browser;
mod health;
mod metrics;
mod openapi;
mod room;
mod users;

/// Every API answer is about one user or changes state: no cache may keep it.
fn no_store() -> DefaultHeaders {
    DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store"))
}

pub use browser::BrowserConfig;
pub use openapi::{ApiDoc, json as openapi_json};

/// Registers every route but `/metrics` (see [`metrics_route`]). Unsafe methods under `/api`
/// pass the cross-origin guard first; the API and the client module answer CORS for the
/// trusted origins.
pub fn configure(cfg: &mut web::ServiceConfig, state: &AppState) {
    let origins = &state.origins;
    cfg.service(
        web::scope("/api/auth/spotify")
            .wrap(from_fn(csrf::guard))
            .wrap(no_store())
            .wrap(cors(origins))
            .route("/login", web::post().to(auth::login))
            .route("/callback", web::get().to(auth::callback))
            .route("/refresh", web::post().to(auth::refresh))
            .route("/token", web::get().to(auth::token))
            .route("/token", web::post().to(auth::replace_token))
            .route("/logout", web::post().to(auth::logout))
            .route("/subscription", web::get().to(auth::subscription)),
    )
    .service(
        web::scope("/api/users")
            .wrap(from_fn(csrf::guard))
            .wrap(no_store())
            .wrap(cors(origins))
            .route("/me", web::get().to(users::me))
            .route("/me", web::delete().to(account::delete_account))
            .route("/me/sessions", web::get().to(account::list))
            .route("/me/sessions", web::delete().to(account::end_others))
            .route("/me/sessions/{id}", web::delete().to(account::end_one))
            .route("/active", web::get().to(users::active))
            .route("/me/active", web::put().to(users::set_active)),
    )
    .service(
        web::scope("/api/room")
            .wrap(from_fn(csrf::guard))
            .wrap(no_store())
            .wrap(cors(origins))
            .route("/player", web::put().to(room::report_player))
            .route("/player", web::delete().to(room::leave))
            .route("/play", web::post().to(room::play))
            .route("/pause", web::post().to(room::pause))
            .route("/events", web::get().to(room::events)),
    )
    .service(web::scope("/api/config").wrap(cors(origins)).route("", web::get().to(browser::config)))
    .service(
        web::scope("/client")
            .wrap(cors(origins))
            .route("/spotauth.js", web::get().to(browser::client_js))
            .route("/spotauth.d.ts", web::get().to(browser::client_types)),
    )
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz))
    .route("/openapi.json", web::get().to(openapi::spec));
    if state.room_page {
        cfg.route("/", web::get().to(browser::room))
            .route("/room/room.js", web::get().to(browser::room_js))
            .route("/room/room.css", web::get().to(browser::room_css));
    }
}

/// `/metrics`: on the public address, or alone on `METRICS_ADDR` when that is set.
pub fn metrics_route(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics::metrics));
}
