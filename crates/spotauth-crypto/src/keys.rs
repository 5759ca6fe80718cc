//! Parsing key material from configuration strings.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use rand::RngCore as _;

/// Why a key setting was refused. Messages name the setting and the key id, never key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyConfigError {
    /// The setting is empty.
    #[error("{setting} is empty")]
    Empty {
        /// Setting name.
        setting: &'static str,
    },
    /// An entry is not `kid:BASE64`.
    #[error("{setting}: entry {index} is not `kid:BASE64`")]
    BadEntry {
        /// Setting name.
        setting: &'static str,
        /// 1-based entry position.
        index: usize,
    },
    /// A key id has characters outside `[A-Za-z0-9_-]` or is longer than 32.
    #[error("{setting}: key id at entry {index} must be 1-32 characters of [A-Za-z0-9_-]")]
    BadKeyId {
        /// Setting name.
        setting: &'static str,
        /// 1-based entry position.
        index: usize,
    },
    /// A key id appears twice.
    #[error("{setting}: key id `{kid}` appears twice")]
    DuplicateKeyId {
        /// Setting name.
        setting: &'static str,
        /// The key id.
        kid: String,
    },
    /// The key is not base64.
    #[error("{setting}: key `{kid}` is not valid base64")]
    NotBase64 {
        /// Setting name.
        setting: &'static str,
        /// The key id (or "-" for a single key).
        kid: String,
    },
    /// The key has the wrong length.
    #[error("{setting}: key `{kid}` is {got} bytes, expected {expected}")]
    WrongLength {
        /// Setting name.
        setting: &'static str,
        /// The key id (or "-" for a single key).
        kid: String,
        /// Decoded length.
        got: usize,
        /// What is required (exact, or minimum for the signing key).
        expected: &'static str,
    },
}

/// Decodes base64 in any of the common alphabets, padded or not.
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(s).ok())
}

pub(crate) fn valid_kid(kid: &str) -> bool {
    !kid.is_empty() && kid.len() <= 32 && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A new random 32-byte key, base64 (standard alphabet, padded): for `TOKEN_ENCRYPTION_KEYS`
/// (as `kid:KEY`) and `SESSION_SIGNING_KEY`.
pub fn generate_key_base64() -> String {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    STANDARD.encode(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_decode_to_32_bytes_and_differ() {
        let a = generate_key_base64();
        assert_eq!(decode_base64(&a).map(|k| k.len()), Some(32));
        assert_ne!(a, generate_key_base64());
    }
}
