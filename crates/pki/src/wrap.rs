//! Encrypting an issued private key to a requester's RSA key, so
//! `request-cert` with `wrapping_key_pem` never returns the key in clear
//! (e.g. a TPM-resident RSA key can unwrap it with `TPM2_RSA_Decrypt`).
//!
//! RSA-OAEP is used directly, without a symmetric layer, because that is
//! what a TPM can decrypt on its own; the price is a size limit of
//! `k - 2*32 - 2` bytes for a `k`-byte modulus (190 for RSA-2048).

use der::pem::PemLabel;
use rsa::traits::PublicKeyParts;
use spki::{DecodePublicKey, ObjectIdentifier, SubjectPublicKeyInfoRef};
use zeroize::Zeroizing;

use crate::PkiError;

const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Smallest wrapping modulus accepted.
const MIN_WRAP_BITS: usize = 2048;

/// RSA-OAEP overhead with SHA-256: two hash lengths plus two bytes.
const OAEP_SHA256_OVERHEAD: usize = 2 * 32 + 2;

/// Wrapping-key sizes suggested when the key does not fit (the `rsa`
/// crate, like most deployments, stops at 4096).
const STANDARD_WRAP_BITS: [usize; 3] = [2048, 3072, 4096];

/// What the wrapped plaintext is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEncoding {
    /// The key PEM exactly as issued (`EC PRIVATE KEY` / `RSA PRIVATE KEY`).
    Pem,
    /// The DER inside that PEM (SEC1 or PKCS#1), used when the PEM is too
    /// large for the wrapping key.
    Der,
}

impl KeyEncoding {
    /// `"pem"` or `"der"`, for the API response.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pem => "pem",
            Self::Der => "der",
        }
    }
}

/// A private key encrypted with RSA-OAEP (SHA-256, MGF1-SHA-256, no label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The ciphertext, as long as the wrapping key's modulus.
    pub ciphertext: Vec<u8>,
    /// Whether the plaintext is the PEM or its DER.
    pub encoding: KeyEncoding,
}

/// Encrypts `key_pem` (a private key PEM as
/// [`crate::EnrollmentCa::issue_with_new_key`] returns it) to
/// `wrapping_key_pem`, an RSA public key of at least 2048 bits as
/// `PUBLIC KEY` (SubjectPublicKeyInfo) or `RSA PUBLIC KEY` (PKCS#1) PEM.
///
/// The PEM is wrapped if it fits, else its DER; if neither fits the error
/// ([`PkiError::WrappingKeyTooSmall`]) names the limit. EC keys always fit
/// an RSA-2048 wrapping key as DER; RSA keys never fit.
pub fn wrap_private_key(wrapping_key_pem: &str, key_pem: &str) -> Result<WrappedKey, PkiError> {
    let wrapping = parse_wrapping_key(wrapping_key_pem)?;
    let wrap_bits = wrapping.n().bits();
    if wrap_bits < MIN_WRAP_BITS {
        return Err(PkiError::UnsupportedAlgorithm(format!(
            "RSA wrapping key of {wrap_bits} bits; at least {MIN_WRAP_BITS} are required"
        )));
    }
    let capacity = oaep_capacity(wrapping.size());
    let der = private_key_der(key_pem)?;
    let pem = key_pem.as_bytes();
    let (plaintext, encoding) = if pem.len() <= capacity {
        (pem, KeyEncoding::Pem)
    } else if der.len() <= capacity {
        (der.as_slice(), KeyEncoding::Der)
    } else {
        return Err(PkiError::WrappingKeyTooSmall {
            wrap_bits,
            capacity,
            pem_len: pem.len(),
            der_len: der.len(),
            advice: advice(der.len()),
        });
    };
    let ciphertext = wrapping
        .encrypt(
            &mut rand_core::OsRng,
            rsa::Oaep::new::<sha2::Sha256>(),
            plaintext,
        )
        .map_err(|e| PkiError::Crypto(format!("RSA-OAEP: {e}")))?;
    Ok(WrappedKey {
        ciphertext,
        encoding,
    })
}

/// Largest RSA-OAEP-SHA256 plaintext for a `modulus_bytes`-byte key.
fn oaep_capacity(modulus_bytes: usize) -> usize {
    modulus_bytes.saturating_sub(OAEP_SHA256_OVERHEAD)
}

fn advice(der_len: usize) -> String {
    match STANDARD_WRAP_BITS
        .into_iter()
        .find(|bits| oaep_capacity(bits / 8) >= der_len)
    {
        Some(bits) => format!("use an RSA-{bits} or larger wrapping key"),
        None => "no RSA wrapping key up to 4096 bits can carry it; \
                 request an EC (P-256 or P-384) key instead"
            .to_owned(),
    }
}

