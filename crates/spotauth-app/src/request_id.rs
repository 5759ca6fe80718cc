//! Request ids: every request gets one (the caller's `X-Request-Id` when it is a plain token,
//! else a new UUID), answered in `X-Request-Id`, carried by every log line of the request (a
//! `request` span) and by every problem response (`requestId`), so a user's report of an error
//! leads to its log lines. The access log line and the request metrics (by route template and
//! status, with latency) are written here too: one place sees every request.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument as _;

/// `X-Request-Id`.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest caller-chosen id kept; a longer one is replaced.
const MAX_LEN: usize = 128;

tokio::task_local! {
    static CURRENT: RequestId;
}

/// A request's id: printable, at most 128 characters of `[A-Za-z0-9._:-]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// The caller's id when it is safe to log and echo as is; `None` otherwise (a log line or a
    /// header must never carry what a caller smuggled in).
    pub fn accept(value: &[u8]) -> Option<Self> {
        let ok = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-');
        (!value.is_empty() && value.len() <= MAX_LEN && value.iter().all(ok))
            .then(|| RequestId(String::from_utf8_lossy(value).into()))
    }

    /// A new random id (a UUID v4).
    pub fn generate() -> Self {
        RequestId(uuid::Builder::from_random_bytes(rand::random()).into_uuid().to_string().into())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the request being handled, inside the middleware; `None` elsewhere.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }
}

/// The middleware (outermost): sets the id, runs the request in its span and scope, answers the
/// header, counts the request in `metrics` and, when `access_log`, logs one line per request
/// (but `/healthz`).
pub async fn middleware(
    access_log: bool,
    metrics: Arc<crate::metrics::Metrics>,
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id =
        req.headers().get(HEADER).and_then(|v| RequestId::accept(v.as_bytes())).unwrap_or_else(RequestId::generate);
    let span = tracing::info_span!("request", id = %id.as_str());
    let started = Instant::now();
    let method = req.method().clone();
    // Copied only for the access line (the request itself moves into the handler).
    let logged = (access_log && req.path() != "/healthz").then(|| (req.path().to_owned(), req.peer_addr()));
    let header = HeaderValue::from_str(id.as_str()).ok();
    let answered = header.clone();
    let result = CURRENT
        .scope(id, async move {
            next.call(req).await.map_err(|e| {
                // An inner middleware's error is rendered here, inside the scope, so that a
                // problem carries the id (actix would render it later, outside).
                let mut res = e.error_response();
                if let Some(value) = answered {
                    res.headers_mut().insert(HEADER, value);
                }
                actix_web::Error::from(InternalError::from_response(e, res))
            })
        })
        .instrument(span.clone())
        .await;
    let (status, route) = match &result {
        Ok(res) => (res.status(), res.request().match_pattern()),
        Err(e) => (e.as_response_error().status_code(), None),
    };
    metrics.request(&method, route.as_deref(), status.as_u16(), started.elapsed());
    if let Some((path, peer)) = logged {
        let status = status.as_u16();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let peer = peer.map(|p| p.ip().to_string()).unwrap_or_default();
        // The path only: the callback's query carries the authorization code.
        span.in_scope(|| tracing::info!(%peer, %method, %path, status, "{method} {path} {status} {ms:.3}ms"));
    }
    let mut res = result?;
    if let Some(value) = header {
        res.headers_mut().insert(HEADER, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_are_accepted() {
        for ok in ["abc", "0f8fad5b-d9cb-469f-a165-70867728950e", "trace:1.2_3", &"a".repeat(MAX_LEN)] {
            assert_eq!(RequestId::accept(ok.as_bytes()).map(|i| i.as_str().to_owned()).as_deref(), Some(ok));
        }
        for bad in ["", "a b", "line\nbreak", "x\u{1b}[31m", "é", "a=b", "<script>", &"a".repeat(MAX_LEN + 1)] {
            assert_eq!(RequestId::accept(bad.as_bytes()), None, "{bad:?}");
        }
        let (a, b) = (RequestId::generate(), RequestId::generate());
        assert_ne!(a, b);
        assert!(RequestId::accept(a.as_str().as_bytes()).is_some(), "a generated id is a plain one");
        assert_eq!(RequestId::current(), None, "outside a request");
    }
}
