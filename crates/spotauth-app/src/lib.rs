//! # spotauth-app
//!
//! The service: configuration ([`settings`]), the wiring ([`startup::Application`]), and the
//! REST API ([`routes`]) over the domain's use cases.
//!
//! **Architecture Invariant:** this is the only crate that knows our REST API: actix-web, the
//! JSON shapes ([`web::dto`]), the problem codes ([`problem`]), cookies. Handlers are thin:
//! extract (the session through [`web::Auth`]), call one use case, map the result (errors
//! become RFC 9457 problems). No business rule and no clock read lives here.

pub mod metrics;
pub mod ops;
pub mod problem;
pub mod rate_limit;
pub mod request_id;
pub mod room_feed;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod web;

pub use settings::Settings;
pub use startup::Application;
