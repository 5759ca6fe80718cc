//! The system clock and the operating system's randomness, as domain ports.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore as _;
use spotauth_domain::ids::{SessionId, TokenId, UserId};
use spotauth_domain::ports::{Clock, IdSource};
use spotauth_domain::time::Timestamp;

/// Wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        Timestamp::from_unix_millis(i64::try_from(ms).unwrap_or(i64::MAX))
    }
}

/// Random (version 4) UUIDs from the operating system's CSPRNG.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsIds;

fn random_uuid_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    uuid::Builder::from_random_bytes(b).into_uuid().into_bytes()
}

impl IdSource for OsIds {
    fn new_user_id(&self) -> UserId {
        UserId::from_bytes(random_uuid_bytes())
    }

    fn new_session_id(&self) -> SessionId {
        SessionId::from_bytes(random_uuid_bytes())
    }

    fn new_token_id(&self) -> TokenId {
        TokenId::from_bytes(random_uuid_bytes())
    }
}
