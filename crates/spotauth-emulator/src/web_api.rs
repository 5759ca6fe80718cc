//! The Web API endpoints the service uses: `GET /v1/me`, `GET /v1/me/player`,
//! `PUT /v1/me/player/play`.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::config::{AppMode, TestUser};
use crate::faults::{self, Endpoint, Flavour};
use crate::state::{Counted, Shared};

/// Message Spotify answers to users missing from a Development Mode allow-list.
pub const NOT_ALLOW_LISTED_MESSAGE: &str =
    "Check settings on developer.spotify.com/dashboard, the user may not be registered.";

/// A Web API error body: `{"error": {"status": N, "message": "...", "reason"?: "..."}}`.
pub(crate) fn api_error_body(status: StatusCode, message: &str, reason: Option<&str>) -> serde_json::Value {
    let mut error = json!({ "status": status.as_u16(), "message": message });
    if let Some(reason) = reason {
        error["reason"] = reason.into();
    }
    json!({ "error": error })
}

/// A Web API error answer ([`api_error_body`]; a 401 also carries `WWW-Authenticate`).
pub(crate) fn api_error(status: StatusCode, message: &str, reason: Option<&str>) -> HttpResponse {
    let mut builder = HttpResponse::build(status);
    if status == StatusCode::UNAUTHORIZED {
        builder.insert_header((
            header::WWW_AUTHENTICATE,
            format!("Bearer realm=\"spotify\", error=\"invalid_token\", error_description=\"{message}\""),
        ));
    }
    builder.json(api_error_body(status, message, reason))
}

/// The caller, once its access token checked out.
#[derive(Debug)]
struct Caller {
    user: TestUser,
    scope: String,
    app_mode: AppMode,
}

impl Caller {
    fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}

/// Counts the request, applies faults, then checks the access token and the allow-list.
async fn admit(
    req: &HttpRequest,
    shared: &Shared,
    endpoint: Endpoint,
    counted: Counted,
) -> Result<Caller, HttpResponse> {
    {
        let mut st = shared.lock();
        let user = bearer(req).and_then(|t| st.access_tokens.get(t)).map(|r| r.user_id.clone());
        st.count(counted, user.as_deref());
    }
    if let Some(resp) = faults::apply(shared, req, endpoint, Flavour::WebApi).await {
        return Err(resp);
    }
    let Some(token) = bearer(req) else {
        return Err(api_error(StatusCode::UNAUTHORIZED, "No token provided", None));
    };
    let st = shared.lock();
    let now = st.now();
    let Some(record) = st.access_tokens.get(token) else {
        return Err(api_error(StatusCode::UNAUTHORIZED, "Invalid access token", None));
    };
    if record.force_expired || now >= record.expires_at {
        return Err(api_error(StatusCode::UNAUTHORIZED, "The access token expired", None));
    }
    let Some(user) = st.users.get(&record.user_id).cloned() else {
        return Err(api_error(StatusCode::UNAUTHORIZED, "Invalid access token", None));
    };
    if !st.config.app_mode.allows(&user.id) {
        return Err(api_error(StatusCode::FORBIDDEN, NOT_ALLOW_LISTED_MESSAGE, None));
    }
    Ok(Caller { user, scope: record.scope.clone(), app_mode: st.config.app_mode.clone() })
}

/// Builds the PrivateUserObject Spotify would return for this caller.
///
/// Extended Quota: `country`, `product` and `explicit_content` need `user-read-private`, `email`
/// needs `user-read-email`, `followers` is always present. Development Mode: none of those five.
fn private_user(caller: &Caller, api_url: &str) -> Value {
    let u = &caller.user;
    let mut obj = json!({
        "display_name": u.display_name,
        "external_urls": { "spotify": format!("https://open.spotify.com/user/{}", u.id) },
        "href": format!("{api_url}/users/{}", u.id),
        "id": u.id,
        "images": [],
        "type": "user",
        "uri": format!("spotify:user:{}", u.id),
    });
    if let Some(account_id) = &u.account_id {
        obj["account_id"] = account_id.clone().into();
    }
    if caller.app_mode == AppMode::ExtendedQuota {
        obj["followers"] = json!({ "href": null, "total": 0 });
        if caller.has_scope("user-read-private") {
            obj["country"] = u.country.clone().into();
            obj["product"] = u.product.as_str().into();
            obj["explicit_content"] = json!({ "filter_enabled": false, "filter_locked": false });
        }
        if caller.has_scope("user-read-email") {
            obj["email"] = u.email.clone().into();
        }
    }
    obj
}

/// `GET /v1/me`.
pub(crate) async fn me(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    match admit(&req, &shared, Endpoint::Me, Counted::Me).await {
        Ok(caller) => HttpResponse::Ok().json(private_user(&caller, &shared.api_url())),
        Err(resp) => resp,
    }
}

/// Common checks of player endpoints: scope, then Premium. `Some` is the error answer.
fn player_checks(caller: &Caller, scope: &str) -> Option<HttpResponse> {
    if !caller.has_scope(scope) {
        return Some(api_error(StatusCode::FORBIDDEN, "Insufficient client scope", None));
    }
    if !caller.user.product.is_premium() {
        return Some(api_error(
            StatusCode::FORBIDDEN,
            "Player command failed: Premium required",
            Some("PREMIUM_REQUIRED"),
        ));
    }
    None
}

/// `GET /v1/me/player`: needs `user-read-playback-state`; non-Premium users get 403
/// `PREMIUM_REQUIRED`; Premium users get 204 (nothing is ever playing in the emulator).
pub(crate) async fn player_state(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let caller = match admit(&req, &shared, Endpoint::Player, Counted::Player).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    player_checks(&caller, "user-read-playback-state").unwrap_or_else(|| HttpResponse::NoContent().finish())
}

/// `PUT /v1/me/player/play`: needs `user-modify-playback-state`; non-Premium users get 403
/// `PREMIUM_REQUIRED`; Premium users get 404 `NO_ACTIVE_DEVICE` (the emulator has no devices).
pub(crate) async fn player_play(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let caller = match admit(&req, &shared, Endpoint::Player, Counted::Player).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    player_checks(&caller, "user-modify-playback-state").unwrap_or_else(|| {
        api_error(StatusCode::NOT_FOUND, "Player command failed: No active device found", Some("NO_ACTIVE_DEVICE"))
    })
}

/// Any other `/v1` path.
pub(crate) async fn not_found() -> HttpResponse {
    api_error(StatusCode::NOT_FOUND, "Service not found", None)
}
