//! Liveness and readiness.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::problem::Problem;
use crate::web::{AppState, HealthDto, ReadyDto};

/// `GET /healthz`: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process answers", body = crate::web::HealthDto)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthDto { status: "ok" })
}

/// `GET /readyz`: the database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Everything serving needs answers", body = crate::web::ReadyDto),
        (status = 503, description = "not_ready: the detail says what failed", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    match state.store.ping().await {
        Ok(()) => Ok(HttpResponse::Ok().json(ReadyDto { status: "ready", database: "ok" })),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "Database unavailable"))
        }
    }
}
