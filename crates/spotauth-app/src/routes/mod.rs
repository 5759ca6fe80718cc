//! The REST endpoints.

use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::web;

use crate::web::csrf;

mod auth;
mod health;
mod metrics;
mod openapi;
mod users;

/// Every API answer is about one user or changes state: no cache may keep it.
fn no_store() -> DefaultHeaders {
    DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store"))
}

/// Registers every route but `/metrics` (see [`metrics_route`]). Unsafe methods under `/api`
/// pass the cross-origin guard first.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/auth/spotify")
            .wrap(from_fn(csrf::guard))
            .wrap(no_store())
            .route("/login", web::post().to(auth::login))
            .route("/callback", web::get().to(auth::callback))
            .route("/refresh", web::post().to(auth::refresh))
            .route("/token", web::get().to(auth::token))
            .route("/logout", web::post().to(auth::logout))
            .route("/subscription", web::get().to(auth::subscription)),
    )
    .service(
        web::scope("/api/users")
            .wrap(from_fn(csrf::guard))
            .wrap(no_store())
            .route("/me", web::get().to(users::me))
            .route("/active", web::get().to(users::active))
            .route("/me/active", web::put().to(users::set_active)),
    )
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz))
    .route("/openapi.json", web::get().to(openapi::spec));
}

/// `/metrics`: on the public address, or alone on `METRICS_ADDR` when that is set.
pub fn metrics_route(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics::metrics));
}
