//! The accounts service: `GET /authorize` and `POST /api/token` (RFC 6749 + RFC 7636 PKCE, as
//! Spotify runs them).

use std::collections::HashMap;
use std::time::SystemTime;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::config::{AUTHORIZATION_CODE_LIFETIME, EmulatorConfig, REFRESH_TOKEN_LIFETIME, RefreshMode};
use crate::faults::{self, Endpoint, Flavour};
use crate::state::{CodeRecord, Counted, Issued, Replaced, Shared, random_token};

/// Scopes Spotify knows.
pub const KNOWN_SCOPES: &[&str] = &[
    "ugc-image-upload",
    "user-read-playback-state",
    "user-modify-playback-state",
    "user-read-currently-playing",
    "app-remote-control",
    "streaming",
    "playlist-read-private",
    "playlist-read-collaborative",
    "playlist-modify-private",
    "playlist-modify-public",
    "user-follow-modify",
    "user-follow-read",
    "user-read-playback-position",
    "user-top-read",
    "user-read-recently-played",
    "user-library-modify",
    "user-library-read",
    "user-read-email",
    "user-read-private",
    "user-personalized",
    "user-soa-link",
    "user-soa-unlink",
    "soa-manage-entitlements",
    "soa-manage-partner",
    "soa-create-partner",
];

/// An RFC 6749 §5.2 error.
#[derive(Debug)]
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    /// Add `WWW-Authenticate: Basic` (401 after a failed HTTP Basic authentication).
    basic_challenge: bool,
}

#[derive(Serialize)]
struct OAuthErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl OAuthError {
    fn bad(error: &'static str, description: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, error, description: description.into(), basic_challenge: false }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::bad("invalid_request", description)
    }

    fn invalid_grant(description: impl Into<String>) -> Self {
        Self::bad("invalid_grant", description)
    }

    fn basic_failed() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: "Invalid client".to_owned(),
            basic_challenge: true,
        }
    }

    fn response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status);
        builder.insert_header((header::CACHE_CONTROL, "no-store")).insert_header((header::PRAGMA, "no-cache"));
        if self.basic_challenge {
            builder.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"spotify\""));
        }
        builder.json(OAuthErrorBody { error: self.error, error_description: &self.description })
    }
}

/// Parses form/query parameters; a repeated parameter is an `invalid_request` (RFC 6749 §3.1).
fn parse_params(raw: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if out.insert(k.clone().into_owned(), v.into_owned()).is_some() {
            return Err(OAuthError::invalid_request(format!("parameter `{k}` given more than once")));
        }
    }
    Ok(out)
}

fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> HttpResponse {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
            }
            HttpResponse::Found().insert_header((header::LOCATION, url.as_str())).finish()
        }
        Err(_) => OAuthError::invalid_request("Invalid redirect URI").response(),
    }
}

