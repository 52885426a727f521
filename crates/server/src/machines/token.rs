//! Config tokens: bearer credentials for `GET /api/v1/config/{token}`.
//! Only their SHA-256 is stored, so a database dump hands out no configs.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh token and the hash to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// 43 URL-safe characters (256 random bits); returned once.
    pub token: String,
    /// Hex SHA-256 of `token`.
    pub hash: String,
}

/// Draws a new token from the OS random generator.
pub fn issue() -> IssuedToken {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    IssuedToken { token, hash }
}

/// The stored form of `token`.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_url_safe_and_hash_to_the_stored_form() {
        let a = issue();
        let b = issue();
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), 43);
        assert!(a
            .token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(hash(&a.token), a.hash);
        assert_ne!(a.hash, a.token);
    }
}
