//! One error type for the crate; messages never contain key material.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

/// Everything that can go wrong in the enrollment CA.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading or writing a CA file failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The CA key could not be decrypted: the passphrase is wrong (or the
    /// file is corrupted; PBES2 cannot tell the two apart).
    #[error("cannot decrypt the CA private key: wrong passphrase or corrupted key file")]
    WrongPassphrase,
    /// The CA directory holds some CA files but not all of them; refusing to
    /// overwrite anything.
    #[error("incomplete CA state: {0}")]
    IncompleteCaState(String),
    /// The CA key does not belong to the CA certificate.
    #[error("the CA private key does not match the CA certificate")]
    KeyMismatch,
    /// A key or certificate uses an algorithm this CA does not handle.
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// A subject name component was empty, too long or contained control characters.
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// A requested validity period was zero, negative or out of range.
    #[error("invalid validity: {0}")]
    InvalidValidity(String),
    /// Input (PEM, DER, key) could not be parsed.
    #[error("malformed input: {0}")]
    Malformed(String),
    /// The certificate's issuer is not this CA.
    #[error("certificate was not issued by the enrollment CA")]
    NotIssuedByCa,
    /// The certificate's signature does not verify with the CA key.
    #[error("certificate signature is invalid")]
    BadSignature,
    /// The certificate's notAfter is in the past.
    #[error("certificate expired at {not_after}")]
    Expired {
        /// When it expired.
        not_after: DateTime<Utc>,
    },
    /// The certificate's notBefore is in the future.
    #[error("certificate is not valid before {not_before}")]
    NotYetValid {
        /// When it becomes valid.
        not_before: DateTime<Utc>,
    },
    /// The certificate is not meant for TLS client authentication.
    #[error("certificate is not usable for client authentication: {0}")]
    WrongUsage(String),
    /// The certificate was revoked.
    #[error("certificate {serial_hex} has been revoked")]
    Revoked {
        /// Serial number, lowercase hex.
        serial_hex: String,
    },
    /// A signature made by a certificate holder (not a certificate's own
    /// signature) does not verify with the holder's public key.
    #[error("signature does not verify with the certificate's public key")]
    SignatureMismatch,
    /// The RSA-OAEP wrapping key is too small to carry the private key.
    #[error(
        "wrapping key RSA-{wrap_bits} can carry {capacity} bytes with RSA-OAEP-SHA256; \
         the enrollment key needs {pem_len} (PEM) / {der_len} (DER); {advice}"
    )]
    WrappingKeyTooSmall {
        /// Modulus size of the wrapping key.
        wrap_bits: usize,
        /// Largest plaintext RSA-OAEP-SHA256 can carry with that key.
        capacity: usize,
        /// Size of the private key as PEM.
        pem_len: usize,
        /// Size of the private key as DER.
        der_len: usize,
        /// What would fit instead.
        advice: String,
    },
    /// A certificate that must be a CA (to import it, to issue from it) is
    /// not one: no basicConstraints CA:TRUE, or a keyUsage without
    /// keyCertSign.
    #[error("not a CA certificate: {0}")]
    NotACa(String),
    /// A name is outside what the issuing CA's name constraints allow, or a
    /// child CA's constraints would not lie within its parent's.
    #[error("name constraints: {0}")]
    NameConstraintViolation(String),
    /// The issuing CA's basicConstraints pathLenConstraint does not allow
    /// the requested sub-CA.
    #[error("path length constraint: {0}")]
    PathLength(String),
    /// A cryptographic operation (key generation, signing, encryption) failed.
    #[error("cryptographic operation failed: {0}")]
    Crypto(String),
}

impl PkiError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
