//! Fault injection: rate limits (429 + `Retry-After`), 5xx answers, slow answers and dropped
//! connections, for the next N requests of an endpoint or until cleared.
//!
//! A dropped connection is real: the server keeps a duplicate of every accepted socket's file
//! descriptor (taken in actix-web's `on_connect` hook) and, for a `drop_connection` fault, shuts
//! the socket down in both directions before any byte of the response is written. The client sees
//! the connection close with no HTTP response at all (reqwest: an error, not a status). As a
//! second line of defence the handler then returns a response whose body stream fails, which makes
//! actix abort the connection too.

use std::net::Shutdown;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::BodyStream;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::state::Shared;
use crate::web_api::api_error_body;

/// Which endpoint a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultTarget {
    /// `GET /authorize`.
    Authorize,
    /// `POST /api/token`.
    Token,
    /// `GET /v1/me`.
    Me,
    /// `GET /v1/me/player`, `PUT /v1/me/player/play`.
    Player,
    /// Every endpoint above.
    Any,
}

/// An emulated endpoint (what a request hit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Authorize,
    Token,
    Me,
    Player,
}

impl FaultTarget {
    pub(crate) fn matches(self, endpoint: Endpoint) -> bool {
        matches!(
            (self, endpoint),
            (Self::Any, _)
                | (Self::Authorize, Endpoint::Authorize)
                | (Self::Token, Endpoint::Token)
                | (Self::Me, Endpoint::Me)
                | (Self::Player, Endpoint::Player)
        )
    }
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// 429 with `Retry-After: <retry_after_secs>`. Web API body
    /// `{"error":{"status":429,"message":"API rate limit exceeded"}}`, plus
    /// `"reason":"QUOTA_EXCEEDED"` when `quota_exceeded`.
    RateLimited {
        /// Value of the `Retry-After` header, in seconds.
        retry_after_secs: u64,
        /// Add `"reason": "QUOTA_EXCEEDED"` (July 2026) to the body.
        #[serde(default)]
        quota_exceeded: bool,
    },
    /// An error status (meant for 500, 502, 503; any 400–599 is accepted).
    ServerError {
        /// The HTTP status.
        status: u16,
    },
    /// Wait `delay_ms`, then answer normally.
    Slow {
        /// Delay in milliseconds.
        delay_ms: u64,
    },
    /// Close the TCP connection without any response.
    DropConnection,
    /// 404 "Device not found" (a Web API player call to a device that has only just come
    /// online answers this once; clients wait briefly and retry).
    DeviceNotFound,
}

/// A fault rule: `kind` for the next `times` requests to `target` (`None`: until cleared).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// Endpoint(s) affected.
    pub target: FaultTarget,
    /// What happens.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// How many requests it affects; `None` = every request until cleared.
    #[serde(default)]
    pub times: Option<u32>,
}

impl Fault {
    /// A 429 with `Retry-After: retry_after_secs`, once (change with [`Fault::times`]).
    #[must_use]
    pub fn rate_limited(target: FaultTarget, retry_after_secs: u64) -> Self {
        Self::once(target, FaultKind::RateLimited { retry_after_secs, quota_exceeded: false })
    }

    /// A 429 with `Retry-After` and `"reason": "QUOTA_EXCEEDED"`, once.
    #[must_use]
    pub fn quota_exceeded(target: FaultTarget, retry_after_secs: u64) -> Self {
        Self::once(target, FaultKind::RateLimited { retry_after_secs, quota_exceeded: true })
    }

    /// An error status (500, 502, 503...), once.
    #[must_use]
    pub fn server_error(target: FaultTarget, status: u16) -> Self {
        Self::once(target, FaultKind::ServerError { status })
    }

    /// A delay before the normal answer, once.
    #[must_use]
    pub fn slow(target: FaultTarget, delay: Duration) -> Self {
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        Self::once(target, FaultKind::Slow { delay_ms })
    }

    /// A dropped connection (no response at all), once.
    #[must_use]
    pub fn drop_connection(target: FaultTarget) -> Self {
        Self::once(target, FaultKind::DropConnection)
    }

