//! # spotauth-domain
//!
//! The heart of the multi-user Spotify authentication service: entities and value types, the
//! ports (traits) adapters implement, and the use cases: [`service::AuthService`] (login,
//! sessions, account), [`tokens::TokenService`] (the one token-refresh algorithm) and
//! [`room::RoomService`] (presence and group playback), all over `Arc<dyn Port>` fields.
//!
//! **Architecture Invariant:** this crate does no IO and knows no adapter library: no actix,
//! diesel, reqwest, josekit, chacha20poly1305, mysql_async, tokio, serde or any `spotauth-*`
//! adapter crate. Its types do not derive `Serialize`; only the app crate knows our REST API
//! and its JSON. `xtask/tests/repo_rules.rs` checks the dependency rule.

#![deny(missing_docs)]

pub mod ids;
pub mod login;
pub mod ports;
pub mod room;
pub mod secret;
pub mod service;
pub mod session;
pub mod time;
pub mod token;
pub mod tokens;
pub mod user;

#[cfg(test)]
mod test_support;

pub use ids::{SessionId, TokenId, UserId};
pub use time::Timestamp;
