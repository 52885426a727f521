//! PKCS#12 (RFC 7292) files holding certificates only, no key: a chain in
//! the one format Windows and Java tools import without a PEM step.
//!
//! Built by hand on `der` rather than with a PKCS#12 crate (none is on the
//! der 0.7 line here): an unencrypted `data` SafeContents of certBags,
//! integrity-protected by an HMAC-SHA-256 keyed by the RFC 7292 appendix B
//! password KDF, which is what OpenSSL 3 itself writes and checks. The
//! certificates are public, so they are not encrypted.

use aws_lc_rs::hmac;
use der::asn1::{Any, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Sequence};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::PkiError;

/// id-data (PKCS#7).
const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// certBag (RFC 7292 4.2.3).
const CERT_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.3");
/// x509Certificate certType (PKCS#9).
const X509_CERTIFICATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");
/// id-sha256.
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

/// OpenSSL 3's default MAC iteration count.
const MAC_ITERATIONS: u32 = 2048;
const MAC_SALT_LEN: usize = 16;
/// The appendix B KDF's diversifier for MAC keys.
const KDF_ID_MAC: u8 = 3;
/// SHA-256 output (u) and block (v) sizes in bytes.
const SHA256_U: usize = 32;
const SHA256_V: usize = 64;

/// PFX ::= SEQUENCE { version, authSafe ContentInfo, macData OPTIONAL }
#[derive(Sequence)]
struct Pfx {
    version: u8,
    auth_safe: ContentInfo,
    mac_data: Option<MacData>,
}

/// ContentInfo ::= SEQUENCE { contentType, content [0] EXPLICIT ANY OPTIONAL }
#[derive(Sequence)]
struct ContentInfo {
    content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    content: Option<Any>,
}

/// SafeBag ::= SEQUENCE { bagId, bagValue [0] EXPLICIT ANY, bagAttributes OPTIONAL }
/// (no attributes are written).
#[derive(Sequence)]
struct SafeBag {
    bag_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    bag_value: Any,
}

/// CertBag ::= SEQUENCE { certId, certValue [0] EXPLICIT OCTET STRING }
#[derive(Sequence)]
struct CertBag {
    cert_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    cert_value: OctetString,
}

/// MacData ::= SEQUENCE { mac DigestInfo, macSalt, iterations INTEGER DEFAULT 1 }
/// (never 1 here, so always written).
#[derive(Sequence)]
struct MacData {
    mac: DigestInfo,
    mac_salt: OctetString,
    iterations: u32,
}

/// DigestInfo ::= SEQUENCE { digestAlgorithm, digest OCTET STRING }
#[derive(Sequence)]
struct DigestInfo {
    digest_algorithm: AlgorithmIdentifierOwned,
    digest: OctetString,
}

/// A PKCS#12 file (DER) with one certBag per certificate of `chain_der`,
/// in order (leaf first, by convention), and no key. `password` keys the
/// integrity MAC; it may be empty (`openssl pkcs12 -passin pass:`).
pub fn pkcs12_certs_only(chain_der: &[Vec<u8>], password: &str) -> Result<Vec<u8>, PkiError> {
    if chain_der.is_empty() {
        return Err(PkiError::Malformed("PKCS#12: no certificate given".into()));
    }
    let encode = |e: der::Error| PkiError::Crypto(format!("encode PKCS#12: {e}"));
    let mut bags = Vec::with_capacity(chain_der.len());
    for (i, der) in chain_der.iter().enumerate() {
        Certificate::from_der(der)
            .map_err(|e| PkiError::Malformed(format!("PKCS#12: certificate {i}: {e}")))?;
        let bag = CertBag {
            cert_id: X509_CERTIFICATE,
            cert_value: OctetString::new(der.as_slice()).map_err(encode)?,
        };
        bags.push(SafeBag {
            bag_id: CERT_BAG,
            bag_value: Any::encode_from(&bag).map_err(encode)?,
        });
    }
    let safe_contents = bags.to_der().map_err(encode)?;
    let authenticated_safe = vec![data_content_info(safe_contents)?]
        .to_der()
        .map_err(encode)?;

    let mut salt = [0u8; MAC_SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    let key = kdf_sha256(
        &bmp_password(password),
        &salt,
        KDF_ID_MAC,
        MAC_ITERATIONS,
        SHA256_U,
    );
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &key),
        &authenticated_safe,
    );

    Pfx {
        version: 3,
        auth_safe: data_content_info(authenticated_safe)?,
        mac_data: Some(MacData {
            mac: DigestInfo {
                // RFC 5754: SHA-2 identifiers are written without parameters.
                digest_algorithm: AlgorithmIdentifierOwned {
                    oid: ID_SHA256,
                    parameters: None,
                },
                digest: OctetString::new(tag.as_ref()).map_err(encode)?,
            },
            mac_salt: OctetString::new(salt.as_slice()).map_err(encode)?,
            iterations: MAC_ITERATIONS,
        }),
    }
    .to_der()
    .map_err(encode)
}

