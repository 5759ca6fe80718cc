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

/// The keyring: every key that may decrypt, the first one (`primary`) also encrypts.
pub struct TokenKeyring {
    primary: (String, XChaCha20Poly1305),
    older: Vec<(String, XChaCha20Poly1305)>,
}

impl fmt::Debug for TokenKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key_ids: Vec<&str> = self.keys().map(|(kid, _)| kid.as_str()).collect();
        f.debug_struct("TokenKeyring").field("primary", &self.primary.0).field("key_ids", &key_ids).finish()
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
        let mut keys: Vec<(String, XChaCha20Poly1305)> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let index = i + 1;
            let (kid, b64) = entry.split_once(':').ok_or(KeyConfigError::BadEntry { setting: SETTING, index })?;
            let kid = kid.trim();
            if !valid_kid(kid) {
                return Err(KeyConfigError::BadKeyId { setting: SETTING, index });
            }
            let key =
                decode_base64(b64).ok_or_else(|| KeyConfigError::NotBase64 { setting: SETTING, kid: kid.into() })?;
            // Fails exactly when the key is not 32 bytes long.
            let cipher = XChaCha20Poly1305::new_from_slice(&key).map_err(|_| KeyConfigError::WrongLength {
                setting: SETTING,
                kid: kid.into(),
                got: key.len(),
                expected: "32",
            })?;
            if keys.iter().any(|(k, _)| k == kid) {
                return Err(KeyConfigError::DuplicateKeyId { setting: SETTING, kid: kid.into() });
            }
            keys.push((kid.to_owned(), cipher));
        }
        let mut keys = keys.into_iter();
        let primary = keys.next().ok_or(KeyConfigError::Empty { setting: SETTING })?;
        Ok(TokenKeyring { primary, older: keys.collect() })
    }

    /// The id of the key new writes use.
    pub fn primary_key_id(&self) -> &str {
        &self.primary.0
    }

    /// Every key, primary first.
    fn keys(&self) -> impl Iterator<Item = &(String, XChaCha20Poly1305)> {
        std::iter::once(&self.primary).chain(&self.older)
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
        let (kid, cipher) = &self.primary;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext.as_bytes(), aad: &aad(binding, kid) })
            .map_err(|_| CipherError::EncryptFailed)?;
        let kid_len = u8::try_from(kid.len()).map_err(|_| CipherError::EncryptFailed)?;
        let mut out = Vec::with_capacity(2 + kid.len() + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.push(kid_len);
        out.extend_from_slice(kid.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(EncryptedToken::from_bytes(out))
    }

    fn decrypt(&self, ciphertext: &EncryptedToken, binding: TokenBinding) -> Result<Secret, CipherError> {
        let (kid, nonce, sealed) = parse(ciphertext.as_bytes()).ok_or(CipherError::Malformed)?;
        let (_, cipher) = self.keys().find(|(k, _)| k == kid).ok_or_else(|| CipherError::UnknownKey(kid.to_owned()))?;
        let clear = cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: &aad(binding, kid) })
            .map_err(|_| CipherError::Tampered)?;
        String::from_utf8(clear).map(Secret::new).map_err(|_| CipherError::Malformed)
    }

    fn key_id_of(&self, ciphertext: &EncryptedToken) -> Option<String> {
        TokenKeyring::key_id_of(self, ciphertext).map(str::to_owned)
    }

    fn primary_key_id(&self) -> String {
        TokenKeyring::primary_key_id(self).to_owned()
    }
}
