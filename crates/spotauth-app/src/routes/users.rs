//! `/api/users/...`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use spotauth_domain::user::PageRequest;
use utoipa::{IntoParams, ToSchema};

use crate::problem::Problem;
use crate::web::{ActivePageDto, AppState, Auth, PresenceDto, UserDto};

/// `GET /api/users/me`.
#[utoipa::path(
    get,
    path = "/api/users/me",
    tag = "users",
    security(("sessionCookie" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The current user: public fields, never a token", body = crate::web::UserDto),
        (status = 401, description = "unauthenticated", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn me(Auth(auth): Auth) -> HttpResponse {
    HttpResponse::Ok().json(UserDto::from(&auth.user))
}

/// Query of `GET /api/users/active`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many people to skip.
    #[serde(default)]
    #[param(minimum = 0, default = 0)]
    offset: u32,
    /// Page size.
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: u32,
}

fn default_limit() -> u32 {
    20
}

/// `GET /api/users/active?offset=&limit=`: the people signed in now who have not opted out,
/// as presences (see `PresenceDto`: with whether their player is ready and what it plays), to
/// any signed-in user.
#[utoipa::path(
    get,
    path = "/api/users/active",
    tag = "users",
    security(("sessionCookie" = []), ("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "One page of the people signed in now who have not opted out, most recently active first", body = crate::web::ActivePageDto),
        (status = 400, description = "invalid_page or invalid_query", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn active(_: Auth, state: web::Data<AppState>, q: web::Query<PageQuery>) -> Result<HttpResponse, Problem> {
    let page = PageRequest::new(q.offset, q.limit).map_err(|e| Problem::bad_request("invalid_page", e.to_string()))?;
    let (members, total) = state.room.members(page).await?;
    let items = members.iter().map(PresenceDto::from).collect();
    Ok(HttpResponse::Ok().json(ActivePageDto { items, total, offset: page.offset, limit: page.limit }))
}

/// Body of `PUT /api/users/me/active`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = SetActive)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActiveBody {
    /// false: leave the active list; true: come back.
    is_active: bool,
}

/// `PUT /api/users/me/active`. A malformed body is refused before the session is looked at
/// (so a bad body is a 400 whether or not the caller is signed in).
#[utoipa::path(
    put,
    path = "/api/users/me/active",
    tag = "users",
    security(("sessionCookie" = []), ("bearer" = [])),
    request_body(content = ActiveBody),
    responses(
        (status = 200, description = "The updated user", body = crate::web::UserDto),
        (status = 401, description = "unauthenticated", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn set_active(
    body: Result<web::Json<ActiveBody>, actix_web::Error>,
    auth: Result<Auth, Problem>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let body = body?;
    let Auth(auth) = auth?;
    let user = state.service.set_active(&auth, body.is_active).await.map_err(Problem::from)?;
    // The room shows (or stops showing, and controlling) this person: pages re-read the list.
    state.room_changed().await.map_err(Problem::from)?;
    Ok(HttpResponse::Ok().json(UserDto::from(&user)))
}
