//! `/api/auth/spotify/...`: login, callback, session rotation, tokens, logout, subscription.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use spotauth_domain::login::ReturnTo;
use spotauth_domain::ports::AccountPrompt;
use spotauth_domain::secret::{AccessToken, AuthorizationCode, OAuthState};
use spotauth_domain::service::{AuthError, CallbackInput, LogoutScope};
use utoipa::{IntoParams, ToSchema};

use crate::problem::{Problem, login_rejected_code};
use crate::web::{
    AccessTokenDto, AppState, Auth, LoginResponseDto, LogoutDto, SessionTokenIn, SubscriptionDto, Throttled,
    TokenSource, iso, logout_scope, session_meta,
};

/// Body of `POST /api/auth/spotify/login` (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = LoginRequest)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginBody {
    /// A same-origin relative path (`/rooms/7`) to send the browser to after the login.
    #[schema(pattern = r"^/(?![/\\])")]
    return_to: Option<String>,
}

/// Whether the request carries no body at all (the login body is optional).
fn no_body(req: &HttpRequest) -> bool {
    let h = req.headers();
    !h.contains_key(header::CONTENT_TYPE)
        && !h.contains_key(header::TRANSFER_ENCODING)
        && h.get(header::CONTENT_LENGTH).is_none_or(|v| v.as_bytes() == b"0")
}

/// `POST /api/auth/spotify/login` → `{"authorizeUrl"}` and the login cookie.
#[utoipa::path(
    post,
    path = "/api/auth/spotify/login",
    tag = "auth",
    request_body(content = Option<LoginBody>, description = "Optional: where to send the browser after the login"),
    responses(
        (status = 200, description = "Authorize URL; sets the short-lived login cookie that binds state and PKCE verifier to this browser", body = crate::web::LoginResponseDto),
        (status = 400, description = "invalid_return_to: returnTo is not a same-origin relative path; or invalid_json", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited (this client's budget is spent) or too_many_logins (too many unfinished logins), with Retry-After", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 503, description = "spotify_not_configured, or store_unavailable", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn login(
    Throttled(client): Throttled,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Result<web::Json<LoginBody>, actix_web::Error>,
) -> Result<HttpResponse, actix_web::Error> {
    let body = match body {
        Ok(body) => Some(body.into_inner()),
        Err(_) if no_body(&req) => None,
        Err(e) => return Err(e),
    };
    let return_to = match body.and_then(|b| b.return_to) {
        Some(r) => Some(ReturnTo::new(r).map_err(|e| Problem::bad_request("invalid_return_to", e.to_string()))?),
        None => None,
    };
    let prompt =
        if state.cookies.wants_account_choice(&req) { AccountPrompt::ChooseAccount } else { AccountPrompt::Silent };
    let start = state.service.begin_login(return_to, client, prompt).await.map_err(Problem::from)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::SET_COOKIE,
            state.cookies.login(&start.state, &start.pkce_verifier, start.started_at, start.expires_at),
        ))
        .json(LoginResponseDto { authorize_url: start.authorize_url }))
}

/// Query of the OAuth callback (Spotify's redirect).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The authorization code, on success.
    code: Option<String>,
    /// The state the login began with.
    state: Option<String>,
    /// Spotify's error (`access_denied` when the user declined).
    error: Option<String>,
}