fn is_base64url_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// RFC 7636 verifier charset: ALPHA / DIGIT / "-" / "." / "_" / "~", 43–128 characters.
fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len()) && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `GET /authorize`.
///
/// Errors in `client_id` or `redirect_uri` answer 400 JSON and never redirect. Other request
/// errors redirect with `error=` (RFC 6749 §4.1.2.1). The user who logs in is `login_as=<id>`
/// (emulator-only), else the next queued login, else the user this browser last picked on the
/// chooser (unless `show_dialog=true`); with none of those, the chooser page lets a human pick
/// a test user. An unknown login user answers 400 JSON (a test set-up error, made loud).
/// `deny=1` (or a queued login with `deny`) makes the user decline: `error=access_denied`.
pub(crate) async fn authorize(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let params = parse_params(req.query_string().as_bytes());
    {
        let mut st = shared.lock();
        let login = params
            .as_ref()
            .ok()
            .and_then(|p| p.get("login_as").cloned())
            .or_else(|| st.next_logins.front().map(|l| l.user_id.clone()));
        st.count(Counted::Authorize, login.as_deref());
    }
    if let Some(resp) = faults::apply(&shared, &req, Endpoint::Authorize, Flavour::Accounts).await {
        return resp;
    }
    let params = match params {
        Ok(p) => p,
        Err(e) => return e.response(),
    };
    let get = |k: &str| params.get(k).map(String::as_str);

    let mut st = shared.lock();
    let config: &EmulatorConfig = &st.config;
    if get("client_id") != Some(config.client_id.as_str()) {
        return OAuthError::bad("invalid_client", "Invalid client").response();
    }
    let public_client = config.client_secret.is_none();
    let Some(redirect_uri) = get("redirect_uri") else {
        return OAuthError::invalid_request("Missing redirect URI").response();
    };
    if !config.redirect_uris.iter().any(|r| r == redirect_uri) {
        return OAuthError::invalid_request("Invalid redirect URI").response();
    }
    let state = get("state");
    // From here on, errors go back to the client by redirect.
    let fail = |error: &str, description: &str| {
        let mut pairs = vec![("error", error), ("error_description", description)];
        if let Some(s) = state {
            pairs.push(("state", s));
        }
        redirect_with(redirect_uri, &pairs)
    };
    match get("response_type") {
        Some("code") => {}
        Some(_) => return fail("unsupported_response_type", "response_type must be code"),
        None => return fail("invalid_request", "Missing response_type"),
    }
    let Some(state) = state.filter(|s| !s.is_empty()) else {
        return fail("invalid_request", "state is required");
    };
    let scope_raw = get("scope").unwrap_or("");
    let scopes: Vec<&str> = scope_raw.split(' ').filter(|s| !s.is_empty()).collect();
    if let Some(bad) = scopes.iter().find(|s| !KNOWN_SCOPES.contains(s)) {
        return fail("invalid_scope", &format!("Invalid scope: {bad}"));
    }
    let challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, None) if public_client => {
            return fail("invalid_request", "code_challenge is required");
        }
        (None, None) => None,
        (None, Some(_)) => return fail("invalid_request", "code_challenge is missing"),
        (Some(_), None) => return fail("invalid_request", "code_challenge_method is required"),
        (Some(_), Some(m)) if m != "S256" => {
            return fail("invalid_request", "code_challenge_method must be S256");
        }
        (Some(c), Some(_)) => {
            if !(43..=128).contains(&c.len()) || !c.chars().all(is_base64url_char) {
                return fail("invalid_request", "code_challenge is malformed");
            }
            Some(c.to_owned())
        }
    };

    // Who logs in? A test's choice, else the browser's Spotify login (silently, as Spotify
    // does) unless `show_dialog=true` asks for the account chooser.
    let deny_param = matches!(get("deny"), Some("1" | "true"));
    let remembered =
        req.cookie(BROWSER_LOGIN_COOKIE).map(|c| c.value().to_owned()).filter(|u| st.users.contains_key(u));
    let show_dialog = get("show_dialog") == Some("true");
    let choice = match get("login_as") {
        Some(user) => Some((user.to_owned(), deny_param)),
        None => st.next_logins.pop_front().map(|l| (l.user_id, l.deny || deny_param)),
    };
    let choice = match (choice, remembered) {
        (Some(choice), _) => choice,
        (None, Some(user)) if !show_dialog => (user, false),
        (None, remembered) => {
            return chooser_page(&req, &st.users.keys().cloned().collect::<Vec<_>>(), remembered.as_deref());
        }
    };
    let (user_id, deny) = choice;
    if !st.users.contains_key(&user_id) {
        return OAuthError::invalid_request(format!("emulator: unknown test user {user_id:?}")).response();
    }
    if deny {
        return redirect_with(redirect_uri, &[("error", "access_denied"), ("state", state)]);
    }
    let code = random_token("AQ", 96);
    let now = st.now();
    let grant_id = st.new_grant();
    let record = CodeRecord {
        client_id: st.config.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        user_id: user_id.clone(),
        scope: scopes.join(" "),
        code_challenge: challenge,
        expires_at: now.saturating_add(AUTHORIZATION_CODE_LIFETIME.as_secs()),
        used: false,
        grant_id,
    };
    st.codes.insert(code.clone(), record);
    drop(st);
    let mut resp = redirect_with(redirect_uri, &[("code", &code), ("state", state)]);
    if get("chooser") == Some("1") {
        // Picked on the chooser page: this browser is now logged in to "Spotify" as that user.
        let cookie = Cookie::build(BROWSER_LOGIN_COOKIE, user_id).path("/").http_only(true).same_site(SameSite::Lax);
        if let Err(e) = resp.add_cookie(&cookie.finish()) {
            tracing::warn!(error = %e, "emulator: cannot set the browser login cookie");
        }
    }
    resp
}

