//! `/api/users/me/sessions` and `DELETE /api/users/me`: the caller's sessions and account.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use spotauth_domain::ids::SessionId;
use spotauth_domain::service::AuthError;

use crate::problem::Problem;
use crate::web::{AppState, Auth, SessionDto, SessionListDto, SessionsEndedDto};

/// `GET /api/users/me/sessions`: where the caller is signed in, this session marked.
#[utoipa::path(
    get,
    path = "/api/users/me/sessions",
    tag = "sessions",
    security(("sessionCookie" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The caller's live sessions, most recently used first; the one making the request is current", body = crate::web::SessionListDto),
        (status = 401, description = "unauthenticated", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn list(Auth(auth): Auth, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let sessions = state.service.sessions_of(&auth).await?;
    let items = sessions.iter().map(|s| SessionDto::new(s, s.id == auth.session.id)).collect();
    Ok(HttpResponse::Ok().json(SessionListDto { items }))
}

/// `DELETE /api/users/me/sessions/{id}`: ends one of the caller's sessions at once (this one
/// too, which also clears its cookie). 404 for anything that is not a live session of the
/// caller's, a malformed id included.
#[utoipa::path(
    delete,
    path = "/api/users/me/sessions/{id}",
    tag = "sessions",
    security(("sessionCookie" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "The session's id, from the list")),
    responses(
        (status = 204, description = "Ended: it is refused from now on (ending the current one also clears its cookie)"),
        (status = 401, description = "unauthenticated", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 404, description = "session_not_found: not a live session of the caller's", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn end_one(
    Auth(auth): Auth,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let id: SessionId = id.parse().map_err(|_| Problem::from(AuthError::SessionNotFound))?;
    state.service.end_session(&auth, id).await?;
    let mut done = HttpResponse::NoContent();
    if id == auth.session.id {
        done.insert_header((header::SET_COOKIE, state.cookies.clear_session()));
    }
    Ok(done.finish())
}

/// `DELETE /api/users/me/sessions`: logs out of every other device; this session and the
/// Spotify connection stay. (Everywhere, this one included: `POST /api/auth/spotify/logout`.)
#[utoipa::path(
    delete,
    path = "/api/users/me/sessions",
    tag = "sessions",
    security(("sessionCookie" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Every other session ended; this one and the Spotify connection stay", body = crate::web::SessionsEndedDto),
        (status = 401, description = "unauthenticated", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn end_others(Auth(auth): Auth, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let sessions_ended = state.service.end_other_sessions(&auth).await?;
    Ok(HttpResponse::Ok().json(SessionsEndedDto { sessions_ended }))
}

/// `DELETE /api/users/me`: deletes the caller's account and everything stored about them, at
/// once; the session cookie is cleared and the room told.
#[utoipa::path(
    delete,
    path = "/api/users/me",
    tag = "sessions",
    security(("sessionCookie" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "The account and everything stored about it are deleted; the session cookie is cleared"),
        (status = 401, description = "unauthenticated", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn delete_account(Auth(auth): Auth, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    state.service.delete_account(&auth).await?;
    tracing::info!(user = %auth.user.id, "account deleted");
    if let Err(e) = state.room_changed().await {
        tracing::warn!(error = %e, "could not tell the room about a departure");
    }
    Ok(HttpResponse::NoContent()
        .append_header((header::SET_COOKIE, state.cookies.clear_session()))
        .append_header((header::SET_COOKIE, state.cookies.switch_account()))
        .finish())
}