/// `GET /api/auth/spotify/callback` → 303 to the frontend, with a session or `?error=`.
#[utoipa::path(
    get,
    path = "/api/auth/spotify/callback",
    tag = "auth",
    params(CallbackQuery),
    responses(
        (status = 303, description = "To FRONTEND_URL (+returnTo) with the session cookie, or to FRONTEND_URL?error=<code>[&retryAfter=<seconds>]: state_missing, state_mismatch, state_unknown, login_expired, state_reused, code_refused, access_denied, authorization_error, premium_required, not_allow_listed, rate_limited, spotify_rate_limited, spotify_unavailable, login_failed", headers(("Location" = String, description = "Where the browser goes"))),
        (status = 503, description = "spotify_not_configured", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn callback(
    throttled: Result<Throttled, Problem>,
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<CallbackQuery>,
) -> HttpResponse {
    // A browser arrives here from Spotify's redirect: it gets the frontend, not a JSON problem.
    if let Err(limited) = throttled {
        return to_frontend_with_error(&state, limited.code(), limited.retry_after_hint());
    }
    let (callback_state, outcome) = read_callback(q.into_inner());
    let input = CallbackInput {
        state: callback_state,
        outcome,
        bound: state.cookies.read_login(&req),
        meta: session_meta(&req, &state.proxies),
    };
    let clear_login = state.cookies.clear_login();
    match state.service.complete_login(input).await {
        Ok(logged_in) => {
            let issued = &logged_in.issued;
            let target = match &logged_in.return_to {
                Some(path) => state.frontend_url.join(path.as_str()).unwrap_or_else(|_| state.frontend_url.clone()),
                None => state.frontend_url.clone(),
            };
            tracing::info!(user = %logged_in.user.id, "login completed");
            room_changed(&state).await;
            HttpResponse::SeeOther()
                .insert_header((header::LOCATION, target.as_str()))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .append_header((header::SET_COOKIE, clear_login))
                .append_header((header::SET_COOKIE, state.cookies.clear_switch()))
                .append_header((
                    header::SET_COOKIE,
                    state.cookies.session(issued.token.expose(), issued.issued_at, issued.token_expires_at),
                ))
                .finish()
        }
        Err(e) => {
            let retry_after = match &e {
                AuthError::RateLimited { retry_after } => Some(*retry_after),
                _ => None,
            };
            to_frontend_with_error(&state, login_error_code(&e), retry_after)
        }
    }
}

/// Someone arrived or left: the room's pages re-read who is here. Best effort: the login or
/// logout itself is done, and the pages' polling fallback catches up if this fails.
async fn room_changed(state: &AppState) {
    if let Err(e) = state.room_changed().await {
        tracing::warn!(error = %e, "could not tell the room about an arrival or departure");
    }
}

/// 303 to `FRONTEND_URL?error=CODE[&retryAfter=SECONDS]`, clearing the login cookie.
fn to_frontend_with_error(state: &AppState, code: &str, retry_after: Option<Duration>) -> HttpResponse {
    let mut target = state.frontend_url.clone();
    target.query_pairs_mut().append_pair("error", code);
    if let Some(wait) = retry_after {
        target.query_pairs_mut().append_pair("retryAfter", &wait.as_secs().max(1).to_string());
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, target.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .append_header((header::SET_COOKIE, state.cookies.clear_login()))
        .finish()
}

/// Spotify's `error` values are a small ASCII vocabulary; anything else is replaced.
/// What a callback's query says: the state it carries (when it is one), and the authorization
/// code, or the plain error code the frontend gets.
fn read_callback(q: CallbackQuery) -> (Option<OAuthState>, Result<AuthorizationCode, String>) {
    let outcome = match (q.error, q.code) {
        (Some(error), _) => Err(sanitize_error(&error)),
        (None, Some(code)) => AuthorizationCode::new(code).map_err(|_| "invalid_request".to_owned()),
        (None, None) => Err("invalid_request".to_owned()),
    };
    (q.state.and_then(|s| OAuthState::new(s).ok()), outcome)
}

fn sanitize_error(e: &str) -> String {
    if !e.is_empty() && e.len() <= 64 && e.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        e.to_owned()
    } else {
        "authorization_error".to_owned()
    }
}

/// The `?error=` code for a failed login; causes of server-side failures are logged here.
/// Refused callbacks (a forged, replayed or stale one) are expected and logged at debug only.
fn login_error_code(e: &AuthError) -> &'static str {
    match e {
        AuthError::LoginRejected(r) => {
            tracing::debug!(reason = %r, "login callback refused");
            login_rejected_code(*r)
        }
        AuthError::AuthorizationDeclined(reason) if reason == "access_denied" => "access_denied",
        AuthError::AuthorizationDeclined(_) => "authorization_error",
        AuthError::PremiumRequired => "premium_required",
        AuthError::NotAllowListed => "not_allow_listed",
        AuthError::RateLimited { .. } => "spotify_rate_limited",
        AuthError::Unavailable { .. } => "spotify_unavailable",
        other => {
            tracing::error!(error = %other, "login failed");
            "login_failed"
        }
    }
}

/// `POST /api/auth/spotify/refresh`: rotates the session and hands out a fresh Spotify token.
#[utoipa::path(
    post,
    path = "/api/auth/spotify/refresh",
    tag = "auth",
    security(("sessionCookie" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A new session cookie (Bearer clients also get sessionToken) and a fresh Spotify access token. The old session token still works for SESSION_ROTATION_GRACE_SECS (refreshing with it again returns the same current token); presented after that, it revokes the session", body = crate::web::AccessTokenDto),
        (status = 401, description = "unauthenticated, or spotify_reauth_required", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 403, description = "premium_required", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 409, description = "spotify_not_connected", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited, with Retry-After", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 503, description = "spotify_unavailable or spotify_rate_limited, with Retry-After", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn refresh(_: Throttled, req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let presented = SessionTokenIn::of(&req, &state.cookies)?.ok_or_else(Problem::unauthenticated)?;
    let refreshed = match state.service.refresh_session(&presented.token).await {
        Ok(refreshed) => refreshed,
        Err(e @ AuthError::Unauthenticated(_)) => {
            return Err(Problem::from(e).with_cookie(state.cookies.clear_session()));
        }
        Err(e) => return Err(e.into()),
    };
    let issued = &refreshed.issued;
    let cookie = state.cookies.session(issued.token.expose(), issued.issued_at, issued.token_expires_at);
    let served = match refreshed.token {
        Ok(served) => served,
        // The presented token is dead: the new one must reach the client with the problem.
        Err(e) => return Err(Problem::from(e).with_cookie(cookie)),
    };
    let session_token = (presented.source == TokenSource::Bearer).then(|| issued.token.expose().to_owned());
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::SET_COOKIE, cookie))
        .json(AccessTokenDto::new(&served, session_token)))
}

