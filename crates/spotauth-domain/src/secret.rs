//! Secret-holding values. None of them prints its content in `Debug` or `Display`.

use std::fmt;

/// A secret string. `Debug` and `Display` print `[redacted]`; the only way to read it is
/// [`Secret::expose`], which makes every use greppable.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Never log or format the result.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why a secret value was refused by a constructor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The value was empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// The value was longer than the limit.
    #[error("{0} is longer than {1} bytes")]
    TooLong(&'static str, usize),
    /// The value held whitespace or control characters.
    #[error("{0} holds whitespace or control characters")]
    BadCharacters(&'static str),
}

macro_rules! secret_newtype {
    ($(#[$doc:meta])* $name:ident, $label:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(Secret);

        impl $name {
            /// Validates and wraps the value: non-empty, at most the length limit, printable
            /// ASCII without spaces.
            pub fn new(value: impl Into<String>) -> Result<Self, SecretError> {
                let value = value.into();
                if value.is_empty() {
                    return Err(SecretError::Empty($label));
                }
                if value.len() > $max {
                    return Err(SecretError::TooLong($label, $max));
                }
                if !value.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(SecretError::BadCharacters($label));
                }
                Ok($name(Secret(value)))
            }

            /// The secret itself. Never log or format the result.
            pub fn expose(&self) -> &str {
                self.0.expose()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }
    };
}

secret_newtype!(
    /// A Spotify access token (Bearer). Valid for about an hour.
    AccessToken, "access token", 4096
);
secret_newtype!(
    /// A Spotify refresh token. Valid until 6 months after the original authorization.
    RefreshToken, "refresh token", 4096
);
secret_newtype!(
    /// A one-time OAuth authorization code from Spotify's redirect.
    AuthorizationCode, "authorization code", 2048
);
secret_newtype!(
    /// A PKCE code verifier (RFC 7636), 43 to 128 characters.
    PkceVerifier, "PKCE verifier", 128
);
secret_newtype!(
    /// The OAuth `state` of one login attempt.
    OAuthState, "OAuth state", 512
);
secret_newtype!(
    /// A signed session token (JWT) handed to a browser.
    SessionToken, "session token", 8192
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let t = AccessToken::new("BQDsecretvalue").unwrap();
        assert!(!format!("{t:?}").contains("BQD"));
        assert!(!format!("{t}").contains("BQD"));
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(t.expose(), "BQDsecretvalue");
    }

    #[test]
    fn constructors_validate() {
        assert_eq!(RefreshToken::new(""), Err(SecretError::Empty("refresh token")));
        assert!(matches!(RefreshToken::new("a b"), Err(SecretError::BadCharacters(_))));
        assert!(matches!(PkceVerifier::new("x".repeat(129)), Err(SecretError::TooLong(_, 128))));
    }
}
