//! TPM2_MakeCredential done on the server (TPM 2.0 Part 1 §24, "Credential
//! Protection"), for RSA and ECC EKs, and the tpm2-tools credential file.
//!
//! seed → (RSA) OAEP(nameAlg, label "IDENTITY\0") to the EK, or (ECC) KDFe
//! over an ephemeral ECDH with the EK; symKey = KDFa(nameAlg, seed,
//! "STORAGE", akName, ∅, EK AES bits); encIdentity = AES-CFB(symKey, IV=0,
//! TPM2B(secret)); hmacKey = KDFa(nameAlg, seed, "INTEGRITY", ∅, ∅, digest
//! bits); TPM2B_ID_OBJECT = TPM2B(TPM2B(HMAC(hmacKey, encIdentity || akName)) || encIdentity).
//! Only the TPM holding the EK private key *and* a loaded object with that
//! Name can run TPM2_ActivateCredential on it.

use cfb_mode::cipher::{AsyncStreamCipher, KeyIvInit};
use hmac::{Mac, SimpleHmac};
use rand_core::CryptoRngCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::ek::EkPublicKey;
use crate::keys::{ecc_x_y, PublicKey};
use crate::wire::alg::HashAlg;
use crate::wire::public::PublicUnique;
use crate::wire::reader::{Reader, Writer};
use crate::wire::WireError;

/// tpm2-tools credential file magic.
pub const TPM2_TOOLS_CRED_MAGIC: u32 = 0xBADC_C0DE;
/// tpm2-tools credential file version.
pub const TPM2_TOOLS_CRED_VERSION: u32 = 1;

/// MakeCredential failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// AK Name is not nameAlg || digest.
    #[error("AK name must be a 2-byte hash algorithm id followed by a digest of that algorithm")]
    BadName,
    /// Secret empty or larger than the EK nameAlg digest.
    #[error("credential secret must be 1..={max} bytes, got {got}")]
    SecretSize {
        /// Allowed maximum.
        max: usize,
        /// Given.
        got: usize,
    },
    /// Encryption failure.
    #[error("credential encryption failed: {0}")]
    Crypto(String),
    /// Malformed blob or file.
    #[error("malformed credential blob: {0}")]
    Malformed(String),
    /// Integrity HMAC mismatch when opening (wrong EK or wrong Name).
    #[error("credential integrity check failed")]
    Integrity,
    /// Encoding failed.
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// Output of MakeCredential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialBlob {
    /// TPM2B_ID_OBJECT (with its size prefix).
    pub id_object: Vec<u8>,
    /// TPM2B_ENCRYPTED_SECRET (with its size prefix).
    pub encrypted_secret: Vec<u8>,
}

impl CredentialBlob {
    /// The file `tpm2_activatecredential -i` reads: magic 0xBADCC0DE,
    /// version 1 (both big-endian u32), TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET.
    pub fn to_tpm2_tools_file(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(TPM2_TOOLS_CRED_MAGIC).u32(TPM2_TOOLS_CRED_VERSION);
        w.bytes(&self.id_object).bytes(&self.encrypted_secret);
        w.into_vec()
    }

    /// Parses the tpm2-tools credential file (e.g. from `tpm2_makecredential -o`).
    pub fn from_tpm2_tools_file(bytes: &[u8]) -> Result<Self, CredentialError> {
        let mut r = Reader::new(bytes);
        let m = |e: WireError| CredentialError::Malformed(e.to_string());
        if r.u32("magic").map_err(m)? != TPM2_TOOLS_CRED_MAGIC {
            return Err(CredentialError::Malformed("bad magic".into()));
        }
        if r.u32("version").map_err(m)? != TPM2_TOOLS_CRED_VERSION {
            return Err(CredentialError::Malformed("unsupported version".into()));
        }
        let id = r.tpm2b(1024, "TPM2B_ID_OBJECT").map_err(m)?;
        let sec = r.tpm2b(1024, "TPM2B_ENCRYPTED_SECRET").map_err(m)?;
        r.finish("credential file").map_err(m)?;
        let wrap = |b: &[u8]| crate::wire::reader::wrap_tpm2b(b, "blob");
        Ok(Self {
            id_object: wrap(id)?,
            encrypted_secret: wrap(sec)?,
        })
    }
}

