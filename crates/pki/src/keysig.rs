//! Checking signatures that certificate holders make with their own key
//! (e.g. a machine proving possession at `/machines/enroll`), as opposed to
//! the CA signatures on certificates that `verify.rs` checks.

use der::asn1::ObjectIdentifier;
use der::Decode;
use rsa::traits::PublicKeyParts;
use sha2::Digest;
use signature::hazmat::PrehashVerifier;
use signature::Verifier;
use spki::{DecodePublicKey, SubjectPublicKeyInfoRef};

use crate::PkiError;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// Smallest RSA modulus whose signatures we accept.
const MIN_RSA_BITS: usize = 2048;

/// Verifies `signature` over `message` with the public key `spki_der`
/// (SubjectPublicKeyInfo DER, e.g. [`crate::VerifiedClientCert::spki_der`]).
///
/// Accepted, matching what `openssl dgst -sha256|-sha384 -sign` produces:
/// RSA (>= 2048 bits) PKCS#1 v1.5 with SHA-256; ECDSA P-256 with SHA-256;
/// ECDSA P-384 with SHA-384 or SHA-256. ECDSA signatures may be DER or raw
/// fixed-width `r || s`; high-S values are accepted because OpenSSL does
/// not normalise them.
///
/// Errors: `SignatureMismatch` when the signature is wrong or unparseable,
/// `Malformed` for an unparseable key, `UnsupportedAlgorithm` for other
/// key types and RSA keys under 2048 bits.
pub fn verify_with_spki(spki_der: &[u8], message: &[u8], signature: &[u8]) -> Result<(), PkiError> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| PkiError::Malformed(format!("public key: {e}")))?;
    let oid = spki.algorithm.oid;
    let ok = if oid == OID_RSA_ENCRYPTION {
        verify_rsa(spki_der, message, signature)?
    } else if oid == OID_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters_oid()
            .map_err(|e| PkiError::Malformed(format!("EC key parameters: {e}")))?;
        if curve == OID_PRIME256V1 {
            let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki_der)
                .map_err(|e| PkiError::Malformed(format!("P-256 public key: {e}")))?;
            ecdsa_p256(&key, message, signature)
        } else if curve == OID_SECP384R1 {
            let key = p384::ecdsa::VerifyingKey::from_public_key_der(spki_der)
                .map_err(|e| PkiError::Malformed(format!("P-384 public key: {e}")))?;
            ecdsa_p384(&key, message, signature)
        } else {
            return Err(PkiError::UnsupportedAlgorithm(format!("EC curve {curve}")));
        }
    } else {
        return Err(PkiError::UnsupportedAlgorithm(format!(
            "public key algorithm {oid}"
        )));
    };
    if ok {
        Ok(())
    } else {
        Err(PkiError::SignatureMismatch)
    }
}

fn verify_rsa(spki_der: &[u8], message: &[u8], signature: &[u8]) -> Result<bool, PkiError> {
    let key = rsa::RsaPublicKey::from_public_key_der(spki_der)
        .map_err(|e| PkiError::Malformed(format!("RSA public key: {e}")))?;
    let bits = key.n().bits();
    if bits < MIN_RSA_BITS {
        return Err(PkiError::UnsupportedAlgorithm(format!(
            "RSA key of {bits} bits; at least {MIN_RSA_BITS} are required"
        )));
    }
    let Ok(sig) = rsa::pkcs1v15::Signature::try_from(signature) else {
        return Ok(false);
    };
    Ok(rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key)
        .verify(message, &sig)
        .is_ok())
}

/// DER first (what OpenSSL emits), then raw `r || s`; the two cannot be
/// confused because a DER signature is never exactly twice the field size.
macro_rules! parse_ecdsa_fn {
    ($name:ident, $curve:ident) => {
        fn $name(sig: &[u8]) -> Option<$curve::ecdsa::Signature> {
            $curve::ecdsa::Signature::from_der(sig)
                .or_else(|_| $curve::ecdsa::Signature::from_slice(sig))
                .ok()
        }
    };
}

parse_ecdsa_fn!(parse_p256, p256);
parse_ecdsa_fn!(parse_p384, p384);

fn ecdsa_p256(key: &p256::ecdsa::VerifyingKey, message: &[u8], sig: &[u8]) -> bool {
    let Some(sig) = parse_p256(sig) else {
        return false;
    };
    key.verify_prehash(&sha2::Sha256::digest(message), &sig)
        .is_ok()
}

