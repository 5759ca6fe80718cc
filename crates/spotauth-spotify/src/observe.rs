//! What the adapter reports about each call to Spotify, for metrics: the caller (the app)
//! decides where it goes; the adapter knows no metrics library.

use std::time::Duration;

/// One call to Spotify, as the adapter saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotifyCall<'a> {
    /// Which endpoint, e.g. `POST /api/token`, `GET /me` (a fixed, small set).
    pub endpoint: &'static str,
    /// The HTTP status of the answer; `None` when none came.
    pub status: Option<u16>,
    /// Why no answer came: `timeout`, `connect` or `other`; `None` when one came.
    pub failure: Option<&'static str>,
    /// From sending to the last byte of the answer (or the failure).
    pub elapsed: Duration,
    /// For a 429: Spotify's `reason` (`QUOTA_EXCEEDED`; `None` for a plain burst limit, or a
    /// reason that is not an upper-case word) and the `Retry-After` it asked for.
    pub rate_limit: Option<(Option<&'a str>, Duration)>,
}

/// Receives every call's [`SpotifyCall`]. Called on the request's task: it MUST NOT block.
pub trait CallObserver: Send + Sync + 'static {
    /// One call finished.
    fn observe(&self, call: &SpotifyCall<'_>);
}

/// A reason fit to be a metric label: an upper-case word of at most 40 characters.
pub(crate) fn label_fit(reason: &str) -> Option<&str> {
    (!reason.is_empty() && reason.len() <= 40 && reason.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
        .then_some(reason)
}
