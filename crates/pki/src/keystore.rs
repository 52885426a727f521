//! Files on disk: atomic writes, restrictive modes, encrypted PKCS#8.
//!
//! The CA key is written as a standard `ENCRYPTED PRIVATE KEY` PEM (PBES2,
//! scrypt, AES-256-CBC) so operators can inspect or migrate it with
//! `openssl pkey -in ca-key.pem` and the passphrase.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use der::pem::LineEnding;
use pkcs8::{pkcs5, EncryptedPrivateKeyInfo, PrivateKeyInfo, SecretDocument};
use rand_core::{OsRng, RngCore};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::PkiError;

const SCRYPT_LOG_N: u8 = 14;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;

/// File mode for anything secret (key, passphrase).
pub(crate) const SECRET_MODE: u32 = 0o600;
/// File mode for public material (the CA certificate).
pub(crate) const PUBLIC_MODE: u32 = 0o644;

/// Creates `path` with `contents` atomically and without clobbering: a
/// temporary file in the same directory is written, synced and then
/// hard-linked to the target, so a crash never leaves a half-written key or
/// certificate behind, and an existing file (a CA key another process just
/// created) is never overwritten: that is an error instead.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut suffix = [0u8; 8];
    OsRng.fill_bytes(&mut suffix);
    let tmp = dir.join(format!(".{file_name}.{}.tmp", hex::encode(suffix)));

    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.open(&tmp).map_err(|e| PkiError::io(&tmp, e))?;
        file.write_all(contents)
            .map_err(|e| PkiError::io(&tmp, e))?;
        file.sync_all().map_err(|e| PkiError::io(&tmp, e))?;
        // link(2) fails with EEXIST instead of replacing the target.
        fs::hard_link(&tmp, path).map_err(|e| PkiError::io(path, e))?;
        // Make the new name durable.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    let _ = fs::remove_file(&tmp);
    result
}

/// Reads a whole file as UTF-8 text (PEM), wiping the buffer on drop.
pub(crate) fn read_text(path: &Path) -> Result<Zeroizing<String>, PkiError> {
    fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| PkiError::io(path, e))
}

/// Where the passphrase of a key file (the CA key, the audit checkpoint
/// key) came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassphraseSource {
    /// Supplied by configuration (or the caller of `from_files`).
    Configured,
    /// Read from (or generated into) a file next to the key. Anyone who can
    /// read the directory can then use the key: the server should log a
    /// loud warning asking for the passphrase to be moved into configuration.
    File(PathBuf),
    /// The operator-provided key file was not encrypted at all.
    Unencrypted,
}

/// Creates `dir` (and missing parents) with mode 0700 if it does not exist.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), PkiError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| PkiError::io(dir, e))
}

/// The passphrase of a key file whose generated passphrase would live at
/// `pass_path`: the configured one, else the file's, else `None` (a new
/// key generates one with [`generate_passphrase_file`]).
pub(crate) fn passphrase_for(
    configured: Option<SecretString>,
    pass_path: &Path,
) -> Result<(Option<SecretString>, PassphraseSource), PkiError> {
    Ok(match configured {
        Some(p) => (Some(p), PassphraseSource::Configured),
        None if pass_path.exists() => (
            Some(read_passphrase(pass_path)?),
            PassphraseSource::File(pass_path.to_path_buf()),
        ),
        None => (None, PassphraseSource::File(pass_path.to_path_buf())),
    })
}