/// HMAC with the given hash over the concatenation of `parts`.
pub(crate) fn hmac(hash: HashAlg, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<D: sha2::Digest + sha2::digest::core_api::BlockSizeUser>(
        key: &[u8],
        parts: &[&[u8]],
    ) -> Vec<u8> {
        // SimpleHmac accepts keys of any length.
        let mut m = match <SimpleHmac<D> as Mac>::new_from_slice(key) {
            Ok(m) => m,
            Err(_) => return Vec::new(),
        };
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }
    match hash {
        HashAlg::Sha1 => run::<sha1::Sha1>(key, parts),
        HashAlg::Sha256 => run::<sha2::Sha256>(key, parts),
        HashAlg::Sha384 => run::<sha2::Sha384>(key, parts),
        HashAlg::Sha512 => run::<sha2::Sha512>(key, parts),
    }
}

/// KDFa (SP 800-108 counter mode with HMAC, Part 1 §11.4.10.2). `label` is
/// given without its terminating zero, which is added here.
pub fn kdfa(
    hash: HashAlg,
    key: &[u8],
    label: &str,
    context_u: &[u8],
    context_v: &[u8],
    bits: u32,
) -> Vec<u8> {
    let want = (bits as usize).div_ceil(8);
    let mut out = Vec::with_capacity(want + hash.size());
    let mut counter: u32 = 1;
    while out.len() < want {
        let block = hmac(
            hash,
            key,
            &[
                &counter.to_be_bytes(),
                label.as_bytes(),
                &[0],
                context_u,
                context_v,
                &bits.to_be_bytes(),
            ],
        );
        out.extend_from_slice(&block);
        counter = counter.wrapping_add(1);
    }
    out.truncate(want);
    out
}

/// KDFe (SP 800-56A concatenation KDF, Part 1 §11.4.10.3).
pub fn kdfe(
    hash: HashAlg,
    z: &[u8],
    label: &str,
    party_u: &[u8],
    party_v: &[u8],
    bits: u32,
) -> Vec<u8> {
    let want = (bits as usize).div_ceil(8);
    let mut out = Vec::with_capacity(want + hash.size());
    let mut counter: u32 = 1;
    while out.len() < want {
        out.extend_from_slice(&hash.digest(&[
            &counter.to_be_bytes(),
            z,
            label.as_bytes(),
            &[0],
            party_u,
            party_v,
        ]));
        counter = counter.wrapping_add(1);
    }
    out.truncate(want);
    out
}

fn check_name(name: &[u8]) -> Result<(), CredentialError> {
    match name {
        [hi, lo, digest @ ..] => match HashAlg::from_tpm(u16::from_be_bytes([*hi, *lo])) {
            Some(h) if h.size() == digest.len() => Ok(()),
            _ => Err(CredentialError::BadName),
        },
        _ => Err(CredentialError::BadName),
    }
}

fn aes_cfb(encrypt: bool, key: &[u8], buf: &mut [u8]) -> Result<(), CredentialError> {
    let iv = [0u8; 16];
    let bad = |_| CredentialError::Crypto("bad AES key length".into());
    match key.len() {
        16 => {
            if encrypt {
                cfb_mode::Encryptor::<aes::Aes128>::new_from_slices(key, &iv)
                    .map_err(bad)?
                    .encrypt(buf);
            } else {
                cfb_mode::Decryptor::<aes::Aes128>::new_from_slices(key, &iv)
                    .map_err(bad)?
                    .decrypt(buf);
            }
        }
        32 => {
            if encrypt {
                cfb_mode::Encryptor::<aes::Aes256>::new_from_slices(key, &iv)
                    .map_err(bad)?
                    .encrypt(buf);
            } else {
                cfb_mode::Decryptor::<aes::Aes256>::new_from_slices(key, &iv)
                    .map_err(bad)?
                    .decrypt(buf);
            }
        }
        _ => {
            return Err(CredentialError::Crypto(
                "EK symmetric key must be AES-128 or AES-256".into(),
            ))
        }
    }
    Ok(())
}

