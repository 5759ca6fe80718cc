//! The crypto adapter's security properties, one test each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use josekit::jws::{HS256, HS384, JwsHeader};
use josekit::jwt::{self, JwtPayload};
use spotauth_crypto::keys::generate_key_base64;
use spotauth_crypto::{JwtCodec, JwtSettings, KeyConfigError, OsIds, Sha256Digests, TokenKeyring};
use spotauth_domain::ids::{SessionId, TokenId, UserId};
use spotauth_domain::ports::{CipherError, Digests, IdSource, SessionTokenCodec, SessionTokenError, TokenCipher};
use spotauth_domain::secret::OAuthState;
use spotauth_domain::session::SessionClaims;
use spotauth_domain::time::Timestamp;
use spotauth_domain::token::{EncryptedToken, TokenBinding, TokenColumn};

fn key(byte: u8) -> String {
    STANDARD.encode([byte; 32])
}

fn ring(spec: &[(&str, u8)]) -> TokenKeyring {
    let cfg: Vec<String> = spec.iter().map(|(kid, b)| format!("{kid}:{}", key(*b))).collect();
    TokenKeyring::from_config(&cfg.join(",")).unwrap()
}

fn bind(user: u8, column: TokenColumn) -> TokenBinding {
    TokenBinding { user_id: UserId::from_bytes([user; 16]), column }
}

const TOKEN: &str = "BQD-access-token-value-for-alice";

mod cipher {
    use super::*;

