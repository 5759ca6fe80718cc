//! The operating system's randomness, as the domain's `IdSource` port.

use std::time::Duration;

use rand::{Rng as _, RngCore as _};
use spotauth_domain::ids::{SessionId, TokenId, UserId};
use spotauth_domain::ports::IdSource;

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

    fn jitter(&self, max: Duration) -> Duration {
        let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::thread_rng().gen_range(0..=max_ms))
    }
}
