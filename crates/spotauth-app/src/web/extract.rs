//! What a request carries: the session token, the authenticated session (an extractor), and
//! where the request comes from.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use spotauth_domain::service::Authenticated;
use spotauth_domain::session::SessionMeta;

use super::cookies::{CookieValue, read_exact};
use super::{AppState, Cookies, TrustedProxies};
use crate::problem::Problem;

/// How the caller presented its session token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer`.
    Bearer,
    /// The session cookie.
    Cookie,
}

/// The session token a request presents, from `Authorization: Bearer` or the session cookie.
/// Its `Debug` never prints the token.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionTokenIn {
    /// The token as sent.
    pub token: String,
    /// Where it came from.
    pub source: TokenSource,
}

impl SessionTokenIn {
    /// The token of `req`, if it presents one; `Err` when its session cookie is ambiguous (see
    /// [`CookieValue::Ambiguous`]): such a request is refused, never served as anonymous. A
    /// request with any `Authorization` header is never authenticated by the cookie: the
    /// cross-origin guard exempts exactly those requests (`web::csrf`).
    pub fn of(req: &HttpRequest, cookies: &Cookies) -> Result<Option<Self>, Problem> {
        if let Some(value) = req.headers().get(header::AUTHORIZATION) {
            let Ok(value) = value.to_str() else { return Ok(None) };
            let Some((scheme, token)) = value.split_once(' ') else { return Ok(None) };
            return Ok(scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| SessionTokenIn { token: token.trim().to_owned(), source: TokenSource::Bearer }));
        }
        match read_exact(req, cookies.session_name()) {
            CookieValue::Absent => Ok(None),
            CookieValue::One(token) if token.is_empty() => Ok(None),
            CookieValue::One(token) => Ok(Some(SessionTokenIn { token, source: TokenSource::Cookie })),
            CookieValue::Ambiguous => {
                tracing::debug!("refused a request whose session cookie is ambiguous");
                Err(Problem::unauthenticated())
            }
        }
    }
}

impl std::fmt::Debug for SessionTokenIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTokenIn").field("token", &"[redacted]").field("source", &self.source).finish()
    }
}

/// The caller's verified session, or a 401 problem before the handler runs:
/// `async fn me(Auth(auth): Auth) -> …`.
#[derive(Debug, Clone)]
pub struct Auth(pub Authenticated);

impl FromRequest for Auth {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = state.as_ref().map(|s| SessionTokenIn::of(req, &s.cookies));
        Box::pin(async move {
            let (Some(state), Some(token)) = (state, token.transpose()?.flatten()) else {
                return Err(Problem::unauthenticated());
            };
            Ok(Auth(state.service.authenticate(&token.token).await?))
        })
    }
}

/// Where a request comes from, for the session row: its user agent, and the client address
/// (behind a trusted proxy, the one the proxy reports).
pub fn session_meta(req: &HttpRequest, proxies: &TrustedProxies) -> SessionMeta {
    let ua = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    SessionMeta::new(ua, proxies.client_ip(req).map(|ip| ip.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_session_token() {
        let t = SessionTokenIn { token: "eyJ.secret.sig".into(), source: TokenSource::Bearer };
        let printed = format!("{t:?}");
        assert!(!printed.contains("eyJ.secret"), "{printed}");
    }
}