    #[test]
    fn round_trip() {
        let r = ring(&[("k1", 1)]);
        let ct = r.encrypt(TOKEN, bind(1, TokenColumn::Access)).unwrap();
        assert_eq!(r.decrypt(&ct, bind(1, TokenColumn::Access)).unwrap().expose(), TOKEN);
        assert!(!ct.as_bytes().windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()));
    }

    #[test]
    fn flipping_any_byte_fails() {
        let r = ring(&[("k1", 1)]);
        let ct = r.encrypt(TOKEN, bind(1, TokenColumn::Refresh)).unwrap();
        for i in 0..ct.as_bytes().len() {
            for bit in [0x01u8, 0x80] {
                let mut bytes = ct.as_bytes().to_vec();
                bytes[i] ^= bit;
                let got = r.decrypt(&EncryptedToken::from_bytes(bytes), bind(1, TokenColumn::Refresh));
                assert!(got.is_err(), "byte {i} bit {bit:#x} flipped still decrypted");
            }
        }
        // Truncation and extension fail too.
        let short = EncryptedToken::from_bytes(ct.as_bytes()[..ct.as_bytes().len() - 1].to_vec());
        assert!(r.decrypt(&short, bind(1, TokenColumn::Refresh)).is_err());
        let mut long = ct.as_bytes().to_vec();
        long.push(0);
        assert!(r.decrypt(&EncryptedToken::from_bytes(long), bind(1, TokenColumn::Refresh)).is_err());
    }

    #[test]
    fn moved_to_another_users_row_fails() {
        let r = ring(&[("k1", 1)]);
        let ct = r.encrypt(TOKEN, bind(1, TokenColumn::Access)).unwrap();
        assert_eq!(r.decrypt(&ct, bind(2, TokenColumn::Access)), Err(CipherError::Tampered));
    }

    #[test]
    fn moved_to_the_other_column_fails() {
        let r = ring(&[("k1", 1)]);
        let ct = r.encrypt(TOKEN, bind(1, TokenColumn::Access)).unwrap();
        assert_eq!(r.decrypt(&ct, bind(1, TokenColumn::Refresh)), Err(CipherError::Tampered));
    }

    #[test]
    fn same_plaintext_twice_gives_different_ciphertexts() {
        let r = ring(&[("k1", 1)]);
        let a = r.encrypt(TOKEN, bind(1, TokenColumn::Access)).unwrap();
        let b = r.encrypt(TOKEN, bind(1, TokenColumn::Access)).unwrap();
        assert_ne!(a, b);
        // The nonces (24 bytes after the header) differ, not only the tags.
        assert_ne!(a.as_bytes()[4..28], b.as_bytes()[4..28]);
    }

    #[test]
    fn rotation_new_writes_use_primary_old_rows_still_decrypt_retired_key_fails_closed() {
        let old = ring(&[("k1", 1)]);
        let old_ct = old.encrypt(TOKEN, bind(1, TokenColumn::Access)).unwrap();

        let rotated = ring(&[("k2", 2), ("k1", 1)]);
        assert_eq!(rotated.primary_key_id(), "k2");
        let new_ct = rotated.encrypt(TOKEN, bind(1, TokenColumn::Access)).unwrap();
        assert_eq!(rotated.key_id_of(&new_ct), Some("k2"));
        assert_eq!(rotated.key_id_of(&old_ct), Some("k1"));
        assert_eq!(rotated.decrypt(&old_ct, bind(1, TokenColumn::Access)).unwrap().expose(), TOKEN);
        assert_eq!(rotated.decrypt(&new_ct, bind(1, TokenColumn::Access)).unwrap().expose(), TOKEN);

        let retired = ring(&[("k2", 2)]);
        assert_eq!(retired.decrypt(&old_ct, bind(1, TokenColumn::Access)), Err(CipherError::UnknownKey("k1".into())));
        assert_eq!(
            retired.decrypt(&old_ct, bind(1, TokenColumn::Access)).unwrap_err().to_string(),
            "ciphertext key `k1` is not in the keyring (retired?)"
        );
    }

    #[test]
    fn a_key_id_swapped_in_the_header_does_not_decrypt_with_the_other_key() {
        // Both keys equal bytes would be a misconfiguration; with distinct keys, relabelling fails.
        let r = ring(&[("k2", 2), ("k1", 1)]);
        let ct = r.encrypt(TOKEN, bind(1, TokenColumn::Access)).unwrap();
        let mut bytes = ct.into_bytes();
        bytes[3] = b'1'; // "k2" -> "k1"
        assert_eq!(
            r.decrypt(&EncryptedToken::from_bytes(bytes), bind(1, TokenColumn::Access)),
            Err(CipherError::Tampered)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let r = ring(&[("k1", 1)]);
        for bytes in [vec![], vec![1], vec![9; 64], vec![1, 0, 0, 0]] {
            assert_eq!(
                r.decrypt(&EncryptedToken::from_bytes(bytes), bind(1, TokenColumn::Access)),
                Err(CipherError::Malformed)
            );
        }
    }

    #[test]
    fn key_config_errors_name_the_setting_and_never_the_key() {
        let short = STANDARD.encode([7u8; 16]);
        let cases: Vec<(String, KeyConfigError)> = vec![
            ("".into(), KeyConfigError::Empty { setting: "TOKEN_ENCRYPTION_KEYS" }),
            ("nokid".into(), KeyConfigError::BadEntry { setting: "TOKEN_ENCRYPTION_KEYS", index: 1 }),
            (format!("bad kid:{}", key(1)), KeyConfigError::BadKeyId { setting: "TOKEN_ENCRYPTION_KEYS", index: 1 }),
            ("k1:%%%".into(), KeyConfigError::NotBase64 { setting: "TOKEN_ENCRYPTION_KEYS", kid: "k1".into() }),
            (
                format!("k1:{short}"),
                KeyConfigError::WrongLength {
                    setting: "TOKEN_ENCRYPTION_KEYS",
                    kid: "k1".into(),
                    got: 16,
                    expected: "32",
                },
            ),
            (
                format!("k1:{},k1:{}", key(1), key(2)),
                KeyConfigError::DuplicateKeyId { setting: "TOKEN_ENCRYPTION_KEYS", kid: "k1".into() },
            ),
        ];
        for (cfg, want) in cases {
            let err = TokenKeyring::from_config(&cfg).unwrap_err();
            assert_eq!(err, want);
            let msg = err.to_string();
            assert!(msg.starts_with("TOKEN_ENCRYPTION_KEYS"), "{msg}");
            assert!(!msg.contains(&short) && !msg.contains(&key(1)), "{msg}");
        }
        assert!(!format!("{:?}", ring(&[("k1", 1)])).contains(&key(1)));
    }

    #[test]
    fn generated_keys_are_accepted() {
        let cfg = format!("a:{},b:{}", generate_key_base64(), generate_key_base64());
        assert_eq!(TokenKeyring::from_config(&cfg).unwrap().primary_key_id(), "a");
    }
}

mod session_jwt {
    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

    /// 64 bytes, so the same secret can also sign HS384 (which needs 48) in the attack tests.
    fn sig_key() -> String {
        STANDARD.encode([42u8; 64])
    }

    fn codec() -> JwtCodec {
        JwtCodec::from_config(&sig_key(), JwtSettings::default()).unwrap()
    }

    fn claims() -> SessionClaims {
        SessionClaims {
            session_id: SessionId::from_bytes([1; 16]),
            user_id: UserId::from_bytes([2; 16]),
            token_id: TokenId::from_bytes([3; 16]),
            issued_at: NOW,
            expires_at: NOW.plus(Duration::from_secs(3600)),
        }
    }

