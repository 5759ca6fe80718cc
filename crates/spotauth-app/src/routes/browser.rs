//! What a browser loads from the service: `GET /api/config` (where a page finds the Web
//! Playback SDK and Spotify's Web API), the browser client module under `/client/`, and the
//! listening-room page at `/` (when `ROOM_PAGE` is on).
//!
//! The files are compiled into the binary (no directory to deploy or to serve by mistake).

use crate::web::{AppState, ClientConfigDto};
use actix_web::http::header;
use actix_web::{HttpResponse, web};

const CLIENT_JS: &str = include_str!("../../web/client/spotauth.js");
const CLIENT_TYPES: &str = include_str!("../../web/client/spotauth.d.ts");
const ROOM_HTML: &str = include_str!("../../web/room/index.html");
const ROOM_JS: &str = include_str!("../../web/room/room.js");
const ROOM_CSS: &str = include_str!("../../web/room/room.css");

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// What the browser side needs to know, fixed at startup.
#[derive(Debug, Clone)]
pub struct BrowserConfig {
    /// The Web Playback SDK script (`SPOTIFY_SDK_URL`).
    pub sdk_url: String,
    /// Spotify's Web API base, for the page's own player calls.
    pub spotify_api_url: String,
    /// The listening room's Content-Security-Policy: itself, the SDK's origin and the Web
    /// API's origin, nothing else.
    pub room_csp: String,
}

impl BrowserConfig {
    /// From the SDK script's URL and the Web API base the Spotify client uses.
    pub fn new(sdk_url: &url::Url, spotify_api_url: &str) -> Self {
        let sdk = sdk_url.origin().ascii_serialization();
        let api = url::Url::parse(spotify_api_url).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
        let room_csp = format!(
            "default-src 'none'; script-src 'self' {sdk}; connect-src 'self' {sdk} {api}; frame-src {sdk}; \
             img-src 'self' data:; style-src 'self'; media-src 'self' blob:; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'"
        );
        BrowserConfig { sdk_url: sdk_url.to_string(), spotify_api_url: spotify_api_url.to_owned(), room_csp }
    }
}

/// `GET /api/config` (public): `{"sdkUrl", "spotifyApiUrl"}`.
#[utoipa::path(
    get,
    path = "/api/config",
    tag = "browser",
    responses((status = 200, description = "Public; the same for everyone", body = crate::web::ClientConfigDto)),
)]
pub async fn config(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(ClientConfigDto { sdk_url: &state.browser.sdk_url, spotify_api_url: &state.browser.spotify_api_url })
}

/// A static file; `no-cache`: browsers revalidate, so a new release is picked up at once.
fn file(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

/// `GET /client/spotauth.js`: the browser client, an ES module.
#[utoipa::path(
    get,
    path = "/client/spotauth.js",
    tag = "browser",
    responses((status = 200, description = "The browser client: an ES module (login, logout, me, sessions, activeUsers, the SDK's getOAuthToken, automatic session rotation, typed errors); readable with CORS by the trusted origins", content_type = "text/javascript", body = String)),
)]
pub async fn client_js() -> HttpResponse {
    file(JAVASCRIPT, CLIENT_JS)
}

/// `GET /client/spotauth.d.ts`: its TypeScript types.
#[utoipa::path(
    get,
    path = "/client/spotauth.d.ts",
    tag = "browser",
    responses((status = 200, description = "TypeScript declarations", content_type = "text/plain", body = String)),
)]
pub async fn client_types() -> HttpResponse {
    file("text/plain; charset=utf-8", CLIENT_TYPES)
}

/// `GET /`: the listening room, under its own Content-Security-Policy.
#[utoipa::path(
    get,
    path = "/",
    tag = "browser",
    responses(
        (status = 200, description = "The listening room (when ROOM_PAGE is on: by default in development only), under a Content-Security-Policy allowing only itself, the SDK's origin and the Web API's", content_type = "text/html", body = String),
        (status = 404, description = "not_found: ROOM_PAGE is off", body = crate::problem::ProblemDto, content_type = "application/problem+json"),
    ),
)]
pub async fn room(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, state.browser.room_csp.as_str()))
        .body(ROOM_HTML)
}

/// `GET /room/room.js`.
#[utoipa::path(get, path = "/room/room.js", tag = "browser", responses((status = 200, description = "The room page's script", content_type = "text/javascript", body = String)))]
pub async fn room_js() -> HttpResponse {
    file(JAVASCRIPT, ROOM_JS)
}

/// `GET /room/room.css`.
#[utoipa::path(get, path = "/room/room.css", tag = "browser", responses((status = 200, description = "The room page's styles", content_type = "text/css", body = String)))]
pub async fn room_css() -> HttpResponse {
    file("text/css; charset=utf-8", ROOM_CSS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_room_policy_names_exactly_itself_the_sdk_and_the_web_api() {
        let sdk = url::Url::parse("https://sdk.scdn.co/spotify-player.js").unwrap_or_else(|_| unreachable!());
        let c = BrowserConfig::new(&sdk, "https://api.spotify.com/v1");
        assert!(c.room_csp.contains("script-src 'self' https://sdk.scdn.co;"), "{}", c.room_csp);
        assert!(c.room_csp.contains("connect-src 'self' https://sdk.scdn.co https://api.spotify.com;"));
        assert!(!c.room_csp.contains("unsafe"), "no inline script or style");
    }
}
