//! `/api/users/me/sessions` and `DELETE /api/users/me`: the caller's sessions and account.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use spotauth_domain::ids::SessionId;
use spotauth_domain::service::AuthError;

use crate::problem::Problem;
use crate::web::{AppState, Auth, SessionDto, SessionListDto, SessionsEndedDto};

/// `GET /api/users/me/sessions`: where the caller is signed in, this session marked.
pub async fn list(Auth(auth): Auth, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let sessions = state.service.sessions_of(&auth).await?;
    let items = sessions.iter().map(|s| SessionDto::new(s, s.id == auth.session.id)).collect();
    Ok(HttpResponse::Ok().json(SessionListDto { items }))
}

/// `DELETE /api/users/me/sessions/{id}`: ends one of the caller's sessions at once (this one
/// too, which also clears its cookie). 404 for anything that is not a live session of the
/// caller's, a malformed id included.
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
pub async fn end_others(Auth(auth): Auth, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let sessions_ended = state.service.end_other_sessions(&auth).await?;
    Ok(HttpResponse::Ok().json(SessionsEndedDto { sessions_ended }))
}

/// `DELETE /api/users/me`: deletes the caller's account and everything stored about them, at
/// once; the session cookie is cleared and the room told.
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
