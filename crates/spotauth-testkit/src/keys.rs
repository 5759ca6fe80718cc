//! Fixed keys, as the settings take them. Never use them outside tests.

use spotauth_crypto::TokenKeyring;

/// `TOKEN_ENCRYPTION_KEYS` for tests: one 32-byte key, id `k1`.
pub const TOKEN_KEYS: &str = "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// `SESSION_SIGNING_KEY` for tests: an HS256 key of 35 bytes, base64.
pub const SIGNING_KEY: &str = "c2lnbmluZy1rZXktc2lnbmluZy1rZXktc2lnbmluZy1rZXk=";

/// The token keyring of [`TOKEN_KEYS`].
pub fn keyring() -> TokenKeyring {
    TokenKeyring::from_config(TOKEN_KEYS).unwrap()
}
