//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the handlers' annotations and
//! the request and response types they use (one source: a shape a handler returns is the shape
//! the document declares; the API tests check every answer against it).

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HttpMethod, OpenApi as Document, Ref};
use utoipa::{Modify, OpenApi};

use super::{account, auth, browser, health, metrics, room, users};

/// The API, as its handlers declare it.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "spotauth",
        description = "Multi-user Spotify authentication: OAuth 2.0 + PKCE login, encrypted Spotify tokens kept fresh, Premium checks, rotating app sessions, session management, listening together. Errors are RFC 9457 problem details with a stable `code` and the request's `requestId`; every answer carries `X-Request-Id`."
    ),
    paths(
        auth::login,
        auth::callback,
        auth::refresh,
        auth::token,
        auth::replace_token,
        auth::logout,
        auth::subscription,
        users::me,
        users::active,
        users::set_active,
        account::list,
        account::end_one,
        account::end_others,
        account::delete_account,
        room::report_player,
        room::leave,
        room::play,
        room::pause,
        room::events,
        browser::config,
        browser::client_js,
        browser::client_types,
        browser::room,
        browser::room_js,
        browser::room_css,
        health::healthz,
        health::readyz,
        metrics::metrics,
        spec,
    ),
    modifiers(&Common),
    tags(
        (name = "auth", description = "Login with Spotify, session rotation, Spotify access tokens, logout"),
        (name = "users", description = "The current user and who is here"),
        (name = "sessions", description = "Where I am signed in; ending sessions; deleting my account"),
        (name = "room", description = "Listening together: players, group playback, live updates"),
        (name = "browser", description = "What pages load: configuration, the client module, the room page"),
        (name = "operations", description = "Liveness, readiness, metrics, this document"),
    )
)]
pub struct ApiDoc;

/// `GET /openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json", body = Object)),
)]
pub async fn spec() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(json())
}

/// The document as JSON (built once).
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_pretty_json().unwrap_or_default())
}

/// What every operation shares, added in one place rather than on each handler: the security
/// schemes, `X-Request-Id` on every answer, and the problems any API call may meet (a body or
/// query that does not parse, a cross-site write, the store or an internal fault).
struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "sessionCookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("__Host-spotauth_session"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            let api = path.starts_with("/api/");
            let guarded = ["/api/auth/spotify/", "/api/users/", "/api/room/"].iter().any(|p| path.starts_with(p));
            for (method, op) in operations(item) {
                let write = !matches!(method, HttpMethod::Get | HttpMethod::Head | HttpMethod::Options);
                if op.request_body.is_some() {
                    add(op, "400", "invalid_json: the body is not the JSON described");
                    add(op, "413", "payload_too_large");
                    add(op, "415", "unsupported_media_type: send Content-Type: application/json");
                }
                let in_query = |p: &utoipa::openapi::path::Parameter| p.parameter_in == ParameterIn::Query;
                if op.parameters.as_ref().is_some_and(|p| p.iter().any(in_query)) {
                    add(op, "400", "invalid_query: the query string does not parse");
                }
                if guarded && write {
                    add(
                        op,
                        "403",
                        "cross_origin_refused: a cookie-carrying write from an origin that is not the service's, FRONTEND_URL's or in CORS_ALLOWED_ORIGINS",
                    );
                }
                if api {
                    add(op, "500", "internal: logged under the requestId");
                    add(op, "503", "store_unavailable, with Retry-After");
                }
                for response in op.responses.responses.values_mut() {
                    if let utoipa::openapi::RefOr::T(r) = response {
                        r.headers.insert(
                            "X-Request-Id".to_owned(),
                            utoipa::openapi::header::HeaderBuilder::new()
                                .schema(utoipa::openapi::schema::Object::with_type(
                                    utoipa::openapi::schema::Type::String,
                                ))
                                .description(Some("The request's id: the caller's plain one, or a new UUID"))
                                .build(),
                        );
                    }
                }
            }
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> Vec<(HttpMethod, &mut Operation)> {
    let all = [
        (HttpMethod::Get, item.get.as_mut()),
        (HttpMethod::Put, item.put.as_mut()),
        (HttpMethod::Post, item.post.as_mut()),
        (HttpMethod::Delete, item.delete.as_mut()),
        (HttpMethod::Patch, item.patch.as_mut()),
    ];
    all.into_iter().filter_map(|(m, op)| op.map(|op| (m, op))).collect()
}

/// Adds a problem answer for `status` unless the operation declares that status already.
fn add(op: &mut Operation, status: &str, description: &str) {
    if op.responses.responses.contains_key(status) {
        return;
    }
    op.responses.responses.insert(status.to_owned(), problem(description).into());
}

fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
        )
        .build()
}
