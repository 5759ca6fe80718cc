//! Token encryption at rest: XChaCha20-Poly1305 with a rotating keyring.
//!
//! Ciphertext layout (version 1):
//!
//! ```text
//! 0x01 | kid length (1 byte) | kid (ASCII) | nonce (24 bytes) | ciphertext + tag (16 bytes)
//! ```
//!
//! Associated data: `spotauth/token/v1 \0 <user id> \0 <column> \0 <kid>`. The header bytes are
//! thus authenticated too (changing the kid selects another key or changes the AAD), and a
//! ciphertext copied to another user's row or to the other column fails to decrypt.

use std::collections::HashMap;
use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore as _;
use spotauth_domain::ports::{CipherError, TokenCipher};
use spotauth_domain::secret::Secret;
use spotauth_domain::token::{EncryptedToken, TokenBinding};

use crate::keys::{KeyConfigError, decode_base64, valid_kid};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const SETTING: &str = "TOKEN_ENCRYPTION_KEYS";

/// The keyring: every key that may decrypt, the first one also encrypts.
pub struct TokenKeyring {
    primary: String,
    keys: HashMap<String, XChaCha20Poly1305>,
    order: Vec<String>,
}

impl fmt::Debug for TokenKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKeyring").field("primary", &self.primary).field("key_ids", &self.order).finish()
    }
}

impl TokenKeyring {
    /// Parses `kid2:BASE64,kid1:BASE64` (32-byte keys; the first is primary). Whitespace around
    /// entries is ignored.
    pub fn from_config(value: &str) -> Result<Self, KeyConfigError> {
        let entries: Vec<&str> = value.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
        if entries.is_empty() {
            return Err(KeyConfigError::Empty { setting: SETTING });
        }
        let mut keys = HashMap::new();
        let mut order = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let index = i + 1;
            let (kid, b64) = entry.split_once(':').ok_or(KeyConfigError::BadEntry { setting: SETTING, index })?;
            let kid = kid.trim();
            if !valid_kid(kid) {
                return Err(KeyConfigError::BadKeyId { setting: SETTING, index });
            }
            let key =
                decode_base64(b64).ok_or_else(|| KeyConfigError::NotBase64 { setting: SETTING, kid: kid.into() })?;
            if key.len() != 32 {
                return Err(KeyConfigError::WrongLength {
                    setting: SETTING,
                    kid: kid.into(),
                    got: key.len(),
                    expected: "32",
                });
            }
            let cipher = XChaCha20Poly1305::new_from_slice(&key).map_err(|_| KeyConfigError::WrongLength {
                setting: SETTING,
                kid: kid.into(),
                got: key.len(),
                expected: "32",
            })?;
            if keys.insert(kid.to_owned(), cipher).is_some() {
                return Err(KeyConfigError::DuplicateKeyId { setting: SETTING, kid: kid.into() });
            }
            order.push(kid.to_owned());
        }
        Ok(TokenKeyring { primary: order[0].clone(), keys, order })
    }

    /// The id of the key new writes use.
    pub fn primary_key_id(&self) -> &str {
        &self.primary
    }

    /// The key id a ciphertext names, if it is one of ours. A ciphertext whose key is not the
    /// primary one should be re-encrypted when convenient.
    pub fn key_id_of<'a>(&self, ciphertext: &'a EncryptedToken) -> Option<&'a str> {
        parse(ciphertext.as_bytes()).map(|(kid, _, _)| kid)
    }
}

fn aad(binding: TokenBinding, kid: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(96);
    aad.extend_from_slice(b"spotauth/token/v1\0");
    aad.extend_from_slice(binding.user_id.to_string().as_bytes());
    aad.push(0);
    aad.extend_from_slice(binding.column.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(kid.as_bytes());
    aad
}

/// Splits a ciphertext into (kid, nonce, sealed).
fn parse(bytes: &[u8]) -> Option<(&str, &[u8], &[u8])> {
    let (&version, rest) = bytes.split_first()?;
    if version != VERSION {
        return None;
    }
    let (&kid_len, rest) = rest.split_first()?;
    let kid_len = usize::from(kid_len);
    if kid_len == 0 || rest.len() < kid_len + NONCE_LEN + TAG_LEN {
        return None;
    }
    let (kid, rest) = rest.split_at(kid_len);
    let kid = std::str::from_utf8(kid).ok().filter(|k| valid_kid(k))?;
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    Some((kid, nonce, sealed))
}

impl TokenCipher for TokenKeyring {
    fn encrypt(&self, plaintext: &str, binding: TokenBinding) -> Result<EncryptedToken, CipherError> {
        let cipher = self.keys.get(&self.primary).ok_or(CipherError::EncryptFailed)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload { msg: plaintext.as_bytes(), aad: &aad(binding, &self.primary) },
            )
            .map_err(|_| CipherError::EncryptFailed)?;
        let kid_len = u8::try_from(self.primary.len()).map_err(|_| CipherError::EncryptFailed)?;
        let mut out = Vec::with_capacity(2 + self.primary.len() + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.push(kid_len);
        out.extend_from_slice(self.primary.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(EncryptedToken::from_bytes(out))
    }

    fn decrypt(&self, ciphertext: &EncryptedToken, binding: TokenBinding) -> Result<Secret, CipherError> {
        let (kid, nonce, sealed) = parse(ciphertext.as_bytes()).ok_or(CipherError::Malformed)?;
        let cipher = self.keys.get(kid).ok_or_else(|| CipherError::UnknownKey(kid.to_owned()))?;
        let clear = cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: &aad(binding, kid) })
            .map_err(|_| CipherError::Tampered)?;
        String::from_utf8(clear).map(Secret::new).map_err(|_| CipherError::Malformed)
    }
}
