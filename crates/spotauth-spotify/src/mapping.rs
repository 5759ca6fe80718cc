//! Mapping Spotify's answers into the domain's [`SpotifyError`] and [`PremiumProbe`]. Pure
//! functions over status, headers and body, so every row of the crate docs' error table is
//! unit-tested here and exercised against the emulator in `tests/`.
//!
//! No message built here contains a token, code, verifier or secret: token-endpoint
//! descriptions are Spotify's own words (sanitised and truncated), Web API messages are not
//! echoed at all, and transport errors are described without their URL.

use std::time::Duration;

use openidconnect::StandardErrorResponse;
use openidconnect::core::CoreErrorResponseType;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use spotauth_domain::ports::{PremiumProbe, SpotifyError};

/// `Retry-After` used when a 429 carries none (or one we cannot read).
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Longest `Retry-After` honoured (Spotify has been reported to send 86,400).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The wait a 429 asks for: `Retry-After` in whole seconds, clamped to 1 s..=24 h; missing or
/// unreadable (including the HTTP-date form, which Spotify does not use) → 1 s.
pub fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .map_or(DEFAULT_RETRY_AFTER, |d| d.clamp(Duration::from_secs(1), MAX_RETRY_AFTER))
}

/// Keeps a server-provided text printable and at most `max` characters long.
fn sanitise(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// Maps a non-2xx answer of `POST /api/token`.
pub fn token_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> SpotifyError {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return SpotifyError::RateLimited { retry_after: retry_after(headers) };
    }
    if status.is_server_error() {
        return SpotifyError::Unavailable(format!("POST /api/token answered {}", status.as_u16()));
    }
    let parsed: Option<StandardErrorResponse<CoreErrorResponseType>> = serde_json::from_slice(body).ok();
    let Some(parsed) = parsed else {
        return match status {
            StatusCode::UNAUTHORIZED => {
                SpotifyError::Misconfigured("POST /api/token answered 401 (client authentication failed)".into())
            }
            _ => SpotifyError::Protocol(format!("POST /api/token answered {} without an OAuth error", status.as_u16())),
        };
    };
    let description = parsed.error_description().map(|d| sanitise(d, 160)).unwrap_or_default();
    let mentions_redirect = description.to_ascii_lowercase().contains("redirect");
    let code = parsed.error();
    let detail = if description.is_empty() { code.to_string() } else { format!("{}: {description}", code) };
    match code {
        // A redirect URI that differs from the one the code was issued for is a configuration
        // problem (Spotify words it `invalid_grant` "Invalid redirect URI").
        CoreErrorResponseType::InvalidGrant if mentions_redirect => SpotifyError::Misconfigured(detail),
        CoreErrorResponseType::InvalidGrant => SpotifyError::ReauthRequired,
        CoreErrorResponseType::InvalidClient
        | CoreErrorResponseType::UnauthorizedClient
        | CoreErrorResponseType::InvalidScope => SpotifyError::Misconfigured(detail),
        CoreErrorResponseType::InvalidRequest if mentions_redirect => SpotifyError::Misconfigured(detail),
        CoreErrorResponseType::Extension(ext) if ext == "server_error" || ext == "temporarily_unavailable" => {
            SpotifyError::Unavailable(format!("POST /api/token answered {} {ext}", status.as_u16()))
        }
        _ => SpotifyError::Protocol(format!("POST /api/token answered {} {detail}", status.as_u16())),
    }
}

#[derive(Debug, Deserialize)]
struct ApiErrorBody {
    error: ApiErrorObject,
}

