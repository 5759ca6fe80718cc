//! The whole REST flow end to end: the app on a real port, a fresh MariaDB database (or the
//! embedded SQLite default), the Spotify emulator over HTTP. One test binary; modules by topic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod abuse;
mod browser;
mod cache;
mod common;
mod flows;
mod logs;
mod metrics;
mod openapi_check;
mod operations;
mod quickstart;
mod refresh;
mod room;
mod sessions;