    fn st(ts: Timestamp) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(ts.unix_seconds() as u64)
    }

    /// A token with the given header fields and payload tweaks, signed with `alg` and the key.
    fn forge(header_fields: &[(&str, serde_json::Value)], tweak: impl FnOnce(&mut JwtPayload), alg384: bool) -> String {
        let mut header = JwsHeader::new();
        header.set_token_type("spotauth-session+jwt");
        for (k, v) in header_fields {
            header.set_claim(k, Some(v.clone())).unwrap();
        }
        let mut p = JwtPayload::new();
        p.set_issuer("spotauth");
        p.set_audience(vec!["spotauth-session"]);
        p.set_subject(UserId::from_bytes([2; 16]).to_string());
        p.set_jwt_id(TokenId::from_bytes([3; 16]).to_string());
        p.set_issued_at(&st(NOW));
        p.set_not_before(&st(NOW));
        p.set_expires_at(&st(NOW.plus(Duration::from_secs(3600))));
        p.set_claim("sid", Some(SessionId::from_bytes([1; 16]).to_string().into())).unwrap();
        tweak(&mut p);
        let k = STANDARD.decode(sig_key()).unwrap();
        if alg384 {
            jwt::encode_with_signer(&p, &header, &HS384.signer_from_bytes(&k).unwrap()).unwrap()
        } else {
            jwt::encode_with_signer(&p, &header, &HS256.signer_from_bytes(&k).unwrap()).unwrap()
        }
    }

    #[test]
    fn issue_then_verify_round_trips() {
        let c = codec();
        let t = c.issue(&claims()).unwrap();
        assert_eq!(c.verify(t.expose(), NOW).unwrap(), claims());
        // The forge helper makes a valid token when nothing is tweaked (so the attacks below
        // fail for the reason they test, not by accident).
        assert_eq!(c.verify(&forge(&[], |_| {}, false), NOW).unwrap(), claims());
    }

    #[test]
    fn alg_none_is_rejected() {
        let c = codec();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"spotauth-session+jwt"}"#);
        let valid = c.issue(&claims()).unwrap();
        let payload = valid.expose().split('.').nth(1).unwrap();
        for t in [format!("{header}.{payload}."), format!("{header}.{payload}")] {
            assert_eq!(c.verify(&t, NOW), Err(SessionTokenError::Malformed));
        }
    }

    #[test]
    fn a_switched_algorithm_is_rejected() {
        assert_eq!(codec().verify(&forge(&[], |_| {}, true), NOW), Err(SessionTokenError::Malformed));
        // Header relabelled to HS512 on an HS256 signature.
        let t = codec().issue(&claims()).unwrap();
        let mut parts: Vec<String> = t.expose().split('.').map(str::to_owned).collect();
        parts[0] = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","typ":"spotauth-session+jwt"}"#);
        assert_eq!(codec().verify(&parts.join("."), NOW), Err(SessionTokenError::Malformed));
    }

    #[test]
    fn jku_jwk_x5u_headers_are_rejected() {
        for (k, v) in [
            ("jku", serde_json::json!("https://evil.example/jwks.json")),
            ("jwk", serde_json::json!({"kty": "oct", "k": "AAAA"})),
            ("x5u", serde_json::json!("https://evil.example/cert.pem")),
            ("kid", serde_json::json!("../../dev/null")),
        ] {
            assert_eq!(codec().verify(&forge(&[(k, v)], |_| {}, false), NOW), Err(SessionTokenError::Malformed), "{k}");
        }
    }

    #[test]
    fn wrong_typ_iss_aud_are_rejected() {
        let c = codec();
        let t = forge(&[("typ", serde_json::json!("JWT"))], |_| {}, false);
        assert_eq!(c.verify(&t, NOW), Err(SessionTokenError::Malformed));
        let t = forge(&[], |p| p.set_issuer("someone-else"), false);
        assert_eq!(c.verify(&t, NOW), Err(SessionTokenError::WrongAudience));
        let t = forge(&[], |p| p.set_audience(vec!["another-app"]), false);
        assert_eq!(c.verify(&t, NOW), Err(SessionTokenError::WrongAudience));
    }

    #[test]
    fn expired_and_not_yet_valid_are_rejected() {
        let c = codec();
        let t = c.issue(&claims()).unwrap();
        assert_eq!(c.verify(t.expose(), NOW.plus(Duration::from_secs(3600))), Err(SessionTokenError::Expired));
        assert_eq!(c.verify(t.expose(), NOW.minus(Duration::from_secs(31))), Err(SessionTokenError::NotYetValid));
        // Within the 30 s leeway for a slightly slow clock on another instance.
        assert!(c.verify(t.expose(), NOW.minus(Duration::from_secs(29))).is_ok());
    }

    #[test]
    fn another_key_or_a_changed_payload_fails_the_signature() {
        let other = JwtCodec::from_config(&key(43), JwtSettings::default()).unwrap();
        let t = codec().issue(&claims()).unwrap();
        assert_eq!(other.verify(t.expose(), NOW), Err(SessionTokenError::BadSignature));
        let mut parts: Vec<String> = t.expose().split('.').map(str::to_owned).collect();
        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        payload["sub"] = UserId::from_bytes([9; 16]).to_string().into();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
        assert_eq!(codec().verify(&parts.join("."), NOW), Err(SessionTokenError::BadSignature));
    }

    /// The codec's own keyed HMAC is plain HS256: josekit's OpenSSL verifier accepts what it
    /// signs (the other direction is `issue_then_verify_round_trips`' forged token), and a
    /// signature cut short, extended or emptied fails.
    #[test]
    fn the_keyed_hmac_is_standard_hs256_and_checks_the_whole_signature() {
        let t = codec().issue(&claims()).unwrap();
        let k = STANDARD.decode(sig_key()).unwrap();
        jwt::decode_with_verifier(t.expose(), &HS256.verifier_from_bytes(&k).unwrap()).unwrap();
        let (signed, sig) = t.expose().rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        assert_eq!(sig.len(), 32);
        let mut longer = sig.clone();
        longer.push(0);
        for bad in [&sig[..31], &sig[..16], &longer[..], &[][..]] {
            let forged = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(bad));
            assert!(codec().verify(&forged, NOW).is_err(), "signature of {} bytes", bad.len());
        }
    }

    #[test]
    fn garbage_is_malformed() {
        for t in ["", "a.b", "a.b.c", "....", &"x".repeat(10_000)] {
            assert_eq!(codec().verify(t, NOW), Err(SessionTokenError::Malformed), "{t:.20}");
        }
    }

    #[test]
    fn signing_key_errors_name_the_setting() {
        let short = STANDARD.encode([1u8; 31]);
        let e = JwtCodec::from_config(&short, JwtSettings::default()).unwrap_err();
        assert_eq!(e.to_string(), "SESSION_SIGNING_KEY: key `-` is 31 bytes, expected at least 32");
        assert!(
            JwtCodec::from_config("", JwtSettings::default()).unwrap_err().to_string().contains("SESSION_SIGNING_KEY")
        );
        assert!(
            JwtCodec::from_config("!!", JwtSettings::default())
                .unwrap_err()
                .to_string()
                .contains("SESSION_SIGNING_KEY")
        );
    }
}

