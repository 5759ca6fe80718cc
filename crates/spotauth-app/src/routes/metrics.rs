//! `GET /metrics`: Prometheus text exposition of the service's metrics.

use actix_web::{HttpResponse, web};

use crate::web::AppState;

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "OpenMetrics text exposition, which Prometheus scrapes (on METRICS_ADDR alone when that is set)", content_type = "application/openmetrics-text", body = String),
        (status = 404, description = "not_found on the public address when METRICS_ADDR is set", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    match state.metrics.encode() {
        Ok(text) => {
            HttpResponse::Ok().content_type("application/openmetrics-text; version=1.0.0; charset=utf-8").body(text)
        }
        Err(e) => actix_web::ResponseError::error_response(&crate::problem::Problem::internal(&e)),
    }
}
