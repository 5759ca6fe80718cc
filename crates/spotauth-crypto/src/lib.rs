//! # spotauth-crypto
//!
//! Crypto adapters for the domain's ports:
//! - [`cipher::TokenKeyring`] implements `TokenCipher`: XChaCha20-Poly1305, a fresh random
//!   24-byte nonce per encryption, associated data binding each ciphertext to its user row, its
//!   column and its key id, and a keyring of several keys (first primary) so keys rotate.
//! - [`jwt::JwtCodec`] implements `SessionTokenCodec`: HS256 session JWTs with josekit, strict
//!   header and claim checks.
//! - [`digest::Sha256Digests`] implements `Digests`: the one-way digests of session token ids
//!   and OAuth states the store keys them by.
//! - [`system::OsIds`] implements `IdSource` from the operating system's CSPRNG.
//!
//! **Architecture Invariant:** this crate knows the domain's ports and crypto libraries only:
//! no HTTP, no SQL, no configuration files. Keys arrive as strings from the caller; error
//! messages name the setting, never a key byte.

pub mod cipher;
pub mod digest;
pub mod jwt;
pub mod keys;
pub mod system;

pub use cipher::TokenKeyring;
pub use digest::Sha256Digests;
pub use jwt::{JwtCodec, JwtSettings};
pub use keys::KeyConfigError;
pub use system::OsIds;
