//! RFC 9457 problem details: every error the API answers, with a stable `code`.
//!
//! A 5xx logs its cause and never sends it.

use std::fmt;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use spotauth_domain::ports::{CipherError, RepoError};
use spotauth_domain::room::RoomError;
use spotauth_domain::service::{AuthError, LoginRejected};
use utoipa::ToSchema;

/// An error answer: `application/problem+json` with `type`, `title`, `status`, `detail`, `code`.
#[derive(Debug, Clone)]
pub struct Problem {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: Option<String>,
    retry_after: Option<Duration>,
    set_cookies: Vec<String>,
}

impl Problem {
    /// A problem with a status, a stable code and a human title.
    pub fn new(status: StatusCode, code: &'static str, title: &'static str) -> Self {
        Problem { status, code, title, detail: None, retry_after: None, set_cookies: Vec::new() }
    }

    /// Adds a human-readable detail (never a secret, never an internal cause).
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds `Retry-After`.
    pub fn retry_after(mut self, d: Duration) -> Self {
        self.retry_after = Some(d);
        self
    }

    /// Adds a `Set-Cookie` header (e.g. a rotated session that must reach the browser even
    /// when the rest of the request failed).
    pub fn with_cookie(mut self, cookie: String) -> Self {
        self.set_cookies.push(cookie);
        self
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The `Retry-After` it carries, if any.
    pub fn retry_after_hint(&self) -> Option<Duration> {
        self.retry_after
    }

    /// 401 with `WWW-Authenticate`.
    pub fn unauthenticated() -> Self {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", "Authentication required")
            .detail("Log in again: the session is missing, expired, revoked or invalid.")
    }

    /// 400 for a body that is not the JSON expected.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, code, "Bad request").detail(detail)
    }

    /// 500, after logging the cause.
    pub fn internal(cause: &dyn fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal server error")
    }
}

/// The JSON of a problem: RFC 9457's members and ours.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Problem)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProblemDto {
    /// `urn:spotauth:problem:<code>`.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    kind: String,
    /// A short human summary.
    title: &'static str,
    /// The HTTP status.
    status: u16,
    /// The stable, machine-readable code (see the README's table).
    code: &'static str,
    /// What happened and what to do, for a person; never a secret or an internal cause.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    /// Seconds to wait before trying again (also in `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
    /// The request's id (also in `X-Request-Id`): the service's log lines of the request carry it.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.code)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = ProblemDto {
            kind: format!("urn:spotauth:problem:{}", self.code),
            title: self.title,
            status: self.status.as_u16(),
            code: self.code,
            detail: self.detail.clone(),
            retry_after: self.retry_after.map(|ra| ra.as_secs().max(1)),
            // The id the request's log lines carry: what a user reports, what an operator greps.
            request_id: crate::request_id::RequestId::current().map(|id| id.as_str().to_owned()),
        };
        let mut resp = HttpResponse::build(self.status);
        resp.content_type("application/problem+json").insert_header((header::CACHE_CONTROL, "no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            resp.insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="spotauth""#));
        }
        if let Some(ra) = self.retry_after {
            resp.insert_header((header::RETRY_AFTER, ra.as_secs().max(1).to_string()));
        }
        for c in &self.set_cookies {
            if let Ok(v) = HeaderValue::from_str(c) {
                resp.append_header((header::SET_COOKIE, v));
            }
        }
        resp.body(serde_json::to_string(&body).unwrap_or_default())
    }
}

/// The stable code of a refused login callback, as the frontend sees it (in a problem, or as
/// the callback's `?error=`).
pub fn login_rejected_code(r: LoginRejected) -> &'static str {
    match r {
        LoginRejected::StateMissing => "state_missing",
        LoginRejected::StateMismatch => "state_mismatch",
        LoginRejected::StateUnknown => "state_unknown",
        LoginRejected::Expired => "login_expired",
        LoginRejected::AlreadyUsed => "state_reused",
        LoginRejected::CodeRefused => "code_refused",
    }
}

