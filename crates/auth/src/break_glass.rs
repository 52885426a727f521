//! The break-glass shared token (`ITL_ADMIN_TOKEN`).
//!
//! Compared in constant time over SHA-256 digests: equal-length inputs to
//! `subtle`, so neither the content nor the length of the configured token
//! leaks through timing.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize_on_drop::Digest32;

use crate::AuthSetupError;

/// Length below which a warning is logged at start-up.
const RECOMMENDED_MIN_LEN: usize = 32;

/// The configured break-glass token, held only as its digest.
pub struct BreakGlassToken {
    digest: Digest32,
}

impl fmt::Debug for BreakGlassToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BreakGlassToken([redacted])")
    }
}

impl BreakGlassToken {
    /// Wraps the configured token. Empty tokens are refused: an empty secret
    /// would be a trivially guessable one. Surrounding whitespace (a trailing
    /// newline from a secret file) is ignored, as it is in the header: it
    /// could otherwise never match.
    pub fn new(token: &SecretString) -> Result<Self, AuthSetupError> {
        let token = token.expose_secret().trim();
        if token.trim().is_empty() {
            return Err(AuthSetupError::EmptyAdminToken);
        }
        if token.len() < RECOMMENDED_MIN_LEN {
            tracing::warn!(
                "the admin (break-glass) token is shorter than {RECOMMENDED_MIN_LEN} characters; use a long random value"
            );
        }
        Ok(Self {
            digest: Digest32(Sha256::digest(token.as_bytes()).into()),
        })
    }

    /// Constant-time comparison of `candidate` with the configured token.
    pub fn matches(&self, candidate: &str) -> bool {
        let candidate: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        bool::from(self.digest.0.ct_eq(&candidate))
    }
}

mod zeroize_on_drop {
    /// A digest wiped from memory on drop.
    pub(super) struct Digest32(pub(super) [u8; 32]);

    impl Drop for Digest32 {
        fn drop(&mut self) {
            zeroize::Zeroize::zeroize(&mut self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_exact_token() {
        let t = BreakGlassToken::new(&SecretString::from("correct horse battery staple")).unwrap();
        assert!(t.matches("correct horse battery staple"));
        assert!(!t.matches("correct horse battery stapl"));
        assert!(!t.matches("correct horse battery staple "));
        assert!(!t.matches(""));
        assert!(format!("{t:?}").contains("redacted"));
    }

    #[test]
    fn configured_token_with_trailing_newline_still_matches() {
        // Regression: the header value is trimmed, so an untrimmed configured
        // token (e.g. read from a secret file) could never match.
        let t =
            BreakGlassToken::new(&SecretString::from("correct horse battery staple\n")).unwrap();
        assert!(t.matches("correct horse battery staple"));
    }

    #[test]
    fn empty_token_is_refused() {
        assert!(BreakGlassToken::new(&SecretString::from("  ")).is_err());
    }
}