fn ecdsa_p384(key: &p384::ecdsa::VerifyingKey, message: &[u8], sig: &[u8]) -> bool {
    let Some(sig) = parse_p384(sig) else {
        return false;
    };
    key.verify_prehash(&sha2::Sha384::digest(message), &sig)
        .is_ok()
        || key
            .verify_prehash(&sha2::Sha256::digest(message), &sig)
            .is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::OnceLock;

    use rand_core::{OsRng, RngCore};
    use sha2::Digest;
    use signature::hazmat::PrehashSigner;
    use signature::{SignatureEncoding, Signer};
    use spki::EncodePublicKey;

    use super::verify_with_spki;
    use crate::PkiError;

    const MSG: &[u8] = b"enroll machine m-1 nonce 42";

    fn mismatch(r: Result<(), PkiError>) {
        assert!(matches!(r, Err(PkiError::SignatureMismatch)), "{r:?}");
    }

    fn rsa_2048() -> &'static rsa::RsaPrivateKey {
        static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| rsa::RsaPrivateKey::new(&mut OsRng, 2048).unwrap())
    }

    fn rsa_spki(key: &rsa::RsaPrivateKey) -> Vec<u8> {
        key.to_public_key().to_public_key_der().unwrap().into_vec()
    }

    #[test]
    fn p256_der_and_raw_with_sha256() {
        let key = p256::ecdsa::SigningKey::random(&mut OsRng);
        let spki = key.verifying_key().to_public_key_der().unwrap();
        let sig: p256::ecdsa::Signature = key.sign(MSG);
        let der = sig.to_der().to_vec();
        let raw = sig.to_vec();
        assert_eq!(raw.len(), 64);
        verify_with_spki(spki.as_bytes(), MSG, &der).unwrap();
        verify_with_spki(spki.as_bytes(), MSG, &raw).unwrap();

        mismatch(verify_with_spki(spki.as_bytes(), b"other", &der));
        mismatch(verify_with_spki(
            spki.as_bytes(),
            MSG,
            &der[..der.len() - 1],
        ));
        mismatch(verify_with_spki(spki.as_bytes(), MSG, &raw[..63]));
        mismatch(verify_with_spki(spki.as_bytes(), MSG, &[]));
        let other = p256::ecdsa::SigningKey::random(&mut OsRng);
        let other_spki = other.verifying_key().to_public_key_der().unwrap();
        mismatch(verify_with_spki(other_spki.as_bytes(), MSG, &der));

        // P-256 is only accepted with SHA-256.
        let sha384 = sha2::Sha384::digest(MSG);
        let sig384: p256::ecdsa::Signature = key.sign_prehash(&sha384).unwrap();
        mismatch(verify_with_spki(
            spki.as_bytes(),
            MSG,
            &sig384.to_der().to_vec(),
        ));
    }

    #[test]
    fn p384_with_sha384_or_sha256() {
        let key = p384::ecdsa::SigningKey::random(&mut OsRng);
        let spki = key.verifying_key().to_public_key_der().unwrap();
        let sig384: p384::ecdsa::Signature = key.sign(MSG);
        let sig256: p384::ecdsa::Signature = key.sign_prehash(&sha2::Sha256::digest(MSG)).unwrap();
        for sig in [sig384, sig256] {
            verify_with_spki(spki.as_bytes(), MSG, &sig.to_der().to_vec()).unwrap();
            verify_with_spki(spki.as_bytes(), MSG, &sig.to_vec()).unwrap();
            mismatch(verify_with_spki(spki.as_bytes(), b"other", &sig.to_vec()));
        }
        let sha512: p384::ecdsa::Signature = key.sign_prehash(&sha2::Sha512::digest(MSG)).unwrap();
        mismatch(verify_with_spki(spki.as_bytes(), MSG, &sha512.to_vec()));
        // A P-256 key does not verify a P-384 signature and vice versa.
        let p256_spki = p256::ecdsa::SigningKey::random(&mut OsRng)
            .verifying_key()
            .to_public_key_der()
            .unwrap();
        mismatch(verify_with_spki(
            p256_spki.as_bytes(),
            MSG,
            &sig384.to_vec(),
        ));
    }

    #[test]
    fn rsa_pkcs1v15_sha256() {
        let key = rsa_2048();
        let spki = rsa_spki(key);
        let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
        let sig = signer.sign(MSG).to_vec();
        verify_with_spki(&spki, MSG, &sig).unwrap();
        mismatch(verify_with_spki(&spki, b"other", &sig));
        mismatch(verify_with_spki(&spki, MSG, &sig[..sig.len() - 1]));
        let mut flipped = sig.clone();
        flipped[10] ^= 0x01;
        mismatch(verify_with_spki(&spki, MSG, &flipped));
        // Only SHA-256 is accepted.
        let sha384 = rsa::pkcs1v15::SigningKey::<sha2::Sha384>::new(key.clone());
        mismatch(verify_with_spki(&spki, MSG, &sha384.sign(MSG).to_vec()));
        // An EC key does not verify an RSA signature.
        let ec = p256::ecdsa::SigningKey::random(&mut OsRng);
        let ec_spki = ec.verifying_key().to_public_key_der().unwrap();
        mismatch(verify_with_spki(ec_spki.as_bytes(), MSG, &sig));
    }

    #[test]
    fn short_rsa_keys_are_refused() {
        let key = rsa::RsaPrivateKey::new(&mut OsRng, 1024).unwrap();
        let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
        let sig = signer.sign(MSG).to_vec();
        let r = verify_with_spki(&rsa_spki(&key), MSG, &sig);
        assert!(
            matches!(&r, Err(PkiError::UnsupportedAlgorithm(m)) if m.contains("1024 bits")),
            "{r:?}"
        );
    }

    #[test]
    fn unsupported_and_malformed_keys() {
        let ed25519_spki = [
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ]
        .iter()
        .copied()
        .chain([7u8; 32])
        .collect::<Vec<_>>();
        assert!(matches!(
            verify_with_spki(&ed25519_spki, MSG, &[0; 64]),
            Err(PkiError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            verify_with_spki(b"not der", MSG, &[0; 64]),
            Err(PkiError::Malformed(_))
        ));
    }

    /// Arbitrary bytes never panic: random inputs, every truncation and
    /// single-bit flips of valid keys and signatures.
    #[test]
    fn garbage_never_panics() {
        let p256 = p256::ecdsa::SigningKey::random(&mut OsRng);
        let p384 = p384::ecdsa::SigningKey::random(&mut OsRng);
        let p256_sig: p256::ecdsa::Signature = p256.sign(MSG);
        let p384_sig: p384::ecdsa::Signature = p384.sign(MSG);
        let rsa_signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(rsa_2048().clone());
        let cases = [
            (
                p256.verifying_key().to_public_key_der().unwrap().into_vec(),
                p256_sig.to_der().to_vec(),
            ),
            (
                p384.verifying_key().to_public_key_der().unwrap().into_vec(),
                p384_sig.to_der().to_vec(),
            ),
            (rsa_spki(rsa_2048()), rsa_signer.sign(MSG).to_vec()),
        ];
        for (spki, sig) in &cases {
            for n in 0..spki.len() {
                let _ = verify_with_spki(&spki[..n], MSG, sig);
            }
            for n in 0..sig.len() {
                assert!(verify_with_spki(spki, MSG, &sig[..n]).is_err());
            }
            for i in 0..spki.len().min(200) {
                let mut bad = spki.clone();
                bad[i] ^= 0x80;
                let _ = verify_with_spki(&bad, MSG, sig);
            }
            for i in 0..sig.len() {
                let mut bad = sig.clone();
                bad[i] ^= 0x01;
                assert!(verify_with_spki(spki, MSG, &bad).is_err());
            }
            // All-zero and all-ones signatures of plausible lengths.
            for len in [0, 1, 64, 96, 255, 256, 257, 512, 4096] {
                assert!(verify_with_spki(spki, MSG, &vec![0; len]).is_err());
                assert!(verify_with_spki(spki, MSG, &vec![0xff; len]).is_err());
            }
        }
        let mut buf = [0u8; 600];
        for _ in 0..300 {
            OsRng.fill_bytes(&mut buf);
            let split = usize::from(buf[0]) * 2;
            let _ = verify_with_spki(&buf[..split], MSG, &buf[split..]);
            for (spki, _) in &cases {
                assert!(verify_with_spki(spki, MSG, &buf[..split]).is_err());
            }
        }
    }
}
