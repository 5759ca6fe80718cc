//! # spotauth (the library)
//!
//! Another Rust service (a queue, a recommendation job, a bot) that needs to call Spotify for a
//! user connected through the spotauth server opens the **same store with the same settings**
//! and asks for a valid access token. It gets exactly the server's guarantees, because it runs
//! the server's own token use case ([`spotauth_domain::tokens::TokenService`]) on the same
//! database:
//!
//! - **single flight** in this process: concurrent callers for one user share one refresh;
//! - **the database lease** across processes, the server's instances included: one upstream
//!   refresh per user per expiry, and no rotated refresh token is ever presented twice;
//! - **the shared 429 backoff** of the Spotify client id: no call while Spotify asked everyone
//!   to wait;
//! - **the re-authorization state**: a user Spotify refused is [`Error::ReauthRequired`] at once,
//!   with no call.
//!
//! It also reads a user's public profile and who is present in the listening room, without any
//! session. It never writes anything but what a refresh writes.
//!
//! ```no_run
//! # async fn demo() -> Result<(), spotauth::Error> {
//! use spotauth::{Config, Spotauth, UserRef};
//!
//! // DATABASE_URL (or SQLITE_PATH / DATA_DIR), TOKEN_ENCRYPTION_KEYS, SPOTIFY_CLIENT_ID,
//! // SPOTIFY_CLIENT_SECRET, SPOTIFY_REDIRECT_URI...: the server's settings, by the same names.
//! let spotauth = Spotauth::open(Config::from_env()?).await?;
//! let alice = UserRef::spotify_account("acct-alice")?; // /v1/me account_id (else id)
//! match spotauth.access_token(&alice).await {
//!     Ok(grant) => println!("valid until {:?}", grant.expires_at),
//!     Err(spotauth::Error::ReauthRequired) => println!("alice must log in with Spotify again"),
//!     Err(e) => return Err(e),
//! }
//! # Ok(()) }
//! ```
//!
//! The public surface is deliberate and listed in `docs/library.md`; a test fails when it
//! changes without that list changing too.

#![deny(missing_docs)]

mod config;
mod error;
mod library;

pub use config::{Config, Store};
pub use error::Error;
pub use library::{Spotauth, UserInfo, UserRef};
pub use spotauth_domain::room::{NowPlaying, RoomMember};
pub use spotauth_domain::secret::AccessToken;
pub use spotauth_domain::token::AccessGrant;
pub use spotauth_domain::{Timestamp, UserId};
