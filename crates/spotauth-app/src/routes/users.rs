//! `/api/users/...`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use spotauth_domain::service::Authenticated;
use spotauth_domain::user::PageRequest;

use crate::problem::Problem;
use crate::web::{ActiveUserDto, AppState, UserDto, session_token};

/// The caller's session, or 401.
pub(crate) async fn authenticate(req: &HttpRequest, state: &AppState) -> Result<Authenticated, Problem> {
    let (token, _) = session_token(req, &state.cookies).ok_or_else(Problem::unauthenticated)?;
    Ok(state.service.authenticate(&token).await?)
}

/// `GET /api/users/me`.
pub async fn me(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let auth = authenticate(&req, &state).await?;
    Ok(HttpResponse::Ok().json(UserDto::from(&auth.user)))
}

/// Query of `GET /api/users/active`.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    offset: u32,
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    20
}

/// `GET /api/users/active?offset=&limit=`.
pub async fn active(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, Problem> {
    authenticate(&req, &state).await?;
    let page = PageRequest::new(q.offset, q.limit).map_err(|e| Problem::bad_request("invalid_page", e.to_string()))?;
    let page = state.service.list_active_users(page).await?;
    let items: Vec<ActiveUserDto> = page.items.iter().map(ActiveUserDto::from).collect();
    Ok(HttpResponse::Ok().json(json!({
        "items": items,
        "total": page.total,
        "offset": page.request.offset,
        "limit": page.request.limit,
    })))
}

/// Body of `PUT /api/users/me/active`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActiveBody {
    is_active: bool,
}

/// `PUT /api/users/me/active`.
pub async fn set_active(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<ActiveBody>,
) -> Result<HttpResponse, Problem> {
    let auth = authenticate(&req, &state).await?;
    let user = state.service.set_active(auth.user.id, body.is_active).await?;
    Ok(HttpResponse::Ok().json(UserDto::from(&user)))
}
