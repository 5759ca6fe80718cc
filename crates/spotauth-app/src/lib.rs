//! # spotauth-app
//!
//! The service: configuration ([`settings`]), the wiring ([`startup::Application`]), and the
//! REST API ([`routes`]) over the domain's use cases.
//!
//! **Architecture Invariant:** this is the only crate that knows HTTP and JSON. Handlers are
//! thin: parse, call one use case, map the result (errors become RFC 9457 problems in
//! [`problem`]). No business rule lives here.

pub mod problem;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod web;

pub use settings::Settings;
pub use startup::Application;
