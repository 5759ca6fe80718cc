//! Liveness and readiness.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use spotauth_domain::ports::CipherError;
use spotauth_domain::tokens::Canary;

use crate::problem::Problem;
use crate::web::{AppState, HealthDto, ReadyDto};

/// When to ask again.
const RETRY: Duration = Duration::from_secs(5);

/// `GET /healthz`: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process answers", body = crate::web::HealthDto)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthDto { status: "ok" })
}

/// `GET /readyz`: what serving needs, each checked: the database answers, and the configured
/// keys decrypt the newest stored Spotify token (a deploy that dropped the key the service
/// writes with is not ready). A 503 says which failed.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Everything serving needs answers", body = crate::web::ReadyDto),
        (status = 503, description = "not_ready: the detail says what failed (database, keys)", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let not_ready = |detail: String| {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "Not ready").detail(detail).retry_after(RETRY)
    };
    if let Err(e) = state.store.ping().await {
        tracing::warn!(error = %e, "readiness: database unavailable");
        return Err(not_ready("database: unreachable".into()));
    }
    match state.tokens.canary().await {
        Ok(Canary::Ok) => Ok(HttpResponse::Ok().json(ReadyDto { status: "ready", database: "ok", keys: "ok" })),
        Ok(Canary::Unreadable(e)) => {
            tracing::error!(error = %e, "readiness: TOKEN_ENCRYPTION_KEYS cannot decrypt the newest stored token");
            let why = match e {
                CipherError::UnknownKey(kid) => format!("it is sealed under key `{kid}`, which is not configured"),
                other => other.to_string(),
            };
            Err(not_ready(format!("keys: TOKEN_ENCRYPTION_KEYS cannot decrypt the newest stored token ({why})")))
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unavailable");
            Err(not_ready("database: unreachable".into()))
        }
    }
}
