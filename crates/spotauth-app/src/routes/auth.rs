//! `/api/auth/spotify/...`: login, callback, session rotation, tokens, logout, subscription.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use spotauth_domain::login::ReturnTo;
use spotauth_domain::ports::AccountPrompt;
use spotauth_domain::secret::{AccessToken, AuthorizationCode, OAuthState};
use spotauth_domain::service::{AuthError, CallbackInput, LogoutScope};

use crate::problem::{Problem, login_rejected_code};
use crate::web::{
    AccessTokenDto, AppState, Auth, LogoutDto, SessionTokenIn, Throttled, TokenSource, iso, logout_scope, session_meta,
};

/// Body of `POST /api/auth/spotify/login` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginBody {
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
        .json(json!({ "authorizeUrl": start.authorize_url })))
}

/// Query of the OAuth callback.
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /api/auth/spotify/callback` → 303 to the frontend, with a session or `?error=`.
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
    let q = q.into_inner();
    let outcome = match (q.error, q.code) {
        (Some(error), _) => Err(sanitize_error(&error)),
        (None, Some(code)) => AuthorizationCode::new(code).map_err(|_| "invalid_request".to_owned()),
        (None, None) => Err("invalid_request".to_owned()),
    };
    let input = CallbackInput {
        state: q.state.and_then(|s| OAuthState::new(s).ok()),
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
pub async fn token(Auth(auth): Auth, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let served = state.service.playback_token(auth).await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(AccessTokenDto::new(&served, None)))
}

/// Body of `POST /api/auth/spotify/token`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefusedBody {
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
#[derive(Debug, Deserialize)]
pub struct LogoutQuery {
    #[serde(default)]
    scope: Option<String>,
}

/// `POST /api/auth/spotify/logout?scope=device|everywhere` (default `everywhere`): `device` ends
/// this session; `everywhere` ends every session of the user and disconnects Spotify (deletes
/// the stored tokens). Works with an expired or ended session token too; a 401 says that no
/// user could be identified and nothing was done. The session cookie is cleared either way.
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
pub async fn subscription(Auth(auth): Auth, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let sub = state.service.subscription(auth).await?;
    Ok(HttpResponse::Ok().json(json!({
        "isPremium": sub.status.as_option(),
        "product": sub.product,
        "checkedAt": sub.checked_at.map(iso),
        "source": sub.source.as_str(),
    })))
}
