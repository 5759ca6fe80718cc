//! Cookie policy: names, attributes, and the login cookie's contents.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::header;
use percent_encoding::percent_decode_str;
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

    /// The cookie that says "someone logged out in this browser": the next login asks Spotify
    /// for its account chooser.
    pub fn switch_name(&self) -> &'static str {
        if self.secure { "__Host-spotauth_switch" } else { "spotauth_switch" }
    }

    /// `Set-Cookie` marking this browser as logged out (kept 30 days: the next login, whenever
    /// it comes, shows Spotify's account chooser).
    pub fn switch_account(&self) -> String {
        self.build(self.switch_name(), "1".to_owned(), CookieDuration::days(30))
    }

    /// `Set-Cookie` that deletes the logged-out mark (a login completed).
    pub fn clear_switch(&self) -> String {
        self.build(self.switch_name(), String::new(), CookieDuration::ZERO)
    }

    /// Whether the browser logged out since its last login (any value of the mark counts; it
    /// only ever adds a question, so a planted one does no harm).
    pub fn wants_account_choice(&self, req: &HttpRequest) -> bool {
        read_exact(req, self.switch_name()) != CookieValue::Absent
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

    /// The login attempt bound to this browser, if exactly one login cookie is present and
    /// well-formed; a planted look-alike makes it absent (the callback then refuses the login).
    pub fn read_login(&self, req: &HttpRequest) -> Option<(OAuthState, PkceVerifier)> {
        let CookieValue::One(value) = read_exact(req, self.login_name()) else {
            return None;
        };
        let (state, verifier) = value.split_once('.')?;
        Some((OAuthState::new(state).ok()?, PkceVerifier::new(verifier).ok()?))
    }
}

/// What a request's `Cookie` headers hold under one of our names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieValue {
    /// No cookie has the name.
    Absent,
    /// Exactly one cookie has it, spelled byte for byte.
    One(String),
    /// Several cookies have it, or one spells it so that a lenient reader would take it for
    /// ours (percent-encoded like `__%48ost-`, or in another case): a sibling subdomain or an
    /// on-path attacker may have planted it, and browsers guard only the literal `__Host-`
    /// prefix, so none of them is trusted.
    Ambiguous,
}

/// Reads the cookie `name` byte for byte from the raw `Cookie` headers. actix's own cookie
/// jar percent-decodes names, which would let `__%48ost-spotauth_session` pass for
/// `__Host-spotauth_session`.
pub fn read_exact(req: &HttpRequest, name: &str) -> CookieValue {
    let mut found = CookieValue::Absent;
    let pairs = req.headers().get_all(header::COOKIE).filter_map(|h| h.to_str().ok()).flat_map(|h| h.split(';'));
    for pair in pairs {
        let (raw_name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let raw_name = raw_name.trim();
        if raw_name == name {
            found = match found {
                CookieValue::Absent => CookieValue::One(value.trim().to_owned()),
                _ => CookieValue::Ambiguous,
            };
        } else if percent_decode_str(raw_name).decode_utf8_lossy().eq_ignore_ascii_case(name) {
            return CookieValue::Ambiguous;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    const NAME: &str = "__Host-spotauth_session";

    fn read(cookie_headers: &[&str]) -> CookieValue {
        let mut req = TestRequest::default();
        for h in cookie_headers {
            req = req.append_header((header::COOKIE, *h));
        }
        read_exact(&req.to_http_request(), NAME)
    }

    #[test]
    fn only_the_exact_name_is_ours_and_look_alikes_make_it_ambiguous() {
        assert_eq!(read(&[]), CookieValue::Absent);
        assert_eq!(read(&["other=1; __Host-spotauth_session=tok ; x=y"]), CookieValue::One("tok".into()));
        assert_eq!(read(&["__Host-spotauth_sessionX=tok"]), CookieValue::Absent);
        for planted in [
            "__%48ost-spotauth_session=evil",
            "__host-spotauth_session=evil",
            "__Host-spotauth%5Fsession=evil",
            "__%48ost-spotauth_session=evil; __Host-spotauth_session=tok",
        ] {
            assert_eq!(read(&[planted]), CookieValue::Ambiguous, "{planted}");
        }
        assert_eq!(read(&["__Host-spotauth_session=a; __Host-spotauth_session=b"]), CookieValue::Ambiguous);
        assert_eq!(read(&["__Host-spotauth_session=a", "__Host-spotauth_session=b"]), CookieValue::Ambiguous);
    }

    proptest::proptest! {
        /// Any `Cookie` header text: no panic, and only the exact name ever yields a value.
        #[test]
        fn any_cookie_header_is_read_without_panic(header in "[ -~]{0,200}") {
            if let CookieValue::One(value) = read(&[&header]) {
                let ours = |pair: &str| pair.split_once('=').is_some_and(|(n, v)| n.trim() == NAME && v.trim() == value);
                proptest::prop_assert!(header.split(';').any(ours));
            }
        }

        /// Our cookie among any other cookies (names that do not spell ours) is read as is.
        #[test]
        fn our_cookie_among_others_is_found(
            others in proptest::collection::vec(("[A-Za-z0-9_-]{1,20}", "[A-Za-z0-9.]{0,20}"), 0..5),
            value in "[A-Za-z0-9._-]{1,60}",
            at in 0usize..5,
        ) {
            let mut pairs: Vec<String> = others
                .iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case(NAME))
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            pairs.insert(at.min(pairs.len()), format!("{NAME}={value}"));
            proptest::prop_assert_eq!(read(&[&pairs.join("; ")]), CookieValue::One(value));
        }
    }
}