fn parse_wrapping_key(pem: &str) -> Result<rsa::RsaPublicKey, PkiError> {
    use pkcs1::DecodeRsaPublicKey;
    let (label, der) = der::pem::decode_vec(pem.trim().as_bytes())
        .map_err(|e| PkiError::Malformed(format!("wrapping key PEM: {e}")))?;
    let bad_key = |e: &dyn std::fmt::Display| PkiError::Malformed(format!("wrapping key: {e}"));
    match label {
        "PUBLIC KEY" => {
            let spki =
                SubjectPublicKeyInfoRef::try_from(der.as_slice()).map_err(|e| bad_key(&e))?;
            if spki.algorithm.oid != OID_RSA_ENCRYPTION {
                return Err(PkiError::UnsupportedAlgorithm(format!(
                    "wrapping key must be RSA, not {}",
                    spki.algorithm.oid
                )));
            }
            rsa::RsaPublicKey::from_public_key_der(&der).map_err(|e| bad_key(&e))
        }
        "RSA PUBLIC KEY" => rsa::RsaPublicKey::from_pkcs1_der(&der).map_err(|e| bad_key(&e)),
        other => Err(PkiError::Malformed(format!(
            "wrapping key must be a PUBLIC KEY or RSA PUBLIC KEY PEM, not {other:?}"
        ))),
    }
}