impl From<RoomError> for Problem {
    fn from(e: RoomError) -> Self {
        use StatusCode as S;
        match e {
            RoomError::DeviceNotFound => Problem::new(S::NOT_FOUND, "device_not_found", "Device not found")
                .detail("This device is not (yet) one of your Spotify devices; retry in a moment."),
            RoomError::PremiumRequired => AuthError::PremiumRequired.into(),
            RoomError::NotHost => Problem::new(S::FORBIDDEN, "not_host", "Not a host of this room")
                .detail("Group playback is limited to the room's hosts (ROOM_HOSTS)."),
            RoomError::Token(t) => AuthError::from(t).into(),
            RoomError::Store(r) => AuthError::Store(r).into(),
        }
    }
}

/// How long to tell callers to wait when Spotify is down and no hint came with it.
const DEFAULT_RETRY: Duration = Duration::from_secs(5);

impl From<AuthError> for Problem {
    fn from(e: AuthError) -> Self {
        use StatusCode as S;
        match e {
            AuthError::Unauthenticated(reason) => {
                tracing::debug!(%reason, "unauthenticated");
                Problem::unauthenticated()
            }
            AuthError::PremiumRequired => Problem::new(S::FORBIDDEN, "premium_required", "Spotify Premium required")
                .detail("The Web Playback SDK plays for Spotify Premium accounts only."),
            AuthError::ReauthRequired | AuthError::Cipher(CipherError::UnknownKey(_)) => {
                if let AuthError::Cipher(c) = &e {
                    tracing::warn!(error = %c, "stored token under a retired key: re-authorization required");
                }
                Problem::new(S::UNAUTHORIZED, "spotify_reauth_required", "Spotify re-authorization required")
                    .detail("Spotify no longer accepts this connection. Log in with Spotify again.")
            }
            AuthError::NotConnected => Problem::new(S::CONFLICT, "spotify_not_connected", "Spotify not connected")
                .detail("This account has disconnected Spotify. Log in with Spotify again."),
            AuthError::NotAllowListed => {
                Problem::new(S::FORBIDDEN, "spotify_not_allow_listed", "Not on the Spotify app's allow-list")
                    .detail("This Spotify app is in Development Mode and this user is not on its allow-list.")
            }
            AuthError::UserNotFound => Problem::new(S::NOT_FOUND, "user_not_found", "User not found"),
            AuthError::SessionNotFound => Problem::new(S::NOT_FOUND, "session_not_found", "Session not found")
                .detail("You have no live session with this id."),
            AuthError::RateLimited { retry_after } => {
                Problem::new(S::SERVICE_UNAVAILABLE, "spotify_rate_limited", "Spotify is rate limiting this app")
                    .retry_after(retry_after)
            }
            AuthError::Unavailable { retry_after } => {
                Problem::new(S::SERVICE_UNAVAILABLE, "spotify_unavailable", "Spotify is unavailable")
                    .retry_after(retry_after.unwrap_or(DEFAULT_RETRY))
            }
            AuthError::Store(RepoError::Unavailable(cause)) => {
                tracing::error!(%cause, "store unavailable");
                Problem::new(S::SERVICE_UNAVAILABLE, "store_unavailable", "Storage unavailable")
                    .retry_after(DEFAULT_RETRY)
            }
            AuthError::Spotify(cause) => {
                tracing::error!(%cause, "Spotify answered unexpectedly");
                Problem::new(S::BAD_GATEWAY, "spotify_error", "Spotify answered unexpectedly")
            }
            AuthError::InvalidProfile(cause) => {
                tracing::error!(%cause, "Spotify sent an unusable profile");
                Problem::new(S::BAD_GATEWAY, "spotify_error", "Spotify answered unexpectedly")
            }
            AuthError::LoginRejected(r) => {
                Problem::new(S::BAD_REQUEST, login_rejected_code(r), "Login refused").detail(r.to_string())
            }
            AuthError::AuthorizationDeclined(_) => {
                Problem::new(S::FORBIDDEN, "access_denied", "Spotify authorization declined")
            }
            AuthError::TooManyLogins { retry_after } => {
                Problem::new(S::TOO_MANY_REQUESTS, "too_many_logins", "Too many pending logins")
                    .detail("Too many logins were started and not finished; finish one or retry later.")
                    .retry_after(retry_after)
            }
            other @ (AuthError::Store(_) | AuthError::Cipher(_) | AuthError::SessionIssue) => Problem::internal(&other),
        }
    }
}