/// The emulator's stand-in for the browser's spotify.com login: the user last picked on the
/// chooser page. `/authorize` reuses it silently unless `show_dialog=true`.
const BROWSER_LOGIN_COOKIE: &str = "sp_emulator_login";

/// The account chooser, shown when no user was chosen by the test and the browser has no
/// remembered login, or when `show_dialog=true` asks for it (then with a "Not you?" line naming
/// the remembered user).
fn chooser_page(req: &HttpRequest, users: &[String], remembered: Option<&str>) -> HttpResponse {
    let query = req.query_string();
    let mut items = String::new();
    for id in users {
        let enc: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        let href = html_escape(&format!("/authorize?{query}&login_as={enc}&chooser=1"));
        let deny = html_escape(&format!("/authorize?{query}&login_as={enc}&deny=1"));
        let name = html_escape(id);
        items.push_str(&format!(
            "<li data-user=\"{name}\">{name}: <a href=\"{href}\">log in and agree</a> | <a href=\"{deny}\">cancel</a></li>\n"
        ));
    }
    let not_you = remembered.map_or_else(String::new, |u| {
        format!("<p id=\"not-you\">Logged in as {}. Not you? Choose another account.</p>", html_escape(u))
    });
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Spotify emulator: choose an account</title></head><body>\
         <h1 id=\"account-chooser\">Spotify emulator: choose an account</h1>{not_you}<ul>\n{items}</ul></body></html>"
    );
    HttpResponse::Ok().content_type(ContentType::html()).body(body)
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    scope: &'a str,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

fn token_ok(issued: &Issued) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(TokenResponse {
            access_token: &issued.access_token,
            token_type: "Bearer",
            scope: &issued.scope,
            expires_in: issued.expires_in,
            refresh_token: issued.refresh_token.as_deref(),
        })
}

fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// How the client authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    /// HTTP Basic with the right secret.
    Confidential,
    /// `client_id` in the body only (PKCE).
    Public,
}

/// Client authentication: HTTP Basic (`client_id:client_secret`) or, for a PKCE client,
/// `client_id` in the body. `client_secret` in the body is refused (Spotify documents Basic only).
fn authenticate(
    req: &HttpRequest,
    params: &HashMap<String, String>,
    config: &EmulatorConfig,
) -> Result<ClientAuth, OAuthError> {
    if params.contains_key("client_secret") {
        return Err(OAuthError::bad("invalid_client", "client_secret must be sent with HTTP Basic authentication"));
    }
    if let Some(auth) = req.headers().get(header::AUTHORIZATION) {
        let auth = auth.to_str().map_err(|_| OAuthError::basic_failed())?;
        let (scheme, creds) = auth.split_once(' ').ok_or_else(OAuthError::basic_failed)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(OAuthError::basic_failed());
        }
        let decoded = STANDARD
            .decode(creds.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(OAuthError::basic_failed)?;
        let (id, secret) = decoded.split_once(':').ok_or_else(OAuthError::basic_failed)?;
        let secret_ok = config.client_secret.as_deref() == Some(secret);
        if id != config.client_id || !secret_ok {
            return Err(OAuthError::basic_failed());
        }
        if params.get("client_id").is_some_and(|b| b != id) {
            return Err(OAuthError::invalid_request("client_id in body differs from HTTP Basic client"));
        }
        return Ok(ClientAuth::Confidential);
    }
    match params.get("client_id") {
        Some(id) if *id == config.client_id => Ok(ClientAuth::Public),
        Some(_) => Err(OAuthError::bad("invalid_client", "Invalid client")),
        None => Err(OAuthError::bad("invalid_client", "client authentication required")),
    }
}