/// The DER inside a private key PEM, checked to be a private key of the
/// kind its label says, so garbage is refused rather than wrapped.
fn private_key_der(pem: &str) -> Result<Zeroizing<Vec<u8>>, PkiError> {
    let (label, der) = der::pem::decode_vec(pem.trim().as_bytes())
        .map_err(|_| PkiError::Malformed("private key PEM could not be decoded".into()))?;
    let der = Zeroizing::new(der);
    let parsed = match label {
        sec1::EcPrivateKey::PEM_LABEL => sec1::EcPrivateKey::try_from(der.as_slice()).is_ok(),
        pkcs1::RsaPrivateKey::PEM_LABEL => pkcs1::RsaPrivateKey::try_from(der.as_slice()).is_ok(),
        pkcs8::PrivateKeyInfo::PEM_LABEL => pkcs8::PrivateKeyInfo::try_from(der.as_slice()).is_ok(),
        other => {
            return Err(PkiError::Malformed(format!(
                "expected a private key PEM, not {other:?}"
            )))
        }
    };
    if parsed {
        Ok(der)
    } else {
        Err(PkiError::Malformed(format!(
            "{label} PEM is not a valid key"
        )))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::OnceLock;

    use der::pem::LineEnding;
    use pkcs1::EncodeRsaPublicKey;
    use rand_core::{OsRng, RngCore};
    use spki::EncodePublicKey;

    use super::{oaep_capacity, wrap_private_key, KeyEncoding};
    use crate::PkiError;

    fn rsa_2048() -> &'static rsa::RsaPrivateKey {
        static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| rsa::RsaPrivateKey::new(&mut OsRng, 2048).unwrap())
    }

    fn spki_pem(key: &rsa::RsaPrivateKey) -> String {
        key.to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    }

    /// A SEC1 P-384 key PEM with curve parameters and public key, as
    /// `issue_with_new_key` makes it (167 bytes DER, 288 bytes PEM).
    fn p384_key_pem() -> String {
        use p384::elliptic_curve::sec1::ToEncodedPoint;
        let key = p384::SecretKey::random(&mut OsRng);
        let bytes = key.to_bytes();
        let point = key.public_key().to_encoded_point(false);
        let sec1 = sec1::EcPrivateKey {
            private_key: &bytes,
            parameters: Some(sec1::EcParameters::NamedCurve(
                const_oid::db::rfc5912::SECP_384_R_1,
            )),
            public_key: Some(point.as_bytes()),
        };
        let der = der::Encode::to_der(&sec1).unwrap();
        der::pem::encode_string("EC PRIVATE KEY", LineEnding::LF, &der).unwrap()
    }

    fn decrypt(key: &rsa::RsaPrivateKey, wrapped: &[u8]) -> Vec<u8> {
        key.decrypt(rsa::Oaep::new::<sha2::Sha256>(), wrapped)
            .unwrap()
    }

    #[test]
    fn capacities() {
        assert_eq!(oaep_capacity(256), 190);
        assert_eq!(oaep_capacity(384), 318);
        assert_eq!(oaep_capacity(512), 446);
        assert_eq!(oaep_capacity(10), 0);
    }

    #[test]
    fn p384_key_is_wrapped_as_der_for_rsa_2048() {
        let key_pem = p384_key_pem();
        assert_eq!(key_pem.len(), 288);
        let wrapping = rsa_2048();
        for pem in [
            spki_pem(wrapping),
            wrapping
                .to_public_key()
                .to_pkcs1_pem(LineEnding::LF)
                .unwrap(),
        ] {
            let wrapped = wrap_private_key(&pem, &key_pem).unwrap();
            assert_eq!(wrapped.encoding, KeyEncoding::Der);
            assert_eq!(wrapped.encoding.as_str(), "der");
            assert_eq!(wrapped.ciphertext.len(), 256);
            let plain = decrypt(wrapping, &wrapped.ciphertext);
            assert_eq!(plain.len(), 167);
            let (_, der) = der::pem::decode_vec(key_pem.as_bytes()).unwrap();
            assert_eq!(plain, der);
            // Randomised padding: wrapping twice gives different ciphertexts.
            let again = wrap_private_key(&pem, &key_pem).unwrap();
            assert_ne!(again.ciphertext, wrapped.ciphertext);
        }
    }

    #[test]
    fn short_pem_is_wrapped_as_pem() {
        // A SEC1 key without the optional fields is small enough as PEM.
        let key = p256::SecretKey::random(&mut OsRng);
        let bytes = key.to_bytes();
        let sec1 = sec1::EcPrivateKey {
            private_key: &bytes,
            parameters: None,
            public_key: None,
        };
        let der = der::Encode::to_der(&sec1).unwrap();
        let key_pem = der::pem::encode_string("EC PRIVATE KEY", LineEnding::LF, &der).unwrap();
        assert!(key_pem.len() <= 190);
        let wrapped = wrap_private_key(&spki_pem(rsa_2048()), &key_pem).unwrap();
        assert_eq!(wrapped.encoding, KeyEncoding::Pem);
        assert_eq!(decrypt(rsa_2048(), &wrapped.ciphertext), key_pem.as_bytes());
    }

    #[test]
    fn rsa_key_does_not_fit_and_the_error_says_why() {
        use pkcs1::EncodeRsaPrivateKey;
        let key_pem = rsa_2048().to_pkcs1_pem(LineEnding::LF).unwrap();
        let err = wrap_private_key(&spki_pem(rsa_2048()), &key_pem).unwrap_err();
        let PkiError::WrappingKeyTooSmall {
            wrap_bits,
            capacity,
            pem_len,
            der_len,
            ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!((*wrap_bits, *capacity), (2048, 190));
        assert_eq!(*pem_len, key_pem.len());
        assert!(*der_len > 1000);
        let msg = err.to_string();
        assert!(
            msg.starts_with("wrapping key RSA-2048 can carry 190 bytes with RSA-OAEP-SHA256"),
            "{msg}"
        );
        assert!(msg.contains("request an EC"), "{msg}");
        assert_eq!(super::advice(167), "use an RSA-2048 or larger wrapping key");
        assert_eq!(super::advice(300), "use an RSA-3072 or larger wrapping key");
        assert_eq!(super::advice(400), "use an RSA-4096 or larger wrapping key");
    }

    #[test]
    fn bad_wrapping_keys_are_refused() {
        let key_pem = p384_key_pem();
        let small = rsa::RsaPrivateKey::new(&mut OsRng, 1024).unwrap();
        let r = wrap_private_key(&spki_pem(&small), &key_pem);
        assert!(
            matches!(&r, Err(PkiError::UnsupportedAlgorithm(m)) if m.contains("1024 bits")),
            "{r:?}"
        );
        let ec = p256::SecretKey::random(&mut OsRng)
            .public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        assert!(matches!(
            wrap_private_key(&ec, &key_pem),
            Err(PkiError::UnsupportedAlgorithm(_))
        ));
        // A private key is not a wrapping key.
        assert!(matches!(
            wrap_private_key(&key_pem, &key_pem),
            Err(PkiError::Malformed(_))
        ));
        // And a public key is not a key to wrap.
        let wrapping = spki_pem(rsa_2048());
        assert!(matches!(
            wrap_private_key(&wrapping, &wrapping),
            Err(PkiError::Malformed(_))
        ));
    }

    /// Arbitrary input never panics, and never gets wrapped.
    #[test]
    fn garbage_never_panics() {
        let wrapping = spki_pem(rsa_2048());
        let key_pem = p384_key_pem();
        let mut inputs: Vec<String> = vec![
            String::new(),
            "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n".into(),
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n".into(),
            "-----BEGIN RSA PUBLIC KEY-----\nMAA=\n-----END RSA PUBLIC KEY-----\n".into(),
            "\u{0}\u{ffff}".into(),
        ];
        // Every truncation that cuts into the PEM footer or earlier.
        for n in (0..key_pem.len() - 1).step_by(7) {
            inputs.push(key_pem[..n].to_owned());
            inputs.push(wrapping[..n.min(wrapping.len())].to_owned());
        }
        let mut buf = [0u8; 400];
        for _ in 0..200 {
            OsRng.fill_bytes(&mut buf);
            inputs.push(String::from_utf8_lossy(&buf).into_owned());
            // Valid PEM framing around random DER.
            inputs.push(der::pem::encode_string("PUBLIC KEY", LineEnding::LF, &buf).unwrap());
            inputs.push(
                der::pem::encode_string("EC PRIVATE KEY", LineEnding::LF, &buf[..167]).unwrap(),
            );
        }
        for input in &inputs {
            let _ = wrap_private_key(input, &key_pem);
            assert!(wrap_private_key(&wrapping, input).is_err(), "{input:?}");
        }
    }
}