/// A `data` ContentInfo wrapping `bytes` in an OCTET STRING.
fn data_content_info(bytes: Vec<u8>) -> Result<ContentInfo, PkiError> {
    let encode = |e: der::Error| PkiError::Crypto(format!("encode PKCS#12: {e}"));
    let octets = OctetString::new(bytes).map_err(encode)?;
    Ok(ContentInfo {
        content_type: ID_DATA,
        content: Some(Any::encode_from(&octets).map_err(encode)?),
    })
}

/// The password as RFC 7292 B.1 wants it: a BMPString (UTF-16 big endian)
/// with a two-byte NUL terminator, so "" is `00 00`.
fn bmp_password(password: &str) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(2 * password.len() + 2));
    for unit in password.encode_utf16() {
        out.extend_from_slice(&unit.to_be_bytes());
    }
    out.extend_from_slice(&[0, 0]);
    out
}

/// RFC 7292 appendix B.2 key derivation with SHA-256: `n` bytes for
/// diversifier `id` from the BMP password and the salt.
fn kdf_sha256(
    password: &[u8],
    salt: &[u8],
    id: u8,
    iterations: u32,
    n: usize,
) -> Zeroizing<Vec<u8>> {
    // S and P: salt and password repeated to whole v-byte blocks.
    let repeat = |src: &[u8]| -> Vec<u8> {
        if src.is_empty() {
            return Vec::new();
        }
        let len = SHA256_V * src.len().div_ceil(SHA256_V);
        src.iter().copied().cycle().take(len).collect()
    };
    let mut i_blocks = Zeroizing::new(repeat(salt));
    i_blocks.extend_from_slice(&Zeroizing::new(repeat(password)));
    let d = [id; SHA256_V];
    let mut out = Zeroizing::new(Vec::with_capacity(n.div_ceil(SHA256_U) * SHA256_U));
    while out.len() < n {
        let mut a = Sha256::new()
            .chain_update(d)
            .chain_update(&*i_blocks)
            .finalize();
        for _ in 1..iterations {
            a = Sha256::digest(a);
        }
        out.extend_from_slice(&a);
        if out.len() >= n {
            break;
        }
        // I_j = (I_j + B + 1) mod 2^(8v) for every v-byte block, B = A repeated.
        let b: Vec<u8> = a.iter().copied().cycle().take(SHA256_V).collect();
        for block in i_blocks.chunks_mut(SHA256_V) {
            let mut carry = 1u16;
            for (x, y) in block.iter_mut().zip(&b).rev() {
                let sum = u16::from(*x) + u16::from(*y) + carry;
                *x = sum.to_le_bytes()[0];
                carry = sum >> 8;
            }
        }
    }
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bmp_password_is_utf16_be_with_terminator() {
        assert_eq!(bmp_password("").as_slice(), &[0, 0]);
        assert_eq!(bmp_password("a€").as_slice(), &[0, 0x61, 0x20, 0xac, 0, 0]);
    }

    #[test]
    fn kdf_is_deterministic_and_longer_outputs_extend_shorter_ones() {
        let p = bmp_password("secret");
        let short = kdf_sha256(&p, b"saltsalt", KDF_ID_MAC, 10, 32);
        let long = kdf_sha256(&p, b"saltsalt", KDF_ID_MAC, 10, 80);
        assert_eq!(long.len(), 80);
        assert_eq!(&long[..32], short.as_slice());
        assert_ne!(&long[32..64], &long[..32]);
        assert_ne!(kdf_sha256(&p, b"saltsalt", 1, 10, 32), short);
        assert_ne!(kdf_sha256(&p, b"saltsalu", KDF_ID_MAC, 10, 32), short);
    }

    #[test]
    fn refuses_an_empty_chain_and_non_certificates() {
        assert!(matches!(
            pkcs12_certs_only(&[], ""),
            Err(PkiError::Malformed(_))
        ));
        assert!(matches!(
            pkcs12_certs_only(&[b"\x30\x00".to_vec()], ""),
            Err(PkiError::Malformed(_))
        ));
    }
}
