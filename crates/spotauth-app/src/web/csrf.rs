//! Cross-site request forgery defence beyond `SameSite=Lax`, for every unsafe method under
//! `/api`: the algorithm of Go's `http.CrossOriginProtection`. A browser says where a request
//! comes from (`Sec-Fetch-Site`, else `Origin`); a request from another origin is refused
//! unless that origin is trusted (the frontend's, `CORS_ALLOWED_ORIGINS`). Requests with
//! `Authorization` (Bearer clients, which a browser never adds cross-site by itself) and
//! requests with neither header (non-browser clients) pass.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError, web};
use url::Url;

use super::AppState;
use crate::problem::Problem;

/// The origins whose pages may call the API with the session cookie (besides the service's
/// own, recognised by the `Host` header).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedOrigins(Vec<String>);

/// Why a `CORS_ALLOWED_ORIGINS` entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CORS_ALLOWED_ORIGINS must be a comma-separated list of origins such as https://app.example.com")]
pub struct OriginError;

impl TrustedOrigins {
    /// The frontend's origin plus each of `extra` (`scheme://host[:port]`, nothing more).
    pub fn new<'a>(frontend: &Url, extra: impl IntoIterator<Item = &'a str>) -> Result<Self, OriginError> {
        let mut origins = vec![frontend.origin().ascii_serialization()];
        for entry in extra.into_iter().map(str::trim).filter(|s| !s.is_empty()) {
            let url = Url::parse(entry).map_err(|_| OriginError)?;
            let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none() && !entry.ends_with('/');
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || !bare {
                return Err(OriginError);
            }
            origins.push(url.origin().ascii_serialization());
        }
        Ok(TrustedOrigins(origins))
    }

    /// Whether `origin` (an `Origin` header's value) is one of them, byte for byte.
    pub fn contains(&self, origin: &str) -> bool {
        self.0.iter().any(|o| o == origin)
    }

    /// The origins, the frontend's first.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether a request with this method and these headers may proceed; `authority` is the
    /// request target's (HTTP/2's `:authority`), used when there is no `Host` header.
    pub fn allows(&self, method: &Method, headers: &header::HeaderMap, authority: Option<&str>) -> bool {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
            || headers.contains_key(header::AUTHORIZATION)
        {
            return true;
        }
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let origin = text(header::ORIGIN);
        match text(header::HeaderName::from_static("sec-fetch-site")) {
            Some("same-origin" | "none") => true,
            Some(_) => origin.is_some_and(|o| self.contains(o)),
            None => match origin {
                None => true,
                Some(o) => {
                    let host = text(header::HOST).or(authority);
                    let same_host = Url::parse(o).ok().is_some_and(|u| {
                        let authority = match u.port() {
                            Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
                            None => u.host_str().unwrap_or_default().to_owned(),
                        };
                        host == Some(authority.as_str())
                    });
                    same_host || self.contains(o)
                }
            },
        }
    }
}

/// The middleware: refuses a cross-origin unsafe request with 403 `cross_origin_refused`
/// before any handler (so before any cookie is read or anything is written).
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let authority = req.uri().authority().map(|a| a.as_str());
    let allowed =
        req.app_data::<web::Data<AppState>>().is_some_and(|s| s.origins.allows(req.method(), req.headers(), authority));
    if allowed {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    tracing::debug!(path = req.path(), "refused a cross-origin request");
    let problem = Problem::new(StatusCode::FORBIDDEN, "cross_origin_refused", "Cross-origin request refused").detail(
        "This origin may not make changes with the session cookie. Add it to CORS_ALLOWED_ORIGINS if it is yours.",
    );
    Ok(req.into_response(problem.error_response()).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn cross_origin_unsafe_requests_are_refused_unless_trusted() {
        let frontend = Url::parse("https://app.example.com/rooms").unwrap();
        let origins = TrustedOrigins::new(&frontend, ["http://localhost:5173"]).unwrap();
        let post = Method::POST;
        let allowed = |h: &[(&'static str, &'static str)]| origins.allows(&post, &headers(h), None);
        assert!(allowed(&[]), "no browser headers: a non-browser client");
        assert!(allowed(&[("sec-fetch-site", "same-origin"), ("origin", "https://evil.example")]));
        assert!(allowed(&[("sec-fetch-site", "none")]));
        assert!(!allowed(&[("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")]));
        assert!(!allowed(&[("sec-fetch-site", "same-site"), ("origin", "https://evil.example.com")]));
        assert!(!allowed(&[("sec-fetch-site", "cross-site")]));
        assert!(allowed(&[("sec-fetch-site", "cross-site"), ("origin", "https://app.example.com")]));
        assert!(allowed(&[("sec-fetch-site", "same-site"), ("origin", "http://localhost:5173")]));
        assert!(!allowed(&[("origin", "https://evil.example"), ("host", "api.example.com")]));
        assert!(!allowed(&[("origin", "null"), ("host", "api.example.com")]));
        assert!(allowed(&[("origin", "https://api.example.com"), ("host", "api.example.com")]));
        assert!(allowed(&[("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")]));
        assert!(!allowed(&[("origin", "http://127.0.0.1:8081"), ("host", "127.0.0.1:8080")]));
        assert!(allowed(&[("origin", "https://app.example.com")]));
        assert!(allowed(&[("origin", "https://evil.example"), ("authorization", "Bearer x")]), "Bearer is exempt");
        assert!(origins.allows(&Method::GET, &headers(&[("sec-fetch-site", "cross-site")]), None), "safe methods pass");
        // HTTP/2 has no Host header: the request target's authority stands in for it.
        let h2 = headers(&[("origin", "https://api.example.com")]);
        assert!(origins.allows(&post, &h2, Some("api.example.com")));
        assert!(!origins.allows(&post, &headers(&[("origin", "https://evil.example")]), Some("api.example.com")));
    }

    #[test]
    fn allowed_origins_are_origins_only() {
        let frontend = Url::parse("https://app.example.com/").unwrap();
        for bad in ["app.example.com", "https://app.example.com/path", "ftp://x.example", "https://a.example/"] {
            assert!(TrustedOrigins::new(&frontend, [bad]).is_err(), "{bad}");
        }
        assert!(TrustedOrigins::new(&frontend, ["https://a.example:8443", " http://b.example "]).is_ok());
    }

    proptest::proptest! {
        /// A cross-site browser request from any origin that is not trusted is refused, whatever
        /// else it says; no header text makes the guard panic.
        #[test]
        fn untrusted_cross_site_writes_are_always_refused(origin in "[ -~]{0,80}", host in "[ -~]{0,40}") {
            let frontend = Url::parse("https://app.example.com/").unwrap();
            let origins = TrustedOrigins::new(&frontend, ["http://localhost:5173"]).unwrap();
            let mut map = HeaderMap::new();
            map.insert(HeaderName::from_static("sec-fetch-site"), HeaderValue::from_static("cross-site"));
            if let (Ok(o), Ok(h)) = (HeaderValue::from_str(&origin), HeaderValue::from_str(&host)) {
                map.insert(header::ORIGIN, o);
                map.insert(header::HOST, h);
            }
            let trusted = origin == "https://app.example.com" || origin == "http://localhost:5173";
            proptest::prop_assert_eq!(origins.allows(&Method::POST, &map, Some(&host)), trusted);
        }
    }
}
