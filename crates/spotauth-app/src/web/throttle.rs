//! The rate-limit extractor: takes one request from the caller's budget ([`crate::rate_limit`])
//! before the handler runs.

use std::future::{Ready, ready};
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, web};
use spotauth_domain::login::ClientKey;

use super::AppState;
use crate::problem::Problem;

/// The caller's [`ClientKey`], after one request was taken from its rate-limit budget; a 429
/// problem with `Retry-After` before the handler runs when the budget is spent.
#[derive(Debug, Clone)]
pub struct Throttled(pub Option<ClientKey>);

impl FromRequest for Throttled {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return ready(Ok(Throttled(None)));
        };
        let client = state.proxies.client_ip(req).map(ClientKey::from_ip);
        // No address (not a TCP peer: only in-process tests): nothing to key a budget on.
        let Some(key) = client else {
            return ready(Ok(Throttled(None)));
        };
        ready(match state.throttle.check(&key) {
            Ok(()) => Ok(Throttled(Some(key))),
            Err(wait) => Err(Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Too many requests")
                .detail("This client is sending requests faster than the service accepts; retry later.")
                .retry_after(wait.max(Duration::from_secs(1)))),
        })
    }
}
