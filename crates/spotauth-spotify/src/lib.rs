//! # spotauth-spotify
//!
//! The Spotify adapter: [`SpotifyClient`] implements the domain's
//! [`SpotifyAccounts`](spotauth_domain::ports::SpotifyAccounts) (authorize URL, code exchange,
//! refresh against `https://accounts.spotify.com`) and
//! [`SpotifyProfilePort`](spotauth_domain::ports::SpotifyProfilePort) (`GET /v1/me` and a
//! Premium probe against `https://api.spotify.com/v1`), configured by a validated
//! [`SpotifyConfig`].
//!
//! **Architecture Invariant:** this crate knows Spotify's HTTP API and the domain's ports; nothing of storage, sessions or our own REST API.
//!
//! ## What it maps
//!
//! | port method | Spotify call | success |
//! | --- | --- | --- |
//! | `begin_authorization` | none (builds `{accounts}/authorize?client_id&response_type=code&redirect_uri&scope&state&code_challenge_method=S256&code_challenge`) | state of 256 random bits, PKCE verifier of 86 characters |
//! | `exchange_code` | `POST {accounts}/api/token` `grant_type=authorization_code&code&redirect_uri&code_verifier` | [`TokenGrant`](spotauth_domain::token::TokenGrant) |
//! | `refresh` | `POST {accounts}/api/token` `grant_type=refresh_token&refresh_token` | `TokenGrant`, `refresh_token: None` when Spotify sent none (keep the old one) |
//! | `current_profile` | `GET {api}/me` (Bearer) | `SpotifyProfile`: `id`, `account_id` when present, `display_name` when usable, `product` when present (absent for Development Mode apps) |
//! | `probe_premium` | `GET {api}/me/player` (Bearer) | `PremiumProbe` (see below) |
//!
//! Token responses: `access_expires_at = clock.now() + expires_in` (3600 s when absent);
//! `scope` is parsed with `Scopes::parse` and, when absent, taken to be the configured (requested)
//! scopes (RFC 6749 §5.1); `token_type` must be Bearer.
//!
//! ## Error table (at the seam, into [`SpotifyError`](spotauth_domain::ports::SpotifyError))
//!
//! | Spotify answer | `SpotifyError` |
//! | --- | --- |
//! | token endpoint 400 `invalid_grant` (bad, used, expired or revoked code/refresh token, wrong verifier) | `ReauthRequired`, never retried |
//! | token endpoint `invalid_grant` or `invalid_request` whose description names the redirect URI | `Misconfigured` (Spotify words a redirect mismatch as `invalid_grant` "Invalid redirect URI"; the port says redirect mismatches are `Misconfigured`) |
//! | token endpoint `invalid_client`, `unauthorized_client`, `invalid_scope`; a 401 without OAuth body | `Misconfigured` |
//! | token endpoint `server_error` / `temporarily_unavailable` | `Unavailable` |
//! | token endpoint other 4xx (`unsupported_grant_type`, other `invalid_request`, no OAuth body) | `Protocol` |
//! | a verifier that is not RFC 7636 (43–128 unreserved characters), before any call | `ReauthRequired` |
//! | Web API 401 | `AccessTokenInvalid` |
//! | Web API 403 `reason: PREMIUM_REQUIRED` (not the probe) | `PremiumRequired` |
//! | Web API 403 otherwise (Development Mode user not on the allow-list) | `NotAllowListed` |
//! | any 429 | `RateLimited { retry_after }` from `Retry-After` seconds, clamped to 1 s..=24 h, 1 s when missing or unreadable |
//! | any 5xx | `Unavailable("… answered 503")` |
//! | timeout, connection refused, dropped connection | `Unavailable` (endpoint + cause; no URL, query, token) |
//! | Web API other status (404, 400, …) | `Protocol` |
//! | unparseable JSON, invalid ids (domain newtypes), unusable tokens, body over 256 KiB | `Protocol` |
//!
//! Tokens, codes, verifiers and the client secret never appear in an error or a log line:
//! reqwest errors are described by kind and source chain without their URL, serde errors by
//! position only (their messages can quote values), token-endpoint descriptions are Spotify's
//! own words, Web API messages are not echoed. `tracing` debug events log endpoint, status and
//! latency of each call.
//!
//! ## Premium rules
//!
//! Premium is three-valued since February 2026: Development Mode apps get no `product`.
//! [`SpotifyProfile::product`](spotauth_domain::user::SpotifyProfile) is passed through when
//! present; the caller reads it with `PremiumStatus::from_product`. The probe is
//! `GET /v1/me/player`, a read-only player endpoint (no side effect, unlike
//! `PUT /me/player/play`) that answers non-Premium users 403 `PREMIUM_REQUIRED`:
//!
//! | probe answer | result |
//! | --- | --- |
//! | 2xx (200 with a playback state, 204 nothing playing) | `Ok(Premium)` |
//! | 403 `reason: PREMIUM_REQUIRED` | `Ok(Free)` |
//! | 403 with another `reason`, or about the scope ("Insufficient client scope") | `Ok(Inconclusive)` |
//! | 403 without reason (not allow-listed) | `Err(NotAllowListed)` |
//! | 401 / 429 / 5xx / transport | `Err(AccessTokenInvalid / RateLimited / Unavailable)`, as `current_profile` |
//! | anything else (404, 400, …) | `Ok(Inconclusive)` |
//!
//! `GET /me/player` needs the scope `user-read-playback-state`
//! ([`SpotifyConfig::PROBE_SCOPE`]). The default scopes are the Web Playback SDK's
//! (`streaming user-read-email user-read-private`) plus that one, because in Development Mode
//! the probe is the only server-side Premium signal. A deployment that drops it with
//! [`SpotifyConfig::with_scopes`] gets `Inconclusive` from the probe (Premium "unknown").
//!
//! ## Client authentication: HTTP Basic vs body
//!
//! With a client secret ([`SpotifyConfig::client_secret`] `Some`), the token requests carry
//! `Authorization: Basic base64(client_id:client_secret)`, Spotify's documented form; the secret
//! is never put in the body (Spotify documents Basic only, the emulator refuses a body secret).
//! Without a secret the client is a public PKCE client and sends `client_id` in the body; PKCE
//! (S256) is used by both kinds.
//!
//! ## openidconnect building blocks vs plain reqwest
//!
//! Spotify is plain OAuth 2.0 (no id_token, no discovery), so only oauth2's building blocks,
//! re-exported by `openidconnect`, are used: [`CsrfToken`](openidconnect::CsrfToken) for the
//! state (`new_random_len(32)`: 256 bits; `new_random()` gives exactly 128),
//! [`PkceCodeChallenge`](openidconnect::PkceCodeChallenge) for the S256 pair,
//! `StandardTokenResponse<EmptyExtraTokenFields, CoreTokenType>` to read token responses
//! (token type check, space-delimited scopes, optional refresh token) and
//! `StandardErrorResponse<CoreErrorResponseType>` to read RFC 6749 §5.2 errors.
//!
//! The token POST itself is sent with reqwest (0.12, the same version openidconnect uses), not
//! with oauth2's `Client::exchange_code`/`exchange_refresh_token`, because:
//! - a 429's `Retry-After` header is lost by oauth2's `RequestTokenError` (it keeps only the
//!   body), and Spotify's rate limits need it;
//! - oauth2's `RequestTokenError::Parse` carries the raw response body, which holds the tokens:
//!   one careless `{:?}` would leak them; here parse failures carry only a position;
//! - oauth2's `AuthType::BasicAuth` form-urlencodes id and secret before base64 (RFC 6749
//!   §2.3.1) while Spotify documents plain `base64(client_id:client_secret)`;
//! - every call needs the same transport-error mapping (timeouts, dropped connections) and
//!   latency logging as the Web API calls, which one shared `send` gives.
//!
//! One `reqwest::Client` (connection pool, connect timeout, total timeout, no redirects) serves
//! every call; [`SpotifyClient`] is `Send + Sync + 'static`.

mod client;
pub mod config;
mod mapping;
pub mod observe;

pub use client::SpotifyClient;
pub use config::{ConfigError, SpotifyConfig};
pub use mapping::{DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER};
pub use observe::{CallObserver, SpotifyCall};
