//! `GET /openapi.json`: OpenAPI 3.1 description of the whole API.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use serde_json::{Value, json};

/// `GET /openapi.json`.
pub async fn spec() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(document().to_string())
}

fn problem(description: &str) -> Value {
    json!({"description": description, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

fn ok(schema: &str, description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

/// The document (built once).
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let auth = json!([{"sessionCookie": []}, {"bearer": []}]);
        json!({
            "openapi": "3.1.0",
            "info": {
                "title": "spotauth",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "Multi-user Spotify authentication: OAuth 2.0 + PKCE login, encrypted Spotify tokens kept fresh, Premium checks, rotating app sessions. Errors are RFC 9457 problem details with a stable `code`."
            },
            "paths": {
                "/api/auth/spotify/login": {"post": {
                    "summary": "Start a Spotify login",
                    "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LoginRequest"}}}},
                    "responses": {
                        "200": ok("LoginResponse", "Authorize URL; sets the short-lived login cookie that binds state and PKCE verifier to this browser"),
                        "400": problem("Malformed body or a returnTo that is not a same-origin relative path (invalid_return_to)"),
                        "413": problem("Body too large"),
                        "403": problem("cross_origin_refused: a browser request from an origin that is not the service's, FRONTEND_URL's or in CORS_ALLOWED_ORIGINS"),
                        "429": problem("rate_limited (this client's budget is spent) or too_many_logins (too many unfinished logins), with Retry-After"),
                    }
                }},
                "/api/auth/spotify/callback": {"get": {
                    "summary": "Spotify's redirect target",
                    "parameters": [
                        {"name": "code", "in": "query", "schema": {"type": "string"}},
                        {"name": "state", "in": "query", "schema": {"type": "string"}},
                        {"name": "error", "in": "query", "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "303": {"description": "To FRONTEND_URL (+returnTo) with the session cookie (and the logged-out mark cleared), or to FRONTEND_URL?error=<code>: state_missing, state_mismatch, state_unknown, login_expired, state_reused, code_refused, access_denied, authorization_error, premium_required, not_allow_listed, rate_limited (this client's budget is spent; with retryAfter=<seconds>), spotify_rate_limited (with retryAfter=<seconds>; no call to Spotify was made), spotify_unavailable, login_failed"},
                    }
                }},
                "/api/auth/spotify/refresh": {"post": {
                    "summary": "Rotate the session and get a fresh Spotify access token",
                    "security": auth,
                    "responses": {
                        "200": ok("AccessToken", "New session cookie (Bearer clients also get sessionToken). The old token still works for SESSION_ROTATION_GRACE_SECS (refreshing with it again returns the same current token); presented after that, it revokes the session"),
                        "401": problem("unauthenticated, or spotify_reauth_required"),
                        "403": problem("cross_origin_refused"),
                        "429": problem("rate_limited, with Retry-After"),
                        "503": problem("spotify_unavailable or spotify_rate_limited, with Retry-After"),
                    }
                }},
                "/api/auth/spotify/token": {"get": {
                    "summary": "A valid Spotify access token for the Web Playback SDK's getOAuthToken",
                    "security": auth,
                    "responses": {
                        "200": ok("AccessToken", "Refreshed only when near expiry"),
                        "401": problem("unauthenticated, or spotify_reauth_required after invalid_grant"),
                        "403": problem("premium_required for a user known to be on a free plan"),
                        "503": problem("spotify_unavailable or spotify_rate_limited, with Retry-After"),
                    }
                }, "post": {
                    "summary": "Replace an access token the Web Playback SDK refused (it asks getOAuthToken again only when the token it holds stopped working)",
                    "description": "While the refused token is still the stored one it is refreshed now (one refresh however many tabs report it); once replaced, the current token is served without a call. The refused token is never served back.",
                    "security": auth,
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RefusedToken"}}}},
                    "responses": {
                        "200": ok("AccessToken", "A token other than the refused one"),
                        "400": problem("invalid_json or invalid_token"),
                        "401": problem("unauthenticated, or spotify_reauth_required after invalid_grant"),
                        "403": problem("premium_required, or cross_origin_refused"),
                        "429": problem("rate_limited, with Retry-After"),
                        "503": problem("spotify_unavailable or spotify_rate_limited, with Retry-After"),
                    }
                }},
                "/api/room/player": {"put": {
                    "summary": "Report this page's Web Playback SDK player (on ready, on a change, and every 30 s as a heartbeat)",
                    "description": "A device id not stored for this user yet is checked against the user's own Spotify devices first. A player not reported for ROOM_PLAYER_STALE_SECS is gone.",
                    "security": auth,
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PlayerReport"}}}},
                    "responses": {
                        "204": {"description": "Stored"},
                        "400": problem("invalid_json, invalid_device or invalid_track"),
                        "401": problem("unauthenticated, or spotify_reauth_required"),
                        "403": problem("premium_required, or cross_origin_refused"),
                        "404": problem("device_not_found: not (yet) one of this account's Spotify devices; retry in a moment"),
                        "503": problem("spotify_unavailable or spotify_rate_limited, with Retry-After"),
                    }
                }, "delete": {
                    "summary": "This page's player went away (idempotent)",
                    "security": auth,
                    "parameters": [{"name": "deviceId", "in": "query", "required": true, "schema": {"type": "string"}}],
                    "responses": {"204": {"description": "Forgotten"}, "400": problem("invalid_device"), "401": problem("unauthenticated")}
                }},
                "/api/room/play": {"post": {
                    "summary": "Start the same music for everyone present (live session, not opted out, a live player), each on their own account and device",
                    "description": "Each person's token is made fresh first (single flight); calls run in parallel (ROOM_CONCURRENCY); a device that answers 404 gets one transfer and one retry; a 429 backs off the rest and later calls. Free accounts get no call. Who may start: anyone present, or ROOM_HOSTS.",
                    "security": auth,
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GroupPlay"}}}},
                    "responses": {
                        "200": ok("GroupOutcomes", "Each person's outcome; never a token"),
                        "400": problem("invalid_target"),
                        "401": problem("unauthenticated"),
                        "403": problem("not_host, or cross_origin_refused"),
                    }
                }},
                "/api/room/pause": {"post": {
                    "summary": "Pause everyone present, each on their own account",
                    "security": auth,
                    "responses": {"200": ok("GroupOutcomes", "Each person's outcome (paused, ...)"), "401": problem("unauthenticated"), "403": problem("not_host")}
                }},
                "/api/room/events": {"get": {
                    "summary": "Live updates of the room (Server-Sent Events)",
                    "description": "`event: room` with `data: {\"version\": N}` at once and whenever presence or players change: at once for changes on this instance, within ROOM_EVENTS_POLL_MS for changes on other instances, and once a minute when idle. `: keepalive` every 15 s between. Pages re-read /api/users/active on each event.",
                    "security": auth,
                    "responses": {"200": {"description": "An event stream", "content": {"text/event-stream": {}}}, "401": problem("unauthenticated")}
                }},
                "/api/config": {"get": {
                    "summary": "What a page needs to know: the Web Playback SDK script to load (SPOTIFY_SDK_URL) and Spotify's Web API base",
                    "responses": {"200": ok("ClientConfig", "Public; the same for everyone")}
                }},
                "/client/spotauth.js": {"get": {
                    "summary": "The browser client (an ES module, no build step): login, logout, me, activeUsers, setActive, a ready-made getOAuthToken for the SDK, automatic session rotation, typed outcomes",
                    "responses": {"200": {"description": "JavaScript; readable with CORS by the trusted origins", "content": {"text/javascript": {}}}}
                }},
                "/client/spotauth.d.ts": {"get": {
                    "summary": "The browser client's TypeScript types",
                    "responses": {"200": {"description": "TypeScript declarations", "content": {"text/plain": {}}}}
                }},
                "/": {"get": {
                    "summary": "The listening room (when ROOM_PAGE is on: by default in development only)",
                    "responses": {"200": {"description": "HTML, under a Content-Security-Policy allowing only itself, the SDK's origin and the Web API's", "content": {"text/html": {}}}, "404": problem("not_found: ROOM_PAGE is off")}
                }},
                "/api/auth/spotify/logout": {"post": {
                    "summary": "Log out: scope=everywhere (default) ends every session of the user and disconnects Spotify (deletes the stored tokens); scope=device ends this session only",
                    "description": "Works with an expired session token, or one whose session already ended, as long as it was issued within the absolute session lifetime. The session cookie is cleared in every answer. A successful logout also marks the browser as logged out, so its next login asks Spotify for the account chooser (show_dialog=true).",
                    "security": auth,
                    "parameters": [{"name": "scope", "in": "query", "schema": {"type": "string", "enum": ["everywhere", "device"], "default": "everywhere"}}],
                    "responses": {
                        "200": ok("LogoutResult", "What was done"),
                        "400": problem("invalid_scope"),
                        "401": problem("unauthenticated: no user could be identified; nothing was logged out or disconnected"),
                        "403": problem("cross_origin_refused"),
                    }
                }},
                "/api/auth/spotify/subscription": {"get": {
                    "summary": "Premium status (re-checked with Spotify when stale)",
                    "security": auth,
                    "responses": {"200": ok("Subscription", "isPremium is null when unknown"), "401": problem("unauthenticated")}
                }},
                "/api/users/me": {"get": {
                    "summary": "The current user",
                    "security": auth,
                    "responses": {"200": ok("User", "Public fields, never a token"), "401": problem("unauthenticated")}
                }},
                "/api/users/active": {"get": {
                    "summary": "People signed in now (a live session) who have not opted out, most recently active first; only what a party page needs",
                    "security": auth,
                    "parameters": [
                        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}}
                    ],
                    "responses": {"200": ok("ActiveUsers", "One page"), "400": problem("invalid_page"), "401": problem("unauthenticated")}
                }},
                "/api/users/me/active": {"put": {
                    "summary": "Show or hide the current user in the active list",
                    "security": auth,
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SetActive"}}}},
                    "responses": {"200": ok("User", "The updated user"), "400": problem("invalid_json"), "401": problem("unauthenticated"), "403": problem("cross_origin_refused")}
                }},
                "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "Alive"}}}},
                "/readyz": {"get": {"summary": "Readiness (database reachable)", "responses": {"200": {"description": "Ready"}, "503": problem("not_ready")}}},
                "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}}
            },
            "components": {
                "securitySchemes": {
                    "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "__Host-spotauth_session"},
                    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                },
                "schemas": {
                    "Problem": {"type": "object", "required": ["type", "title", "status", "code"], "properties": {
                        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                        "detail": {"type": "string"}, "code": {"type": "string"}, "retryAfter": {"type": "integer"}}},
                    "LoginRequest": {"type": "object", "additionalProperties": false, "properties": {"returnTo": {"type": "string", "pattern": "^/(?![/\\\\])"}}},
                    "LoginResponse": {"type": "object", "required": ["authorizeUrl"], "properties": {"authorizeUrl": {"type": "string", "format": "uri"}}},
                    "AccessToken": {"type": "object", "required": ["accessToken", "expiresAt", "expiresIn"], "properties": {
                        "accessToken": {"type": "string"}, "expiresAt": {"type": "string", "format": "date-time"},
                        "expiresIn": {"type": "integer"}, "sessionToken": {"type": "string"}}},
                    "Subscription": {"type": "object", "required": ["isPremium", "source"], "properties": {
                        "isPremium": {"type": ["boolean", "null"]}, "product": {"type": ["string", "null"]},
                        "checkedAt": {"type": ["string", "null"], "format": "date-time"},
                        "source": {"type": "string", "enum": ["profile", "player_probe", "playback_sdk", "none"]}}},
                    "User": {"type": "object", "properties": {
                        "id": {"type": "string", "format": "uuid"}, "spotifyId": {"type": "string"},
                        "displayName": {"type": ["string", "null"]}, "isActive": {"type": "boolean"},
                        "isPremium": {"type": ["boolean", "null"]}, "premiumSource": {"type": "string"},
                        "lastActive": {"type": "string", "format": "date-time"}, "createdAt": {"type": "string", "format": "date-time"},
                        "spotifyConnected": {"type": "boolean"}, "reauthRequired": {"type": "boolean"}}},
                    "ActiveUsers": {"type": "object", "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Presence"}},
                        "total": {"type": "integer"}, "offset": {"type": "integer"}, "limit": {"type": "integer"}}},
                    "Presence": {"type": "object", "required": ["id", "displayName", "canPlay", "lastSeen", "ready", "nowPlaying"], "additionalProperties": false, "properties": {
                        "id": {"type": "string", "format": "uuid", "description": "Opaque user id (not the Spotify id)"},
                        "displayName": {"type": ["string", "null"]},
                        "canPlay": {"type": ["boolean", "null"], "description": "Premium and connected; null while unknown"},
                        "lastSeen": {"type": "string", "format": "date-time", "description": "Rounded down to five minutes"},
                        "ready": {"type": "boolean", "description": "Premium (or not known to be free), connected, and a live player"},
                        "nowPlaying": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/NowPlaying"}]}}},
                    "NowPlaying": {"type": "object", "required": ["uri", "name", "isPlaying"], "properties": {
                        "uri": {"type": "string"}, "name": {"type": "string"}, "isPlaying": {"type": "boolean"}}},
                    "PlayerReport": {"type": "object", "required": ["deviceId", "name"], "additionalProperties": false, "properties": {
                        "deviceId": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"}, "name": {"type": "string", "minLength": 1, "maxLength": 200},
                        "nowPlaying": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/NowPlaying"}]}}},
                    "GroupPlay": {"type": "object", "additionalProperties": false, "properties": {
                        "uris": {"type": "array", "minItems": 1, "maxItems": 50, "items": {"type": "string"}},
                        "contextUri": {"type": "string"}, "positionMs": {"type": "integer", "minimum": 0}},
                        "description": "Exactly one of uris (tracks or episodes) and contextUri (album, playlist, artist, show)"},
                    "GroupOutcomes": {"type": "object", "required": ["outcomes"], "properties": {"outcomes": {"type": "array", "items": {
                        "type": "object", "required": ["id", "displayName", "outcome"], "properties": {
                            "id": {"type": "string", "format": "uuid"}, "displayName": {"type": ["string", "null"]},
                            "outcome": {"type": "string", "enum": ["started", "paused", "premium_required", "no_player", "reconnect_spotify", "rate_limited", "failed"]},
                            "retryAfter": {"type": "integer", "description": "Seconds, with rate_limited"}}}}}},
                    "LogoutResult": {"type": "object", "required": ["scope", "sessionsEnded", "spotifyDisconnected"], "properties": {
                        "scope": {"type": "string", "enum": ["everywhere", "device"]},
                        "sessionsEnded": {"type": "integer", "minimum": 0},
                        "spotifyDisconnected": {"type": "boolean"}}},
                    "RefusedToken": {"type": "object", "required": ["refused"], "additionalProperties": false, "properties": {"refused": {"type": "string", "minLength": 1, "description": "The access token the SDK refused"}}},
                    "ClientConfig": {"type": "object", "required": ["sdkUrl", "spotifyApiUrl"], "properties": {
                        "sdkUrl": {"type": "string", "format": "uri"}, "spotifyApiUrl": {"type": "string", "format": "uri"}}},
                    "SetActive": {"type": "object", "required": ["isActive"], "additionalProperties": false, "properties": {"isActive": {"type": "boolean"}}}
                }
            }
        })
    })
}
