//! Key pairs for subjects that let the CA generate their key, and what a
//! subject's public key is (algorithm and size), for profile checks and
//! for refusing weak keys.

use aws_lc_rs::encoding::AsDer;
use const_oid::db::rfc5912::{
    ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1, SECP_521_R_1,
};
use der::pem::LineEnding;
use der::Decode;
use spki::{DecodePublicKey, SubjectPublicKeyInfoRef};
use zeroize::Zeroizing;

use crate::{KeyAlgorithm, PkiError};

/// Smallest RSA modulus certified, in bits.
const MIN_RSA_BITS: u32 = 2048;
/// Largest RSA modulus accepted at all (parsing cost stays bounded).
const MAX_RSA_BITS: usize = 16384;

/// What a public key is: `algorithm` `"ECDSA"` or `"RSA"`, `bits` the
/// curve size (256, 384, 521) or the modulus length (2048, 3072, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDescription {
    /// `"ECDSA"` or `"RSA"`.
    pub algorithm: &'static str,
    /// Key size in bits.
    pub bits: u32,
}

impl KeyDescription {
    /// The matching [`KeyAlgorithm`], if it is one (P-521 and unusual RSA
    /// sizes are not).
    pub fn key_algorithm(&self) -> Option<KeyAlgorithm> {
        KeyAlgorithm::from_family_and_bits(self.algorithm, self.bits)
    }
}

/// Generates a key pair: (SubjectPublicKeyInfo DER, PKCS#8 `PRIVATE KEY`
/// PEM, wiped on drop). AWS-LC generates, so even RSA-4096 takes well
/// under a second.
pub fn generate_key_pair(alg: KeyAlgorithm) -> Result<(Vec<u8>, Zeroizing<String>), PkiError> {
    use aws_lc_rs::signature::{
        EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING,
    };
    let crypto = |what: &str, e: &dyn std::fmt::Display| PkiError::Crypto(format!("{what}: {e}"));
    let (spki, pkcs8) = match alg {
        KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => {
            let signing = if alg == KeyAlgorithm::EcP256 {
                &ECDSA_P256_SHA256_ASN1_SIGNING
            } else {
                &ECDSA_P384_SHA384_ASN1_SIGNING
            };
            let pair =
                EcdsaKeyPair::generate(signing).map_err(|e| crypto("EC key generation", &e))?;
            let pkcs8 = pair.to_pkcs8v1().map_err(|e| crypto("EC key export", &e))?;
            let spki = pair
                .public_key()
                .as_der()
                .map_err(|e| crypto("EC public key export", &e))?;
            (
                spki.as_ref().to_vec(),
                Zeroizing::new(pkcs8.as_ref().to_vec()),
            )
        }
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            let pkcs8 = crate::signer::generate_rsa_pkcs8(alg.bits() as usize)?;
            let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&pkcs8)
                .map_err(|e| crypto("RSA key export", &e))?;
            let spki = pair
                .public_key()
                .as_der()
                .map_err(|e| crypto("RSA public key export", &e))?;
            (spki.as_ref().to_vec(), pkcs8)
        }
    };
    let pem = der::pem::encode_string("PRIVATE KEY", LineEnding::LF, &pkcs8)
        .map_err(|e| crypto("encode private key", &e))?;
    Ok((spki, Zeroizing::new(pem)))
}

/// What the public key `spki_der` (SubjectPublicKeyInfo DER) is. EC keys
/// must be on P-256, P-384 or P-521 (the point is checked for P-256 and
/// P-384, the curves this crate can certify); RSA keys of any size up to
/// 16384 bits are described, weak ones included, so a profile can say why
/// it refuses them.
pub fn key_algorithm_of(spki_der: &[u8]) -> Result<KeyDescription, PkiError> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| PkiError::Malformed(format!("public key: {e}")))?;
    let oid = spki.algorithm.oid;
    if oid == ID_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters_oid()
            .map_err(|e| PkiError::Malformed(format!("EC key parameters: {e}")))?;
        let bits = if curve == SECP_256_R_1 {
            p256::PublicKey::from_public_key_der(spki_der)
                .map_err(|e| PkiError::Malformed(format!("P-256 public key: {e}")))?;
            256
        } else if curve == SECP_384_R_1 {
            p384::PublicKey::from_public_key_der(spki_der)
                .map_err(|e| PkiError::Malformed(format!("P-384 public key: {e}")))?;
            384
        } else if curve == SECP_521_R_1 {
            521
        } else {
            return Err(PkiError::UnsupportedAlgorithm(format!("EC curve {curve}")));
        };
        return Ok(KeyDescription {
            algorithm: "ECDSA",
            bits,
        });
    }
    if oid == RSA_ENCRYPTION {
        let bytes = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| PkiError::Malformed("RSA public key bits".into()))?;
        let key = pkcs1::RsaPublicKey::from_der(bytes)
            .map_err(|e| PkiError::Malformed(format!("RSA public key: {e}")))?;
        let n = rsa::BigUint::from_bytes_be(key.modulus.as_bytes());
        let e = rsa::BigUint::from_bytes_be(key.public_exponent.as_bytes());
        let bits = n.bits();
        // Range checks on the modulus size and the exponent.
        rsa::RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS)
            .map_err(|e| PkiError::Malformed(format!("RSA public key: {e}")))?;
        return Ok(KeyDescription {
            algorithm: "RSA",
            bits: u32::try_from(bits).unwrap_or(u32::MAX),
        });
    }
    Err(PkiError::UnsupportedAlgorithm(format!(
        "public key algorithm {oid}"
    )))
}