#[derive(Debug, Deserialize)]
struct ApiErrorObject {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// The `reason` and `message` of a Web API error body, when it is one.
pub(crate) fn api_error_parts(body: &[u8]) -> (Option<String>, Option<String>) {
    match serde_json::from_slice::<ApiErrorBody>(body) {
        Ok(b) => (b.error.reason, b.error.message),
        Err(_) => (None, None),
    }
}

/// Maps a non-2xx answer of a Web API call (other than the Premium probe's special cases).
pub fn api_error(endpoint: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> SpotifyError {
    match status {
        StatusCode::UNAUTHORIZED => SpotifyError::AccessTokenInvalid,
        StatusCode::TOO_MANY_REQUESTS => SpotifyError::RateLimited { retry_after: retry_after(headers) },
        StatusCode::FORBIDDEN => match api_error_parts(body).0.as_deref() {
            Some("PREMIUM_REQUIRED") => SpotifyError::PremiumRequired,
            _ => SpotifyError::NotAllowListed,
        },
        s if s.is_server_error() => SpotifyError::Unavailable(format!("{endpoint} answered {}", s.as_u16())),
        s => SpotifyError::Protocol(format!("{endpoint} answered {}", s.as_u16())),
    }
}

/// Maps the answer of the Premium probe (`GET /me/player`).
///
/// 2xx → Premium; 403 `PREMIUM_REQUIRED` → Free; 403 with another `reason` or about the scope
/// (`Insufficient client scope`: the token lacks `user-read-playback-state`) → Inconclusive;
/// any other 403 → `NotAllowListed`; 401, 429, 5xx → errors as [`api_error`]; anything else
/// (404, 400, ...) → Inconclusive.
pub fn probe_answer(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<PremiumProbe, SpotifyError> {
    if status.is_success() {
        return Ok(PremiumProbe::Premium);
    }
    match status {
        StatusCode::FORBIDDEN => {
            let (reason, message) = api_error_parts(body);
            match reason.as_deref() {
                Some("PREMIUM_REQUIRED") => Ok(PremiumProbe::Free),
                Some(_) => Ok(PremiumProbe::Inconclusive),
                None if message.is_some_and(|m| m.to_ascii_lowercase().contains("scope")) => {
                    Ok(PremiumProbe::Inconclusive)
                }
                None => Err(SpotifyError::NotAllowListed),
            }
        }
        StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS => {
            Err(api_error("GET /me/player", status, headers, body))
        }
        s if s.is_server_error() => Err(api_error("GET /me/player", status, headers, body)),
        _ => Ok(PremiumProbe::Inconclusive),
    }
}

/// Describes a transport failure without URL (it may carry a query), token or body.
pub fn transport_error(endpoint: &str, err: &reqwest::Error) -> SpotifyError {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_body() || err.is_decode() {
        "connection failed while reading the answer"
    } else {
        "request failed"
    };
    // The source chain of hyper/io errors names the cause ("connection closed before message
    // completed") and never the URL; reqwest's own Display would add the URL, so skip it.
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !causes.contains(&text) {
            causes.push(text);
        }
        source = s.source();
    }
    let msg = if causes.is_empty() {
        format!("{endpoint}: {kind}")
    } else {
        format!("{endpoint}: {kind}: {}", causes.join(": "))
    };
    SpotifyError::Unavailable(sanitise(&msg, 300))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn h(retry: Option<&str>) -> HeaderMap {
        let mut m = HeaderMap::new();
        if let Some(r) = retry {
            m.insert(RETRY_AFTER, HeaderValue::from_str(r).unwrap());
        }
        m
    }

    #[test]
    fn retry_after_parsing() {
        assert_eq!(retry_after(&h(Some("30"))), Duration::from_secs(30));
        assert_eq!(retry_after(&h(None)), DEFAULT_RETRY_AFTER);
        assert_eq!(retry_after(&h(Some("soon"))), DEFAULT_RETRY_AFTER);
        assert_eq!(retry_after(&h(Some("0"))), Duration::from_secs(1));
        assert_eq!(retry_after(&h(Some("999999999"))), MAX_RETRY_AFTER);
    }

    #[test]
    fn token_errors() {
        let e = |status: u16, body: &str| token_error(StatusCode::from_u16(status).unwrap(), &h(None), body.as_bytes());
        assert_eq!(
            e(400, r#"{"error":"invalid_grant","error_description":"Invalid refresh token"}"#),
            SpotifyError::ReauthRequired
        );
        assert!(matches!(
            e(400, r#"{"error":"invalid_grant","error_description":"Invalid redirect URI"}"#),
            SpotifyError::Misconfigured(_)
        ));
        assert!(matches!(
            e(401, r#"{"error":"invalid_client","error_description":"Invalid client"}"#),
            SpotifyError::Misconfigured(_)
        ));
        assert!(matches!(e(400, r#"{"error":"unauthorized_client"}"#), SpotifyError::Misconfigured(_)));
        assert!(matches!(
            e(400, r#"{"error":"invalid_request","error_description":"Invalid redirect URI"}"#),
            SpotifyError::Misconfigured(_)
        ));
        assert!(matches!(
            e(400, r#"{"error":"invalid_request","error_description":"grant_type is required"}"#),
            SpotifyError::Protocol(_)
        ));
        assert!(matches!(e(401, "nope"), SpotifyError::Misconfigured(_)));
        assert!(matches!(e(400, "<html>"), SpotifyError::Protocol(_)));
        assert!(matches!(e(503, ""), SpotifyError::Unavailable(_)));
        assert!(matches!(e(502, "<html>"), SpotifyError::Unavailable(_)));
        assert_eq!(
            token_error(StatusCode::TOO_MANY_REQUESTS, &h(Some("30")), b"{}"),
            SpotifyError::RateLimited { retry_after: Duration::from_secs(30) }
        );
    }

    #[test]
    fn api_errors_and_probe() {
        let forbidden_premium = br#"{"error":{"status":403,"message":"Premium required","reason":"PREMIUM_REQUIRED"}}"#;
        let forbidden_dev = br#"{"error":{"status":403,"message":"Check settings on developer.spotify.com/dashboard, the user may not be registered."}}"#;
        let forbidden_scope = br#"{"error":{"status":403,"message":"Insufficient client scope"}}"#;
        assert_eq!(api_error("me", StatusCode::UNAUTHORIZED, &h(None), b""), SpotifyError::AccessTokenInvalid);
        assert_eq!(api_error("me", StatusCode::FORBIDDEN, &h(None), forbidden_dev), SpotifyError::NotAllowListed);
        assert_eq!(api_error("me", StatusCode::FORBIDDEN, &h(None), forbidden_premium), SpotifyError::PremiumRequired);
        assert!(matches!(api_error("me", StatusCode::NOT_FOUND, &h(None), b""), SpotifyError::Protocol(_)));
        assert_eq!(probe_answer(StatusCode::NO_CONTENT, &h(None), b""), Ok(PremiumProbe::Premium));
        assert_eq!(probe_answer(StatusCode::OK, &h(None), b"{}"), Ok(PremiumProbe::Premium));
        assert_eq!(probe_answer(StatusCode::FORBIDDEN, &h(None), forbidden_premium), Ok(PremiumProbe::Free));
        assert_eq!(probe_answer(StatusCode::FORBIDDEN, &h(None), forbidden_scope), Ok(PremiumProbe::Inconclusive));
        assert_eq!(probe_answer(StatusCode::FORBIDDEN, &h(None), forbidden_dev), Err(SpotifyError::NotAllowListed));
        assert_eq!(probe_answer(StatusCode::NOT_FOUND, &h(None), b""), Ok(PremiumProbe::Inconclusive));
        assert_eq!(probe_answer(StatusCode::UNAUTHORIZED, &h(None), b""), Err(SpotifyError::AccessTokenInvalid));
        assert!(matches!(probe_answer(StatusCode::BAD_GATEWAY, &h(None), b""), Err(SpotifyError::Unavailable(_))));
        assert_eq!(
            probe_answer(StatusCode::TOO_MANY_REQUESTS, &h(Some("7")), b""),
            Err(SpotifyError::RateLimited { retry_after: Duration::from_secs(7) })
        );
    }

    /// Property tests of the parsers of Spotify's answers (`PROPTEST_CASES=N` for a long run).
    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn statuses() -> impl Strategy<Value = StatusCode> {
            (400u16..600).prop_map(|s| StatusCode::from_u16(s).unwrap())
        }

        /// A `Retry-After` value as a server might send it: digits, junk, dates, negatives.
        fn retry_values() -> impl Strategy<Value = Option<String>> {
            prop_oneof![
                Just(None),
                any::<u64>().prop_map(|n| Some(n.to_string())),
                "[ -~]{0,40}".prop_map(Some),
                Just(Some("Wed, 21 Oct 2015 07:28:00 GMT".to_owned())),
                Just(Some("-5".to_owned())),
            ]
        }

        fn headers(retry: Option<&str>) -> HeaderMap {
            let mut m = HeaderMap::new();
            if let Some(v) = retry.and_then(|r| reqwest::header::HeaderValue::from_str(r).ok()) {
                m.insert(RETRY_AFTER, v);
            }
            m
        }

        /// Bodies: arbitrary bytes, JSON of the right and wrong shapes, each carrying `secret`
        /// somewhere other than Spotify's own `error_description`.
        fn bodies(secret: String) -> impl Strategy<Value = Vec<u8>> {
            let s = secret.clone();
            let t = secret.clone();
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..300),
                "(invalid_grant|invalid_client|invalid_request|server_error|[a-z_]{1,20})".prop_map(move |e| {
                    serde_json::json!({ "error": e, "access_token": s, "refresh_token": s }).to_string().into_bytes()
                }),
                "[A-Z_]{0,20}".prop_map(move |reason| {
                    serde_json::json!({ "error": { "status": 403, "message": t, "reason": reason } })
                        .to_string()
                        .into_bytes()
                }),
                Just(format!("{{\"error\": {{\"message\": \"{secret}\"}}}}").into_bytes()),
            ]
        }

        fn check_message(e: &SpotifyError, secret: &str) -> Result<(), TestCaseError> {
            let text = e.to_string();
            let (control, long) = (text.chars().any(char::is_control), text.chars().count() > 400);
            prop_assert!(!text.contains(secret), "a value from the body was echoed: {}", text);
            prop_assert!(!control && !long, "{:?}", text);
            Ok(())
        }

        proptest! {
            /// Any `Retry-After` gives a wait between 1 s and 24 h; a number of seconds is
            /// honoured within those bounds.
            #[test]
            fn retry_after_is_always_bounded(value in retry_values()) {
                let wait = retry_after(&headers(value.as_deref()));
                prop_assert!((Duration::from_secs(1)..=MAX_RETRY_AFTER).contains(&wait));
                if let Some(n) = value.as_deref().and_then(|v| v.trim().parse::<u64>().ok()) {
                    prop_assert_eq!(wait, Duration::from_secs(n.clamp(1, MAX_RETRY_AFTER.as_secs())));
                }
            }

            /// The token endpoint's error answers, whatever their body: a typed error, never a
            /// panic, and nothing of the body but Spotify's own (sanitised) description.
            #[test]
            fn token_errors_are_typed_and_never_echo_the_body(
                status in statuses(),
                retry in retry_values(),
                (secret, body) in "zq[a-z0-9]{12}".prop_flat_map(|s| (Just(s.clone()), bodies(s))),
            ) {
                let e = token_error(status, &headers(retry.as_deref()), &body);
                check_message(&e, &secret)?;
                if status == StatusCode::TOO_MANY_REQUESTS {
                    let limited = matches!(e, SpotifyError::RateLimited { .. });
                    prop_assert!(limited, "{:?}", e);
                }
            }

            /// Web API error answers and the Premium probe, whatever their body: typed, never a
            /// panic, the message never echoed.
            #[test]
            fn api_errors_and_probe_answers_are_typed_and_never_echo_the_body(
                status in statuses(),
                retry in retry_values(),
                (secret, body) in "zq[a-z0-9]{12}".prop_flat_map(|s| (Just(s.clone()), bodies(s))),
            ) {
                let hm = headers(retry.as_deref());
                let e = api_error("GET /v1/me", status, &hm, &body);
                check_message(&e, &secret)?;
                match probe_answer(status, &hm, &body) {
                    Ok(_) => {}
                    Err(e) => check_message(&e, &secret)?,
                }
                if status == StatusCode::UNAUTHORIZED {
                    prop_assert_eq!(e, SpotifyError::AccessTokenInvalid);
                }
            }
        }
    }
}
