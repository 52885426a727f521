//! The enrollment CA: a small, real certificate authority.
//!
//! It issues the client certificates that machines (OU = role) and operators
//! (OU = `operator`) present, and the host certificates host agents serve
//! their mutual-TLS API with (OU = `host`), and verifies them again when they come back.
//! The CA private key never leaves this crate: it is stored encrypted at rest
//! (PKCS#8 PBES2, scrypt + AES-256-CBC) and only used through
//! [`EnrollmentCa::issue`] and friends.
//!
//! [`authority`] is a second, general-purpose CA: root and intermediate
//! [`Authority`]s issuing end-entity certificates for the
//! certificate-lifecycle application, with no storage of its own.

pub mod authority;
mod ca;
mod checkpoint;
mod crl;
mod error;
mod host;
mod issue;
mod keysig;
mod keystore;
mod signer;
mod verify;
mod wrap;

pub use authority::{
    generate_key_pair, key_algorithm_of, pkcs12_certs_only, Authority, CaRequest, Eku, IssuedLeaf,
    KeyDescription, LeafRequest, NameConstraints,
};
pub use ca::{
    certificate_der, CaAlgorithm, CaOptions, EnrollmentCa, CA_CERT_FILE, CA_KEY_FILE,
    CA_PASSPHRASE_FILE,
};
pub use checkpoint::{
    CheckpointSigner, CHECKPOINT_ALGORITHM, CHECKPOINT_KEY_FILE, CHECKPOINT_PASSPHRASE_FILE,
};
pub use crl::{crl_serials, CrlReason, RevokedEntry};
pub use error::PkiError;
pub use host::{verify_csr, HostName, VerifiedCsr};
pub use issue::{IssuedCert, KeyAlgorithm};
pub use keysig::verify_with_spki;
pub use keystore::{read_or_create_secret_file, PassphraseSource};
pub use verify::{NoRevocation, RevocationCheck, RevokedSerials, VerifiedClientCert};
pub use wrap::{wrap_private_key, KeyEncoding, WrappedKey};

/// Re-exported so callers can build an SPKI for [`EnrollmentCa::issue`]
/// without depending on `x509-cert` themselves.
pub use x509_cert::spki::SubjectPublicKeyInfoOwned;
