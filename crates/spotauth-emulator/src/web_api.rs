//! The Web API's `GET /v1/me`, the admission every Web API call passes (faults, token,
//! allow-list) and the Web API's error shapes. The player endpoints are in `player.rs`.

// Admission helpers return the finished error answer; it goes straight back to actix, once per
// refused request, so its size does not matter.
#![allow(clippy::result_large_err)]

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
pub(crate) struct Caller {
    pub(crate) user: TestUser,
    scope: String,
    app_mode: AppMode,
    /// Seconds until the access token expires.
    pub(crate) token_expires_in: u64,
}

impl Caller {
    pub(crate) fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}

/// Counts the request, applies faults, then checks the access token and the allow-list.
pub(crate) async fn admit(
    req: &HttpRequest,
    shared: &Shared,
    endpoint: Endpoint,
    counted: Counted,
) -> Result<Caller, HttpResponse> {
    count(req, shared, counted);
    if let Some(resp) = faults::apply(shared, req, endpoint, Flavour::WebApi).await {
        return Err(resp);
    }
    check_token(req, shared)
}

/// Counts a request, attributed to the owner of its access token when known.
pub(crate) fn count(req: &HttpRequest, shared: &Shared, counted: Counted) {
    let mut st = shared.lock();
    let user = bearer(req).and_then(|t| st.access_tokens.get(t)).map(|r| r.user_id.clone());
    st.count(counted, user.as_deref());
}

/// Checks the access token and the allow-list.
pub(crate) fn check_token(req: &HttpRequest, shared: &Shared) -> Result<Caller, HttpResponse> {
    let Some(token) = bearer(req) else {
        return Err(api_error(StatusCode::UNAUTHORIZED, "No token provided", None));
    };
    caller_of(shared, token)
}

/// The caller an access token stands for, once it checks out (known, not expired, the user on
/// the allow-list).
pub(crate) fn caller_of(shared: &Shared, token: &str) -> Result<Caller, HttpResponse> {
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
    let token_expires_in = record.expires_at.saturating_sub(now);
    Ok(Caller { user, scope: record.scope.clone(), app_mode: st.config.app_mode.clone(), token_expires_in })
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

/// Any other `/v1` path.
pub(crate) async fn not_found() -> HttpResponse {
    api_error(StatusCode::NOT_FOUND, "Service not found", None)
}
