//! HTTP plumbing shared by the handlers: the shared state ([`state`]), cookie policy
//! ([`cookies`]), what a request carries ([`extract`]: the session token, the authenticated
//! session, where the request comes from; [`client`]: the client address behind trusted
//! proxies), the rate-limit extractor ([`throttle`]), the cross-origin guard ([`csrf`]), CORS ([`cors`]) and the JSON
//! shapes of our API ([`dto`]).

pub mod client;
pub mod cookies;
pub mod cors;
pub mod csrf;
pub mod dto;
pub mod extract;
pub mod state;
pub mod throttle;

pub use client::TrustedProxies;
pub use cookies::Cookies;
pub use csrf::TrustedOrigins;
pub use dto::{
    AccessTokenDto, ActivePageDto, ClientConfigDto, GroupOutcomesDto, HealthDto, LoginResponseDto, LogoutDto,
    OutcomeDto, PresenceDto, ReadyDto, SessionDto, SessionListDto, SessionsEndedDto, SubscriptionDto, UserDto, iso,
    logout_scope,
};
pub use extract::{Auth, SessionTokenIn, TokenSource, session_meta};
pub use state::AppState;
pub use throttle::Throttled;
