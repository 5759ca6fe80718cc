//! Session tokens: JWTs signed with HS256 (josekit).
//!
//! Why HS256: this service is the only issuer and the only verifier of its session tokens, so
//! a shared-secret MAC is enough, and verification runs on every authenticated request, where
//! a MAC costs a small fraction of a signature check (figures in docs/benchmarks.md). If
//! another service ever needs to verify them without the secret, switch to EdDSA.
//!
//! josekit does the JWS/JWT framing and claim parsing; the HMAC itself is [`Hs256Key`], an
//! HMAC-SHA256 state keyed once at startup (RustCrypto `hmac`, already in the tree through
//! openidconnect) and cloned per token: josekit's own HMAC signer/verifier builds an OpenSSL
//! key and context on every call, which showed up prominently in profiles of the hot path.
//!
//! Verification is strict (RFC 8725): the header must be exactly `{"alg":"HS256","typ":TYP}`
//! (so `alg=none`, any switched algorithm, and `jku`/`jwk`/`x5u`/`x5c`/`crit`/`kid` headers are
//! refused before any signature work), then the signature, then `iss`, `aud`, `exp`, `nbf`,
//! `sub`, `sid` and `jti`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use josekit::JoseError;
use josekit::jws::{HS256, JwsAlgorithm, JwsHeader, JwsSigner, JwsVerifier};
use josekit::jwt::{self, JwtPayload};
use serde_json::Value;
use sha2::Sha256;
use spotauth_domain::ids::{SessionId, TokenId, UserId};
use spotauth_domain::ports::{SessionTokenCodec, SessionTokenError};
use spotauth_domain::secret::SessionToken;
use spotauth_domain::session::SessionClaims;
use spotauth_domain::time::Timestamp;

use crate::keys::{KeyConfigError, decode_base64};

const SETTING: &str = "SESSION_SIGNING_KEY";
/// The only algorithm accepted.
pub const ALGORITHM: &str = "HS256";
/// Explicit token type (RFC 8725 §3.11), so no other JWT of ours can pass as a session token.
pub const TOKEN_TYPE: &str = "spotauth-session+jwt";

/// Issuer, audience and clock tolerance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// `iss` set and required.
    pub issuer: String,
    /// `aud` set and required.
    pub audience: String,
    /// Tolerance for `nbf` only (instances' clocks may differ slightly); `exp` is strict.
    pub not_before_leeway: Duration,
}

impl Default for JwtSettings {
    fn default() -> Self {
        JwtSettings {
            issuer: "spotauth".into(),
            audience: "spotauth-session".into(),
            not_before_leeway: Duration::from_secs(30),
        }
    }
}

/// An HS256 key as a keyed HMAC-SHA256 state: josekit's signer and verifier for our tokens.
#[derive(Clone)]
struct Hs256Key {
    mac: Hmac<Sha256>,
}

impl Hs256Key {
    fn new(key: &[u8]) -> Option<Self> {
        Some(Hs256Key { mac: Hmac::<Sha256>::new_from_slice(key).ok()? })
    }
}

impl fmt::Debug for Hs256Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hs256Key([redacted])")
    }
}

impl JwsSigner for Hs256Key {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        &HS256
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn signature_len(&self) -> usize {
        32
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        let mut mac = self.mac.clone();
        mac.update(message);
        Ok(mac.finalize().into_bytes().to_vec())
    }

    fn box_clone(&self) -> Box<dyn JwsSigner> {
        Box::new(self.clone())
    }
}

impl JwsVerifier for Hs256Key {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        &HS256
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    /// Constant-time comparison (`Mac::verify_slice`); a signature of the wrong length fails.
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), JoseError> {
        let mut mac = self.mac.clone();
        mac.update(message);
        mac.verify_slice(signature)
            .map_err(|_| JoseError::InvalidSignature(std::io::Error::other("signature mismatch").into()))
    }

    fn box_clone(&self) -> Box<dyn JwsVerifier> {
        Box::new(self.clone())
    }
}

/// Issues and verifies session JWTs with one HS256 key.
pub struct JwtCodec {
    key: Hs256Key,
    settings: JwtSettings,
}

impl fmt::Debug for JwtCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtCodec").field("algorithm", &ALGORITHM).field("settings", &self.settings).finish()
    }
}