#[test]
fn digests_are_stable_distinct_and_domain_separated() {
    let d = Sha256Digests;
    let a = d.token_id(&TokenId::from_bytes([1; 16]));
    assert_eq!(a, d.token_id(&TokenId::from_bytes([1; 16])));
    assert_ne!(a, d.token_id(&TokenId::from_bytes([2; 16])));
    assert_ne!(a.as_bytes()[..16], [1u8; 16]);
    let state = |s: &str| OAuthState::new(s).unwrap();
    let s1 = d.oauth_state(&state("state-one-with-enough-entropy-0001"));
    assert_eq!(s1, d.oauth_state(&state("state-one-with-enough-entropy-0001")));
    assert_ne!(s1, d.oauth_state(&state("state-two-with-enough-entropy-0002")));
}

#[test]
fn os_ids_and_jitter() {
    let ids = OsIds;
    let max = std::time::Duration::from_millis(50);
    assert!((0..100).map(|_| ids.jitter(max)).all(|j| j <= max));
    assert_eq!(ids.jitter(std::time::Duration::ZERO), std::time::Duration::ZERO);
    assert_ne!(ids.new_user_id(), ids.new_user_id());
    assert_eq!(uuid::Uuid::from_bytes(*ids.new_token_id().as_bytes()).get_version_num(), 4);
    let _ = ids.new_session_id();
}

mod properties {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use proptest::prelude::*;
    use spotauth_crypto::{JwtCodec, JwtSettings};
    use spotauth_domain::ports::SessionTokenCodec;
    use spotauth_domain::time::Timestamp;

    fn codec() -> JwtCodec {
        JwtCodec::from_config(&STANDARD.encode([42u8; 64]), JwtSettings::default()).unwrap()
    }

    proptest! {
        /// No string is a session token unless we signed it: arbitrary text, and tokens shaped
        /// like ours (three base64url segments of arbitrary JSON-ish bytes) never verify and
        /// never panic, with or without the time checks.
        #[test]
        fn no_forged_or_garbled_token_verifies(
            text in "[ -~]{0,300}",
            header in proptest::collection::vec(any::<u8>(), 0..80),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            signature in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let c = codec();
            let now = Timestamp::from_unix_seconds(1_800_000_000);
            prop_assert!(c.verify(&text, now).is_err());
            prop_assert!(c.verify_ignoring_time(&text).is_err());
            let shaped = [header, payload, signature].map(|part| URL_SAFE_NO_PAD.encode(part)).join(".");
            prop_assert!(c.verify(&shaped, now).is_err());
            prop_assert!(c.verify_ignoring_time(&shaped).is_err());
        }
    }
}
