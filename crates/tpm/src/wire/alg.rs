//! TPM_ALG_ID, TPM_ECC_CURVE and TPM_ST constants (Part 2 §6) and the hash
//! algorithms this library computes.

use sha2::Digest;

/// TPM_ALG_RSA
pub const TPM_ALG_RSA: u16 = 0x0001;
/// TPM_ALG_SHA1
pub const TPM_ALG_SHA1: u16 = 0x0004;
/// TPM_ALG_AES
pub const TPM_ALG_AES: u16 = 0x0006;
/// TPM_ALG_KEYEDHASH
pub const TPM_ALG_KEYEDHASH: u16 = 0x0008;
/// TPM_ALG_SHA256
pub const TPM_ALG_SHA256: u16 = 0x000B;
/// TPM_ALG_SHA384
pub const TPM_ALG_SHA384: u16 = 0x000C;
/// TPM_ALG_SHA512
pub const TPM_ALG_SHA512: u16 = 0x000D;
/// TPM_ALG_NULL
pub const TPM_ALG_NULL: u16 = 0x0010;
/// TPM_ALG_SM4
pub const TPM_ALG_SM4: u16 = 0x0013;
/// TPM_ALG_RSASSA
pub const TPM_ALG_RSASSA: u16 = 0x0014;
/// TPM_ALG_RSAES
pub const TPM_ALG_RSAES: u16 = 0x0015;
/// TPM_ALG_RSAPSS
pub const TPM_ALG_RSAPSS: u16 = 0x0016;
/// TPM_ALG_OAEP
pub const TPM_ALG_OAEP: u16 = 0x0017;
/// TPM_ALG_ECDSA
pub const TPM_ALG_ECDSA: u16 = 0x0018;
/// TPM_ALG_ECDH
pub const TPM_ALG_ECDH: u16 = 0x0019;
/// TPM_ALG_ECDAA
pub const TPM_ALG_ECDAA: u16 = 0x001A;
/// TPM_ALG_SM2
pub const TPM_ALG_SM2: u16 = 0x001B;
/// TPM_ALG_ECSCHNORR
pub const TPM_ALG_ECSCHNORR: u16 = 0x001C;
/// TPM_ALG_ECMQV
pub const TPM_ALG_ECMQV: u16 = 0x001D;
/// TPM_ALG_KDF1_SP800_56A
pub const TPM_ALG_KDF1_SP800_56A: u16 = 0x0020;
/// TPM_ALG_KDF2
pub const TPM_ALG_KDF2: u16 = 0x0021;
/// TPM_ALG_KDF1_SP800_108
pub const TPM_ALG_KDF1_SP800_108: u16 = 0x0022;
/// TPM_ALG_ECC
pub const TPM_ALG_ECC: u16 = 0x0023;
/// TPM_ALG_SYMCIPHER
pub const TPM_ALG_SYMCIPHER: u16 = 0x0025;
/// TPM_ALG_CAMELLIA
pub const TPM_ALG_CAMELLIA: u16 = 0x0026;
/// TPM_ALG_CFB
pub const TPM_ALG_CFB: u16 = 0x0043;

/// TPM_ECC_NIST_P256
pub const TPM_ECC_NIST_P256: u16 = 0x0003;
/// TPM_ECC_NIST_P384
pub const TPM_ECC_NIST_P384: u16 = 0x0004;

/// TPM_GENERATED_VALUE: every TPMS_ATTEST made by a TPM starts with it.
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
/// TPM_ST_ATTEST_QUOTE
pub const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;

/// Hash algorithms used for PCR banks, signatures and names.
///
/// SHA-1 is listed so a sha1 PCR bank can be parsed and its digests checked;
/// it is never accepted as a signature hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashAlg {
    /// SHA-1 (PCR banks only).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// Maps a TPM_ALG_ID, if it is a hash this library computes.
    pub fn from_tpm(id: u16) -> Option<Self> {
        match id {
            TPM_ALG_SHA1 => Some(Self::Sha1),
            TPM_ALG_SHA256 => Some(Self::Sha256),
            TPM_ALG_SHA384 => Some(Self::Sha384),
            TPM_ALG_SHA512 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The TPM_ALG_ID.
    pub fn tpm_id(self) -> u16 {
        match self {
            Self::Sha1 => TPM_ALG_SHA1,
            Self::Sha256 => TPM_ALG_SHA256,
            Self::Sha384 => TPM_ALG_SHA384,
            Self::Sha512 => TPM_ALG_SHA512,
        }
    }

    /// Digest length in bytes.
    pub fn size(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// Name as used in `"sha256:7"` PCR keys and in tpm2-tools.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// Parses `"sha256"` etc.
    pub fn from_name(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "sha1" => Some(Self::Sha1),
            "sha256" => Some(Self::Sha256),
            "sha384" => Some(Self::Sha384),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// Hashes the concatenation of `parts`.
    pub fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut h = D::new();
            for p in parts {
                h.update(p);
            }
            h.finalize().to_vec()
        }
        match self {
            Self::Sha1 => run::<sha1::Sha1>(parts),
            Self::Sha256 => run::<sha2::Sha256>(parts),
            Self::Sha384 => run::<sha2::Sha384>(parts),
            Self::Sha512 => run::<sha2::Sha512>(parts),
        }
    }
}

impl std::fmt::Display for HashAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_known_answer() {
        assert_eq!(
            hex::encode(HashAlg::Sha1.digest(&[b"abc"])),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex::encode(HashAlg::Sha1.digest(&[b""])),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
    }
}