impl JwtCodec {
    /// Builds the codec from `SESSION_SIGNING_KEY` (base64, at least 32 bytes).
    pub fn from_config(key_base64: &str, settings: JwtSettings) -> Result<Self, KeyConfigError> {
        if key_base64.trim().is_empty() {
            return Err(KeyConfigError::Empty { setting: SETTING });
        }
        let key = decode_base64(key_base64).ok_or(KeyConfigError::NotBase64 { setting: SETTING, kid: "-".into() })?;
        let wrong = || KeyConfigError::WrongLength {
            setting: SETTING,
            kid: "-".into(),
            got: key.len(),
            expected: "at least 32",
        };
        if key.len() < 32 {
            return Err(wrong());
        }
        let key = Hs256Key::new(&key).ok_or_else(wrong)?;
        Ok(JwtCodec { key, settings })
    }

    fn check_header(token: &str) -> Result<(), SessionTokenError> {
        let header_b64 = token.split('.').next().ok_or(SessionTokenError::Malformed)?;
        let raw = URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| SessionTokenError::Malformed)?;
        let header: serde_json::Map<String, Value> =
            serde_json::from_slice(&raw).map_err(|_| SessionTokenError::Malformed)?;
        let alg_ok = header.get("alg").and_then(Value::as_str) == Some(ALGORITHM);
        let typ_ok = header.get("typ").and_then(Value::as_str) == Some(TOKEN_TYPE);
        if !alg_ok || !typ_ok || header.len() != 2 {
            return Err(SessionTokenError::Malformed);
        }
        Ok(())
    }
}

fn parse_id<T: std::str::FromStr>(v: Option<&str>) -> Result<T, SessionTokenError> {
    v.ok_or(SessionTokenError::Malformed)?.parse().map_err(|_| SessionTokenError::Malformed)
}

fn to_system_time(t: Timestamp) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(t.unix_seconds()).unwrap_or(0))
}

fn from_system_time(t: SystemTime) -> Timestamp {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    Timestamp::from_unix_seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}

impl SessionTokenCodec for JwtCodec {
    fn issue(&self, claims: &SessionClaims) -> Result<SessionToken, SessionTokenError> {
        let mut header = JwsHeader::new();
        header.set_token_type(TOKEN_TYPE);
        let mut payload = JwtPayload::new();
        payload.set_issuer(&self.settings.issuer);
        payload.set_audience(vec![self.settings.audience.clone()]);
        payload.set_subject(claims.user_id.to_string());
        payload.set_jwt_id(claims.token_id.to_string());
        payload.set_issued_at(&to_system_time(claims.issued_at));
        payload.set_not_before(&to_system_time(claims.issued_at));
        payload.set_expires_at(&to_system_time(claims.expires_at));
        payload
            .set_claim("sid", Some(Value::String(claims.session_id.to_string())))
            .map_err(|_| SessionTokenError::SignFailed)?;
        let token = jwt::encode_with_signer(&payload, &header, &self.key).map_err(|_| SessionTokenError::SignFailed)?;
        SessionToken::new(token).map_err(|_| SessionTokenError::SignFailed)
    }

    fn verify(&self, token: &str, now: Timestamp) -> Result<SessionClaims, SessionTokenError> {
        let (claims, not_before) = self.decode(token)?;
        if now >= claims.expires_at {
            return Err(SessionTokenError::Expired);
        }
        if not_before > now.plus(self.settings.not_before_leeway) {
            return Err(SessionTokenError::NotYetValid);
        }
        Ok(claims)
    }

    fn verify_ignoring_time(&self, token: &str) -> Result<SessionClaims, SessionTokenError> {
        Ok(self.decode(token)?.0)
    }
}

impl JwtCodec {
    /// Everything [`SessionTokenCodec::verify`] checks but the time: the claims and `nbf`.
    fn decode(&self, token: &str) -> Result<(SessionClaims, Timestamp), SessionTokenError> {
        if token.len() > 8192 || token.split('.').count() != 3 {
            return Err(SessionTokenError::Malformed);
        }
        Self::check_header(token)?;
        let (payload, _header) =
            jwt::decode_with_verifier(token, &self.key).map_err(|_| SessionTokenError::BadSignature)?;
        if payload.issuer() != Some(self.settings.issuer.as_str())
            || payload.audience() != Some(vec![self.settings.audience.as_str()])
        {
            return Err(SessionTokenError::WrongAudience);
        }
        let expires_at = payload.expires_at().map(from_system_time).ok_or(SessionTokenError::Malformed)?;
        let not_before = payload.not_before().map(from_system_time).ok_or(SessionTokenError::Malformed)?;
        let issued_at = payload.issued_at().map(from_system_time).ok_or(SessionTokenError::Malformed)?;
        let user_id: UserId = parse_id(payload.subject())?;
        let token_id: TokenId = parse_id(payload.jwt_id())?;
        let session_id: SessionId = parse_id(payload.claim("sid").and_then(Value::as_str))?;
        Ok((SessionClaims { session_id, user_id, token_id, issued_at, expires_at }, not_before))
    }
}
