//! Cookie policy: names, attributes, and the login cookie's contents.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use spotauth_domain::secret::{OAuthState, PkceVerifier};
use spotauth_domain::time::Timestamp;

/// Cookie policy: `__Host-` prefix and `Secure` unless turned off for plain-HTTP development.
#[derive(Debug, Clone, Copy)]
pub struct Cookies {
    secure: bool,
}

impl Cookies {
    /// The policy.
    pub fn new(secure: bool) -> Self {
        Cookies { secure }
    }

    /// The session cookie's name.
    pub fn session_name(&self) -> &'static str {
        if self.secure { "__Host-spotauth_session" } else { "spotauth_session" }
    }

    /// The login-flow cookie's name.
    pub fn login_name(&self) -> &'static str {
        if self.secure { "__Host-spotauth_login" } else { "spotauth_login" }
    }

    fn build(&self, name: &'static str, value: String, max_age: CookieDuration) -> String {
        Cookie::build(name, value)
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .path("/")
            .max_age(max_age)
            .finish()
            .to_string()
    }

    /// `Set-Cookie` for a session token valid until `expires_at`.
    pub fn session(&self, token: &str, now: Timestamp, expires_at: Timestamp) -> String {
        let secs = expires_at.since(now).as_secs();
        self.build(self.session_name(), token.to_owned(), CookieDuration::seconds(i64::try_from(secs).unwrap_or(0)))
    }

    /// `Set-Cookie` that deletes the session cookie.
    pub fn clear_session(&self) -> String {
        self.build(self.session_name(), String::new(), CookieDuration::ZERO)
    }

    /// `Set-Cookie` binding a login attempt (state and PKCE verifier) to this browser.
    pub fn login(&self, state: &OAuthState, verifier: &PkceVerifier, now: Timestamp, expires_at: Timestamp) -> String {
        let secs = i64::try_from(expires_at.since(now).as_secs()).unwrap_or(0);
        self.build(
            self.login_name(),
            format!("{}.{}", state.expose(), verifier.expose()),
            CookieDuration::seconds(secs),
        )
    }

    /// `Set-Cookie` that deletes the login cookie.
    pub fn clear_login(&self) -> String {
        self.build(self.login_name(), String::new(), CookieDuration::ZERO)
    }

    /// The login attempt bound to this browser, if its cookie is present and well-formed.
    pub fn read_login(&self, req: &HttpRequest) -> Option<(OAuthState, PkceVerifier)> {
        let cookie = req.cookie(self.login_name())?;
        let (state, verifier) = cookie.value().split_once('.')?;
        Some((OAuthState::new(state).ok()?, PkceVerifier::new(verifier).ok()?))
    }
}