/// Server-side TPM2_MakeCredential: protects `secret` (1..=digest-size bytes)
/// so only the TPM owning `ek` can release it, and only to an object named `ak_name`.
pub fn make_credential(
    ek: &EkPublicKey,
    ak_name: &[u8],
    secret: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<CredentialBlob, CredentialError> {
    check_name(ak_name)?;
    let h = ek.name_alg;
    if secret.is_empty() || secret.len() > h.size() {
        return Err(CredentialError::SecretSize {
            max: h.size(),
            got: secret.len(),
        });
    }
    let bits = u32::try_from(h.size() * 8).unwrap_or(256);
    let (seed, encrypted) = match &ek.key {
        PublicKey::Rsa(k) => {
            let mut seed = Zeroizing::new(vec![0u8; h.size()]);
            rng.fill_bytes(&mut seed);
            let enc = k
                .encrypt(rng, oaep_identity(h), &seed)
                .map_err(|e| CredentialError::Crypto(e.to_string()))?;
            (seed, enc)
        }
        PublicKey::P256(k) => {
            let eph = p256::ecdh::EphemeralSecret::random(rng);
            let z = eph.diffie_hellman(k);
            ecc_seed(
                h,
                bits,
                z.raw_secret_bytes(),
                &PublicKey::P256(eph.public_key()),
                ek,
            )?
        }
        PublicKey::P384(k) => {
            let eph = p384::ecdh::EphemeralSecret::random(rng);
            let z = eph.diffie_hellman(k);
            ecc_seed(
                h,
                bits,
                z.raw_secret_bytes(),
                &PublicKey::P384(eph.public_key()),
                ek,
            )?
        }
    };
    let id_object = protect(h, ek.sym_key_bits, &seed, ak_name, secret)?;
    Ok(CredentialBlob {
        id_object: crate::wire::reader::wrap_tpm2b(&id_object, "TPM2B_ID_OBJECT")?,
        encrypted_secret: crate::wire::reader::wrap_tpm2b(&encrypted, "TPM2B_ENCRYPTED_SECRET")?,
    })
}

pub(crate) fn oaep_identity(h: HashAlg) -> rsa::Oaep {
    const LABEL: &str = "IDENTITY\0";
    match h {
        HashAlg::Sha1 => rsa::Oaep::new_with_label::<sha1::Sha1, _>(LABEL),
        HashAlg::Sha256 => rsa::Oaep::new_with_label::<sha2::Sha256, _>(LABEL),
        HashAlg::Sha384 => rsa::Oaep::new_with_label::<sha2::Sha384, _>(LABEL),
        HashAlg::Sha512 => rsa::Oaep::new_with_label::<sha2::Sha512, _>(LABEL),
    }
}

/// The EK's x coordinate as the TPM stores it (for KDFe partyVInfo).
fn ek_x(ek: &EkPublicKey) -> Result<Vec<u8>, CredentialError> {
    if let Some(PublicUnique::Ecc { x, .. }) = ek.area.as_ref().map(|a| &a.unique) {
        return Ok(x.clone());
    }
    ecc_x_y(&ek.key)
        .map(|(x, _)| x)
        .ok_or(CredentialError::Crypto("EK is not an EC key".into()))
}

fn ecc_seed(
    h: HashAlg,
    bits: u32,
    z: &[u8],
    eph: &PublicKey,
    ek: &EkPublicKey,
) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CredentialError> {
    let (ex, ey) = ecc_x_y(eph).ok_or(CredentialError::Crypto("ephemeral key".into()))?;
    let seed = Zeroizing::new(kdfe(h, z, "IDENTITY", &ex, &ek_x(ek)?, bits));
    let mut w = Writer::new();
    w.tpm2b(&ex, "x")?.tpm2b(&ey, "y")?;
    Ok((seed, w.into_vec()))
}

/// Builds the inner TPM2B_ID_OBJECT body from a seed.
fn protect(
    h: HashAlg,
    sym_bits: u16,
    seed: &[u8],
    name: &[u8],
    secret: &[u8],
) -> Result<Vec<u8>, CredentialError> {
    let sym_key = Zeroizing::new(kdfa(h, seed, "STORAGE", name, &[], u32::from(sym_bits)));
    let mut enc = crate::wire::reader::wrap_tpm2b(secret, "credential")?;
    aes_cfb(true, &sym_key, &mut enc)?;
    let hmac_key = Zeroizing::new(kdfa(
        h,
        seed,
        "INTEGRITY",
        &[],
        &[],
        u32::try_from(h.size() * 8).unwrap_or(256),
    ));
    let integrity = hmac(h, &hmac_key, &[&enc, name]);
    let mut w = Writer::new();
    w.tpm2b(&integrity, "integrityHMAC")?.bytes(&enc);
    Ok(w.into_vec())
}

/// The TPM side of ActivateCredential once the seed is recovered: checks the
/// HMAC against `name` and decrypts. Used by [`crate::soft`] and tests.
pub(crate) fn unprotect(
    h: HashAlg,
    sym_bits: u16,
    seed: &[u8],
    name: &[u8],
    id_object: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CredentialError> {
    let mut r = Reader::new(id_object);
    let m = |e: WireError| CredentialError::Malformed(e.to_string());
    let inner = r.tpm2b(1024, "TPM2B_ID_OBJECT").map_err(m)?;
    r.finish("TPM2B_ID_OBJECT").map_err(m)?;
    let mut r = Reader::new(inner);
    let integrity = r.tpm2b(64, "integrityHMAC").map_err(m)?;
    let enc = r.bytes(r.remaining(), "encIdentity").map_err(m)?;
    let hmac_key = Zeroizing::new(kdfa(
        h,
        seed,
        "INTEGRITY",
        &[],
        &[],
        u32::try_from(h.size() * 8).unwrap_or(256),
    ));
    if !bool::from(hmac(h, &hmac_key, &[enc, name]).ct_eq(integrity)) {
        return Err(CredentialError::Integrity);
    }
    let sym_key = Zeroizing::new(kdfa(h, seed, "STORAGE", name, &[], u32::from(sym_bits)));
    let mut plain = Zeroizing::new(enc.to_vec());
    aes_cfb(false, &sym_key, &mut plain)?;
    let mut r = Reader::new(&plain);
    let secret = r.tpm2b(64, "credential").map_err(m)?.to_vec();
    r.finish("credential").map_err(m)?;
    Ok(Zeroizing::new(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kdfa_shapes() {
        let a = kdfa(HashAlg::Sha256, b"k", "STORAGE", b"n", b"", 128);
        assert_eq!(a.len(), 16);
        let b = kdfa(HashAlg::Sha256, b"k", "STORAGE", b"n", b"", 256);
        assert_eq!(
            &b[..16],
            &kdfa(HashAlg::Sha256, b"k", "STORAGE", b"n", b"", 256)[..16]
        );
        assert_eq!(
            kdfe(HashAlg::Sha384, b"z", "IDENTITY", b"u", b"v", 384).len(),
            48
        );
    }

    #[test]
    fn file_format_round_trip() {
        let blob = CredentialBlob {
            id_object: vec![0, 2, 1, 2],
            encrypted_secret: vec![0, 1, 9],
        };
        let f = blob.to_tpm2_tools_file();
        assert_eq!(&f[..8], &[0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1]);
        assert_eq!(CredentialBlob::from_tpm2_tools_file(&f).unwrap(), blob);
    }
}