    /// A 404 "Device not found" from a player endpoint, once.
    #[must_use]
    pub fn device_not_found() -> Self {
        Self::once(FaultTarget::Player, FaultKind::DeviceNotFound)
    }

    /// Affect the next `n` requests.
    #[must_use]
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Affect every request until the faults are cleared.
    #[must_use]
    pub fn always(mut self) -> Self {
        self.times = None;
        self
    }

    fn once(target: FaultTarget, kind: FaultKind) -> Self {
        Self { target, kind, times: Some(1) }
    }

    /// Checks the rule.
    ///
    /// # Errors
    /// A message when the status is not 400–599 or `times` is `Some(0)`.
    pub fn validate(&self) -> Result<(), String> {
        if let FaultKind::ServerError { status } = self.kind
            && !(400..=599).contains(&status)
        {
            return Err(format!("fault status {status} is not an error status"));
        }
        if self.times == Some(0) {
            return Err("fault `times` must be at least 1 (or absent for always)".to_owned());
        }
        Ok(())
    }
}

/// A duplicate of an accepted socket, stored as connection data so a handler can drop the
/// connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnSocket(pub(crate) Arc<std::net::TcpStream>);

/// actix-web `on_connect` hook: remembers a duplicate of the accepted socket.
pub(crate) fn on_connect(conn: &dyn std::any::Any, ext: &mut actix_web::dev::Extensions) {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Some(stream) = conn.downcast_ref::<actix_web::rt::net::TcpStream>()
            && let Ok(fd) = stream.as_fd().try_clone_to_owned()
        {
            ext.insert(ConnSocket(Arc::new(std::net::TcpStream::from(fd))));
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (conn, ext);
    }
}

/// The flavour of error body to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// Accounts service: RFC 6749 style `{"error": "...", "error_description": "..."}`.
    Accounts,
    /// Web API: `{"error": {"status": N, "message": "..."}}`.
    WebApi,
}

/// Applies the first matching fault, if any. `Some(response)` ends the request with it; `None`
/// means go on normally (possibly after a delay).
pub(crate) async fn apply(
    shared: &Shared,
    req: &HttpRequest,
    endpoint: Endpoint,
    flavour: Flavour,
) -> Option<HttpResponse> {
    let kind = shared.lock().take_fault(endpoint)?;
    match kind {
        FaultKind::Slow { delay_ms } => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            None
        }
        FaultKind::RateLimited { retry_after_secs, quota_exceeded } => {
            let body = match flavour {
                Flavour::WebApi => api_error_body(
                    StatusCode::TOO_MANY_REQUESTS,
                    "API rate limit exceeded",
                    quota_exceeded.then_some("QUOTA_EXCEEDED"),
                ),
                Flavour::Accounts => serde_json::json!({
                    "error": "rate_limit_exceeded",
                    "error_description": "API rate limit exceeded",
                }),
            };
            Some(
                HttpResponse::TooManyRequests().insert_header(("Retry-After", retry_after_secs.to_string())).json(body),
            )
        }
        FaultKind::ServerError { status } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = status.canonical_reason().unwrap_or("Server error");
            let body = match flavour {
                Flavour::WebApi => api_error_body(status, message, None),
                Flavour::Accounts => serde_json::json!({
                    "error": "server_error",
                    "error_description": message,
                }),
            };
            Some(HttpResponse::build(status).json(body))
        }
        FaultKind::DropConnection => Some(drop_connection(req)),
        FaultKind::DeviceNotFound => Some(crate::web_api::api_error(StatusCode::NOT_FOUND, "Device not found", None)),
    }
}

/// Shuts the client's connection down and returns a response whose body fails, so nothing
/// reaches the client even if the shutdown were not possible.
pub(crate) fn drop_connection(req: &HttpRequest) -> HttpResponse {
    if let Some(sock) = req.conn_data::<ConnSocket>() {
        // Best effort: the socket may already be gone.
        let _ = sock.0.shutdown(Shutdown::Both);
    }
    let failing = futures_util::stream::once(async {
        Err::<actix_web::web::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "emulator fault: dropped connection",
        ))
    });
    HttpResponse::Ok().body(BodyStream::new(failing))
}
