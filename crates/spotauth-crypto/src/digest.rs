//! The one-way digests the store keys secrets by (SHA-256, domain-separated per kind).

use sha2::{Digest, Sha256};
use spotauth_domain::ids::TokenId;
use spotauth_domain::login::StateDigest;
use spotauth_domain::ports::Digests;
use spotauth_domain::secret::OAuthState;
use spotauth_domain::session::TokenIdHash;

/// SHA-256 digests of session token ids and OAuth states. Unkeyed: both inputs carry at least
/// 122 random bits, so a digest cannot be inverted by guessing, and it stays valid across key
/// rotations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sha256Digests;

impl Digests for Sha256Digests {
    fn token_id(&self, token_id: &TokenId) -> TokenIdHash {
        let mut h = Sha256::new();
        h.update(b"spotauth/jti/v1\0");
        h.update(token_id.as_bytes());
        TokenIdHash::from_bytes(h.finalize().into())
    }

    fn oauth_state(&self, state: &OAuthState) -> StateDigest {
        // No prefix: flows stored before this port existed keep their keys.
        StateDigest::from_bytes(Sha256::digest(state.expose().as_bytes()).into())
    }

    fn successor_token_id(&self, token_id: &TokenId) -> TokenId {
        let mut h = Sha256::new();
        h.update(b"spotauth/jti-successor/v1\0");
        h.update(token_id.as_bytes());
        let digest: [u8; 32] = h.finalize().into();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        // Shaped as a version-4 UUID like the random ids: 122 bits of the digest.
        id[6] = (id[6] & 0x0f) | 0x40;
        id[8] = (id[8] & 0x3f) | 0x80;
        TokenId::from_bytes(id)
    }
}