/// `POST /api/token`.
pub(crate) async fn token(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let form = is_form(&req);
    let params = if form {
        parse_params(&body)
    } else {
        Err(OAuthError::invalid_request("Content-Type must be application/x-www-form-urlencoded"))
    };
    {
        let mut st = shared.lock();
        let p = params.as_ref().ok();
        let grant = p.and_then(|p| p.get("grant_type")).map(String::as_str);
        let (what, user) = match grant {
            Some("authorization_code") => (
                Counted::TokenAuthorizationCode,
                p.and_then(|p| p.get("code")).and_then(|c| st.codes.get(c)).map(|c| c.user_id.clone()),
            ),
            Some("refresh_token") => {
                (Counted::TokenRefreshToken, p.and_then(|p| p.get("refresh_token")).and_then(|t| st.presented(t)))
            }
            _ => (Counted::TokenOther, None),
        };
        st.count(what, user.as_deref());
    }
    if let Some(resp) = faults::apply(&shared, &req, Endpoint::Token, Flavour::Accounts).await {
        return resp;
    }
    let result = params.and_then(|params| {
        let mut st = shared.lock();
        let auth = authenticate(&req, &params, &st.config)?;
        match params.get("grant_type").map(String::as_str) {
            Some("authorization_code") => exchange_code(&mut st, &params, auth),
            Some("refresh_token") => refresh(&mut st, &params),
            Some(other) => {
                Err(OAuthError::bad("unsupported_grant_type", format!("grant_type {other:?} is not supported")))
            }
            None => Err(OAuthError::invalid_request("grant_type is required")),
        }
    });
    match result {
        Ok(issued) => token_ok(&issued),
        Err(e) => e.response(),
    }
}

fn exchange_code(
    st: &mut crate::state::Inner,
    params: &HashMap<String, String>,
    auth: ClientAuth,
) -> Result<Issued, OAuthError> {
    let code = params.get("code").ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri =
        params.get("redirect_uri").ok_or_else(|| OAuthError::invalid_request("redirect_uri is required"))?;
    let now = st.now();
    let record = st.codes.get_mut(code).ok_or_else(|| OAuthError::invalid_grant("Invalid authorization code"))?;
    if record.used {
        // A replayed code: revoke what it produced (RFC 6749 §4.1.2).
        let grant = record.grant_id;
        st.revoke_grant(grant);
        return Err(OAuthError::invalid_grant("Invalid authorization code"));
    }
    // Any attempt that names a live code consumes it, successful or not.
    record.used = true;
    let record = record.clone();
    if now >= record.expires_at {
        return Err(OAuthError::invalid_grant("Authorization code expired"));
    }
    if record.client_id != st.config.client_id {
        return Err(OAuthError::invalid_grant("Invalid authorization code"));
    }
    if *redirect_uri != record.redirect_uri {
        return Err(OAuthError::invalid_grant("Invalid redirect URI"));
    }
    match (&record.code_challenge, params.get("code_verifier")) {
        (Some(_), None) => {
            return Err(OAuthError::invalid_request("code_verifier required"));
        }
        (Some(challenge), Some(verifier)) => {
            if !valid_verifier(verifier) {
                return Err(OAuthError::invalid_request("code_verifier is malformed"));
            }
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if computed != *challenge {
                return Err(OAuthError::invalid_grant("code_verifier was incorrect"));
            }
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request("code_verifier given but the authorization had no code_challenge"));
        }
        (None, None) if auth == ClientAuth::Public => {
            return Err(OAuthError::bad("invalid_client", "client authentication required"));
        }
        (None, None) => {}
    }
    Ok(st.issue(&record.client_id, &record.user_id, &record.scope, record.grant_id, Some(now)))
}

fn refresh(st: &mut crate::state::Inner, params: &HashMap<String, String>) -> Result<Issued, OAuthError> {
    let token = params.get("refresh_token").ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let now = st.now();
    let record = st
        .refresh_tokens
        .get(token)
        .filter(|r| r.usable())
        .cloned()
        .ok_or_else(|| OAuthError::invalid_grant("Invalid refresh token"))?;
    if record.client_id != st.config.client_id {
        return Err(OAuthError::invalid_grant("Invalid refresh token"));
    }
    if now >= record.authorized_at.saturating_add(REFRESH_TOKEN_LIFETIME.as_secs()) {
        st.refresh_tokens.remove(token);
        return Err(OAuthError::invalid_grant("Refresh token expired"));
    }
    if !st.users.contains_key(&record.user_id) {
        return Err(OAuthError::invalid_grant("Invalid refresh token"));
    }
    let mode = st.refresh_mode_for(&record.user_id);
    let new_refresh = (mode != RefreshMode::Keep).then_some(record.authorized_at);
    let issued = st.issue(&record.client_id, &record.user_id, &record.scope, record.grant_id, new_refresh);
    if let (Some(successor), Some(used)) = (&issued.refresh_token, st.refresh_tokens.get_mut(token)) {
        // Kept (not removed) so that a later presentation is recognised as a reuse.
        used.replaced = Some(Replaced {
            at: SystemTime::now(),
            successor: successor.clone(),
            single_use: mode == RefreshMode::SingleUse,
        });
    }
    Ok(issued)
}
