//! API key values: minted at random, stored only as their SHA-256.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of every key value, so a leaked key is recognisable in scanners
/// and logs.
pub const KEY_PREFIX: &str = "cck_";

/// A new key value: the prefix and 32 random bytes in hex (256 bits).
pub fn mint() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// What is stored and looked up: lowercase hex SHA-256 of the value. The
/// lookup is by index on the hash, so comparing the secret itself never
/// happens (and with it no timing difference between near misses).
pub fn key_hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_hashed() {
        let (a, b) = (mint(), mint());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 64);
        assert_eq!(key_hash(&a).len(), 64);
        assert_ne!(key_hash(&a), key_hash(&b));
        assert_eq!(key_hash("x"), key_hash("x"));
    }
}
