//! HTTP plumbing shared by the handlers: the shared state ([`state`]), cookie policy
//! ([`cookies`]), what a request carries ([`extract`]: the session token, the authenticated
//! session, where the request comes from) and the JSON shapes of our API ([`dto`]).

pub mod cookies;
pub mod dto;
pub mod extract;
pub mod state;

pub use cookies::Cookies;
pub use dto::{AccessTokenDto, ActiveUserDto, UserDto, iso};
pub use extract::{Auth, SessionTokenIn, TokenSource, session_meta};
pub use state::AppState;
