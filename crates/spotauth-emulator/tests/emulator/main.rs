//! Integration tests of the Spotify emulator, over real HTTP with reqwest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_debug_implementations)]

mod common;
mod connect;
mod dev_mode;
mod expiry;
mod faults;
mod flows;
mod schema;
mod strictness;
