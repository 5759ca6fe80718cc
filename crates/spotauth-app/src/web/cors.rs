//! CORS for a frontend on its own origin (a dev server on another port, app.example.com
//! beside api.example.com): exactly the trusted origins (`FRONTEND_URL`'s and
//! `CORS_ALLOWED_ORIGINS`, the list the CSRF guard uses) may read answers with credentials;
//! any other origin gets no CORS headers at all (never a reflected origin), so its page cannot
//! read the API. Preflights are answered for the methods and headers the API uses and cached.

use std::time::Duration;

use actix_cors::Cors;
use actix_web::http::header;

use super::TrustedOrigins;

/// How long a browser may cache a preflight answer (Chromium caps this at 2 hours).
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The CORS middleware for the trusted origins.
pub fn cors(origins: &TrustedOrigins) -> Cors {
    let trusted = origins.clone();
    Cors::default()
        .allowed_origin_fn(move |origin, _| origin.to_str().is_ok_and(|o| trusted.contains(o)))
        .allowed_methods(["GET", "POST", "PUT", "DELETE"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::RETRY_AFTER, crate::request_id::HEADER])
        .supports_credentials()
        .max_age(usize::try_from(PREFLIGHT_MAX_AGE.as_secs()).ok())
}