/// A fresh random passphrase: 32 bytes from the OS, base64url.
pub(crate) fn generate_passphrase() -> SecretString {
    let mut bytes = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(bytes.as_mut());
    SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

/// Generates a passphrase into `pass_path` (mode 0600, never overwriting).
pub(crate) fn generate_passphrase_file(pass_path: &Path) -> Result<SecretString, PkiError> {
    let p = generate_passphrase();
    write_atomic(pass_path, p.expose_secret().as_bytes(), SECRET_MODE)?;
    Ok(p)
}

/// Reads a passphrase file, ignoring a trailing newline.
pub(crate) fn read_passphrase(path: &Path) -> Result<SecretString, PkiError> {
    let text = read_text(path)?;
    let trimmed = text.trim_end_matches(['\r', '\n']);
    if trimmed.is_empty() {
        return Err(PkiError::IncompleteCaState(format!(
            "passphrase file {} is empty",
            path.display()
        )));
    }
    Ok(SecretString::from(trimmed.to_owned()))
}

/// The one-line secret in `path` (mode 0600), generated with `generate`
/// when the file does not exist yet; `true` when this call created it. Of
/// two processes creating it at once, one writes and both read that.
///
/// For secrets the server generates on first start when none is
/// configured, e.g. the master key of `ITL_SHARED_SECRET_MASTER_KEY`.
pub fn read_or_create_secret_file(
    path: &Path,
    generate: impl FnOnce() -> SecretString,
) -> Result<(SecretString, bool), PkiError> {
    if path.exists() {
        return Ok((read_passphrase(path)?, false));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    let secret = generate();
    match write_atomic(path, secret.expose_secret().as_bytes(), SECRET_MODE) {
        Ok(()) => Ok((secret, true)),
        Err(PkiError::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok((read_passphrase(path)?, false))
        }
        Err(e) => Err(e),
    }
}

/// Encrypts a PKCS#8 `PrivateKeyInfo` (DER) into an `ENCRYPTED PRIVATE KEY` PEM.
///
/// scrypt with OpenSSL's own defaults (N = 2^14, r = 8, p = 1: 16 MiB),
/// AES-256-CBC, random salt and IV. The `pkcs8` crate's default N = 2^15
/// needs 32 MiB, over OpenSSL's scrypt memory limit, so `openssl pkey`
/// could not read the key.
pub(crate) fn encrypt_pkcs8_pem(
    pkcs8_der: &[u8],
    passphrase: &SecretString,
) -> Result<Zeroizing<String>, PkiError> {
    let info = PrivateKeyInfo::try_from(pkcs8_der)
        .map_err(|e| PkiError::Crypto(format!("encode private key: {e}")))?;
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut iv);
    let scrypt = pkcs5::scrypt::Params::new(SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P, 32)
        .map_err(|e| PkiError::Crypto(format!("scrypt parameters: {e}")))?;
    let params = pkcs5::pbes2::Parameters::scrypt_aes256cbc(scrypt, &salt, &iv)
        .map_err(|e| PkiError::Crypto(format!("PBES2 parameters: {e}")))?;
    let encrypted = info
        .encrypt_with_params(params, passphrase.expose_secret().as_bytes())
        .map_err(|e| PkiError::Crypto(format!("encrypt private key: {e}")))?;
    encrypted
        .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
        .map_err(|e| PkiError::Crypto(format!("encode PEM: {e}")))
}

/// Turns any supported private key PEM into plaintext PKCS#8 DER.
///
/// Accepts `ENCRYPTED PRIVATE KEY` (needs the passphrase), `PRIVATE KEY`,
/// `EC PRIVATE KEY` (SEC1) and `RSA PRIVATE KEY` (PKCS#1), so operators can
/// bring a CA made with openssl.
pub(crate) fn decode_private_key_pem(
    pem: &str,
    passphrase: Option<&SecretString>,
) -> Result<SecretDocument, PkiError> {
    let (label, der) = der::pem::decode_vec(pem.as_bytes())
        .map_err(|e| PkiError::Malformed(format!("private key PEM: {e}")))?;
    let der = Zeroizing::new(der);
    match label {
        "ENCRYPTED PRIVATE KEY" => {
            let passphrase = passphrase.ok_or_else(|| {
                PkiError::Malformed("the CA key is encrypted but no passphrase was given".into())
            })?;
            let info = EncryptedPrivateKeyInfo::try_from(der.as_slice())
                .map_err(|e| PkiError::Malformed(format!("encrypted private key: {e}")))?;
            info.decrypt(passphrase.expose_secret().as_bytes())
                .map_err(|_| PkiError::WrongPassphrase)
        }
        "PRIVATE KEY" => SecretDocument::try_from(der.as_slice())
            .map_err(|e| PkiError::Malformed(format!("private key: {e}"))),
        "EC PRIVATE KEY" => {
            use pkcs8::EncodePrivateKey;
            use sec1_compat::decode_sec1;
            let key = decode_sec1(der.as_slice())?;
            key.to_pkcs8_der()
                .map_err(|e| PkiError::Malformed(format!("EC private key: {e}")))
        }
        "RSA PRIVATE KEY" => {
            use pkcs1::DecodeRsaPrivateKey;
            use pkcs8::EncodePrivateKey;
            let key = rsa::RsaPrivateKey::from_pkcs1_der(der.as_slice())
                .map_err(|e| PkiError::Malformed(format!("RSA private key: {e}")))?;
            key.to_pkcs8_der()
                .map_err(|e| PkiError::Malformed(format!("RSA private key: {e}")))
        }
        other => Err(PkiError::Malformed(format!(
            "unexpected PEM label {other:?} for a private key"
        ))),
    }
}

/// SEC1 keys do not say which curve they are on in a way `p256`/`p384`
/// expose generically, so try both curves this CA supports.
mod sec1_compat {
    use crate::PkiError;

    pub(super) enum AnyEcKey {
        P256(p256::SecretKey),
        P384(p384::SecretKey),
    }

    impl pkcs8::EncodePrivateKey for AnyEcKey {
        fn to_pkcs8_der(&self) -> pkcs8::Result<pkcs8::SecretDocument> {
            match self {
                Self::P256(k) => k.to_pkcs8_der(),
                Self::P384(k) => k.to_pkcs8_der(),
            }
        }
    }

    pub(super) fn decode_sec1(der: &[u8]) -> Result<AnyEcKey, PkiError> {
        if let Ok(k) = p384::SecretKey::from_sec1_der(der) {
            return Ok(AnyEcKey::P384(k));
        }
        p256::SecretKey::from_sec1_der(der)
            .map(AnyEcKey::P256)
            .map_err(|_| PkiError::UnsupportedAlgorithm("EC key not on P-256 or P-384".into()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn write_atomic_never_overwrites_and_leaves_no_temp_files() {
        // Regression: the file used to be renamed over an existing target,
        // so two processes creating the CA at once could pair one's key
        // with the other's certificate.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca-key.pem");
        write_atomic(&path, b"first", SECRET_MODE).unwrap();
        assert!(write_atomic(&path, b"second", SECRET_MODE).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"first");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
