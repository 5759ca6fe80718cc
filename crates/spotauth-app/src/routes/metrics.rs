//! `GET /metrics`: Prometheus text exposition of the service's metrics.

use std::fmt::Write as _;

use actix_web::{HttpResponse, web};

use crate::web::AppState;

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition (on METRICS_ADDR alone when that is set)", content_type = "text/plain", body = String),
        (status = 404, description = "not_found on the public address when METRICS_ADDR is set", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let m = state.refresh_metrics.snapshot();
    let mut out = String::with_capacity(2048);
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, i64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let c = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    family(
        "spotauth_token_refreshes_total",
        "counter",
        "Upstream Spotify token refreshes by outcome.",
        &[
            ("{outcome=\"ok\"}", c(m.refreshed)),
            ("{outcome=\"reauth_required\"}", c(m.reauth)),
            ("{outcome=\"rate_limited\"}", c(m.rate_limited)),
            ("{outcome=\"unavailable\"}", c(m.unavailable)),
            ("{outcome=\"error\"}", c(m.failed)),
        ],
    );
    family(
        "spotauth_token_single_flight_joins_total",
        "counter",
        "Requests that waited for another request's refresh in this process instead of refreshing.",
        &[("", c(m.single_flight_joins))],
    );
    family(
        "spotauth_token_lease_waits_total",
        "counter",
        "Polls while another instance held a user's refresh lease.",
        &[("", c(m.lease_waits))],
    );
    family(
        "spotauth_token_served_stale_total",
        "counter",
        "Still-valid old tokens served because Spotify could not refresh them.",
        &[("", c(m.served_stale))],
    );
    family(
        "spotauth_token_backoff_blocked_total",
        "counter",
        "Refreshes not attempted because the client id was backing off after a 429.",
        &[("", c(m.backoff_blocked))],
    );
    family(
        "spotauth_proactive_refresh_runs_total",
        "counter",
        "Proactive refresh passes completed.",
        &[("", c(m.proactive_runs))],
    );
    family(
        "spotauth_spotify_backoff_until_seconds",
        "gauge",
        "End of the current Spotify rate-limit backoff known to this instance (Unix seconds; 0 if none).",
        &[("", m.backoff_until_ms / 1000)],
    );
    if let Some(cache) = &state.cache {
        let s = cache.stats();
        family(
            "spotauth_session_cache_reads_total",
            "counter",
            "Session reads of the request path, by where they were answered.",
            &[("{from=\"memory\"}", c(s.hits)), ("{from=\"database\"}", c(s.misses))],
        );
        family("spotauth_session_cache_sessions", "gauge", "Sessions held in memory.", &[("", c(s.sessions))]);
        family(
            "spotauth_session_cache_forgotten_total",
            "counter",
            "Users whose cached sessions were dropped after a write (here or on another instance).",
            &[("", c(s.forgotten))],
        );
        family(
            "spotauth_session_cache_journal_failures_total",
            "counter",
            "Reads of the change journal that failed (the database unreachable).",
            &[("", c(s.journal_failures))],
        );
        family(
            "spotauth_session_cache_touches_pending",
            "gauge",
            "Last-active times queued and not yet written.",
            &[("", c(s.touches_pending))],
        );
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(out)
}