/// `GET /api/auth/spotify/token`: a valid Spotify access token for the Web Playback SDK.
#[utoipa::path(
    get,
    path = "/api/auth/spotify/token",
    tag = "auth",
    security(("sessionCookie" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A valid Spotify access token for the Web Playback SDK's getOAuthToken; refreshed only when near expiry", body = crate::web::AccessTokenDto),
        (status = 401, description = "unauthenticated, or spotify_reauth_required after invalid_grant", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 403, description = "premium_required for a user known to be on a free plan", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 409, description = "spotify_not_connected", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 503, description = "spotify_unavailable or spotify_rate_limited, with Retry-After", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn token(Auth(auth): Auth, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let served = state.service.playback_token(auth).await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(AccessTokenDto::new(&served, None)))
}

/// Body of `POST /api/auth/spotify/token`.
#[derive(Deserialize, ToSchema)]
#[schema(as = RefusedToken)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefusedBody {
    /// The access token the SDK refused.
    #[schema(min_length = 1)]
    refused: String,
}

impl std::fmt::Debug for RefusedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefusedBody").field("refused", &"[redacted]").finish()
    }
}

/// `POST /api/auth/spotify/token {"refused": "<access token>"}`: the Web Playback SDK refused
/// the token this client handed it (it asks again only then): a replacement, refreshed once
/// however many tabs report the same token. Throttled like the other calls that can reach
/// Spotify's token endpoint.
#[utoipa::path(
    post,
    path = "/api/auth/spotify/token",
    tag = "auth",
    security(("sessionCookie" = []), ("bearer" = [])),
    request_body(content = RefusedBody),
    responses(
        (status = 200, description = "A token other than the refused one", body = crate::web::AccessTokenDto),
        (status = 400, description = "invalid_json or invalid_token", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated, or spotify_reauth_required after invalid_grant", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 403, description = "premium_required, or cross_origin_refused", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 409, description = "spotify_not_connected", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited, with Retry-After", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 503, description = "spotify_unavailable or spotify_rate_limited, with Retry-After", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn replace_token(
    _: Throttled,
    body: Result<web::Json<RefusedBody>, actix_web::Error>,
    auth: Result<Auth, Problem>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let refused = AccessToken::new(body?.into_inner().refused).map_err(|_| {
        Problem::bad_request("invalid_token", "`refused` must be the access token this API handed out.")
    })?;
    let Auth(auth) = auth?;
    let served = state.service.replace_playback_token(auth, &refused).await.map_err(Problem::from)?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(AccessTokenDto::new(&served, None)))
}

/// Query of `POST /api/auth/spotify/logout`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogoutQuery {
    /// `everywhere` (default): every session of the user ends and Spotify is disconnected (the
    /// stored tokens deleted); `device`: this session only.
    #[serde(default)]
    #[param(pattern = "^(everywhere|device)$")]
    scope: Option<String>,
}

