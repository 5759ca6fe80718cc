//! # spotauth-domain
//!
//! The heart of the multi-user Spotify authentication service: entities and value types, the
//! ports (traits) adapters implement, and the use cases as [`service::AuthService`], generic
//! over the ports.
//!
//! **Architecture Invariant:** this crate does no IO and knows no adapter library: no actix,
//! diesel, reqwest, josekit, chacha20poly1305, mysql_async, serde or any `spotauth-*` adapter
//! crate. Its types do not derive `Serialize`; only the app crate knows HTTP and JSON. A test
//! in `tests/` checks the dependency rule.

pub mod ids;
pub mod login;
pub mod ports;
pub mod refresh;
pub mod secret;
pub mod service;
pub mod session;
pub mod time;
pub mod token;
pub mod user;

pub use ids::{SessionId, TokenId, UserId};
pub use time::Timestamp;

#[cfg(test)]
mod service_tests;
