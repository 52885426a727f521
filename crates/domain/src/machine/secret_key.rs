//! The key a machine secret is sealed under, derived from the machine's EK
//! fingerprint. The vault derives it to seal, the CLI (`secret get
//! --decrypt`) and the machine itself to open: one derivation, here, so
//! that they cannot drift apart.
//!
//! The stored fingerprint is bare lower-case hex; a person or a machine may
//! also write it as `X-EK-Fingerprint` is sent, with a `sha256:` /
//! `sha384:` prefix. The prefix only names the digest and is not part of
//! the key material, so both spellings derive the same key.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// HKDF salt of machine-secret keys (the seed's).
pub const HKDF_SALT: &str = "ITL.ControlPlane.Attestation.SecretVault.v1";
/// HKDF info of machine-secret keys (the seed's).
pub const HKDF_INFO: &str = "machine-secret-encryption";
/// The key derivation, as reported to machines in the sealed blob.
pub const KDF: &str = "HKDF-SHA256";
/// The cipher, as reported to machines in the sealed blob.
pub const ALGORITHM: &str = "AES-256-GCM";
/// Length of the derived key (AES-256).
pub const KEY_LEN: usize = 32;

/// The EK fingerprint a machine key was asked for is not hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("EK fingerprint is not hexadecimal")]
pub struct NotHexFingerprint;

/// HKDF-SHA256(ikm = the hex-decoded fingerprint, salt = [`HKDF_SALT`],
/// info = [`HKDF_INFO`]), [`KEY_LEN`] bytes.
///
/// `ek_fingerprint` is trimmed; an optional `sha256:` / `sha384:` prefix
/// (any case) is dropped; hex digits may be of either case. The length is
/// not checked: the key is defined for whatever the vault has stored.
pub fn machine_secret_key(
    ek_fingerprint: &str,
) -> Result<Zeroizing<[u8; KEY_LEN]>, NotHexFingerprint> {
    let fp = ek_fingerprint.trim();
    let hex_digits = match fp.split_once(':') {
        Some((prefix, rest))
            if prefix.eq_ignore_ascii_case("sha256") || prefix.eq_ignore_ascii_case("sha384") =>
        {
            rest
        }
        _ => fp,
    };
    let ikm = Zeroizing::new(hex::decode(hex_digits).map_err(|_| NotHexFingerprint)?);
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    Hkdf::<Sha256>::new(Some(HKDF_SALT.as_bytes()), &ikm)
        .expand(HKDF_INFO.as_bytes(), key.as_mut())
        // 32 bytes is far below HKDF-SHA256's limit of 255 × 32.
        .map_err(|_| NotHexFingerprint)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Expected keys computed independently with Python's `cryptography`:
    /// `HKDF(SHA256(), 32, salt=b"ITL.ControlPlane.Attestation.SecretVault.v1",
    /// info=b"machine-secret-encryption").derive(bytes.fromhex(fp))`.
    #[test]
    fn keys_match_the_seed() {
        let cases = [
            (
                "a".repeat(64),
                "51e85fac10a49130a4f0974477eeb3954e80ac89190dfd6ceaf3d135bfbb276a",
            ),
            (
                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".to_owned(),
                "df5ee0c38b0693469e51be5c7a2997068fd436e4fee97874c8c21850707b8e65",
            ),
        ];
        for (fp, want) in cases {
            assert_eq!(hex::encode(*machine_secret_key(&fp).unwrap()), want, "{fp}");
        }
    }

    #[test]
    fn prefix_case_and_whitespace_do_not_change_the_key() {
        let fp = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let key = machine_secret_key(fp).unwrap();
        for spelling in [
            format!("sha256:{fp}"),
            format!("SHA256:{}", fp.to_uppercase()),
            format!("  {fp}\n"),
        ] {
            assert_eq!(machine_secret_key(&spelling).unwrap(), key, "{spelling}");
        }
        assert_eq!(machine_secret_key("not hex"), Err(NotHexFingerprint));
        assert_eq!(machine_secret_key("md5:00"), Err(NotHexFingerprint));
    }
}