/// `POST /api/auth/spotify/logout?scope=device|everywhere` (default `everywhere`): `device` ends
/// this session; `everywhere` ends every session of the user and disconnects Spotify (deletes
/// the stored tokens). Works with an expired or ended session token too; a 401 says that no
/// user could be identified and nothing was done. The session cookie is cleared either way.
#[utoipa::path(
    post,
    path = "/api/auth/spotify/logout",
    tag = "auth",
    security(("sessionCookie" = []), ("bearer" = [])),
    params(LogoutQuery),
    responses(
        (status = 200, description = "What was done; the session cookie is cleared, and the browser marked as logged out (its next login asks Spotify for the account chooser)", body = crate::web::LogoutDto),
        (status = 400, description = "invalid_scope", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated: no user could be identified; nothing was logged out or disconnected", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<LogoutQuery>,
) -> Result<HttpResponse, Problem> {
    let scope = match q.scope.as_deref() {
        None => LogoutScope::Everywhere,
        Some(name) => logout_scope(name)
            .ok_or_else(|| Problem::bad_request("invalid_scope", "scope must be `device` or `everywhere`."))?,
    };
    let clear = state.cookies.clear_session();
    let nothing = || {
        Problem::unauthenticated()
            .detail("No session could be identified from this request: nothing was logged out or disconnected.")
            .with_cookie(clear.clone())
    };
    let presented = SessionTokenIn::of(&req, &state.cookies).map_err(|_| nothing())?.ok_or_else(nothing)?;
    let outcome = match state.service.log_out(&presented.token, scope).await {
        Ok(outcome) => outcome,
        Err(AuthError::Unauthenticated(_)) => return Err(nothing()),
        Err(e) => return Err(e.into()),
    };
    room_changed(&state).await;
    Ok(HttpResponse::Ok()
        .append_header((header::SET_COOKIE, clear))
        .append_header((header::SET_COOKIE, state.cookies.switch_account()))
        .json(LogoutDto::from(outcome)))
}

/// `GET /api/auth/spotify/subscription`: Premium status, re-checked when stale.
#[utoipa::path(
    get,
    path = "/api/auth/spotify/subscription",
    tag = "auth",
    security(("sessionCookie" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Premium status; isPremium is null when unknown", body = crate::web::SubscriptionDto),
        (status = 401, description = "unauthenticated, or spotify_reauth_required", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 409, description = "spotify_not_connected", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 503, description = "spotify_unavailable or spotify_rate_limited, with Retry-After", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn subscription(Auth(auth): Auth, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let sub = state.service.subscription(auth).await?;
    Ok(HttpResponse::Ok().json(SubscriptionDto {
        is_premium: sub.status.as_option(),
        product: sub.product,
        checked_at: sub.checked_at.map(iso),
        source: sub.source.as_str(),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// A code for the frontend's `?error=`: plain, short, never an echo of anything else.
    fn plain(code: &str) -> bool {
        !code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    }

    proptest::proptest! {
        /// Any query a browser (or an attacker) brings to the callback: it parses or is refused,
        /// never a panic; what parses gives an error code that is plain, or a code and a state
        /// that are exactly what was sent.
        #[test]
        fn any_callback_query_is_a_typed_outcome(query in "[ -~]{0,300}") {
            if let Ok(q) = web::Query::<CallbackQuery>::from_query(&query) {
                let (_, outcome) = read_callback(q.into_inner());
                if let Err(code) = outcome {
                    proptest::prop_assert!(plain(&code));
                }
            }
        }

        #[test]
        fn a_code_and_a_state_round_trip(code in "[A-Za-z0-9_-]{1,200}", state in "[A-Za-z0-9_-]{1,200}") {
            let q = web::Query::<CallbackQuery>::from_query(&format!("code={code}&state={state}")).unwrap();
            let (got_state, outcome) = read_callback(q.into_inner());
            let expected_code = AuthorizationCode::new(code.clone()).ok().map(|c| c.expose().to_owned());
            let got_code = outcome.as_ref().ok().map(|c| c.expose().to_owned());
            proptest::prop_assert_eq!(got_code, expected_code);
            let expected_state = OAuthState::new(state.clone()).ok().map(|s| s.expose().to_owned());
            proptest::prop_assert_eq!(got_state.map(|s| s.expose().to_owned()), expected_state);
        }

        #[test]
        fn spotify_errors_reach_the_frontend_only_as_plain_codes(error in "\\PC{0,100}") {
            let q = CallbackQuery { code: Some("c".into()), state: None, error: Some(error.clone()) };
            let (_, outcome) = read_callback(q);
            let code = outcome.err().unwrap_or_default();
            proptest::prop_assert!(plain(&code));
            let echoed = code == error;
            proptest::prop_assert!(!echoed || plain(&error), "only a plain code is passed on as is");
        }
    }
}