/// The subject key of a leaf must be one this crate certifies: ECDSA P-256
/// or P-384, or RSA of at least 2048 bits.
pub(crate) fn check_subject_key(spki_der: &[u8]) -> Result<KeyDescription, PkiError> {
    let desc = key_algorithm_of(spki_der)?;
    match (desc.algorithm, desc.bits) {
        ("ECDSA", 256 | 384) => Ok(desc),
        ("ECDSA", bits) => Err(PkiError::UnsupportedAlgorithm(format!(
            "ECDSA P-{bits} subject keys (P-256 or P-384 only)"
        ))),
        (_, bits) if bits < MIN_RSA_BITS => Err(PkiError::UnsupportedAlgorithm(format!(
            "RSA subject key of {bits} bits; at least {MIN_RSA_BITS} are required"
        ))),
        _ => Ok(desc),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use spki::EncodePublicKey;

    #[test]
    fn generated_keys_describe_themselves_and_load_back() {
        use pkcs8::DecodePrivateKey;
        for alg in [
            KeyAlgorithm::EcP256,
            KeyAlgorithm::EcP384,
            KeyAlgorithm::Rsa2048,
        ] {
            let (spki, pem) = generate_key_pair(alg).unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{alg:?}");
            let desc = key_algorithm_of(&spki).unwrap();
            assert_eq!(desc.key_algorithm(), Some(alg));
            assert_eq!((desc.algorithm, desc.bits), (alg.family(), alg.bits()));
            check_subject_key(&spki).unwrap();
            // The private key is the public key's other half.
            let public = match alg {
                KeyAlgorithm::EcP256 => p256::SecretKey::from_pkcs8_pem(&pem)
                    .unwrap()
                    .public_key()
                    .to_public_key_der(),
                KeyAlgorithm::EcP384 => p384::SecretKey::from_pkcs8_pem(&pem)
                    .unwrap()
                    .public_key()
                    .to_public_key_der(),
                _ => rsa::RsaPrivateKey::from_pkcs8_pem(&pem)
                    .unwrap()
                    .to_public_key()
                    .to_public_key_der(),
            };
            assert_eq!(public.unwrap().as_bytes(), spki.as_slice(), "{alg:?}");
        }
    }

    #[test]
    fn weak_and_foreign_keys_are_described_or_refused() {
        let small = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
        let spki = small.to_public_key().to_public_key_der().unwrap();
        let desc = key_algorithm_of(spki.as_bytes()).unwrap();
        assert_eq!((desc.algorithm, desc.bits), ("RSA", 1024));
        assert_eq!(desc.key_algorithm(), None);
        assert!(matches!(
            check_subject_key(spki.as_bytes()),
            Err(PkiError::UnsupportedAlgorithm(m)) if m.contains("1024")
        ));
        assert!(matches!(
            key_algorithm_of(b"\x30\x00"),
            Err(PkiError::Malformed(_))
        ));
        // Ed25519 (RFC 8410 example key).
        let ed25519 = hex::decode(
            "302a300506032b657003210019bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1",
        )
        .unwrap();
        assert!(matches!(
            key_algorithm_of(&ed25519),
            Err(PkiError::UnsupportedAlgorithm(_))
        ));
        // A P-256 SPKI whose point is not on the curve.
        let (mut spki, _) = generate_key_pair(KeyAlgorithm::EcP256).unwrap();
        let last = spki.len() - 1;
        spki[last] ^= 1;
        assert!(matches!(
            key_algorithm_of(&spki),
            Err(PkiError::Malformed(_))
        ));
    }
}
